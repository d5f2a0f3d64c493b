// SPDX-License-Identifier: MIT
// The layer-streamed Fisher backward (engine/calib/fisher.h, docs/allocation.md).
#include "calib/fisher.h"

#include "model/forward.h"
#include "model/weights.h"
#include "moewb/core/error.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>

#include <unistd.h>

namespace moewb {

LayerInputRecorder::LayerInputRecorder(const ModelConfig& cfg, bool keepGraph)
    : m_layers(cfg.numLayers)
    , m_keepGraph(keepGraph)
    , m_hooks(cfg)
{
}

void LayerInputRecorder::beginBatch(int64_t layer, int64_t batch, const std::vector<size_t>& sequences)
{
    m_batch = size_t(batch);
    if (batches.size() <= m_batch)
        batches.resize(m_batch + 1);
    Batch& b = batches[m_batch];
    if (b.sequences.empty()) {
        b.sequences = sequences;
        if (!m_keepGraph)
            b.input.resize(size_t(m_layers));
    }
    (void)layer;
}

void LayerInputRecorder::block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out)
{
    if (part != BlockPart::Whole)
        return;
    Batch& b = batches[m_batch];
    // The forward never writes into a tensor it has handed on, so keeping a reference is enough;
    // kept in the forward's dtype, in which the backward then runs.
    if (!m_keepGraph)
        b.input[size_t(layer)] = in;
    if (layer == m_layers - 1)
        b.output = out;
}

void LayerInputRecorder::linearOutput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& y)
{
    m_hooks.linearOutput(layer, expert, name, y);
}

int64_t fisherGraphBytes(const ModelConfig& cfg, int64_t tokens, int64_t seqLen, at::ScalarType dtype)
{
    const int64_t e = int64_t(c10::elementSize(dtype)), H = cfg.hiddenSize;
    int64_t perToken = 0; // bytes per token and layer
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        // norms (fp32 copies and results), q / k / v / context / attention output, RoPE terms
        int64_t n = 16 * H * 4 + 12 * cfg.numHeads * cfg.headDim * e;
        // scores and probabilities over the sequence: fp32 and compute dtype, per head
        n += cfg.numHeads * seqLen * (4 + 4 + e);
        // MLP: per routed slot (or the dense MLP) the gathered input, gate, up, silu, product, output
        const int64_t width = cfg.isMoeLayer(l) ? cfg.moeIntermediateSize : cfg.intermediateSize;
        const int64_t slots = cfg.isMoeLayer(l) ? cfg.topK : 1;
        n += slots * (2 * H + 5 * width) * e + (cfg.isMoeLayer(l) ? cfg.numExperts * 4 * 3 : 0);
        if (cfg.isMoeLayer(l) && cfg.hasSharedExpert())
            n += (2 * H + 5 * cfg.sharedIntermediateSize) * e;
        perToken += n;
    }
    return perToken * tokens;
}

int64_t fisherGraphBudget()
{
    const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
    const int64_t physical = pages > 0 && pageSize > 0 ? int64_t(pages) * int64_t(pageSize) : int64_t(8) << 30;
    return std::min<int64_t>(int64_t(4) << 30, physical / 8);
}

namespace {

/// One draw per row of probs [T, V] (fp32): the first index whose running sum exceeds u · (row sum),
/// u uniform in [0, 1), sums in fp64 in index order. A direct scan of each row: the same draws as
/// searching the row's fp64 cumulative sum, without materialising it ([T, V] doubles cost more than
/// the head's matrix products on small models).
at::Tensor sampleFromProbs(const at::Tensor& probs, int64_t seed, size_t sequence)
{
    // One stream per (seed, sequence): splitmix-style mixing so neighbouring seeds do not overlap.
    const uint64_t s = uint64_t(seed) * 0x9E3779B97F4A7C15ull + uint64_t(sequence) * 0xBF58476D1CE4E5B9ull + 1;
    at::Generator gen = at::detail::createCPUGenerator(s);
    const at::Tensor p = probs.to(at::kFloat).contiguous();
    const int64_t rows = p.size(0), V = p.size(1);
    const at::Tensor u = at::rand({rows}, gen, at::kDouble);
    at::Tensor labels = at::empty({rows}, at::kLong);
    const float* P = p.data_ptr<float>();
    const double* U = u.data_ptr<double>();
    int64_t* Y = labels.data_ptr<int64_t>();
    for (int64_t t = 0; t < rows; ++t) {
        const float* row = P + t * V;
        double total = 0;
        for (int64_t v = 0; v < V; ++v)
            total += row[v];
        const double target = U[t] * total;
        double run = 0;
        int64_t v = 0;
        for (; v < V - 1; ++v) {
            run += row[v];
            if (run > target)
                break;
        }
        Y[t] = v;
    }
    return labels;
}

} // namespace

