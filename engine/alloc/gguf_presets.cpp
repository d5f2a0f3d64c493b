// SPDX-License-Identifier: MIT
// llama.cpp's mixes as plans (alloc/gguf_presets.h). The rules are those of llama-quantize's
// per-tensor type choice for the five mixes, restated per role and layer (docs/export-gguf.md,
// "Presets"): every ffn_down* tensor of layer i (experts, shared expert, dense MLP) is ruled by i
// and the layer count, attn_v by its layer index, and models with exactly 8 experts get the 8-expert
// bumps of attn_k / attn_v / attn_output.
#include "alloc/gguf_presets.h"
#include "moewb/alloc/ggml_errors.h"

#include "moewb/core/error.h"
#include "moewb/core/version.h"

#include <map>

namespace moewb {

namespace {

enum class Mix { Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K };

Mix mixOf(const std::string& preset)
{
    static const std::map<std::string, Mix> mixes = {{"gguf-q2_k", Mix::Q2_K},
                                                     {"gguf-q3_k_m", Mix::Q3_K_M},
                                                     {"gguf-q4_k_m", Mix::Q4_K_M},
                                                     {"gguf-q5_k_m", Mix::Q5_K_M},
                                                     {"gguf-q6_k", Mix::Q6_K}};
    auto it = mixes.find(preset);
    MOEWB_CHECK(it != mixes.end(), "strategy", "'", preset, "' is not a GGUF preset");
    return it->second;
}

const char* defaultType(Mix m)
{
    switch (m) {
    case Mix::Q2_K: return "q2_k";
    case Mix::Q3_K_M: return "q3_k";
    case Mix::Q4_K_M: return "q4_k";
    case Mix::Q5_K_M: return "q5_k";
    case Mix::Q6_K: return "q6_k";
    }
    return "q4_k";
}

/// The first and last eighth of the layers and every third in between get more bits.
bool useMoreBits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

bool isDown(LinearRole r)
{
    return r == LinearRole::ExpertDown || r == LinearRole::SharedDown || r == LinearRole::DenseDown;
}

std::string attnV(Mix m, const ModelConfig& cfg, int64_t i, const char* d)
{
    if (cfg.numExperts == 8)
        return "q8_0";
    const int64_t n = cfg.numLayers;
    switch (m) {
    case Mix::Q2_K: return cfg.numHeads / cfg.numKvHeads >= 4 ? "q4_k" : "q3_k";
    case Mix::Q3_K_M: return i < 2 ? "q5_k" : "q4_k";
    case Mix::Q4_K_M:
    case Mix::Q5_K_M: return useMoreBits(i, n) ? "q6_k" : d;
    case Mix::Q6_K: break;
    }
    return d;
}

std::string ffnDown(Mix m, const ModelConfig& cfg, int64_t i, const char* d)
{
    const int64_t n = cfg.numLayers;
    switch (m) {
    case Mix::Q2_K: return "q3_k";
    case Mix::Q3_K_M: return i < n / 16 ? "q5_k" : "q4_k";
    case Mix::Q4_K_M:
    case Mix::Q5_K_M: return useMoreBits(i, n) ? "q6_k" : d;
    case Mix::Q6_K: break;
    }
    return d;
}

std::string attnOutput(Mix m, const ModelConfig& cfg, const char* d)
{
    if (cfg.numExperts == 8)
        return (m == Mix::Q2_K || m == Mix::Q3_K_M || m == Mix::Q4_K_M) ? "q5_k" : d;
    if (m == Mix::Q2_K)
        return "q3_k";
    if (m == Mix::Q3_K_M)
        return "q4_k";
    return d;
}

} // namespace

int64_t ggufBitsOfType(const std::string& t)
{
    if (t == "q2_k")
        return 2;
    if (t == "q3_k")
        return 3;
    if (t == "q4_k")
        return 4;
    return 8;
}

std::string ggufPresetType(const std::string& preset, const ModelConfig& cfg, const PlanEntry& e)
{
    const Mix m = mixOf(preset);
    const char* d = defaultType(m);
    if (e.role == LinearRole::V)
        return attnV(m, cfg, e.layer, d);
    if (e.role == LinearRole::K && cfg.numExperts == 8)
        return "q8_0";
    if (e.role == LinearRole::O)
        return attnOutput(m, cfg, d);
    if (isDown(e.role))
        return ffnDown(m, cfg, e.layer, d);
    return d;
}

AllocResult allocateGgufPreset(const ModelConfig& cfg, const CalibStats&, const AllocOptions& opt)
{
    Plan base;
    base.defaults.groupSize = opt.groupSize;
    base.defaults.method = "rtn";
    AllocResult r;
    r.entries = expandPlan(base, cfg);
    for (PlanEntry& e : r.entries) {
        e.ggmlType = ggufPresetType(opt.strategy, cfg, e);
        e.bits = ggufBitsOfType(e.ggmlType);
    }
    r.ggufTokenEmbd = defaultType(mixOf(opt.strategy));
    r.ggufOutput = "q6_k";
    r.size = planSize(r.entries, cfg);
    r.budgetBytes = r.size.modelBytes;
    r.notes.push_back(opt.strategy + ": llama.cpp's mix; the size target is not used (token_embd "
                      + r.ggufTokenEmbd + ", output q6_k)");
    return r;
}

} // namespace moewb
