// SPDX-License-Identifier: MIT
#include "calib/observers.h"

#include "model/forward.h"
#include "moewb/core/error.h"
#include "score/outlier.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace moewb {

// ------------------------------------------------------------------------------------- routing

RoutingObserver::RoutingObserver(const ModelConfig& cfg, const TokenLayout& layout)
    : BatchTracker(layout)
    , m_cfg(cfg)
    , m_nextMoe(size_t(cfg.numLayers), -1)
    , m_prevMoe(size_t(cfg.numLayers), -1)
{
    const int64_t L = cfg.numLayers, E = cfg.numExperts, D = layout.numDomains;
    int64_t prev = -1;
    for (int64_t l = 0; l < L; ++l) {
        if (!cfg.isMoeLayer(l))
            continue;
        m_prevMoe[size_t(l)] = prev;
        if (prev >= 0)
            m_nextMoe[size_t(prev)] = l;
        prev = l;
    }
    for (int64_t l = 0; l < L; ++l) {
        if (!cfg.isMoeLayer(l))
            continue;
        Acc& a = m_acc[l];
        a.count.assign(size_t(E), 0);
        a.top1.assign(size_t(E), 0);
        a.domain.assign(size_t(D * E), 0);
        a.coact.assign(size_t(E * E), 0);
        a.trans.assign(size_t(m_nextMoe[size_t(l)] >= 0 ? E * E : 0), 0);
        a.weightMass.assign(size_t(E), 0.0);
        a.probMass.assign(size_t(E), 0.0);
    }
}

void RoutingObserver::routing(int64_t layer, const at::Tensor& logits, const at::Tensor& experts,
                              const at::Tensor& weights)
{
    auto it = m_acc.find(layer);
    MOEWB_ASSERT(it != m_acc.end() && layer == m_layer);
    Acc& a = it->second;
    const int64_t N = logits.size(0), E = logits.size(1), K = experts.size(1);
    MOEWB_ASSERT(E == m_cfg.numExperts && K == m_cfg.topK);
    const at::Tensor lg = logits.to(at::kFloat).contiguous();
    const at::Tensor ex = experts.to(at::kLong).contiguous();
    const at::Tensor wt = weights.to(at::kFloat).contiguous();
    const float* pl = lg.data_ptr<float>();
    const int64_t* pe = ex.data_ptr<int64_t>();
    const float* pw = wt.data_ptr<float>();

    // Softmax and entropy per token in double; rows are independent, so compute them in parallel
    // and add them up sequentially afterwards (Note [Batch-invariant accumulation]).
    std::vector<double> probs(static_cast<size_t>(N * E)), entropy(static_cast<size_t>(N));
    at::parallel_for(0, N, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* x = pl + r * E;
            double mx = -std::numeric_limits<double>::infinity();
            for (int64_t e = 0; e < E; ++e)
                mx = std::max(mx, double(x[e]));
            double z = 0.0;
            double* p = probs.data() + r * E;
            for (int64_t e = 0; e < E; ++e) {
                p[e] = std::exp(double(x[e]) - mx);
                z += p[e];
            }
            // H = log z − Σ p·(x − max): exact form of −Σ p log p without log(0).
            double dot = 0.0;
            for (int64_t e = 0; e < E; ++e) {
                p[e] /= z;
                dot += p[e] * (double(x[e]) - mx);
            }
            entropy[size_t(r)] = std::log(z) - dot;
        }
    });

    const int64_t D = m_layout.numDomains;
    const int64_t prevLayer = m_prevMoe[size_t(layer)];
    const std::vector<int16_t>* prevTop = nullptr;
    std::vector<int64_t>* trans = nullptr;
    int64_t prevK = 0;
    if (prevLayer >= 0) {
        auto p = m_lastTop.find(m_batch);
        MOEWB_ASSERT(p != m_lastTop.end() && p->second.first == prevLayer);
        prevTop = &p->second.second;
        prevK = int64_t(prevTop->size()) / N;
        trans = &m_acc[prevLayer].trans;
    }
    std::vector<int16_t> top(static_cast<size_t>(N * K));
    for (int64_t r = 0; r < N; ++r) {
        const int64_t* sel = pe + r * K;
        const double* p = probs.data() + r * E;
        for (int64_t e = 0; e < E; ++e)
            a.probMass[size_t(e)] += p[e];
        a.entropySum += entropy[size_t(r)];
        a.top1[size_t(sel[0])] += 1;
        const int32_t dom = D > 0 ? m_layout.domain[size_t(globalToken(r, N))] : -1;
        for (int64_t k = 0; k < K; ++k) {
            const int64_t e = sel[k];
            top[size_t(r * K + k)] = int16_t(e);
            a.count[size_t(e)] += 1;
            a.weightMass[size_t(e)] += double(pw[r * K + k]);
            if (dom >= 0)
                a.domain[size_t(dom * E + e)] += 1;
            for (int64_t k2 = 0; k2 < K; ++k2)
                a.coact[size_t(e * E + sel[k2])] += 1;
        }
        if (trans) {
            const int16_t* pt = prevTop->data() + r * prevK;
            for (int64_t i = 0; i < prevK; ++i)
                for (int64_t k = 0; k < K; ++k)
                    (*trans)[size_t(int64_t(pt[i]) * E + sel[k])] += 1;
        }
    }
    a.tokens += N;
    if (m_nextMoe[size_t(layer)] >= 0)
        m_lastTop[m_batch] = {layer, std::move(top)};
    else
        m_lastTop.erase(m_batch);
}

