// SPDX-License-Identifier: MIT
// Dynamic per-token activation fake-quantization (the "A8" of W4A8 / W8A8), applied by the
// forward to the input of every quantizable linear when StreamOptions::activationBits < 16.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace moewb {

/// Symmetric, per token (one scale per row of the last dimension), computed in float32:
///   qmax = 2^(bits-1) - 1, scale = max|x_row| / qmax,
///   y = clamp(round_half_even(x / scale), -qmax, qmax) * scale, cast back to x's dtype.
/// A row of zeros stays zero. bits >= 16 returns x unchanged (the same tensor); bits must be >= 2.
at::Tensor fakeQuantActivations(const at::Tensor& x, int64_t bits);

} // namespace moewb
