// SPDX-License-Identifier: MIT
// The hook of the quantize layer loop for linears the plan prunes (PlanEntry::sparsity > 0):
// prune, then quantize the survivors (docs/pruning.md, "In the quantize pass").
#pragma once

#include "quant/quant_linear.h"

#include <ATen/ATen.h>

#include <functional>

namespace moewb {

/// Prunes one linear as its plan entry says and, when bits < 16, quantizes what survives:
///   method gptq: SparseGPT's joint sweep (the mask chosen in the sweep for sparsegpt, given by
///   magnitude/Wanda otherwise), so the survivors' quantization errors are compensated too;
///   method rtn: the pruned weight rounded to the grid (a pruned weight stays exactly 0).
/// h: the Hessian (2/n) Σ x xᵀ of this linear's inputs in the pass (undefined without calibration
/// data); Wanda uses diag(h)/2, or opt.actSqMean[name] without h. Fallbacks (named in the
/// result's `fallback`): sparsegpt on a routed expert with fewer than opt.minExpertTokens tokens
/// → wanda (→ magnitude with no tokens at all); GPTQ quantization likewise → RTN. The stored
/// weight has exact zeros wherever pruned. result: achieved sparsity, zeros, relative error.
QuantizedLinear pruneLinear(const LinearInput& in, const at::Tensor& h, int64_t tokens, const QuantizeOptions& opt,
                            const std::function<bool()>& cancel = {});

} // namespace moewb
