// SPDX-License-Identifier: MIT
// SparseGPT time per linear at Mixtral-8x7B shapes (#14): the engine's sparseGpt (one Cholesky and
// one triangular inverse for U, transposed working weight, row chunks in parallel inside a block,
// one GEMM per block) against a plain libtorch implementation of the same algorithm written here
// from the paper (H⁻¹ by Cholesky + cholesky_inverse, its upper Cholesky factor, lazy-batch blocks
// of 128 columns with per-column tensor ops), same inputs, same process, same masks
// (unstructured: per-row quota per block; N:M per group). Prints both times, the ratio, how many
// mask entries agree and the largest weight difference.
//
//   bench_sparsegpt [--quick] [--cols-fraction F] [--pattern unstructured|2:4] [--runs N] [--only gate/up|down]
// Default shapes: gate/up W 14336×4096 (H 4096²), down W 4096×14336 (H 14336²). --quick: shapes / 8.
// --cols-fraction F < 1 runs both on the first F·in input columns only (W [out, F·in], H its
// leading block), for machines where the full down projection takes too long; say so when quoting.
#include "moewb/model/runtime.h"
#include "quant/sparse.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>

using namespace moewb;

namespace {

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Per-channel scales over ~2 decades times (0.1·I + a rank-256 correlation), as bench_gptq.
at::Tensor makeHessian(int64_t k, uint64_t seed)
{
    at::manual_seed(seed);
    const int64_t r = std::min<int64_t>(256, k);
    const at::Tensor b = at::randn({k, r});
    const at::Tensor s = at::exp(at::randn({k}));
    at::Tensor h = at::matmul(b, b.t()).div_(double(r));
    h.diagonal().add_(0.1);
    return h.mul_(s.unsqueeze(0)).mul_(s.unsqueeze(1));
}

struct Ref {
    at::Tensor w, mask;
    double seconds = 0;
};

/// The plain implementation (float32, tensor ops per column).
Ref reference(const at::Tensor& w0, const at::Tensor& h0, const PruneSpec& spec, double damp, int64_t block)
{
    const double t0 = now();
    const int64_t n = w0.size(0), k = w0.size(1);
    at::Tensor W = w0.clone();
    at::Tensor H = h0.clone();
    H.diagonal().add_(damp * H.diagonal().mean().item<double>());
    at::Tensor L = at::linalg_cholesky(H);
    at::Tensor Hinv = at::linalg_cholesky(at::cholesky_inverse(L), /*upper=*/true);
    at::Tensor mask = at::zeros({n, k}, at::kBool);
    const int64_t total = spec.pattern.structured() ? 0 : prunedPerRow(spec, k);
    const int64_t m = spec.pattern.m, drop = m - spec.pattern.n;
    for (int64_t i1 = 0; i1 < k; i1 += block) {
        const int64_t i2 = std::min(i1 + block, k), count = i2 - i1;
        at::Tensor W1 = W.narrow(1, i1, count).clone();
        at::Tensor Q1 = at::zeros_like(W1), Err1 = at::zeros_like(W1);
        const at::Tensor Hinv1 = Hinv.narrow(0, i1, count).narrow(1, i1, count);
        const at::Tensor d1 = Hinv1.diagonal();
        at::Tensor mask1 = at::zeros({n, count}, at::kBool);
        if (!spec.pattern.structured()) {
            const int64_t q = total * i2 / k - total * i1 / k;
            if (q > 0) {
                const at::Tensor tmp = W1.pow(2) / d1.pow(2).unsqueeze(0);
                mask1.scatter_(1, std::get<1>(at::topk(tmp, q, 1, /*largest=*/false)), true);
            }
        }
        for (int64_t i = 0; i < count; ++i) {
            const at::Tensor w = W1.select(1, i);
            const double d = d1[i].item<double>();
            if (spec.pattern.structured() && i % m == 0) {
                const at::Tensor tmp = W1.narrow(1, i, m).pow(2) / d1.narrow(0, i, m).pow(2).unsqueeze(0);
                mask1.scatter_(1, std::get<1>(at::topk(tmp, drop, 1, /*largest=*/false)) + i, true);
            }
            const at::Tensor q = w.masked_fill(mask1.select(1, i), 0);
            Q1.select(1, i).copy_(q);
            const at::Tensor err = (w - q) / d;
            W1.narrow(1, i, count - i).sub_(err.unsqueeze(1).matmul(Hinv1.select(0, i).narrow(0, i, count - i).unsqueeze(0)));
            Err1.select(1, i).copy_(err);
        }
        W.narrow(1, i1, count).copy_(Q1);
        if (i2 < k)
            W.narrow(1, i2, k - i2).sub_(Err1.matmul(Hinv.narrow(0, i1, count).narrow(1, i2, k - i2)));
        mask.narrow(1, i1, count).copy_(mask1);
    }
    return {W, mask, now() - t0};
}

} // namespace

