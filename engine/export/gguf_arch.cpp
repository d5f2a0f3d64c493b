// SPDX-License-Identifier: MIT
// The architectures the GGUF export writes (export/gguf_arch.h), as llama.cpp's loader for each
// expects them (docs/export-gguf.md).
#include "export/gguf_arch.h"

#include "moewb/core/error.h"

namespace moewb::gguf_export {

namespace {

using gguf::Value;

std::optional<Value> u32(int64_t v)
{
    return Value::u32(uint32_t(v));
}

int64_t hiddenWidth(const ModelConfig& cfg)
{
    return cfg.hiddenSize;
}

bool squareAttention(const ModelConfig& cfg)
{
    return cfg.numHeads * cfg.headDim == cfg.hiddenSize;
}

// --- hyper-parameter keys, shared by name; each architecture lists the ones it writes ---------------

const HyperKey kVocabSize{"vocab_size", [](const HyperFacts& f) { return u32(f.cfg.vocabSize); }};
const HyperKey kContextLength{"context_length", [](const HyperFacts& f) { return u32(f.cfg.maxPositionEmbeddings); }};
const HyperKey kEmbeddingLength{"embedding_length", [](const HyperFacts& f) { return u32(f.cfg.hiddenSize); }};
const HyperKey kBlockCount{"block_count", [](const HyperFacts& f) { return u32(f.cfg.numLayers); }};
const HyperKey kFeedForwardLength{"feed_forward_length",
                                  [](const HyperFacts& f) { return u32(f.cfg.intermediateSize); }};
/// llama.cpp's llama arch sizes its expert tensors by feed_forward_length.
const HyperKey kFeedForwardIsExpertWidth{"feed_forward_length", [](const HyperFacts& f) {
                                             return u32(f.expertWidth ? f.expertWidth : f.cfg.intermediateSize);
                                         }};
const HyperKey kHeadCount{"attention.head_count", [](const HyperFacts& f) { return u32(f.cfg.numHeads); }};
const HyperKey kHeadCountKv{"attention.head_count_kv", [](const HyperFacts& f) { return u32(f.cfg.numKvHeads); }};
const HyperKey kRmsEps{"attention.layer_norm_rms_epsilon",
                       [](const HyperFacts& f) -> std::optional<Value> { return Value::f32(float(f.cfg.rmsNormEps)); }};
const HyperKey kRopeFreqBase{"rope.freq_base",
                             [](const HyperFacts& f) -> std::optional<Value> { return Value::f32(float(f.cfg.ropeTheta)); }};
const HyperKey kRopeDimensionCount{"rope.dimension_count", [](const HyperFacts& f) { return u32(f.cfg.headDim); }};
const HyperKey kKeyLength{"attention.key_length", [](const HyperFacts& f) {
                              return squareAttention(f.cfg) ? std::nullopt : u32(f.cfg.headDim);
                          }};
const HyperKey kValueLength{"attention.value_length", [](const HyperFacts& f) {
                                return squareAttention(f.cfg) ? std::nullopt : u32(f.cfg.headDim);
                            }};
const HyperKey kExpertCount{"expert_count", [](const HyperFacts& f) { return u32(f.cfg.numExperts); }};
const HyperKey kExpertUsedCount{"expert_used_count", [](const HyperFacts& f) { return u32(f.cfg.topK); }};
const HyperKey kExpertFeedForwardLength{"expert_feed_forward_length",
                                        [](const HyperFacts& f) { return u32(f.expertWidth); }};
const HyperKey kExpertSharedFeedForwardLength{"expert_shared_feed_forward_length",
                                              [](const HyperFacts& f) { return u32(f.cfg.sharedIntermediateSize); }};

// --- tensor names shared by the llama.cpp architectures ------------------------------------------------

const NormName kAttnNorm{"attn_norm", "input_layernorm", hiddenWidth};
const NormName kFfnNorm{"ffn_norm", "post_attention_layernorm", hiddenWidth};
const std::vector<LinearName> kExperts = {{LinearRole::ExpertGate, "ffn_gate_exps"},
                                          {LinearRole::ExpertUp, "ffn_up_exps"},
                                          {LinearRole::ExpertDown, "ffn_down_exps"}};
const std::vector<LinearName> kShared = {{LinearRole::SharedGateProj, "ffn_gate_shexp"},
                                         {LinearRole::SharedUp, "ffn_up_shexp"},
                                         {LinearRole::SharedDown, "ffn_down_shexp"}};
const std::vector<LinearName> kDense = {{LinearRole::DenseGate, "ffn_gate"},
                                        {LinearRole::DenseUp, "ffn_up"},
                                        {LinearRole::DenseDown, "ffn_down"}};

void qwen2MoeCaveats(const ModelConfig& cfg, std::vector<std::string>& notes)
{
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        if (!cfg.isMoeLayer(l)) {
            notes.push_back("layer " + std::to_string(l) + " is dense (mlp_only_layers / decoder_sparse_step): "
                            "written as blk.N.ffn_{gate,up,down}, which llama.cpp's qwen2moe does not load");
            break;
        }
    if (cfg.normTopkProb)
        notes.push_back("norm_topk_prob is true, but llama.cpp's qwen2moe never renormalizes the top-k weights");
    if (!squareAttention(cfg))
        notes.push_back("heads x head_dim != hidden_size: llama.cpp's qwen2moe expects square attn_q/attn_output");
}

/// Mixtral as llama.cpp's "llama" with experts: q/k rows permuted as convert_hf_to_gguf.py does.
GgufArch mixtral()
{
    return {Arch::Mixtral,
            "llama",
            {kAttnNorm},
            {{LinearRole::Q, "attn_q", RopeRows::PerHead},
             {LinearRole::K, "attn_k", RopeRows::PerKvHead},
             {LinearRole::V, "attn_v"},
             {LinearRole::O, "attn_output"}},
            {kFfnNorm},
            kExperts,
            "ffn_gate_inp_shexp",
            kShared,
            kDense,
            {kVocabSize, kContextLength, kEmbeddingLength, kBlockCount, kFeedForwardIsExpertWidth, kHeadCount,
             kHeadCountKv, kRmsEps, kRopeFreqBase, kRopeDimensionCount, kKeyLength, kValueLength, kExpertCount,
             kExpertUsedCount},
            nullptr};
}

/// Qwen2-MoE: q/k/v biases, the shared expert and its sigmoid gate; no permutation.
GgufArch qwen2Moe()
{
    return {Arch::Qwen2Moe,
            "qwen2moe",
            {kAttnNorm},
            {{LinearRole::Q, "attn_q"}, {LinearRole::K, "attn_k"}, {LinearRole::V, "attn_v"}, {LinearRole::O, "attn_output"}},
            {kFfnNorm},
            kExperts,
            "ffn_gate_inp_shexp",
            kShared,
            kDense,
            {kVocabSize, kContextLength, kEmbeddingLength, kBlockCount, kFeedForwardLength, kHeadCount, kHeadCountKv,
             kRmsEps, kRopeFreqBase, kKeyLength, kValueLength, kExpertCount, kExpertUsedCount,
             kExpertFeedForwardLength, kExpertSharedFeedForwardLength},
            qwen2MoeCaveats};
}

const std::vector<GgufArch>& table()
{
    static const std::vector<GgufArch> t = {mixtral(), qwen2Moe()};
    return t;
}

/// "A, B and C"
std::string supportedNames()
{
    std::string s;
    const auto& t = table();
    for (size_t i = 0; i < t.size(); ++i)
        s += (i == 0 ? "" : i + 1 == t.size() ? " and " : ", ") + std::string(archName(t[i].arch));
    return s;
}

} // namespace

const GgufArch& ggufArchFor(const ModelConfig& cfg, const std::string& modelDir)
{
    for (const GgufArch& a : table())
        if (a.arch == cfg.arch)
            return a;
    throw InputError(modelDir, "GGUF export supports " + supportedNames() + ", not " + cfg.architecture);
}

} // namespace moewb::gguf_export
