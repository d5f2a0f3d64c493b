// SPDX-License-Identifier: MIT
// config.json → ModelConfig. Every supported architecture's keys, class defaults and checks are in
// one table-like function per family so that the rules of docs/formats.md §2 read top to bottom.
#include "moewb/core/json_limits.h"
#include "moewb/hfconfig/hf_config.h"

#include "moewb/core/error.h"
#include "moewb/core/text_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace moewb {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Sizes above these are not a model but a typo (or a fuzzer); they also keep every product we
// form (parameter counts, tensor shapes) far from int64 overflow before the checked sums.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxCount = int64_t(1) << 16; // layers, experts, heads

struct ArchEntry {
    Arch arch;
    const char* className;
    const char* modelType;
};

constexpr ArchEntry kArchs[] = {
    {Arch::Mixtral, "MixtralForCausalLM", "mixtral"},
    {Arch::Qwen2Moe, "Qwen2MoeForCausalLM", "qwen2_moe"},
    {Arch::Qwen3Moe, "Qwen3MoeForCausalLM", "qwen3_moe"},
    {Arch::DeepseekMoe, "DeepseekForCausalLM", "deepseek"},
    {Arch::Olmoe, "OlmoeForCausalLM", "olmoe"},
    {Arch::Llama, "LlamaForCausalLM", "llama"},
    {Arch::Mistral, "MistralForCausalLM", "mistral"},
    {Arch::Qwen2, "Qwen2ForCausalLM", "qwen2"},
};

std::string supportedList()
{
    std::string s;
    for (const auto& a : kArchs) {
        if (!s.empty())
            s += ", ";
        s += a.className;
    }
    return s;
}

/// Typed access to the top-level object with messages that name the file and the key. A key whose
/// value is null counts as absent, as it does for the transformers config classes.
class Keys {
public:
    Keys(const json& j, std::string where)
        : m_j(j)
        , m_where(std::move(where))
    {
    }

    const std::string& where() const { return m_where; }

    const json* find(const char* key) const
    {
        const auto it = m_j.find(key);
        if (it == m_j.end() || it->is_null())
            return nullptr;
        return &*it;
    }
    bool has(const char* key) const { return find(key) != nullptr; }

    [[noreturn]] void fail(const std::string& problem) const { throw InputError(m_where, problem); }

    std::optional<int64_t> optInt(const char* key) const
    {
        const json* v = find(key);
        if (!v)
            return std::nullopt;
        return toInt(*v, key);
    }
    int64_t reqInt(const char* key) const
    {
        const json* v = find(key);
        if (!v)
            fail(missing(key));
        return toInt(*v, key);
    }
    int64_t intOr(const char* key, int64_t def) const { return optInt(key).value_or(def); }

    /// An integer in [lo, hi]; the message names the key and the bound it broke.
    int64_t bounded(const char* key, int64_t v, int64_t lo, int64_t hi) const
    {
        if (v < lo) {
            const std::string bound = lo == 0 ? "non-negative" : lo == 1 ? "positive" : "at least " + std::to_string(lo);
            fail(detail::concat("key '", key, "' must be ", bound, ", got ", v));
        }
        if (v > hi)
            fail(detail::concat("key '", key, "' is implausibly large (", v, " > ", hi, ")"));
        return v;
    }
    int64_t reqSize(const char* key, int64_t hi = kMaxDim) const { return bounded(key, reqInt(key), 1, hi); }
    int64_t sizeOr(const char* key, int64_t def, int64_t hi = kMaxDim) const
    {
        return bounded(key, intOr(key, def), 1, hi);
    }

    std::optional<double> optDouble(const char* key) const
    {
        const json* v = find(key);
        if (!v)
            return std::nullopt;
        if (!v->is_number() || v->is_boolean())
            fail(detail::concat("key '", key, "' must be a number, got ", describe(*v)));
        return v->get<double>();
    }
    double doubleOr(const char* key, double def) const { return optDouble(key).value_or(def); }

    bool boolOr(const char* key, bool def) const
    {
        const json* v = find(key);
        if (!v)
            return def;
        if (!v->is_boolean())
            fail(detail::concat("key '", key, "' must be a boolean, got ", describe(*v)));
        return v->get<bool>();
    }

