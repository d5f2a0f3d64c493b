// SPDX-License-Identifier: MIT
// Functional decoder forward built from weight tensors only (no nn::Module), so the same code
// serves streaming inference, calibration with observers and, later, training with autograd.
#pragma once

#include "model/observer.h"
#include "model/weights.h"
#include "moewb/hfconfig/hf_config.h"

#include "moewb/core/error.h"

#include <ATen/ATen.h>

namespace moewb {

/// RMSNorm as HF computes it: in fp32, cast back to the input dtype, then scale by weight.
at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

/// cos/sin tables [T, headDim] for positions 0..T-1 (fp32 math, returned in `dtype`).
struct RopeTables {
    at::Tensor cos, sin;
};
RopeTables ropeTables(const ModelConfig& cfg, int64_t seqLen, at::ScalarType dtype, at::Device device = at::kCPU);

/// x [B, heads, T, D] → x·cos + rotate_half(x)·sin (HF "NeoX" style, not interleaved).
at::Tensor applyRope(const at::Tensor& x, const RopeTables& rope);

/// SwiGLU MLP: down(silu(gate(x)) * up(x)), x [N, H].
at::Tensor swiglu(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& up, const at::Tensor& down);

/// The input of q/k/v as the attention sub-block computes it from h (the normed hidden states;
/// fake-quantized per token when w.activationBits < 16), shown to the observer as q_proj's, k_proj's
/// and v_proj's input. attention() starts with it; a pass that needs only these inputs calls it alone.
at::Tensor observeAttentionInput(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h,
                                 ForwardObserver* obs);

/// Causal grouped-query self-attention sub-block (no residual, no norm): h [B, T, H] → [B, T, H].
at::Tensor attention(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h, const RopeTables& rope,
                     ForwardObserver* obs);

/// The MLP sub-block (no residual, no norm) of layer w.layer: dense, or routed experts + shared
/// experts with each architecture's exact router. h [N, H] → [N, H].
at::Tensor mlpBlock(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h, ForwardObserver* obs);

/// A sub-block's output went NaN/Inf although its weights are finite (activations overflowed the
/// compute dtype). what() = "<module>: output has N NaN and M Inf values ..."; callers that know
/// the model directory rethrow it with the directory in front.
class NonFiniteActivation : public Error {
public:
    using Error::Error;
};

/// One decoder block: x + attn(norm(x)), then + mlp(norm(.)). x [B, T, H] → [B, T, H].
/// Throws NonFiniteActivation when the attention or MLP output is not finite.
at::Tensor decoderLayer(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& x, const RopeTables& rope,
                        ForwardObserver* obs);

/// Final norm and lm_head: hidden [B, T, H] → logits [B, T, V] in fp32.
at::Tensor finalLogits(const ModelConfig& cfg, const HeadWeights& o, const at::Tensor& hidden);

} // namespace moewb
