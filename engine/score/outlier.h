// SPDX-License-Identifier: MIT
// The data-free weight outlier score (docs/algorithms.md §5.2, moewb/stats/stats.h OutlierScoreParams).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace moewb {

struct OutlierScore {
    float score = 0.0f;  ///< NaN when every column was skipped
    int64_t column = -1; ///< first column reaching the score, -1 when none
};

/// W [out, in] of any float dtype, upcast to fp32: A = |W|, r_j = max_i A_ij / (mean_i A_ij + eps),
/// score = max_j r_j. Column sums run over the rows in order in double (the maxima are exact), so
/// the score does not depend on thread count; one pass, no fp32 copy of a bf16/f16 weight. With eps = 0 a column of zeros has no ratio and is
/// skipped; ties go to the lowest column.
OutlierScore weightOutlierScore(const at::Tensor& w, double eps = 0.0);

} // namespace moewb
