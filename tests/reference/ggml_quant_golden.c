// SPDX-License-Identifier: MIT
// Writes tests/data/gguf/ggml_quant_golden.bin: rows quantized by llama.cpp's own quantizer
// (ggml_quantize_chunk, what llama-quantize calls per tensor, with the row's importance as the
// imatrix or without), for tst_gguf_kquants to compare moewb's encoders with byte for byte.
// Not part of the build: compile it against a llama.cpp build outside this repository, e.g.
//   cc -O2 -I$LLAMA/ggml/include tests/reference/ggml_quant_golden.c \
//      $LLAMA/build/ggml/src/libggml-base.a -lm -lpthread -lstdc++ -o ggml_quant_golden
//   /usr/bin/python3 tests/reference/ggml_quant_golden_rows.py | ./ggml_quant_golden OUT.bin
// Input (stdin), per row: u32 n, f32 x[n], f32 importance[n]. Output: "MWQG", u32 version 1,
// u32 rows; per row: u32 n, f32 x[n], f32 importance[n], u32 types; per type: u32 ggml type id,
// then twice (without, with importance): u32 byte count, the bytes.
#include "ggml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const enum ggml_type kTypes[] = {
    GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL,
    GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0,
};
enum { kTypeCount = sizeof kTypes / sizeof kTypes[0], kMaxRows = 64 };

static void put32(FILE* f, uint32_t v) { fwrite(&v, 4, 1, f); }

int main(int argc, char** argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ggml_quant_golden OUT.bin < rows\n");
        return 2;
    }
    float* xs[kMaxRows];
    float* imps[kMaxRows];
    uint32_t ns[kMaxRows];
    uint32_t rows = 0;
    while (rows < kMaxRows && fread(&ns[rows], 4, 1, stdin) == 1) {
        xs[rows] = malloc(4 * ns[rows]);
        imps[rows] = malloc(4 * ns[rows]);
        if (fread(xs[rows], 4, ns[rows], stdin) != ns[rows] || fread(imps[rows], 4, ns[rows], stdin) != ns[rows])
            return 1;
        ++rows;
    }
    // ggml_init fills ggml's fp16 conversion table, which the K-quant encoders read back through
    struct ggml_init_params params = {1024 * 1024, NULL, false};
    struct ggml_context* ctx = ggml_init(params);
    FILE* out = fopen(argv[1], "wb");
    if (!out)
        return 1;
    fwrite("MWQG", 1, 4, out);
    put32(out, 1);
    put32(out, rows);
    for (uint32_t r = 0; r < rows; ++r) {
        put32(out, ns[r]);
        fwrite(xs[r], 4, ns[r], out);
        fwrite(imps[r], 4, ns[r], out);
        uint32_t usable = 0;
        for (int t = 0; t < kTypeCount; ++t)
            usable += ns[r] % ggml_blck_size(kTypes[t]) == 0;
        put32(out, usable);
        for (int t = 0; t < kTypeCount; ++t) {
            if (ns[r] % ggml_blck_size(kTypes[t]) != 0)
                continue;
            put32(out, (uint32_t)kTypes[t]);
            const size_t bytes = ggml_row_size(kTypes[t], ns[r]);
            void* q = malloc(bytes);
            for (int withImp = 0; withImp < 2; ++withImp) {
                ggml_quantize_chunk(kTypes[t], xs[r], q, 0, 1, ns[r], withImp ? imps[r] : NULL);
                put32(out, (uint32_t)bytes);
                fwrite(q, 1, bytes, out);
            }
            free(q);
        }
    }
    fclose(out);
    ggml_free(ctx);
    fprintf(stderr, "%s: %u rows\n", argv[1], rows);
    return 0;
}
