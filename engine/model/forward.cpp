// SPDX-License-Identifier: MIT
#include "model/forward.h"

#include "moewb/core/error.h"
#include "model/actquant.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace moewb {

at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps)
{
    const at::Tensor xf = x.to(at::kFloat);
    const at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (xf * at::rsqrt(var + eps)).to(x.scalar_type());
}

RopeTables ropeTables(const ModelConfig& cfg, int64_t seqLen, at::ScalarType dtype, at::Device device)
{
    const int64_t d = cfg.headDim;
    // inv_freq[k] = theta^(-2k/d); computed in double, rounded once to fp32 like the reference.
    at::Tensor invFreq = at::empty({d / 2}, at::kDouble);
    auto* f = invFreq.data_ptr<double>();
    for (int64_t k = 0; k < d / 2; ++k)
        f[k] = std::pow(cfg.ropeTheta, -2.0 * double(k) / double(d));
    invFreq = invFreq.to(at::kFloat);
    const at::Tensor pos = at::arange(seqLen, at::TensorOptions().dtype(at::kFloat));
    const at::Tensor freqs = at::outer(pos, invFreq);
    const at::Tensor emb = at::cat({freqs, freqs}, -1);
    return RopeTables{emb.cos().to(dtype).to(device), emb.sin().to(dtype).to(device)};
}

at::Tensor applyRope(const at::Tensor& x, const RopeTables& rope)
{
    const int64_t t = x.size(-2), half = x.size(-1) / 2;
    const at::Tensor cos = rope.cos.narrow(0, 0, t);
    const at::Tensor sin = rope.sin.narrow(0, 0, t);
    const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
    return x * cos + rotated * sin;
}

at::Tensor swiglu(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& up, const at::Tensor& down)
{
    return at::linear(at::silu(at::linear(x, gate)) * at::linear(x, up), down);
}

