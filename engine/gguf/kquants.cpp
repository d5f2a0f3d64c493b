// SPDX-License-Identifier: MIT
// K-quant encoders (Q2_K … Q6_K), following ggml's published methods (ggml-quants.c,
// quantize_row_q*_K_ref without importance and quantize_row_q*_K_impl with it):
//   1. fit each sub-block on its own (affine types: scale and min; symmetric types: scale);
//   2. quantize the sub-block scales (and mins) to the stored integers with one fp16 step each
//      per super-block: by their maximum without importance, by a weighted fit with it;
//   3. re-round every code against the scales the decoder will really see.
// Importance weights (per column, e.g. E[x²] of the linear's inputs) enter as
// w_i = imp_i · sqrt(σ² + x_i²), σ² a multiple of the super-block's mean square.
#include "gguf/quant_detail.h"

#include "moewb/core/error.h"

#include <algorithm>
#include <cmath>

namespace moewb::gguf::detail {

namespace {

struct SubFit {
    float scale[16] = {};
    float min[16] = {};    ///< subtracted (≥ 0); affine types only
    float weight[16] = {}; ///< Σ of the sub-block's weights (importance path)
};

float meanSquare(const float* x, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; ++i)
        s += x[i] * x[i];
    return s / float(n);
}

/// Weights of one sub-block for the importance path: imp · sqrt(σ² + x²).
void importanceWeights(const float* x, const float* imp, int n, float sigma2, float* w)
{
    for (int i = 0; i < n; ++i)
        w[i] = imp[i] * std::sqrt(sigma2 + x[i] * x[i]);
}

/// Step 1 for Q2_K / Q4_K / Q5_K.
void fitAffineSubBlocks(GgmlType t, const float* x, const float* imp, KBlock& b, SubFit& f)
{
    const KLayout& L = kLayout(t);
    // Without importance: Q2_K weighs by |x| and compares trials by absolute error; Q4_K / Q5_K
    // add the sub-block's RMS to |x|. With importance: one finer grid for all three.
    AffineGrid grid{-0.9f, 0.05f, 36, false};
    if (!imp)
        grid = t == GgmlType::Q2_K ? AffineGrid{-0.5f, 0.1f, 15, true}
             : t == GgmlType::Q4_K ? AffineGrid{-1.0f, 0.1f, 20, false}
                                   : AffineGrid{-0.5f, 0.1f, 15, false};
    const float sigma2 = (t == GgmlType::Q2_K ? 1.0f : 2.0f) * meanSquare(x, kSuperBlock);
    float w[32];
    for (int j = 0; j < kSuperBlock / L.sub; ++j) {
        const float* xs = x + j * L.sub;
        if (imp) {
            importanceWeights(xs, imp + j * L.sub, L.sub, sigma2, w);
        } else {
            const float rms = t == GgmlType::Q2_K ? 0.0f : std::sqrt(meanSquare(xs, L.sub));
            for (int i = 0; i < L.sub; ++i)
                w[i] = rms + std::fabs(xs[i]);
        }
        f.weight[j] = 0.0f;
        for (int i = 0; i < L.sub; ++i)
            f.weight[j] += w[i];
        float offset = 0.0f;
        f.scale[j] = fitAffine(L.sub, L.codeMax, xs, w, grid, b.code + j * L.sub, &offset);
        f.min[j] = -offset;
    }
}

/// Step 2 without importance: the largest value maps to the largest stored integer.
float quantizeByMax(const float* v, int n, int top, int* stored)
{
    float peak = 0.0f;
    for (int j = 0; j < n; ++j)
        peak = std::max(peak, v[j]);
    const float inv = peak > 0.0f ? float(top) / peak : 0.0f;
    for (int j = 0; j < n; ++j)
        stored[j] = clampInt(roundInt(inv * v[j]), 0, top);
    return peak / float(top);
}

/// Step 2 for the affine types; sets d, dmin and the stored scales and mins.
void quantizeAffineScales(const KLayout& L, bool weighted, const SubFit& f, KBlock& b)
{
    const int n = kSuperBlock / L.sub;
    if (weighted) {
        uint8_t s[16], m[16];
        b.d = fitNonNegative(n, L.scaleMax, f.scale, f.weight, s);
        b.dmin = fitNonNegative(n, L.scaleMax, f.min, f.weight, m);
        for (int j = 0; j < n; ++j) {
            b.scale[j] = s[j];
            b.min[j] = m[j];
        }
    } else {
        b.d = quantizeByMax(f.scale, n, L.scaleMax, b.scale);
        b.dmin = quantizeByMax(f.min, n, L.scaleMax, b.min);
    }
    b.d = throughHalf(b.d);
    b.dmin = throughHalf(b.dmin);
}

/// Step 1 and 2 for Q3_K / Q6_K; sets d and the stored scales. False: the block is all zero.
bool fitSymmetricBlock(GgmlType t, const float* x, const float* imp, KBlock& b)
{
    const KLayout& L = kLayout(t);
    const int n = kSuperBlock / L.sub;
    const int nmax = L.codeBias;
    float scale[16], sw[16], w[16];
    const float sigma2 = 2.0f * meanSquare(x, kSuperBlock);
    for (int j = 0; j < n; ++j) {
        const float* xs = x + j * L.sub;
        int8_t* c = reinterpret_cast<int8_t*>(b.code + j * L.sub);
        if (imp && t == GgmlType::Q3_K)
            importanceWeights(xs, imp + j * L.sub, L.sub, sigma2, w);
        else if (imp)
            std::copy(imp + j * L.sub, imp + (j + 1) * L.sub, w); // Q6_K: the importance alone
        else
            for (int i = 0; i < L.sub; ++i)
                w[i] = xs[i] * xs[i];
        sw[j] = 0.0f;
        for (int i = 0; i < L.sub; ++i)
            sw[j] += w[i];
        scale[j] = t == GgmlType::Q3_K && !imp ? fitSymmetricSweep(L.sub, nmax, xs, c)
                                               : fitSymmetric(L.sub, nmax, xs, w, c);
    }
    if (t == GgmlType::Q3_K && imp) {
        int8_t s[16]; // the 6-bit scales as one more symmetric grid, weighted by Σw
        b.d = throughHalf(fitSymmetric(n, 32, scale, sw, s));
        for (int j = 0; j < n; ++j)
            b.scale[j] = s[j];
        return true;
    }
    float peak = 0.0f;
    for (int j = 0; j < n; ++j)
        if (std::fabs(scale[j]) > std::fabs(peak))
            peak = scale[j];
    const int half = L.scaleBias ? L.scaleBias : 128; // Q3_K: 6-bit biased; Q6_K: int8
    if (t == GgmlType::Q6_K && std::fabs(peak) < kTinyGroup)
        return false;
    if (peak == 0.0f) { // Q3_K: stored scales 0, d = 0, the fit's codes kept
        std::fill(b.scale, b.scale + n, 0);
        b.d = 0.0f;
        return true;
    }
    const float inv = -float(half) / peak;
    for (int j = 0; j < n; ++j)
        b.scale[j] = clampInt(roundInt(inv * scale[j]), -half, half - 1) + L.scaleBias;
    b.d = throughHalf(1.0f / inv);
    return true;
}

/// Step 3: the codes against the stored scales. Sub-blocks whose step is 0 keep the fit's codes.
void reroundCodes(const KLayout& L, const float* x, KBlock& b)
{
    for (int j = 0; j < kSuperBlock / L.sub; ++j) {
        const float step = b.d * float(b.scale[j] - L.scaleBias);
        if (step == 0.0f)
            continue;
        const float shift = L.affine ? b.dmin * float(b.min[j]) : 0.0f;
        for (int e = j * L.sub; e < (j + 1) * L.sub; ++e)
            b.code[e] = uint8_t(clampInt(roundInt((x[e] + shift) / step), -L.codeBias, L.codeMax - L.codeBias)
                                + L.codeBias);
    }
}

void quantizeSuperBlock(GgmlType t, const float* x, const float* imp, uint8_t* out)
{
    const KLayout& L = kLayout(t);
    KBlock b;
    if (L.affine) {
        SubFit f;
        fitAffineSubBlocks(t, x, imp, b, f);
        quantizeAffineScales(L, imp != nullptr, f, b);
    } else if (!fitSymmetricBlock(t, x, imp, b)) {
        b = KBlock{}; // Q6_K: an all-zero super-block is stored as zero bytes
        packKBlock(t, b, out);
        return;
    }
    reroundCodes(L, x, b);
    packKBlock(t, b, out);
}

} // namespace

void quantizeKRow(GgmlType t, const float* x, uint8_t* out, int64_t n, const float* importance)
{
    const int64_t bytes = ggmlTypeSize(t);
    for (int64_t k = 0; k < n / kSuperBlock; ++k)
        quantizeSuperBlock(t, x + k * kSuperBlock, importance ? importance + k * kSuperBlock : nullptr,
                           out + k * bytes);
}

} // namespace moewb::gguf::detail
