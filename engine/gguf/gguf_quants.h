// SPDX-License-Identifier: MIT
// ggml tensor types for the GGUF export (docs/export-gguf.md, "Quant types" and "Tensor types and block layouts"):
// fp16 / bf16 conversion; Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 and IQ4_NL (32-wide blocks) and
// Q2_K … Q6_K (256-wide super-blocks) encoded from floats by ggml's methods, optionally weighted
// by per-column importance (an imatrix); Q8_0 / Q4_0 / Q4_1 also packed from a GPTQ integer grid
// (exact path); dequantization of every type. Torch-free.
#pragma once

#include <cstdint>
#include <string>

namespace moewb::gguf {

/// ggml_type ids (docs/export-gguf.md, "Tensor types and block layouts"). Only the ones moewb writes
/// have names below; the reader knows the sizes of the other common ones (ggmlTypeKnown).
enum class GgmlType : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, IQ4_NL = 20,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

bool ggmlTypeKnown(uint32_t id);          ///< block size and type size are known
const char* ggmlTypeName(GgmlType t);     ///< "Q4_0"; "type<N>" for unnamed ids
int64_t ggmlBlockSize(GgmlType t);        ///< elements per block (1 for float types)
int64_t ggmlTypeSize(GgmlType t);         ///< bytes per block
/// quantizeRow encodes t: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K … Q6_K, IQ4_NL.
bool ggmlCanQuantize(GgmlType t);
bool ggmlCanDequantize(GgmlType t);       ///< the same set as ggmlCanQuantize
/// Storage bits per weight: 8 · type size / block size (Q4_K: 4.5, Q6_K: 6.5625, …).
double ggmlBitsPerWeight(GgmlType t);
/// Bytes of a row of n elements (n % blockSize == 0).
int64_t ggmlRowBytes(GgmlType t, int64_t n);
/// Parses "f16", "bf16", "f32" (case-insensitive); InputError naming `where` otherwise.
GgmlType floatTypeFromName(const std::string& name, const std::string& where);
/// Any type quantizeRow encodes, by its ggml name ("q4_k", "IQ4_NL"; case-insensitive).
bool ggmlTypeFromName(const std::string& name, GgmlType& out);
/// The type llama-quantize writes instead of t for rows of n elements that t's block does not
/// divide: Q2_K / Q3_K → IQ4_NL, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16 if that
/// block does not divide n either (any other type → F16). t itself when its block divides n.
GgmlType rowFallbackType(GgmlType t, int64_t n);

uint16_t fp32ToFp16(float f); ///< round to nearest even, overflow → ±inf (as F16C / ggml)
float fp16ToFp32(uint16_t h);
uint16_t fp32ToBf16(float f); ///< round to nearest even, NaN kept quiet (ggml_compute_fp32_to_bf16)
float bf16ToFp32(uint16_t h);

/// Encodes one row of n floats (n % blockSize == 0) as type t (ggmlCanQuantize): F32/F16/BF16 by
/// conversion, the quantized types as llama-quantize does for the same row and importance:
/// without `importance`, ggml's reference rules (quantize_row_*_ref; IQ4_NL: its x²-weighted
/// scale search); with it (n non-negative weights, one per column: the mean of x² over the
/// linear's inputs, per expert for expert tensors), ggml's importance-weighted searches. Q8_0
/// and the float types ignore importance. The weighted legacy types use statistics of the whole
/// row, so pass whole rows. Quantized types: InputError for a NaN or infinite value or a negative
/// or non-finite importance (the caller names the tensor).
void quantizeRow(GgmlType t, const float* x, uint8_t* out, int64_t n, const float* importance = nullptr);

/// Decodes n elements of type t (ggmlCanDequantize) into floats, as ggml's dequantize_row_*.
void dequantizeRow(GgmlType t, const uint8_t* in, float* out, int64_t n);

/// The first block among the n / blockSize blocks at `in` whose fp16 scale fields (d, and dmin
/// or m where the type has one) are NaN or infinite, or −1 when all are finite (and for the
/// float types). Such a block decodes to NaN or ±inf; llama.cpp's loader rejects it too.
int64_t firstNonFiniteScaleBlock(GgmlType t, const uint8_t* in, int64_t n);

/// One row of a GPTQ grid (docs/algorithms.md §3.1): w[c] = scales[gIdx[c]] · (q[c] − zeros[gIdx[c]]).
struct GridRow {
    const int32_t* q = nullptr;     ///< [n]
    const float* scales = nullptr;  ///< [groups]
    const float* zeros = nullptr;   ///< [groups]
    const int32_t* gIdx = nullptr;  ///< [n]
};

struct PackStats {
    int64_t gridBlocks = 0;     ///< blocks whose codes are the grid's (d = scale)
    int64_t requantBlocks = 0;  ///< blocks re-quantized from the grid's float values (ggml rule)
    int64_t encodedBlocks = 0;  ///< blocks encoded by ggml's method from the weights (ggml_type, embeddings)
};

/// Encodes one grid row of n elements as type t. Q8_0 / Q4_0 / Q4_1: a block whose 32 columns
/// share one group and whose codes fit the type is stored with d = scale and the grid codes
/// (Q8_0: q − zero; Q4_0: q − zero + 8; Q4_1: q with m = −scale·zero rounded to fp16), so its
/// dequantized values are exactly scale·(q − zero) (Q4_1: up to the rounding of m); any other
/// block is quantized from its float values with the reference rule. Float types: the grid's
/// values converted. Counts go to stats.
void packGridRow(GgmlType t, const GridRow& g, uint8_t* out, int64_t n, PackStats& stats);

} // namespace moewb::gguf
