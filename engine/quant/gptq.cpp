// SPDX-License-Identifier: MIT
// GPTQ: see Note [GPTQ without H⁻¹] in gptq.h for the factorisation. Layout: the working weight is
// kept transposed ([in, out]) so that one input column is one contiguous row; inside a lazy-batch
// block the columns are processed for chunks of kChunk output rows at a time (rows of W are
// independent given H), so a block's values stay in cache and the chunks run in parallel; the
// update of the columns after the block is one GEMM.
#include "quant/gptq.h"

#include "moewb/core/error.h"
#include "quant/grid.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

namespace moewb {

namespace {

constexpr int64_t kChunk = 256;     // output rows processed together inside a block

/// H = V Vᵀ with V upper triangular: the lower Cholesky factor of the reversed H, reversed back.
/// Undefined when the factorisation fails (H not numerically positive definite).
at::Tensor upperFactor(const at::Tensor& h)
{
    at::Tensor l, info;
    std::tie(l, info) = at::linalg_cholesky_ex(h.flip({0, 1}));
    if (info.item<int64_t>() != 0 || !at::isfinite(l).all().item<bool>())
        return {};
    return l.flip({0, 1}).contiguous(); // LAPACK results may come column-major
}

template <typename T>
struct Problem {
    int64_t n = 0, k = 0, g = 0;
    int64_t bits = 4;
    bool sym = true;
    bool lazyGrids = true; ///< grids computed when a group starts (not static)
    T maxq = 15;
    const T* w0 = nullptr;       ///< [n, k] original weight in quantization order (dead columns zeroed)
    T* wt = nullptr;             ///< [k, n] working weight (current values), quantization order
    const T* rhat = nullptr;     ///< [k, k] V_cj / V_jj (strictly upper part used)
    const T* vdiag = nullptr;    ///< [k] V_jj
    const int64_t* groupOf = nullptr; ///< [k] grid row of each column in quantization order
    int32_t* qt = nullptr;       ///< [k, n] codes, quantization order
    T* scalesT = nullptr;        ///< [groups, n]
    T* zerosT = nullptr;         ///< [groups, n]
    T* dblk = nullptr;           ///< [block, n] W0 − Q of the current block
};

/// Columns [i1, i2) for output rows [s0, s1): grids of groups starting here, codes, W0 − Q, and the
/// in-block updates. buf/buf0 hold (i2 - i1) x kChunk values, ybuf min(g, k) x kChunk. Returns Σ err²
/// over the chunk.
template <typename T>
double processChunk(const Problem<T>& p, int64_t i1, int64_t i2, int64_t s0, int64_t s1, T* buf, T* buf0, T* ybuf)
{
    const int64_t nb = i2 - i1, w = s1 - s0, n = p.n, k = p.k;
    for (int64_t c = 0; c < nb; ++c)
        std::copy(p.wt + (i1 + c) * n + s0, p.wt + (i1 + c) * n + s1, buf + c * kChunk);
    for (int64_t j = 0; j < w; ++j) {
        const T* src = p.w0 + (s0 + j) * k + i1;
        for (int64_t c = 0; c < nb; ++c)
            buf0[c * kChunk + j] = src[c];
    }
    double loss = 0;
    T lo[kChunk], hi[kChunk];
    for (int64_t c = 0; c < nb; ++c) {
        const int64_t col = i1 + c;
        T* x = buf + c * kChunk;
        if (p.lazyGrids && col % p.g == 0) {
            // The grid comes from GPTQ's current weights of the group's columns [col, end). The block
            // layout makes those columns available: inside the block with every in-block update so
            // far, or (a group longer than a block) starting at this block's first column.
            const int64_t gi = col / p.g, end = std::min(k, col + p.g);
            std::fill(lo, lo + w, std::numeric_limits<T>::infinity());
            std::fill(hi, hi + w, -std::numeric_limits<T>::infinity());
            if (col == 0) {
                for (int64_t r = col; r < end; ++r) {
                    const T* src = r < i2 ? buf + (r - i1) * kChunk : p.wt + r * n + s0;
                    for (int64_t j = 0; j < w; ++j) {
                        lo[j] = std::min(lo[j], src[j]);
                        hi[j] = std::max(hi[j], src[j]);
                    }
                }
            } else {
                // Note [Intermediate GPTQ state]: our running values x_r = W0_r + Σ_{c<col} D_c R̂_cr are
                // GPTQ's weights only once all columns before r are quantized. GPTQ's weights after
                // the columns before `col` are the OBS compensation W0_F + D_Q V_QF V_FF⁻¹ (F = [col, k));
                // on the group's columns V_FF⁻¹ reduces to the inverse of the group's own triangle,
                // i.e. W0_r + y_r with y_r = (x_r − W0_r) − Σ_{m∈[col,r)} R̂_mr y_m.
                for (int64_t r = col; r < end; ++r) {
                    const bool in = r < i2;
                    const T* src = in ? buf + (r - i1) * kChunk : p.wt + r * n + s0;
                    T* yr = ybuf + (r - col) * kChunk;
                    if (in) {
                        const T* src0 = buf0 + (r - i1) * kChunk;
                        for (int64_t j = 0; j < w; ++j)
                            yr[j] = src[j] - src0[j];
                    } else {
                        for (int64_t j = 0; j < w; ++j)
                            yr[j] = src[j] - p.w0[(s0 + j) * k + r];
                    }
                    for (int64_t m = col; m < r; ++m) {
                        const T a = p.rhat[m * k + r];
                        if (a == 0)
                            continue;
                        const T* ym = ybuf + (m - col) * kChunk;
                        for (int64_t j = 0; j < w; ++j)
                            yr[j] -= a * ym[j];
                    }
                    for (int64_t j = 0; j < w; ++j) {
                        const T v = (in ? buf0[(r - i1) * kChunk + j] : p.w0[(s0 + j) * k + r]) + yr[j];
                        lo[j] = std::min(lo[j], v);
                        hi[j] = std::max(hi[j], v);
                    }
                }
            }
            for (int64_t j = 0; j < w; ++j) {
                const Grid<T> grid = gridFromRange(lo[j], hi[j], p.bits, p.sym);
                p.scalesT[gi * n + s0 + j] = grid.scale;
                p.zerosT[gi * n + s0 + j] = grid.zero;
            }
        }
        const int64_t gi = p.groupOf[col];
        const T* sc = p.scalesT + gi * n + s0;
        const T* ze = p.zerosT + gi * n + s0;
        const T* x0 = buf0 + c * kChunk;
        T* d = p.dblk + c * n + s0;
        int32_t* q = p.qt + col * n + s0;
        const T vd = p.vdiag[col];
        double l = 0;
        for (int64_t j = 0; j < w; ++j) {
            const T qv = quantCode(x[j], sc[j], ze[j], p.maxq);
            const T deq = dequantCode(qv, sc[j], ze[j]);
            q[j] = int32_t(qv);
            d[j] = x0[j] - deq;
            const T e = (x[j] - deq) * vd;
            l += double(e) * double(e);
        }
        loss += l;
        const T* coef = p.rhat + col * k + i1;
        for (int64_t r = c + 1; r < nb; ++r) {
            const T a = coef[r];
            if (a == 0)
                continue;
            T* y = buf + r * kChunk;
            for (int64_t j = 0; j < w; ++j)
                y[j] += a * d[j];
        }
    }
    return loss;
}

template <typename T>
void gridsOfRows(const T* w, int64_t n, int64_t k, int64_t g, int64_t bits, bool sym, T* scalesT, T* zerosT)
{
    const int64_t groups = (k + g - 1) / g;
    at::parallel_for(0, n, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t row = r0; row < r1; ++row)
            for (int64_t gi = 0; gi < groups; ++gi) {
                T lo = std::numeric_limits<T>::infinity(), hi = -lo;
                for (int64_t c = gi * g; c < std::min(k, gi * g + g); ++c) {
                    lo = std::min(lo, w[row * k + c]);
                    hi = std::max(hi, w[row * k + c]);
                }
                const Grid<T> grid = gridFromRange(lo, hi, bits, sym);
                scalesT[gi * n + row] = grid.scale;
                zerosT[gi * n + row] = grid.zero;
            }
    });
}