namespace {

const at::Tensor& weightOf(const LayerWeights& w, const std::string& base)
{
    return w.get(base + ".weight");
}

at::Tensor biasOf(const LayerWeights& w, const std::string& base)
{
    return w.opt(base + ".bias");
}

/// Input of a quantizable linear as the linear sees it: fake-quantized per token when the layer
/// runs with activationBits < 16 (routers, shared_expert_gate and lm_head never are).
at::Tensor linearInput(const LayerWeights& w, const at::Tensor& x)
{
    return w.activationBits < 16 ? fakeQuantActivations(x, w.activationBits) : x;
}

/// The linear's output, shown to the observer when it asks for outputs.
at::Tensor outputSeen(const LayerWeights& w, const std::string& base, const at::Tensor& y, int64_t expert,
                      ForwardObserver* obs)
{
    if (obs && obs->wantsLinearOutputs())
        obs->linearOutput(w.layer, expert, base, y);
    return y;
}

/// x is used as given: callers pass linearInput(w, x) for quantizable linears. observeInput false:
/// the caller already reported the input (q, k and v share one).
at::Tensor observedLinear(const LayerWeights& w, const std::string& base, const at::Tensor& x, int64_t expert,
                          ForwardObserver* obs, bool observeInput = true)
{
    if (observeInput && obs && obs->wantsLinearInputs())
        obs->linearInput(w.layer, expert, base, x.reshape({-1, x.size(-1)}));
    const at::Tensor b = biasOf(w, base);
    return outputSeen(w, base, b.defined() ? at::linear(x, weightOf(w, base), b) : at::linear(x, weightOf(w, base)),
                      expert, obs);
}

/// SwiGLU with observer calls on each of its three linears (and activation fake-quantization).
at::Tensor observedMlp(const LayerWeights& w, const std::string& gate, const std::string& up, const std::string& down,
                       const at::Tensor& x, int64_t expert, ForwardObserver* obs)
{
    const bool observe = obs && obs->wantsLinearInputs();
    const bool outputs = obs && obs->wantsLinearOutputs();
    if (!observe && !outputs && w.activationBits >= 16)
        return swiglu(x, weightOf(w, gate), weightOf(w, up), weightOf(w, down));
    const at::Tensor xq = linearInput(w, x);
    const at::Tensor act = at::silu(outputSeen(w, gate, at::linear(xq, weightOf(w, gate)), expert, obs))
        * outputSeen(w, up, at::linear(xq, weightOf(w, up)), expert, obs);
    if (observe) {
        obs->linearInput(w.layer, expert, gate, xq);
        obs->linearInput(w.layer, expert, up, xq);
    }
    return observedLinear(w, down, linearInput(w, act), expert, obs);
}

/// The routed experts' outputs, each weighted by its mixing weight and summed per token: h [N, H],
/// topI / mix [N, K] → [N, H]. The (token, slot) pairs are grouped by expert with a stable sort, so
/// each expert sees its tokens in ascending order and every token's terms are added in expert
/// order: the result does not depend on how tokens were batched.
at::Tensor routedExperts(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h, const at::Tensor& topI,
                         const at::Tensor& mix, ForwardObserver* obs)
{
    const int64_t layer = w.layer, E = cfg.numExperts, K = cfg.topK;
    const at::Tensor flat = topI.reshape({-1});
    const at::Tensor order = std::get<1>(at::sort(flat, /*stable=*/true, 0, /*descending=*/false));
    const at::Tensor counts = at::bincount(flat, {}, E).to(at::kLong);
    const std::vector<int64_t> cnt(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + E);
    const at::Tensor mixFlat = mix.reshape({-1});
    const auto expertMlp = [&](int64_t e, const at::Tensor& xe) {
        return observedMlp(w, cfg.expertLinear(layer, e, "gate"), cfg.expertLinear(layer, e, "up"),
                           cfg.expertLinear(layer, e, "down"), xe, e, obs);
    };
    at::Tensor out = at::zeros_like(h);
    if (!(at::GradMode::is_enabled() && h.requires_grad())) {
        // Inference: one expert's rows at a time (the gathered rows of all experts would be K× the batch).
        int64_t start = 0;
        for (int64_t e = 0; e < E; ++e) {
            if (cnt[size_t(e)] == 0)
                continue;
            const at::Tensor pairs = order.narrow(0, start, cnt[size_t(e)]);
            start += cnt[size_t(e)];
            const at::Tensor tokens = at::div(pairs, K, "floor");
            out.index_add_(0, tokens, expertMlp(e, h.index_select(0, tokens)) * mixFlat.index_select(0, pairs).unsqueeze(1));
        }
        return out;
    }
    // Under autograd (the Fisher pass, engine/calib/fisher.h): one gather, split into the experts'
    // rows, and one scatter-add of all experts' outputs, so the backward forms one [N, H] gradient
    // instead of one per expert. The same additions in the same order: equal to the loop above.
    const at::Tensor tokens = at::div(order, K, "floor");
    const std::vector<at::Tensor> rows = h.index_select(0, tokens).split_with_sizes(cnt, 0);
    std::vector<at::Tensor> outputs;
    for (int64_t e = 0; e < E; ++e)
        if (cnt[size_t(e)] > 0)
            outputs.push_back(expertMlp(e, rows[size_t(e)]));
    if (outputs.empty())
        return out;
    return out.index_add(0, tokens, at::cat(outputs, 0) * mixFlat.index_select(0, order).unsqueeze(1));
}

/// Causal attention of q, k, v [B, heads, T, hd] (k and v already repeated to all heads): the
/// context [B, heads, T, hd] in `dtype`. Queries go by blocks: a block of queries [i0, i1) sees only
/// the keys [k0, i1) (k0 > 0 with a sliding window), so the masked upper triangle is neither
/// multiplied nor soft-maxed (about half the work at long contexts). Scores are scaled and masked
/// in one pass into fp32 and soft-maxed in fp32 (HF scales in the model dtype, then soft-maxes in
/// fp32; skipping that one bf16 rounding is slightly more accurate and much faster on the CPU). A
/// block's [heads, rows, keys] scores stay within ~64 MB; the blocks are joined by one cat, not
/// copied into a preallocated tensor (under autograd each slice copy would clone the whole
/// gradient in the backward).
at::Tensor causalContext(const ModelConfig& cfg, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         at::ScalarType dtype)
{
    const int64_t B = q.size(0), nh = q.size(1), T = q.size(2), hd = q.size(3);
    const double scale = 1.0 / std::sqrt(double(hd));
    at::Tensor mask = at::full({T, T}, -std::numeric_limits<float>::infinity(), at::kFloat).triu(1);
    if (cfg.slidingWindow && *cfg.slidingWindow < T) // Mistral-style: keys with i - j >= window are masked
        mask = mask + at::full({T, T}, -std::numeric_limits<float>::infinity(), at::kFloat).tril(-*cfg.slidingWindow);
    const int64_t rowsPerBlock = std::clamp<int64_t>((int64_t(16) << 20) / std::max<int64_t>(1, nh * T), 1, 512);
    std::vector<at::Tensor> perSequence;
    for (int64_t b = 0; b < B; ++b) {
        std::vector<at::Tensor> blocks;
        for (int64_t i0 = 0; i0 < T; i0 += rowsPerBlock) {
            const int64_t i1 = std::min(T, i0 + rowsPerBlock);
            const int64_t k0 = cfg.slidingWindow ? std::max<int64_t>(0, i0 - *cfg.slidingWindow + 1) : 0;
            const at::Tensor keys = k[b].narrow(1, k0, i1 - k0), values = v[b].narrow(1, k0, i1 - k0);
            const at::Tensor scores = at::matmul(q[b].narrow(1, i0, i1 - i0), keys.transpose(-1, -2));
            const at::Tensor blockMask = mask.narrow(0, i0, i1 - i0).narrow(1, k0, i1 - k0);
            const at::Tensor probs = at::softmax(at::add(blockMask, scores, scale), -1);
            blocks.push_back(at::matmul(probs.to(dtype), values));
        }
        perSequence.push_back(blocks.size() == 1 ? blocks[0] : at::cat(blocks, 1));
    }
    return at::stack(perSequence, 0);
}

} // namespace