    std::optional<std::string> optString(const char* key) const
    {
        const json* v = find(key);
        if (!v)
            return std::nullopt;
        if (!v->is_string())
            fail(detail::concat("key '", key, "' must be a string, got ", describe(*v)));
        return v->get<std::string>();
    }

    std::vector<int64_t> intList(const char* key) const
    {
        std::vector<int64_t> out;
        const json* v = find(key);
        if (!v)
            return out;
        if (!v->is_array())
            fail(detail::concat("key '", key, "' must be a list of integers, got ", describe(*v)));
        for (const auto& e : *v) {
            if (!e.is_number_integer())
                fail(detail::concat("key '", key, "' must be a list of integers, got an element ", describe(e)));
            out.push_back(toInt(e, key));
        }
        return out;
    }

    /// bos/eos: an integer, or a list of integers (the first is kept).
    std::optional<int64_t> tokenId(const char* key) const
    {
        const json* v = find(key);
        if (!v)
            return std::nullopt;
        if (v->is_array()) {
            if (v->empty())
                return std::nullopt;
            if (!(*v)[0].is_number_integer())
                fail(detail::concat("key '", key, "' must be an integer or a list of integers"));
            return toInt((*v)[0], key);
        }
        if (!v->is_number_integer())
            fail(detail::concat("key '", key, "' must be an integer or a list of integers, got ", describe(*v)));
        return toInt(*v, key);
    }

    static std::string missing(const char* key) { return detail::concat("missing required key '", key, "'"); }

    static std::string describe(const json& v)
    {
        std::string s = v.dump();
        if (s.size() > 40)
            s = s.substr(0, 37) + "...";
        return std::string(v.type_name()) + " " + s;
    }

private:
    int64_t toInt(const json& v, const char* key) const
    {
        if (!v.is_number_integer())
            fail(detail::concat("key '", key, "' must be an integer, got ", describe(v)));
        if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
            fail(detail::concat("key '", key, "' is out of range"));
        return v.get<int64_t>();
    }

    const json& m_j;
    std::string m_where;
};

struct ArchDefaults {
    double rmsNormEps;
    double ropeTheta;
    int64_t maxPositions;
    std::optional<int64_t> bos;
    std::optional<int64_t> eos;
};

// Defaults of each transformers (or, for DeepSeek v1, remote-code) config class for keys that a
// config.json may omit. Sizes are never defaulted: they are required keys.
ArchDefaults classDefaults(Arch a)
{
    switch (a) {
    case Arch::Mixtral: return {1e-5, 1e6, 4096 * 32, 1, 2};
    case Arch::Mistral: return {1e-6, 10000.0, 4096 * 32, 1, 2};
    case Arch::Llama: return {1e-6, 10000.0, 2048, 1, 2};
    case Arch::Qwen2: return {1e-6, 10000.0, 32768, std::nullopt, std::nullopt};
    case Arch::Qwen2Moe: return {1e-6, 10000.0, 32768, std::nullopt, std::nullopt};
    case Arch::Qwen3Moe: return {1e-6, 10000.0, 32768, std::nullopt, std::nullopt};
    case Arch::Olmoe: return {1e-5, 10000.0, 4096, std::nullopt, 50279};
    case Arch::DeepseekMoe: return {1e-6, 10000.0, 2048, 100000, 100001};
    }
    return {1e-6, 10000.0, 2048, std::nullopt, std::nullopt};
}

Arch detectArch(const Keys& k, ModelConfig& c)
{
    if (const json* a = k.find("architectures")) {
        if (!a->is_array() || a->empty() || !(*a)[0].is_string())
            k.fail("key 'architectures' must be a non-empty list of strings, got " + Keys::describe(*a));
        c.architecture = (*a)[0].get<std::string>();
    }
    c.modelType = k.optString("model_type").value_or("");
    if (!c.architecture.empty()) {
        for (const auto& e : kArchs)
            if (c.architecture == e.className)
                return e.arch;
        k.fail("unsupported architecture '" + c.architecture + "' (supported: " + supportedList() + ")");
    }
    if (c.modelType.empty())
        k.fail("missing required key 'architectures' (and no 'model_type' to fall back on)");
    for (const auto& e : kArchs) {
        if (c.modelType == e.modelType) {
            c.architecture = e.className;
            return e.arch;
        }
    }
    k.fail("unsupported architecture '" + c.modelType + "' (model_type; supported: " + supportedList() + ")");
}