template <typename T>
GptqResult gptqImpl(const at::Tensor& w, const at::Tensor& h, const GptqOptions& opt, const ProgressFn& progress)
{
    const auto t0 = std::chrono::steady_clock::now();
    const at::ScalarType dt = std::is_same<T, double>::value ? at::kDouble : at::kFloat;
    const int64_t n = w.size(0), k = w.size(1);
    const int64_t g = (opt.groupSize <= 0 || opt.groupSize > k) ? k : opt.groupSize;
    const int64_t groups = (k + g - 1) / g;
    const int64_t block = std::max<int64_t>(1, std::min(opt.blockSize, k));

    at::Tensor W = w.to(dt, false, true).contiguous();
    at::Tensor H = h.to(dt, false, true).contiguous();
    MOEWB_CHECK(at::isfinite(W).all().item<bool>(), "gptqQuantize", "weight contains NaN or Inf");
    MOEWB_CHECK(at::isfinite(H).all().item<bool>(), "gptqQuantize", "Hessian contains NaN or Inf");
    MOEWB_CHECK((H.diagonal() >= 0).all().item<bool>(), "gptqQuantize", "Hessian has a negative diagonal entry");

    // Dead inputs: never active, so their weights do not matter; GPTQ zeroes them and sets H_ii = 1.
    const at::Tensor dead = H.diagonal() == 0;
    if (dead.any().item<bool>()) {
        H.diagonal().masked_fill_(dead, 1);
        W.masked_fill_(dead.unsqueeze(0), 0);
    }

    at::Tensor scalesT = at::empty({groups, n}, dt), zerosT = at::empty({groups, n}, dt);
    if (opt.staticGroups)
        gridsOfRows<T>(W.data_ptr<T>(), n, k, g, opt.bits, opt.sym, scalesT.data_ptr<T>(), zerosT.data_ptr<T>());

    at::Tensor perm, invperm;
    if (opt.actOrder) {
        perm = std::get<1>(at::sort(H.diagonal(), /*stable=*/true, /*dim=*/0, /*descending=*/true));
        invperm = at::argsort(perm);
        H = H.index_select(0, perm).index_select(1, perm);
        W = W.index_select(1, perm);
    }
    std::vector<int64_t> groupOf(size_t(k), 0);
    {
        const int64_t* pp = perm.defined() ? perm.data_ptr<int64_t>() : nullptr;
        for (int64_t c = 0; c < k; ++c)
            groupOf[size_t(c)] = (opt.staticGroups && pp ? pp[c] : c) / g;
    }

    // Damping, raised ×10 (from at least 1 %) while the factorisation fails.
    const at::Tensor diag0 = H.diagonal().clone();
    const double meanDiag = diag0.mean().item<double>();
    double pct = opt.dampPercent;
    at::Tensor V;
    for (;;) {
        H.diagonal().copy_(diag0 + pct * meanDiag);
        V = upperFactor(H);
        if (V.defined())
            break;
        MOEWB_CHECK(pct < 100, "gptqQuantize", "Hessian is not positive definite even with damping ", pct,
                    " x mean(diag H)");
        pct = std::max(pct * 10, 0.01);
    }
    H = at::Tensor();
    const at::Tensor vdiag = V.diagonal().contiguous();
    const at::Tensor rhat = V.div_(vdiag.unsqueeze(0));
    const auto tFactor = std::chrono::steady_clock::now();

    at::Tensor Wt = W.t().contiguous();
    at::Tensor Qt = at::empty({k, n}, at::kInt);
    at::Tensor D = at::empty({block, n}, dt);
    Problem<T> p;
    p.n = n;
    p.k = k;
    p.g = g;
    p.bits = opt.bits;
    p.sym = opt.sym;
    p.lazyGrids = !opt.staticGroups;
    p.maxq = T((int64_t(1) << opt.bits) - 1);
    p.w0 = W.data_ptr<T>();
    p.wt = Wt.data_ptr<T>();
    p.rhat = rhat.data_ptr<T>();
    p.vdiag = vdiag.data_ptr<T>();
    p.groupOf = groupOf.data();
    p.qt = Qt.data_ptr<int32_t>();
    p.scalesT = scalesT.data_ptr<T>();
    p.zerosT = zerosT.data_ptr<T>();
    p.dblk = D.data_ptr<T>();

    // Block ends: with lazy grids a block never splits a group that starts inside it, and a group
    // longer than a block starts at a block's first column, so every grid sees current weights.
    auto blockEnd = [&](int64_t i1) {
        if (!p.lazyGrids)
            return std::min(i1 + block, k);
        if (g >= block)
            return std::min({i1 + block, (i1 / g + 1) * g, k});
        return std::min(i1 + (block / g) * g, k);
    };

    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> lossParts(size_t(chunks), 0.0);
    report(progress, "gptq", 0, k);
    for (int64_t i1 = 0; i1 < k;) {
        const int64_t i2 = blockEnd(i1), nb = i2 - i1;
        at::parallel_for(0, chunks, 1, [&](int64_t a, int64_t b) {
            std::vector<T> buf(size_t(nb * kChunk)), buf0(size_t(nb * kChunk));
            std::vector<T> ybuf(p.lazyGrids && g < k ? size_t(g * kChunk) : 0);
            for (int64_t ch = a; ch < b; ++ch)
                lossParts[size_t(ch)] += processChunk(p, i1, i2, ch * kChunk, std::min(n, (ch + 1) * kChunk),
                                                      buf.data(), buf0.data(), ybuf.data());
        });
        if (i2 < k)
            Wt.narrow(0, i2, k - i2).addmm_(rhat.narrow(0, i1, nb).narrow(1, i2, k - i2).t(), D.narrow(0, 0, nb));
        report(progress, "gptq", i2, k);
        i1 = i2;
    }

    GptqResult r;
    r.q = (opt.actOrder ? Qt.index_select(0, invperm) : Qt).t().contiguous();
    r.scales = scalesT.t().contiguous();
    r.zeros = zerosT.t().contiguous();
    r.gIdx = at::empty({k}, at::kInt);
    {
        int32_t* gi = r.gIdx.data_ptr<int32_t>();
        const int64_t* ip = invperm.defined() ? invperm.data_ptr<int64_t>() : nullptr;
        for (int64_t i = 0; i < k; ++i)
            gi[i] = int32_t((opt.actOrder && !opt.staticGroups ? ip[i] : i) / g);
    }
    r.dequant = at::empty({n, k}, dt);
    {
        const int32_t* pq = r.q.data_ptr<int32_t>();
        const int32_t* gi = r.gIdx.data_ptr<int32_t>();
        const T* ps = r.scales.data_ptr<T>();
        const T* pz = r.zeros.data_ptr<T>();
        T* pd = r.dequant.data_ptr<T>();
        at::parallel_for(0, n, 16, [&](int64_t r0, int64_t r1) {
            for (int64_t row = r0; row < r1; ++row)
                for (int64_t i = 0; i < k; ++i) {
                    const int64_t gr = row * groups + gi[i];
                    pd[row * k + i] = dequantCode(T(pq[row * k + i]), ps[gr], pz[gr]);
                }
        });
    }
    double loss = 0;
    for (double l : lossParts)
        loss += l;
    r.loss = 0.5 * loss;
    r.dampUsed = pct;
    r.dampLambda = pct * meanDiag;
    const auto t1 = std::chrono::steady_clock::now();
    r.secondsFactor = std::chrono::duration<double>(tFactor - t0).count();
    r.seconds = std::chrono::duration<double>(t1 - t0).count();
    return r;
}

} // namespace

