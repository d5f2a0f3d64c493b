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

/// Written whenever the config has head_dim (Qwen3-MoE always does), as the converter does.
const HyperKey kKeyLengthAlways{"attention.key_length", [](const HyperFacts& f) { return u32(f.cfg.headDim); }};
const HyperKey kValueLengthAlways{"attention.value_length", [](const HyperFacts& f) { return u32(f.cfg.headDim); }};
const HyperKey kRopeScalingNone{"rope.scaling.type",
                                [](const HyperFacts&) -> std::optional<Value> { return Value::str("none"); }};
const HyperKey kLeadingDenseBlockCount{"leading_dense_block_count",
                                       [](const HyperFacts& f) { return u32(f.cfg.firstKDenseReplace); }};
const HyperKey kExpertWeightsScale{"expert_weights_scale",
                                   [](const HyperFacts&) -> std::optional<Value> { return Value::f32(1.0f); }};
const HyperKey kExpertSharedCount{"expert_shared_count", [](const HyperFacts& f) { return u32(f.cfg.numSharedExperts); }};

// --- tensor names shared by the llama.cpp architectures ------------------------------------------------

const NormName kAttnNorm{"attn_norm", "input_layernorm", hiddenWidth};
const NormName kFfnNorm{"ffn_norm", "post_attention_layernorm", hiddenWidth};
const NormName kQNormPerHead{"attn_q_norm", "self_attn.q_norm", [](const ModelConfig& c) { return c.headDim; }};
const NormName kKNormPerHead{"attn_k_norm", "self_attn.k_norm", [](const ModelConfig& c) { return c.headDim; }};
const NormName kQNormWhole{"attn_q_norm", "self_attn.q_norm",
                           [](const ModelConfig& c) { return c.numHeads * c.headDim; }};
const NormName kKNormWhole{"attn_k_norm", "self_attn.k_norm",
                           [](const ModelConfig& c) { return c.numKvHeads * c.headDim; }};
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

std::vector<LinearName> attentionNames(bool permuted)
{
    return {{LinearRole::Q, "attn_q", permuted ? RopeRows::PerHead : RopeRows::Kept},
            {LinearRole::K, "attn_k", permuted ? RopeRows::PerKvHead : RopeRows::Kept},
            {LinearRole::V, "attn_v"},
            {LinearRole::O, "attn_output"}};
}

/// The fields every architecture shares; the callers fill in the rest.
GgufArch base(Arch a, const char* name, bool permuted)
{
    GgufArch g;
    g.arch = a;
    g.name = name;
    g.attnNorms = {kAttnNorm};
    g.attention = attentionNames(permuted);
    g.ffnNorms = {kFfnNorm};
    g.experts = kExperts;
    g.sharedGate = "ffn_gate_inp_shexp";
    g.shared = kShared;
    g.dense = kDense;
    g.caveats = nullptr;
    return g;
}

void qwen3MoeCaveats(const ModelConfig& cfg, std::vector<std::string>& notes)
{
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        if (!cfg.isMoeLayer(l)) {
            notes.push_back("layer " + std::to_string(l) + " is dense (mlp_only_layers / decoder_sparse_step): "
                            "written as blk.N.ffn_{gate,up,down}, which llama.cpp's qwen3moe does not load");
            break;
        }
    if (!cfg.normTopkProb)
        notes.push_back("norm_topk_prob is false, but llama.cpp's qwen3moe always renormalizes the top-k weights");
    notes.push_back("qwen3moe needs a llama.cpp from April 2025 or later (checked with d32676d; "
                    "c392e50 of February 2025 has no qwen3moe)");
}

void olmoeCaveats(const ModelConfig& cfg, std::vector<std::string>& notes)
{
    if (cfg.normTopkProb)
        notes.push_back("norm_topk_prob is true, but llama.cpp's olmoe never renormalizes the top-k weights");
    if (cfg.clipQkv)
        notes.push_back("clip_qkv is set: llama.cpp's olmoe does not clip q/k/v");
    if (cfg.numKvHeads != cfg.numHeads)
        notes.push_back("num_key_value_heads != num_attention_heads: llama.cpp's olmoe expects attn_k_norm as wide as "
                        "the hidden size (no GQA) and refuses this file");
}