void checkRope(const Keys& k, ModelConfig& c, const ArchDefaults& d)
{
    auto checkType = [&](const char* key) {
        const json* rs = k.find(key);
        if (!rs)
            return;
        if (!rs->is_object())
            k.fail(detail::concat("key '", key, "' must be an object or null, got ", Keys::describe(*rs)));
        std::string type = "default";
        for (const char* tk : {"rope_type", "type"}) {
            const auto it = rs->find(tk);
            if (it != rs->end() && !it->is_null()) {
                if (!it->is_string())
                    k.fail(detail::concat("key '", key, ".", tk, "' must be a string"));
                type = it->get<std::string>();
                break;
            }
        }
        if (type != "default")
            k.fail(detail::concat(key, " type '", type, "' is not supported (only plain RoPE)"));
    };
    checkType("rope_scaling");
    checkType("rope_parameters");

    c.ropeTheta = d.ropeTheta;
    if (const auto t = k.optDouble("rope_theta")) {
        c.ropeTheta = *t;
    } else if (const json* rp = k.find("rope_parameters")) {
        const auto it = rp->find("rope_theta");
        if (it != rp->end() && !it->is_null()) {
            if (!it->is_number() || it->is_boolean())
                k.fail("key 'rope_parameters.rope_theta' must be a number, got " + Keys::describe(*it));
            c.ropeTheta = it->get<double>();
        }
    }
    if (!(c.ropeTheta > 0.0))
        k.fail(detail::concat("key 'rope_theta' must be positive, got ", c.ropeTheta));
}

/// Attention shape, shared by all architectures.
void readAttention(const Keys& k, ModelConfig& c)
{
    c.numHeads = k.reqSize("num_attention_heads", kMaxCount);
    c.numKvHeads = k.sizeOr("num_key_value_heads", c.numHeads, kMaxCount);
    if (const auto hd = k.optInt("head_dim")) {
        c.headDim = k.bounded("head_dim", *hd, 1, kMaxDim);
    } else {
        if (c.hiddenSize % c.numHeads != 0)
            k.fail(detail::concat("hidden_size ", c.hiddenSize, " is not divisible by num_attention_heads ", c.numHeads,
                                  " (and no head_dim is given)"));
        c.headDim = c.hiddenSize / c.numHeads;
    }
    if (c.headDim % 2 != 0)
        k.fail(detail::concat("head dimension ", c.headDim, " is odd; RoPE needs an even head_dim"));
    if (c.numHeads % c.numKvHeads != 0)
        k.fail(detail::concat("num_attention_heads ", c.numHeads, " is not a multiple of num_key_value_heads ",
                              c.numKvHeads));
}

void readRouting(const Keys& k, ModelConfig& c, const char* expertsKey)
{
    c.numExperts = k.reqSize(expertsKey, kMaxCount);
    const int64_t topK = k.reqInt("num_experts_per_tok");
    if (topK < 1)
        k.fail(detail::concat("key 'num_experts_per_tok' must be at least 1, got ", topK));
    if (topK > c.numExperts)
        k.fail(detail::concat("num_experts_per_tok ", topK, " exceeds ", expertsKey, " ", c.numExperts));
    c.topK = topK;
}

void checkSilu(const Keys& k)
{
    const std::string act = k.optString("hidden_act").value_or("silu");
    if (act != "silu")
        k.fail("hidden_act '" + act + "' is not supported (only 'silu')");
}

void noteSlidingWindow(ModelConfig& c, int64_t window)
{
    c.slidingWindow = window;
    c.notes.push_back(detail::concat("sliding_window ", window, ": each token attends to at most the ", window,
                                     " most recent tokens"));
}

