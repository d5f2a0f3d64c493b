// SPDX-License-Identifier: MIT
// Scorers used by the bit-allocation strategies (#7, docs/algorithms.md §5). Pure functions:
// the torch ones take a weight tensor, the rest read CalibStats only.
#pragma once

#include "moewb/stats/stats.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace moewb {

/// Pearson kurtosis E[(w-mu)^4] / sigma^4 (population moments, not excess: a Gaussian gives 3) of
/// all elements, in double. Heavy-tailed weights (outliers) score high. NaN for a constant tensor.
double weightKurtosis(const at::Tensor& w);

/// Activation-aware weight score: mean_ij |W_ij| * sqrt(E[x_j^2]) for W [out, in] and the input
/// channel second moments actSqMean [in] (AWQ/Wanda-style salience). Empty actSqMean = all ones.
double activationAwareScore(const at::Tensor& w, const std::vector<float>& actSqMean);

/// MoE block scorer (H7, docs/algorithms.md §5.3: the measured, non-learned version): per decoder
/// layer the mean cosine between the MoE part's input and output (BlockCosine::mlp); NaN for dense
/// layers. Lower cosine = the block changes its input more = more important.
std::vector<double> moeBlockCosine(const CalibStats& stats);

/// MoQa-style expert significance (docs/algorithms.md §5.4, our operationalisation): for each
/// expert j of the layer,
///   usage_j = expertTokens_j / router tokens
///   sensitivity_j = sum over the expert's linears of mean_c actSqMean_c (input energy, diag(H)/2),
///                   1 when activations were not recorded
///   redundancy_j = 1 - 0.5 * max(0, max_{i != j} corr_ij) (1 without a correlation matrix): an
///                  expert whose output another expert reproduces matters less
///   S_j = usage_j * sensitivity_j * redundancy_j / sum_j' (same), so sum_j S_j = 1 (all 0 if every
///   numerator is 0). Empty for a dense layer.
std::vector<double> moqaSignificance(const CalibStats& stats, int64_t layer);

/// Fuzzy c-means on scalars (docs/algorithms.md §5.5, MoQa/DynaMo Algorithm 1). Deterministic: centres
/// start at the (k + 0.5)/c quantiles of the sorted values instead of random memberships.
struct FuzzyClusters {
    std::vector<double> centres;     ///< [c], descending (cluster 0 = most significant = most bits)
    std::vector<double> memberships; ///< [n x c] row-major, rows sum to 1
    std::vector<int> assign;         ///< [n] hard cluster per value
};
/// Iterates v_k = sum_i u_ik^m x_i / sum_i u_ik^m and u_ik = 1 / sum_j (|x_i - v_k| / |x_i - v_j|)^(2/(m-1))
/// until max |dU| < eps (or maxIter). Hard assignment is argmax_k u_ik, except the
/// "low-precision-first" rule: when the two largest memberships of a value are within `margin` and
/// belong to adjacent clusters, the value goes to the less significant one.
FuzzyClusters fuzzyCMeans(const std::vector<double>& x, int c = 4, double m = 2.0, double eps = 1e-9,
                          int maxIter = 300, double margin = 0.1);

} // namespace moewb