int main(int argc, char** argv)
{
    bool quick = false;
    double fraction = 1.0;
    int runs = 1;
    std::string pattern = "unstructured", only;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick")
            quick = true;
        else if (a == "--cols-fraction" && i + 1 < argc)
            fraction = std::atof(argv[++i]);
        else if (a == "--runs" && i + 1 < argc)
            runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--pattern" && i + 1 < argc)
            pattern = argv[++i];
        else if (a == "--only" && i + 1 < argc)
            only = argv[++i];
        else {
            std::fprintf(stderr, "usage: bench_sparsegpt [--quick] [--cols-fraction F] [--pattern unstructured|2:4] [--runs N] [--only gate/up|down]\n");
            return 2;
        }
    }
    initRuntime(false);
    at::NoGradGuard ng;
    PruneSpec spec;
    spec.pattern = parsePrunePattern(pattern, "--pattern");
    spec.sparsity = patternSparsity(spec.pattern, 0.5);
    const int64_t div = quick ? 8 : 1;
    struct Shape {
        const char* name;
        int64_t out, in;
    };
    const Shape shapes[] = {{"gate/up", 14336 / div, 4096 / div}, {"down", 4096 / div, 14336 / div}};
    std::printf("SparseGPT, %s, sparsity %.2f, threads %d%s\n", prunePatternName(spec.pattern).c_str(), spec.sparsity,
                at::get_num_threads(), fraction < 1 ? " (first columns only, see --cols-fraction)" : "");
    std::printf("%-8s %14s %10s %10s %8s %12s %12s\n", "linear", "W", "moewb s", "plain s", "ratio", "mask agree",
                "max |dW|");
    for (const Shape& sh : shapes) {
        if (!only.empty() && only != sh.name)
            continue;
        int64_t in = std::max<int64_t>(128, int64_t(double(sh.in) * fraction) / 128 * 128);
        in = std::min(in, sh.in);
        at::manual_seed(1);
        const at::Tensor w = at::randn({sh.out, in});
        const at::Tensor h = makeHessian(in, 2);
        SparseGptOptions o;
        o.spec = spec;
        double best = 1e30;
        SparseGptResult r;
        for (int i = 0; i < runs; ++i) {
            const double t0 = now();
            r = sparseGpt(w, h, o);
            best = std::min(best, now() - t0);
        }
        const Ref ref = reference(w, h, spec, 0.01, 128);
        const double agree = (r.mask == ref.mask).to(at::kDouble).mean().item<double>();
        const double diff = (r.weight - ref.w).abs().max().item<double>();
        std::printf("%-8s %6lldx%-7lld %10.2f %10.2f %7.2fx %11.5f%% %12.3g\n", sh.name, (long long)sh.out, (long long)in,
                    best, ref.seconds, ref.seconds / best, 100 * agree, diff);
        std::fflush(stdout);
    }
    return 0;
}
