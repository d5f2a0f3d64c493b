// SPDX-License-Identifier: MIT
// trainModel: the inference forward under autograd, load-balancing loss, AdamW, cosine schedule.
#include "moewb/train/train.h"

#include "model/forward.h"
#include "model/weights.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/tokenizer/tokenizer.h"
#include "train/optim.h"
#include "train/train_output.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb {

namespace {

struct Param {
    std::string name;
    at::Tensor value; ///< fp32 leaf, requires grad
    at::Tensor m, v;  ///< AdamW moments
    bool decay = true;
};

bool endsWith(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// HF-style initialisation: norms 1, biases 0, everything else N(0, std); the projections that
/// write into the residual stream (o_proj, down / w2) N(0, std / sqrt(2 · layers)) as GPT-2 does.
at::Tensor initTensor(const TensorSpec& spec, const ModelConfig& cfg, double stdDev)
{
    const std::string& n = spec.name;
    if (endsWith(n, "norm.weight"))
        return at::ones(spec.shape, at::kFloat);
    if (endsWith(n, ".bias"))
        return at::zeros(spec.shape, at::kFloat);
    double s = stdDev;
    if (endsWith(n, "o_proj.weight") || endsWith(n, "down_proj.weight") || endsWith(n, ".w2.weight"))
        s = stdDev / std::sqrt(2.0 * double(cfg.numLayers));
    return at::normal(0.0, s, spec.shape, c10::nullopt, at::TensorOptions().dtype(at::kFloat));
}

bool decays(const std::string& name)
{
    return !(endsWith(name, "norm.weight") || endsWith(name, ".bias") || name == "model.embed_tokens.weight");
}

/// Collects each MoE layer's router logits (with their autograd history) and choices.
class RouterCollector : public ForwardObserver {
public:
    struct Entry {
        at::Tensor logits, experts;
    };
    std::vector<Entry> entries;
    void routing(int64_t, const at::Tensor& logits, const at::Tensor& experts, const at::Tensor&) override
    {
        entries.push_back({logits, experts});
    }
};

struct Net {
    const ModelConfig& cfg;
    std::vector<Param> params;
    std::vector<LayerWeights> layers;
    at::Tensor embed;
    HeadWeights head;

    Net(const ModelConfig& c, double stdDev) : cfg(c)
    {
        std::map<std::string, at::Tensor> byName;
        for (const TensorSpec& spec : expectedTensors(cfg)) {
            at::Tensor t = initTensor(spec, cfg, stdDev);
            t.set_requires_grad(true);
            params.push_back(Param{spec.name, t, at::zeros_like(t), at::zeros_like(t), decays(spec.name)});
            byName[spec.name] = t;
        }
        embed = byName.at("model.embed_tokens.weight");
        head.norm = byName.at("model.norm.weight");
        head.lmHead = cfg.tieWordEmbeddings ? embed : byName.at("lm_head.weight");
        for (int64_t l = 0; l < cfg.numLayers; ++l) {
            LayerWeights w;
            w.layer = l;
            for (const TensorSpec& spec : layerTensors(cfg, l))
                w.tensors[spec.name] = byName.at(spec.name);
            layers.push_back(std::move(w));
        }
    }

    /// ids [B, T+1] → (mean next-token NLL, mean balance loss over MoE layers).
    std::pair<at::Tensor, at::Tensor> loss(const at::Tensor& ids, const RopeTables& rope) const
    {
        const int64_t T = ids.size(1) - 1;
        const at::Tensor input = ids.narrow(1, 0, T), target = ids.narrow(1, 1, T);
        RouterCollector routes;
        at::Tensor x = at::embedding(embed, input);
        for (const LayerWeights& w : layers)
            x = decoderLayer(cfg, w, x, rope, &routes);
        const at::Tensor logits = finalLogits(cfg, head, x);
        const at::Tensor nll = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}));
        at::Tensor aux = at::zeros({}, at::kFloat);
        for (const auto& e : routes.entries)
            aux = aux + balanceLoss(e.logits, e.experts, cfg.numExperts);
        if (!routes.entries.empty())
            aux = aux / double(routes.entries.size());
        return {nll, aux};
    }
};

std::vector<int32_t> loadStream(const std::vector<std::string>& files, const Tokenizer& tok, int32_t eos)
{
    std::vector<CalibDataSpec> specs;
    for (const auto& f : files)
        specs.push_back({f, ""});
    // Each document ends with EOS so the model learns document boundaries.
    const TokenizeFn encode = [&](const std::string& text) {
        std::vector<int32_t> ids = tok.encode(text, false);
        if (eos >= 0)
            ids.push_back(eos);
        return ids;
    };
    return loadCalibData(specs, encode).ids;
}

} // namespace

