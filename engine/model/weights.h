// SPDX-License-Identifier: MIT
// Bridge from safetensors byte ranges to at::Tensor, and one decoder layer's weights.
#pragma once

#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"

#include <ATen/ATen.h>

#include <string>
#include <unordered_map>

namespace moewb {

at::ScalarType toScalarType(DType d);

/// Copies the tensor's bytes out of the mapping (which may be unaligned) into a new contiguous
/// tensor and converts it to `target` (at::ScalarType::Undefined keeps the stored dtype).
at::Tensor loadTensor(const Checkpoint& ckpt, const std::string& name,
                      at::ScalarType target = at::ScalarType::Undefined);

/// Loads `name` and checks its shape; InputError names the tensor, the expected and actual shape.
at::Tensor loadTensorShaped(const Checkpoint& ckpt, const std::string& name,
                            std::vector<int64_t> shape, at::ScalarType target);

/// The weights of one decoder layer, keyed by full tensor name ("model.layers.3.self_attn.q_proj.weight").
struct LayerWeights {
    int64_t layer = -1;
    std::unordered_map<std::string, at::Tensor> tensors;
    /// The forward fake-quantizes the input of every quantizable linear of this layer per token
    /// to this many bits (model/actquant.h); 16 = off. Set by Model::run from StreamOptions.
    int64_t activationBits = 16;

    const at::Tensor& get(const std::string& name) const; ///< throws if absent
    at::Tensor opt(const std::string& name) const;        ///< undefined tensor if absent
    int64_t bytes() const;
};

/// Loads every tensor of decoder layer `layer` that the architecture uses, shape-checked, as `dtype`.
LayerWeights loadLayerWeights(const ModelConfig& cfg, const Checkpoint& ckpt, int64_t layer,
                              at::ScalarType dtype);

/// The token embedding [V, H]. Loaded on its own so the streamer can free it after the lookup.
at::Tensor loadEmbedding(const ModelConfig& cfg, const Checkpoint& ckpt, at::ScalarType dtype);

/// Final norm and lm_head (tied: the embedding matrix), loaded only after the last layer.
struct HeadWeights {
    at::Tensor norm;   ///< [H]
    at::Tensor lmHead; ///< [V, H]
};
HeadWeights loadHeadWeights(const ModelConfig& cfg, const Checkpoint& ckpt, at::ScalarType dtype);

} // namespace moewb
