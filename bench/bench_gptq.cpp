// SPDX-License-Identifier: MIT
// GPTQ time per linear at Mixtral-8x7B shapes (#8): the engine's gptqQuantize (one Cholesky of H,
// lazy-batch blocks, one GEMM per block) against a straightforward libtorch implementation of the
// reference algorithm written here (H⁻¹ by Cholesky, its upper Cholesky factor, then column by
// column: quantize, and a rank-1 update of every later column; no lazy batching), same inputs, same
// process. Prints both times, the ratio (goal ≥ 1.5x), how many codes agree, and the projected time
// for all Mixtral-8x7B linears (32 layers × (8 experts × 3 + q, k, v, o)).
//
//   bench_gptq [--quick] [--expert HIDDEN WIDTH] [--runs N] [--ref-runs N] [--ref-columns C] [--engine-only]
//              [--bits B] [--group G]
// Default shapes: gate/up W 14336×4096 with H 4096×4096, down W 4096×14336 with H 14336×14336.
// The reference's column loop costs ∝ out·(in − i) for column i (a rank-1 update of the remaining
// columns, memory-bound), hours at full size on 2 cores, so by default it runs its factorisation
// and the first C = 512 columns and extrapolates the loop by that exact work ratio (--ref-columns 0:
// run all; --quick always runs all and also prints the extrapolation from its first 1/8 of the
// columns, to show the model holds). --quick: Mixtral shapes / 8 (< 60 s). The machine may be
// shared: each engine time is the best of N runs (default 2, quick 3), the reference runs once.
// --expert HIDDEN WIDTH: one fine-grained expert instead (#28): gate/up W WIDTH×HIDDEN, down W
// HIDDEN×WIDTH (OLMoE 2048 1024, Qwen3-30B-A3B 2048 768), whole reference, no projection.
#include "moewb/model/runtime.h"
#include "quant/gptq.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace moewb;

namespace {

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// A Hessian that looks like one from LLM activations: per-channel scales spanning ~2 decades times
/// (0.1·I + a rank-256 correlation). Cheap to build at 14336² (no [tokens, 14336] GEMM).
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

struct RefTiming {
    double factor = 0;   ///< damping and the three factorisations
    double loop = 0;     ///< the columns run
    double total = 0;    ///< factor + loop, the loop extrapolated to all columns when cut short
    at::Tensor q;
};

/// The reference algorithm, straightforwardly in libtorch (float32, like the engine). The weight is
/// kept transposed so that each rank-1 update runs over contiguous memory. Runs the first `columns`
/// columns (all when <= 0).
RefTiming referenceGptq(at::Tensor w, at::Tensor h, int64_t bits, int64_t group, bool sym, double damp, int64_t columns)
{
    RefTiming t;
    const double t0 = now();
    const int64_t n = w.size(0), k = w.size(1);
    const int64_t g = (group <= 0 || group > k) ? k : group;
    const double maxq = double((int64_t(1) << bits) - 1);
    w = w.clone();
    h = h.clone();
    const at::Tensor dead = h.diagonal() == 0;
    h.diagonal().masked_fill_(dead, 1);
    w.masked_fill_(dead.unsqueeze(0), 0);
    h.diagonal().add_(damp * h.diagonal().mean().item<double>());
    const at::Tensor hinv = at::cholesky_inverse(at::linalg_cholesky(h));
    const at::Tensor u = at::linalg_cholesky(hinv, /*upper=*/true).contiguous();
    at::Tensor wt = w.t().contiguous(); // [in, out]
    at::Tensor qt = at::zeros({k, n}, at::kInt);
    at::Tensor scale, zero;
    const double t1 = now();
    const int64_t run = columns > 0 ? std::min(columns, k) : k;
    for (int64_t i = 0; i < run; ++i) {
        if (i % g == 0) {
            const at::Tensor seg = wt.narrow(0, i, std::min(g, k - i));
            at::Tensor xmin = at::clamp_max(std::get<0>(seg.min(0)), 0.0);
            at::Tensor xmax = at::clamp_min(std::get<0>(seg.max(0)), 0.0);
            if (sym) {
                xmax = at::maximum(xmin.abs(), xmax);
                xmin = at::where(xmin < 0, -xmax, xmin);
            }
            const at::Tensor both = (xmin == 0) & (xmax == 0);
            xmin.masked_fill_(both, -1.0);
            xmax.masked_fill_(both, 1.0);
            scale = (xmax - xmin) / maxq;
            zero = sym ? at::full_like(scale, double(int64_t(1) << (bits - 1))) : at::round(-xmin / scale);
        }
        const at::Tensor col = wt[i];
        const at::Tensor code = at::clamp(at::round(col / scale) + zero, 0.0, maxq);
        const at::Tensor err = (col - scale * (code - zero)) / u[i][i];
        qt[i].copy_(code);
        wt.narrow(0, i, k - i).addr_(u[i].narrow(0, i, k - i), err, 1.0, -1.0);
    }
    const double t2 = now();
    t.factor = t1 - t0;
    t.loop = t2 - t1;
    // Column i updates out·(k − i) values: extrapolate by Σ_{i<k}(k − i) / Σ_{i<run}(k − i).
    const double all = 0.5 * double(k) * double(k + 1), done = all - 0.5 * double(k - run) * double(k - run + 1);
    t.total = t.factor + t.loop * all / done;
    t.q = qt.t().contiguous();
    return t;
}

struct Shape {
    const char* name;
    int64_t out, in;
};

double best(int runs, const std::function<void()>& f)
{
    double t = 1e300;
    for (int r = 0; r < runs; ++r) {
        const double t0 = now();
        f();
        t = std::min(t, now() - t0);
    }
    return t;
}

} // namespace

