// SPDX-License-Identifier: MIT
#include "calib/calibrator.h"
#include "calib/fisher.h"

#include "moewb/core/error.h"
#include "moewb/core/timestamp.h"
#include "moewb/core/version.h"
#include "moewb/dist/dist.h"
#include "moewb/model/runtime.h"

#include <nlohmann/json.hpp>

#include <chrono>

namespace moewb {

namespace {

const char* dtypeString(at::ScalarType t)
{
    switch (t) {
    case at::kBFloat16:
        return "bfloat16";
    case at::kHalf:
        return "float16";
    case at::kDouble:
        return "float64";
    default:
        return "float32";
    }
}

/// Appends "N tok/s" to Model::run's "layer i/n" message; terminalProgress adds the ETA.
ProgressFn withThroughput(const ProgressFn& inner, int64_t numTokens)
{
    if (!inner)
        return inner;
    const auto start = std::chrono::steady_clock::now();
    return [inner, numTokens, start](const Progress& p) {
        Progress q = p;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (p.total > 0 && p.done > 0 && secs > 0) {
            // A step is one batch through one layer: done/total of the whole model's work.
            const double tokPerSec = double(numTokens) * double(p.done) / double(p.total) / secs;
            char buf[64];
            std::snprintf(buf, sizeof buf, ", %.0f tok/s", tokPerSec);
            q.message += buf;
        }
        return inner(q);
    };
}

} // namespace

TokenLayout layoutOf(const std::vector<at::Tensor>& sequences)
{
    TokenLayout l;
    int64_t off = 0;
    for (const auto& s : sequences) {
        l.offset.push_back(off);
        l.length.push_back(s.size(0));
        off += s.size(0);
    }
    return l;
}

CalibStats runCalibration(const Model& model, const std::vector<at::Tensor>& sequences, const TokenLayout& layout,
                          const CalibrateOptions& opt, ForwardObserver* extra, const ProgressFn& progress,
                          bool recordGraph)
{
    MOEWB_CHECK(opt.maxBatchTokens > 0, "calibration", "the tokens per batch must be positive");
    MOEWB_CHECK(opt.probeTokens >= 0, "calibration", "the probe tokens must not be negative");
    const ModelConfig& cfg = model.config();
    const std::vector<LinearInfo> linears = listLinears(cfg);

    CalibStats st;
    st.numLayers = cfg.numLayers;
    st.hiddenSize = cfg.hiddenSize;
    st.layers.resize(size_t(cfg.numLayers));
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        st.layers[size_t(l)].layer = l;
        st.layers[size_t(l)].isMoe = cfg.isMoeLayer(l);
    }
    for (const LinearInfo& li : linears) {
        LinearStats s;
        s.name = li.name;
        s.layer = li.layer;
        s.expert = li.expert;
        s.role = linearRoleName(li.role);
        s.inFeatures = li.inFeatures;
        s.outFeatures = li.outFeatures;
        s.outlierScore = std::numeric_limits<float>::quiet_NaN();
        st.linears.push_back(std::move(s));
    }

    RoutingObserver routing(cfg, layout);
    BlockCosineObserver cosine(cfg.numLayers);
    LinearStatsObserver acts(linears);
    OutlierObserver outliers(linears, model.checkpoint(), st.outlier.eps);
    CorrelationProbe probe(cfg, layout, opt.probeTokens);
    FanoutObserver all;
    all.add(&routing);
    all.add(&cosine);
    if (opt.activations)
        all.add(&acts);
    if (opt.outlierScores)
        all.add(&outliers);
    if (opt.probeTokens > 0 && cfg.isMoe())
        all.add(&probe);
    all.add(extra);

    StreamOptions so;
    so.dtype = computeDtype(cfg, opt.dtype);
    so.maxBatchTokens = opt.maxBatchTokens;
    so.streaming = opt.streaming;
    so.recordGraph = recordGraph;
    int64_t numTokens = 0;
    for (const auto& s : sequences)
        numTokens += s.size(0);
    // The logits are not needed; Model::run computes them anyway (cheap next to the layers).
    model.run(sequences, so, LogitsSink(), &all, withThroughput(progress, numTokens));

    if (opt.dist && opt.dist->worldSize() > 1) {
        // Every accumulator is a plain sum (or a maximum) over tokens: reduce them, then derive
        // means and correlations from the totals exactly as a single process does.
        ReduceList r;
        routing.reduceWith(r);
        cosine.reduceWith(r);
        if (opt.activations)
            acts.reduceWith(r);
        if (opt.probeTokens > 0 && cfg.isMoe())
            probe.reduceWith(r);
        int64_t allTokens = 0;
        for (const auto& s : sequences)
            allTokens += s.size(0);
        r.sum(&allTokens, 1);
        r.run(*opt.dist, "calibration statistics");
        probe.dropEmpty();
        numTokens = allTokens;
    }
    routing.fill(st.layers);
    cosine.fill(st.layers);
    if (opt.activations)
        acts.fill(st.linears);
    if (opt.outlierScores)
        outliers.fill(st.linears);
    if (opt.probeTokens > 0 && cfg.isMoe())
        probe.fill(st.layers);
    st.provenance.numTokens = numTokens;
    st.provenance.computeDtype = dtypeString(so.dtype);
    st.provenance.device = "cpu";
    return st;
}

