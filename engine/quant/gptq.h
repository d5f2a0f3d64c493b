// SPDX-License-Identifier: MIT
// GPTQ (Frantar et al. 2022) for one linear, on the grid of rtn.h (docs/algorithms.md §3.1-3.2), and the
// Hessian accumulator its callers fill from calibration activations.
#pragma once

#include "moewb/core/progress.h"
#include "moewb/dist/dist.h"

#include <ATen/ATen.h>

#include <cstdint>

namespace moewb {

struct GptqOptions {
    int64_t bits = 4;          ///< 1..16 (GPTQ checkpoints: 2, 3, 4, 8)
    int64_t groupSize = 128;   ///< -1 (or >= in_features): one group per row
    bool sym = true;
    bool actOrder = false;     ///< desc_act: columns in order of decreasing diag(H) (stable for ties)
    bool staticGroups = false; ///< group grids fixed from the unpermuted (dead-zeroed) weight before any
                               ///< update, g_idx = i / G (as AutoGPTQ, also honoured without actOrder)
    double dampPercent = 0.01; ///< damping λ = dampPercent · mean(diag H), added to the diagonal; >= 0
    int64_t blockSize = 128;   ///< columns per lazy-batch update block (the result does not depend on it
                               ///< beyond float rounding)
    bool float64 = false;      ///< compute everything in float64 (≈2x slower): for tests and checks
};

struct GptqResult {
    at::Tensor dequant;  ///< [out, in] float32 (float64 with opt.float64): scale·(q − zero), original order
    at::Tensor q;        ///< [out, in] int32 codes in [0, 2^bits - 1], original column order
    at::Tensor scales;   ///< [out, groups] float32 (float64 with opt.float64)
    at::Tensor zeros;    ///< [out, groups] float32 (float64 with opt.float64), integer-valued
    at::Tensor gIdx;     ///< [in] int32: group of each input column (i / G unless actOrder && !staticGroups,
                         ///< then the group of the column's position in quantization order, docs/algorithms.md §3.1)
    double dampUsed = 0; ///< the damping fraction finally used (opt.dampPercent, or ×10 per failed Cholesky)
    double dampLambda = 0; ///< the absolute λ added to diag(H): dampUsed · mean(diag H)
    double loss = 0;     ///< the GPTQ objective as GPTQ reports it: ½ Σ_rows Σ_i err_i² / [U]_ii² with U the
                         ///< upper Cholesky factor of H_damped⁻¹; equals ½ tr((W − Q) H_damped (W − Q)ᵀ)
                         ///< (W with dead columns zeroed)
    double seconds = 0;       ///< wall time of the call
    double secondsFactor = 0; ///< of which preparing and factoring H
};

/// Running X^T X over calibration rows: each add's rows multiplied in float32 (one GEMM), that part
/// added to a float64 total at once (8·in² bytes held between adds).
/// H = (2 / n) Σ x xᵀ as GPTQ defines it (the scale does not change the result, only `loss`).
/// Weighted rows (expert balancing, docs/calibration-coverage.md): H = (2 / Σ w) Σ w x xᵀ, which is
/// the plain formula when every weight is 1.
class HessianAccumulator {
public:
    explicit HessianAccumulator(int64_t inFeatures);
    /// x [rows, in] or [..., in] (any float dtype). Rows with all zeros still count towards n.
    void add(const at::Tensor& x);
    /// x [rows, in] with weights w [rows] (>= 0, finite): Σ w x xᵀ, computed as (√w x)ᵀ(√w x) in
    /// float32 like add(); every row counts towards rows(), Σ w towards weight().
    void add(const at::Tensor& x, const at::Tensor& w);
    int64_t rows() const { return m_rows; }
    /// Σ of the row weights (= rows() when only add(x) was used).
    double weight() const { return m_weight; }
    int64_t inFeatures() const { return m_in; }
    /// [in, in] float32, exactly symmetric: (2 / weight) Σ w x xᵀ; all zeros when no weight was added.
    at::Tensor hessian() const;
    /// Distributed runs (#15): adds the row count and, with withTotal, the float64 total Σ x xᵀ to
    /// r; once r has run on every rank, hessian() is that of all ranks' rows (equal to one process's
    /// up to summation order). A total left out must be summed on its own: totalData() / totalSize()
    /// (valid after this call).
    void reduceWith(ReduceList& r, bool withTotal);
    double* totalData() { return m_sum64.data_ptr<double>(); }
    size_t totalSize() const { return size_t(m_sum64.numel()); }

private:
    void addRows(const at::Tensor& xf, double weight);

    int64_t m_in;
    int64_t m_rows = 0;
    double m_weight = 0;
    at::Tensor m_sum64; // [in, in] float64 Σ w x xᵀ; each add's part summed in float32 first
};

/// Quantizes W [out, in] given H [in, in] (any float dtypes). Dead input columns (H_ii == 0) get
/// H_ii = 1 and their weights zeroed, as GPTQ does. Throws InputError on shape mismatch, invalid
/// options or non-finite input, Cancelled when `progress` asks to stop (checked once per block).
///
/// Rows are independent given H: linears that share an input (q/k/v, gate/up) may be quantized in
/// one call on their concatenated weights, which factors H once, with identical results.
///
/// Note [GPTQ without H⁻¹]: GPTQ needs U, the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU). We never
/// form H⁻¹: with H = V Vᵀ, V upper (the Cholesky factor of the row/column-reversed H, reversed
/// back), U = V⁻¹, and GPTQ's updates w_j -= Σ_{c<j} err_c U_cj become
/// w_j = W0_j + Σ_{c<j} (W0_c − Q_c) · V_cj / V_jj. Same result in exact arithmetic, one Cholesky
/// instead of three factorisations (about 4x less work on H).
GptqResult gptqQuantize(const at::Tensor& w, const at::Tensor& h, const GptqOptions& opt,
                        const ProgressFn& progress = {});

} // namespace moewb