void RoutingObserver::fill(std::vector<LayerStats>& layers) const
{
    const int64_t E = m_cfg.numExperts, D = m_layout.numDomains;
    for (const auto& [l, a] : m_acc) {
        RouterStats& r = layers[size_t(l)].router;
        r.numExperts = E;
        r.topK = m_cfg.topK;
        r.tokens = a.tokens;
        r.expertTokens = a.count;
        r.expertTop1 = a.top1;
        r.expertWeightMass = a.weightMass;
        r.expertProbMass = a.probMass;
        r.routerEntropy = a.tokens > 0 ? a.entropySum / double(a.tokens) : std::nan("");
        r.domainTokens = Matrix<int64_t>(D, E);
        r.domainTokens.data = a.domain;
        r.coactivation = Matrix<int64_t>(E, E);
        r.coactivation.data = a.coact;
        r.nextMoeLayer = m_nextMoe[size_t(l)];
        r.transitions = Matrix<int64_t>(E, r.nextMoeLayer >= 0 ? E : 0);
        r.transitions.data = a.trans;
        r.deadExperts.clear();
        for (int64_t e = 0; e < E; ++e)
            if (a.count[size_t(e)] == 0)
                r.deadExperts.push_back(e);
    }
}

void RoutingObserver::reduceWith(ReduceList& r)
{
    for (auto& [l, a] : m_acc) {
        r.sum(&a.tokens, 1);
        r.sum(a.count.data(), a.count.size());
        r.sum(a.top1.data(), a.top1.size());
        r.sum(a.domain.data(), a.domain.size());
        r.sum(a.coact.data(), a.coact.size());
        r.sum(a.trans.data(), a.trans.size());
        r.sum(a.weightMass.data(), a.weightMass.size());
        r.sum(a.probMass.data(), a.probMass.size());
        r.sum(&a.entropySum, 1);
    }
}

// ------------------------------------------------------------------------------ block cosine

BlockCosineObserver::BlockCosineObserver(int64_t numLayers)
    : m_acc(size_t(numLayers))
{
}

void BlockCosineObserver::block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out)
{
    const at::Tensor a = in.to(at::kFloat).contiguous(), b = out.to(at::kFloat).contiguous();
    const int64_t N = a.size(0), H = a.size(1);
    const float* pa = a.data_ptr<float>();
    const float* pb = b.data_ptr<float>();
    std::vector<double> cosv(static_cast<size_t>(N));
    at::parallel_for(0, N, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* x = pa + r * H;
            const float* y = pb + r * H;
            double xy = 0.0, xx = 0.0, yy = 0.0;
            for (int64_t c = 0; c < H; ++c) {
                xy += double(x[c]) * double(y[c]);
                xx += double(x[c]) * double(x[c]);
                yy += double(y[c]) * double(y[c]);
            }
            // torch.nn.functional.cosine_similarity's guard against zero vectors (eps 1e-8).
            cosv[size_t(r)] = xy / std::max(std::sqrt(xx * yy), 1e-8);
        }
    });
    Acc& acc = m_acc[size_t(layer)];
    const int p = int(part);
    for (double c : cosv)
        acc.sum[p] += c;
    acc.tokens[p] += N;
}

void BlockCosineObserver::fill(std::vector<LayerStats>& layers) const
{
    for (size_t l = 0; l < m_acc.size(); ++l) {
        const Acc& a = m_acc[l];
        auto mean = [&](int p) { return a.tokens[p] > 0 ? a.sum[p] / double(a.tokens[p]) : std::nan(""); };
        layers[l].cosine = BlockCosine{mean(0), mean(1), mean(2), a.tokens[2]};
    }
}