at::Tensor observeAttentionInput(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h,
                                 ForwardObserver* obs)
{
    const at::Tensor hq = linearInput(w, h); // q, k and v share one (per-token) quantized input
    if (obs && obs->wantsLinearInputs()) {
        const at::Tensor flat = hq.reshape({-1, hq.size(-1)});
        for (const char* proj : {"q_proj", "k_proj", "v_proj"})
            obs->linearInput(w.layer, -1, cfg.attnLinear(w.layer, proj), flat);
    }
    return hq;
}

at::Tensor attention(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h, const RopeTables& rope,
                     ForwardObserver* obs)
{
    const int64_t layer = w.layer;
    const int64_t B = h.size(0), T = h.size(1), nh = cfg.numHeads, nkv = cfg.numKvHeads, hd = cfg.headDim;
    const std::string p = cfg.layerPrefix(layer);

    const at::Tensor hq = observeAttentionInput(cfg, w, h, obs);
    at::Tensor q = observedLinear(w, cfg.attnLinear(layer, "q_proj"), hq, -1, obs, false);
    at::Tensor k = observedLinear(w, cfg.attnLinear(layer, "k_proj"), hq, -1, obs, false);
    at::Tensor v = observedLinear(w, cfg.attnLinear(layer, "v_proj"), hq, -1, obs, false);
    if (cfg.qkNorm == QkNorm::Whole) {
        q = rmsNorm(q, w.get(p + ".self_attn.q_norm.weight"), cfg.rmsNormEps);
        k = rmsNorm(k, w.get(p + ".self_attn.k_norm.weight"), cfg.rmsNormEps);
    }
    if (cfg.clipQkv) {
        const double c = *cfg.clipQkv;
        q = q.clamp(-c, c);
        k = k.clamp(-c, c);
        v = v.clamp(-c, c);
    }
    q = q.view({B, T, nh, hd});
    k = k.view({B, T, nkv, hd});
    v = v.view({B, T, nkv, hd});
    if (cfg.qkNorm == QkNorm::PerHead) {
        q = rmsNorm(q, w.get(p + ".self_attn.q_norm.weight"), cfg.rmsNormEps);
        k = rmsNorm(k, w.get(p + ".self_attn.k_norm.weight"), cfg.rmsNormEps);
    }
    // Contiguous [B, heads, T, hd]: libtorch's batched bf16 matmul is only fast on contiguous input.
    q = applyRope(q.transpose(1, 2).contiguous(), rope);
    k = applyRope(k.transpose(1, 2).contiguous(), rope);
    v = v.transpose(1, 2).contiguous();
    if (nkv != nh) {
        k = k.repeat_interleave(nh / nkv, 1);
        v = v.repeat_interleave(nh / nkv, 1);
    }
    const at::Tensor ctxHeads = causalContext(cfg, q, k, v, h.scalar_type()); // [B, nh, T, hd]
    const at::Tensor ctx = ctxHeads.transpose(1, 2).reshape({B, T, nh * hd});
    return observedLinear(w, cfg.attnLinear(layer, "o_proj"), linearInput(w, ctx), -1, obs);
}

