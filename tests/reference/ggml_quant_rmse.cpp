// SPDX-License-Identifier: MIT
// Quantize -> dequantize RMSE of moewb's GGUF encoders against llama.cpp's (docs/export-gguf.md,
// "Quant types"). Not part of the build: compile it against a llama.cpp build outside this
// repository, from the repository root, e.g.
//   g++ -std=c++17 -O2 -Iengine -Iengine/include -I$LLAMA/ggml/include engine/gguf/gguf_quants.cpp \
//       engine/gguf/quant_fit.cpp engine/gguf/kquants.cpp engine/gguf/kquant_layout.cpp \
//       engine/gguf/legacy_quants.cpp engine/gguf/iq4nl.cpp tests/reference/ggml_quant_rmse.cpp \
//       $LLAMA/build/ggml/src/libggml-base.a -lm -lpthread -o ggml_quant_rmse
//   /usr/bin/python3 tests/reference/ggml_quant_rmse_rows.py datasets/models/moewb-mixtral-8e-v2 \
//       datasets/stats/moewb-mixtral-8e-v2.stats.h5 rows.bin
//   ./ggml_quant_rmse rows.bin
// For every tensor, type and importance setting: both encoders on all rows (llama.cpp's through
// ggml_quantize_chunk, as llama-quantize), both results decoded with ggml's to_float; plain and
// importance-weighted RMSE, the share of identical blocks, and how many values moewb's own decoder
// gives differently from to_float on llama.cpp's bytes.
#include "gguf/gguf_quants.h"
#include "ggml.h"
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>
using moewb::gguf::GgmlType;
struct T { std::string name; int64_t rows, cols; std::vector<float> w, imp; };
static std::vector<T> load(const char* p) {
    std::vector<T> out; FILE* f = fopen(p, "rb");
    uint32_t n;
    while (fread(&n, 4, 1, f) == 1) {
        T t; t.name.resize(n); fread(&t.name[0], 1, n, f); fread(&t.rows, 8, 1, f); fread(&t.cols, 8, 1, f);
        t.w.resize(t.rows * t.cols); t.imp.resize(t.cols);
        fread(t.w.data(), 4, t.w.size(), f); fread(t.imp.data(), 4, t.imp.size(), f); out.push_back(std::move(t));
    }
    fclose(f); return out;
}
struct Acc { double se = 0, wse = 0, w = 0, ge = 0, gwe = 0; int64_t n = 0, blocks = 0, same = 0, decodeMismatch = 0; };
int main(int argc, char** argv) {
    const GgmlType types[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                              GgmlType::IQ4_NL, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0};
    struct ggml_init_params ip = {16 * 1024 * 1024, nullptr, false};
    ggml_context* ctx = ggml_init(ip); // fills ggml's fp16 tables
    (void)ctx;
    for (int a = 1; a < argc; ++a) {
        auto ts = load(argv[a]);
        printf("# %s: %zu tensors\n", argv[a], ts.size());
        printf("%-7s %-4s %9s %12s %12s %8s %12s %12s %8s %7s %s\n", "type", "imp", "values", "rmse_moewb", "rmse_ggml", "ratio",
               "wrmse_moewb", "wrmse_ggml", "wratio", "same%", "decode_mismatch");
        for (GgmlType t : types) {
            for (int useImp = 0; useImp < 2; ++useImp) {
                Acc acc; const ggml_type gt = ggml_type(uint32_t(t));
                const auto* tr = ggml_get_type_traits(gt);
                for (const T& x : ts) {
                    if (x.cols % moewb::gguf::ggmlBlockSize(t)) continue;
                    const int64_t rb = moewb::gguf::ggmlRowBytes(t, x.cols);
                    std::vector<uint8_t> ours(rb * x.rows), theirs(rb * x.rows);
                    std::vector<float> dq(x.cols), gq(x.cols), cross(x.cols);
                    const float* imp = useImp ? x.imp.data() : nullptr;
                    ggml_quantize_chunk(gt, x.w.data(), theirs.data(), 0, x.rows, x.cols, imp);
                    for (int64_t r = 0; r < x.rows; ++r) {
                        const float* src = x.w.data() + r * x.cols;
                        moewb::gguf::quantizeRow(t, src, ours.data() + r * rb, x.cols, imp);
                        moewb::gguf::dequantizeRow(t, ours.data() + r * rb, dq.data(), x.cols);
                        tr->to_float(theirs.data() + r * rb, gq.data(), x.cols);
                        moewb::gguf::dequantizeRow(t, theirs.data() + r * rb, cross.data(), x.cols);
                        for (int64_t c = 0; c < x.cols; ++c) {
                            const double e = dq[c] - src[c], g = gq[c] - src[c];
                            acc.se += e * e; acc.ge += g * g;
                            acc.wse += x.imp[c] * e * e; acc.gwe += x.imp[c] * g * g; acc.w += x.imp[c];
                            if (std::memcmp(&cross[c], &gq[c], 4) != 0) ++acc.decodeMismatch;
                        }
                        acc.n += x.cols;
                        const int64_t bs = moewb::gguf::ggmlTypeSize(t);
                        for (int64_t b = 0; b < rb / bs; ++b, ++acc.blocks)
                            acc.same += std::memcmp(ours.data() + r * rb + b * bs, theirs.data() + r * rb + b * bs, bs) == 0;
                    }
                }
                if (!acc.n) continue;
                const double ro = std::sqrt(acc.se / acc.n), rg = std::sqrt(acc.ge / acc.n);
                const double wo = std::sqrt(acc.wse / acc.w), wg = std::sqrt(acc.gwe / acc.w);
                printf("%-7s %-4s %9lld %12.6e %12.6e %8.5f %12.6e %12.6e %8.5f %7.3f %lld\n", moewb::gguf::ggmlTypeName(t),
                       useImp ? "yes" : "no", (long long)acc.n, ro, rg, ro / rg, wo, wg, wo / wg,
                       100.0 * acc.same / acc.blocks, (long long)acc.decodeMismatch);
            }
        }
    }
}
