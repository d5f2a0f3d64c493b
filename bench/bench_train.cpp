// SPDX-License-Identifier: MIT
// Training throughput of `moewb train-demo` (trainModel) per model config: tokens/s over the steps
// after the first two, the model FLOPs per token (3 × forward: 2 × active linear weights + the
// attention score and context products), and the fraction of the fp32 GEMM peak that this reaches,
// the peak measured with a 2048³ at::mm at the same thread count in the same run. Also prints the
// parameter counts (total, active per token, bf16 bytes) that the demo model sizing needs, and
// whether the CPU has native bf16 (the trainer's --precision auto).
//
//   bench_train [--threads N | --workers N] [--steps N] [--batch B] [--seq-len T] [--data FILE] [--tokenizer FILE]
//               [--prefetch N] [--precision auto|f32|bf16] CONFIG.json...
//
// Defaults: threads from OMP_NUM_THREADS or all cores, 12 steps, batch 8, seq-len 256,
// datasets/corpus-v2/eval.jsonl with datasets/tokenizer-v2/tokenizer.json (the text only steers routing).
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/model/runtime.h"
#include "moewb/train/train.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace moewb;
namespace fs = std::filesystem;

namespace {

struct Counts {
    int64_t total = 0, active = 0, embed = 0;
    double fwdFlopsPerToken = 0; ///< at sequence length T
};

Counts countParams(const ModelConfig& cfg, int64_t T)
{
    Counts c;
    int64_t routed = 0;
    for (const TensorSpec& s : expectedTensors(cfg)) {
        int64_t n = 1;
        for (int64_t d : s.shape)
            n *= d;
        c.total += n;
        if (s.name == "model.embed_tokens.weight")
            c.embed = n;
        if (s.name.find(".experts.") != std::string::npos && s.name.find("shared") == std::string::npos)
            routed += n;
    }
    const double share = cfg.numExperts > 0 ? double(cfg.topK) / double(cfg.numExperts) : 1.0;
    c.active = c.total - routed + int64_t(double(routed) * share + 0.5);
    // Matmul FLOPs of one token's forward: every active weight except the embedding lookup (lm_head
    // counts; tied or not), plus q·k and p·v over T keys (the trainer computes the full T×T scores).
    const int64_t matmulWeights = c.active - c.embed + (cfg.tieWordEmbeddings ? c.embed : 0);
    c.fwdFlopsPerToken = 2.0 * double(matmulWeights)
        + double(cfg.numLayers) * 2.0 * 2.0 * double(T) * double(cfg.numHeads * cfg.headDim);
    return c;
}

std::string readText(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError(path + ": cannot read");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string sourcePath(const std::string& rel)
{
    for (fs::path p = fs::current_path(); !p.empty(); p = p.parent_path()) {
        if (fs::exists(p / rel))
            return (p / rel).string();
        if (p == p.root_path())
            break;
    }
    return rel;
}

} // namespace

int main(int argc, char** argv)
{
    int threads = 0;
    int64_t steps = 12, batch = 8, seqLen = 256, prefetch = 2, workers = 1;
    TrainPrecision precision = TrainPrecision::Auto;
    std::string data = sourcePath("datasets/corpus-v2/eval.jsonl");
    std::string tokenizer = sourcePath("datasets/tokenizer-v2/tokenizer.json");
    std::vector<std::string> configs;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_train: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--threads")
            threads = std::atoi(val().c_str());
        else if (a == "--steps")
            steps = std::atoll(val().c_str());
        else if (a == "--batch")
            batch = std::atoll(val().c_str());
        else if (a == "--seq-len")
            seqLen = std::atoll(val().c_str());
        else if (a == "--workers")
            workers = std::atoll(val().c_str());
        else if (a == "--prefetch")
            prefetch = std::atoll(val().c_str());
        else if (a == "--data")
            data = val();
        else if (a == "--tokenizer")
            tokenizer = val();
        else if (a == "--precision") {
            const std::string v = val();
            precision = v == "bf16" ? TrainPrecision::Bf16 : v == "f32" ? TrainPrecision::F32 : TrainPrecision::Auto;
        } else
            configs.push_back(a);
    }
    if (configs.empty() || steps < 4) {
        std::fprintf(stderr, "usage: bench_train [--threads N] [--steps N>=4] [--batch B] [--seq-len T] [--data FILE] "
                             "[--tokenizer FILE] [--prefetch N] [--precision auto|f32|bf16] CONFIG.json...\n");
        return 2;
    }
    try {
        initRuntime(false);
        // workers > 1: one thread each; the GEMM peak is then measured on all cores (threads = workers)
        const int used = setComputeThreads(threads > 0 ? threads : workers > 1 ? int(workers) : at::get_num_threads());
        std::printf("threads %d, workers %lld; native bf16 (AVX512-BF16/AMX): %s; load average at start: ", used,
                    (long long)workers, cpuHasFastBf16() ? "yes" : "no");
        {
            std::ifstream la("/proc/loadavg");
            std::string l1;
            la >> l1;
            std::printf("%s\n", l1.c_str());
        }
        const double peak = measureGemmGflops(2048, 3);
        std::printf("fp32 GEMM peak (at::mm 2048^3, best of 3): %.1f GFLOP/s\n", peak);
        {
            const at::Tensor a = at::rand({512, 512}).to(at::kBFloat16), b = at::rand({512, 512}).to(at::kBFloat16);
            at::Tensor c = at::mm(a, b);
            const auto t0 = std::chrono::steady_clock::now();
            c = at::mm(a, b);
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::printf("bf16 GEMM (at::mm 512^3): %.1f GFLOP/s\n\n", 2.0 * 512 * 512 * 512 / s / 1e9);
        }
        std::printf("| config | params | active/token | bf16 MB | train FLOP/token | tokens/s | GFLOP/s | of peak | s/step |\n");
        std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (const std::string& path : configs) {
            const ModelConfig cfg = parseConfigJson(readText(path), path);
            const Counts c = countParams(cfg, seqLen);
            const double trainFlops = 3.0 * c.fwdFlopsPerToken;
            const fs::path tmp = fs::temp_directory_path() / ("bench_train." + std::to_string(::getpid()));
            fs::remove_all(tmp);
            TrainOptions opt;
            opt.configPath = path;
            opt.tokenizerPath = tokenizer;
            opt.trainFiles = {data};
            opt.outDir = (tmp / "model").string();
            opt.stateDir = (tmp / "state").string();
            opt.steps = steps;
            opt.batch = batch;
            opt.seqLen = seqLen;
            opt.warmup = 2;
            opt.logEvery = 1;
            opt.prefetch = prefetch;
            opt.precision = precision;
            opt.threads = workers > 1 ? 1 : used;
            opt.workers = workers;
            std::vector<double> at;
            const TrainResult r = trainModel(opt, {}, [&](const TrainLogEntry& e) { at.push_back(e.seconds); });
            fs::remove_all(tmp);
            const double secs = at.back() - at[1]; // steps 3..N
            const double tps = double((steps - 2) * batch * seqLen) / secs;
            const double gflops = tps * trainFlops / 1e9;
            std::printf("| %s | %.2fM | %.2fM | %.1f | %.1fM | %.0f | %.1f | %.0f%% | %.3f |\n",
                        fs::path(path).filename().string().c_str(), c.total / 1e6, c.active / 1e6,
                        2.0 * double(c.total) / 1e6, trainFlops / 1e6, tps, gflops, 100.0 * gflops / peak,
                        secs / double(steps - 2));
            std::fflush(stdout);
            (void)r;
        }
    } catch (const Error& e) {
        std::fprintf(stderr, "bench_train: %s\n", e.what());
        return 1;
    }
    return 0;
}
