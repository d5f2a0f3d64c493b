// SPDX-License-Identifier: MIT
// The ggml encoders and decoders (engine/gguf): the quantize → dequantize round trip of one row of
// arbitrary floats, with or without an importance vector, for every type moewb writes. Byte 0
// picks the type, byte 1 whether the floats that follow are split into row and importance; the row
// is the longest whole number of the type's blocks the input holds. Checked beyond the common
// contract (moewb::Error with a one-line message, or success; no crash, UB or leak): a row of
// finite values of magnitude ≤ 1000 with a valid importance decodes to finite values.
#include "fuzz_common.h"

#include "gguf/gguf_quants.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace {

using moewb::gguf::GgmlType;

constexpr GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,  GgmlType::Q4_1,
                               GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,  GgmlType::Q3_K,
                               GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 2)
        return 0;
    const GgmlType t = kTypes[data[0] % (sizeof(kTypes) / sizeof(kTypes[0]))];
    const bool withImportance = data[1] & 1;
    const size_t floats = (size - 2) / sizeof(float);
    const int64_t block = moewb::gguf::ggmlBlockSize(t);
    const int64_t n = int64_t(withImportance ? floats / 2 : floats) / block * block;
    if (n <= 0 || n > (int64_t(1) << 16))
        return 0;
    std::vector<float> x(static_cast<size_t>(n));
    std::vector<float> imp;
    std::memcpy(x.data(), data + 2, size_t(n) * sizeof(float));
    if (withImportance) {
        imp.resize(static_cast<size_t>(n));
        std::memcpy(imp.data(), data + 2 + size_t(n) * sizeof(float), size_t(n) * sizeof(float));
    }
    std::vector<uint8_t> enc(static_cast<size_t>(moewb::gguf::ggmlRowBytes(t, n)));
    std::vector<float> dec(static_cast<size_t>(n));
    moewb::fuzz::expectCleanErrors([&] {
        moewb::gguf::quantizeRow(t, x.data(), enc.data(), n, withImportance ? imp.data() : nullptr);
        moewb::gguf::dequantizeRow(t, enc.data(), dec.data(), n);
        bool tame = true;
        for (float v : x)
            tame = tame && std::isfinite(v) && std::fabs(v) <= 1000.0f;
        for (float v : imp)
            tame = tame && std::isfinite(v) && v >= 0.0f;
        if (!tame)
            return;
        for (int64_t i = 0; i < n; ++i)
            if (!std::isfinite(dec[size_t(i)])) {
                std::fprintf(stderr, "fuzz: %s: value %lld (%g) decodes to %g\n", moewb::gguf::ggmlTypeName(t),
                             (long long)i, double(x[size_t(i)]), double(dec[size_t(i)]));
                std::abort();
            }
    });
    return 0;
}
