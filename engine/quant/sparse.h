// SPDX-License-Identifier: MIT
// Pruning one linear W [out, in]: masks by magnitude and Wanda, and SparseGPT (Frantar & Alistarh
// 2023) with its optional joint quantization. docs/pruning.md describes the methods.
#pragma once

#include "moewb/core/progress.h"
#include "moewb/plan/prune_spec.h"

#include <ATen/ATen.h>

#include <cstdint>

namespace moewb {

/// Mask (bool [out, in], true = pruned) of the lowest scores of every output row: prunedPerRow()
/// of them (unstructured), or the M − N lowest of every group of M consecutive input columns (N:M).
/// Ties go to the lower column index (stable sort). scores [out, in], any float dtype.
at::Tensor lowestScoreMask(const at::Tensor& scores, const PruneSpec& spec);

/// Score |W_ij|.
at::Tensor magnitudeMask(const at::Tensor& w, const PruneSpec& spec);

/// Score |W_ij|·sqrt(E[x_j²]) (Wanda, Sun et al. 2023), compared within each output row.
/// actSqMean [in]: mean square of every input channel over the calibration tokens (diag(H)/2, or
/// the stats' act_sq_mean).
at::Tensor wandaMask(const at::Tensor& w, const at::Tensor& actSqMean, const PruneSpec& spec);

struct SparseGptOptions {
    PruneSpec spec;            ///< sparsity and pattern (spec.method is not read)
    at::Tensor fixedMask;      ///< defined (bool [out, in]): prune exactly these instead of choosing
                               ///< (a magnitude/Wanda mask with GPTQ quantization of the survivors)
    int64_t bits = 16;         ///< < 16: quantize the surviving weights inside the same sweep (rtn.h grid)
    int64_t groupSize = 128;   ///< -1 or >= in: one group per row
    bool sym = true;
    double dampPercent = 0.01; ///< λ = dampPercent · mean(diag H), raised ×10 while Cholesky fails
    int64_t blockSize = 128;   ///< lazy-batch block (rounded up to a multiple of M for N:M)
    bool float64 = false;      ///< compute in float64 (tests)
};

struct SparseGptResult {
    at::Tensor weight;   ///< [out, in] float32 (float64 with opt.float64): exactly 0 where pruned
    at::Tensor mask;     ///< [out, in] bool, true = pruned
    at::Tensor q;        ///< bits < 16: [out, in] int32 codes (a pruned weight has its group's zero point)
    at::Tensor scales;   ///< bits < 16: [out, groups]
    at::Tensor zeros;    ///< bits < 16: [out, groups], integer-valued
    at::Tensor gIdx;     ///< bits < 16: [in] int32, column / group size
    double dampUsed = 0;
    double dampLambda = 0;
    double seconds = 0;
    double secondsFactor = 0; ///< of which damping and factoring H
};

/// SparseGPT: columns left to right in blocks; U = the upper Cholesky factor of H⁻¹ (obtained as
/// V⁻¹ with H = V Vᵀ, V upper: one Cholesky and one triangular inverse). Unstructured: at the
/// start of each block every row prunes its quota of the block's columns (so that each row ends
/// with exactly prunedPerRow() zeros) with the smallest w²/U_jj²; N:M: at the first column of
/// every group of M, the M − N smallest w²/U_jj² of the group's current weights. Each column:
/// v = 0 if pruned, else w or (bits < 16) its quantized value; err = (w − v)/U_jj; the block's later
/// columns get −err·U_j,·, the columns after the block one GEMM per block. Dead inputs (H_jj = 0)
/// get H_jj = 1 and zero weights, as GPTQ does. InputError on bad shapes/options/non-finite
/// input; Cancelled when progress says stop (polled once per block).
SparseGptResult sparseGpt(const at::Tensor& w, const at::Tensor& h, const SparseGptOptions& opt,
                          const ProgressFn& progress = {});

} // namespace moewb
