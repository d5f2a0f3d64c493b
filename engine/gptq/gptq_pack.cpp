// SPDX-License-Identifier: MIT
#include "gptq/gptq_pack.h"

#include "moewb/core/error.h"

#include <cmath>
#include <cstring>

namespace moewb::gptq {

const char* zeroFormatName(ZeroFormat f)
{
    return f == ZeroFormat::V1 ? "gptq" : "gptq_v2";
}

ZeroFormat zeroFormatFromName(const std::string& name, const std::string& where)
{
    if (name.empty() || name == "gptq")
        return ZeroFormat::V1;
    if (name == "gptq_v2")
        return ZeroFormat::V2;
    throw InputError(where, "checkpoint_format '" + name + "' is not supported (gptq or gptq_v2)");
}

bool isPackableBits(int64_t bits)
{
    return bits == 2 || bits == 3 || bits == 4 || bits == 8;
}

int64_t packedWords(int64_t count, int64_t bits)
{
    return (count * bits + 31) / 32;
}

int64_t groupCount(int64_t inFeatures, int64_t groupSize)
{
    return groupSize <= 0 ? 1 : (inFeatures + groupSize - 1) / groupSize;
}

uint16_t floatToHalf(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) // inf, nan
        return uint16_t(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (x >= 0x477ff000u) // ≥ 65520 rounds to inf
        return uint16_t(sign | 0x7c00u);
    if (x < 0x38800000u) { // below 2^-14: subnormal (exact: a multiple of 2^-24 after rounding)
        float a;
        std::memcpy(&a, &x, 4);
        return uint16_t(sign | uint16_t(std::nearbyint(double(a) * 16777216.0)));
    }
    x += 0xfffu + ((x >> 13) & 1u); // round to nearest even on the 13 dropped bits
    return uint16_t(sign | ((x - 0x38000000u) >> 13));
}

float halfToFloat(uint16_t h)
{
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        const float v = float(std::ldexp(double(mant), -24));
        std::memcpy(&x, &v, 4);
        x |= sign;
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

std::vector<int64_t> qweightShape(int64_t in, int64_t out, int64_t bits)
{
    return {packedWords(in, bits), out};
}

std::vector<int64_t> qzerosShape(int64_t out, int64_t groups, int64_t bits)
{
    return {groups, packedWords(out, bits)};
}

std::vector<int64_t> scalesShape(int64_t out, int64_t groups)
{
    return {groups, out};
}

namespace {

// Note [GPTQ bit stream]: word index of stream bit `pos` is pos / 32; a value may straddle two words
// (only for b = 3). `stride` is the distance between consecutive words of one stream.
inline void putBits(uint32_t* words, int64_t stride, int64_t pos, uint32_t v, int64_t bits)
{
    const int64_t w = pos >> 5;
    const int sh = int(pos & 31);
    words[w * stride] |= v << sh;
    if (sh + bits > 32)
        words[(w + 1) * stride] |= v >> (32 - sh);
}

inline uint32_t getBits(const uint32_t* words, int64_t stride, int64_t pos, int64_t bits)
{
    const int64_t w = pos >> 5;
    const int sh = int(pos & 31);
    uint32_t v = words[w * stride] >> sh;
    if (sh + bits > 32)
        v |= words[(w + 1) * stride] << (32 - sh);
    return v & ((uint32_t(1) << bits) - 1);
}

void checkBits(int64_t bits)
{
    MOEWB_ASSERT(isPackableBits(bits));
}

} // namespace

std::vector<int32_t> packQweight(const int32_t* q, int64_t out, int64_t in, int64_t bits)
{
    checkBits(bits);
    const int64_t rows = packedWords(in, bits);
    std::vector<uint32_t> w(size_t(rows * out), 0u);
    // Stream of column o runs down qweight's rows (stride N): value k = q[o][k].
    for (int64_t o = 0; o < out; ++o) {
        const int32_t* row = q + o * in;
        for (int64_t k = 0; k < in; ++k)
            putBits(w.data() + o, out, k * bits, uint32_t(row[k]), bits);
    }
    std::vector<int32_t> r(w.size());
    std::memcpy(r.data(), w.data(), w.size() * 4);
    return r;
}

std::vector<int32_t> packQzeros(const float* zeros, int64_t out, int64_t groups, int64_t bits, ZeroFormat fmt,
                                int64_t* wrapped)
{
    checkBits(bits);
    const int64_t cols = packedWords(out, bits);
    const uint32_t maxq = (uint32_t(1) << bits) - 1;
    std::vector<uint32_t> w(size_t(groups * cols), 0u);
    int64_t nWrapped = 0;
    for (int64_t g = 0; g < groups; ++g) {
        uint32_t* stream = w.data() + g * cols;
        for (int64_t o = 0; o < out; ++o) {
            const auto z = int64_t(zeros[o * groups + g]);
            int64_t stored = z;
            if (fmt == ZeroFormat::V1) {
                stored = z - 1;
                if (stored < 0) {
                    stored += int64_t(maxq) + 1;
                    ++nWrapped;
                }
            }
            putBits(stream, 1, o * bits, uint32_t(stored) & maxq, bits);
        }
    }
    if (wrapped)
        *wrapped += nWrapped;
    std::vector<int32_t> r(w.size());
    std::memcpy(r.data(), w.data(), w.size() * 4);
    return r;
}

std::vector<uint16_t> packScales(const float* scales, int64_t out, int64_t groups)
{
    std::vector<uint16_t> r(size_t(groups * out));
    for (int64_t o = 0; o < out; ++o)
        for (int64_t g = 0; g < groups; ++g)
            r[size_t(g * out + o)] = floatToHalf(scales[o * groups + g]);
    return r;
}

PackedLinear packLinear(const int32_t* q, const float* scales, const float* zeros, const int32_t* gIdx, int64_t out,
                        int64_t in, int64_t groups, int64_t bits, ZeroFormat fmt, const std::string& where,
                        int64_t* wrapped)
{
    MOEWB_CHECK(isPackableBits(bits), where, "GPTQ checkpoints hold 2, 3, 4 or 8 bits, not ", bits);
    const int32_t maxq = (int32_t(1) << bits) - 1;
    for (int64_t i = 0; i < out * in; ++i)
        MOEWB_CHECK(q[i] >= 0 && q[i] <= maxq, where, "code ", q[i], " outside [0, ", maxq, "]");
    for (int64_t i = 0; i < out * groups; ++i) {
        const float z = zeros[i];
        MOEWB_CHECK(z >= 0 && z <= float(maxq) && z == std::nearbyint(z), where, "zero point ", z,
                    " is not an integer in [0, ", maxq, "]");
        MOEWB_CHECK(std::isfinite(scales[i]) && halfToFloat(floatToHalf(scales[i])) == scales[i], where, "scale ",
                    scales[i], " is not representable in fp16");
    }
    for (int64_t i = 0; i < in; ++i)
        MOEWB_CHECK(gIdx[i] >= 0 && gIdx[i] < groups, where, "g_idx[", i, "] = ", gIdx[i], " outside [0, ", groups,
                    ")");
    PackedLinear p;
    p.bits = bits;
    p.inFeatures = in;
    p.outFeatures = out;
    p.groups = groups;
    p.qweight = packQweight(q, out, in, bits);
    p.qzeros = packQzeros(zeros, out, groups, bits, fmt, wrapped);
    p.scales = packScales(scales, out, groups);
    p.gIdx.assign(gIdx, gIdx + in);
    return p;
}

std::vector<int32_t> unpackQweight(const int32_t* qweight, int64_t out, int64_t in, int64_t bits)
{
    checkBits(bits);
    const auto* w = reinterpret_cast<const uint32_t*>(qweight);
    std::vector<int32_t> q(size_t(out * in));
    for (int64_t o = 0; o < out; ++o)
        for (int64_t k = 0; k < in; ++k)
            q[size_t(o * in + k)] = int32_t(getBits(w + o, out, k * bits, bits));
    return q;
}

std::vector<int32_t> unpackQzeros(const int32_t* qzeros, int64_t out, int64_t groups, int64_t bits, ZeroFormat fmt)
{
    checkBits(bits);
    const int64_t cols = packedWords(out, bits);
    const uint32_t maxq = (uint32_t(1) << bits) - 1;
    const auto* w = reinterpret_cast<const uint32_t*>(qzeros);
    std::vector<int32_t> z(size_t(out * groups));
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t o = 0; o < out; ++o) {
            uint32_t v = getBits(w + g * cols, 1, o * bits, bits);
            if (fmt == ZeroFormat::V1)
                v = (v + 1) & maxq; // AutoGPTQ: zeros + 1, masked to b bits
            z[size_t(o * groups + g)] = int32_t(v);
        }
    return z;
}

void checkGroupIndex(const PackedView& v, const std::string& where)
{
    for (int64_t i = 0; i < v.inFeatures; ++i)
        MOEWB_CHECK(v.gIdx[i] >= 0 && v.gIdx[i] < v.groups, where, "g_idx[", i, "] = ", v.gIdx[i], " outside [0, ",
                    v.groups, ")");
}

void dequantizeRows(const PackedView& v, ZeroFormat fmt, float* out, int64_t rowBegin, int64_t rowEnd)
{
    const int64_t K = v.inFeatures, N = v.outFeatures, G = v.groups, b = v.bits;
    checkBits(b);
    const int64_t cols = packedWords(N, b);
    const uint32_t maxq = (uint32_t(1) << b) - 1;
    const auto* w = reinterpret_cast<const uint32_t*>(v.qweight);
    const auto* zw = reinterpret_cast<const uint32_t*>(v.qzeros);
    std::vector<float> s(static_cast<size_t>(G));
    std::vector<int32_t> z(static_cast<size_t>(G));
    for (int64_t o = rowBegin; o < rowEnd; ++o) {
        for (int64_t g = 0; g < G; ++g) {
            uint32_t zv = getBits(zw + g * cols, 1, o * b, b);
            if (fmt == ZeroFormat::V1)
                zv = (zv + 1) & maxq; // AutoGPTQ: zeros + 1, masked to b bits
            z[size_t(g)] = int32_t(zv);
            s[size_t(g)] = halfToFloat(v.scales[g * N + o]);
        }
        float* row = out + o * K;
        for (int64_t k = 0; k < K; ++k) {
            const int32_t g = v.gIdx[k];
            const auto q = int32_t(getBits(w + o, N, k * b, b));
            row[k] = s[size_t(g)] * float(q - z[size_t(g)]);
        }
    }
}

void dequantize(const PackedView& v, ZeroFormat fmt, float* out, const std::string& where)
{
    checkGroupIndex(v, where);
    dequantizeRows(v, fmt, out, 0, v.outFeatures);
}

std::vector<int64_t> bitsFromShapes(int64_t qweightRows, int64_t qzerosCols, int64_t in, int64_t out)
{
    std::vector<int64_t> r;
    for (int64_t b : {2, 3, 4, 8})
        if (packedWords(in, b) == qweightRows && packedWords(out, b) == qzerosCols)
            r.push_back(b);
    return r;
}

} // namespace moewb::gptq
