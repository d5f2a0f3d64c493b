// SPDX-License-Identifier: MIT
// Paired comparisons of two runs on the same evaluation units (windows of a text, task items):
// the difference of their means with a percentile bootstrap interval (docs/evaluation.md).
#pragma once

#include <cstdint>
#include <vector>

namespace moewb {

struct PairedInterval {
    double diff = 0.0; ///< mean of a − mean of b over all units
    double lo = 0.0;   ///< interval bounds (percentile bootstrap)
    double hi = 0.0;
    bool excludesZero() const { return lo > 0.0 || hi < 0.0; }
};

/// Units i carry sums a[i], b[i] over weight[i] positions (a window's KLD sum and scored tokens;
/// a task item's 0/1 correctness with weight 1). diff = Σa/Σw − Σb/Σw; the interval resamples
/// units with replacement `resamples` times (std::mt19937_64 seeded with `seed`) and takes the
/// (1 − level)/2 and (1 + level)/2 quantiles of the resampled differences (linear interpolation).
/// All three vectors have the same size (InputError otherwise); empty input gives all zeros.
PairedInterval pairedBootstrap(const std::vector<double>& a, const std::vector<double>& b,
                               const std::vector<double>& weight, int resamples = 2000, uint64_t seed = 0,
                               double level = 0.95);

} // namespace moewb
