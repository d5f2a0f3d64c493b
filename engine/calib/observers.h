// SPDX-License-Identifier: MIT
// The calibration observers (#6). Each implements ForwardObserver and fills part of CalibStats.
//
// Note [Batch-invariant accumulation]: Model::run batches sequences by length, but the order in
// which tokens reach a hook (batches in order, rows row-major, a routed expert's tokens ascending)
// is the same for every maxBatchTokens and with or without streaming. Every floating-point sum
// here is therefore a plain sequential loop over tokens in arrival order (parallelised only across
// independent outputs, never across the tokens of one sum), and never a torch reduction over the
// token axis, whose split would depend on the batch size. Given a bitwise batch-invariant forward,
// the statistics are then bitwise identical for any batching; counts are exact in any case.
#pragma once

#include "model/observer.h"
#include "model/weights.h"
#include "moewb/stats/stats.h"
#include "moewb/dist/dist.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace moewb {

/// Where each calibration token sits: sequence s (Model::run's input index) covers global token
/// indices [offset[s], offset[s] + length[s]); domain[global] is its domain (-1: none).
struct TokenLayout {
    std::vector<int64_t> offset;
    std::vector<int64_t> length;
    std::vector<int32_t> domain; ///< empty when the run has no domains
    int64_t numDomains = 0;
};

/// Shared batch bookkeeping: which sequences the current rows belong to.
class BatchTracker : public ForwardObserver {
public:
    explicit BatchTracker(const TokenLayout& layout)
        : m_layout(layout)
    {
    }
    void beginBatch(int64_t layer, int64_t batch, const std::vector<size_t>& sequences) override
    {
        m_layer = layer;
        m_batch = batch;
        m_members = sequences;
    }

protected:
    /// Global token index of flattened row r of the current batch ([b, T] → N rows).
    int64_t globalToken(int64_t r, int64_t rows) const
    {
        const int64_t t = rows / int64_t(m_members.size());
        return m_layout.offset[m_members[size_t(r / t)]] + r % t;
    }
    const TokenLayout& m_layout;
    int64_t m_layer = -1;
    int64_t m_batch = -1;
    std::vector<size_t> m_members;
};

/// Expert usage, top-1, weight and probability mass, entropy, per-domain counts, co-activation
/// and cross-layer transitions of every MoE layer.
class RoutingObserver : public BatchTracker {
public:
    RoutingObserver(const ModelConfig& cfg, const TokenLayout& layout);
    void routing(int64_t layer, const at::Tensor& logits, const at::Tensor& experts, const at::Tensor& weights) override;
    /// Fills layers[l].router for every MoE layer (layers must already be sized and numbered).
    void fill(std::vector<LayerStats>& layers) const;
    /// Distributed runs (#15): adds every accumulator (all plain sums) to r, for an exact
    /// all-reduce before fill().
    void reduceWith(ReduceList& r);

private:
    struct Acc {
        int64_t tokens = 0;
        std::vector<int64_t> count, top1, domain, coact, trans;
        std::vector<double> weightMass, probMass;
        double entropySum = 0.0;
    };
    const ModelConfig& m_cfg;
    std::vector<int64_t> m_nextMoe; ///< per layer: next MoE layer or -1
    std::vector<int64_t> m_prevMoe; ///< per layer: previous MoE layer or -1
    std::map<int64_t, Acc> m_acc;
    /// Per batch: the top-k sets [N * K] the batch's tokens got in the last MoE layer they passed.
    std::map<int64_t, std::pair<int64_t, std::vector<int16_t>>> m_lastTop;
};

/// Mean cos(in, out) over tokens for the attention part, the MLP part and the whole block.
class BlockCosineObserver : public ForwardObserver {
public:
    explicit BlockCosineObserver(int64_t numLayers);
    void block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out) override;
    void fill(std::vector<LayerStats>& layers) const;
    void reduceWith(ReduceList& r);

private:
    struct Acc {
        double sum[3] = {0.0, 0.0, 0.0};
        int64_t tokens[3] = {0, 0, 0};
    };
    std::vector<Acc> m_acc;
};

/// Per linear: tokens seen, per-input-channel abs-max (fp32) and sum of squares (double).
class LinearStatsObserver : public ForwardObserver {
public:
    explicit LinearStatsObserver(const std::vector<LinearInfo>& linears);
    bool wantsLinearInputs() const override { return true; }
    void linearInput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& x) override;
    /// Fills tokens / actAbsMax / actSqMean of stats (same order as the constructor's list).
    void fill(std::vector<LinearStats>& stats) const;
    /// Token counts and sums of squares are summed, abs-maxima maxed (unobserved linears join
    /// with zeros, which neither changes).
    void reduceWith(ReduceList& r);

