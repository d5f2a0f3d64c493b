// SPDX-License-Identifier: MIT
// Average-linkage (UPGMA) hierarchical clustering of a small symmetric distance matrix, used to
// order the rows and columns of the expert correlation view so that similar experts sit together.
#pragma once

#include <cstdint>
#include <vector>

namespace moewb {

/// Leaf order of the dendrogram built by average linkage on an n × n row-major distance matrix.
/// Each step merges the two clusters with the smallest mean pairwise distance (ties: the pair
/// (i, j) of lowest smallest-leaf indices, lexicographically); at every merge the cluster holding
/// the lower leaf index comes first in the order. NaN distances count as the largest distance (2). O(n³), fine for
/// n ≤ a few hundred experts.
std::vector<int64_t> averageLinkageOrder(const std::vector<double>& distances, int64_t n);

/// 1 - similarity for a row-major n × n similarity matrix (e.g. correlations), diagonal 0.
std::vector<double> similarityToDistance(const std::vector<double>& similarity, int64_t n);

} // namespace moewb
