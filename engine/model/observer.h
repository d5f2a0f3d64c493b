// SPDX-License-Identifier: MIT
// Hook points of the forward pass. Calibration observers, GPTQ Hessian collectors and tests
// implement this; the forward calls it with tensors it does not keep.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace moewb {

enum class BlockPart { Attention, Mlp, Whole };

struct LayerWeights;

class ForwardObserver {
public:
    virtual ~ForwardObserver() = default;
    /// Input x [N, in] of linear `name` (tensor name without ".weight"). For a routed expert only
    /// the tokens routed to it are passed. `layer`/`expert` locate it (expert -1 if not routed).
    virtual void linearInput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& x) {}
    /// Output y [..., out] of linear `name` (bias included), for the same tokens as linearInput.
    /// Under autograd y carries its history, so an observer may register a gradient hook on it
    /// (the Fisher pass, engine/calib/fisher.cpp). Called only when wantsLinearOutputs().
    virtual void linearOutput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& y) {}
    /// Router of a MoE layer over N tokens: logits [N, E] (model dtype), the chosen experts
    /// [N, k] (int64, in descending weight order) and their final mixing weights [N, k] (fp32).
    virtual void routing(int64_t layer, const at::Tensor& logits, const at::Tensor& experts,
                         const at::Tensor& weights) {}
    /// Hidden states [N, H] entering and leaving one part of decoder block `layer` (residual included).
    virtual void block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out) {}
    /// Called before batch `batch` goes through decoder layer `layer`: `sequences` are the indices
    /// (into Model::run's input) of the sequences in the batch, in row order; every hook call that
    /// follows until the next beginBatch concerns these tokens, flattened row-major ([b, T] → N).
    /// Batches reach every layer in the same order, streaming or not.
    virtual void beginBatch(int64_t layer, int64_t batch, const std::vector<size_t>& sequences) {}
    /// Input h [N, H] of a MoE layer's router and experts (after post_attention_layernorm), with the
    /// layer's weights, so an observer can run experts the router did not choose (correlation probe).
    virtual void moeInput(const LayerWeights& w, const at::Tensor& h) {}
    /// Called once per decoder layer right after its weights were loaded, before any batch passes
    /// it (weight-only statistics such as outlier scores; streaming or not).
    virtual void layerLoaded(const LayerWeights& w) {}
    /// Called once after the last batch has left the last layer.
    virtual void finish() {}
    /// Whether linearInput should be called (it costs a flatten per linear).
    virtual bool wantsLinearInputs() const { return false; }
    /// Whether linearOutput should be called (the MLP then runs gate and up as separate GEMMs).
    virtual bool wantsLinearOutputs() const { return false; }
    /// false: the observer takes what it needs of the routed experts from moeInput and routing
    /// alone and does not use the decoder block's output, so the forward skips the routed experts'
    /// products (their linears are not shown; the MoE block's output then lacks them). The GPTQ
    /// passes with all-tokens or sampled expert balancing (engine/quant/expert_balance.h).
    virtual bool needsRoutedExperts() const { return true; }
};

} // namespace moewb
