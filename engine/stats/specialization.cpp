// SPDX-License-Identifier: MIT
// Routing specialization metrics from per-domain expert counts; see Note [Specialization variables]
// in moewb/stats/specialization.h.
#include "moewb/stats/specialization.h"

#include "moewb/core/error.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

namespace moewb {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// -sum p log2 p over the non-zero entries of counts / total.
double entropyBits(const std::vector<double>& counts, double total)
{
    double h = 0.0;
    for (double c : counts)
        if (c > 0)
            h -= (c / total) * std::log2(c / total);
    return h;
}

/// Mean of the non-NaN values, NaN when there are none.
double meanSkippingNaN(const std::vector<double>& v)
{
    double s = 0.0;
    int64_t n = 0;
    for (double x : v)
        if (!std::isnan(x)) {
            s += x;
            ++n;
        }
    return n > 0 ? s / double(n) : kNaN;
}

} // namespace

LayerSpecialization layerSpecialization(const Matrix<int64_t>& counts, int64_t topK, const std::string& where)
{
    MOEWB_CHECK(topK >= 1, where, "top_k is ", topK, ", expected >= 1");
    MOEWB_CHECK(int64_t(counts.data.size()) == counts.rows * counts.cols, where, "domain_tokens has ",
                counts.data.size(), " values for ", counts.rows, " x ", counts.cols);
    const int64_t D = counts.rows, E = counts.cols;
    LayerSpecialization L;
    L.numExperts = E;
    L.topK = topK;
    L.uniformEntropyBits = E > 0 ? std::log2(double(E)) : 0.0;

    std::vector<double> rowSum(size_t(D), 0.0), colSum(size_t(E), 0.0);
    double total = 0.0;
    for (int64_t d = 0; d < D; ++d) {
        int64_t row = 0;
        for (int64_t e = 0; e < E; ++e) {
            const int64_t n = counts.at(d, e);
            MOEWB_CHECK(n >= 0, where, "domain_tokens[", d, "][", e, "] is negative (", n, ")");
            row += n;
            colSum[size_t(e)] += double(n);
        }
        MOEWB_CHECK(row % topK == 0, where, "domain ", d, " has ", row,
                    " expert choices, not a multiple of top_k ", topK);
        rowSum[size_t(d)] = double(row);
        total += double(row);
        L.tokens += row / topK;
    }

    L.domainEntropyBits = total > 0 ? entropyBits(rowSum, total) : 0.0;
    L.expertEntropyBits = total > 0 ? entropyBits(colSum, total) : 0.0;
    double mi = 0.0;
    for (int64_t d = 0; d < D; ++d)
        for (int64_t e = 0; e < E; ++e) {
            const double n = double(counts.at(d, e));
            if (n > 0) // n > 0 implies both marginals > 0
                mi += (n / total) * std::log2(n * total / (rowSum[size_t(d)] * colSum[size_t(e)]));
        }
    // Rounding can leave -1e-17 where the exact value is 0.
    L.mutualInfoBits = std::max(0.0, mi);
    L.normalizedMI = L.domainEntropyBits > 0 ? L.mutualInfoBits / L.domainEntropyBits : kNaN;

    L.domains.resize(size_t(D));
    for (int64_t d = 0; d < D; ++d) {
        DomainSpecialization& s = L.domains[size_t(d)];
        const double row = rowSum[size_t(d)];
        s.tokens = int64_t(row) / topK;
        s.share = total > 0 ? row / total : 0.0;
        if (row <= 0) {
            s.entropyBits = s.topKShare = s.topExpertLift = s.topExpertShare = kNaN;
            continue;
        }
        std::vector<double> p(static_cast<size_t>(E));
        for (int64_t e = 0; e < E; ++e)
            p[size_t(e)] = double(counts.at(d, e));
        s.entropyBits = entropyBits(p, row);
        std::vector<double> sorted = p;
        const int64_t k = std::min(topK, E);
        std::partial_sort(sorted.begin(), sorted.begin() + k, sorted.end(), std::greater<double>());
        double top = 0.0;
        for (int64_t i = 0; i < k; ++i)
            top += sorted[size_t(i)];
        s.topKShare = top / row;
        // lift = P(e|d) / P(e) = (n_de / row) / (colSum_e / total); colSum_e >= n_de > 0 here.
        for (int64_t e = 0; e < E; ++e) {
            const double n = p[size_t(e)];
            if (n <= 0)
                continue;
            const double lift = (n / row) * (total / colSum[size_t(e)]);
            if (s.topExpert < 0 || lift > s.topExpertLift) {
                s.topExpert = e;
                s.topExpertLift = lift;
                s.topExpertShare = n / row;
            }
        }
    }
    return L;
}

ModelSpecialization modelSpecialization(const CalibStats& stats, const std::string& where)
{
    ModelSpecialization m;
    m.domains = stats.provenance.domains;
    MOEWB_CHECK(!m.domains.empty(), where,
                "has no per-domain routing counts (calibrate with data labelled by domain: named files or JSONL \"domain\" fields)");
    for (const LayerStats& l : stats.layers) {
        if (!l.isMoe)
            continue;
        const std::string at = where + ": layer " + std::to_string(l.layer);
        MOEWB_CHECK(l.router.domainTokens.rows == int64_t(m.domains.size())
                        && l.router.domainTokens.cols == l.router.numExperts,
                    at, "domain_tokens is ", l.router.domainTokens.rows, " x ", l.router.domainTokens.cols,
                    ", expected ", m.domains.size(), " x ", l.router.numExperts);
        LayerSpecialization s = layerSpecialization(l.router.domainTokens, l.router.topK, at);
        s.layer = l.layer;
        m.layers.push_back(std::move(s));
    }
    MOEWB_CHECK(!m.layers.empty(), where, "has no MoE layer");

    double mi = 0.0, nmi = 0.0;
    for (const LayerSpecialization& l : m.layers) {
        mi += l.mutualInfoBits;
        nmi += l.normalizedMI; // NaN propagates: one domain has no NMI anywhere
    }
    m.meanMutualInfoBits = mi / double(m.layers.size());
    m.meanNormalizedMI = nmi / double(m.layers.size());
    for (size_t d = 0; d < m.domains.size(); ++d) {
        std::vector<double> h, top;
        for (const LayerSpecialization& l : m.layers) {
            h.push_back(l.domains[d].entropyBits);
            top.push_back(l.domains[d].topKShare);
        }
        m.meanEntropyBits.push_back(meanSkippingNaN(h));
        m.meanTopKShare.push_back(meanSkippingNaN(top));
    }
    return m;
}

} // namespace moewb
