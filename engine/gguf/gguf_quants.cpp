// SPDX-License-Identifier: MIT
// ggml tensor types (docs/export-gguf.md, "Tensor types and block layouts"): the type table, fp16 / bf16 conversion, and the row
// encoders / decoders, which dispatch to the block codecs (legacy_quants.cpp, kquants.cpp,
// kquant_layout.cpp, iq4nl.cpp). Written from ggml-quants.c's rules.
#include "gguf/gguf_quants.h"

#include "gguf/quant_detail.h"

#include "moewb/core/error.h"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace moewb::gguf {

namespace {

uint32_t floatBits(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float bitsFloat(uint32_t u)
{
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

} // namespace

// --- type table -----------------------------------------------------------------------------------

namespace {
struct TypeTraits {
    uint32_t id;
    const char* name;
    int64_t block;
    int64_t size;
};
// ggml-common.h sizes; K-quants use QK_K = 256.
constexpr TypeTraits kTypes[] = {
    {0, "F32", 1, 4},      {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},   {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},   {7, "Q5_1", 32, 24},    {8, "Q8_0", 32, 34},   {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84}, {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {20, "IQ4_NL", 32, 18}, {24, "I8", 1, 1},
    {25, "I16", 1, 2},     {26, "I32", 1, 4},      {27, "I64", 1, 8},     {28, "F64", 1, 8},
    {30, "BF16", 1, 2},
};

const TypeTraits* traits(uint32_t id)
{
    for (const TypeTraits& t : kTypes)
        if (t.id == id)
            return &t;
    return nullptr;
}
} // namespace

bool ggmlTypeKnown(uint32_t id) { return traits(id) != nullptr; }

const char* ggmlTypeName(GgmlType t)
{
    const TypeTraits* tr = traits(uint32_t(t));
    return tr ? tr->name : "unknown";
}

int64_t ggmlBlockSize(GgmlType t)
{
    const TypeTraits* tr = traits(uint32_t(t));
    MOEWB_ASSERT(tr);
    return tr->block;
}

int64_t ggmlTypeSize(GgmlType t)
{
    const TypeTraits* tr = traits(uint32_t(t));
    MOEWB_ASSERT(tr);
    return tr->size;
}

bool ggmlCanQuantize(GgmlType t)
{
    switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_NL:
        return true;
    default:
        return false;
    }
}

bool ggmlCanDequantize(GgmlType t) { return ggmlCanQuantize(t); }

double ggmlBitsPerWeight(GgmlType t) { return 8.0 * double(ggmlTypeSize(t)) / double(ggmlBlockSize(t)); }

int64_t ggmlRowBytes(GgmlType t, int64_t n)
{
    MOEWB_ASSERT(n % ggmlBlockSize(t) == 0);
    return n / ggmlBlockSize(t) * ggmlTypeSize(t);
}

GgmlType floatTypeFromName(const std::string& name, const std::string& where)
{
    std::string s = name;
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (s == "f16")
        return GgmlType::F16;
    if (s == "bf16")
        return GgmlType::BF16;
    if (s == "f32")
        return GgmlType::F32;
    throw InputError(where, "unquantized tensor type must be f16, bf16 or f32, got '" + name + "'");
}

bool ggmlTypeFromName(const std::string& name, GgmlType& out)
{
    std::string s = name;
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::toupper(c)); });
    for (const TypeTraits& t : kTypes) {
        if (s == t.name && ggmlCanQuantize(GgmlType(t.id))) {
            out = GgmlType(t.id);
            return true;
        }
    }
    return false;
}

GgmlType rowFallbackType(GgmlType t, int64_t n)
{
    if (n % ggmlBlockSize(t) == 0)
        return t;
    GgmlType f = GgmlType::F16;
    switch (t) {
    case GgmlType::Q2_K:
    case GgmlType::Q3_K: f = GgmlType::IQ4_NL; break;
    case GgmlType::Q4_K: f = GgmlType::Q5_0; break;
    case GgmlType::Q5_K: f = GgmlType::Q5_1; break;
    case GgmlType::Q6_K: f = GgmlType::Q8_0; break;
    default: break;
    }
    return n % ggmlBlockSize(f) == 0 ? f : GgmlType::F16;
}

// --- fp16 / bf16 (the bit tricks of ggml-impl.h / Maratyszcza's FP16) -------------------------