CalibStats calibrateTokens(const std::string& modelDir, const CalibTokens& tokens, const CalibrateOptions& opt,
                           const ProgressFn& progress)
{
    initRuntime(false);
    const std::vector<CalibWindow> windows
        = calibWindows(int64_t(tokens.ids.size()), opt.samples, opt.seqLen, opt.randomWindows, opt.seed);
    const int worldSize = opt.dist ? opt.dist->worldSize() : 1;
    MOEWB_CHECK(int64_t(windows.size()) >= worldSize, "calibration",
                windows.size(), " calibration windows cannot be shared by ", worldSize, " ranks (one at least each)");
    const Model model(modelDir);

    const at::Tensor all = at::tensor(at::ArrayRef<int32_t>(tokens.ids)).to(at::kLong);
    std::vector<at::Tensor> seqs;
    for (const auto& w : windows)
        seqs.push_back(all.slice(0, w.begin, w.end));
    TokenLayout layout = layoutOf(seqs);
    if (worldSize > 1) {
        // This rank's contiguous block of windows, at their global token offsets (the probe and
        // the domains are defined on global positions).
        const ShardRange sh = shardOf(int64_t(seqs.size()), opt.dist->rank(), worldSize);
        seqs = std::vector<at::Tensor>(seqs.begin() + sh.begin, seqs.begin() + sh.end);
        layout.offset = std::vector<int64_t>(layout.offset.begin() + sh.begin, layout.offset.begin() + sh.end);
        layout.length = std::vector<int64_t>(layout.length.begin() + sh.begin, layout.length.begin() + sh.end);
    }
    const bool haveDomains = !tokens.domains.empty();
    layout.numDomains = int64_t(tokens.domains.size());
    std::vector<int64_t> domainCounts(tokens.domains.size(), 0);
    if (haveDomains)
        for (const auto& w : windows)
            for (int64_t t = w.begin; t < w.end; ++t) {
                const int32_t d = tokens.domain[size_t(t)];
                layout.domain.push_back(d);
                domainCounts[size_t(d)] += 1;
            }

    MOEWB_CHECK(!opt.fisher || worldSize == 1, "calibration", "--fisher runs in one process (no --distributed)");
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    // The Fisher backward reuses the calibration forward's autograd graph when all layers'
    // activations fit in memory (engine/calib/fisher.h); otherwise it recomputes each layer.
    int64_t numTokens = 0;
    for (const at::Tensor& s : seqs)
        numTokens += s.size(0);
    const bool keepGraph = opt.fisher
        && fisherGraphBytes(model.config(), numTokens, opt.seqLen, computeDtype(model.config(), opt.dtype))
            <= fisherGraphBudget();
    LayerInputRecorder recorder(model.config(), keepGraph);
    CalibStats st = runCalibration(model, seqs, layout, opt, opt.fisher ? &recorder : nullptr, progress, keepGraph);
    const auto t1 = Clock::now();
    if (opt.fisher) {
        st.fisher.tokens = fisherBackward(model, recorder, opt.seed, st.linears, progress);
        st.fisher.labels = "sampled";
        st.fisher.seed = opt.seed;
    }
    if (opt.timings) {
        opt.timings->calibration = std::chrono::duration<double>(t1 - t0).count();
        opt.timings->fisher = std::chrono::duration<double>(Clock::now() - t1).count();
    }

    StatsProvenance& p = st.provenance;
    const ModelConfig& cfg = model.config();
    p.modelPath = modelDir;
    p.architecture = cfg.architecture;
    p.modelType = cfg.modelType;
    p.dataFiles = tokens.files;
    p.numSamples = int64_t(windows.size());
    p.seqLen = opt.seqLen;
    p.seed = opt.seed;
    p.randomWindows = opt.randomWindows;
    p.domains = tokens.domains;
    p.domainTokenCounts = domainCounts;
    p.toolVersion = version();
    p.created = opt.created.empty() ? utcTimestamp() : opt.created;

    p.dataDescription
        = calibDataDescription(tokens.files, int64_t(windows.size()), opt.seqLen, opt.randomWindows, opt.seed)
        + (haveDomains ? " (" + std::to_string(tokens.domains.size()) + " domains)" : "");

    nlohmann::json j;
    nlohmann::json data = nlohmann::json::array();
    for (const auto& d : opt.data)
        data.push_back({{"path", d.path}, {"domain", d.domain}});
    j["data"] = data;
    j["samples"] = opt.samples;
    j["seq_len"] = opt.seqLen;
    j["seed"] = opt.seed;
    j["random_windows"] = opt.randomWindows;
    j["probe_tokens"] = opt.probeTokens;
    j["dtype"] = opt.dtype;
    j["streaming"] = opt.streaming;
    j["max_batch_tokens"] = opt.maxBatchTokens;
    j["activations"] = opt.activations;
    j["outlier_scores"] = opt.outlierScores;
    if (opt.fisher)
        j["fisher"] = true;
    p.optionsJson = j.dump();
    return st;
}

CalibStats calibrate(const std::string& modelDir, const CalibrateOptions& opt, const TokenizeFn& tokenize,
                     const ProgressFn& progress)
{
    MOEWB_CHECK(opt.samples > 0, "calibration", "the number of samples must be positive, got ", opt.samples);
    MOEWB_CHECK(opt.seqLen > 0, "calibration", "the sequence length must be positive, got ", opt.seqLen);
    // Config first: a bad model directory is reported before any data is read.
    (void)loadConfig(modelDir);
    const CalibTokens tokens = loadCalibData(opt.data, tokenize);
    return calibrateTokens(modelDir, tokens, opt, progress);
}

std::vector<std::string> deadExpertNames(const std::string& modelDir, const CalibStats& stats)
{
    const ModelConfig cfg = loadConfig(modelDir);
    std::vector<std::string> out;
    for (const LayerStats& l : stats.layers) {
        if (!l.isMoe)
            continue;
        for (int64_t e : l.router.deadExperts) {
            std::string n = cfg.expertLinear(l.layer, e, "gate");
            out.push_back(n.substr(0, n.rfind('.')));
        }
    }
    return out;
}

} // namespace moewb
