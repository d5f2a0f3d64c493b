// SPDX-License-Identifier: MIT
// Masks and SparseGPT (engine/quant/sparse.h). Layout as in quant/gptq.cpp: the working weight is
// kept transposed ([in, out]) so that one input column is contiguous; inside a block the columns
// run for chunks of kChunk output rows at a time (rows are independent given H), in parallel; the
// columns after a block receive the block's errors in one GEMM.
#include "quant/sparse.h"

#include "moewb/core/error.h"
#include "quant/grid.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace moewb {

namespace {

constexpr int64_t kChunk = 256;

void checkScores(const at::Tensor& s, const PruneSpec& spec)
{
    MOEWB_CHECK(s.dim() == 2 && s.size(0) > 0 && s.size(1) > 0, "prune", "expected a non-empty 2-D weight, got ",
                s.sizes());
    checkPruneSpec(PruneSpec{"magnitude", spec.sparsity, spec.pattern}, s.size(1), "prune");
}

} // namespace

at::Tensor lowestScoreMask(const at::Tensor& scores, const PruneSpec& spec)
{
    checkScores(scores, spec);
    const int64_t n = scores.size(0), k = scores.size(1);
    const at::Tensor s = scores.to(at::kDouble).contiguous();
    if (spec.pattern.structured()) {
        const int64_t m = spec.pattern.m, drop = m - spec.pattern.n;
        const at::Tensor idx = std::get<1>(at::sort(s.view({n, k / m, m}), /*stable=*/true, /*dim=*/2, /*descending=*/false));
        at::Tensor mask = at::zeros({n, k / m, m}, at::kBool);
        mask.scatter_(2, idx.narrow(2, 0, drop), true);
        return mask.view({n, k});
    }
    const int64_t drop = prunedPerRow(spec, k);
    at::Tensor mask = at::zeros({n, k}, at::kBool);
    if (drop > 0) {
        const at::Tensor idx = std::get<1>(at::sort(s, /*stable=*/true, /*dim=*/1, /*descending=*/false));
        mask.scatter_(1, idx.narrow(1, 0, drop), true);
    }
    return mask;
}

at::Tensor magnitudeMask(const at::Tensor& w, const PruneSpec& spec)
{
    return lowestScoreMask(w.to(at::kDouble).abs(), spec);
}

at::Tensor wandaMask(const at::Tensor& w, const at::Tensor& actSqMean, const PruneSpec& spec)
{
    MOEWB_CHECK(w.dim() == 2 && actSqMean.dim() == 1 && actSqMean.size(0) == w.size(1), "wanda",
                "input norms have shape ", actSqMean.sizes(), ", the weight ", w.sizes());
    const at::Tensor a = actSqMean.to(at::kDouble);
    MOEWB_CHECK(at::isfinite(a).all().item<bool>() && (a >= 0).all().item<bool>(), "wanda",
                "input mean squares must be finite and non-negative");
    return lowestScoreMask(w.to(at::kDouble).abs() * a.sqrt().unsqueeze(0), spec);
}

namespace {

template <typename T>
struct Sweep {
    int64_t n = 0, k = 0, g = 0;
    int64_t bits = 16;
    bool sym = true;
    bool quant = false;
    bool choose = true;        ///< choose the mask (SparseGPT) or use the given one
    int64_t nmN = 0, nmM = 0;  ///< N:M pattern (0: unstructured)
    int64_t totalDrop = 0;     ///< unstructured: pruned per row
    T maxq = 15;
    T* wt = nullptr;           ///< [k, n] current weights
    const T* u = nullptr;      ///< [k, k] upper Cholesky factor of H⁻¹
    uint8_t* mt = nullptr;     ///< [k, n] 1 = pruned
    T* outT = nullptr;         ///< [k, n] final values
    int32_t* qt = nullptr;     ///< [k, n] codes (quant)
    T* scalesT = nullptr;      ///< [groups, n]
    T* zerosT = nullptr;       ///< [groups, n]
    T* err = nullptr;          ///< [block, n] (w − v)/U_jj of the current block

