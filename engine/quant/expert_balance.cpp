// SPDX-License-Identifier: MIT
// ExpertBalancer: see expert_balance.h and docs/calibration-coverage.md.
#include "quant/expert_balance.h"

#include "model/actquant.h"
#include "model/weights.h"
#include "moewb/core/error.h"
#include "moewb/dist/dist.h"

#include <algorithm>

namespace moewb {

const char* expertBalanceName(ExpertBalance b)
{
    switch (b) {
    case ExpertBalance::NextChoices:
        return "next-choices";
    case ExpertBalance::AllTokens:
        return "all-tokens";
    case ExpertBalance::Sampled:
        return "sampled";
    default:
        return "off";
    }
}

ExpertBalance parseExpertBalance(const std::string& name, const std::string& where)
{
    for (ExpertBalance b :
         {ExpertBalance::Off, ExpertBalance::NextChoices, ExpertBalance::AllTokens, ExpertBalance::Sampled})
        if (name == expertBalanceName(b))
            return b;
    throw InputError(where, "unknown expert balancing '" + name + "' (off, next-choices, all-tokens, sampled)");
}

int64_t balanceRanks(int64_t topK, int64_t numExperts)
{
    return std::max<int64_t>(0, std::min(topK, numExperts - topK));
}

namespace {

/// The input of a quantizable linear as engine/model/forward.cpp's linearInput gives it.
at::Tensor asLinearInput(const LayerWeights& w, const at::Tensor& x)
{
    return w.activationBits < 16 ? fakeQuantActivations(x, w.activationBits) : x;
}

uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// One 64-bit hash per row of the router logits [N, E], rounded to bf16: a token's identity that
/// does not depend on which batch or rank it was in (the same token's logits may differ in their
/// last fp32 bits between batch shapes, which bf16 rounding absorbs but for rare ties).
std::vector<uint64_t> rowHashes(const at::Tensor& logits)
{
    const at::Tensor c = logits.to(at::kBFloat16).contiguous();
    const int64_t n = c.size(0), bytes = c.size(1) * int64_t(c.element_size());
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    std::vector<uint64_t> out(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) {
        uint64_t h = 0xCBF29CE484222325ull; // FNV-1a over the row's bytes, then mixed
        for (int64_t b = 0; b < bytes; ++b)
            h = (h ^ p[t * bytes + b]) * 0x100000001B3ull;
        out[size_t(t)] = mix64(h);
    }
    return out;
}

/// Sampled: the rows of `probs` ([N] for one expert) taken and their weights (Horvitz-Thompson:
/// p ≥ tau always, weight p; below, with probability p / tau, weight tau).
std::pair<at::Tensor, at::Tensor> sampleRows(const at::Tensor& probs, const std::vector<uint64_t>& rows,
                                             int64_t expert, double tau)
{
    const at::Tensor p = probs.to(at::kDouble).contiguous();
    const double* pp = p.data_ptr<double>();
    std::vector<int64_t> keep;
    std::vector<double> weight;
    for (int64_t t = 0; t < p.size(0); ++t) {
        const double pt = pp[t];
        if (pt >= tau) {
            keep.push_back(t);
            weight.push_back(pt);
            continue;
        }
        const double u = double(mix64(rows[size_t(t)] + uint64_t(expert + 1) * 0x9E3779B97F4A7C15ull) >> 11)
            * 0x1.0p-53; // uniform in [0, 1)
        if (u * tau < pt) {
            keep.push_back(t);
            weight.push_back(tau);
        }
    }
    return {at::tensor(keep, at::kLong), at::tensor(weight, at::kDouble)};
}

} // namespace

ExpertBalancer::ExpertBalancer(const ModelConfig& cfg, int64_t layer, InputCollector& col, ExpertBalance mode,
                               int64_t minTokens, double sampleThreshold)
    : m_cfg(cfg)
    , m_layer(layer)
    , m_col(col)
    , m_mode(mode)
    , m_minTokens(minTokens)
    , m_tau(sampleThreshold > 0 ? sampleThreshold : 1.0 / (2.0 * double(std::max<int64_t>(1, cfg.topK))))
{
    if (!cfg.isMoeLayer(layer))
        return;
    m_ranks = balanceRanks(cfg.topK, cfg.numExperts);
    for (int64_t e = 0; e < cfg.numExperts; ++e) {
        Expert x;
        x.index = e;
        const std::string gate = cfg.expertLinear(layer, e, "gate"), down = cfg.expertLinear(layer, e, "down");
        x.gate = col.has(gate) ? gate : std::string();
        x.down = col.has(down) ? down : std::string();
        x.atRank.assign(size_t(m_ranks), 0);
        if (!x.gate.empty() || !x.down.empty())
            m_experts.push_back(std::move(x));
    }
}

void ExpertBalancer::linearInput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& x)
{
    // all-tokens, sampled: the routed rows come again, weighted, with the other tokens (routing()).
    if ((m_mode == ExpertBalance::AllTokens || m_mode == ExpertBalance::Sampled) && expert >= 0)
        return m_col.checkCancel();
    m_col.linearInput(layer, expert, name, x);
}

void ExpertBalancer::moeInput(const LayerWeights& w, const at::Tensor& h)
{
    m_w = &w;
    m_h = h;
}