void BlockCosineObserver::reduceWith(ReduceList& r)
{
    for (Acc& a : m_acc) {
        r.sum(a.sum, 3);
        r.sum(a.tokens, 3);
    }
}

// ---------------------------------------------------------------------------- linear inputs

LinearStatsObserver::LinearStatsObserver(const std::vector<LinearInfo>& linears)
    : m_acc(linears.size())
{
    for (size_t i = 0; i < linears.size(); ++i) {
        m_index.emplace(linears[i].name, i);
        m_inFeatures.push_back(linears[i].inFeatures);
    }
}

namespace {
template <typename T>
void accumulateChannels(const T* x, int64_t rows, int64_t cols, float* absMax, double* sqSum)
{
    // Parallel over channels only: each channel's sum runs over the rows in order.
    at::parallel_for(0, cols, 512, [&](int64_t c0, int64_t c1) {
        for (int64_t r = 0; r < rows; ++r) {
            const T* row = x + r * cols;
            for (int64_t c = c0; c < c1; ++c) {
                const float v = float(row[c]);
                absMax[c] = std::max(absMax[c], std::fabs(v));
                sqSum[c] += double(v) * double(v);
            }
        }
    });
}
} // namespace

void LinearStatsObserver::linearInput(int64_t, int64_t, const std::string& name, const at::Tensor& x)
{
    auto it = m_index.find(name);
    MOEWB_ASSERT(it != m_index.end());
    Acc& a = m_acc[it->second];
    const int64_t in = m_inFeatures[it->second];
    MOEWB_ASSERT(x.dim() == 2 && x.size(1) == in);
    if (a.absMax.empty()) {
        a.absMax.assign(size_t(in), 0.0f);
        a.sqSum.assign(size_t(in), 0.0);
    }
    const at::Tensor xc = x.contiguous();
    if (xc.scalar_type() == at::kFloat)
        accumulateChannels(xc.data_ptr<float>(), xc.size(0), in, a.absMax.data(), a.sqSum.data());
    else if (xc.scalar_type() == at::kBFloat16)
        accumulateChannels(xc.data_ptr<at::BFloat16>(), xc.size(0), in, a.absMax.data(), a.sqSum.data());
    else {
        const at::Tensor xf = xc.to(at::kFloat);
        accumulateChannels(xf.data_ptr<float>(), xf.size(0), in, a.absMax.data(), a.sqSum.data());
    }
    a.tokens += x.size(0);
}

void LinearStatsObserver::fill(std::vector<LinearStats>& stats) const
{
    for (size_t i = 0; i < m_acc.size(); ++i) {
        const Acc& a = m_acc[i];
        LinearStats& s = stats[i];
        s.tokens = a.tokens;
        if (a.tokens == 0)
            continue; // not observed: empty vectors
        s.actAbsMax = a.absMax;
        s.actSqMean.resize(a.sqSum.size());
        for (size_t c = 0; c < a.sqSum.size(); ++c)
            s.actSqMean[c] = float(a.sqSum[c] / double(a.tokens));
    }
}

void LinearStatsObserver::reduceWith(ReduceList& r)
{
    for (size_t i = 0; i < m_acc.size(); ++i) {
        Acc& a = m_acc[i];
        if (a.absMax.empty()) {
            a.absMax.assign(size_t(m_inFeatures[i]), 0.0f);
            a.sqSum.assign(size_t(m_inFeatures[i]), 0.0);
        }
        r.sum(&a.tokens, 1);
        r.max(a.absMax.data(), a.absMax.size());
        r.sum(a.sqSum.data(), a.sqSum.size());
    }
}

// ----------------------------------------------------------------------------- outlier scores

OutlierObserver::OutlierObserver(const std::vector<LinearInfo>& linears, const Checkpoint& ckpt, double eps)
    : m_linears(linears)
    , m_ckpt(ckpt)
    , m_eps(eps)
    , m_score(linears.size(), std::numeric_limits<float>::quiet_NaN())
    , m_column(linears.size(), -1)
{
}

void OutlierObserver::layerLoaded(const LayerWeights& w)
{
    for (size_t i = 0; i < m_linears.size(); ++i) {
        if (m_linears[i].layer != w.layer)
            continue;
        const std::string name = m_linears[i].name + ".weight";
        const at::Tensor& loaded = w.get(name);
        // A GPTQ checkpoint has no X.weight (loadTensor dequantizes X.qweight to float32).
        const at::ScalarType stored = m_ckpt.has(name) ? toScalarType(m_ckpt.info(name).dtype) : at::kFloat;
        // The loaded copy holds the stored values exactly unless it was narrowed.
        const bool exact = loaded.scalar_type() == stored || loaded.scalar_type() == at::kFloat
            || loaded.scalar_type() == at::kDouble;
        const OutlierScore s = weightOutlierScore(exact ? loaded : loadTensor(m_ckpt, name, at::kFloat), m_eps);
        m_score[i] = s.score;
        m_column[i] = s.column;
    }
}

