// SPDX-License-Identifier: MIT
// One linear's entry of the budget error table (engine/alloc/errors.cpp, docs/allocation.md).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace moewb {

/// Σ_ij r_i (W − RTN_b(W))_ij² c_j with RTN as rtnQuantize(w, bits, groupSize, sym = false);
/// r = rowWeight [out] and c = colWeight [in] (either undefined: all ones). 0 for bits >= 16.
double weightedRtnError(const at::Tensor& w, int64_t bits, int64_t groupSize, const at::Tensor& rowWeight,
                        const at::Tensor& colWeight);

} // namespace moewb
