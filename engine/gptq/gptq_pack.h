// SPDX-License-Identifier: MIT
// GPTQ tensor packing (docs/export-gptq.md, "Packing in detail"), no torch: int32 qweight / qzeros,
// fp16 scales, g_idx, and the way back (dequantization) for the checkpoint reader in model/weights.cpp.
//
// Note [GPTQ bit stream]: one packed row (a column of qweight along K, a row of qzeros along N) is
// a little-endian bit stream of int32 words; value k occupies stream bits [b·k, b·k + b). For
// b ∈ {2, 4, 8} a word holds 32/b whole values, lowest bits first; for b = 3, 32 values fill 3
// words, values 10 and 21 straddling words. A length that is not a multiple of 32/b (32 for b = 3)
// ends in a partly used word whose unused bits are 0: qweight has
// ceil(K·b/32) rows and qzeros ceil(N·b/32) columns, as moewb/plan/plan.h gptqLinearBytes counts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moewb::gptq {

/// checkpoint_format of a GPTQ checkpoint: v1 ("gptq") stores zero − 1, v2 ("gptq_v2") the zero.
enum class ZeroFormat { V1, V2 };
const char* zeroFormatName(ZeroFormat f);   ///< "gptq" | "gptq_v2"
/// "gptq" or "" → V1, "gptq_v2" → V2; anything else is an InputError naming `where`.
ZeroFormat zeroFormatFromName(const std::string& name, const std::string& where);

bool isPackableBits(int64_t bits); ///< 2, 3, 4, 8
/// int32 words holding `count` values of `bits` bits: ceil(count·bits/32).
int64_t packedWords(int64_t count, int64_t bits);
/// Groups of a linear with K inputs: ceil(K/G), 1 for G = −1.
int64_t groupCount(int64_t inFeatures, int64_t groupSize);

/// IEEE binary16 bits ↔ float (round to nearest even; exact for fp16-representable values).
uint16_t floatToHalf(float f);
float halfToFloat(uint16_t h);

/// The tensors of one quantized linear [out N, in K] in checkpoint layout.
struct PackedLinear {
    int64_t bits = 4;
    int64_t inFeatures = 0;  ///< K
    int64_t outFeatures = 0; ///< N
    int64_t groups = 0;
    std::vector<int32_t> qweight; ///< [packedWords(K, b), N]
    std::vector<int32_t> qzeros;  ///< [groups, packedWords(N, b)]
    std::vector<uint16_t> scales; ///< [groups, N] fp16 bits
    std::vector<int32_t> gIdx;    ///< [K]
};

/// Shapes of the four tensors ({rows, cols}; g_idx {K}).
std::vector<int64_t> qweightShape(int64_t in, int64_t out, int64_t bits);
std::vector<int64_t> qzerosShape(int64_t out, int64_t groups, int64_t bits);
std::vector<int64_t> scalesShape(int64_t out, int64_t groups);

/// Codes q [out·in] (row-major [out, in], each in [0, 2^b − 1]) → qweight [ceil(K·b/32), N].
std::vector<int32_t> packQweight(const int32_t* q, int64_t out, int64_t in, int64_t bits);
/// Zero points [out·groups] (row-major [out, groups], integers in [0, 2^b − 1]) → qzeros
/// [groups, ceil(N·b/32)]. V1 stores (zero − 1) mod 2^b: a zero of 0 (possible for asym) is
/// stored as 2^b − 1, which loaders that mask after adding 1 (AutoGPTQ's torch path, this
/// reader) read back as 0 but exllama/Marlin kernels read as 2^b (docs/export-gptq.md, "Zero points: v1 and v2").
/// `wrapped` (optional) counts such zeros.
std::vector<int32_t> packQzeros(const float* zeros, int64_t out, int64_t groups, int64_t bits, ZeroFormat fmt,
                                int64_t* wrapped = nullptr);
/// Scales [out·groups] (row-major [out, groups]) → fp16 [groups, out].
std::vector<uint16_t> packScales(const float* scales, int64_t out, int64_t groups);

/// All four from the quantizer's integer grid (moewb/quant/quantize.h QuantizedWeight). Checks
/// codes, zeros and g_idx ranges (InputError naming `where`: a bug upstream, never silent).
PackedLinear packLinear(const int32_t* q, const float* scales, const float* zeros, const int32_t* gIdx, int64_t out,
                        int64_t in, int64_t groups, int64_t bits, ZeroFormat fmt, const std::string& where,
                        int64_t* wrapped = nullptr);

/// Unpacking (tests, reader): values of one bit stream.
std::vector<int32_t> unpackQweight(const int32_t* qweight, int64_t out, int64_t in, int64_t bits); ///< [out·in]
std::vector<int32_t> unpackQzeros(const int32_t* qzeros, int64_t out, int64_t groups, int64_t bits,
                                  ZeroFormat fmt); ///< real zeros [out·groups]

/// Borrowed views of a linear's tensors as stored (pointers must be 4- / 2-byte aligned).
struct PackedView {
    const int32_t* qweight = nullptr;
    const int32_t* qzeros = nullptr;
    const uint16_t* scales = nullptr; ///< fp16 bits
    const int32_t* gIdx = nullptr;
    int64_t inFeatures = 0, outFeatures = 0, groups = 0, bits = 0;
};

/// w[o][i] = float(scales[g][o]) · (q[i][o] − z[g][o]), g = g_idx[i] → out [N·K] row-major, in
/// float (the product rounded once, as the quantizer computes its dequantized weight). g_idx
/// entries outside [0, groups) are an InputError naming `where`.
void dequantize(const PackedView& v, ZeroFormat fmt, float* out, const std::string& where);
/// The pieces of dequantize for callers that split the rows over threads: the g_idx check, then
/// rows [rowBegin, rowEnd) of out (which points at the whole [N, K] matrix), unchecked.
void checkGroupIndex(const PackedView& v, const std::string& where);
void dequantizeRows(const PackedView& v, ZeroFormat fmt, float* out, int64_t rowBegin, int64_t rowEnd);

/// The bit widths b ∈ {2,3,4,8} consistent with qweight rows and qzeros columns for K inputs and
/// N outputs (usually exactly one; several only for tiny K and N).
std::vector<int64_t> bitsFromShapes(int64_t qweightRows, int64_t qzerosCols, int64_t in, int64_t out);

} // namespace moewb::gptq
