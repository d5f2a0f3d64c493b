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
#include "moewb/model/runtime.h"
#include "train/batches.h"
#include "train/optim.h"
#include "train/train_output.h"
#include "train/train_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
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

/// The tensors the forward reads, by role (views of the trainable leaves).
struct NetWeights {
    std::vector<LayerWeights> layers;
    at::Tensor embed;
    HeadWeights head;
};

struct Net {
    const ModelConfig& cfg;
    std::vector<Param> params;
    NetWeights weights;

    Net(const ModelConfig& c, double stdDev) : cfg(c)
    {
        std::vector<at::Tensor> leaves;
        for (const TensorSpec& spec : expectedTensors(cfg)) {
            at::Tensor t = initTensor(spec, cfg, stdDev);
            t.set_requires_grad(true);
            params.push_back(Param{spec.name, t, at::zeros_like(t), at::zeros_like(t), decays(spec.name)});
            leaves.push_back(t);
        }
        weights = build(leaves);
    }

    /// NetWeights over `leaves` (one per params entry, same order).
    NetWeights build(const std::vector<at::Tensor>& leaves) const
    {
        std::map<std::string, at::Tensor> byName;
        for (size_t i = 0; i < params.size(); ++i)
            byName[params[i].name] = leaves[i];
        NetWeights w;
        w.embed = byName.at("model.embed_tokens.weight");
        w.head.norm = byName.at("model.norm.weight");
        w.head.lmHead = cfg.tieWordEmbeddings ? w.embed : byName.at("lm_head.weight");
        for (int64_t l = 0; l < cfg.numLayers; ++l) {
            LayerWeights lw;
            lw.layer = l;
            for (const TensorSpec& spec : layerTensors(cfg, l))
                lw.tensors[spec.name] = byName.at(spec.name);
            w.layers.push_back(std::move(lw));
        }
        return w;
    }

    /// ids [B, T+1] → (mean next-token NLL, mean balance loss over MoE layers).
    std::pair<at::Tensor, at::Tensor> loss(const at::Tensor& ids, const RopeTables& rope) const
    {
        return loss(weights, ids, rope);
    }

    std::pair<at::Tensor, at::Tensor> loss(const NetWeights& w, const at::Tensor& ids, const RopeTables& rope) const
    {
        const int64_t T = ids.size(1) - 1;
        const at::Tensor input = ids.narrow(1, 0, T), target = ids.narrow(1, 1, T);
        RouterCollector routes;
        at::Tensor x = at::embedding(w.embed, input);
        for (const LayerWeights& lw : w.layers)
            x = decoderLayer(cfg, lw, x, rope, &routes);
        const at::Tensor logits = finalLogits(cfg, w.head, x);
        const at::Tensor nll = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}));
        at::Tensor aux = at::zeros({}, at::kFloat);
        for (const auto& e : routes.entries)
            aux = aux + balanceLoss(e.logits, e.experts, cfg.numExperts);
        if (!routes.entries.empty())
            aux = aux / double(routes.entries.size());
        return {nll, aux};
    }
};

