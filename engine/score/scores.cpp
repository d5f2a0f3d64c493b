// SPDX-License-Identifier: MIT
#include "score/scores.h"

#include "moewb/core/error.h"

#include <cmath>
#include <limits>
#include <map>

namespace moewb {

double weightKurtosis(const at::Tensor& w)
{
    const at::Tensor x = w.reshape({-1}).to(at::kDouble);
    const double mu = x.mean().item<double>();
    const at::Tensor d = x - mu;
    const at::Tensor d2 = d * d;
    const double m2 = d2.mean().item<double>();
    const double m4 = (d2 * d2).mean().item<double>();
    if (m2 <= 0.0)
        return std::numeric_limits<double>::quiet_NaN();
    return m4 / (m2 * m2);
}

double activationAwareScore(const at::Tensor& w, const std::vector<float>& actSqMean)
{
    MOEWB_ASSERT(w.dim() == 2);
    const at::Tensor a = w.to(at::kDouble).abs();
    if (actSqMean.empty())
        return a.mean().item<double>();
    MOEWB_CHECK(int64_t(actSqMean.size()) == w.size(1), "activationAwareScore", "actSqMean has ",
                actSqMean.size(), " channels, weight has ", w.size(1), " inputs");
    const at::Tensor s = at::from_blob(const_cast<float*>(actSqMean.data()), {w.size(1)}, at::kFloat)
                             .to(at::kDouble)
                             .sqrt();
    return (a * s.unsqueeze(0)).mean().item<double>();
}

std::vector<double> moeBlockCosine(const CalibStats& stats)
{
    std::vector<double> out(stats.layers.size(), std::numeric_limits<double>::quiet_NaN());
    for (size_t l = 0; l < stats.layers.size(); ++l)
        if (stats.layers[l].isMoe)
            out[l] = stats.layers[l].cosine.mlp;
    return out;
}

std::vector<double> moqaSignificance(const CalibStats& stats, int64_t layer)
{
    const RouterStats* r = stats.router(layer);
    if (!r)
        return {};
    const int64_t e = r->numExperts;
    std::vector<double> sens(size_t(e), 0.0);
    std::vector<bool> seen(size_t(e), false);
    for (const LinearStats& li : stats.linears) {
        if (li.layer != layer || li.expert < 0 || li.expert >= e || li.actSqMean.empty())
            continue;
        double m = 0;
        for (float v : li.actSqMean)
            m += v;
        sens[size_t(li.expert)] += m / double(li.actSqMean.size());
        seen[size_t(li.expert)] = true;
    }
    std::vector<double> s(size_t(e), 0.0);
    double total = 0;
    for (int64_t j = 0; j < e; ++j) {
        const double usage = r->tokens > 0 ? double(r->expertTokens[size_t(j)]) / double(r->tokens) : 0.0;
        double redundancy = 1.0;
        if (r->correlation.rows == e && r->correlation.cols == e) {
            double mx = 0;
            for (int64_t i = 0; i < e; ++i)
                if (i != j && std::isfinite(r->correlation.at(j, i)))
                    mx = std::max(mx, double(r->correlation.at(j, i)));
            redundancy = 1.0 - 0.5 * mx;
        }
        s[size_t(j)] = usage * (seen[size_t(j)] ? sens[size_t(j)] : 1.0) * redundancy;
        total += s[size_t(j)];
    }
    if (total > 0)
        for (double& v : s)
            v /= total;
    return s;
}

} // namespace moewb
