// SPDX-License-Identifier: MIT
// The pieces of training that have closed forms, kept apart so tests can check them by hand:
// the router load-balancing loss, the learning-rate schedule and one AdamW update.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace moewb {

/// E · Σ_e f_e · P_e over N tokens: f_e = share of the N·k routing choices `experts` [N, k] that
/// picked e, P_e = mean softmax probability of e from `logits` [N, E]. 1.0 when perfectly balanced;
/// HF's `load_balancing_loss_func` is this value times k. Differentiable in logits.
at::Tensor balanceLoss(const at::Tensor& logits, const at::Tensor& experts, int64_t numExperts);

/// Linear warm-up over `warmup` steps to `peak` (step 0 gets peak / warmup), then cosine decay to
/// peak · minRatio at step `steps` (0-based steps).
double scheduledLr(double peak, double minRatio, int64_t warmup, int64_t steps, int64_t step);

struct AdamWConfig {
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.1;
};

/// One AdamW update (Loshchilov & Hutter, decoupled decay, bias-corrected moments) of `param` in
/// place with gradient `grad` at 1-based step t: m ← β1 m + (1-β1) g; v ← β2 v + (1-β2) g²;
/// p ← p (1 - lr·wd) - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps). decay=false skips wd.
void adamwStep(at::Tensor& param, const at::Tensor& grad, at::Tensor& m, at::Tensor& v, int64_t t, double lr,
               const AdamWConfig& c, bool decay);

} // namespace moewb