at::Tensor sampleModelLabels(const at::Tensor& logits, int64_t seed, size_t sequence)
{
    at::NoGradGuard noGrad;
    return sampleFromProbs(at::softmax(logits.detach().to(at::kFloat), -1), seed, sequence);
}

GradSquareObserver::GradSquareObserver(const ModelConfig& cfg)
{
    for (const LinearInfo& li : listLinears(cfg))
        m_index.emplace(li.name, m_index.size());
    m_sums.resize(m_index.size());
}

void GradSquareObserver::linearOutput(int64_t, int64_t, const std::string& name, const at::Tensor& y)
{
    if (!y.requires_grad())
        return;
    const auto it = m_index.find(name);
    if (it == m_index.end())
        return;
    at::Tensor* acc = &m_sums[it->second];
    y.register_hook([acc](const at::Tensor& g) {
        // Column sums in fp32 (pairwise, relative error ~1e-7 per batch), accumulated across batches in fp64.
        const at::Tensor s = g.reshape({-1, g.size(-1)}).to(at::kFloat).square().sum(0).to(at::kDouble);
        if (acc->defined())
            acc->add_(s);
        else
            *acc = s;
    });
}

namespace {

/// Tokens per autograd graph in the layer recompute + backward (whole sequences, at least one).
constexpr int64_t kBackwardTokens = 8192;
/// Tokens per head gradient: the [tokens, vocabulary] fp32 logits and their softmax stay cache-sized.
constexpr int64_t kHeadTokens = 1024;

int64_t rowsPerSequence(const LayerInputRecorder::Batch& b, const at::Tensor& rows)
{
    return rows.size(0) / int64_t(b.sequences.size());
}

/// Gradient of the sampled-label loss at one batch's last-layer output. The logits' gradient of
/// Σ_t −log softmax(z_t)[y_t] is softmax(z_t) − onehot(y_t), formed in place (no autograd through
/// the [tokens, vocab] log-softmax); autograd then carries it through lm_head and the norm.
at::Tensor headGradient(const ModelConfig& cfg, const HeadWeights& head, const LayerInputRecorder::Batch& b,
                        int64_t seed)
{
    MOEWB_ASSERT(b.output.defined());
    const int64_t B = int64_t(b.sequences.size()), T = rowsPerSequence(b, b.output);
    const at::Tensor out = b.output.detach().view({B, T, cfg.hiddenSize});
    at::Tensor grad = at::empty_like(out);
    const int64_t per = std::max<int64_t>(1, kHeadTokens / T);
    for (int64_t s0 = 0; s0 < B; s0 += per) {
        const int64_t n = std::min(per, B - s0);
        const at::Tensor h = out.narrow(0, s0, n).detach().requires_grad_(true);
        const at::Tensor logits = finalLogits(cfg, head, h); // [n, T, V] fp32
        at::Tensor gradLogits;
        {
            at::NoGradGuard noGrad;
            gradLogits = at::softmax(logits, -1);
            for (int64_t j = 0; j < n; ++j) {
                const at::Tensor y = sampleFromProbs(gradLogits[j], seed, b.sequences[size_t(s0 + j)]);
                gradLogits[j].scatter_add_(1, y.unsqueeze(1), at::full({T, 1}, -1.0f, gradLogits.options()));
            }
        }
        logits.backward(gradLogits);
        grad.narrow(0, s0, n).copy_(h.grad());
    }
    return grad.view({-1, cfg.hiddenSize});
}

/// Step 3 with a kept graph: per batch, the head's gradient back through every layer at once.
void backwardThroughGraph(const ModelConfig& cfg, const HeadWeights& head, LayerInputRecorder& rec, int64_t seed,
                          const ProgressFn& progress)
{
    const int64_t nb = int64_t(rec.batches.size());
    for (int64_t bi = 0; bi < nb; ++bi) {
        report(progress, "fisher", bi, nb, "backward through all layers");
        LayerInputRecorder::Batch& b = rec.batches[size_t(bi)];
        b.output.backward(headGradient(cfg, head, b, seed));
        b.output = at::Tensor(); // frees this batch's graph
    }
    report(progress, "fisher", nb, nb);
}

/// Step 3 without a graph: layer by layer from the top, recomputing each layer's forward.
void backwardByRecompute(const ModelConfig& cfg, const Checkpoint& ckpt, const HeadWeights& head,
                         LayerInputRecorder& rec, int64_t seed, at::ScalarType dtype, const ProgressFn& progress)
{
    const int64_t L = cfg.numLayers, nb = int64_t(rec.batches.size());
    const int64_t steps = (L + 1) * nb;
    std::vector<at::Tensor> grads;
    for (int64_t bi = 0; bi < nb; ++bi) {
        report(progress, "fisher", bi, steps, "lm_head");
        LayerInputRecorder::Batch& b = rec.batches[size_t(bi)];
        grads.push_back(headGradient(cfg, head, b, seed));
        b.output = at::Tensor();
    }
    int64_t maxT = 0;
    for (const auto& b : rec.batches)
        maxT = std::max(maxT, rowsPerSequence(b, b.input[0]));
    const RopeTables rope = ropeTables(cfg, maxT, dtype);
    for (int64_t l = L - 1; l >= 0; --l) {
        const LayerWeights w = loadLayerWeights(cfg, ckpt, l, dtype);
        for (int64_t bi = 0; bi < nb; ++bi) {
            report(progress, "fisher", (L - l) * nb + bi, steps,
                   "layer " + std::to_string(l + 1) + "/" + std::to_string(L) + " (backward)");
            LayerInputRecorder::Batch& b = rec.batches[size_t(bi)];
            const int64_t B = int64_t(b.sequences.size()), T = rowsPerSequence(b, b.input[size_t(l)]);
            const at::Tensor in = b.input[size_t(l)].view({B, T, cfg.hiddenSize});
            const at::Tensor gradOut = grads[size_t(bi)].view({B, T, cfg.hiddenSize});
            at::Tensor gradIn = at::empty_like(in);
            // Sequences are independent: back-propagate a few at a time, so the autograd graph's
            // activations stay small (cache-resident, reused allocations).
            const int64_t per = std::max<int64_t>(1, kBackwardTokens / T);
            for (int64_t s0 = 0; s0 < B; s0 += per) {
                const int64_t n = std::min(per, B - s0);
                const at::Tensor x = in.narrow(0, s0, n).detach().requires_grad_(true);
                const at::Tensor y = decoderLayer(cfg, w, x, rope, &rec.hooks());
                y.backward(gradOut.narrow(0, s0, n));
                gradIn.narrow(0, s0, n).copy_(x.grad());
            }
            grads[size_t(bi)] = gradIn.view({-1, cfg.hiddenSize});
            b.input[size_t(l)] = at::Tensor();
        }
    }
    report(progress, "fisher", steps, steps);
}

} // namespace