/// bf16 autocast of the matmuls for the guard's lifetime (when `on`); the cast cache is cleared
/// at the end, since the weights change after every step.
class ComputeDtypeGuard {
public:
    explicit ComputeDtypeGuard(bool on)
        : m_on(on)
    {
        if (!m_on)
            return;
        m_wasEnabled = at::autocast::is_cpu_enabled();
        m_wasDtype = at::autocast::get_autocast_cpu_dtype();
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::set_cpu_enabled(true);
    }
    ~ComputeDtypeGuard()
    {
        if (!m_on)
            return;
        at::autocast::set_cpu_enabled(m_wasEnabled);
        at::autocast::set_autocast_cpu_dtype(m_wasDtype);
        at::autocast::clear_cache();
    }
    ComputeDtypeGuard(const ComputeDtypeGuard&) = delete;
    ComputeDtypeGuard& operator=(const ComputeDtypeGuard&) = delete;

private:
    bool m_on;
    bool m_wasEnabled = false;
    at::ScalarType m_wasDtype = at::kBFloat16;
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
    double secondsBefore = 0; // earlier sessions of a resumed run
    auto elapsed = [&] {
        return secondsBefore + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    MOEWB_CHECK(opt.steps > 0 && opt.batch > 0 && opt.seqLen > 1, "training", "steps, batch size and sequence length must be positive");
    MOEWB_CHECK(opt.warmup >= 0 && opt.lr > 0, "training", "bad learning-rate schedule");
    MOEWB_CHECK(opt.stopAtStep >= 0 && opt.maxSeconds >= 0 && opt.prefetch >= 0, "training",
                "the step to stop at, the time limit and the prefetch depth must not be negative");
    if (fs::exists(opt.outDir) && !opt.force && opt.resumeDir.empty())
        throw OutputExistsError(opt.outDir);
    const std::string stateDir = opt.stateDir.empty() ? opt.outDir + ".state" : opt.stateDir;
    if (opt.resumeDir.empty() && hasTrainState(stateDir)) {
        if (!opt.force)
            throw InputError(stateDir, "holds training-state snapshots of an earlier run (continue it, or replace it to start over)");
        removeTrainStates(stateDir);
    }

    const std::string configText = readFileBytes(opt.configPath);
    const ModelConfig cfg = parseConfigJson(configText, opt.configPath);
    MOEWB_CHECK(opt.seqLen <= cfg.maxPositionEmbeddings, opt.configPath, "seq-len ", opt.seqLen,
                " exceeds max_position_embeddings ", cfg.maxPositionEmbeddings);
    const auto tok = Tokenizer::load(opt.tokenizerPath);
    if (tok->vocabSize() > cfg.vocabSize)
        throw InputError(opt.configPath + ": vocab_size " + std::to_string(cfg.vocabSize) + " is smaller than the tokenizer's "
                         + std::to_string(tok->vocabSize()));
    const int32_t eos = cfg.eosTokenId ? int32_t(*cfg.eosTokenId) : -1;

    TrainResult result;
    const int64_t workers = std::max<int64_t>(1, opt.workers);
    MOEWB_CHECK(opt.batch % workers == 0, "train", "batch ", opt.batch, " is not a multiple of workers ", workers);
    MOEWB_CHECK(workers == 1 || opt.threads <= 1, "train", "workers run single-threaded: use threads 1 (or 0) with workers ",
                workers);
    if (workers > 1)
        setComputeThreads(1);
    result.threads = opt.threads > 0 ? setComputeThreads(opt.threads) : at::get_num_threads();
    result.workers = workers;
    const bool bf16 = opt.precision == TrainPrecision::Bf16
        || (opt.precision == TrainPrecision::Auto && cpuHasFastBf16());
    result.computeDtype = bf16 ? "bf16" : "f32";

    report(progress, "tokenize", 0, 0, "training data");
    const std::vector<int32_t> stream = loadStream(opt.trainFiles, *tok, eos);
    MOEWB_CHECK(int64_t(stream.size()) > opt.seqLen + 1, "train", "training data has only ", stream.size(), " tokens");
    std::vector<int32_t> held;
    if (!opt.evalFile.empty())
        held = loadStream({opt.evalFile}, *tok, eos);
    result.tokenizeSeconds = elapsed();

    at::manual_seed(opt.seed);
    Net net(cfg, opt.initStd);
    const RopeTables rope = ropeTables(cfg, opt.seqLen, at::kFloat);

    result.trainTokens = int64_t(stream.size());
    for (const Param& p : net.params)
        result.parameters += p.value.numel();

    // What a resumed run must share with the snapshot for its weights to equal an uninterrupted run's.
    uint64_t streamHash = 1469598103934665603ull; // FNV-1a over the token ids
    for (int32_t id : stream) {
        streamHash ^= uint64_t(uint32_t(id));
        streamHash *= 1099511628211ull;
    }
    const nlohmann::json fingerprint = {{"config", configText},
                                        {"train_tokens", int64_t(stream.size())},
                                        {"train_stream_fnv1a", std::to_string(streamHash)},
                                        {"steps", opt.steps},
                                        {"batch", opt.batch},
                                        {"seq_len", opt.seqLen},
                                        {"lr", opt.lr},
                                        {"min_lr_ratio", opt.minLrRatio},
                                        {"warmup", opt.warmup},
                                        {"weight_decay", opt.weightDecay},
                                        {"betas", {opt.beta1, opt.beta2}},
                                        {"eps", opt.eps},
                                        {"clip_norm", opt.clipNorm},
                                        {"aux_coef", opt.auxCoef},
                                        {"init_std", opt.initStd},
                                        {"seed", opt.seed}};
    nlohmann::json sessions = nlohmann::json::array();

    double lossAcc = 0, auxAcc = 0;
    int64_t accN = 0;
    std::string samplerRng;
    if (!opt.resumeDir.empty()) {
        report(progress, "resume", 0, 0, opt.resumeDir);
        TrainState st = loadTrainState(opt.resumeDir);
        checkFingerprint(st.path, st.fingerprint, fingerprint.dump());
        MOEWB_CHECK(st.step > 0 && st.step <= opt.steps, st.path + "/state.json", "step ", st.step, " is outside 1..",
                    opt.steps);
        at::NoGradGuard noGrad;
        for (Param& p : net.params) {
            for (const auto& [prefix, dst] : {std::pair<const char*, at::Tensor*>{"param.", &p.value},
                                              {"adam_m.", &p.m}, {"adam_v.", &p.v}}) {
                const auto it = st.tensors.find(prefix + p.name);
                MOEWB_CHECK(it != st.tensors.end(), st.path + "/state.safetensors", "no tensor ", prefix, p.name);
                MOEWB_CHECK(it->second.sizes() == dst->sizes(), st.path + "/state.safetensors", "tensor ", prefix, p.name,
                            " has shape ", it->second.sizes(), ", the config needs ", dst->sizes());
                dst->copy_(it->second);
            }
        }
        at::Generator gen = at::detail::getDefaultCPUGenerator();
        gen.set_state(st.torchRng);
        result.startStep = st.step;
        samplerRng = st.samplerRng;
        lossAcc = st.lossAcc;
        auxAcc = st.auxAcc;
        accN = st.accN;
        result.log = st.log;
        secondsBefore = st.seconds;
        sessions = nlohmann::json::parse(st.sessions);
    }
    sessions.push_back({{"from_step", result.startStep}, {"threads", result.threads}, {"workers", workers},
                        {"compute_dtype", result.computeDtype}});

    auto modelTensors = [&] {
        std::vector<std::pair<std::string, at::Tensor>> tensors;
        for (const Param& p : net.params)
            tensors.emplace_back(p.name, p.value.detach());
        return tensors;
    };
    bool wroteSnapshot = false;
    // A snapshot after `done` steps: the training state (to resume from) and OUT_DIR as a usable model.
    auto snapshot = [&](int64_t done, const std::mt19937_64& rngAfter) {
        TrainState st;
        st.step = done;
        st.samplerRng = BatchStream::rngToString(rngAfter);
        st.torchRng = at::detail::getDefaultCPUGenerator().get_state();
        st.lossAcc = lossAcc;
        st.auxAcc = auxAcc;
        st.accN = accN;
        st.seconds = elapsed();
        st.log = result.log;
        st.fingerprint = fingerprint.dump();
        nlohmann::json sess = sessions;
        sess.back()["to_step"] = done;
        st.sessions = sess.dump();
        for (const Param& p : net.params) {
            st.tensors["param." + p.name] = p.value.detach();
            st.tensors["adam_m." + p.name] = p.m;
            st.tensors["adam_v." + p.name] = p.v;
        }
        result.statePath = saveTrainState(stateDir, st);
        wroteSnapshot = true;
        TrainResult snap = result;
        snap.stepsDone = done;
        snap.tokensSeen = done * opt.batch * opt.seqLen;
        snap.seconds = elapsed();
        TrainOptions replace = opt;
        replace.force = true;
        writeTrainedModel(replace, configText, modelTensors(), snap);
    };

    BatchStream batches(stream, opt.batch, opt.seqLen, opt.seed, samplerRng, result.startStep, opt.steps, opt.prefetch);
    std::mt19937_64 lastRng;
    if (!samplerRng.empty()) {
        std::istringstream in(samplerRng);
        in >> lastRng;
    } else {
        lastRng.seed(opt.seed);
    }
    const AdamWConfig adam{opt.beta1, opt.beta2, opt.eps, opt.weightDecay};
    int64_t step = result.startStep;
    for (; step < opt.steps; ++step) {
        const bool stopHere = (opt.stopAtStep > 0 && step >= opt.stopAtStep)
            || (opt.maxSeconds > 0 && step > result.startStep && elapsed() - secondsBefore >= opt.maxSeconds);
        if (stopHere) {
            snapshot(step, lastRng);
            result.stopped = true;
            break;
        }
        BatchStream::Batch batch = batches.next();
        const auto s0 = std::chrono::steady_clock::now();
        double stepLoss = 0, stepAux = 0;
        for (Param& p : net.params)
            p.value.mutable_grad() = at::Tensor();
        if (workers == 1) {
            const ComputeDtypeGuard autocast(bf16);
            const auto [nll, aux] = net.loss(batch.ids, rope);
            const at::Tensor total = cfg.isMoe() ? nll + opt.auxCoef * aux : nll;
            total.backward();
            stepLoss = nll.item<double>();
            stepAux = aux.item<double>();
        } else {
            // Data parallel: worker k runs sequences [k·b, (k+1)·b) single-threaded on its own
            // leaves (aliases of the fp32 weights); the mean of the workers' gradients, summed in
            // worker order, is the step's gradient.
            const int64_t b = opt.batch / workers;
            std::vector<std::vector<at::Tensor>> leaves(static_cast<size_t>(workers));
            for (auto& l : leaves)
                for (const Param& p : net.params)
                    l.push_back(p.value.detach().requires_grad_(true));
            std::vector<double> nllW(static_cast<size_t>(workers)), auxW(static_cast<size_t>(workers));
            std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
            auto work = [&](int64_t k) {
                try {
                    at::set_num_threads(1);
                    const ComputeDtypeGuard autocast(bf16);
                    const auto [nll, aux] = net.loss(net.build(leaves[size_t(k)]), batch.ids.narrow(0, k * b, b), rope);
                    const at::Tensor total = cfg.isMoe() ? nll + opt.auxCoef * aux : nll;
                    total.backward();
                    nllW[size_t(k)] = nll.item<double>();
                    auxW[size_t(k)] = aux.item<double>();
                } catch (...) {
                    errors[size_t(k)] = std::current_exception();
                }
            };
            std::vector<std::thread> pool;
            for (int64_t k = 1; k < workers; ++k)
                pool.emplace_back(work, k);
            work(0);
            for (std::thread& t : pool)
                t.join();
            for (const std::exception_ptr& e : errors)
                if (e)
                    std::rethrow_exception(e);
            at::NoGradGuard noGrad;
            for (size_t i = 0; i < net.params.size(); ++i) {
                at::Tensor sum;
                for (int64_t k = 0; k < workers; ++k) {
                    const at::Tensor& g = leaves[size_t(k)][i].grad();
                    if (g.defined())
                        sum = sum.defined() ? sum.add(g) : g.clone();
                }
                if (sum.defined())
                    net.params[i].value.mutable_grad() = sum.div_(double(workers));
            }
            for (int64_t k = 0; k < workers; ++k) {
                stepLoss += nllW[size_t(k)] / double(workers);
                stepAux += auxW[size_t(k)] / double(workers);
            }
        }
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
            for (Param& p : net.params) {
                if (!p.value.grad().defined())
                    continue; // e.g. an expert no token was routed to in this step
                const at::Tensor g = clip != 1.0 ? p.value.grad() * clip : p.value.grad();
                adamwStep(p.value, g, p.m, p.v, step + 1, lr, adam, p.decay);
            }
        }
        lossAcc += stepLoss;
        auxAcc += stepAux;
        ++accN;
        lastRng = batch.rng;
        result.stepSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
        ++result.stepsThisSession;
        if ((step + 1) % opt.logEvery == 0 || step + 1 == opt.steps) {
            TrainLogEntry e{step + 1, lossAcc / accN, auxAcc / accN, lr, gradNorm, elapsed()};
            result.log.push_back(e);
            if (onLog)
                onLog(e);
            lossAcc = auxAcc = 0;
            accN = 0;
        }
        if (opt.snapshotEvery > 0 && (step + 1) % opt.snapshotEvery == 0 && step + 1 < opt.steps)
            snapshot(step + 1, lastRng); // resumable, and a usable model (learning rate not yet annealed)
        std::ostringstream msg;
        msg << "step " << step + 1 << " loss " << stepLoss;
        report(progress, "train", step + 1, opt.steps, msg.str());
    }
    result.stepsDone = step;
    result.tokensSeen = step * opt.batch * opt.seqLen;
    if (result.stopped) {
        result.seconds = elapsed();
        return result;
    }

    if (!held.empty()) {
        at::NoGradGuard noGrad;
        const ComputeDtypeGuard autocast(bf16);
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
    TrainOptions finalOpt = opt;
    finalOpt.force = opt.force || !opt.resumeDir.empty() || wroteSnapshot; // replaces this run's own snapshot
    writeTrainedModel(finalOpt, configText, modelTensors(), result);
    return result;
}

} // namespace moewb
