// SPDX-License-Identifier: MIT
// moewb info MODEL_DIR: what config.json says, what the safetensors headers hold, and whether the
// two agree (every expected tensor present with the expected shape). Reads headers only.
#include "cli_common.h"

#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace moewb::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string withCommas(int64_t v)
{
    std::string s = std::to_string(v < 0 ? -v : v);
    for (int i = int(s.size()) - 3; i > 0; i -= 3)
        s.insert(size_t(i), ",");
    return v < 0 ? "-" + s : s;
}

/// 46702792704 → "46.70B"
std::string shortCount(int64_t v)
{
    char buf[32];
    if (v >= 1000000000)
        std::snprintf(buf, sizeof buf, "%.2fB", double(v) / 1e9);
    else if (v >= 1000000)
        std::snprintf(buf, sizeof buf, "%.2fM", double(v) / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%lld", (long long)v);
    return buf;
}

std::string shapeString(const std::vector<int64_t>& s)
{
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i)
        out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

bool hasCheckpointFiles(const fs::path& dir)
{
    std::error_code ec;
    if (fs::exists(dir / "model.safetensors.index.json", ec))
        return true;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".safetensors")
            return true;
    return false;
}

struct RoleSummary {
    LinearRole role;
    int64_t count = 0;
    int64_t inMin = INT64_MAX, inMax = 0, outMin = INT64_MAX, outMax = 0;
    int64_t params = 0;
    bool bias = false;
};

std::vector<RoleSummary> summarize(const std::vector<LinearInfo>& lin)
{
    std::map<int, RoleSummary> byRole;
    for (const auto& l : lin) {
        RoleSummary& s = byRole[int(l.role)];
        s.role = l.role;
        ++s.count;
        s.inMin = std::min(s.inMin, l.inFeatures);
        s.inMax = std::max(s.inMax, l.inFeatures);
        s.outMin = std::min(s.outMin, l.outFeatures);
        s.outMax = std::max(s.outMax, l.outFeatures);
        s.params += l.inFeatures * l.outFeatures + (l.hasBias ? l.outFeatures : 0);
        s.bias = s.bias || l.hasBias;
    }
    std::vector<RoleSummary> out;
    for (auto& [k, s] : byRole)
        out.push_back(s);
    return out;
}

