// SPDX-License-Identifier: MIT
// libtorch runtime set-up: intra-op threads and a check that GEMMs go through an optimized BLAS.
#pragma once

#include <string>

namespace moewb {

struct RuntimeInfo {
    int threads = 1;
    double gemmGflops = 0.0;  ///< fp32 512³ GEMM throughput measured at start (0: not measured)
    std::string blasLibrary;  ///< the BLAS shared object mapped into the process, if any
    bool slowBlas = false;    ///< throughput suggests Debian's reference BLAS
    std::string warning;      ///< one line for the user when slowBlas, else empty
};

/// Sets libtorch's intra-op threads to the core count (or OMP_NUM_THREADS when set) and, when
/// measureGemm, times a small fp32 GEMM. Safe to call more than once (measures only once).
RuntimeInfo initRuntime(bool measureGemm = true);

/// Sets libtorch's intra-op threads and, when OpenBLAS is the BLAS, its own thread count (OpenBLAS
/// reads OMP_NUM_THREADS once at load and ignores at::set_num_threads). Returns the thread count.
int setComputeThreads(int threads);

/// fp32 GEMM throughput in GFLOP/s of at::mm on n×n matrices at the current thread count (best of
/// `reps` after one warm-up): the peak that training throughput is compared with.
double measureGemmGflops(int64_t n = 1024, int reps = 3);

/// The OpenBLAS kernel set to ask for when the loaded OpenBLAS picked a generic one on a CPU with
/// AVX-512 ("SkylakeX") or AVX2 + FMA ("Haswell"): OpenBLAS 0.3.21 (Debian 12) does not recognise
/// some newer CPUs and falls back to its SSE3 "Prescott" kernels, whose fp32 GEMMs run ~5x slower.
/// Empty when OpenBLAS is not loaded, already runs a suitable kernel set, or OPENBLAS_CORETYPE is set.
std::string openBlasCoreOverride();

/// Program start (before anything else, argv as main received it): when openBlasCoreOverride()
/// names a kernel set, sets OPENBLAS_CORETYPE to it and executes the program again (OpenBLAS
/// chooses its kernels when it is loaded). Returns only when nothing is to be done or the
/// execution failed (the program then runs with the kernels it has).
void restartWithFastBlas(char** argv);

/// Whether the CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16 in /proc/cpuinfo). Without it
/// libtorch's bf16 GEMMs are emulated and ~20x slower than fp32, so "auto" computes bf16 checkpoints
/// in fp32 (the bf16 weights are upcast exactly). MOEWB_FAST_BF16=0/1 overrides the detection.
bool cpuHasFastBf16();

/// Hands the allocator's free memory back to the OS (glibc: malloc_trim(0); elsewhere nothing).
/// glibc keeps freed blocks below its (adaptively raised, up to 32 MiB) mmap threshold in its heaps,
/// where fragmentation strands them: without this, quantizing a 64-expert layer left ≈ 1 GiB of free
/// but resident memory behind per layer (docs/performance.md, "Memory growth per layer"). Called
/// where a layer-streaming loop has just dropped a large working set (a layer, a pass's Hessians);
/// it costs milliseconds.
void releaseFreedMemory();

} // namespace moewb
