// SPDX-License-Identifier: MIT
// The heuristic bit-allocation strategies (docs/algorithms.md §6.1-6.2). See moewb/alloc/allocate.h
// for the budget and the low/high ladder.
#include "moewb/alloc/allocate.h"
#include "moewb/alloc/target_fit.h"

#include "moewb/core/error.h"
#include "moewb/core/version.h"
#include "alloc/gguf_presets.h"
#include "score/scores.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

namespace moewb {

namespace {

double budgetLinearBytes(const std::vector<PlanEntry>& entries, double bits)
{
    const int64_t lo = int64_t(std::floor(bits)), hi = int64_t(std::ceil(bits));
    const double f = bits - double(lo);
    double total = 0;
    for (const PlanEntry& e : entries) {
        const double a = double(gptqLinearBytes(e.inFeatures, e.outFeatures, lo, e.groupSize));
        const double b = double(gptqLinearBytes(e.inFeatures, e.outFeatures, hi, e.groupSize));
        total += a + f * (b - a);
    }
    return total;
}

std::vector<PlanEntry> baseEntries(const ModelConfig& cfg, const AllocOptions& opt, int64_t bits)
{
    Plan p;
    p.defaults.bits = bits;
    p.defaults.groupSize = opt.groupSize;
    p.defaults.sym = opt.sym;
    p.defaults.method = opt.method;
    return expandPlan(p, cfg);
}

int64_t linearsBytes(const std::vector<PlanEntry>& entries)
{
    int64_t b = 0;
    for (const PlanEntry& e : entries)
        b += gptqLinearBytes(e.inFeatures, e.outFeatures, e.bits, e.groupSize);
    return b;
}

struct Unit {
    std::vector<size_t> idx; ///< into entries
    double priority = 0;     ///< higher first
};

bool isAttn(LinearRole r)
{
    return r == LinearRole::Q || r == LinearRole::K || r == LinearRole::V || r == LinearRole::O;
}
bool isShared(LinearRole r)
{
    return r == LinearRole::SharedGateProj || r == LinearRole::SharedUp || r == LinearRole::SharedDown;
}
bool isDense(LinearRole r)
{
    return r == LinearRole::DenseGate || r == LinearRole::DenseUp || r == LinearRole::DenseDown;
}

// Experts as units, keyed (layer, expert), in entries order.
std::vector<std::pair<std::pair<int64_t, int64_t>, std::vector<size_t>>> expertUnits(const std::vector<PlanEntry>& es)
{
    std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> m;
    for (size_t i = 0; i < es.size(); ++i)
        if (es[i].expert >= 0)
            m[{es[i].layer, es[i].expert}].push_back(i);
    return {m.begin(), m.end()};
}

// A MoE block = routed + shared experts of one MoE layer.
std::vector<std::pair<int64_t, std::vector<size_t>>> blockUnits(const ModelConfig& cfg, const std::vector<PlanEntry>& es)
{
    std::map<int64_t, std::vector<size_t>> m;
    for (size_t i = 0; i < es.size(); ++i)
        if (cfg.isMoeLayer(es[i].layer) && (es[i].expert >= 0 || isShared(es[i].role)))
            m[es[i].layer].push_back(i);
    return {m.begin(), m.end()};
}

void checkStatsMatch(const ModelConfig& cfg, const CalibStats& stats)
{
    MOEWB_CHECK(stats.numLayers == cfg.numLayers, "stats", "have ", stats.numLayers, " layers, the model ",
                cfg.numLayers);
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        if (!cfg.isMoeLayer(l))
            continue;
        const RouterStats* r = stats.router(l);
        MOEWB_CHECK(r && r->numExperts == cfg.numExperts, "stats",
                    "layer ", l, " routing statistics do not match the model (", cfg.numExperts, " experts)");
    }
}

// Deterministic on every platform (std::shuffle's distribution is implementation-defined).
void seededShuffle(std::vector<size_t>& v, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    for (size_t i = v.size(); i > 1; --i) {
        const uint64_t bound = uint64_t(i);
        const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
        uint64_t x;
        do
            x = rng();
        while (x >= limit);
        std::swap(v[i - 1], v[size_t(x % bound)]);
    }
}

/// The low/high ladder a heuristic starts from (moewb/alloc/allocate.h): every linear at `low`.
struct Ladder {
    AllocResult res;
    std::vector<PlanEntry> es;
    int64_t linBudget = 0;
    int64_t low = 2, high = 4;
};

void setBits(std::vector<PlanEntry>& es, int64_t bits)
{
    for (PlanEntry& e : es)
        e.bits = bits;
}

Ladder startLadder(const ModelConfig& cfg, const AllocOptions& opt)
{
    Ladder l;
    l.res.budgetBytes = budgetBytesFor(cfg, opt);
    const int64_t fixed = fixedModelBytes(cfg);
    l.linBudget = l.res.budgetBytes - fixed;
    l.es = baseEntries(cfg, opt, 2);
    MOEWB_CHECK(linearsBytes(l.es) <= l.linBudget, "budget", "the budget (", l.res.budgetBytes,
                " bytes) is below the all-2-bit model (", linearsBytes(l.es) + fixed, " bytes)");
    // The papers mix 2/4 bits; above 4 bits the mix is 4/8, above 8 it is 8/16.
    for (auto [lo, hi] : {std::pair<int64_t, int64_t>{4, 8}, {8, 16}}) {
        setBits(l.es, lo);
        if (linearsBytes(l.es) <= l.linBudget)
            l.low = lo, l.high = hi;
    }
    setBits(l.es, l.low);
    return l;
}

AllocResult finishLadder(Ladder& l, const ModelConfig& cfg)
{
    l.res.entries = std::move(l.es);
    l.res.size = planSize(l.res.entries, cfg);
    MOEWB_ASSERT(l.res.size.modelBytes <= l.res.budgetBytes);
    return std::move(l.res);
}

void sortByPriority(std::vector<Unit>& units)
{
    std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) { return a.priority > b.priority; });
}

