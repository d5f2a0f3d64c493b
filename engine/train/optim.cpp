// SPDX-License-Identifier: MIT
#include "train/optim.h"

#include <cmath>

namespace moewb {

at::Tensor balanceLoss(const at::Tensor& logits, const at::Tensor& experts, int64_t numExperts)
{
    const at::Tensor probs = at::softmax(logits.to(at::kFloat), -1);
    const at::Tensor counts = at::bincount(experts.reshape({-1}), {}, numExperts).to(at::kFloat);
    const at::Tensor share = counts / double(experts.numel());
    return double(numExperts) * (share * probs.mean(0)).sum();
}

double scheduledLr(double peak, double minRatio, int64_t warmup, int64_t steps, int64_t step)
{
    if (step < warmup)
        return peak * double(step + 1) / double(warmup);
    const double span = double(std::max<int64_t>(1, steps - warmup));
    const double t = std::min(1.0, double(step - warmup) / span);
    const double minLr = peak * minRatio;
    return minLr + 0.5 * (peak - minLr) * (1.0 + std::cos(M_PI * t));
}

void adamwStep(at::Tensor& param, const at::Tensor& grad, at::Tensor& m, at::Tensor& v, int64_t t, double lr,
               const AdamWConfig& c, bool decay)
{
    at::NoGradGuard noGrad;
    const double bc1 = 1.0 - std::pow(c.beta1, double(t));
    const double bc2 = 1.0 - std::pow(c.beta2, double(t));
    m.mul_(c.beta1).add_(grad, 1.0 - c.beta1);
    v.mul_(c.beta2).addcmul_(grad, grad, 1.0 - c.beta2);
    const at::Tensor denom = (v / bc2).sqrt_().add_(c.eps);
    if (decay && c.weightDecay > 0)
        param.mul_(1.0 - lr * c.weightDecay);
    param.addcdiv_(m, denom, -lr / bc1);
}

} // namespace moewb
