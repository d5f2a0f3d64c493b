// SPDX-License-Identifier: MIT
// Forward throughput of one full-width Mixtral-8x7B-shaped decoder layer (hidden 4096, expert
// FFN 14336, 8 experts top-2, 32 heads / 8 kv heads) in bf16, reported in tokens/s and as a
// fraction of the bf16 GEMM throughput measured in the same run; the attention sub-block also against
// the dense (whole T×T) attention the engine used before, timed in the same run.
//
//   bench_moe_layer [TOKENS=2048] [REPS=2] [mixtral|olmoe]   (olmoe: OLMoE-1B-7B's layer shape)
#include "model/forward.h"
#include "moewb/model/runtime.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>

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

/// The attention sub-block as the engine computed it before causal blocking (dense [heads, T, T]
/// scores per sequence, scaled and masked in fp32), the baseline the engine's attention is timed
/// against in the same run. No bias or sliding window (neither shape has them).
at::Tensor denseAttention(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h, const RopeTables& rope)
{
    const int64_t B = h.size(0), T = h.size(1), nh = cfg.numHeads, nkv = cfg.numKvHeads, hd = cfg.headDim;
    const auto proj = [&](const char* name) { return at::linear(h, w.get(cfg.attnLinear(0, name) + ".weight")); };
    at::Tensor qp = proj("q_proj"), kp = proj("k_proj");
    if (cfg.qkNorm == QkNorm::Whole) {
        qp = rmsNorm(qp, w.get(cfg.layerPrefix(0) + ".self_attn.q_norm.weight"), cfg.rmsNormEps);
        kp = rmsNorm(kp, w.get(cfg.layerPrefix(0) + ".self_attn.k_norm.weight"), cfg.rmsNormEps);
    }
    at::Tensor q = applyRope(qp.view({B, T, nh, hd}).transpose(1, 2).contiguous(), rope);
    at::Tensor k = applyRope(kp.view({B, T, nkv, hd}).transpose(1, 2).contiguous(), rope);
    at::Tensor v = proj("v_proj").view({B, T, nkv, hd}).transpose(1, 2).contiguous();
    if (nkv != nh) {
        k = k.repeat_interleave(nh / nkv, 1);
        v = v.repeat_interleave(nh / nkv, 1);
    }
    const at::Tensor mask = at::full({T, T}, -std::numeric_limits<float>::infinity(), at::kFloat).triu(1);
    const int64_t headsPerChunk = std::max<int64_t>(1, (int64_t(16) << 20) / (T * T));
    at::Tensor ctx = at::empty({B, nh, T, hd}, h.options());
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h0 = 0; h0 < nh; h0 += headsPerChunk) {
            const int64_t n = std::min(headsPerChunk, nh - h0);
            at::Tensor scores = at::matmul(q[b].narrow(0, h0, n), k[b].narrow(0, h0, n).transpose(-1, -2));
            scores = scores.to(at::kFloat).mul_(1.0 / std::sqrt(double(hd))).add_(mask);
            ctx[b].narrow(0, h0, n).copy_(at::matmul(at::softmax(scores, -1).to(h.scalar_type()), v[b].narrow(0, h0, n)));
        }
    return at::linear(ctx.transpose(1, 2).reshape({B, T, nh * hd}), w.get(cfg.attnLinear(0, "o_proj") + ".weight"));
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
/// OLMoE-1B-7B's layer: hidden 2048, 64 experts of width 1024, top-8, 16 heads without GQA, q/k norm.
ModelConfig olmoeLayerConfig()
{
    ModelConfig c;
    c.arch = Arch::Olmoe;
    c.hiddenSize = 2048;
    c.intermediateSize = c.moeIntermediateSize = 1024;
    c.numLayers = 1;
    c.numHeads = 16;
    c.numKvHeads = 16;
    c.headDim = 128;
    c.vocabSize = 50304;
    c.numExperts = 64;
    c.topK = 8;
    c.normTopkProb = false;
    c.qkNorm = QkNorm::Whole;
    c.rmsNormEps = 1e-5;
    c.ropeTheta = 1e4;
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
    const bool olmoe = argc > 3 && std::string(argv[3]) == "olmoe";
    const ModelConfig cfg = olmoe ? olmoeLayerConfig() : mixtralLayerConfig();
    std::printf("%s-shaped layer\n", olmoe ? "OLMoE-1B-7B" : "Mixtral-8x7B");
    const int64_t H = cfg.hiddenSize, I = cfg.moeIntermediateSize, E = cfg.numExperts, kv = cfg.numKvHeads * cfg.headDim;
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16);

    // GEMM peak for the dtype used: the Mixtral expert up-projection shape, [T/4, H] x [H, I] (each
    // expert sees about T*k/E = T/4 tokens); for the OLMoE shape, whose experts are narrow, a
    // [T/4, H] x [H, 4H] product (the widest GEMM of that hidden size, so the peak is not understated).
    {
        const int64_t N = olmoe ? 4 * H : I;
        const at::Tensor a = at::randn({T / 4, H}, bf16), w = at::randn({N, H}, bf16) * 0.02;
        at::linear(a, w);
        const double s = seconds([&] { at::linear(a, w); }, 3);
        const double peak = 2.0 * double(T / 4) * H * N / s / 1e9;
        std::printf("bf16 GEMM [%lld x %lld] x [%lld x %lld]^T: %.1f GFLOP/s (the peak below refers to this)\n",
                    (long long)(T / 4), (long long)H, (long long)N, (long long)H, peak);

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
        if (cfg.qkNorm == QkNorm::Whole) {
            add(p + ".self_attn.q_norm.weight", {H}, 0.0);
            w8.tensors[p + ".self_attn.q_norm.weight"].fill_(1.0);
            add(p + ".self_attn.k_norm.weight", {kv}, 0.0);
            w8.tensors[p + ".self_attn.k_norm.weight"].fill_(1.0);
        }
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
        const double denseS = seconds([&] { denseAttention(cfg, w8, x, rope); }, reps);
        const double attnErr = (attention(cfg, w8, x, rope, nullptr).to(at::kFloat)
                                - denseAttention(cfg, w8, x, rope).to(at::kFloat)).abs().max().item<double>();

        // Attention FLOPs count what causal attention needs: query i attends to i + 1 keys, so the
        // score and context products take T(T + 1)/2 rows × keys per head, not T² (the engine's
        // blocks skip most of the masked half; the dense baseline computes all of it).
        const double projFlops = 2.0 * T * H * (2.0 * H + 2.0 * kv);
        const double attnFlops = projFlops + 2.0 * 2.0 * cfg.numHeads * (double(T) * (T + 1) / 2) * cfg.headDim;
        const double moeFlops = 2.0 * T * cfg.topK * 3.0 * H * I + 2.0 * T * H * E;
        const double layerGf = (attnFlops + moeFlops) / layerS / 1e9, moeGf = moeFlops / moeS / 1e9;
        std::printf("decoder layer, %lld tokens: %.2f s, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of GEMM peak\n",
                    (long long)T, layerS, T / layerS, layerGf, 100.0 * layerGf / peak);
        std::printf("MoE sub-block alone:        %.2f s, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of GEMM peak\n", moeS,
                    T / moeS, moeGf, 100.0 * moeGf / peak);
        const double attnGf = attnFlops / attnS / 1e9, denseGf = attnFlops / denseS / 1e9;
        std::printf("attention sub-block alone:  %.2f s, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of GEMM peak\n", attnS,
                    T / attnS, attnGf, 100.0 * attnGf / peak);
        std::printf("  dense baseline (before causal blocks): %.2f s, %.1f GFLOP/s = %.0f%% of GEMM peak; engine %.2fx "
                    "faster, max |difference| %.3g\n",
                    denseS, denseGf, 100.0 * denseGf / peak, denseS / attnS, attnErr);
    }
    return 0;
}