private:
    struct Acc {
        int64_t tokens = 0;
        std::vector<float> absMax;
        std::vector<double> sqSum;
    };
    std::unordered_map<std::string, size_t> m_index;
    std::vector<Acc> m_acc;
    std::vector<int64_t> m_inFeatures;
};

/// Weight outlier scores of every linear, computed when its layer's weights are loaded. When the
/// compute dtype is narrower than the stored one (f32 checkpoint run in bf16) the weight is read
/// again from the checkpoint, one tensor at a time, so the score never depends on --dtype.
class OutlierObserver : public ForwardObserver {
public:
    OutlierObserver(const std::vector<LinearInfo>& linears, const Checkpoint& ckpt, double eps);
    void layerLoaded(const LayerWeights& w) override;
    void fill(std::vector<LinearStats>& stats) const;

private:
    const std::vector<LinearInfo>& m_linears;
    const Checkpoint& m_ckpt;
    double m_eps;
    std::vector<float> m_score;
    std::vector<int64_t> m_column;
};

/// Inter-expert output correlation on the probe tokens (the first P global tokens): every routed
/// expert runs on every probe token. Sufficient statistics per MoE layer, all plain sums (so runs
/// on disjoint token sets add up): n probe tokens, S[e, c] = Σ_t y_e,t,c and the Gram matrix
/// G[i, j] = Σ_t Σ_c y_i,t,c · y_j,t,c, in double. Reported as Pearson correlation of the two
/// experts' [tokens × hidden] outputs after removing each expert's per-channel mean over tokens:
///   C_ij = (G_ij − Σ_c S_ic S_jc / n) / sqrt((G_ii − Σ_c S_ic² / n)(G_jj − Σ_c S_jc² / n)).
class CorrelationProbe : public BatchTracker {
public:
    CorrelationProbe(const ModelConfig& cfg, const TokenLayout& layout, int64_t probeTokens);
    void moeInput(const LayerWeights& w, const at::Tensor& h) override;
    void fill(std::vector<LayerStats>& layers) const;
    /// n, S and G of every MoE layer are summed (layers a rank saw no probe token of join with
    /// zeros); the correlation is computed from the reduced sums in fill(), never averaged.
    void reduceWith(ReduceList& r);
    /// Drops layers that no rank saw a probe token of (call after the reduction ran).
    void dropEmpty();
    /// Tokens per chunk of experts run together; chunks never cross a sequence, so they are the
    /// same for any batching.
    static constexpr int64_t kChunk = 128;

private:
    struct Acc {
        int64_t tokens = 0;
        at::Tensor gram; ///< [E, E] double
        at::Tensor sum;  ///< [E, H] double
    };
    const ModelConfig& m_cfg;
    int64_t m_probe;
    std::map<int64_t, Acc> m_acc;
};

/// Forwards every hook to several observers, in order.
class FanoutObserver : public ForwardObserver {
public:
    void add(ForwardObserver* o)
    {
        if (o)
            m_obs.push_back(o);
    }
    void linearInput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& x) override
    {
        for (auto* o : m_obs)
            if (o->wantsLinearInputs())
                o->linearInput(layer, expert, name, x);
    }
    void routing(int64_t layer, const at::Tensor& logits, const at::Tensor& experts, const at::Tensor& weights) override
    {
        for (auto* o : m_obs)
            o->routing(layer, logits, experts, weights);
    }
    void block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out) override
    {
        for (auto* o : m_obs)
            o->block(layer, part, in, out);
    }
    void beginBatch(int64_t layer, int64_t batch, const std::vector<size_t>& sequences) override
    {
        for (auto* o : m_obs)
            o->beginBatch(layer, batch, sequences);
    }
    void moeInput(const LayerWeights& w, const at::Tensor& h) override
    {
        for (auto* o : m_obs)
            o->moeInput(w, h);
    }
    void layerLoaded(const LayerWeights& w) override
    {
        for (auto* o : m_obs)
            o->layerLoaded(w);
    }
    void finish() override
    {
        for (auto* o : m_obs)
            o->finish();
    }
    bool wantsLinearInputs() const override
    {
        for (auto* o : m_obs)
            if (o->wantsLinearInputs())
                return true;
        return false;
    }
    void linearOutput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& y) override
    {
        for (auto* o : m_obs)
            if (o->wantsLinearOutputs())
                o->linearOutput(layer, expert, name, y);
    }
    bool wantsLinearOutputs() const override
    {
        for (auto* o : m_obs)
            if (o->wantsLinearOutputs())
                return true;
        return false;
    }
    bool needsRoutedExperts() const override
    {
        for (auto* o : m_obs)
            if (o->needsRoutedExperts())
                return true;
        return m_obs.empty();
    }

private:
    std::vector<ForwardObserver*> m_obs;
};

} // namespace moewb
