// SPDX-License-Identifier: MIT
// The 32-wide ggml blocks (ggml-common.h): layouts, reference encoders and decoders.
//
//   Q4_0 18 B: d · qs[16]                 x = d · (c − 8),   c ∈ [0, 15]
//   Q4_1 20 B: d · m · qs[16]             x = d · c + m,     c ∈ [0, 15]
//   Q5_0 22 B: d · qh[4] · qs[16]         x = d · (c − 16),  c ∈ [0, 31]
//   Q5_1 24 B: d · m · qh[4] · qs[16]     x = d · c + m,     c ∈ [0, 31]
//   Q8_0 34 B: d · qs[32] (int8)          x = d · c
// d, m little-endian fp16. Code j's low 4 bits: byte j of qs for j < 16 (low nibble), byte
// j − 16 (high nibble) otherwise; Q5's fifth bit: bit j of the little-endian u32 qh.
//
// Without importance the encoders are ggml's reference rules (quantize_row_*_ref: the scale from
// the block's extreme values). With importance (per-column weights) they follow ggml's weighted
// variants: w = imp · sqrt(σ² + x²) with σ² the row's mean square, then the symmetric grid fit
// (Q4_0, Q5_0) or the affine fit (Q4_1, Q5_1). Q8_0 ignores importance, as ggml does.
#include "gguf/quant_detail.h"

#include "moewb/core/error.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace moewb::gguf::detail {

namespace {

constexpr int QK = kLegacyBlock;

struct LegacyLayout {
    int bytes;
    bool hasMin;   ///< Q4_1, Q5_1
    bool fifthBit; ///< Q5_0, Q5_1
    int bias;      ///< subtracted from a code (Q4_0: 8, Q5_0: 16)
};

LegacyLayout legacyLayout(GgmlType t)
{
    switch (t) {
    case GgmlType::Q4_0: return {18, false, false, 8};
    case GgmlType::Q4_1: return {20, true, false, 0};
    case GgmlType::Q5_0: return {22, false, true, 16};
    case GgmlType::Q5_1: return {24, true, true, 0};
    default: throw Error(std::string("GGUF: ") + ggmlTypeName(t) + " is not a 4/5-bit legacy type");
    }
}

/// Writes d, m (when the layout has one) and 32 codes.
void packLegacy(const LegacyLayout& L, float d, float m, const uint8_t* c, uint8_t* y)
{
    std::memset(y, 0, size_t(L.bytes));
    putHalf(y, fp32ToFp16(d));
    if (L.hasMin)
        putHalf(y + 2, fp32ToFp16(m));
    uint8_t* qh = y + (L.hasMin ? 4 : 2);
    uint8_t* qs = qh + (L.fifthBit ? 4 : 0);
    for (int j = 0; j < QK; ++j) {
        qs[j % 16] |= uint8_t((c[j] & 0xF) << (j < 16 ? 0 : 4));
        if (L.fifthBit)
            qh[j / 8] |= uint8_t(((c[j] >> 4) & 1) << (j % 8));
    }
}

void decodeLegacy(const LegacyLayout& L, const uint8_t* y, float* out)
{
    const float d = halfAt(y);
    const float m = L.hasMin ? halfAt(y + 2) : 0.0f;
    const uint8_t* qh = y + (L.hasMin ? 4 : 2);
    const uint8_t* qs = qh + (L.fifthBit ? 4 : 0);
    for (int j = 0; j < QK; ++j) {
        int c = (qs[j % 16] >> (j < 16 ? 0 : 4)) & 0xF;
        if (L.fifthBit)
            c |= ((qh[j / 8] >> (j % 8)) & 1) << 4;
        out[j] = L.hasMin ? float(c) * d + m : float(c - L.bias) * d;
    }
}

// --- reference rules (no importance) ----------------------------------------------------------

/// 1 / d, or 0 when d is 0 or so small (subnormal) that its inverse overflows.
float inverseOf(float d)
{
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    return std::isfinite(id) ? id : 0.0f;
}

/// v limited to [lo, hi] before a float → integer conversion (NaN → lo).
float within(float v, float lo, float hi) { return std::fmin(std::fmax(v, lo), hi); }

void encodeQ8_0(const float* x, uint8_t* y)
{
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j)
        amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = inverseOf(d);
    putHalf(y, fp32ToFp16(d));
    for (int j = 0; j < QK; ++j)
        y[2 + j] = uint8_t(int8_t(within(std::roundf(x[j] * id), -127.0f, 127.0f)));
}