at::Tensor mlpBlock(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& h, ForwardObserver* obs)
{
    const int64_t layer = w.layer;
    if (!cfg.isMoeLayer(layer))
        return observedMlp(w, cfg.denseLinear(layer, "gate"), cfg.denseLinear(layer, "up"),
                           cfg.denseLinear(layer, "down"), h, -1, obs);

    const int64_t K = cfg.topK;
    if (obs)
        obs->moeInput(w, h);
    const at::Tensor logits = observedLinear(w, cfg.routerName(layer), h, -1, obs); // [N, E] model dtype
    const at::Tensor probs = at::softmax(logits.to(at::kFloat), -1);
    auto [topW, topI] = at::topk(probs, K, -1, /*largest=*/true, /*sorted=*/true);
    if (cfg.normTopkProb)
        topW = topW / (topW.sum(-1, /*keepdim=*/true) + cfg.topkNormEps);
    if (obs)
        obs->routing(layer, logits, topI, topW);
    const at::Tensor mix = topW.to(h.scalar_type());

    at::Tensor out = obs && !obs->needsRoutedExperts() ? at::zeros_like(h) : routedExperts(cfg, w, h, topI, mix, obs);
    if (cfg.hasSharedExpert()) {
        at::Tensor shared = observedMlp(w, cfg.sharedLinear(layer, "gate"), cfg.sharedLinear(layer, "up"),
                                        cfg.sharedLinear(layer, "down"), h, -1, obs);
        if (cfg.sharedExpertGate)
            shared = at::sigmoid(observedLinear(w, cfg.sharedGateName(layer), h, -1, obs)) * shared;
        out = out + shared;
    }
    return out;
}

namespace {
/// Activations must stay finite: a NaN or Inf (an overflow in the compute dtype with finite weights,
/// or a degenerate norm) would otherwise flow silently into routing statistics, Hessians and
/// perplexities. NonFiniteActivation naming the module whose output went non-finite.
void requireFinite(const at::Tensor& t, const std::string& module)
{
    if (at::isfinite(t).all().item<bool>())
        return;
    const int64_t nan = at::isnan(t).sum().item<int64_t>();
    const int64_t inf = at::isinf(t).sum().item<int64_t>();
    throw NonFiniteActivation(module, "output has " + std::to_string(nan) + " NaN and " + std::to_string(inf)
                                   + " Inf values out of " + std::to_string(t.numel()) + " (computed in "
                                   + std::string(c10::toString(t.scalar_type()))
                                   + "; the weights are finite, so the activations overflowed)");
}
} // namespace

at::Tensor decoderLayer(const ModelConfig& cfg, const LayerWeights& w, const at::Tensor& x, const RopeTables& rope,
                        ForwardObserver* obs)
{
    const std::string p = cfg.layerPrefix(w.layer);
    const int64_t H = x.size(-1);
    const at::Tensor h1 = rmsNorm(x, w.get(p + ".input_layernorm.weight"), cfg.rmsNormEps);
    const at::Tensor x1 = x + attention(cfg, w, h1, rope, obs);
    requireFinite(x1, p + ".self_attn");
    // Layer Drop (moewb trim): the MoE sub-layer's down_proj weights are zero, so it adds exactly 0;
    // skipped unless an observer wants to see it (calibration then records it like any layer).
    if (!obs && cfg.isMoeDropped(w.layer))
        return x1;
    const at::Tensor h2 = rmsNorm(x1, w.get(p + ".post_attention_layernorm.weight"), cfg.rmsNormEps);
    const at::Tensor x2 = x1 + mlpBlock(cfg, w, h2.reshape({-1, H}), obs).view(x.sizes());
    requireFinite(x2, p + (cfg.arch == Arch::Mixtral ? ".block_sparse_moe" : ".mlp"));
    if (obs) {
        const at::Tensor f0 = x.reshape({-1, H}), f1 = x1.reshape({-1, H}), f2 = x2.reshape({-1, H});
        obs->block(w.layer, BlockPart::Attention, f0, f1);
        obs->block(w.layer, BlockPart::Mlp, f1, f2);
        obs->block(w.layer, BlockPart::Whole, f0, f2);
    }
    return x2;
}

at::Tensor finalLogits(const ModelConfig& cfg, const HeadWeights& o, const at::Tensor& hidden)
{
    return at::linear(rmsNorm(hidden, o.norm, cfg.rmsNormEps), o.lmHead).to(at::kFloat);
}

} // namespace moewb
