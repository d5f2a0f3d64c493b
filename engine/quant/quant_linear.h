// SPDX-License-Identifier: MIT
// Quantizing linears as the plan says (GPTQ, RTN or the documented RTN fallback of routed experts
// with too few calibration tokens), and the relative output error of the result.
#pragma once

#include "moewb/plan/plan.h"
#include "moewb/quant/quantize.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace moewb {

struct QuantizedLinear {
    at::Tensor stored;        ///< [out, in] float(fp16(scale))·(q − zero) in the checkpoint's dtype of this tensor
    at::Tensor q;             ///< [out, in] int32 codes, original column order
    at::Tensor scales;        ///< [out, groups] float32, rounded to fp16 (as GPTQ checkpoints store them)
    at::Tensor zeros;         ///< [out, groups] float32, integer-valued
    at::Tensor gIdx;          ///< [in] int32 group of each input column
    at::Tensor ggmlRows;      ///< ggml-encoded linears (quant/ggml_linear.h): [out, row bytes] uint8; else undefined
    int64_t ggmlType = -1;    ///< gguf::GgmlType of ggmlRows, -1 when none
    LinearQuantResult result; ///< method, fallback, tokens, relative error, damp, seconds
};

/// One linear to quantize: its plan entry, original weight [out, in] (float32) and stored dtype.
struct LinearInput {
    const PlanEntry* entry = nullptr;
    at::Tensor weight;
    at::ScalarType storeDtype = at::kFloat;
};

/// Linears that share one input and so one Hessian h [in, in] (undefined when no calibration data
/// was collected; tokens = the rows that built it). Every entry must have bits < 16 or sparsity > 0
/// (pruned linears go to pruneLinear, engine/quant/prune_linear.h; bits 16 ones get no q/scales). GPTQ linears
/// with identical settings run as one gptqQuantize call on their stacked rows (rows are independent
/// given H: same result, H factored once). GPTQ without a Hessian is an InputError naming the
/// linear. `cancel` is polled inside GPTQ (once per block): returning false throws Cancelled.
std::vector<QuantizedLinear> quantizeLinears(const std::vector<LinearInput>& linears, const at::Tensor& h,
                                             int64_t tokens, const QuantizeOptions& opt,
                                             const std::function<bool()>& cancel = {});

/// float(fp16(scales))[:, gIdx] · (q − zeros[:, gIdx]) in float32: what a GPTQ kernel computes from
/// a checkpoint holding q, fp16 scales and zeros. scales/zeros [out, groups], q [out, in], gIdx [in].
at::Tensor dequantHalfScales(const at::Tensor& q, const at::Tensor& scales, const at::Tensor& zeros,
                             const at::Tensor& gIdx);

/// g_idx of natural group order: column c → c / groupSize (-1 or >= in: all 0).
at::Tensor naturalGroupIndex(int64_t inFeatures, int64_t groupSize);

/// tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) with ΔW = wq − w (float32 GEMMs, double sums); -1 when the
/// denominator is not positive.
double relativeOutputError(const at::Tensor& w, const at::Tensor& wq, const at::Tensor& h);

/// The fallback decision alone: "" when a GPTQ linear may use GPTQ, else the reason.
/// The report row of a plan entry before anything ran: identity and the settings the plan asks for.
LinearQuantResult planResult(const PlanEntry& entry);

/// `balanced`: the tokens were counted after expert balancing (#25), which the reason then says.
std::string expertFallbackReason(const PlanEntry& entry, int64_t tokens, int64_t minExpertTokens,
                                 bool balanced = false);

} // namespace moewb
