// SPDX-License-Identifier: MIT
// Expert-balanced calibration (#25, docs/calibration-coverage.md): a ForwardObserver around an
// InputCollector that feeds routed experts' Hessians with more than their routed tokens, as
// ExpertBalance (moewb/quant/quantize.h) says. Only Hessians change: the forward still routes top-k.
#pragma once

#include "model/observer.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/quant/quantize.h"
#include "quant/input_collector.h"

#include <string>
#include <vector>

namespace moewb {

class DistContext;

class ExpertBalancer : public ForwardObserver {
public:
    /// Balances the routed experts of MoE layer `layer` whose gate or down input `col` collects;
    /// every other linear input goes to `col` unchanged. Inactive (active() false) when there is none.
    /// sampleThreshold: Sampled's τ (≤ 0: 1 / (2k), what quantizeModel uses).
    ExpertBalancer(const ModelConfig& cfg, int64_t layer, InputCollector& col, ExpertBalance mode,
                   int64_t minTokens, double sampleThreshold = 0.0);
    bool active() const { return !m_experts.empty(); }

    bool wantsLinearInputs() const override { return m_col.wantsLinearInputs(); }
    /// all-tokens and sampled build every balanced expert's rows from moeInput and routing (the
    /// routed rows included), so the forward need not run the routed experts.
    bool needsRoutedExperts() const override
    {
        return !(m_mode == ExpertBalance::AllTokens || m_mode == ExpertBalance::Sampled);
    }
    void linearInput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& x) override;
    void moeInput(const LayerWeights& w, const at::Tensor& h) override;
    void routing(int64_t layer, const at::Tensor& logits, const at::Tensor& experts,
                 const at::Tensor& weights) override;

    /// After the last batch, before the collector's all-reduce: sums the routed (and, next-choices,
    /// per-rank) counts over ranks, then next-choices adds the chosen ranks' tokens.
    void finishPass(DistContext* dist, const std::string& what);
    /// Per balanced expert, after the collector's all-reduce.
    std::vector<ExpertCoverage> coverage() const;

private:
    struct Expert {
        int64_t index = 0;
        std::string gate, down; ///< input keys; empty when the collector does not want that input
        int64_t routed = 0;
        std::vector<int64_t> atRank; ///< next-choices: tokens for which it is choice k+1+j
    };
    /// Adds the rows x of expert e's input with weights (undefined: weight 1) to its wanted keys;
    /// the down projection's input is computed from x with the layer's current gate/up weights.
    void addRows(const Expert& e, const at::Tensor& x, const at::Tensor& weights);
    void addNextChoices();

    const ModelConfig& m_cfg;
    int64_t m_layer;
    InputCollector& m_col;
    ExpertBalance m_mode;
    int64_t m_minTokens;
    double m_tau; ///< Sampled: probability at and above which a token is always taken
    int64_t m_ranks = 0; ///< next-choices: balanceRanks(k, E)
    std::vector<Expert> m_experts;
    const LayerWeights* m_w = nullptr;
    at::Tensor m_h; ///< the current batch's MoE input
    /// next-choices: per batch, the MoE input rows [n, H] and their experts at choices k+1..k+m
    /// [n, m], of the rows whose next choices include an expert still short of minTokens.
    std::vector<std::pair<at::Tensor, at::Tensor>> m_batches;
};

} // namespace moewb