std::string range(int64_t lo, int64_t hi)
{
    return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

const char* qkNormName(QkNorm n)
{
    switch (n) {
    case QkNorm::None: return "none";
    case QkNorm::PerHead: return "per-head";
    case QkNorm::Whole: return "whole projection";
    }
    return "?";
}

std::vector<int64_t> layerList(const ModelConfig& c, bool moe)
{
    std::vector<int64_t> v;
    for (int64_t l = 0; l < c.numLayers; ++l)
        if (c.isMoeLayer(l) == moe)
            v.push_back(l);
    return v;
}

/// What the checkpoint holds and the first disagreement with the config.
struct CheckpointFacts {
    int64_t files = 0;
    int64_t tensors = 0;
    int64_t bytes = 0;
    int64_t parameters = 0;
    std::map<std::string, int64_t> bytesPerDtype;
    std::vector<std::string> unexpected; ///< names the architecture does not use
    std::string error;                   ///< first missing / mis-shaped tensor; empty if none
};

CheckpointFacts inspectCheckpoint(const ModelConfig& cfg, const std::string& dir)
{
    CheckpointFacts f;
    const Checkpoint ckpt = Checkpoint::open(dir);
    const std::vector<std::string> names = ckpt.names();
    std::set<std::string> files;
    for (const auto& n : names) {
        const TensorInfo& t = ckpt.info(n);
        files.insert(ckpt.fileOf(n).path());
        f.bytes += int64_t(t.nbytes());
        f.parameters += t.numel();
        f.bytesPerDtype[dtypeName(t.dtype)] += int64_t(t.nbytes());
    }
    f.files = int64_t(files.size());
    f.tensors = int64_t(names.size());

    std::set<std::string> expected;
    for (const TensorSpec& s : expectedTensors(cfg)) {
        expected.insert(s.name);
        if (!f.error.empty())
            continue;
        if (!ckpt.has(s.name)) {
            f.error = "missing tensor '" + s.name + "' (expected shape " + shapeString(s.shape) + ")";
            continue;
        }
        const TensorInfo& t = ckpt.info(s.name);
        if (t.shape != s.shape)
            f.error = "tensor '" + s.name + "' has shape " + shapeString(t.shape) + ", expected "
                + shapeString(s.shape);
    }
    // A tied model may still carry lm_head.weight; if so it must have the embedding's shape.
    if (cfg.tieWordEmbeddings && ckpt.has("lm_head.weight")) {
        expected.insert("lm_head.weight");
        const TensorInfo& t = ckpt.info("lm_head.weight");
        const std::vector<int64_t> want{cfg.vocabSize, cfg.hiddenSize};
        if (f.error.empty() && t.shape != want)
            f.error = "tensor 'lm_head.weight' has shape " + shapeString(t.shape) + ", expected " + shapeString(want);
    }
    for (const auto& n : names)
        if (!expected.count(n))
            f.unexpected.push_back(n);
    return f;
}

/// Everything `moewb info` reports about one model directory.
struct ModelFacts {
    fs::path dir;
    ModelConfig cfg;
    int64_t configParams = 0;
    std::vector<LinearInfo> lin;
    std::vector<RoleSummary> roles;
    std::optional<CheckpointFacts> ck; ///< none without safetensors files
};

/// MODEL_DIR or its config.json.
ModelFacts readModelFacts(const std::string& arg)
{
    ModelFacts m;
    std::error_code ec;
    m.dir = fs::is_directory(arg, ec)           ? fs::path(arg)
        : fs::path(arg).parent_path().empty() ? fs::path(".")
                                                : fs::path(arg).parent_path();
    m.cfg = loadConfig(arg);
    m.configParams = parameterCount(m.cfg);
    m.lin = listLinears(m.cfg);
    m.roles = summarize(m.lin);
    if (hasCheckpointFiles(m.dir))
        m.ck = inspectCheckpoint(m.cfg, m.dir.string());
    return m;
}

json expertsJson(const ModelConfig& cfg)
{
    if (!cfg.isMoe())
        return nullptr;
    return {{"routed", cfg.numExperts},
            {"top_k", cfg.topK},
            {"renormalize", cfg.normTopkProb},
            {"expert_intermediate_size", cfg.moeIntermediateSize},
            {"shared_intermediate_size", cfg.sharedIntermediateSize},
            {"shared_experts", cfg.arch == Arch::DeepseekMoe ? cfg.numSharedExperts : (cfg.hasSharedExpert() ? 1 : 0)},
            {"shared_expert_gate", cfg.sharedExpertGate}};
}

/// What config.json says.
void addConfigJson(json& j, const ModelConfig& cfg)
{
    j["architecture"] = cfg.architecture;
    j["model_type"] = cfg.modelType;
    j["torch_dtype"] = cfg.torchDtype;
    j["layers"] = {{"total", cfg.numLayers}, {"moe", layerList(cfg, true)}, {"dense", layerList(cfg, false)}};
    j["hidden_size"] = cfg.hiddenSize;
    j["attention"] = {{"heads", cfg.numHeads},      {"kv_heads", cfg.numKvHeads},
                      {"head_dim", cfg.headDim},    {"qkv_bias", cfg.attentionBias},
                      {"o_bias", cfg.oProjBias},    {"qk_norm", qkNormName(cfg.qkNorm)},
                      {"clip_qkv", cfg.clipQkv ? json(*cfg.clipQkv) : json(nullptr)}};
    j["experts"] = expertsJson(cfg);
    j["intermediate_size"] = cfg.intermediateSize;
    j["vocab_size"] = cfg.vocabSize;
    j["tie_word_embeddings"] = cfg.tieWordEmbeddings;
    j["rope_theta"] = cfg.ropeTheta;
    j["rms_norm_eps"] = cfg.rmsNormEps;
    j["max_position_embeddings"] = cfg.maxPositionEmbeddings;
}

/// The checkpoint and the check against the config (null without a checkpoint).
void addCheckpointJson(json& j, const std::optional<CheckpointFacts>& ck)
{
    if (!ck) {
        j["checkpoint"] = nullptr;
        j["check"] = nullptr;
        return;
    }
    j["checkpoint"] = {{"files", ck->files},
                       {"tensors", ck->tensors},
                       {"bytes", ck->bytes},
                       {"bytes_per_dtype", ck->bytesPerDtype},
                       {"parameters", ck->parameters},
                       {"unexpected_tensors", ck->unexpected}};
    j["check"] = {{"ok", ck->error.empty()}, {"error", ck->error.empty() ? json(nullptr) : json(ck->error)}};
}

/// The linears per role, and each one with --linears.
void addLinearsJson(json& j, const ModelFacts& m, bool allLinears)
{
    json rj = json::array();
    for (const auto& r : m.roles)
        rj.push_back({{"role", linearRoleName(r.role)}, {"count", r.count},
                      {"in", range(r.inMin, r.inMax)},  {"out", range(r.outMin, r.outMax)},
                      {"bias", r.bias},                 {"parameters", r.params}});
    j["linear_roles"] = rj;
    j["linear_count"] = int64_t(m.lin.size());
    if (!allLinears)
        return;
    json lj = json::array();
    for (const auto& l : m.lin)
        lj.push_back({{"name", l.name}, {"layer", l.layer}, {"expert", l.expert}, {"role", linearRoleName(l.role)},
                      {"in", l.inFeatures}, {"out", l.outFeatures}, {"bias", l.hasBias}});
    j["linears"] = lj;
}

void printJson(const ModelFacts& m, bool allLinears)
{
    json j;
    j["path"] = m.dir.string();
    addConfigJson(j, m.cfg);
    j["parameters_config"] = m.configParams;
    j["notes"] = m.cfg.notes;
    addCheckpointJson(j, m.ck);
    addLinearsJson(j, m, allLinears);
    std::printf("%s\n", j.dump(2).c_str());
}

void printExperts(const ModelConfig& cfg, const std::string& denseLayers)
{
    if (!cfg.isMoe()) {
        std::printf("experts:       none (dense model, MLP width %lld)\n", (long long)cfg.intermediateSize);
        return;
    }
    const char* renorm = cfg.arch == Arch::Mixtral ? "always"
        : cfg.normTopkProb                         ? "yes (norm_topk_prob)"
                                                   : "no (raw softmax probabilities)";
    std::printf("experts:       %lld routed (width %lld), top-%lld\n", (long long)cfg.numExperts,
                (long long)cfg.moeIntermediateSize, (long long)cfg.topK);
    std::printf("renormalize:   %s\n", renorm);
    if (!cfg.hasSharedExpert())
        std::printf("shared:        none\n");
    else if (cfg.arch == Arch::DeepseekMoe)
        std::printf("shared:        %lld shared experts merged into one MLP of width %lld, ungated\n",
                    (long long)cfg.numSharedExperts, (long long)cfg.sharedIntermediateSize);
    else
        std::printf("shared:        1 shared expert of width %lld%s\n", (long long)cfg.sharedIntermediateSize,
                    cfg.sharedExpertGate ? ", sigmoid-gated (shared_expert_gate)" : "");
    if (!denseLayers.empty())
        std::printf("dense MLP:     width %lld\n", (long long)cfg.intermediateSize);
}

/// What config.json says, as text.
void printConfig(const fs::path& dir, const ModelConfig& cfg, int64_t configParams)
{
    std::printf("model:         %s\n", dir.string().c_str());
    std::printf("architecture:  %s (model_type %s%s%s)\n", cfg.architecture.c_str(),
                cfg.modelType.empty() ? "-" : cfg.modelType.c_str(), cfg.torchDtype.empty() ? "" : ", torch_dtype ",
                cfg.torchDtype.c_str());
    const std::string moeL = layerRanges(cfg, true), denseL = layerRanges(cfg, false);
    std::printf("layers:        %lld (MoE: %s; dense: %s)\n", (long long)cfg.numLayers,
                moeL.empty() ? "none" : moeL.c_str(), denseL.empty() ? "none" : denseL.c_str());
    std::printf("hidden:        %lld\n", (long long)cfg.hiddenSize);
    std::printf("attention:     %lld heads, %lld kv heads, head_dim %lld; q/k/v bias %s, o bias %s, q/k norm %s%s\n",
                (long long)cfg.numHeads, (long long)cfg.numKvHeads, (long long)cfg.headDim,
                cfg.attentionBias ? "yes" : "no", cfg.oProjBias ? "yes" : "no", qkNormName(cfg.qkNorm),
                cfg.clipQkv ? (", clip_qkv " + std::to_string(*cfg.clipQkv)).c_str() : "");
    printExperts(cfg, denseL);
    std::printf("vocab:         %lld (%s)\n", (long long)cfg.vocabSize,
                cfg.tieWordEmbeddings ? "lm_head tied to embeddings" : "separate lm_head");
    std::printf("rope:          theta %g, rms_norm_eps %g, max positions %lld\n", cfg.ropeTheta, cfg.rmsNormEps,
                (long long)cfg.maxPositionEmbeddings);
    std::printf("parameters:    %s (%s, from config.json)\n", withCommas(configParams).c_str(),
                shortCount(configParams).c_str());
    for (const auto& n : cfg.notes)
        std::printf("note:          %s\n", n.c_str());
}

void printCheckpoint(const std::optional<CheckpointFacts>& ck)
{
    if (!ck) {
        std::printf("checkpoint:    none (no .safetensors files; config only)\n");
        return;
    }
    std::printf("checkpoint:    %lld file(s), %lld tensors, %s bytes, %s parameters (%s)\n", (long long)ck->files,
                (long long)ck->tensors, withCommas(ck->bytes).c_str(), withCommas(ck->parameters).c_str(),
                shortCount(ck->parameters).c_str());
    for (const auto& [dt, b] : ck->bytesPerDtype)
        std::printf("  %-6s       %s bytes\n", dt.c_str(), withCommas(b).c_str());
    if (!ck->unexpected.empty())
        std::printf("unexpected:    %lld tensor(s) the architecture does not use, e.g. %s\n",
                    (long long)ck->unexpected.size(), ck->unexpected.front().c_str());
    std::printf("check:         %s\n",
                ck->error.empty() ? "ok (every expected tensor present with its shape)" : "FAILED (see error)");
}

/// Every linear (--linears) or one line per role.
void printLinears(const ModelFacts& m, bool allLinears)
{
    if (allLinears) {
        std::printf("%-60s %8s %8s  %s\n", "linear", "in", "out", "role");
        for (const auto& l : m.lin)
            std::printf("%-60s %8lld %8lld  %s%s\n", l.name.c_str(), (long long)l.inFeatures, (long long)l.outFeatures,
                        linearRoleName(l.role), l.hasBias ? " (+bias)" : "");
        return;
    }
    std::printf("%-20s %7s %11s %11s %16s\n", "linear role", "count", "in", "out", "parameters");
    for (const auto& r : m.roles)
        std::printf("%-20s %7lld %11s %11s %16s%s\n", linearRoleName(r.role), (long long)r.count,
                    range(r.inMin, r.inMax).c_str(), range(r.outMin, r.outMax).c_str(), withCommas(r.params).c_str(),
                    r.bias ? "  (+bias)" : "");
    std::printf("%-20s %7lld   (--linears lists each one)\n", "total", (long long)m.lin.size());
}

void printText(const ModelFacts& m, bool allLinears)
{
    printConfig(m.dir, m.cfg, m.configParams);
    printCheckpoint(m.ck);
    std::printf("\n");
    printLinears(m, allLinears);
}

int runInfo(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Describe a Hugging Face model directory: architecture, layer kinds, attention shape, experts, "
        "routing, parameter count (from config.json and from the checkpoint), bytes per dtype and the "
        "linear modules. Only headers are read. Every tensor the architecture needs is checked for "
        "presence and shape; the first missing or mis-shaped one is an error (exit 1)."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"),
                            QStringLiteral("Hugging Face model directory (or its config.json)"));
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object with the same facts.")});
    p.addOption({QStringLiteral("linears"),
                 QStringLiteral("List every linear module (name, in, out, role) instead of a per-role summary.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1) {
        std::fprintf(stderr, "moewb info: usage error: expected one MODEL_DIR\n\n%s", qPrintable(p.helpText()));
        return ExitUsage;
    }
    const bool asJson = p.isSet(QStringLiteral("json"));
    const bool allLinears = p.isSet(QStringLiteral("linears"));
    return guarded([&] {
        const ModelFacts m = readModelFacts(toStd(p.positionalArguments()[0]));
        if (asJson)
            printJson(m, allLinears);
        else
            printText(m, allLinears);
        std::fflush(stdout);
        if (m.ck && !m.ck->error.empty())
            throw InputError(m.dir.string(), m.ck->error);
        return ExitOk;
    });
}

const CommandRegistrar reg({"info", "describe a model directory and check its tensors against config.json", runInfo});

} // namespace
} // namespace moewb::cli