void deepseekCaveats(const ModelConfig& cfg, std::vector<std::string>& notes)
{
    if (cfg.normTopkProb)
        notes.push_back("norm_topk_prob is true, but llama.cpp's deepseek never renormalizes the top-k weights");
    if (cfg.moeLayerFreq != 1)
        notes.push_back("moe_layer_freq is not 1: llama.cpp's deepseek treats every layer after the leading dense "
                        "ones as MoE");
}

/// Mixtral as llama.cpp's "llama" with experts: q/k rows permuted as convert_hf_to_gguf.py does.
GgufArch mixtral()
{
    GgufArch g = base(Arch::Mixtral, "llama", true);
    g.hyperParams = {kVocabSize, kContextLength, kEmbeddingLength, kBlockCount, kFeedForwardIsExpertWidth,
                     kHeadCount, kHeadCountKv, kRmsEps, kRopeFreqBase, kRopeDimensionCount, kKeyLength,
                     kValueLength, kExpertCount, kExpertUsedCount};
    return g;
}

/// Qwen2-MoE: q/k/v biases, the shared expert and its sigmoid gate; no permutation.
GgufArch qwen2Moe()
{
    GgufArch g = base(Arch::Qwen2Moe, "qwen2moe", false);
    g.hyperParams = {kVocabSize, kContextLength, kEmbeddingLength, kBlockCount, kFeedForwardLength, kHeadCount,
                     kHeadCountKv, kRmsEps, kRopeFreqBase, kKeyLength, kValueLength, kExpertCount,
                     kExpertUsedCount, kExpertFeedForwardLength, kExpertSharedFeedForwardLength};
    g.caveats = qwen2MoeCaveats;
    return g;
}

/// Qwen3-MoE: per-head q/k RMSNorm (attn_q_norm / attn_k_norm, head_dim wide), head_dim written
/// as key/value length, no shared expert, no permutation (NEOX RoPE).
GgufArch qwen3Moe()
{
    GgufArch g = base(Arch::Qwen3Moe, "qwen3moe", false);
    g.qkNorms = {kQNormPerHead, kKNormPerHead};
    g.hyperParams = {kVocabSize, kContextLength, kEmbeddingLength, kBlockCount, kFeedForwardLength, kHeadCount,
                     kHeadCountKv, kRmsEps, kRopeFreqBase, kExpertCount, kExpertUsedCount, kKeyLengthAlways,
                     kValueLengthAlways, kExpertFeedForwardLength};
    g.caveats = qwen3MoeCaveats;
    return g;
}

/// OLMoE: q/k RMSNorm over the whole projection (ne = heads·head_dim), no permutation (NEOX RoPE);
/// feed_forward_length is the expert width (intermediate_size).
GgufArch olmoe()
{
    GgufArch g = base(Arch::Olmoe, "olmoe", false);
    g.qkNorms = {kQNormWhole, kKNormWhole};
    g.hyperParams = {kVocabSize, kContextLength, kEmbeddingLength, kBlockCount, kFeedForwardLength, kHeadCount,
                     kHeadCountKv, kRopeFreqBase, kRmsEps, kExpertCount, kExpertUsedCount};
    g.caveats = olmoeCaveats;
    return g;
}

/// DeepSeek-MoE (v1): dense first layers (leading_dense_block_count), shared experts merged into one
/// MLP (ffn_*_shexp, expert_shared_count), no shared gate; q/k permuted as for llama (NORM RoPE).
GgufArch deepseek()
{
    GgufArch g = base(Arch::DeepseekMoe, "deepseek", true);
    g.hyperParams = {kContextLength, kEmbeddingLength, kBlockCount, kFeedForwardLength, kHeadCount, kHeadCountKv,
                     kRopeFreqBase, kRmsEps, kExpertUsedCount, kRopeDimensionCount, kRopeScalingNone,
                     kLeadingDenseBlockCount, kVocabSize, kExpertFeedForwardLength, kExpertWeightsScale,
                     kExpertCount, kExpertSharedCount};
    g.caveats = deepseekCaveats;
    return g;
}

const std::vector<GgufArch>& table()
{
    static const std::vector<GgufArch> t = {mixtral(), qwen2Moe(), qwen3Moe(), olmoe(), deepseek()};
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