    int64_t quota(int64_t i) const { return totalDrop * i / k; } // pruned per row among columns [0, i)
};

/// Columns [i1, i2) for output rows [s0, s1). buf holds (i2 − i1) x kChunk values.
template <typename T>
void sweepChunk(const Sweep<T>& p, int64_t i1, int64_t i2, int64_t s0, int64_t s1, T* buf)
{
    const int64_t nb = i2 - i1, w = s1 - s0, n = p.n, k = p.k;
    for (int64_t c = 0; c < nb; ++c)
        std::copy(p.wt + (i1 + c) * n + s0, p.wt + (i1 + c) * n + s1, buf + c * kChunk);
    // Current value of column r (in this block: with the in-block updates so far) for row j.
    auto cur = [&](int64_t r, int64_t j) { return r < i2 ? buf[(r - i1) * kChunk + j] : p.wt[r * n + s0 + j]; };
    auto saliency = [&](int64_t r, int64_t j) {
        const T v = cur(r, j), d = p.u[r * k + r];
        return (v * v) / (d * d);
    };
    std::vector<std::pair<T, int64_t>> cand(size_t(std::max<int64_t>(nb, p.nmM)));
    if (p.choose && p.nmM == 0) {
        const int64_t drop = p.quota(i2) - p.quota(i1);
        if (drop > 0)
            for (int64_t j = 0; j < w; ++j) {
                for (int64_t c = 0; c < nb; ++c)
                    cand[size_t(c)] = {saliency(i1 + c, j), i1 + c};
                std::nth_element(cand.begin(), cand.begin() + (drop - 1), cand.begin() + nb);
                for (int64_t c = 0; c < drop; ++c)
                    p.mt[cand[size_t(c)].second * n + s0 + j] = 1;
            }
    }
    std::vector<T> lo(static_cast<size_t>(w)), hi(static_cast<size_t>(w));
    for (int64_t c = 0; c < nb; ++c) {
        const int64_t col = i1 + c;
        if (p.choose && p.nmM > 0 && col % p.nmM == 0) {
            const int64_t drop = p.nmM - p.nmN;
            for (int64_t j = 0; j < w; ++j) {
                for (int64_t r = 0; r < p.nmM; ++r)
                    cand[size_t(r)] = {saliency(col + r, j), col + r};
                std::partial_sort(cand.begin(), cand.begin() + drop, cand.begin() + p.nmM);
                for (int64_t r = 0; r < drop; ++r)
                    p.mt[cand[size_t(r)].second * n + s0 + j] = 1;
            }
        }
        if (p.quant && col % p.g == 0) {
            // The group's grid from its current weights not already marked pruned.
            const int64_t gi = col / p.g, end = std::min(k, col + p.g);
            std::fill(lo.begin(), lo.end(), std::numeric_limits<T>::infinity());
            std::fill(hi.begin(), hi.end(), -std::numeric_limits<T>::infinity());
            for (int64_t r = col; r < end; ++r)
                for (int64_t j = 0; j < w; ++j) {
                    if (p.mt[r * n + s0 + j])
                        continue;
                    const T v = cur(r, j);
                    lo[size_t(j)] = std::min(lo[size_t(j)], v);
                    hi[size_t(j)] = std::max(hi[size_t(j)], v);
                }
            for (int64_t j = 0; j < w; ++j) {
                const T l = std::isfinite(lo[size_t(j)]) ? lo[size_t(j)] : T(0);
                const T h = std::isfinite(hi[size_t(j)]) ? hi[size_t(j)] : T(0);
                const Grid<T> grid = gridFromRange(l, h, p.bits, p.sym);
                p.scalesT[gi * n + s0 + j] = grid.scale;
                p.zerosT[gi * n + s0 + j] = grid.zero;
            }
        }
        T* x = buf + c * kChunk;
        T* e = p.err + c * n + s0;
        T* o = p.outT + col * n + s0;
        const uint8_t* m = p.mt + col * n + s0;
        const T d = p.u[col * k + col];
        if (p.quant) {
            const int64_t gi = col / p.g;
            const T* sc = p.scalesT + gi * n + s0;
            const T* ze = p.zerosT + gi * n + s0;
            int32_t* q = p.qt + col * n + s0;
            for (int64_t j = 0; j < w; ++j) {
                const T code = m[j] ? ze[j] : quantCode(x[j], sc[j], ze[j], p.maxq);
                const T v = dequantCode(code, sc[j], ze[j]);
                q[j] = int32_t(code);
                o[j] = v;
                e[j] = (x[j] - v) / d;
            }
        } else {
            for (int64_t j = 0; j < w; ++j) {
                const T v = m[j] ? T(0) : x[j];
                o[j] = v;
                e[j] = (x[j] - v) / d;
            }
        }
        const T* urow = p.u + col * k + i1;
        for (int64_t r = c + 1; r < nb; ++r) {
            const T a = urow[r];
            if (a == 0)
                continue;
            T* y = buf + r * kChunk;
            for (int64_t j = 0; j < w; ++j)
                y[j] -= a * e[j];
        }
    }
}

/// H = V Vᵀ with V upper: the lower Cholesky factor of the reversed H, reversed back.
at::Tensor upperFactor(const at::Tensor& h)
{
    at::Tensor l, info;
    std::tie(l, info) = at::linalg_cholesky_ex(h.flip({0, 1}));
    if (info.item<int64_t>() != 0 || !at::isfinite(l).all().item<bool>())
        return {};
    return l.flip({0, 1}).contiguous();
}

template <typename T>
SparseGptResult sparseGptImpl(const at::Tensor& w, const at::Tensor& h, const SparseGptOptions& opt,
                              const ProgressFn& progress)
{
    const auto t0 = std::chrono::steady_clock::now();
    const at::ScalarType dt = std::is_same<T, double>::value ? at::kDouble : at::kFloat;
    const int64_t n = w.size(0), k = w.size(1);
    const PrunePattern& pat = opt.spec.pattern;
    int64_t block = std::max<int64_t>(1, std::min(opt.blockSize, k));
    if (pat.structured())
        block = (block + pat.m - 1) / pat.m * pat.m;
    const int64_t g = (opt.groupSize <= 0 || opt.groupSize > k) ? k : opt.groupSize;
    const int64_t groups = (k + g - 1) / g;
    const bool quant = opt.bits < 16;

    at::Tensor W = w.to(dt, false, true).contiguous();
    at::Tensor H = h.to(dt, false, true).contiguous();
    MOEWB_CHECK(at::isfinite(W).all().item<bool>(), "sparsegpt", "weight contains NaN or Inf");
    MOEWB_CHECK(at::isfinite(H).all().item<bool>(), "sparsegpt", "Hessian contains NaN or Inf");
    MOEWB_CHECK((H.diagonal() >= 0).all().item<bool>(), "sparsegpt", "Hessian has a negative diagonal entry");
    const at::Tensor dead = H.diagonal() == 0;
    if (dead.any().item<bool>()) {
        H.diagonal().masked_fill_(dead, 1);
        W.masked_fill_(dead.unsqueeze(0), 0);
    }
    const at::Tensor diag0 = H.diagonal().clone();
    const double meanDiag = diag0.mean().item<double>();
    double pct = opt.dampPercent;
    at::Tensor V;
    for (;;) {
        H.diagonal().copy_(diag0 + pct * meanDiag);
        V = upperFactor(H);
        if (V.defined())
            break;
        MOEWB_CHECK(pct < 100, "sparsegpt", "Hessian is not positive definite even with damping ", pct,
                    " x mean(diag H)");
        pct = std::max(pct * 10, 0.01);
    }
    H = at::Tensor();
    // U = V⁻¹: H⁻¹ = V⁻ᵀ V⁻¹ = Uᵀ U with U upper, positive diagonal: H⁻¹'s upper Cholesky factor.
    const at::Tensor U = at::linalg_solve_triangular(V, at::eye(k, dt), /*upper=*/true).contiguous();
    V = at::Tensor();
    const auto tFactor = std::chrono::steady_clock::now();

    at::Tensor Wt = W.t().contiguous();
    W = at::Tensor();
    at::Tensor Mt = opt.fixedMask.defined() ? opt.fixedMask.t().to(at::kByte).contiguous() : at::zeros({k, n}, at::kByte);
    at::Tensor Out = at::empty({k, n}, dt);
    at::Tensor Qt = quant ? at::empty({k, n}, at::kInt) : at::Tensor();
    at::Tensor scalesT = quant ? at::empty({groups, n}, dt) : at::Tensor();
    at::Tensor zerosT = quant ? at::empty({groups, n}, dt) : at::Tensor();
    at::Tensor E = at::empty({block, n}, dt);

    Sweep<T> p;
    p.n = n;
    p.k = k;
    p.g = g;
    p.bits = opt.bits;
    p.sym = opt.sym;
    p.quant = quant;
    p.choose = !opt.fixedMask.defined();
    p.nmN = pat.n;
    p.nmM = pat.m;
    p.totalDrop = pat.structured() ? 0 : prunedPerRow(opt.spec, k);
    p.maxq = quant ? T((int64_t(1) << opt.bits) - 1) : T(0);
    p.wt = Wt.data_ptr<T>();
    p.u = U.data_ptr<T>();
    p.mt = Mt.data_ptr<uint8_t>();
    p.outT = Out.data_ptr<T>();
    p.qt = quant ? Qt.data_ptr<int32_t>() : nullptr;
    p.scalesT = quant ? scalesT.data_ptr<T>() : nullptr;
    p.zerosT = quant ? zerosT.data_ptr<T>() : nullptr;
    p.err = E.data_ptr<T>();

    // Block ends: a quantization group longer than a block starts at a block's first column and a
    // shorter one never straddles a block, so that every grid sees the group's current weights.
    auto blockEnd = [&](int64_t i1) {
        if (!quant)
            return std::min(i1 + block, k);
        if (g >= block)
            return std::min({i1 + block, (i1 / g + 1) * g, k});
        return std::min(i1 + std::max<int64_t>(1, block / g) * g, k);
    };
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    report(progress, "sparsegpt", 0, k);
    for (int64_t i1 = 0; i1 < k;) {
        const int64_t i2 = blockEnd(i1), nb = i2 - i1;
        if (nb > E.size(0))
            E = at::empty({nb, n}, dt), p.err = E.data_ptr<T>();
        at::parallel_for(0, chunks, 1, [&](int64_t a, int64_t b) {
            std::vector<T> buf(size_t(nb * kChunk));
            for (int64_t ch = a; ch < b; ++ch)
                sweepChunk(p, i1, i2, ch * kChunk, std::min(n, (ch + 1) * kChunk), buf.data());
        });
        if (i2 < k)
            Wt.narrow(0, i2, k - i2).addmm_(U.narrow(0, i1, nb).narrow(1, i2, k - i2).t(), E.narrow(0, 0, nb), 1, -1);
        report(progress, "sparsegpt", i2, k);
        i1 = i2;
    }

    SparseGptResult r;
    r.weight = Out.t().contiguous();
    r.mask = Mt.t().to(at::kBool).contiguous();
    if (quant) {
        r.q = Qt.t().contiguous();
        r.scales = scalesT.t().contiguous();
        r.zeros = zerosT.t().contiguous();
        r.gIdx = at::arange(k, at::kInt).div(g, "floor").to(at::kInt);
    }
    r.dampUsed = pct;
    r.dampLambda = pct * meanDiag;
    const auto t1 = std::chrono::steady_clock::now();
    r.secondsFactor = std::chrono::duration<double>(tFactor - t0).count();
    r.seconds = std::chrono::duration<double>(t1 - t0).count();
    return r;
}

} // namespace

