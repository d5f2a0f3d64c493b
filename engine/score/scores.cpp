// SPDX-License-Identifier: MIT
#include "score/scores.h"

#include "moewb/core/error.h"

#include <algorithm>
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

FuzzyClusters fuzzyCMeans(const std::vector<double>& x, int c, double m, double eps, int maxIter, double margin)
{
    MOEWB_CHECK(c >= 1 && m > 1.0, "fuzzyCMeans", "need c >= 1 and m > 1");
    const size_t n = x.size();
    FuzzyClusters out;
    if (n == 0)
        return out;
    std::vector<double> sorted = x;
    std::sort(sorted.begin(), sorted.end());
    std::vector<double> v(static_cast<size_t>(c));
    for (int k = 0; k < c; ++k)
        v[size_t(k)] = sorted[std::min(n - 1, size_t((double(k) + 0.5) / double(c) * double(n)))];
    std::vector<double> u(n * size_t(c), 0.0), prev;
    const double p = 2.0 / (m - 1.0);
    auto updateU = [&] {
        for (size_t i = 0; i < n; ++i) {
            double* row = &u[i * size_t(c)];
            // A value sitting on centres shares its membership among them (avoids 0/0).
            int onCentre = 0;
            for (int k = 0; k < c; ++k)
                onCentre += std::abs(x[i] - v[size_t(k)]) == 0.0;
            for (int k = 0; k < c; ++k) {
                const double dk = std::abs(x[i] - v[size_t(k)]);
                if (onCentre) {
                    row[k] = dk == 0.0 ? 1.0 / onCentre : 0.0;
                    continue;
                }
                double s = 0;
                for (int j = 0; j < c; ++j)
                    s += std::pow(dk / std::abs(x[i] - v[size_t(j)]), p);
                row[k] = 1.0 / s;
            }
        }
    };
    updateU();
    for (int it = 0; it < maxIter; ++it) {
        for (int k = 0; k < c; ++k) {
            double num = 0, den = 0;
            for (size_t i = 0; i < n; ++i) {
                const double w = std::pow(u[i * size_t(c) + size_t(k)], m);
                num += w * x[i];
                den += w;
            }
            if (den > 0)
                v[size_t(k)] = num / den;
        }
        prev = u;
        updateU();
        double delta = 0;
        for (size_t i = 0; i < u.size(); ++i)
            delta = std::max(delta, std::abs(u[i] - prev[i]));
        if (delta < eps)
            break;
    }
    // Relabel: cluster 0 = largest centre.
    std::vector<int> order(static_cast<size_t>(c));
    for (int k = 0; k < c; ++k)
        order[size_t(k)] = k;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return v[size_t(a)] > v[size_t(b)]; });
    out.centres.resize(size_t(c));
    out.memberships.resize(u.size());
    for (int k = 0; k < c; ++k) {
        out.centres[size_t(k)] = v[size_t(order[size_t(k)])];
        for (size_t i = 0; i < n; ++i)
            out.memberships[i * size_t(c) + size_t(k)] = u[i * size_t(c) + size_t(order[size_t(k)])];
    }
    out.assign.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const double* row = &out.memberships[i * size_t(c)];
        int best = 0, second = -1;
        for (int k = 1; k < c; ++k)
            if (row[k] > row[best])
                best = k;
        for (int k = 0; k < c; ++k)
            if (k != best && (second < 0 || row[k] > row[second]))
                second = k;
        int a = best;
        if (second >= 0 && std::abs(second - best) == 1 && row[best] - row[second] < margin)
            a = std::max(best, second); // the less significant (lower precision) of the two
        out.assign[i] = a;
    }
    return out;
}

} // namespace moewb
