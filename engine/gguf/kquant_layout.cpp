// SPDX-License-Identifier: MIT
// K-quant super-block layouts (ggml-common.h's block_q2_K … block_q6_K): where each field, scale
// and code bit lives in the bytes, packing and unpacking a KBlock, and decoding one to floats.
//
//   Q2_K  84 B: scales[16] (low nibble scale, high nibble min) · qs[64] (2-bit codes) · d · dmin
//   Q3_K 110 B: hmask[32] (code bit 2) · qs[64] (code bits 0–1) · scales[12] (16 × 6 bit) · d
//   Q4_K 144 B: d · dmin · scales[12] (8 scales + 8 mins, 6 bit) · qs[128] (4-bit codes)
//   Q5_K 176 B: d · dmin · scales[12] · qh[32] (code bit 4) · qs[128] (code bits 0–3)
//   Q6_K 210 B: ql[128] (code bits 0–3) · qh[64] (code bits 4–5) · scales[16] (int8) · d
// d / dmin are little-endian fp16.
#include "gguf/quant_detail.h"

#include "moewb/core/error.h"

#include <cstring>

namespace moewb::gguf::detail {

namespace {

// --- where code bits go ---------------------------------------------------------------------
// 2-bit fields (Q2_K, Q3_K low bits, Q6_K high bits): each 128-value half owns 32 bytes; value e
// of the half sits in byte e % 32 at bit 2·(e / 32).
int twoBitByte(int e) { return (e / 128) * 32 + e % 32; }
int twoBitShift(int e) { return 2 * ((e % 128) / 32); }
// 4-bit fields (Q4_K, Q5_K low bits): each 64-value chunk owns 32 bytes; value e of the chunk
// sits in byte e % 32, low nibble for the first 32 values and high nibble for the next 32.
int nibbleByte(int e) { return (e / 64) * 32 + e % 32; }
int nibbleShift(int e) { return 4 * ((e % 64) / 32); }
// 1-bit fields (Q3_K, Q5_K high bit): value e in byte e % 32 at bit e / 32.
int bitByte(int e) { return e % 32; }
int bitShift(int e) { return e / 32; }
// Q6_K low nibbles: each 128-value half owns 64 bytes; its quarters 0 and 2 share bytes 0–31
// (low, high nibble), quarters 1 and 3 share bytes 32–63.
int q6NibbleByte(int e) { return (e / 128) * 64 + ((e % 128) / 32 % 2) * 32 + e % 32; }
int q6NibbleShift(int e) { return 4 * ((e % 128) / 64); }

// --- 6-bit scale fields ---------------------------------------------------------------------
// Q3_K: 16 values in 12 bytes. Low 4 bits of value j: byte j % 8, low nibble for j < 8, high
// nibble otherwise; high 2 bits: byte 8 + j % 4 at bit 2·(j / 4).
void putQ3Scales(const int* v, uint8_t* s)
{
    std::memset(s, 0, 12);
    for (int j = 0; j < 16; ++j) {
        s[j % 8] |= uint8_t((v[j] & 0xF) << (j < 8 ? 0 : 4));
        s[8 + j % 4] |= uint8_t(((v[j] >> 4) & 3) << (2 * (j / 4)));
    }
}

void getQ3Scales(const uint8_t* s, int* v)
{
    for (int j = 0; j < 16; ++j)
        v[j] = ((s[j % 8] >> (j < 8 ? 0 : 4)) & 0xF) | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

// Q4_K / Q5_K: 8 scales and 8 mins in 12 bytes. Sub-blocks 0–3 keep scale and min whole in the
// low 6 bits of bytes j and j + 4; sub-blocks 4–7 keep their low 4 bits as the nibbles of byte
// j + 4 (scale low, min high) and their top 2 bits in bits 6–7 of bytes j − 4 (scale) and j (min).
void putScaleMin6(const int* sc, const int* mn, uint8_t* s)
{
    std::memset(s, 0, 12);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            s[j] |= uint8_t(sc[j] & 63);
            s[j + 4] |= uint8_t(mn[j] & 63);
        } else {
            s[j + 4] = uint8_t((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
            s[j - 4] |= uint8_t(((sc[j] >> 4) & 3) << 6);
            s[j] |= uint8_t(((mn[j] >> 4) & 3) << 6);
        }
    }
}

void getScaleMin6(const uint8_t* s, int* sc, int* mn)
{
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
        } else {
            sc[j] = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
            mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
    }
}

// --- the five layouts -------------------------------------------------------------------------

void packQ2(const KBlock& b, uint8_t* y)
{
    std::memset(y, 0, 84);
    for (int j = 0; j < 16; ++j)
        y[j] = uint8_t((b.scale[j] & 0xF) | ((b.min[j] & 0xF) << 4));
    for (int e = 0; e < kSuperBlock; ++e)
        y[16 + twoBitByte(e)] |= uint8_t((b.code[e] & 3) << twoBitShift(e));
    putHalf(y + 80, fp32ToFp16(b.d));
    putHalf(y + 82, fp32ToFp16(b.dmin));
}

void unpackQ2(const uint8_t* y, KBlock& b)
{
    for (int j = 0; j < 16; ++j) {
        b.scale[j] = y[j] & 0xF;
        b.min[j] = y[j] >> 4;
    }
    for (int e = 0; e < kSuperBlock; ++e)
        b.code[e] = uint8_t((y[16 + twoBitByte(e)] >> twoBitShift(e)) & 3);
    b.d = halfAt(y + 80);
    b.dmin = halfAt(y + 82);
}

void packQ3(const KBlock& b, uint8_t* y)
{
    std::memset(y, 0, 110);
    for (int e = 0; e < kSuperBlock; ++e) {
        y[bitByte(e)] |= uint8_t(((b.code[e] >> 2) & 1) << bitShift(e));
        y[32 + twoBitByte(e)] |= uint8_t((b.code[e] & 3) << twoBitShift(e));
    }
    putQ3Scales(b.scale, y + 96);
    putHalf(y + 108, fp32ToFp16(b.d));
}

void unpackQ3(const uint8_t* y, KBlock& b)
{
    for (int e = 0; e < kSuperBlock; ++e)
        b.code[e] = uint8_t(((y[32 + twoBitByte(e)] >> twoBitShift(e)) & 3)
                            | (((y[bitByte(e)] >> bitShift(e)) & 1) << 2));
    getQ3Scales(y + 96, b.scale);
    std::memset(b.min, 0, sizeof b.min);
    b.d = halfAt(y + 108);
    b.dmin = 0.0f;
}

/// Q4_K (highBits = false) and Q5_K (true): the same header, Q5_K adds a bit plane.
void packQ45(const KBlock& b, uint8_t* y, bool highBits)
{
    const int qs = highBits ? 48 : 16;
    std::memset(y, 0, highBits ? 176 : 144);
    putHalf(y, fp32ToFp16(b.d));
    putHalf(y + 2, fp32ToFp16(b.dmin));
    putScaleMin6(b.scale, b.min, y + 4);
    for (int e = 0; e < kSuperBlock; ++e) {
        y[qs + nibbleByte(e)] |= uint8_t((b.code[e] & 0xF) << nibbleShift(e));
        if (highBits)
            y[16 + bitByte(e)] |= uint8_t(((b.code[e] >> 4) & 1) << bitShift(e));
    }
}

void unpackQ45(const uint8_t* y, KBlock& b, bool highBits)
{
    const int qs = highBits ? 48 : 16;
    b.d = halfAt(y);
    b.dmin = halfAt(y + 2);
    getScaleMin6(y + 4, b.scale, b.min);
    for (int e = 0; e < kSuperBlock; ++e) {
        int c = (y[qs + nibbleByte(e)] >> nibbleShift(e)) & 0xF;
        if (highBits)
            c |= ((y[16 + bitByte(e)] >> bitShift(e)) & 1) << 4;
        b.code[e] = uint8_t(c);
    }
}

void packQ6(const KBlock& b, uint8_t* y)
{
    std::memset(y, 0, 210);
    for (int e = 0; e < kSuperBlock; ++e) {
        y[q6NibbleByte(e)] |= uint8_t((b.code[e] & 0xF) << q6NibbleShift(e));
        y[128 + twoBitByte(e)] |= uint8_t(((b.code[e] >> 4) & 3) << twoBitShift(e));
    }
    for (int j = 0; j < 16; ++j)
        y[192 + j] = uint8_t(int8_t(b.scale[j]));
    putHalf(y + 208, fp32ToFp16(b.d));
}

void unpackQ6(const uint8_t* y, KBlock& b)
{
    for (int e = 0; e < kSuperBlock; ++e)
        b.code[e] = uint8_t(((y[q6NibbleByte(e)] >> q6NibbleShift(e)) & 0xF)
                            | (((y[128 + twoBitByte(e)] >> twoBitShift(e)) & 3) << 4));
    for (int j = 0; j < 16; ++j)
        b.scale[j] = int8_t(y[192 + j]);
    std::memset(b.min, 0, sizeof b.min);
    b.d = halfAt(y + 208);
    b.dmin = 0.0f;
}

} // namespace

const KLayout& kLayout(GgmlType t)
{
    //                          sub codeMax codeBias scaleMax scaleBias affine
    static const KLayout q2 = {16, 3, 0, 15, 0, true};
    static const KLayout q3 = {16, 7, 4, 63, 32, false};
    static const KLayout q4 = {32, 15, 0, 63, 0, true};
    static const KLayout q5 = {32, 31, 0, 63, 0, true};
    static const KLayout q6 = {16, 63, 32, 127, 0, false};
    switch (t) {
    case GgmlType::Q2_K: return q2;
    case GgmlType::Q3_K: return q3;
    case GgmlType::Q4_K: return q4;
    case GgmlType::Q5_K: return q5;
    case GgmlType::Q6_K: return q6;
    default: throw Error(std::string("GGUF: ") + ggmlTypeName(t) + " is not a K-quant type");
    }
}

void packKBlock(GgmlType t, const KBlock& b, uint8_t* out)
{
    switch (t) {
    case GgmlType::Q2_K: packQ2(b, out); return;
    case GgmlType::Q3_K: packQ3(b, out); return;
    case GgmlType::Q4_K: packQ45(b, out, false); return;
    case GgmlType::Q5_K: packQ45(b, out, true); return;
    case GgmlType::Q6_K: packQ6(b, out); return;
    default: (void)kLayout(t); // throws
    }
}

void unpackKBlock(GgmlType t, const uint8_t* in, KBlock& b)
{
    switch (t) {
    case GgmlType::Q2_K: unpackQ2(in, b); return;
    case GgmlType::Q3_K: unpackQ3(in, b); return;
    case GgmlType::Q4_K: unpackQ45(in, b, false); return;
    case GgmlType::Q5_K: unpackQ45(in, b, true); return;
    case GgmlType::Q6_K: unpackQ6(in, b); return;
    default: (void)kLayout(t);
    }
}

void decodeKBlock(GgmlType t, const KBlock& b, float* out)
{
    const KLayout& L = kLayout(t);
    for (int j = 0; j < kSuperBlock / L.sub; ++j) {
        const float step = b.d * float(b.scale[j] - L.scaleBias);
        const float shift = L.affine ? b.dmin * float(b.min[j]) : 0.0f;
        for (int e = j * L.sub; e < (j + 1) * L.sub; ++e)
            out[e] = step * float(int(b.code[e]) - L.codeBias) - shift;
    }
}

void dequantizeKRow(GgmlType t, const uint8_t* in, float* out, int64_t n)
{
    const int64_t bytes = ggmlTypeSize(t);
    KBlock b;
    for (int64_t k = 0; k < n / kSuperBlock; ++k) {
        unpackKBlock(t, in + k * bytes, b);
        decodeKBlock(t, b, out + k * kSuperBlock);
    }
}

} // namespace moewb::gguf::detail
