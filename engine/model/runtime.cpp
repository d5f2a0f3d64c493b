// SPDX-License-Identifier: MIT
#include "moewb/model/runtime.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cctype>
#include <chrono>
#include <dlfcn.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace moewb {

namespace {

std::string mappedBlas()
{
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        const auto slash = line.find('/');
        if (slash == std::string::npos)
            continue;
        const std::string path = line.substr(slash);
        if (path.find("openblas") != std::string::npos || path.find("libblas") != std::string::npos
            || path.find("mkl") != std::string::npos || path.find("blis") != std::string::npos)
            return path;
    }
    return {};
}

/// The "flags" line of /proc/cpuinfo's first processor, with a space at both ends.
std::string cpuFlags()
{
    std::ifstream info("/proc/cpuinfo");
    std::string line;
    while (std::getline(info, line))
        if (line.rfind("flags", 0) == 0)
            return " " + line.substr(line.find(':') + 1) + " ";
    return {};
}

/// Whether `flags` (cpuFlags()) lists `flag` as a whole word.
bool hasCpuFlag(const std::string& flags, const char* flag)
{
    return flags.find(std::string(" ") + flag + " ") != std::string::npos;
}

} // namespace

std::string openBlasCoreOverride()
{
    if (std::getenv("OPENBLAS_CORETYPE"))
        return {};
    using CoreName = char* (*)();
    auto* name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
    if (!name || !name())
        return {};
    std::string core = name();
    for (char& c : core)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    // The generic x86-64 fallbacks of a DYNAMIC_ARCH build; a recognised CPU gets its own name.
    if (core != "prescott" && core != "core2" && core != "nehalem" && core != "unknown")
        return {};
    const std::string flags = cpuFlags();
    const auto has = [&](const char* f) { return hasCpuFlag(flags, f); };
    if (has("avx512f") && has("avx512bw") && has("avx512vl") && has("avx512dq"))
        return "SkylakeX";
    if (has("avx2") && has("fma"))
        return "Haswell";
    return {};
}

void restartWithFastBlas(char** argv)
{
    const std::string core = openBlasCoreOverride();
    if (core.empty() || !argv || !argv[0])
        return;
    // The executable's own path (not /proc/self/exe, which would name the process "exe").
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    execv(self, argv);
}

double measureGemmGflops(int64_t n, int reps)
{
    const at::Tensor a = at::rand({n, n}), b = at::rand({n, n});
    at::Tensor c = at::mm(a, b); // warm-up
    double best = 1e30;
    for (int rep = 0; rep < reps; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        c = at::mm(a, b);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

int setComputeThreads(int threads)
{
    threads = std::max(1, threads);
    at::set_num_threads(threads);
    using SetThreads = void (*)(int);
    if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
        set(threads);
    return at::get_num_threads();
}

RuntimeInfo initRuntime(bool measureGemm)
{
    static std::mutex mutex;
    static RuntimeInfo info;
    static bool threadsSet = false, measured = false;
    std::lock_guard<std::mutex> lock(mutex);
    if (!threadsSet) {
        int threads = int(std::thread::hardware_concurrency());
        if (const char* env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0)
            threads = std::atoi(env);
        at::set_num_threads(std::max(1, threads));
        info.threads = at::get_num_threads();
        threadsSet = true;
    }
    if (measureGemm && !measured) {
        info.gemmGflops = measureGemmGflops(512, 3);
        info.blasLibrary = mappedBlas();
        // An optimized BLAS reaches tens of GFLOP/s per core here; the reference BLAS stays near 2-5.
        // Only when the mapped library is not a known optimized one: a busy machine also measures slow.
        const bool optimized = info.blasLibrary.find("openblas") != std::string::npos
            || info.blasLibrary.find("mkl") != std::string::npos || info.blasLibrary.find("blis") != std::string::npos;
        info.slowBlas = !optimized && info.gemmGflops < 8.0 * info.threads;
        if (info.slowBlas)
            info.warning = "warning: fp32 GEMM runs at " + std::to_string(int(info.gemmGflops))
                + " GFLOP/s, which suggests a reference BLAS (" + (info.blasLibrary.empty() ? "unknown" : info.blasLibrary)
                + "); install libopenblas0-pthread (apt-get install libopenblas0-pthread) for ~40x faster runs";
        measured = true;
    }
    return info;
}

bool cpuHasFastBf16()
{
    static const bool fast = [] {
        if (const char* env = std::getenv("MOEWB_FAST_BF16"))
            return std::string(env) == "1";
        const std::string flags = cpuFlags();
        return hasCpuFlag(flags, "avx512_bf16") || hasCpuFlag(flags, "amx_bf16");
    }();
    return fast;
}

void releaseFreedMemory()
{
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
}

} // namespace moewb