void OutlierObserver::fill(std::vector<LinearStats>& stats) const
{
    for (size_t i = 0; i < stats.size(); ++i) {
        stats[i].outlierScore = m_score[i];
        stats[i].outlierColumn = m_column[i];
    }
}

// ------------------------------------------------------------------------- correlation probe

CorrelationProbe::CorrelationProbe(const ModelConfig& cfg, const TokenLayout& layout, int64_t probeTokens)
    : BatchTracker(layout)
    , m_cfg(cfg)
    , m_probe(probeTokens)
{
}

void CorrelationProbe::moeInput(const LayerWeights& w, const at::Tensor& h)
{
    const int64_t N = h.size(0), T = N / int64_t(m_members.size()), E = m_cfg.numExperts;
    for (size_t j = 0; j < m_members.size(); ++j) {
        const int64_t first = m_layout.offset[m_members[j]];
        const int64_t n = std::min(T, m_probe - first);
        if (n <= 0)
            continue;
        Acc& acc = m_acc[w.layer];
        if (!acc.gram.defined()) {
            acc.gram = at::zeros({E, E}, at::kDouble);
            acc.sum = at::zeros({E, h.size(1)}, at::kDouble);
        }
        for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
            const int64_t m = std::min(kChunk, n - c0);
            const at::Tensor x = h.narrow(0, int64_t(j) * T + c0, m);
            std::vector<at::Tensor> ys;
            for (int64_t e = 0; e < E; ++e)
                ys.push_back(swiglu(x, w.get(m_cfg.expertLinear(w.layer, e, "gate") + ".weight"),
                                    w.get(m_cfg.expertLinear(w.layer, e, "up") + ".weight"),
                                    w.get(m_cfg.expertLinear(w.layer, e, "down") + ".weight")));
            const at::Tensor y = at::stack(ys).to(at::kDouble); // [E, m, H]
            const at::Tensor flat = y.reshape({E, -1});
            acc.gram.add_(at::mm(flat, flat.t()));
            acc.sum.add_(y.sum(1));
            acc.tokens += m;
        }
    }
}

void CorrelationProbe::reduceWith(ReduceList& r)
{
    const int64_t E = m_cfg.numExperts, H = m_cfg.hiddenSize;
    for (int64_t l = 0; l < m_cfg.numLayers; ++l) {
        if (!m_cfg.isMoeLayer(l))
            continue;
        Acc& acc = m_acc[l];
        if (!acc.gram.defined()) {
            acc.gram = at::zeros({E, E}, at::kDouble);
            acc.sum = at::zeros({E, H}, at::kDouble);
        }
        MOEWB_ASSERT(acc.gram.is_contiguous() && acc.sum.is_contiguous());
        r.sum(&acc.tokens, 1);
        r.sum(acc.gram.data_ptr<double>(), size_t(acc.gram.numel()));
        r.sum(acc.sum.data_ptr<double>(), size_t(acc.sum.numel()));
    }
}

void CorrelationProbe::dropEmpty()
{
    for (auto it = m_acc.begin(); it != m_acc.end();)
        it = it->second.tokens == 0 ? m_acc.erase(it) : std::next(it);
}

void CorrelationProbe::fill(std::vector<LayerStats>& layers) const
{
    for (const auto& [l, a] : m_acc) {
        RouterStats& r = layers[size_t(l)].router;
        const int64_t E = a.gram.size(0);
        const at::Tensor cross = at::mm(a.sum, a.sum.t()) / double(a.tokens);
        const at::Tensor cov = a.gram - cross; // centred Gram matrix
        const at::Tensor covc = cov.contiguous();
        const at::Tensor var = cov.diagonal().clone();
        const auto* pc = covc.data_ptr<double>();
        const auto* pv = var.data_ptr<double>();
        r.correlation = Matrix<float>(E, E);
        for (int64_t i = 0; i < E; ++i)
            for (int64_t k = 0; k < E; ++k) {
                const double d = std::sqrt(pv[i] * pv[k]);
                r.correlation.at(i, k) = d > 0.0 ? float(pc[i * E + k] / d) : std::numeric_limits<float>::quiet_NaN();
            }
        r.correlationTokens = a.tokens;
        r.correlationMethod = "pearson";
    }
}

} // namespace moewb