/// Raises the units to `high` in priority order while the budget allows; a note says how many.
void raiseUnits(Ladder& l, std::vector<Unit> units, const std::string& strategy)
{
    sortByPriority(units);
    std::vector<PlanEntry>& es = l.es;
    int64_t cur = linearsBytes(es);
    size_t raised = 0, skipped = 0;
    for (const Unit& u : units) {
        int64_t delta = 0;
        for (size_t i : u.idx)
            delta += gptqLinearBytes(es[i].inFeatures, es[i].outFeatures, l.high, es[i].groupSize)
                - gptqLinearBytes(es[i].inFeatures, es[i].outFeatures, es[i].bits, es[i].groupSize);
        if (cur + delta > l.linBudget) {
            ++skipped;
            continue;
        }
        for (size_t i : u.idx)
            es[i].bits = l.high;
        cur += delta;
        ++raised;
    }
    std::ostringstream os;
    os << strategy << ": base " << l.low << " bits, " << raised << " of " << units.size() << " units raised to "
       << l.high << " bits";
    if (skipped)
        os << " (" << skipped << " did not fit the budget)";
    l.res.notes.push_back(os.str());
}

// ------------------------------------------------------------------------------ the strategies

/// The priority list of a heuristic over the ladder's entries.
using UnitsFn = std::vector<Unit> (*)(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt,
                                      const std::vector<PlanEntry>& es);

template <UnitsFn units>
AllocResult allocateHeuristic(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt)
{
    Ladder l = startLadder(cfg, opt);
    raiseUnits(l, units(cfg, stats, opt, l.es), opt.strategy);
    return finishLadder(l, cfg);
}

/// Every linear at the largest width whose model fits (no ladder, no note).
AllocResult allocateUniform(const ModelConfig& cfg, const CalibStats&, const AllocOptions& opt)
{
    Ladder l = startLadder(cfg, opt);
    int64_t best = 2;
    for (int64_t b : {2, 3, 4, 8, 16}) {
        setBits(l.es, b);
        if (linearsBytes(l.es) <= l.linBudget)
            best = b;
    }
    setBits(l.es, best);
    return finishLadder(l, cfg);
}

