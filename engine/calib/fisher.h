// SPDX-License-Identifier: MIT
// The Fisher pass of `moewb calibrate --fisher` (docs/allocation.md): the diagonal Fisher
// information at every linear's output, measured layer by layer with one decoder layer in memory.
//
//   1. forward (Model::run, no autograd): LayerInputRecorder keeps every decoder layer's input
//      hidden states and the last layer's output, per batch (tokens × hidden, fp32);
//   2. head: final norm + lm_head under autograd; the loss is the summed cross-entropy against one
//      label per token drawn from the model's own softmax (sampleModelLabels), so E[g gᵀ] is the
//      Gauss-Newton / KL Hessian of the output distribution, not the empirical Fisher;
//   3. from the top layer down: recompute the layer's forward (model/forward.cpp decoderLayer, the
//      same code as inference) under autograd from its stored input, backpropagate the gradient
//      arriving from above, and let GradSquareObserver's hooks add Σ_t g_ti² at every linear's
//      output; the gradient at the layer input goes down to the next layer.
//
// F_i = Σ_t g_ti² / N over all N calibration tokens: a routed expert's gradient exists only on its
// routed tokens, so its routing share is part of F.
#pragma once

#include "model/observer.h"
#include "model/streamer.h"
#include "moewb/core/progress.h"
#include "moewb/stats/stats.h"

#include <ATen/ATen.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace moewb {

/// Keeps the hidden states entering every decoder layer (and leaving the last), per batch.
class LayerInputRecorder : public ForwardObserver {
public:
    struct Batch {
        std::vector<size_t> sequences; ///< Model::run input indices, in row order
        std::vector<at::Tensor> input; ///< [layer] → [rows, H] fp32 (undefined once consumed)
        at::Tensor output;             ///< last layer's output [rows, H] fp32
    };
    explicit LayerInputRecorder(int64_t numLayers);
    void beginBatch(int64_t layer, int64_t batch, const std::vector<size_t>& sequences) override;
    void block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out) override;

    std::vector<Batch> batches;

private:
    int64_t m_layers;
    size_t m_batch = 0;
};

/// One label per position, drawn from softmax(logits) ([T, V]) with a generator seeded by
/// (seed, sequence): the draw does not depend on how sequences were batched.
at::Tensor sampleModelLabels(const at::Tensor& logits, int64_t seed, size_t sequence);

/// Adds Σ_t g_ti² (double) at the output of every listed linear it sees under autograd.
class GradSquareObserver : public ForwardObserver {
public:
    explicit GradSquareObserver(const std::vector<LinearStats>& linears);
    bool wantsLinearOutputs() const override { return true; }
    void linearOutput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& y) override;
    /// The sums, one [out] double tensor per linear in the constructor's order (undefined: never seen).
    const std::vector<at::Tensor>& sums() const { return m_sums; }

private:
    std::unordered_map<std::string, size_t> m_index;
    std::vector<at::Tensor> m_sums;
};

/// Steps 2 and 3 above on what `rec` recorded from model.run(sequences, ...): fills every
/// LinearStats::fisher of `linears` (listLinears order) and returns the token count N. Consumes
/// the recorded tensors. Reports progress per layer and batch; Cancelled when asked to stop.
int64_t fisherBackward(const Model& model, LayerInputRecorder& rec, int64_t seed, std::vector<LinearStats>& linears,
                       const ProgressFn& progress = {});

} // namespace moewb
