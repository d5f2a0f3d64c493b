// SPDX-License-Identifier: MIT
// The layer-streaming driver: load one decoder layer, push every sequence through it, free it,
// carry the hidden states to the next layer. Peak memory ≈ one layer's weights + hidden states.
#pragma once

#include "model/forward.h"
#include "model/observer.h"
#include "moewb/core/progress.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace moewb {

/// "auto": the checkpoint's dtype where CPU kernels are fast (bf16, f32); f16 runs in f32.
at::ScalarType computeDtype(const ModelConfig& cfg, const std::string& request);

struct StreamOptions {
    at::ScalarType dtype = at::kFloat;
    int64_t maxBatchTokens = 8192; ///< sequences are batched (same length only) up to this many tokens
    bool streaming = true;         ///< false: load all layers first, then run each batch through all layers
    int64_t activationBits = 16;   ///< < 16: fake-quantize the inputs of quantizable linears per token (LayerWeights)
    /// Run the layers under autograd, from embeddings that require grad: every hidden state the
    /// observer is shown carries its history (all layers' activations stay alive while it is
    /// kept: the Fisher pass, engine/calib/fisher.h). Observers themselves always run without autograd.
    bool recordGraph = false;
};

/// Called with each sequence's final logits [T, V] (fp32), in input order of completion.
using LogitsSink = std::function<void(size_t sequence, const at::Tensor& logits)>;

class GgufWeights;

class Model {
public:
    /// dir: a Hugging Face model directory, or a GGUF file (model/gguf_weights.h: its tensors are
    /// dequantized layer by layer as they stream through).
    explicit Model(const std::string& dir);
    const ModelConfig& config() const { return m_cfg; }
    /// The safetensors checkpoint; InputError for a GGUF model (calibration and quantization
    /// read Hugging Face directories only).
    const Checkpoint& checkpoint() const;
    const std::string& dir() const { return m_dir; }
    bool isGguf() const { return m_gguf != nullptr; }

    /// Runs `sequences` (each a 1-D int64 tensor of token ids) through the model and hands the
    /// logits of each to `sink` (an empty sink skips the final norm and lm_head). The observer (optional) sees every layer's hook points.
    void run(const std::vector<at::Tensor>& sequences, const StreamOptions& opt, const LogitsSink& sink,
             ForwardObserver* obs = nullptr, const ProgressFn& progress = {}) const;

    /// Convenience for tests: ids [B, T] → logits [B, T, V] fp32.
    at::Tensor logits(const at::Tensor& ids, const StreamOptions& opt) const;

private:
    std::string m_dir;
    ModelConfig m_cfg;
    Checkpoint m_ckpt;
    std::shared_ptr<const GgufWeights> m_gguf;

    LayerWeights loadLayer(int64_t layer, at::ScalarType dtype) const;
};

} // namespace moewb
