// SPDX-License-Identifier: MIT
#include "model/streamer.h"

#include "model/gguf_weights.h"
#include "moewb/model/model_source.h"
#include "moewb/model/runtime.h"

#include "moewb/core/error.h"

#include <algorithm>
#include <map>

namespace moewb {

at::ScalarType computeDtype(const ModelConfig& cfg, const std::string& request)
{
    std::string r = request;
    if (r == "auto" || r.empty()) {
        r = cfg.torchDtype.empty() ? "float32" : cfg.torchDtype;
        if ((r == "bfloat16" || r == "bf16") && !cpuHasFastBf16())
            r = "float32"; // emulated bf16 GEMMs are ~20x slower than fp32 on such CPUs
    }
    if (r == "bfloat16" || r == "bf16")
        return at::kBFloat16;
    // fp16 GEMMs have no fast CPU path in libtorch: run half-precision checkpoints in fp32.
    if (r == "float32" || r == "f32" || r == "float" || r == "float16" || r == "f16" || r == "half")
        return at::kFloat;
    throw InputError("compute dtype", "unknown dtype '" + request + "' (use auto, bf16 or f32)");
}

Model::Model(const std::string& dir)
    : m_dir(dir)
{
    if (isGgufFile(dir)) {
        m_gguf = std::make_shared<const GgufWeights>(dir);
        m_cfg = m_gguf->config();
    } else {
        m_cfg = loadConfig(dir);
        m_ckpt = Checkpoint::open(dir);
    }
}

const Checkpoint& Model::checkpoint() const
{
    if (m_gguf)
        throw InputError(m_dir, "a GGUF file can be evaluated, not calibrated or quantized: use the Hugging Face "
                                "model directory");
    return m_ckpt;
}

LayerWeights Model::loadLayer(int64_t layer, at::ScalarType dtype) const
{
    return m_gguf ? m_gguf->layer(layer, dtype) : loadLayerWeights(m_cfg, m_ckpt, layer, dtype);
}

namespace {
struct Batch {
    std::vector<size_t> members; // indices into the input sequences
    at::Tensor hidden;           // [b, T, H]
};

/// Forwards every call to `inner` with autograd off: under StreamOptions::recordGraph the forward
/// records history, and what an observer computes from the tensors it is shown must not.
class NoGradObserver : public ForwardObserver {
public:
    explicit NoGradObserver(ForwardObserver* inner)
        : m_in(inner)
    {
    }
    void linearInput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& x) override
    {
        at::NoGradGuard g;
        m_in->linearInput(layer, expert, name, x);
    }
    void linearOutput(int64_t layer, int64_t expert, const std::string& name, const at::Tensor& y) override
    {
        at::NoGradGuard g;
        m_in->linearOutput(layer, expert, name, y);
    }
    void routing(int64_t layer, const at::Tensor& logits, const at::Tensor& experts, const at::Tensor& weights) override
    {
        at::NoGradGuard g;
        m_in->routing(layer, logits, experts, weights);
    }
    void block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out) override
    {
        at::NoGradGuard g;
        m_in->block(layer, part, in, out);
    }
    void beginBatch(int64_t layer, int64_t batch, const std::vector<size_t>& sequences) override
    {
        m_in->beginBatch(layer, batch, sequences);
    }
    void moeInput(const LayerWeights& w, const at::Tensor& h) override
    {
        at::NoGradGuard g;
        m_in->moeInput(w, h);
    }
    void layerLoaded(const LayerWeights& w) override
    {
        at::NoGradGuard g;
        m_in->layerLoaded(w);
    }
    void finish() override
    {
        at::NoGradGuard g;
        m_in->finish();
    }
    bool wantsLinearInputs() const override { return m_in->wantsLinearInputs(); }
    bool wantsLinearOutputs() const override { return m_in->wantsLinearOutputs(); }
    bool needsRoutedExperts() const override { return m_in->needsRoutedExperts(); }

private:
    ForwardObserver* m_in;
};

std::vector<Batch> makeBatches(const std::vector<at::Tensor>& seqs, int64_t maxTokens)
{
    std::map<int64_t, std::vector<size_t>> byLength;
    for (size_t i = 0; i < seqs.size(); ++i) {
        MOEWB_CHECK(seqs[i].dim() == 1 && seqs[i].size(0) > 0, "forward", "sequence ", i, " is empty or not 1-D");
        byLength[seqs[i].size(0)].push_back(i);
    }
    std::vector<Batch> batches;
    for (const auto& [len, idx] : byLength) {
        const size_t per = size_t(std::max<int64_t>(1, maxTokens / len));
        for (size_t s = 0; s < idx.size(); s += per)
            batches.push_back(Batch{{idx.begin() + s, idx.begin() + std::min(idx.size(), s + per)}, {}});
    }
    return batches;
}
} // namespace

