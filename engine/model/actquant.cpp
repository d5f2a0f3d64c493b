// SPDX-License-Identifier: MIT
#include "model/actquant.h"

#include "moewb/core/error.h"

namespace moewb {

at::Tensor fakeQuantActivations(const at::Tensor& x, int64_t bits)
{
    if (bits >= 16)
        return x;
    MOEWB_CHECK(bits >= 2, "activation bits", "must be between 2 and 16, got ", bits);
    const double qmax = double((int64_t(1) << (bits - 1)) - 1);
    const at::Tensor xf = x.to(at::kFloat);
    // A zero row gets scale 1 (any positive scale maps it to zeros) instead of 0/0.
    at::Tensor scale = xf.abs().amax(-1, /*keepdim=*/true).div_(qmax);
    scale = at::where(scale > 0, scale, at::ones_like(scale));
    return at::round(xf / scale).clamp_(-qmax, qmax).mul_(scale).to(x.scalar_type());
}

} // namespace moewb
