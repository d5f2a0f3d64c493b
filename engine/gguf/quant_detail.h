// SPDX-License-Identifier: MIT
// Internal to the GGUF unit: the pieces the block codecs share. Byte helpers, rounding, the scale
// fits every quantizer is built from (quant_fit.cpp), and the per-family entry points that
// gguf_quants.cpp dispatches to (legacy_quants.cpp, kquants.cpp, kquant_layout.cpp, iq4nl.cpp).
// Torch-free.
#pragma once

#include "gguf/gguf_quants.h"

#include <cmath>
#include <cstdint>

namespace moewb::gguf::detail {

constexpr int kLegacyBlock = 32; ///< Q4_0 … Q8_0 and IQ4_NL
constexpr int kSuperBlock = 256; ///< every K-quant super-block
constexpr float kTinyGroup = 1e-15f; ///< a group whose largest |x| is below this is all zero

inline void putHalf(uint8_t* p, uint16_t h)
{
    p[0] = uint8_t(h & 0xFF);
    p[1] = uint8_t(h >> 8);
}
inline uint16_t getHalf(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline float halfAt(const uint8_t* p) { return fp16ToFp32(getHalf(p)); }
/// The value an fp16 field will hold once stored: the scale the decoder will really use.
inline float throughHalf(float f) { return fp16ToFp32(fp32ToFp16(f)); }

/// Round to the nearest integer, halves to even (the default FP rounding mode), as ggml's
/// nearest_int does for the magnitudes quantizers produce.
inline int roundInt(float v) { return int(std::lrintf(v)); }
inline int clampInt(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// --- scale fits (quant_fit.cpp) ---------------------------------------------------------------
// All minimise a weighted squared error Σ w_i (x_i − x̂_i)² over n values (unless noted) and write
// one integer code per value.

/// Symmetric grid x̂ = s·(c − nmax), c ∈ [0, 2·nmax − 1]. Tries the 19 inverse scales
/// −(nmax + k/10)/x_peak (k = −9 … 9, x_peak the signed value of largest magnitude); for each, the
/// codes are fixed by rounding and s is the weighted least-squares scale; keeps the trial that
/// explains most of Σ w x². Returns s (0 and codes 0 for an all-zero group).
float fitSymmetric(int n, int nmax, const float* x, const float* w, int8_t* codes);

/// Symmetric grid as fitSymmetric with weights x², starting from the plain −nmax/x_peak scale and
/// then moving single codes to their best value given all others (up to five sweeps) while that
/// improves the least-squares fit. Returns s.
float fitSymmetricSweep(int n, int nmax, const float* x, int8_t* codes);

/// Where the affine fit looks: inverse scales (nmax + first + step·k)/(max − min), k = 0 … steps.
struct AffineGrid {
    float first;
    float step;
    int steps;
    bool absError; ///< minimise Σ w·|err| instead of Σ w·err² when comparing trials
};

/// Affine grid x̂ = s·c + m with c ∈ [0, nmax] and m ≤ 0. Starts from min(x, 0) … max(x) mapped
/// onto the codes; for every inverse scale of the grid the codes are rounded and (s, m) solved
/// by weighted least squares (m clipped to 0, s re-solved), and the trial with the smallest
/// weighted error is kept. Trials after an improvement are anchored at the improved m.
/// Returns s; *offset = m (≤ 0).
float fitAffine(int n, int nmax, const float* x, const float* w, const AffineGrid& grid, uint8_t* codes,
                float* offset);

/// Non-negative values v (sub-block scales or mins) on codes [0, nmax] with one scale: the best
/// of nine inverse scales (nmax + k/10)/max(v), k = −4 … 4, by weighted error at scale
/// 1/inverse, then single-code moves (up to five sweeps) that improve the least-squares fit.
/// Returns the least-squares scale of the final codes (0 when max(v) is tiny).
float fitNonNegative(int n, int nmax, const float* v, const float* w, uint8_t* codes);

// --- K-quant super-blocks (kquant_layout.cpp) ------------------------------------------------

/// One K-quant super-block of 256 values, unpacked. Sub-block j covers values
/// [j·sub, (j+1)·sub) with sub = 16 (Q2_K, Q3_K, Q6_K) or 32 (Q4_K, Q5_K); value e decodes as
///   (d · (scale[j] − scaleBias)) · (code[e] − codeBias) − dmin · min[j]
/// with the biases of kLayout(t). Codes and integer scales are what the bytes hold.
struct KBlock {
    float d = 0.0f;
    float dmin = 0.0f;          ///< 0 for the symmetric types (Q3_K, Q6_K)
    int scale[16] = {};         ///< stored sub-block scales (unsigned fields; Q6_K: int8)
    int min[16] = {};           ///< stored sub-block mins (Q2_K, Q4_K, Q5_K)
    uint8_t code[kSuperBlock] = {};
};

struct KLayout {
    int sub;        ///< values per sub-block
    int codeMax;    ///< largest code (2^bits − 1)
    int codeBias;   ///< subtracted from a code (symmetric types)
    int scaleMax;   ///< largest stored scale / min
    int scaleBias;  ///< subtracted from a stored scale (Q3_K)
    bool affine;    ///< has d_min and per-sub-block mins
};
const KLayout& kLayout(GgmlType t);

void packKBlock(GgmlType t, const KBlock& b, uint8_t* out);
void unpackKBlock(GgmlType t, const uint8_t* in, KBlock& b);
void decodeKBlock(GgmlType t, const KBlock& b, float* out);

// --- codecs -----------------------------------------------------------------------------------
// importance: per-column weights for the row (n values) or nullptr. Rows are whole rows: the
// importance-weighted quantizers use row (or super-block) statistics.

void quantizeLegacyRow(GgmlType t, const float* x, uint8_t* out, int64_t n, const float* importance);
void dequantizeLegacyRow(GgmlType t, const uint8_t* in, float* out, int64_t n);

void quantizeKRow(GgmlType t, const float* x, uint8_t* out, int64_t n, const float* importance);
void dequantizeKRow(GgmlType t, const uint8_t* in, float* out, int64_t n);

void quantizeIq4NlRow(const float* x, uint8_t* out, int64_t n, const float* importance);
void dequantizeIq4NlRow(const uint8_t* in, float* out, int64_t n);

} // namespace moewb::gguf::detail
