// SPDX-License-Identifier: MIT
// The GEMM peak a whole-model run is measured against (#28, scripts/bench_full_model.sh): the
// best of REPS timings of one [M × K] · [K × N]ᵀ product (at::linear, as the forward computes its
// projections) in bf16 and in fp32, on the threads libtorch uses (OMP_NUM_THREADS).
//
//   bench_gemm_peak [M=1024] [K=2048] [N=8192] [REPS=5]
// Prints one line per dtype: "peak DTYPE: X GFLOP/s" (bf16 is emulated, ~20x slower, on CPUs
// without native bf16; moewb then computes in fp32, so the fp32 line is the peak that applies).
#include "moewb/model/runtime.h"

#include "bench_timer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace moewb;

int main(int argc, char** argv)
{
    const int64_t M = argc > 1 ? std::atoll(argv[1]) : 1024;
    const int64_t K = argc > 2 ? std::atoll(argv[2]) : 2048;
    const int64_t N = argc > 3 ? std::atoll(argv[3]) : 8192;
    const int reps = argc > 4 ? std::max(1, std::atoi(argv[4])) : 5;
    if (M < 1 || K < 1 || N < 1) {
        std::fprintf(stderr, "usage: bench_gemm_peak [M=1024] [K=2048] [N=8192] [REPS=5]\n");
        return 2;
    }
    restartWithFastBlas(argv); // the kernels moewb itself runs with
    const RuntimeInfo rt = initRuntime(false);
    at::NoGradGuard noGrad;
    std::printf("threads %d, [%lld x %lld] x [%lld x %lld]^T, fast bf16: %s\n", rt.threads, (long long)M,
                (long long)K, (long long)N, (long long)K, cpuHasFastBf16() ? "yes" : "no");
    for (const at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
        const at::Tensor a = at::randn({M, K}).to(dtype), w = (at::randn({N, K}) * 0.02).to(dtype);
        at::linear(a, w); // warm-up
        double best = 1e30;
        for (int r = 0; r < reps; ++r)
            best = std::min(best, bench::seconds([&] { (void)at::linear(a, w); }));
        std::printf("peak %s: %.1f GFLOP/s\n", dtype == at::kBFloat16 ? "bf16" : "fp32",
                    2.0 * double(M) * double(K) * double(N) / best / 1e9);
    }
    return 0;
}