HessianAccumulator::HessianAccumulator(int64_t inFeatures)
    : m_in(inFeatures)
{
    MOEWB_CHECK(inFeatures > 0, "HessianAccumulator", "in_features must be positive, got ", inFeatures);
}

void HessianAccumulator::add(const at::Tensor& x)
{
    MOEWB_CHECK(x.dim() >= 1 && x.size(-1) == m_in, "HessianAccumulator", "input has ",
                x.dim() >= 1 ? x.size(-1) : 0, " features, expected ", m_in);
    const at::Tensor xf = x.reshape({-1, m_in}).to(at::kFloat);
    addRows(xf, double(xf.size(0)));
}

void HessianAccumulator::add(const at::Tensor& x, const at::Tensor& w)
{
    MOEWB_CHECK(x.dim() >= 1 && x.size(-1) == m_in, "HessianAccumulator", "input has ",
                x.dim() >= 1 ? x.size(-1) : 0, " features, expected ", m_in);
    const at::Tensor xf = x.reshape({-1, m_in}).to(at::kFloat);
    const at::Tensor wd = w.reshape({-1}).to(at::kDouble);
    MOEWB_CHECK(wd.size(0) == xf.size(0), "HessianAccumulator", wd.size(0), " weights for ", xf.size(0), " rows");
    if (xf.size(0) == 0)
        return;
    MOEWB_CHECK(at::isfinite(wd).all().item<bool>() && wd.min().item<double>() >= 0, "HessianAccumulator",
                "row weights must be finite and non-negative");
    addRows(xf * wd.sqrt().to(at::kFloat).unsqueeze(1), wd.sum().item<double>());
}