std::vector<Unit> attnFfnUnits(const ModelConfig&, const CalibStats&, const AllocOptions&,
                               const std::vector<PlanEntry>& es)
{
    std::map<int64_t, Unit> attn, mlp;
    for (size_t i = 0; i < es.size(); ++i) {
        if (isAttn(es[i].role))
            attn[es[i].layer].idx.push_back(i);
        else if (isShared(es[i].role) || isDense(es[i].role))
            mlp[es[i].layer].idx.push_back(i);
    }
    std::vector<Unit> units;
    for (auto& [l, u] : attn)
        units.push_back({u.idx, 3e6 - double(l)});
    for (auto& [l, u] : mlp)
        units.push_back({u.idx, 2e6 - double(l)});
    for (auto& [key, idx] : expertUnits(es))
        units.push_back({idx, 1e6 - double(key.first) * 1e3 - double(key.second) * 1e-3});
    return units;
}

/// MoE blocks by priority (given per layer); with k >= 0 exactly the first k of them.
std::vector<Unit> blockRanking(const ModelConfig& cfg, const std::vector<PlanEntry>& es, const AllocOptions& opt,
                               const std::function<double(int64_t layer)>& priority)
{
    std::vector<Unit> units;
    for (auto& [l, idx] : blockUnits(cfg, es))
        units.push_back({idx, priority(l)});
    MOEWB_CHECK(!units.empty(), opt.strategy, "the model has no MoE blocks");
    if (opt.k >= 0) {
        sortByPriority(units);
        if (size_t(opt.k) < units.size())
            units.resize(size_t(opt.k));
    }
    return units;
}

std::vector<Unit> firstKUnits(const ModelConfig& cfg, const CalibStats&, const AllocOptions& opt,
                              const std::vector<PlanEntry>& es)
{
    return blockRanking(cfg, es, opt, [](int64_t l) { return -double(l); });
}

std::vector<Unit> blockCosineUnits(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt,
                                   const std::vector<PlanEntry>& es)
{
    checkStatsMatch(cfg, stats);
    const std::vector<double> cos = moeBlockCosine(stats);
    return blockRanking(cfg, es, opt, [&](int64_t l) {
        const double c = cos[size_t(l)];
        return std::isfinite(c) ? -c : -1e9;
    });
}

using ExpertUnits = std::vector<std::pair<std::pair<int64_t, int64_t>, std::vector<size_t>>>;

ExpertUnits routedExperts(const std::vector<PlanEntry>& es, const std::string& strategy)
{
    ExpertUnits eu = expertUnits(es);
    MOEWB_CHECK(!eu.empty(), strategy, "the model has no routed experts");
    return eu;
}

/// One unit per routed expert with its priority; with perLayer >= 0 only the top perLayer experts
/// of every layer (ties: lower expert index).
std::vector<Unit> expertRanking(const ExpertUnits& eu, const std::vector<double>& priority, int64_t perLayer)
{
    std::vector<Unit> units;
    for (size_t u = 0; u < eu.size(); ++u)
        units.push_back({eu[u].second, priority[u]});
    if (perLayer < 0)
        return units;
    std::map<int64_t, std::vector<size_t>> perL;
    for (size_t u = 0; u < eu.size(); ++u)
        perL[eu[u].first.first].push_back(u);
    std::vector<Unit> kept;
    for (auto& [l, us] : perL) {
        std::stable_sort(us.begin(), us.end(), [&](size_t a, size_t b) { return units[a].priority > units[b].priority; });
        for (size_t i = 0; i < us.size() && int64_t(i) < perLayer; ++i)
            kept.push_back(units[us[i]]);
    }
    return kept;
}

std::vector<Unit> frequencyUnits(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt,
                                 const std::vector<PlanEntry>& es)
{
    checkStatsMatch(cfg, stats);
    const ExpertUnits eu = routedExperts(es, opt.strategy);
    std::vector<double> pr;
    for (const auto& [key, idx] : eu) {
        const RouterStats* r = stats.router(key.first);
        pr.push_back(r->tokens > 0 ? double(r->expertTokens[size_t(key.second)]) / double(r->tokens) : 0.0);
    }
    return expertRanking(eu, pr, opt.perLayer);
}

std::vector<Unit> moqaUnits(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt,
                            const std::vector<PlanEntry>& es)
{
    checkStatsMatch(cfg, stats);
    const ExpertUnits eu = routedExperts(es, opt.strategy);
    std::map<int64_t, std::vector<double>> sig;
    std::vector<double> pr;
    for (const auto& [key, idx] : eu) {
        if (!sig.count(key.first))
            sig[key.first] = moqaSignificance(stats, key.first);
        pr.push_back(sig[key.first][size_t(key.second)]);
    }
    return expertRanking(eu, pr, opt.perLayer);
}

