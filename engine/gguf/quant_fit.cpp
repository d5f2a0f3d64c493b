// SPDX-License-Identifier: MIT
// The scale searches behind every ggml quantizer (quant_detail.h describes each one). Written
// from the methods of ggml-quants.c (make_qx_quants, make_q3_quants, make_qkx2/3_quants,
// make_qp_quants): the same trial grids and acceptance rules, so the codes agree with
// llama-quantize's up to floating-point summation order.
#include "gguf/quant_detail.h"

#include <algorithm>
#include <cmath>

namespace moewb::gguf::detail {

namespace {

/// The signed value of largest magnitude (the first one on ties).
float signedPeak(int n, const float* x)
{
    float peak = 0.0f, mag = 0.0f;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > mag) {
            mag = std::fabs(x[i]);
            peak = x[i];
        }
    }
    return peak;
}

/// Σ w·x·c and Σ w·c² of a set of codes: the least-squares scale is xc / cc and the part of
/// Σ w·x² it explains is xc² / cc.
struct Sums {
    float xc = 0.0f;
    float cc = 0.0f;
    void add(float w, float x, int c)
    {
        xc += w * x * float(c);
        cc += w * float(c) * float(c);
    }
    /// True when a fit with these sums explains more than one with `other` (both cc > 0).
    bool beats(const Sums& other) const { return xc * xc * other.cc > other.xc * other.xc * cc; }
};

/// Codes of a symmetric grid for one inverse scale; writes them (offset by nmax) when asked.
Sums symmetricTrial(int n, int nmax, const float* x, const float* w, float inv, int8_t* codes)
{
    Sums s;
    for (int i = 0; i < n; ++i) {
        const int c = clampInt(roundInt(inv * x[i]), -nmax, nmax - 1);
        if (codes)
            codes[i] = int8_t(c + nmax);
        s.add(w[i], x[i], c);
    }
    return s;
}

/// One sweep of single-code moves over signed codes c (lo ≤ c ≤ hi): each code is set to the value
/// the other codes' least-squares scale asks for when that improves the fit. Returns the moves.
template <typename Code>
int sweepCodes(int n, const float* x, const float* w, Code* c, int lo, int hi, Sums& sums, bool needPositiveCc)
{
    int moved = 0;
    for (int i = 0; i < n; ++i) {
        Sums rest = sums;
        rest.xc -= w[i] * x[i] * float(c[i]);
        rest.cc -= w[i] * float(c[i]) * float(c[i]);
        if (rest.xc <= 0.0f || (needPositiveCc && rest.cc <= 0.0f))
            continue;
        const int want = clampInt(roundInt(x[i] * rest.cc / rest.xc), lo, hi);
        if (want == int(c[i]))
            continue;
        Sums next = rest;
        next.add(w[i], x[i], want);
        if (next.cc > 0.0f && next.beats(sums)) {
            c[i] = Code(want);
            sums = next;
            ++moved;
        }
    }
    return moved;
}

} // namespace

float fitSymmetric(int n, int nmax, const float* x, const float* w, int8_t* codes)
{
    const float peak = signedPeak(n, x);
    if (std::fabs(peak) < kTinyGroup) {
        std::fill(codes, codes + n, int8_t(0));
        return 0.0f;
    }
    Sums best = symmetricTrial(n, nmax, x, w, -float(nmax) / peak, codes);
    float scale = best.cc != 0.0f ? best.xc / best.cc : 0.0f;
    float explained = scale * best.xc;
    for (int k = -9; k <= 9; ++k) {
        if (k == 0)
            continue;
        const float inv = -(float(nmax) + 0.1f * float(k)) / peak;
        const Sums trial = symmetricTrial(n, nmax, x, w, inv, nullptr);
        if (trial.cc > 0.0f && trial.xc * trial.xc > explained * trial.cc) {
            symmetricTrial(n, nmax, x, w, inv, codes);
            scale = trial.xc / trial.cc;
            explained = scale * trial.xc;
        }
    }
    return scale;
}

