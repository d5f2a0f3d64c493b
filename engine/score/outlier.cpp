// SPDX-License-Identifier: MIT
#include "score/outlier.h"

#include "moewb/core/error.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace moewb {

namespace {
/// One pass over W: per column the abs maximum (exact) and the abs sum (double, rows in order).
template <typename T>
void columnStats(const T* w, int64_t rows, int64_t cols, float* mx, double* sm)
{
    at::parallel_for(0, cols, 1024, [&](int64_t c0, int64_t c1) {
        for (int64_t r = 0; r < rows; ++r) {
            const T* row = w + r * cols;
            for (int64_t c = c0; c < c1; ++c) {
                const float a = std::fabs(float(row[c]));
                mx[c] = std::max(mx[c], a);
                sm[c] += double(a);
            }
        }
    });
}
} // namespace

OutlierScore weightOutlierScore(const at::Tensor& w, double eps)
{
    MOEWB_ASSERT(w.dim() == 2);
    const int64_t rows = w.size(0), cols = w.size(1);
    std::vector<float> colMax(static_cast<size_t>(cols), 0.0f);
    std::vector<double> colSum(static_cast<size_t>(cols), 0.0);
    const at::Tensor wc = w.contiguous();
    if (wc.scalar_type() == at::kBFloat16)
        columnStats(wc.data_ptr<at::BFloat16>(), rows, cols, colMax.data(), colSum.data());
    else if (wc.scalar_type() == at::kHalf)
        columnStats(wc.data_ptr<at::Half>(), rows, cols, colMax.data(), colSum.data());
    else {
        const at::Tensor f = wc.to(at::kFloat);
        columnStats(f.data_ptr<float>(), rows, cols, colMax.data(), colSum.data());
    }
    const float* mx = colMax.data();
    const double* sm = colSum.data();
    OutlierScore out;
    double best = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < cols; ++j) {
        const double denom = sm[j] / double(rows) + eps;
        if (!(denom > 0.0))
            continue;
        const double r = double(mx[j]) / denom;
        if (r > best) {
            best = r;
            out.column = j;
        }
    }
    out.score = out.column < 0 ? std::numeric_limits<float>::quiet_NaN() : float(best);
    return out;
}

} // namespace moewb
