// SPDX-License-Identifier: MIT
// Parallel quantization of one true-sequential group across ranks (#15): which rank quantizes
// which set of linears, and the byte form in which the results travel to the other ranks.
#pragma once

#include "quant/quant_linear.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moewb {

class DistContext;

/// Owner rank of each work item, given its estimated cost: items in order of decreasing cost
/// (ties by index) each go to the least loaded rank (ties to the lowest rank). Depends only on the
/// costs, so every rank computes the same assignment.
std::vector<int> assignOwners(const std::vector<double>& costs, int worldSize);

/// Estimated cost of quantizing linears that share one input of `inFeatures` columns with
/// `outRows` rows in total: GPTQ's O(rows · in²) updates plus the O(in³) factorisation.
double quantizeCost(int64_t inFeatures, int64_t outRows);

/// The results of quantizing linears, as bytes: codes (uint8 when bits <= 8, else int16), scales,
/// zeros, g_idx and the report row. `stored` is not sent: unpack recomputes it with
/// dequantHalfScales exactly as quantizeLinears does, so it is bitwise the owner's.
std::string packQuantized(const std::vector<QuantizedLinear>& q);
/// storeDtypes: the checkpoint dtype of each linear, in the packed order.
std::vector<QuantizedLinear> unpackQuantized(const std::string& bytes, const std::vector<at::ScalarType>& storeDtypes);

/// Items (sets of linears sharing one input) quantized across the ranks: every rank calls this
/// with the same costs; each computes the items assignOwners gives it with compute(i), the results
/// are all-gathered, and every rank gets every item's linears, in item order, rebuilt by
/// unpackQuantized with storeTypes(i).
std::vector<std::vector<QuantizedLinear>> quantizeAcrossRanks(
    DistContext& dist, const std::vector<double>& costs,
    const std::function<std::vector<QuantizedLinear>(size_t)>& compute,
    const std::function<std::vector<at::ScalarType>(size_t)>& storeTypes, const std::string& what);

} // namespace moewb
