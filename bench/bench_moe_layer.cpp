// SPDX-License-Identifier: MIT
// Forward throughput of one full-width Mixtral-8x7B-shaped decoder layer (hidden 4096, expert
// FFN 14336, 8 experts top-2, 32 heads / 8 kv heads) in bf16, reported in tokens/s and as a
// fraction of the bf16 GEMM throughput measured in the same run.
//
//   bench_moe_layer [TOKENS=2048] [REPS=2]
#include "model/forward.h"
#include "moewb/model/runtime.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace moewb;

namespace {
double seconds(const std::function<void()>& fn, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

ModelConfig mixtralLayerConfig()
{
    ModelConfig c;
    c.arch = Arch::Mixtral;
    c.hiddenSize = 4096;
    c.intermediateSize = c.moeIntermediateSize = 14336;
    c.numLayers = 1;
    c.numHeads = 32;
    c.numKvHeads = 8;
    c.headDim = 128;
    c.vocabSize = 32000;
    c.numExperts = 8;
    c.topK = 2;
    c.normTopkProb = true;
    c.rmsNormEps = 1e-5;
    c.ropeTheta = 1e6;
    return c;
}
} // namespace

int main(int argc, char** argv)
{
    const int64_t T = argc > 1 ? std::atoll(argv[1]) : 2048;
    const int reps = argc > 2 ? std::atoi(argv[2]) : 2;
    const RuntimeInfo rt = initRuntime(true);
    std::printf("threads %d, fp32 512^3 GEMM %.1f GFLOP/s, BLAS %s\n", rt.threads, rt.gemmGflops,
                rt.blasLibrary.c_str());
    at::NoGradGuard noGrad;
    const ModelConfig cfg = mixtralLayerConfig();
    const int64_t H = cfg.hiddenSize, I = cfg.moeIntermediateSize, E = cfg.numExperts, kv = cfg.numKvHeads * cfg.headDim;
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16);

    // GEMM peak for the dtype used: the expert up-projection shape, [T/4, H] x [H, I]
    // (each expert sees about T*k/E = T/4 tokens).
    {
        const at::Tensor a = at::randn({T / 4, H}, bf16), w = at::randn({I, H}, bf16) * 0.02;
        at::linear(a, w);
        const double s = seconds([&] { at::linear(a, w); }, 3);
        const double peak = 2.0 * double(T / 4) * H * I / s / 1e9;
        std::printf("bf16 GEMM [%lld x %lld] x [%lld x %lld]^T: %.1f GFLOP/s (the peak below refers to this)\n",
                    (long long)(T / 4), (long long)H, (long long)I, (long long)H, peak);

        LayerWeights w8;
        w8.layer = 0;
        auto add = [&](const std::string& n, std::vector<int64_t> shape, double scale) {
            w8.tensors[n] = (at::randn(shape, at::TensorOptions().dtype(at::kFloat)) * scale).to(at::kBFloat16);
        };
        const std::string p = cfg.layerPrefix(0);
        add(p + ".input_layernorm.weight", {H}, 0.0);
        w8.tensors[p + ".input_layernorm.weight"].fill_(1.0);
        add(p + ".post_attention_layernorm.weight", {H}, 0.0);
        w8.tensors[p + ".post_attention_layernorm.weight"].fill_(1.0);
        add(cfg.attnLinear(0, "q_proj") + ".weight", {H, H}, 0.02);
        add(cfg.attnLinear(0, "k_proj") + ".weight", {kv, H}, 0.02);
        add(cfg.attnLinear(0, "v_proj") + ".weight", {kv, H}, 0.02);
        add(cfg.attnLinear(0, "o_proj") + ".weight", {H, H}, 0.02);
        add(cfg.routerName(0) + ".weight", {E, H}, 0.02);
        for (int64_t e = 0; e < E; ++e) {
            add(cfg.expertLinear(0, e, "gate") + ".weight", {I, H}, 0.02);
            add(cfg.expertLinear(0, e, "up") + ".weight", {I, H}, 0.02);
            add(cfg.expertLinear(0, e, "down") + ".weight", {H, I}, 0.02);
        }
        const RopeTables rope = ropeTables(cfg, T, at::kBFloat16);
        const at::Tensor x = at::randn({1, T, H}, bf16);
        decoderLayer(cfg, w8, x, rope, nullptr); // warm-up
        const double layerS = seconds([&] { decoderLayer(cfg, w8, x, rope, nullptr); }, reps);
        const at::Tensor h = x.view({T, H});
        const double moeS = seconds([&] { mlpBlock(cfg, w8, h, nullptr); }, reps);
        const double attnS = seconds([&] { attention(cfg, w8, x, rope, nullptr); }, reps);

        const double attnFlops = 2.0 * T * H * (2.0 * H + 2.0 * kv) + 2.0 * 2.0 * cfg.numHeads * double(T) * T * cfg.headDim;
        const double moeFlops = 2.0 * T * cfg.topK * 3.0 * H * I + 2.0 * T * H * E;
        const double layerGf = (attnFlops + moeFlops) / layerS / 1e9, moeGf = moeFlops / moeS / 1e9;
        std::printf("decoder layer, %lld tokens: %.2f s, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of GEMM peak\n",
                    (long long)T, layerS, T / layerS, layerGf, 100.0 * layerGf / peak);
        std::printf("MoE sub-block alone:        %.2f s, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of GEMM peak\n", moeS,
                    T / moeS, moeGf, 100.0 * moeGf / peak);
        const double attnGf = attnFlops / attnS / 1e9;
        std::printf("attention sub-block alone:  %.2f s, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of GEMM peak\n", attnS,
                    T / attnS, attnGf, 100.0 * attnGf / peak);
    }
    return 0;
}