void ExpertBalancer::routing(int64_t layer, const at::Tensor& logits, const at::Tensor& experts, const at::Tensor&)
{
    MOEWB_ASSERT(layer == m_layer && m_w && m_h.defined() && m_h.size(0) == logits.size(0));
    const int64_t E = m_cfg.numExperts, K = m_cfg.topK;
    const at::Tensor routed = at::bincount(experts.reshape({-1}), {}, E).to(at::kLong).contiguous();
    const int64_t* rc = routed.data_ptr<int64_t>();
    for (Expert& e : m_experts)
        e.routed += rc[e.index];
    if (m_mode == ExpertBalance::Off)
        return;
    // The router's probabilities exactly as engine/model/forward.cpp's mlpBlock computes them.
    const at::Tensor probs = at::softmax(logits.to(at::kFloat), -1);
    if (m_mode == ExpertBalance::AllTokens) {
        for (const Expert& e : m_experts) {
            m_col.checkCancel();
            addRows(e, m_h, probs.select(1, e.index).contiguous());
        }
        return;
    }
    if (m_mode == ExpertBalance::Sampled) {
        const std::vector<uint64_t> rows = rowHashes(logits);
        for (const Expert& e : m_experts) {
            m_col.checkCancel();
            const auto [keep, weight] = sampleRows(probs.select(1, e.index), rows, e.index, m_tau);
            if (keep.numel() > 0)
                addRows(e, m_h.index_select(0, keep), weight);
        }
        return;
    }
    if (m_ranks == 0)
        return;
    const at::Tensor next = std::get<1>(at::topk(probs, K + m_ranks, -1, true, true)).narrow(1, K, m_ranks).contiguous();
    for (int64_t j = 0; j < m_ranks; ++j) {
        const at::Tensor c = at::bincount(next.select(1, j), {}, E).to(at::kLong).contiguous();
        const int64_t* pc = c.data_ptr<int64_t>();
        for (Expert& e : m_experts)
            e.atRank[size_t(j)] += pc[e.index];
    }
    // Only rows that may still be needed are kept: an expert with minTokens routed tokens already
    // (on this rank: a lower bound of the total) never takes next choices.
    at::Tensor shortExpert = at::zeros({E}, at::kBool);
    for (const Expert& e : m_experts)
        if (e.routed < m_minTokens)
            shortExpert[e.index] = true;
    const at::Tensor keep = shortExpert.index_select(0, next.reshape({-1})).view(next.sizes()).any(1).nonzero().reshape({-1});
    if (keep.numel() > 0)
        m_batches.emplace_back(m_h.index_select(0, keep), next.index_select(0, keep));
}

void ExpertBalancer::addRows(const Expert& e, const at::Tensor& x, const at::Tensor& weights)
{
    const LayerWeights& w = *m_w;
    const at::Tensor xq = asLinearInput(w, x);
    auto add = [&](const std::string& key, const at::Tensor& rows) {
        if (weights.defined())
            m_col.at(key).add(rows, weights);
        else
            m_col.at(key).add(rows);
    };
    if (!e.gate.empty())
        add(e.gate, xq);
    if (e.down.empty())
        return;
    const at::Tensor act = at::silu(at::linear(xq, w.get(m_cfg.expertLinear(m_layer, e.index, "gate") + ".weight")))
        * at::linear(xq, w.get(m_cfg.expertLinear(m_layer, e.index, "up") + ".weight"));
    add(e.down, asLinearInput(w, act));
}

void ExpertBalancer::finishPass(DistContext* dist, const std::string& what)
{
    if (dist) {
        ReduceList r;
        for (Expert& e : m_experts) {
            r.sum(&e.routed, 1);
            if (!e.atRank.empty())
                r.sum(e.atRank.data(), e.atRank.size());
        }
        r.run(*dist, what + ": routed tokens per expert");
    }
    if (m_mode == ExpertBalance::NextChoices)
        addNextChoices();
    m_batches.clear();
    m_h = at::Tensor();
}

/// Whole ranks, in rank order, so that the choice depends only on counts summed over all batches
/// (and ranks): independent of batching, and the same on every rank of a distributed run.
void ExpertBalancer::addNextChoices()
{
    for (const Expert& e : m_experts) {
        int64_t have = e.routed, ranks = 0;
        while (have < m_minTokens && ranks < m_ranks)
            have += e.atRank[size_t(ranks++)];
        if (ranks == 0 || have == e.routed)
            continue;
        for (const auto& [h, next] : m_batches) {
            m_col.checkCancel();
            const at::Tensor rows = next.narrow(1, 0, ranks).eq(e.index).any(1).nonzero().reshape({-1});
            if (rows.numel() > 0)
                addRows(e, h.index_select(0, rows), at::Tensor());
        }
    }
}

std::vector<ExpertCoverage> ExpertBalancer::coverage() const
{
    std::vector<ExpertCoverage> out;
    for (const Expert& e : m_experts) {
        const HessianAccumulator& acc = m_col.at(e.gate.empty() ? e.down : e.gate);
        out.push_back({m_layer, e.index, e.routed, acc.rows(), acc.weight()});
    }
    return out;
}

} // namespace moewb
