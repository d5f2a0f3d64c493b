// SPDX-License-Identifier: MIT
// Hugging Face config.json for the supported architectures, normalized into one struct, plus the
// list of every linear module (name, shape, role) that later stages (stats, plans, quantizers) key on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moewb {

enum class Arch { Mixtral, Qwen2Moe, Qwen3Moe, DeepseekMoe, Olmoe, Llama, Mistral, Qwen2 };

const char* archName(Arch a); ///< the HF class name, e.g. "MixtralForCausalLM"

/// Where q/k RMSNorm is applied: not at all, per head (Qwen3) or over the whole projection (OLMoE).
enum class QkNorm { None, PerHead, Whole };

struct ModelConfig {
    Arch arch = Arch::Llama;
    std::string architecture; ///< architectures[0] as written
    std::string modelType;    ///< model_type as written
    std::string torchDtype;   ///< torch_dtype / dtype as written ("bfloat16"), may be empty

    int64_t hiddenSize = 0;
    int64_t intermediateSize = 0;       ///< dense MLP width (Mixtral: expert width)
    int64_t moeIntermediateSize = 0;    ///< routed expert width
    int64_t sharedIntermediateSize = 0; ///< shared expert width (0: none)
    int64_t numLayers = 0;
    int64_t numHeads = 0;
    int64_t numKvHeads = 0;
    int64_t headDim = 0;
    int64_t vocabSize = 0;
    int64_t maxPositionEmbeddings = 0;

    int64_t numExperts = 0; ///< routed experts per MoE layer (0: dense model)
    int64_t topK = 0;
    bool normTopkProb = false;    ///< renormalize the top-k weights (Mixtral: always true)
    double topkNormEps = 0.0;     ///< added to the denominator (DeepSeek v1: 1e-20)
    bool sharedExpertGate = false; ///< Qwen2-MoE: sigmoid(h · w) scales the shared expert
    int64_t numSharedExperts = 0;  ///< DeepSeek n_shared_experts (merged into one MLP)

    // Which layers are MoE.
    int64_t firstKDenseReplace = 0; ///< DeepSeek
    int64_t moeLayerFreq = 1;       ///< DeepSeek
    int64_t decoderSparseStep = 1;  ///< Qwen
    std::vector<int64_t> mlpOnlyLayers;
    /// MoE sub-layers removed by `moewb trim` (Layer Drop): moewb-specific config.json key
    /// "moewb_dropped_moe_layers". Their routed (and shared) experts' down_proj are zero, so HF loaders
    /// compute h + 0; moewb's forward skips the sub-layer (docs/trimming.md).
    std::vector<int64_t> droppedMoeLayers;

    double rmsNormEps = 1e-6;
    double ropeTheta = 10000.0;
    bool tieWordEmbeddings = false;
    bool attentionBias = false; ///< q/k/v bias (Qwen2, Qwen2-MoE)
    bool oProjBias = false;
    QkNorm qkNorm = QkNorm::None;
    std::optional<double> clipQkv; ///< OLMoE
    std::optional<int64_t> bosTokenId;
    std::optional<int64_t> eosTokenId; ///< the first one when config.json lists several
    std::optional<int64_t> slidingWindow; ///< set only when the model uses it: keys j with i - j >= window are masked
    /// Things the user should know that are not errors, one sentence each (e.g. an ignored sliding window).
    std::vector<std::string> notes;

    bool isMoe() const { return numExperts > 0; }
    bool isMoeLayer(int64_t layer) const;
    bool isMoeDropped(int64_t layer) const; ///< listed in droppedMoeLayers
    bool hasSharedExpert() const { return sharedIntermediateSize > 0; }

    // Tensor names (without ".weight"), following each architecture's HF checkpoint layout.
    std::string layerPrefix(int64_t layer) const;                 ///< "model.layers.3"
    std::string attnLinear(int64_t layer, const char* proj) const; ///< proj: "q_proj".."o_proj"
    std::string routerName(int64_t layer) const;                  ///< "...block_sparse_moe.gate" / "...mlp.gate"
    /// role: "gate", "up" or "down" (Mixtral: w1 / w3 / w2).
    std::string expertLinear(int64_t layer, int64_t expert, const char* role) const;
    std::string sharedLinear(int64_t layer, const char* role) const; ///< shared_expert / shared_experts
    std::string sharedGateName(int64_t layer) const;                ///< Qwen2-MoE shared_expert_gate
    std::string denseLinear(int64_t layer, const char* role) const; ///< "...mlp.gate_proj"
};

/// Parses MODEL_DIR/config.json (or a path to a config.json). Unknown architecture, a missing
/// required key, a wrong type or contradictory values → InputError naming the file and the key.
ModelConfig loadConfig(const std::string& pathOrDir);
ModelConfig parseConfigJson(const std::string& jsonText, const std::string& where);

enum class LinearRole {
    Q, K, V, O,          // attention
    Router,              // MoE router (never quantized by default)
    SharedGate,          // Qwen2-MoE shared_expert_gate
    ExpertGate, ExpertUp, ExpertDown,
    SharedGateProj, SharedUp, SharedDown,
    DenseGate, DenseUp, DenseDown,
};
const char* linearRoleName(LinearRole r); ///< "q_proj", "expert.gate", ...

struct LinearInfo {
    std::string name; ///< tensor name without ".weight"
    int64_t layer = -1;
    int64_t expert = -1; ///< routed expert index, -1 otherwise
    LinearRole role = LinearRole::Q;
    int64_t inFeatures = 0;
    int64_t outFeatures = 0;
    bool hasBias = false;
};

/// Every linear of the decoder layers, in layer order, attention first, then router, experts
/// (by index, gate/up/down), shared expert (gate/up/down, then Qwen2-MoE's shared_expert_gate),
/// dense MLP. Excludes embeddings and lm_head.
std::vector<LinearInfo> listLinears(const ModelConfig& cfg);

/// One tensor the checkpoint must hold, with its full name (".weight" / ".bias" included).
struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;
};

/// Every tensor the architecture needs: model.embed_tokens, then per layer the norms, q/k norms and
/// each linear's weight (and bias), then model.norm and lm_head (omitted when tie_word_embeddings).
std::vector<TensorSpec> expectedTensors(const ModelConfig& cfg);
/// The tensors of decoder layer `layer` only, in the order expectedTensors lists them.
std::vector<TensorSpec> layerTensors(const ModelConfig& cfg, int64_t layer);

/// The MoE layers (moe = true) or the dense ones (false) written as ranges, e.g. "1-27" or "0,47";
/// "" if none.
std::string layerRanges(const ModelConfig& cfg, bool moe);

/// Parameter count implied by the config (embeddings, lm_head unless tied, norms, linears).
int64_t parameterCount(const ModelConfig& cfg);

} // namespace moewb