std::vector<Unit> randomUnits(const ModelConfig&, const CalibStats&, const AllocOptions& opt,
                              const std::vector<PlanEntry>& es)
{
    const ExpertUnits eu = routedExperts(es, opt.strategy);
    std::vector<size_t> order(eu.size());
    std::iota(order.begin(), order.end(), size_t(0));
    seededShuffle(order, opt.seed);
    std::vector<double> pr(eu.size(), 0.0);
    for (size_t r = 0; r < order.size(); ++r)
        pr[order[r]] = double(order.size() - r);
    return expertRanking(eu, pr, opt.perLayer);
}

std::vector<Unit> sharedUnits(const ModelConfig& cfg, const CalibStats&, const AllocOptions&,
                              const std::vector<PlanEntry>& es)
{
    MOEWB_CHECK(cfg.hasSharedExpert(), "shared", "the model (", cfg.architecture,
                ") has no shared experts; use attn-ffn or frequency instead");
    std::map<int64_t, Unit> sh;
    for (size_t i = 0; i < es.size(); ++i)
        if (isShared(es[i].role))
            sh[es[i].layer].idx.push_back(i);
    std::vector<Unit> units;
    for (auto& [l, u] : sh)
        units.push_back({u.idx, -double(l)});
    return units;
}

std::vector<Unit> outlierUnits(const ModelConfig&, const CalibStats& stats, const AllocOptions& opt,
                               const std::vector<PlanEntry>& es)
{
    std::map<std::string, float> score;
    for (const LinearStats& li : stats.linears)
        score[li.name] = li.outlierScore;
    std::vector<Unit> units;
    size_t withScore = 0;
    for (size_t i = 0; i < es.size(); ++i) {
        auto it = score.find(es[i].name);
        const double sc = it == score.end() || !std::isfinite(it->second) ? -1e30 : double(it->second);
        withScore += sc > -1e30;
        units.push_back({{i}, sc});
    }
    MOEWB_CHECK(withScore > 0, "outlier", "the statistics hold no weight outlier scores");
    if (opt.topP >= 0) {
        MOEWB_CHECK(opt.topP <= 1.0, "outlier", "the top fraction ", opt.topP, " is outside [0, 1]");
        sortByPriority(units);
        units.resize(size_t(std::ceil(opt.topP * double(units.size()))));
    }
    return units;
}

} // namespace

const std::vector<StrategyInfo>& allocStrategies()
{
    // name, description, needs stats, needs an error table, parameters, function
    static const std::vector<StrategyInfo> table = {
        {"uniform", "every linear at the largest width whose model fits the budget", false, false, 0,
         &allocateUniform},
        {"attn-ffn", "attention first, then dense/shared MLPs, then routed experts (paper 000 H1)", false, false, 0,
         &allocateHeuristic<attnFfnUnits>},
        {"first-k", "the first k MoE blocks (all their experts) higher (H2); --k", false, false, kParamK,
         &allocateHeuristic<firstKUnits>},
        {"frequency", "most-routed experts higher (H3); --per-layer N for top-N in every layer", true, false,
         kParamPerLayer, &allocateHeuristic<frequencyUnits>},
        {"shared", "shared experts higher (H4); needs a model with shared experts", false, false, 0,
         &allocateHeuristic<sharedUnits>},
        {"outlier", "linears with the highest weight outlier score higher (H6); --top-p", true, false, kParamTopP,
         &allocateHeuristic<outlierUnits>},
        {"block", "MoE blocks with the lowest input/output cosine higher (H7); --k", true, false, kParamK,
         &allocateHeuristic<blockCosineUnits>},
        {"moqa", "experts by MoQa significance: usage x input energy x non-redundancy (paper 002)", true, false,
         kParamPerLayer, &allocateHeuristic<moqaUnits>},
        {"random", "random experts higher, seeded baseline (H8); --seed, --per-layer", false, false,
         kParamSeed | kParamPerLayer, &allocateHeuristic<randomUnits>},
        {"budget", "minimal activation-weighted RTN error under the byte budget (knapsack)", true, true, 0, nullptr},
        {"gguf-q2_k", "llama.cpp's Q2_K mix as ggml types (docs/export-gguf.md); no size target", false, false, 0,
         &allocateGgufPreset, true},
        {"gguf-q3_k_m", "llama.cpp's Q3_K_M mix as ggml types; no size target", false, false, 0, &allocateGgufPreset, true},
        {"gguf-q4_k_m", "llama.cpp's Q4_K_M mix as ggml types; no size target", false, false, 0, &allocateGgufPreset, true},
        {"gguf-q5_k_m", "llama.cpp's Q5_K_M mix as ggml types; no size target", false, false, 0, &allocateGgufPreset, true},
        {"gguf-q6_k", "llama.cpp's Q6_K mix as ggml types; no size target", false, false, 0, &allocateGgufPreset, true},
    };
    return table;
}

