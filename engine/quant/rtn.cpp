// SPDX-License-Identifier: MIT
#include "quant/rtn.h"

#include "moewb/core/error.h"
#include "quant/grid.h"

#include <ATen/Parallel.h>

#include <limits>

namespace moewb {

RtnResult rtnQuantize(const at::Tensor& w, int64_t bits, int64_t groupSize, bool sym)
{
    MOEWB_CHECK(w.dim() == 2, "rtnQuantize", "expected a 2-D weight, got ", w.dim(), " dims");
    MOEWB_CHECK(bits >= 1 && bits <= 16, "rtnQuantize", "bits ", bits, " out of range");
    const int64_t n = w.size(0), k = w.size(1);
    const int64_t g = (groupSize <= 0 || groupSize > k) ? k : groupSize;
    const int64_t groups = k > 0 ? (k + g - 1) / g : 0;
    const float maxq = float((int64_t(1) << bits) - 1);
    const at::Tensor x = w.to(at::kFloat).contiguous();
    MOEWB_CHECK(x.numel() == 0 || at::isfinite(x).all().item<bool>(), "rtnQuantize", "weight contains NaN or Inf");

    RtnResult r;
    r.dequant = at::empty({n, k}, at::kFloat);
    r.q = at::empty({n, k}, at::kInt);
    r.scales = at::empty({n, groups}, at::kFloat);
    r.zeros = at::empty({n, groups}, at::kFloat);
    const float* px = x.data_ptr<float>();
    float* pd = r.dequant.data_ptr<float>();
    int32_t* pq = r.q.data_ptr<int32_t>();
    float* ps = r.scales.data_ptr<float>();
    float* pz = r.zeros.data_ptr<float>();
    at::parallel_for(0, n, std::max<int64_t>(1, 65536 / std::max<int64_t>(k, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t row = r0; row < r1; ++row)
            for (int64_t gi = 0; gi < groups; ++gi) {
                const int64_t c0 = gi * g, c1 = std::min(k, c0 + g);
                const float* xr = px + row * k;
                float lo = std::numeric_limits<float>::infinity(), hi = -lo;
                for (int64_t c = c0; c < c1; ++c) {
                    lo = std::min(lo, xr[c]);
                    hi = std::max(hi, xr[c]);
                }
                const Grid<float> grid = gridFromRange(lo, hi, bits, sym);
                ps[row * groups + gi] = grid.scale;
                pz[row * groups + gi] = grid.zero;
                for (int64_t c = c0; c < c1; ++c) {
                    const float q = quantCode(xr[c], grid.scale, grid.zero, maxq);
                    pq[row * k + c] = int32_t(q);
                    pd[row * k + c] = dequantCode(q, grid.scale, grid.zero);
                }
            }
    });
    return r;
}

} // namespace moewb
