// SPDX-License-Identifier: MIT
// Round-to-nearest group quantization with the GPTQ quantizer's grid (docs/algorithms.md §3.1): the
// baseline quantizer, the error model of the budget solver (#7) and the fallback of `quantize`.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace moewb {

struct RtnResult {
    at::Tensor dequant; ///< [out, in] float32: scale * (q - zero)
    at::Tensor q;       ///< [out, in] int32 codes in [0, 2^bits - 1]
    at::Tensor scales;  ///< [out, groups] float32
    at::Tensor zeros;   ///< [out, groups] float32 (integer-valued)
};

/// W [out, in] (any float dtype; computed in float32). Groups of groupSize consecutive input
/// columns per output row (-1 or >= in: one group; the last group may be shorter). Per group:
/// xmin = min(0, min w), xmax = max(0, max w); sym: xmax = max(|xmin|, xmax), xmin = -xmax;
/// xmin == xmax == 0 → [-1, 1]; scale = (xmax - xmin) / (2^b - 1); zero = 2^(b-1) (sym) or
/// round(-xmin / scale) (asym); q = clamp(round(w / scale) + zero, 0, 2^b - 1).
RtnResult rtnQuantize(const at::Tensor& w, int64_t bits, int64_t groupSize, bool sym);

} // namespace moewb