const StrategyInfo* findStrategy(const std::string& name)
{
    for (const StrategyInfo& s : allocStrategies())
        if (name == s.name)
            return &s;
    return nullptr;
}

int64_t budgetBytesFor(const ModelConfig& cfg, const AllocOptions& opt)
{
    if (opt.targetBits <= 0.0) {
        MOEWB_CHECK(opt.targetBytes > 0, "budget", "give a target average bit-width or a byte budget");
        return opt.targetBytes;
    }
    MOEWB_CHECK(opt.targetBits >= 2.0 && opt.targetBits <= 16.0, "budget", "target bits ", opt.targetBits,
                " outside [2, 16]");
    const std::vector<PlanEntry> es = baseEntries(cfg, opt, 16);
    return int64_t(std::floor(budgetLinearBytes(es, opt.targetBits))) + fixedModelBytes(cfg);
}

AllocResult allocate(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt)
{
    const StrategyInfo* s = findStrategy(opt.strategy);
    MOEWB_CHECK(s, "strategy", "unknown strategy '", opt.strategy, "'");
    MOEWB_CHECK(s->run, "strategy", "'", s->name, "' needs measured quantization errors");
    MOEWB_CHECK(isValidGroupSize(opt.groupSize), "allocation", groupSizeProblem(opt.groupSize));
    MOEWB_CHECK(!s->fixedMix || opt.target != PlanTarget::Vllm, "strategy", "'", s->name,
                "' is a llama.cpp mix of ggml types: make it for llama.cpp (GGUF) or GPTQ, not vLLM");
    AllocResult r = s->run(cfg, stats, opt);
    if (!s->fixedMix)
        fitToTarget(r, cfg, opt);
    return r;
}

Plan planFromAllocation(const AllocResult& r, const AllocOptions& opt)
{
    Plan p;
    // The most common (bits, ggml type) becomes the defaults, every other linear an override.
    std::map<std::pair<int64_t, std::string>, int64_t> count;
    for (const PlanEntry& e : r.entries)
        count[{e.bits, e.ggmlType}] += 1;
    std::pair<int64_t, std::string> common{4, ""};
    int64_t best = -1;
    for (const auto& [k, c] : count)
        if (c > best)
            best = c, common = k;
    p.defaults.bits = common.first;
    p.defaults.ggmlType = common.second;
    p.defaults.groupSize = opt.groupSize;
    p.defaults.sym = opt.sym;
    p.defaults.method = r.ggufOutput.empty() ? opt.method : "rtn";
    for (const PlanEntry& e : r.entries) {
        if (e.bits != common.first)
            p.overrides[e.name].bits = e.bits;
        if (e.ggmlType != common.second)
            p.overrides[e.name].ggmlType = e.ggmlType;
    }
    p.ggufTokenEmbd = r.ggufTokenEmbd;
    p.ggufOutput = r.ggufOutput;
    p.target = opt.target;
    PlanProvenance& pv = p.provenance;
    pv.strategy = opt.strategy;
    pv.targetBits = opt.targetBits;
    pv.targetBytes = r.budgetBytes;
    pv.achievedBits = r.size.averageBits;
    pv.achievedBytes = r.size.modelBytes;
    pv.seed = int64_t(opt.seed);
    std::ostringstream params;
    if (opt.k >= 0)
        params << "k=" << opt.k << " ";
    if (opt.topP >= 0)
        params << "top_p=" << opt.topP << " ";
    if (opt.perLayer >= 0)
        params << "per_layer=" << opt.perLayer << " ";
    pv.params = params.str();
    if (!pv.params.empty())
        pv.params.pop_back();
    pv.toolVersion = version();
    return p;
}

} // namespace moewb