float fitSymmetricSweep(int n, int nmax, const float* x, int8_t* codes)
{
    const float peak = signedPeak(n, x);
    if (std::fabs(peak) < kTinyGroup) {
        std::fill(codes, codes + n, int8_t(0));
        return 0.0f;
    }
    float w[kSuperBlock];
    for (int i = 0; i < n; ++i)
        w[i] = x[i] * x[i];
    const float inv = -float(nmax) / peak;
    Sums sums;
    for (int i = 0; i < n; ++i) {
        codes[i] = int8_t(clampInt(roundInt(inv * x[i]), -nmax, nmax - 1));
        sums.add(w[i], x[i], codes[i]);
    }
    for (int sweep = 0; sweep < 5; ++sweep)
        if (sweepCodes(n, x, w, codes, -nmax, nmax - 1, sums, false) == 0)
            break;
    for (int i = 0; i < n; ++i)
        codes[i] = int8_t(codes[i] + nmax);
    return sums.cc > 0.0f ? sums.xc / sums.cc : 0.0f;
}

namespace {

float weightedError(int n, const float* x, const float* w, const uint8_t* c, float scale, float offset, bool absError)
{
    float e = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float d = scale * float(c[i]) + offset - x[i];
        e += w[i] * (absError ? std::fabs(d) : d * d);
    }
    return e;
}

} // namespace

float fitAffine(int n, int nmax, const float* x, const float* w, const AffineGrid& grid, uint8_t* codes,
                float* offset)
{
    float lo = x[0], hi = x[0], wSum = 0.0f, wxSum = 0.0f;
    for (int i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
        wSum += w[i];
        wxSum += w[i] * x[i];
    }
    lo = std::min(lo, 0.0f);
    if (hi <= lo) {
        std::fill(codes, codes + n, uint8_t(0));
        *offset = lo;
        return 0.0f;
    }
    float inv = float(nmax) / (hi - lo);
    float scale = 1.0f / inv;
    for (int i = 0; i < n; ++i)
        codes[i] = uint8_t(clampInt(roundInt(inv * (x[i] - lo)), 0, nmax));
    float bestError = weightedError(n, x, w, codes, scale, lo, grid.absError);
    uint8_t trial[kSuperBlock];
    for (int k = 0; k <= grid.steps; ++k) {
        inv = (grid.first + grid.step * float(k) + float(nmax)) / (hi - lo);
        float cSum = 0.0f, ccSum = 0.0f, xcSum = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int c = clampInt(roundInt(inv * (x[i] - lo)), 0, nmax);
            trial[i] = uint8_t(c);
            cSum += w[i] * float(c);
            ccSum += w[i] * float(c) * float(c);
            xcSum += w[i] * float(c) * x[i];
        }
        const float det = wSum * ccSum - cSum * cSum;
        if (det <= 0.0f)
            continue;
        float s = (wSum * xcSum - wxSum * cSum) / det;
        float m = (ccSum * wxSum - cSum * xcSum) / det;
        if (m > 0.0f) {
            m = 0.0f;
            s = xcSum / ccSum;
        }
        const float err = weightedError(n, x, w, trial, s, m, grid.absError);
        if (err < bestError) {
            std::copy(trial, trial + n, codes);
            bestError = err;
            scale = s;
            lo = m;
        }
    }
    *offset = lo;
    return scale;
}

float fitNonNegative(int n, int nmax, const float* v, const float* w, uint8_t* codes)
{
    float top = 0.0f;
    for (int i = 0; i < n; ++i)
        top = std::max(top, v[i]);
    if (top < kTinyGroup) {
        std::fill(codes, codes + n, uint8_t(0));
        return 0.0f;
    }
    auto errorAt = [&](float inv) {
        const float s = 1.0f / inv;
        float e = 0.0f;
        for (int i = 0; i < n; ++i) {
            const float d = v[i] - s * float(clampInt(roundInt(inv * v[i]), 0, nmax));
            e += w[i] * d * d;
        }
        return e;
    };
    float bestInv = float(nmax) / top;
    float bestError = errorAt(bestInv);
    for (int k = -4; k <= 4; ++k) {
        if (k == 0)
            continue;
        const float inv = (0.1f * float(k) + float(nmax)) / top;
        const float e = errorAt(inv);
        if (e < bestError) {
            bestError = e;
            bestInv = inv;
        }
    }
    int c[kSuperBlock];
    Sums sums;
    for (int i = 0; i < n; ++i) {
        c[i] = clampInt(roundInt(bestInv * v[i]), 0, nmax);
        sums.add(w[i], v[i], c[i]);
    }
    for (int sweep = 0; sweep < 5; ++sweep)
        if (sweepCodes(n, v, w, c, 0, nmax, sums, true) == 0)
            break;
    for (int i = 0; i < n; ++i)
        codes[i] = uint8_t(c[i]);
    return sums.cc > 0.0f ? sums.xc / sums.cc : 0.0f;
}

} // namespace moewb::gguf::detail
