// SPDX-License-Identifier: MIT
// IQ4_NL (ggml-common.h block_iq4_nl, 18 bytes per 32 values): fp16 d, then 16 bytes of 4-bit
// indices into a fixed non-linear table of 16 levels; value j = d · level[c_j], c_j in the low
// nibble of byte j (j < 16) or the high nibble of byte j − 16.
//
// Encoder (the method of ggml's quantize_iq4_nl, which llama-quantize uses with or without an
// importance matrix): weights imp · sqrt(σ² + x²) (σ² = twice the block's mean square) or x²;
// starting from d = peak / |lowest level|, each of 15 trial inverse scales (t − 127) / peak,
// t = −7 … 7, maps every value to its nearest level and solves the weighted least-squares d; the
// best d is kept and the codes are the nearest levels of x / d.
#include "gguf/quant_detail.h"

#include <cmath>

namespace moewb::gguf::detail {

namespace {

constexpr int QK = kLegacyBlock;
constexpr int8_t kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/// Index of the level nearest to a (ties go to the larger level).
int nearestLevel(float a)
{
    int best = 0;
    float bestDist = std::fabs(a - float(kLevels[0]));
    for (int k = 1; k < 16; ++k) {
        const float dist = std::fabs(float(kLevels[k]) - a);
        if (dist <= bestDist) {
            best = k;
            bestDist = dist;
        }
    }
    return best;
}

/// Σ w·q·x and Σ w·q² with q the nearest level of inv·x.
void levelSums(const float* x, const float* w, float inv, float& qx, float& qq)
{
    qx = qq = 0.0f;
    for (int j = 0; j < QK; ++j) {
        const float q = float(kLevels[nearestLevel(inv * x[j])]);
        qx += w[j] * q * x[j];
        qq += w[j] * q * q;
    }
}

void encodeBlock(const float* x, const float* imp, uint8_t* y)
{
    float sigma2 = 0.0f, amax = 0.0f, peak = 0.0f;
    for (int j = 0; j < QK; ++j) {
        sigma2 += x[j] * x[j];
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            peak = x[j];
        }
    }
    sigma2 *= 2.0f / float(QK);
    float w[QK];
    for (int j = 0; j < QK; ++j)
        w[j] = imp ? imp[j] * std::sqrt(sigma2 + x[j] * x[j]) : x[j] * x[j];
    float d = 0.0f;
    if (amax >= kTinyGroup) {
        float qx, qq;
        levelSums(x, w, 1.0f / (-peak / float(kLevels[0])), qx, qq); // the peak at +127
        d = qq > 0.0f ? qx / qq : 0.0f;
        float explained = d * qx;
        for (int t = -7; t <= 7; ++t) {
            levelSums(x, w, (float(t) + float(kLevels[0])) / peak, qx, qq);
            if (qq > 0.0f && qx * qx > explained * qq) {
                d = qx / qq;
                explained = d * qx;
            }
        }
    }
    putHalf(y, fp32ToFp16(d));
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK / 2; ++j)
        y[2 + j] = uint8_t(nearestLevel(inv * x[j]) | (nearestLevel(inv * x[j + QK / 2]) << 4));
}

} // namespace

void quantizeIq4NlRow(const float* x, uint8_t* out, int64_t n, const float* importance)
{
    for (int64_t b = 0; b < n / QK; ++b)
        encodeBlock(x + b * QK, importance ? importance + b * QK : nullptr, out + b * 18);
}

void dequantizeIq4NlRow(const uint8_t* in, float* out, int64_t n)
{
    for (int64_t b = 0; b < n / QK; ++b) {
        const uint8_t* blk = in + b * 18;
        const float d = halfAt(blk);
        for (int j = 0; j < QK; ++j)
            out[b * QK + j] = d * float(kLevels[(blk[2 + j % 16] >> (j < 16 ? 0 : 4)) & 0xF]);
    }
}

} // namespace moewb::gguf::detail
