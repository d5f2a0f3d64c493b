// SPDX-License-Identifier: MIT
#include "clustering.h"

#include <algorithm>
#include <cmath>

namespace moewb {

std::vector<int64_t> averageLinkageOrder(const std::vector<double>& distances, int64_t n)
{
    if (n <= 0 || int64_t(distances.size()) != n * n)
        return {};
    struct Cluster {
        std::vector<int64_t> leaves; // in dendrogram order
        bool alive = true;
    };
    std::vector<Cluster> clusters;
    clusters.reserve(size_t(n));
    for (int64_t i = 0; i < n; ++i)
        clusters.push_back({{i}, true});
    // dist[i][j]: average linkage distance between live clusters i and j (kept up to date by the
    // Lance-Williams update d(k, i∪j) = (|i| d(k,i) + |j| d(k,j)) / (|i| + |j|)).
    std::vector<double> dist(size_t(n * n));
    for (int64_t i = 0; i < n * n; ++i) {
        const double d = distances[size_t(i)];
        dist[size_t(i)] = std::isnan(d) ? 2.0 : d;
    }
    auto d = [&](int64_t i, int64_t j) -> double& { return dist[size_t(i * n + j)]; };
    for (int64_t step = 1; step < n; ++step) {
        int64_t bi = -1, bj = -1;
        double best = 0;
        for (int64_t i = 0; i < n; ++i) {
            if (!clusters[size_t(i)].alive)
                continue;
            for (int64_t j = i + 1; j < n; ++j) {
                if (!clusters[size_t(j)].alive)
                    continue;
                // symmetric use: average the two triangle entries so a slightly asymmetric input is fine
                const double v = 0.5 * (d(i, j) + d(j, i));
                if (bi < 0 || v < best) {
                    best = v;
                    bi = i;
                    bj = j;
                }
            }
        }
        Cluster& a = clusters[size_t(bi)];
        Cluster& b = clusters[size_t(bj)];
        const double na = double(a.leaves.size()), nb = double(b.leaves.size());
        for (int64_t k = 0; k < n; ++k) {
            if (!clusters[size_t(k)].alive || k == bi || k == bj)
                continue;
            const double v = (na * 0.5 * (d(k, bi) + d(bi, k)) + nb * 0.5 * (d(k, bj) + d(bj, k))) / (na + nb);
            d(k, bi) = v;
            d(bi, k) = v;
        }
        // a (lower index i) keeps the merged cluster; its leaves come first
        a.leaves.insert(a.leaves.end(), b.leaves.begin(), b.leaves.end());
        b.alive = false;
        b.leaves.clear();
    }
    for (const Cluster& c : clusters)
        if (c.alive)
            return c.leaves;
    return {};
}

std::vector<double> similarityToDistance(const std::vector<double>& similarity, int64_t n)
{
    std::vector<double> out(similarity.size());
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
            out[size_t(i * n + j)] = i == j ? 0.0 : 1.0 - similarity[size_t(i * n + j)];
    return out;
}

} // namespace moewb