SparseGptResult sparseGpt(const at::Tensor& w, const at::Tensor& h, const SparseGptOptions& opt,
                          const ProgressFn& progress)
{
    MOEWB_CHECK(w.dim() == 2 && w.size(0) > 0 && w.size(1) > 0, "sparsegpt", "expected a non-empty 2-D weight, got ",
                w.sizes());
    MOEWB_CHECK(h.dim() == 2 && h.size(0) == w.size(1) && h.size(1) == w.size(1), "sparsegpt", "Hessian shape ",
                h.sizes(), " does not match the weight's ", w.size(1), " input features");
    checkPruneSpec(PruneSpec{"sparsegpt", opt.spec.sparsity, opt.spec.pattern}, w.size(1), "sparsegpt");
    MOEWB_CHECK(opt.bits >= 1 && opt.bits <= 16, "sparsegpt", "bits ", opt.bits, " out of range");
    MOEWB_CHECK(opt.blockSize >= 1, "sparsegpt", "block size must be positive, got ", opt.blockSize);
    MOEWB_CHECK(std::isfinite(opt.dampPercent) && opt.dampPercent >= 0, "sparsegpt", "damping ", opt.dampPercent,
                " must be a finite non-negative fraction");
    if (opt.fixedMask.defined())
        MOEWB_CHECK(opt.fixedMask.sizes() == w.sizes(), "sparsegpt", "mask shape ", opt.fixedMask.sizes(),
                    " differs from the weight's ", w.sizes());
    return opt.float64 ? sparseGptImpl<double>(w, h, opt, progress) : sparseGptImpl<float>(w, h, opt, progress);
}

} // namespace moewb