uint16_t fp32ToFp16(float f)
{
    const float scaleToInf = 0x1.0p+112f;
    const float scaleToZero = 0x1.0p-110f;
    float base = (std::fabs(f) * scaleToInf) * scaleToZero;
    const uint32_t w = floatBits(f);
    const uint32_t shl1w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = bitsFloat((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = floatBits(base);
    const uint32_t expBits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissaBits = bits & 0x00000FFFu;
    const uint32_t nonsign = expBits + mantissaBits;
    return uint16_t((sign >> 16) | (shl1w > 0xFF000000u ? 0x7E00u : nonsign));
}

float fp16ToFp32(uint16_t h)
{
    const uint32_t w = uint32_t(h) << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t twoW = w + w;
    const uint32_t expOffset = 0xE0u << 23;
    const float expScale = 0x1.0p-112f;
    const float normalized = bitsFloat((twoW >> 4) + expOffset) * expScale;
    const uint32_t magicMask = 126u << 23;
    const float magicBias = 0.5f;
    const float denormalized = bitsFloat((twoW >> 17) | magicMask) - magicBias;
    const uint32_t denormalizedCutoff = 1u << 27;
    const uint32_t result = sign | (twoW < denormalizedCutoff ? floatBits(denormalized) : floatBits(normalized));
    return bitsFloat(result);
}

uint16_t fp32ToBf16(float f)
{
    const uint32_t u = floatBits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return uint16_t((u >> 16) | 64); // quiet NaN
    return uint16_t((u + (0x7FFFu + ((u >> 16) & 1))) >> 16);
}

float bf16ToFp32(uint16_t h) { return bitsFloat(uint32_t(h) << 16); }

// --- rows -------------------------------------------------------------------------------------

namespace {

/// The quantizers' inputs must be finite (and importance weights non-negative): a NaN or infinity
/// would silently spoil a whole block's scale.
void checkQuantizerInput(GgmlType t, const float* x, int64_t n, const float* importance)
{
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i]))
            throw InputError(std::string(ggmlTypeName(t)) + " encoder",
                             "value " + std::to_string(i) + " of the row is " + std::to_string(x[i])
                                 + " (only finite values can be quantized)");
        if (importance && !(importance[i] >= 0.0f && std::isfinite(importance[i])))
            throw InputError(std::string(ggmlTypeName(t)) + " encoder",
                             "importance " + std::to_string(i) + " of the row is " + std::to_string(importance[i])
                                 + " (importance must be finite and non-negative)");
    }
}

/// Finite inputs can still give a block a non-finite fp16 scale: values beyond the fp16 range
/// (|x| / 127 > 65504 and the like), or an importance so large that the weighted sums of the scale
/// search overflow float (ggml's arithmetic, which moewb follows, gives NaN there). Such a block
/// decodes to NaN or ±inf and the file would be refused by moewb's reader and llama.cpp's loader.
void checkEncodedScales(GgmlType t, const float* x, const uint8_t* out, int64_t n, const float* importance)
{
    const int64_t bad = firstNonFiniteScaleBlock(t, out, n);
    if (bad < 0)
        return;
    float xMax = 0.0f, impMax = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        xMax = std::max(xMax, std::fabs(x[i]));
        impMax = importance ? std::max(impMax, importance[i]) : impMax;
    }
    char what[160];
    std::snprintf(what, sizeof what, importance ? "its values (largest |x| %g) or importance (largest %g)"
                                                : "its values (largest |x| %g)",
                  double(xMax), double(impMax));
    throw InputError(std::string(ggmlTypeName(t)) + " encoder", "block " + std::to_string(bad)
                         + " of the row gets a non-finite scale: " + what + " are too large for the type's fp16 scales");
}

} // namespace

void quantizeRow(GgmlType t, const float* x, uint8_t* out, int64_t n, const float* importance)
{
    MOEWB_ASSERT(n % ggmlBlockSize(t) == 0);
    if (ggmlBlockSize(t) > 1)
        checkQuantizerInput(t, x, n, importance);
    switch (t) {
    case GgmlType::F32:
        std::memcpy(out, x, size_t(n) * 4);
        return;
    case GgmlType::F16:
        for (int64_t i = 0; i < n; ++i)
            detail::putHalf(out + 2 * i, fp32ToFp16(x[i]));
        return;
    case GgmlType::BF16:
        for (int64_t i = 0; i < n; ++i)
            detail::putHalf(out + 2 * i, fp32ToBf16(x[i]));
        return;
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
        detail::quantizeLegacyRow(t, x, out, n, importance);
        break;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
        detail::quantizeKRow(t, x, out, n, importance);
        break;
    case GgmlType::IQ4_NL:
        detail::quantizeIq4NlRow(x, out, n, importance);
        break;
    default:
        throw Error(std::string("GGUF: cannot encode tensors of type ") + ggmlTypeName(t));
    }
    checkEncodedScales(t, x, out, n, importance);
}