/// The JSON object of config.json; InputError with our own line and column otherwise.
json parseConfigObject(const std::string& jsonText, const std::string& where)
{
    checkJsonDepth(jsonText, where);
    json j;
    try {
        j = json::parse(jsonText);
    } catch (const json::parse_error& e) {
        // Our own line/column from the byte offset: the library's wording varies between versions.
        const size_t end = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, jsonText.size());
        int64_t line = 1, col = 1;
        for (size_t i = 0; i < end; ++i) {
            if (jsonText[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        std::string msg = e.what();
        const auto colon = msg.find(": ", msg.find("parse error"));
        if (colon != std::string::npos)
            msg = msg.substr(colon + 2);
        throw InputError(where, detail::concat("invalid JSON at line ", line, ", column ", col, ": ", msg));
    }
    if (!j.is_object())
        throw InputError(where, std::string("top level is a JSON ") + j.type_name() + ", expected an object");
    return j;
}

/// The keys every architecture has: sizes, attention, norm, RoPE, activation, embeddings, special tokens.
void readCommonKeys(const Keys& k, ModelConfig& c, const ArchDefaults& d)
{
    c.torchDtype = k.optString("torch_dtype").value_or(k.optString("dtype").value_or(""));
    c.hiddenSize = k.reqSize("hidden_size");
    c.numLayers = k.reqSize("num_hidden_layers", kMaxCount);
    c.vocabSize = k.reqSize("vocab_size");
    c.intermediateSize = k.reqSize("intermediate_size");
    readAttention(k, c);
    c.maxPositionEmbeddings = k.sizeOr("max_position_embeddings", d.maxPositions, INT64_MAX);
    c.rmsNormEps = k.doubleOr("rms_norm_eps", d.rmsNormEps);
    if (!(c.rmsNormEps > 0.0))
        k.fail(detail::concat("key 'rms_norm_eps' must be positive, got ", c.rmsNormEps));
    checkRope(k, c, d);
    checkSilu(k);
    c.tieWordEmbeddings = k.boolOr("tie_word_embeddings", false);
    c.bosTokenId = k.has("bos_token_id") ? k.tokenId("bos_token_id") : d.bos;
    c.eosTokenId = k.has("eos_token_id") ? k.tokenId("eos_token_id") : d.eos;
}

void readSlidingWindow(const Keys& k, ModelConfig& c)
{
    if (const auto w = k.optInt("sliding_window"))
        noteSlidingWindow(c, k.bounded("sliding_window", *w, 1, INT64_MAX));
}

/// Qwen2-MoE: a sigmoid-gated shared expert; dense layers by list and step.
void readQwen2Moe(const Keys& k, ModelConfig& c)
{
    readRouting(k, c, "num_experts");
    c.moeIntermediateSize = k.reqSize("moe_intermediate_size");
    c.sharedIntermediateSize = k.reqSize("shared_expert_intermediate_size");
    c.sharedExpertGate = true;
    c.normTopkProb = k.boolOr("norm_topk_prob", false);
    c.decoderSparseStep = k.sizeOr("decoder_sparse_step", 1, kMaxCount);
    c.mlpOnlyLayers = k.intList("mlp_only_layers");
    // Hard-wired true in older transformers; v5 spells it qkv_bias.
    c.attentionBias = k.boolOr("qkv_bias", k.boolOr("attention_bias", true));
}

/// Qwen3-MoE: per-head q/k norms; dense layers by list and step.
void readQwen3Moe(const Keys& k, ModelConfig& c)
{
    readRouting(k, c, "num_experts");
    c.moeIntermediateSize = k.reqSize("moe_intermediate_size");
    c.normTopkProb = k.boolOr("norm_topk_prob", false);
    c.decoderSparseStep = k.sizeOr("decoder_sparse_step", 1, kMaxCount);
    c.mlpOnlyLayers = k.intList("mlp_only_layers");
    c.attentionBias = c.oProjBias = k.boolOr("attention_bias", false);
    c.qkNorm = QkNorm::PerHead;
}

void readOlmoe(const Keys& k, ModelConfig& c)
{
    readRouting(k, c, "num_experts");
    c.moeIntermediateSize = c.intermediateSize;
    c.normTopkProb = k.boolOr("norm_topk_prob", false);
    c.attentionBias = c.oProjBias = k.boolOr("attention_bias", false);
    c.qkNorm = QkNorm::Whole;
    if (const auto clip = k.optDouble("clip_qkv")) {
        if (!(*clip > 0.0))
            k.fail(detail::concat("key 'clip_qkv' must be positive or null, got ", *clip));
        c.clipQkv = *clip;
    }
}

void readDeepseekMoe(const Keys& k, ModelConfig& c)
{
    readRouting(k, c, "n_routed_experts");
    c.moeIntermediateSize = k.reqSize("moe_intermediate_size");
    c.numSharedExperts = k.bounded("n_shared_experts", k.intOr("n_shared_experts", 0), 0, kMaxCount);
    c.sharedIntermediateSize = c.moeIntermediateSize * c.numSharedExperts;
    c.normTopkProb = k.boolOr("norm_topk_prob", false);
    c.topkNormEps = 1e-20;
    c.firstKDenseReplace = k.bounded("first_k_dense_replace", k.intOr("first_k_dense_replace", 0), 0, kMaxCount);
    c.moeLayerFreq = k.sizeOr("moe_layer_freq", 1, kMaxCount);
    const std::string scoring = k.optString("scoring_func").value_or("softmax");
    if (scoring != "softmax")
        k.fail("scoring_func '" + scoring + "' is not supported (DeepSeek v1 routers use 'softmax')");
    c.attentionBias = c.oProjBias = k.boolOr("attention_bias", false);
}

/// What each architecture adds: routing, expert widths, biases, q/k norms, sliding windows.
void readArchKeys(const Keys& k, ModelConfig& c)
{
    switch (c.arch) {
    case Arch::Mixtral:
        readRouting(k, c, "num_local_experts");
        c.moeIntermediateSize = c.intermediateSize;
        c.normTopkProb = true; // MixtralSparseMoeBlock always renormalizes; there is no key
        readSlidingWindow(k, c);
        break;
    case Arch::Qwen2Moe: readQwen2Moe(k, c); break;
    case Arch::Qwen3Moe: readQwen3Moe(k, c); break;
    case Arch::Olmoe: readOlmoe(k, c); break;
    case Arch::DeepseekMoe: readDeepseekMoe(k, c); break;
    case Arch::Llama:
        c.attentionBias = c.oProjBias = k.boolOr("attention_bias", false);
        if (k.boolOr("mlp_bias", false))
            k.fail("mlp_bias true is not supported (MLP projections with bias)");
        break;
    case Arch::Mistral: readSlidingWindow(k, c); break;
    case Arch::Qwen2: c.attentionBias = k.boolOr("qkv_bias", k.boolOr("attention_bias", true)); break;
    }
    if (c.arch == Arch::Qwen2 || c.arch == Arch::Qwen2Moe || c.arch == Arch::Qwen3Moe) {
        if (k.boolOr("use_sliding_window", false))
            readSlidingWindow(k, c);
    }
}

/// mlp_only_layers and moewb_dropped_moe_layers name real (MoE) layers; a note when no layer is MoE.
void checkLayerLists(const Keys& k, ModelConfig& c)
{
    for (int64_t l : c.mlpOnlyLayers) {
        if (l < 0 || l >= c.numLayers)
            k.fail(detail::concat("mlp_only_layers lists layer ", l, ", outside 0..", c.numLayers - 1,
                                  " (num_hidden_layers ", c.numLayers, ")"));
    }
    c.droppedMoeLayers = k.intList("moewb_dropped_moe_layers"); // written by `moewb trim` (Layer Drop)
    for (int64_t l : c.droppedMoeLayers)
        if (!c.isMoeLayer(l))
            k.fail(detail::concat("moewb_dropped_moe_layers lists layer ", l, ", which is not a MoE layer"));
    if (c.isMoe()) {
        bool any = false;
        for (int64_t l = 0; l < c.numLayers && !any; ++l)
            any = c.isMoeLayer(l);
        if (!any)
            c.notes.push_back("no layer is MoE with these settings (mlp_only_layers / decoder_sparse_step / "
                              "first_k_dense_replace / moe_layer_freq)");
    }
}

} // namespace

const char* archName(Arch a)
{
    for (const auto& e : kArchs)
        if (e.arch == a)
            return e.className;
    return "?";
}

ModelConfig parseConfigJson(const std::string& jsonText, const std::string& where)
{
    const json j = parseConfigObject(jsonText, where);
    const Keys k(j, where);
    ModelConfig c;
    c.arch = detectArch(k, c);
    readCommonKeys(k, c, classDefaults(c.arch));
    readArchKeys(k, c);
    checkLayerLists(k, c);
    return c;
}

ModelConfig loadConfig(const std::string& pathOrDir)
{
    std::error_code ec;
    fs::path p(pathOrDir);
    if (!fs::exists(p, ec))
        throwCannotAccess(pathOrDir);
    if (fs::is_directory(p, ec))
        p /= "config.json";
    const std::string path = p.string();
    if (!fs::exists(p, ec))
        throwCannotAccess(path, "no such file");
    return parseConfigJson(readFileBytes(path), path);
}

// ---- layer kinds and tensor names ---------------------------------------------------------------

bool ModelConfig::isMoeDropped(int64_t layer) const
{
    return std::find(droppedMoeLayers.begin(), droppedMoeLayers.end(), layer) != droppedMoeLayers.end();
}

bool ModelConfig::isMoeLayer(int64_t layer) const
{
    if (numExperts <= 0 || layer < 0 || layer >= numLayers)
        return false;
    switch (arch) {
    case Arch::Mixtral:
    case Arch::Olmoe:
        return true;
    case Arch::Qwen2Moe:
    case Arch::Qwen3Moe:
        return std::find(mlpOnlyLayers.begin(), mlpOnlyLayers.end(), layer) == mlpOnlyLayers.end()
            && (layer + 1) % std::max<int64_t>(decoderSparseStep, 1) == 0;
    case Arch::DeepseekMoe:
        return layer >= firstKDenseReplace && layer % std::max<int64_t>(moeLayerFreq, 1) == 0;
    case Arch::Llama:
    case Arch::Mistral:
    case Arch::Qwen2:
        return false;
    }
    return false;
}

namespace {
/// "gate"/"up"/"down" → index 0..2; anything else is a programming error.
int roleIndex(const char* role)
{
    const std::string r = role ? role : "";
    if (r == "gate")
        return 0;
    if (r == "up")
        return 1;
    if (r == "down")
        return 2;
    throw Error(detail::concat("internal error: MLP role '", r, "' (expected gate, up or down)"));
}
constexpr const char* kProjNames[] = {"gate_proj", "up_proj", "down_proj"};
constexpr const char* kMixtralNames[] = {"w1", "w3", "w2"};
} // namespace

std::string ModelConfig::layerPrefix(int64_t layer) const
{
    return "model.layers." + std::to_string(layer);
}

std::string ModelConfig::attnLinear(int64_t layer, const char* proj) const
{
    return layerPrefix(layer) + ".self_attn." + proj;
}

std::string ModelConfig::routerName(int64_t layer) const
{
    return layerPrefix(layer) + (arch == Arch::Mixtral ? ".block_sparse_moe.gate" : ".mlp.gate");
}

std::string ModelConfig::expertLinear(int64_t layer, int64_t expert, const char* role) const
{
    const int r = roleIndex(role);
    if (arch == Arch::Mixtral)
        return layerPrefix(layer) + ".block_sparse_moe.experts." + std::to_string(expert) + "." + kMixtralNames[r];
    return layerPrefix(layer) + ".mlp.experts." + std::to_string(expert) + "." + kProjNames[r];
}

std::string ModelConfig::sharedLinear(int64_t layer, const char* role) const
{
    const int r = roleIndex(role);
    return layerPrefix(layer) + (arch == Arch::DeepseekMoe ? ".mlp.shared_experts." : ".mlp.shared_expert.")
        + kProjNames[r];
}

std::string ModelConfig::sharedGateName(int64_t layer) const
{
    return layerPrefix(layer) + ".mlp.shared_expert_gate";
}

std::string ModelConfig::denseLinear(int64_t layer, const char* role) const
{
    return layerPrefix(layer) + ".mlp." + kProjNames[roleIndex(role)];
}

// ---- linears, tensors, parameter count ----------------------------------------------------------

const char* linearRoleName(LinearRole r)
{
    switch (r) {
    case LinearRole::Q: return "q_proj";
    case LinearRole::K: return "k_proj";
    case LinearRole::V: return "v_proj";
    case LinearRole::O: return "o_proj";
    case LinearRole::Router: return "router";
    case LinearRole::SharedGate: return "shared_expert_gate";
    case LinearRole::ExpertGate: return "expert.gate";
    case LinearRole::ExpertUp: return "expert.up";
    case LinearRole::ExpertDown: return "expert.down";
    case LinearRole::SharedGateProj: return "shared.gate";
    case LinearRole::SharedUp: return "shared.up";
    case LinearRole::SharedDown: return "shared.down";
    case LinearRole::DenseGate: return "dense.gate";
    case LinearRole::DenseUp: return "dense.up";
    case LinearRole::DenseDown: return "dense.down";
    }
    return "?";
}

namespace {

void appendLayerLinears(const ModelConfig& cfg, int64_t l, std::vector<LinearInfo>& out)
{
    const int64_t h = cfg.hiddenSize, qDim = cfg.numHeads * cfg.headDim, kvDim = cfg.numKvHeads * cfg.headDim;
    auto add = [&](std::string name, int64_t layer, int64_t expert, LinearRole role, int64_t in, int64_t outF,
                   bool bias = false) {
        out.push_back(LinearInfo{std::move(name), layer, expert, role, in, outF, bias});
    };
    auto mlp = [&](int64_t layer, int64_t expert, int64_t width, LinearRole g, LinearRole u, LinearRole d,
                   auto nameOf) {
        add(nameOf("gate"), layer, expert, g, h, width);
        add(nameOf("up"), layer, expert, u, h, width);
        add(nameOf("down"), layer, expert, d, width, h);
    };
    add(cfg.attnLinear(l, "q_proj"), l, -1, LinearRole::Q, h, qDim, cfg.attentionBias);
    add(cfg.attnLinear(l, "k_proj"), l, -1, LinearRole::K, h, kvDim, cfg.attentionBias);
    add(cfg.attnLinear(l, "v_proj"), l, -1, LinearRole::V, h, kvDim, cfg.attentionBias);
    add(cfg.attnLinear(l, "o_proj"), l, -1, LinearRole::O, qDim, h, cfg.oProjBias);
    if (cfg.isMoeLayer(l)) {
        add(cfg.routerName(l), l, -1, LinearRole::Router, h, cfg.numExperts);
        for (int64_t e = 0; e < cfg.numExperts; ++e)
            mlp(l, e, cfg.moeIntermediateSize, LinearRole::ExpertGate, LinearRole::ExpertUp,
                LinearRole::ExpertDown, [&](const char* r) { return cfg.expertLinear(l, e, r); });
        if (cfg.hasSharedExpert()) {
            mlp(l, -1, cfg.sharedIntermediateSize, LinearRole::SharedGateProj, LinearRole::SharedUp,
                LinearRole::SharedDown, [&](const char* r) { return cfg.sharedLinear(l, r); });
            if (cfg.sharedExpertGate)
                add(cfg.sharedGateName(l), l, -1, LinearRole::SharedGate, h, 1);
        }
    } else {
        mlp(l, -1, cfg.intermediateSize, LinearRole::DenseGate, LinearRole::DenseUp, LinearRole::DenseDown,
            [&](const char* r) { return cfg.denseLinear(l, r); });
    }
}

void appendLayerTensors(const ModelConfig& cfg, int64_t l, std::vector<TensorSpec>& out)
{
    const int64_t h = cfg.hiddenSize;
    const std::string p = cfg.layerPrefix(l);
    out.push_back({p + ".input_layernorm.weight", {h}});
    out.push_back({p + ".post_attention_layernorm.weight", {h}});
    if (cfg.qkNorm == QkNorm::PerHead) {
        out.push_back({p + ".self_attn.q_norm.weight", {cfg.headDim}});
        out.push_back({p + ".self_attn.k_norm.weight", {cfg.headDim}});
    } else if (cfg.qkNorm == QkNorm::Whole) {
        out.push_back({p + ".self_attn.q_norm.weight", {cfg.numHeads * cfg.headDim}});
        out.push_back({p + ".self_attn.k_norm.weight", {cfg.numKvHeads * cfg.headDim}});
    }
    std::vector<LinearInfo> lin;
    appendLayerLinears(cfg, l, lin);
    for (const LinearInfo& li : lin) {
        out.push_back({li.name + ".weight", {li.outFeatures, li.inFeatures}});
        if (li.hasBias)
            out.push_back({li.name + ".bias", {li.outFeatures}});
    }
}

} // namespace

std::vector<LinearInfo> listLinears(const ModelConfig& cfg)
{
    std::vector<LinearInfo> out;
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        appendLayerLinears(cfg, l, out);
    return out;
}

std::vector<TensorSpec> layerTensors(const ModelConfig& cfg, int64_t layer)
{
    std::vector<TensorSpec> out;
    appendLayerTensors(cfg, layer, out);
    return out;
}

std::vector<TensorSpec> expectedTensors(const ModelConfig& cfg)
{
    std::vector<TensorSpec> out;
    const int64_t h = cfg.hiddenSize;
    out.push_back({"model.embed_tokens.weight", {cfg.vocabSize, h}});
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        appendLayerTensors(cfg, l, out);
    out.push_back({"model.norm.weight", {h}});
    if (!cfg.tieWordEmbeddings)
        out.push_back({"lm_head.weight", {cfg.vocabSize, h}});
    return out;
}

int64_t parameterCount(const ModelConfig& cfg)
{
    // Same walk as expectedTensors without materializing names; checked because the sizes come
    // from a file.
    int64_t total = 0;
    auto add = [&](int64_t a, int64_t b) {
        int64_t prod = 0;
        if (__builtin_mul_overflow(a, b, &prod) || __builtin_add_overflow(total, prod, &total))
            throw InputError(archName(cfg.arch), "parameter count overflows 64 bits");
    };
    const int64_t h = cfg.hiddenSize, qDim = cfg.numHeads * cfg.headDim, kvDim = cfg.numKvHeads * cfg.headDim;
    add(cfg.vocabSize, h * (cfg.tieWordEmbeddings ? 1 : 2));
    add(h, 1); // model.norm
    auto mlp = [&](int64_t width, int64_t count) {
        add(3 * count, h * width); // gate, up: [width, h]; down: [h, width]
    };
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        add(2, h);
        if (cfg.qkNorm == QkNorm::PerHead)
            add(2, cfg.headDim);
        else if (cfg.qkNorm == QkNorm::Whole)
            add(qDim + kvDim, 1);
        add(h, 2 * qDim + 2 * kvDim);
        if (cfg.attentionBias)
            add(qDim + 2 * kvDim, 1);
        if (cfg.oProjBias)
            add(h, 1);
        if (cfg.isMoeLayer(l)) {
            add(cfg.numExperts, h);
            mlp(cfg.moeIntermediateSize, cfg.numExperts);
            if (cfg.hasSharedExpert()) {
                mlp(cfg.sharedIntermediateSize, 1);
                if (cfg.sharedExpertGate)
                    add(h, 1);
            }
        } else {
            mlp(cfg.intermediateSize, 1);
        }
    }
    return total;
}

std::string layerRanges(const ModelConfig& cfg, bool moe)
{
    std::string s;
    int64_t l = 0;
    while (l < cfg.numLayers) {
        if (cfg.isMoeLayer(l) != moe) {
            ++l;
            continue;
        }
        int64_t e = l;
        while (e + 1 < cfg.numLayers && cfg.isMoeLayer(e + 1) == moe)
            ++e;
        if (!s.empty())
            s += ",";
        s += std::to_string(l);
        if (e > l)
            s += "-" + std::to_string(e);
        l = e + 1;
    }
    return s;
}

} // namespace moewb
