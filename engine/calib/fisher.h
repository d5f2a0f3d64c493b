// SPDX-License-Identifier: MIT
// The Fisher pass of `moewb calibrate --fisher` (docs/allocation.md): the diagonal Fisher
// information at every linear's output, measured layer by layer with one decoder layer in memory.
//
//   1. forward (Model::run): LayerInputRecorder keeps, per batch, the last layer's output and either
//      every decoder layer's input hidden states (tokens × hidden, in the forward's dtype), or,
//      when the forward ran under autograd (StreamOptions::recordGraph, "kept graph"), nothing
//      else: the graph holds what the backward needs;
//   2. head: final norm + lm_head under autograd; the loss is the summed cross-entropy against one
//      label per token drawn from the model's own softmax (sampleModelLabels), so E[g gᵀ] is the
//      Gauss-Newton / KL Hessian of the output distribution, not the empirical Fisher;
//   3. kept graph: one backward per batch from the head through every layer. Otherwise, from the
//      top layer down: recompute the layer's forward (model/forward.cpp decoderLayer, the same code
//      as inference) under autograd from its stored input and backpropagate the gradient arriving
//      from above; the gradient at the layer input goes down to the next layer. Either way
//      GradSquareObserver's hooks add Σ_t g_ti² at every linear's output.
//
// Keeping the graph saves the recomputation (a whole forward) but holds every layer's activations
// for all calibration tokens at once: fisherGraphBytes estimates them, and callers keep the graph
// only when that fits (engine/calib/calibrate.cpp).
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

/// Adds Σ_t g_ti² (double) at the output of every linear of listLinears(cfg) it sees under autograd.
class GradSquareObserver : public ForwardObserver {
public:
    explicit GradSquareObserver(const ModelConfig& cfg);
    bool wantsLinearOutputs() const override { return true; }
    void linearOutput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& y) override;
    /// The sums, one [out] double tensor per linear in listLinears order (undefined: never seen).
    const std::vector<at::Tensor>& sums() const { return m_sums; }

private:
    std::unordered_map<std::string, size_t> m_index;
    std::vector<at::Tensor> m_sums;
};

/// What the Fisher backward needs from the forward, per batch (see the top of this file).
class LayerInputRecorder : public ForwardObserver {
public:
    struct Batch {
        std::vector<size_t> sequences; ///< Model::run input indices, in row order
        std::vector<at::Tensor> input; ///< [layer] → [rows, H] in the forward's dtype (undefined once
                                       ///< consumed; empty with a kept graph)
        at::Tensor output;             ///< last layer's output [rows, H], same dtype (with its history
                                       ///< when the graph is kept)
    };
    /// keepGraph: the forward runs with StreamOptions::recordGraph; the recorder then registers the
    /// gradient hooks during the forward.
    explicit LayerInputRecorder(const ModelConfig& cfg, bool keepGraph = false);
    void beginBatch(int64_t layer, int64_t batch, const std::vector<size_t>& sequences) override;
    void block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out) override;
    bool wantsLinearOutputs() const override { return m_keepGraph; }
    void linearOutput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& y) override;

    bool keepsGraph() const { return m_keepGraph; }
    GradSquareObserver& hooks() { return m_hooks; }

    std::vector<Batch> batches;

private:
    int64_t m_layers;
    bool m_keepGraph;
    GradSquareObserver m_hooks;
    size_t m_batch = 0;
};

/// Bytes of activations a kept graph holds for `tokens` calibration tokens in sequences of
/// `seqLen` through the whole model in `dtype` (an upper estimate: the inputs of every linear and
/// norm, the attention probabilities in fp32 and in the compute dtype, the experts' intermediates).
int64_t fisherGraphBytes(const ModelConfig& cfg, int64_t tokens, int64_t seqLen, at::ScalarType dtype);

/// The most a kept graph may hold: an eighth of the physical memory, at most 4 GiB.
int64_t fisherGraphBudget();

/// One label per position, drawn from softmax(logits) ([T, V]) with a generator seeded by
/// (seed, sequence): the draw does not depend on how sequences were batched.
at::Tensor sampleModelLabels(const at::Tensor& logits, int64_t seed, size_t sequence);

/// Steps 2 and 3 above on what `rec` recorded from model.run(sequences, ...): fills every
/// LinearStats::fisher of `linears` (listLinears order) and returns the token count N. Consumes
/// the recorded tensors. Reports progress per layer and batch; Cancelled when asked to stop.
int64_t fisherBackward(const Model& model, LayerInputRecorder& rec, int64_t seed, std::vector<LinearStats>& linears,
                       const ProgressFn& progress = {});

} // namespace moewb