void dequantizeRow(GgmlType t, const uint8_t* in, float* out, int64_t n)
{
    MOEWB_ASSERT(n % ggmlBlockSize(t) == 0);
    switch (t) {
    case GgmlType::F32:
        std::memcpy(out, in, size_t(n) * 4);
        return;
    case GgmlType::F16:
        for (int64_t i = 0; i < n; ++i)
            out[i] = fp16ToFp32(detail::getHalf(in + 2 * i));
        return;
    case GgmlType::BF16:
        for (int64_t i = 0; i < n; ++i)
            out[i] = bf16ToFp32(detail::getHalf(in + 2 * i));
        return;
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
        detail::dequantizeLegacyRow(t, in, out, n);
        return;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
        detail::dequantizeKRow(t, in, out, n);
        return;
    case GgmlType::IQ4_NL:
        detail::dequantizeIq4NlRow(in, out, n);
        return;
    default:
        throw Error(std::string("GGUF: cannot dequantize tensors of type ") + ggmlTypeName(t));
    }
}

int64_t firstNonFiniteScaleBlock(GgmlType t, const uint8_t* in, int64_t n)
{
    int first = -1, second = -1; // byte offsets of the fp16 scale fields in a block
    switch (t) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
    case GgmlType::IQ4_NL: first = 0; break;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: first = 0, second = 2; break;
    case GgmlType::Q2_K: first = 80, second = 82; break;
    case GgmlType::Q3_K: first = 108; break;
    case GgmlType::Q6_K: first = 208; break;
    default: return -1;
    }
    const int64_t bytes = ggmlTypeSize(t);
    for (int64_t b = 0; b < n / ggmlBlockSize(t); ++b) {
        const uint8_t* blk = in + b * bytes;
        // fp16 exponent all ones: infinity or NaN
        if ((detail::getHalf(blk + first) & 0x7C00) == 0x7C00
            || (second >= 0 && (detail::getHalf(blk + second) & 0x7C00) == 0x7C00))
            return b;
    }
    return -1;
}

void packGridRow(GgmlType t, const GridRow& g, uint8_t* out, int64_t n, PackStats& stats)
{
    constexpr int64_t QK = detail::kLegacyBlock;
    auto value = [&](int64_t c) {
        const int32_t k = g.gIdx[c];
        return g.scales[k] * (float(g.q[c]) - g.zeros[k]);
    };
    if (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) {
        std::vector<float> w(static_cast<size_t>(n));
        for (int64_t c = 0; c < n; ++c)
            w[size_t(c)] = value(c);
        quantizeRow(t, w.data(), out, n);
        return;
    }
    MOEWB_ASSERT(t == GgmlType::Q8_0 || t == GgmlType::Q4_0 || t == GgmlType::Q4_1);
    MOEWB_ASSERT(n % QK == 0);
    const int64_t bytes = ggmlTypeSize(t);
    float buf[QK];
    for (int64_t b = 0; b < n / QK; ++b) {
        const int64_t c0 = b * QK;
        uint8_t* y = out + b * bytes;
        const int32_t k = g.gIdx[c0];
        bool exact = true;
        for (int64_t j = 1; j < QK && exact; ++j)
            exact = g.gIdx[c0 + j] == k;
        const float scale = g.scales[k];
        const float zero = g.zeros[k];
        exact = exact && fp16ToFp32(fp32ToFp16(scale)) == scale && std::nearbyint(zero) == zero
            && std::isfinite(scale);
        const int32_t iz = exact ? int32_t(zero) : 0;
        int32_t lo = 0, hi = 0; // allowed range of the stored code
        int32_t off = 0;        // stored code = q + off
        if (t == GgmlType::Q8_0) {
            lo = -128, hi = 127, off = -iz;
        } else if (t == GgmlType::Q4_0) {
            lo = 0, hi = 15, off = 8 - iz;
        } else {
            lo = 0, hi = 15, off = 0;
        }
        for (int64_t j = 0; j < QK && exact; ++j) {
            const int32_t code = g.q[c0 + j] + off;
            exact = code >= lo && code <= hi;
        }
        if (!exact) {
            for (int64_t j = 0; j < QK; ++j)
                buf[j] = value(c0 + j);
            quantizeRow(t, buf, y, QK);
            ++stats.requantBlocks;
            continue;
        }
        ++stats.gridBlocks;
        detail::putHalf(y, fp32ToFp16(scale));
        if (t == GgmlType::Q8_0) {
            for (int64_t j = 0; j < QK; ++j)
                y[2 + j] = uint8_t(int8_t(g.q[c0 + j] + off));
        } else {
            uint8_t* qs = y + (t == GgmlType::Q4_0 ? 2 : 4);
            if (t == GgmlType::Q4_1)
                detail::putHalf(y + 2, fp32ToFp16(-scale * zero));
            for (int64_t j = 0; j < QK / 2; ++j)
                qs[j] = uint8_t((g.q[c0 + j] + off) | ((g.q[c0 + QK / 2 + j] + off) << 4));
        }
    }
}

} // namespace moewb::gguf