/// Q4_0 / Q5_0: d maps the value of largest magnitude onto code 0 (−bias · d).
void encodeSymmetricRef(const LegacyLayout& L, const float* x, uint8_t* y)
{
    float amax = 0.0f, peak = 0.0f;
    for (int j = 0; j < QK; ++j) {
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            peak = x[j];
        }
    }
    const float d = peak / float(-L.bias);
    const float id = inverseOf(d);
    const int top = 2 * L.bias - 1;
    uint8_t c[QK];
    for (int j = 0; j < QK; ++j) // truncation after + bias + ½, as the reference rule
        c[j] = uint8_t(int(within(x[j] * id + (float(L.bias) + 0.5f), 0.0f, float(top))));
    packLegacy(L, d, 0.0f, c, y);
}

/// Q4_1 / Q5_1: the block's range mapped onto the codes, m = its minimum.
void encodeAffineRef(const LegacyLayout& L, const float* x, uint8_t* y)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < QK; ++j) {
        lo = std::min(lo, x[j]);
        hi = std::max(hi, x[j]);
    }
    const int top = L.fifthBit ? 31 : 15;
    const float d = (hi - lo) / float(top);
    const float id = inverseOf(d);
    uint8_t c[QK];
    for (int j = 0; j < QK; ++j)
        c[j] = uint8_t(int(within((x[j] - lo) * id + 0.5f, 0.0f, float(top))));
    packLegacy(L, d, lo, c, y);
}

// --- importance-weighted ----------------------------------------------------------------------

void encodeWeighted(const LegacyLayout& L, const float* x, const float* imp, float sigma2, uint8_t* y)
{
    float w[QK];
    for (int j = 0; j < QK; ++j)
        w[j] = imp[j] * std::sqrt(sigma2 + x[j] * x[j]);
    uint8_t c[QK];
    if (L.hasMin) {
        float offset = 0.0f;
        const float d = fitAffine(QK, L.fifthBit ? 31 : 15, x, w, AffineGrid{-0.9f, 0.05f, 36, false}, c, &offset);
        packLegacy(L, d, offset, c, y);
    } else {
        int8_t s[QK];
        const float d = fitSymmetric(QK, L.bias, x, w, s);
        for (int j = 0; j < QK; ++j)
            c[j] = uint8_t(s[j]);
        packLegacy(L, d, 0.0f, c, y);
    }
}

} // namespace

void quantizeLegacyRow(GgmlType t, const float* x, uint8_t* out, int64_t n, const float* importance)
{
    if (t == GgmlType::Q8_0) {
        for (int64_t b = 0; b < n / QK; ++b)
            encodeQ8_0(x + b * QK, out + b * 34);
        return;
    }
    const LegacyLayout L = legacyLayout(t);
    float sigma2 = 0.0f;
    if (importance) {
        for (int64_t i = 0; i < n; ++i)
            sigma2 += x[i] * x[i];
        sigma2 /= float(n);
    }
    for (int64_t b = 0; b < n / QK; ++b) {
        const float* xb = x + b * QK;
        uint8_t* yb = out + b * L.bytes;
        if (importance)
            encodeWeighted(L, xb, importance + b * QK, sigma2, yb);
        else if (L.hasMin)
            encodeAffineRef(L, xb, yb);
        else
            encodeSymmetricRef(L, xb, yb);
    }
}

void dequantizeLegacyRow(GgmlType t, const uint8_t* in, float* out, int64_t n)
{
    if (t == GgmlType::Q8_0) {
        for (int64_t b = 0; b < n / QK; ++b) {
            const uint8_t* blk = in + b * 34;
            const float d = halfAt(blk);
            for (int j = 0; j < QK; ++j)
                out[b * QK + j] = float(int8_t(blk[2 + j])) * d;
        }
        return;
    }
    const LegacyLayout L = legacyLayout(t);
    for (int64_t b = 0; b < n / QK; ++b)
        decodeLegacy(L, in + b * L.bytes, out + b * QK);
}

} // namespace moewb::gguf::detail
