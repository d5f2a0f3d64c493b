// SPDX-License-Identifier: MIT
#include "quant/rtn.h"

#include "moewb/core/error.h"

namespace moewb {

RtnResult rtnQuantize(const at::Tensor& w, int64_t bits, int64_t groupSize, bool sym)
{
    MOEWB_CHECK(w.dim() == 2, "rtnQuantize", "expected a 2-D weight, got ", w.dim(), " dims");
    MOEWB_CHECK(bits >= 1 && bits <= 16, "rtnQuantize", "bits ", bits, " out of range");
    const int64_t n = w.size(0), k = w.size(1);
    const int64_t g = (groupSize <= 0 || groupSize > k) ? k : groupSize;
    const int64_t groups = (k + g - 1) / g;
    const double maxq = double((int64_t(1) << bits) - 1);
    const at::Tensor x = w.to(at::kFloat).contiguous();

    // Pad to whole groups with zeros: zeros never move min(0, .)/max(0, .), so the grid of a short
    // last group is exactly that of its real columns.
    at::Tensor xp = x;
    if (groups * g != k)
        xp = at::constant_pad_nd(x, {0, groups * g - k}, 0.0);
    const at::Tensor xg = xp.view({n, groups, g});
    at::Tensor xmin = at::clamp_max(std::get<0>(xg.min(2)), 0.0);
    at::Tensor xmax = at::clamp_min(std::get<0>(xg.max(2)), 0.0);
    if (sym) {
        xmax = at::maximum(xmin.abs(), xmax);
        xmin = at::where(xmin < 0, -xmax, xmin);
    }
    const at::Tensor bothZero = (xmin == 0) & (xmax == 0);
    xmin = at::where(bothZero, at::full_like(xmin, -1.0), xmin);
    xmax = at::where(bothZero, at::full_like(xmax, 1.0), xmax);
    const at::Tensor scale = (xmax - xmin) / maxq;
    const at::Tensor zero = sym ? at::full_like(scale, double(int64_t(1) << (bits - 1))) : at::round(-xmin / scale);

    const at::Tensor s3 = scale.unsqueeze(2), z3 = zero.unsqueeze(2);
    const at::Tensor q = at::clamp(at::round(xg / s3) + z3, 0.0, maxq);
    const at::Tensor deq = s3 * (q - z3);
    RtnResult r;
    r.dequant = deq.view({n, groups * g}).narrow(1, 0, k).contiguous();
    r.q = q.view({n, groups * g}).narrow(1, 0, k).to(at::kInt).contiguous();
    r.scales = scale;
    r.zeros = zero;
    return r;
}

} // namespace moewb