void HessianAccumulator::addRows(const at::Tensor& xf, double weight)
{
    const int64_t rows = xf.size(0);
    if (rows == 0)
        return;
    // One add's Σ x xᵀ in float32 (the fast GEMM), folded into the float64 total at once: between
    // adds an accumulator holds 8·in² bytes and nothing else. A layer holds one accumulator per
    // expert input (64+ on fine-grained MoEs), and float32 partial sums kept across adds (16 MiB
    // each at in = 2048) both added 12·in² per expert and fragmented the heap (docs/performance.md,
    // "Memory growth per layer").
    const at::Tensor part = at::mm(xf.t(), xf);
    if (!m_sum64.defined())
        m_sum64 = part.to(at::kDouble);
    else
        m_sum64.add_(part);
    m_rows += rows;
    m_weight += weight;
}

void HessianAccumulator::reduceWith(ReduceList& r, bool withTotal)
{
    if (!m_sum64.defined())
        m_sum64 = at::zeros({m_in, m_in}, at::kDouble);
    MOEWB_ASSERT(m_sum64.is_contiguous());
    r.sum(&m_rows, 1);
    r.sum(&m_weight, 1);
    if (withTotal)
        r.sum(m_sum64.data_ptr<double>(), size_t(m_sum64.numel()));
}