void Model::run(const std::vector<at::Tensor>& sequences, const StreamOptions& opt, const LogitsSink& sink,
                ForwardObserver* obs, const ProgressFn& progress) const
{
    at::AutoGradMode gradMode(opt.recordGraph);
    NoGradObserver quietObs(obs);
    if (opt.recordGraph && obs)
        obs = &quietObs;
    const ModelConfig& cfg = m_cfg;
    std::vector<Batch> batches = makeBatches(sequences, opt.maxBatchTokens);
    int64_t maxLen = 0;
    for (const auto& s : sequences)
        maxLen = std::max(maxLen, s.size(0));
    const RopeTables rope = ropeTables(cfg, maxLen, opt.dtype);

    {
        const at::Tensor embed = m_gguf ? m_gguf->embedding(opt.dtype) : loadEmbedding(cfg, m_ckpt, opt.dtype);
        for (auto& b : batches) {
            std::vector<at::Tensor> ids;
            for (size_t i : b.members) {
                const at::Tensor s = sequences[i].to(at::kLong);
                const int64_t lo = s.min().item<int64_t>(), hi = s.max().item<int64_t>();
                MOEWB_CHECK(lo >= 0 && hi < cfg.vocabSize, m_dir, "token id ", (lo < 0 ? lo : hi),
                            " is outside the model's vocabulary of ", cfg.vocabSize);
                ids.push_back(s);
            }
            b.hidden = embed.index_select(0, at::stack(ids).reshape({-1})).view({int64_t(ids.size()), -1, cfg.hiddenSize});
            if (opt.recordGraph)
                b.hidden = b.hidden.detach().requires_grad_(true);
        }
    }

    // Non-finite activations name the module; put the model directory in front (one line).
    const auto layer = [&](const LayerWeights& w, const at::Tensor& hidden) {
        try {
            return decoderLayer(cfg, w, hidden, rope, obs);
        } catch (const NonFiniteActivation& e) {
            throw NonFiniteActivation(m_dir, e.what());
        }
    };
    const int64_t L = cfg.numLayers;
    const int64_t steps = L * int64_t(batches.size());
    if (opt.streaming) {
        for (int64_t l = 0; l < L; ++l) {
            report(progress, "forward", l * int64_t(batches.size()), steps,
                   "layer " + std::to_string(l + 1) + "/" + std::to_string(L) + " (loading)");
            LayerWeights w = loadLayer(l, opt.dtype);
            w.activationBits = opt.activationBits;
            if (obs)
                obs->layerLoaded(w);
            for (size_t bi = 0; bi < batches.size(); ++bi) {
                report(progress, "forward", l * int64_t(batches.size()) + int64_t(bi), steps,
                       "layer " + std::to_string(l + 1) + "/" + std::to_string(L));
                if (obs)
                    obs->beginBatch(l, int64_t(bi), batches[bi].members);
                batches[bi].hidden = layer(w, batches[bi].hidden);
            }
            w = LayerWeights();
            releaseFreedMemory(); // the layer's transients, before the next layer's weights come
        }
    } else {
        std::vector<LayerWeights> layers;
        for (int64_t l = 0; l < L; ++l) {
            layers.push_back(loadLayer(l, opt.dtype));
            layers.back().activationBits = opt.activationBits;
            if (obs)
                obs->layerLoaded(layers.back());
        }
        for (size_t bi = 0; bi < batches.size(); ++bi)
            for (int64_t l = 0; l < L; ++l) {
                report(progress, "forward", int64_t(bi) * L + l, steps);
                if (obs)
                    obs->beginBatch(l, int64_t(bi), batches[bi].members);
                batches[bi].hidden = layer(layers[size_t(l)], batches[bi].hidden);
            }
    }
    if (obs)
        obs->finish();
    report(progress, "forward", steps, steps, "lm_head");
    if (!sink)
        return; // hidden states only (calibration): skip the final norm and the lm_head GEMM

    const HeadWeights outer = m_gguf ? m_gguf->head(opt.dtype) : loadHeadWeights(cfg, m_ckpt, opt.dtype);
    for (auto& b : batches) {
        for (size_t j = 0; j < b.members.size(); ++j)
            sink(b.members[j], finalLogits(cfg, outer, b.hidden[int64_t(j)]));
        b.hidden = at::Tensor();
    }
}

at::Tensor Model::logits(const at::Tensor& ids, const StreamOptions& opt) const
{
    std::vector<at::Tensor> seqs;
    for (int64_t b = 0; b < ids.size(0); ++b)
        seqs.push_back(ids[b]);
    std::vector<at::Tensor> out(seqs.size());
    run(seqs, opt, [&](size_t i, const at::Tensor& l) { out[i] = l; });
    return at::stack(out);
}

} // namespace moewb