TrainResult trainModel(const TrainOptions& opt, const ProgressFn& progress,
                       const std::function<void(const TrainLogEntry&)>& onLog)
{
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    MOEWB_CHECK(opt.steps > 0 && opt.batch > 0 && opt.seqLen > 1, "training", "steps, batch size and sequence length must be positive");
    MOEWB_CHECK(opt.warmup >= 0 && opt.lr > 0, "train", "bad learning-rate schedule");
    if (fs::exists(opt.outDir) && !opt.force)
        throw OutputExistsError(opt.outDir);

    const std::string configText = readFileBytes(opt.configPath);
    const ModelConfig cfg = parseConfigJson(configText, opt.configPath);
    MOEWB_CHECK(opt.seqLen <= cfg.maxPositionEmbeddings, opt.configPath, "seq-len ", opt.seqLen,
                " exceeds max_position_embeddings ", cfg.maxPositionEmbeddings);
    const auto tok = Tokenizer::load(opt.tokenizerPath);
    if (tok->vocabSize() > cfg.vocabSize)
        throw InputError(opt.configPath + ": vocab_size " + std::to_string(cfg.vocabSize) + " is smaller than the tokenizer's "
                         + std::to_string(tok->vocabSize()));
    const int32_t eos = cfg.eosTokenId ? int32_t(*cfg.eosTokenId) : -1;

    report(progress, "tokenize", 0, 0, "training data");
    const std::vector<int32_t> stream = loadStream(opt.trainFiles, *tok, eos);
    MOEWB_CHECK(int64_t(stream.size()) > opt.seqLen + 1, "train", "training data has only ", stream.size(), " tokens");
    std::vector<int32_t> held;
    if (!opt.evalFile.empty())
        held = loadStream({opt.evalFile}, *tok, eos);

    at::manual_seed(opt.seed);
    Net net(cfg, opt.initStd);
    const RopeTables rope = ropeTables(cfg, opt.seqLen, at::kFloat);
    std::mt19937_64 rng(opt.seed);
    std::uniform_int_distribution<int64_t> startDist(0, int64_t(stream.size()) - opt.seqLen - 2);

    TrainResult result;
    result.trainTokens = int64_t(stream.size());
    for (const Param& p : net.params)
        result.parameters += p.value.numel();

    at::Tensor batchIds = at::empty({opt.batch, opt.seqLen + 1}, at::kLong);
    double lossAcc = 0, auxAcc = 0;
    int64_t accN = 0;
    for (int64_t step = 0; step < opt.steps; ++step) {
        auto* ids = batchIds.data_ptr<int64_t>();
        for (int64_t b = 0; b < opt.batch; ++b) {
            const int64_t s = startDist(rng);
            for (int64_t t = 0; t <= opt.seqLen; ++t)
                ids[b * (opt.seqLen + 1) + t] = stream[size_t(s + t)];
        }
        auto [nll, aux] = net.loss(batchIds, rope);
        const at::Tensor total = cfg.isMoe() ? nll + opt.auxCoef * aux : nll;
        for (Param& p : net.params)
            p.value.mutable_grad() = at::Tensor();
        total.backward();

        const double lr = scheduledLr(opt.lr, opt.minLrRatio, opt.warmup, opt.steps, step);
        double gradNorm = 0;
        {
            at::NoGradGuard noGrad;
            at::Tensor sq = at::zeros({}, at::kDouble);
            for (Param& p : net.params)
                if (p.value.grad().defined())
                    sq += p.value.grad().to(at::kDouble).pow(2).sum();
            gradNorm = std::sqrt(sq.item<double>());
            const double clip = (opt.clipNorm > 0 && gradNorm > opt.clipNorm) ? opt.clipNorm / (gradNorm + 1e-6) : 1.0;
            const AdamWConfig adam{opt.beta1, opt.beta2, opt.eps, opt.weightDecay};
            for (Param& p : net.params) {
                if (!p.value.grad().defined())
                    continue; // e.g. an expert no token was routed to in this step
                const at::Tensor g = clip != 1.0 ? p.value.grad() * clip : p.value.grad();
                adamwStep(p.value, g, p.m, p.v, step + 1, lr, adam, p.decay);
            }
        }
        lossAcc += nll.item<double>();
        auxAcc += aux.item<double>();
        ++accN;
        if ((step + 1) % opt.logEvery == 0 || step + 1 == opt.steps) {
            TrainLogEntry e{step + 1, lossAcc / accN, auxAcc / accN, lr, gradNorm, elapsed()};
            result.log.push_back(e);
            if (onLog)
                onLog(e);
            lossAcc = auxAcc = 0;
            accN = 0;
        }
        if (opt.snapshotEvery > 0 && (step + 1) % opt.snapshotEvery == 0 && step + 1 < opt.steps) {
            // A usable model if the run is stopped early (learning rate not yet annealed).
            TrainResult snap = result;
            snap.stepsDone = step + 1;
            snap.tokensSeen = (step + 1) * opt.batch * opt.seqLen;
            snap.seconds = elapsed();
            std::vector<std::pair<std::string, at::Tensor>> tensors;
            for (const Param& p : net.params)
                tensors.emplace_back(p.name, p.value.detach());
            TrainOptions replace = opt;
            replace.force = true;
            writeTrainedModel(replace, configText, tensors, snap);
        }
        std::ostringstream msg;
        msg << "step " << step + 1 << " loss " << nll.item<double>();
        report(progress, "train", step + 1, opt.steps, msg.str());
    }
    result.tokensSeen = opt.steps * opt.batch * opt.seqLen;
    result.stepsDone = opt.steps;

    if (!held.empty()) {
        at::NoGradGuard noGrad;
        const int64_t window = opt.seqLen + 1;
        int64_t limit = int64_t(held.size());
        if (opt.evalTokens > 0)
            limit = std::min(limit, opt.evalTokens);
        double nllSum = 0;
        int64_t scored = 0;
        for (int64_t s = 0; s + window <= limit; s += window) {
            at::Tensor w = at::empty({1, window}, at::kLong);
            for (int64_t t = 0; t < window; ++t)
                w.data_ptr<int64_t>()[t] = held[size_t(s + t)];
            const double l = net.loss(w, rope).first.item<double>();
            nllSum += l * double(window - 1);
            scored += window - 1;
            report(progress, "eval", s + window, limit);
        }
        result.evalTokensScored = scored;
        result.evalLoss = scored ? nllSum / double(scored) : 0.0;
    }
    result.seconds = elapsed();

    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const Param& p : net.params)
        tensors.emplace_back(p.name, p.value.detach());
    writeTrainedModel(opt, configText, tensors, result);
    return result;
}

} // namespace moewb