int main(int argc, char** argv)
{
    bool quick = false, engineOnly = false;
    int64_t expertHidden = 0, expertWidth = 0;
    int runs = 0, refRuns = 0, refColumns = -1;
    int64_t bits = 4, group = 128;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--quick")
            quick = true;
        else if (a == "--runs")
            runs = next();
        else if (a == "--ref-runs")
            refRuns = next();
        else if (a == "--ref-columns")
            refColumns = next();
        else if (a == "--expert") {
            expertHidden = next();
            expertWidth = next();
        } else if (a == "--engine-only")
            engineOnly = true;
        else if (a == "--bits")
            bits = next();
        else if (a == "--group")
            group = next();
        else {
            std::fprintf(stderr, "usage: bench_gptq [--quick] [--expert HIDDEN WIDTH] [--runs N] [--ref-runs N] "
                                 "[--ref-columns C] [--engine-only] [--bits B] [--group G]\n");
            return 2;
        }
    }
    initRuntime(false); // intra-op threads = cores, as the CLI does
    if (runs <= 0)
        runs = quick ? 3 : 2;
    if (refRuns <= 0)
        refRuns = 1;
    const bool expert = expertHidden > 0 && expertWidth > 0;
    if (refColumns < 0)
        refColumns = quick || expert ? 0 : 512;
    const int64_t div = quick ? 8 : 1;
    const int64_t hidden = expert ? expertHidden : 4096 / div, ffn = expert ? expertWidth : 14336 / div;
    std::printf("GPTQ %lld-bit, group %lld, sym, damp 0.01, block 128; %d threads; best of %d (engine) / %d "
                "(reference) runs%s\n",
                (long long)bits, (long long)group, at::get_num_threads(), runs, refRuns,
                expert ? "; one fine-grained expert" : quick ? "; --quick: Mixtral shapes / 8" : "");

    GptqOptions opt;
    opt.bits = bits;
    opt.groupSize = group;
    const Shape compared[] = {{"gate/up", ffn, hidden}, {"down", hidden, ffn}};
    double tEngine[2] = {0, 0};
    std::printf("%-8s %-12s %9s %10s %12s %10s %8s %9s\n", "linear", "W", "engine s", "(factor s)", "reference s",
                "(factor s)", "ratio", "codes eq");
    for (int s = 0; s < 2; ++s) {
        const Shape& sh = compared[s];
        const at::Tensor h = makeHessian(sh.in, 7 + uint64_t(s));
        at::manual_seed(11 + uint64_t(s));
        const at::Tensor w = at::randn({sh.out, sh.in}) * 0.02;
        GptqResult r;
        double factor = 1e300;
        const double te = best(runs, [&]() {
            r = gptqQuantize(w, h, opt);
            factor = std::min(factor, r.secondsFactor);
        });
        tEngine[s] = te;
        if (engineOnly) {
            std::printf("%-8s %5lldx%-6lld %9.2f %10.2f\n", sh.name, (long long)sh.out, (long long)sh.in, te, factor);
            continue;
        }
        RefTiming ref;
        ref.total = 1e300;
        for (int i = 0; i < refRuns; ++i) {
            RefTiming t = referenceGptq(w, h, bits, group, true, opt.dampPercent, refColumns);
            if (t.total < ref.total)
                ref = t;
        }
        const int64_t cols = refColumns > 0 ? std::min<int64_t>(refColumns, sh.in) : sh.in;
        const double eq = (ref.q.narrow(1, 0, cols) == r.q.narrow(1, 0, cols)).to(at::kDouble).mean().item<double>();
        std::printf("%-8s %5lldx%-6lld %9.2f %10.2f %12.2f %10.2f %7.2fx %8.4f%%%s\n", sh.name, (long long)sh.out,
                    (long long)sh.in, te, factor, ref.total, ref.factor, ref.total / te, 100 * eq,
                    cols < sh.in ? "  (reference loop extrapolated from its first columns)" : "");
        if (quick) {
            const RefTiming part = referenceGptq(w, h, bits, group, true, opt.dampPercent, sh.in / 8);
            std::printf("         check of the extrapolation: from the first %lld columns the reference projects "
                        "%.2f s (measured %.2f s)\n",
                        (long long)(sh.in / 8), part.total, ref.total);
        }
        std::fflush(stdout);
    }
    if (quick || expert) {
        std::printf("(projection for Mixtral-8x7B: run without --quick / --expert)\n");
        return 0;
    }

    // Attention and shared-input variants: engine only.
    auto engineTime = [&](int64_t out, int64_t in, uint64_t seed) {
        const at::Tensor h = makeHessian(in, seed);
        at::manual_seed(seed + 100);
        const at::Tensor w = at::randn({out, in}) * 0.02;
        return best(runs, [&]() { gptqQuantize(w, h, opt); });
    };
    const double tQ = engineTime(4096, 4096, 21), tK = engineTime(1024, 4096, 22);
    const double tGateUp = engineTime(2 * 14336, 4096, 23), tQkv = engineTime(6144, 4096, 24);
    std::printf("engine: q/o 4096x4096 %.2f s, k/v 1024x4096 %.2f s, gate+up in one call 28672x4096 %.2f s, "
                "q+k+v in one call 6144x4096 %.2f s\n",
                tQ, tK, tGateUp, tQkv);
    const double perLayer = 8 * (2 * tEngine[0] + tEngine[1]) + 2 * tQ + 2 * tK;
    const double perLayerShared = 8 * (tGateUp + tEngine[1]) + tQkv + tQ;
    std::printf("projected Mixtral-8x7B (32 layers x (8 experts x 3 + 4 attention) = 896 linears): %.0f s = %.1f h "
                "one call per linear; %.0f s = %.1f h with gate+up and q+k+v sharing one call\n",
                32 * perLayer, 32 * perLayer / 3600, 32 * perLayerShared, 32 * perLayerShared / 3600);
    return 0;
}