at::Tensor HessianAccumulator::hessian() const
{
    at::Tensor out = at::zeros({m_in, m_in}, at::kFloat);
    if (m_rows == 0 || !(m_weight > 0))
        return out;
    const double half = 1.0 / m_weight; // ½ · 2 / Σ w (Σ w = rows unweighted)
    const double* ps = m_sum64.data_ptr<double>();
    float* po = out.data_ptr<float>();
    const int64_t n = m_in, tile = 64, tiles = (n + tile - 1) / tile;
    // (S + Sᵀ) / 2 · (2 / rows), tile by tile so that the transposed reads stay in cache.
    at::parallel_for(0, tiles, 1, [&](int64_t a, int64_t b) {
        for (int64_t ti = a; ti < b; ++ti)
            for (int64_t j0 = 0; j0 < n; j0 += tile)
                for (int64_t i = ti * tile; i < std::min(n, ti * tile + tile); ++i)
                    for (int64_t j = j0; j < std::min(n, j0 + tile); ++j)
                        po[i * n + j] = float(half * (ps[i * n + j] + ps[j * n + i]));
    });
    return out;
}

GptqResult gptqQuantize(const at::Tensor& w, const at::Tensor& h, const GptqOptions& opt, const ProgressFn& progress)
{
    MOEWB_CHECK(w.dim() == 2, "gptqQuantize", "expected a 2-D weight, got ", w.dim(), " dims");
    MOEWB_CHECK(h.dim() == 2 && h.size(0) == w.size(1) && h.size(1) == w.size(1), "gptqQuantize",
                "Hessian shape ", h.sizes(), " does not match the weight's ", w.size(1), " input features");
    MOEWB_CHECK(w.size(0) > 0 && w.size(1) > 0, "gptqQuantize", "empty weight ", w.sizes());
    MOEWB_CHECK(opt.bits >= 1 && opt.bits <= 16, "gptqQuantize", "bits ", opt.bits, " out of range");
    MOEWB_CHECK(opt.blockSize >= 1, "gptqQuantize", "block size must be positive, got ", opt.blockSize);
    MOEWB_CHECK(std::isfinite(opt.dampPercent) && opt.dampPercent >= 0, "gptqQuantize", "damping ",
                opt.dampPercent, " must be a finite non-negative fraction");
    return opt.float64 ? gptqImpl<double>(w, h, opt, progress) : gptqImpl<float>(w, h, opt, progress);
}

} // namespace moewb