int64_t fisherBackward(const Model& model, LayerInputRecorder& rec, int64_t seed, std::vector<LinearStats>& linears,
                       const ProgressFn& progress)
{
    at::AutoGradMode gradMode(true);
    const ModelConfig& cfg = model.config();
    MOEWB_CHECK(!rec.batches.empty(), "fisher", "no calibration batches were recorded");
    // The backward runs in the dtype of the recorded forward (bf16 where the CPU has fast bf16
    // GEMMs, model/streamer.h computeDtype), so it costs what the forward costs per GEMM.
    const at::ScalarType dtype = rec.batches[0].output.scalar_type();
    int64_t tokens = 0;
    for (const auto& b : rec.batches)
        tokens += b.output.size(0);
    const HeadWeights head = loadHeadWeights(cfg, model.checkpoint(), dtype);
    if (rec.keepsGraph())
        backwardThroughGraph(cfg, head, rec, seed, progress);
    else
        backwardByRecompute(cfg, model.checkpoint(), head, rec, seed, dtype, progress);

    const std::vector<at::Tensor>& sums = rec.hooks().sums();
    MOEWB_ASSERT(sums.size() == linears.size());
    for (size_t i = 0; i < linears.size(); ++i) {
        const at::Tensor& s = sums[i];
        LinearStats& r = linears[i];
        r.fisher.assign(size_t(r.outFeatures), 0.0f); // a linear no token reached (dead expert): F = 0
        if (!s.defined())
            continue;
        MOEWB_ASSERT(s.numel() == r.outFeatures);
        const at::Tensor f = (s / double(tokens)).to(at::kFloat).contiguous();
        std::copy(f.data_ptr<float>(), f.data_ptr<float>() + f.numel(), r.fisher.begin());
    }
    return tokens;
}

} // namespace moewb
