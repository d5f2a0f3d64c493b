// SPDX-License-Identifier: MIT
// The heuristic bit-allocation strategies (ALGORITHMS.md A.4, C.2-C.4). See moewb/alloc/allocate.h
// for the budget and the low/high ladder.
#include "moewb/alloc/allocate.h"

#include "moewb/core/error.h"
#include "moewb/core/version.h"
#include "score/scores.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

namespace moewb {

const std::vector<StrategyInfo>& allocStrategies()
{
    static const std::vector<StrategyInfo> table = {
        {"uniform", "every linear at the largest width whose model fits the budget"},
        {"attn-ffn", "attention first, then dense/shared MLPs, then routed experts (paper 000 H1)"},
        {"first-k", "the first k MoE blocks (all their experts) higher (H2); --k"},
        {"frequency", "most-routed experts higher (H3); --per-layer N for top-N in every layer"},
        {"shared", "shared experts higher (H4); needs a model with shared experts"},
        {"outlier", "linears with the highest weight outlier score higher (H6); --top-p"},
        {"block", "MoE blocks with the lowest input/output cosine higher (H7); --k"},
        {"moqa", "experts by MoQa significance: usage x input energy x non-redundancy (paper 002)"},
        {"random", "random experts higher, seeded baseline (H8); --seed, --per-layer"},
        {"budget", "minimal activation-weighted RTN error under the byte budget (knapsack)"},
    };
    return table;
}

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

} // namespace

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
    const std::string& s = opt.strategy;
    bool known = false;
    for (const StrategyInfo& si : allocStrategies())
        known = known || s == si.name;
    MOEWB_CHECK(known, "strategy", "unknown strategy '", s, "'");
    MOEWB_CHECK(s != "budget", "strategy", "'budget' needs measured errors (allocateBudget)");
    MOEWB_CHECK(isValidGroupSize(opt.groupSize), "allocation", groupSizeProblem(opt.groupSize));

    AllocResult res;
    res.budgetBytes = budgetBytesFor(cfg, opt);
    const int64_t fixed = fixedModelBytes(cfg);
    const int64_t linBudget = res.budgetBytes - fixed;
    std::vector<PlanEntry> es = baseEntries(cfg, opt, 2);
    MOEWB_CHECK(linearsBytes(es) <= linBudget, "budget", "the budget (", res.budgetBytes,
                " bytes) is below the all-2-bit model (", linearsBytes(es) + fixed, " bytes)");

    auto setAll = [&](int64_t b) {
        for (PlanEntry& e : es)
            e.bits = b;
    };
    // Ladder: the papers mix 2/4 bits; above 4 bits the mix is 4/8, above 8 it is 8/16.
    int64_t low = 2, high = 4;
    for (auto [lo, hi] : {std::pair<int64_t, int64_t>{4, 8}, {8, 16}}) {
        setAll(lo);
        if (linearsBytes(es) <= linBudget)
            low = lo, high = hi;
    }
    setAll(low);

    std::vector<Unit> units;
    bool stopAtK = false; // first-k / block with --k: exactly the first k units, no more
    if (s == "uniform") {
        int64_t best = 2;
        for (int64_t b : {2, 3, 4, 8, 16}) {
            setAll(b);
            if (linearsBytes(es) <= linBudget)
                best = b;
        }
        setAll(best);
    } else if (s == "attn-ffn") {
        std::map<int64_t, Unit> attn, mlp;
        for (size_t i = 0; i < es.size(); ++i) {
            if (isAttn(es[i].role))
                attn[es[i].layer].idx.push_back(i);
            else if (isShared(es[i].role) || isDense(es[i].role))
                mlp[es[i].layer].idx.push_back(i);
        }
        for (auto& [l, u] : attn)
            units.push_back({u.idx, 3e6 - double(l)});
        for (auto& [l, u] : mlp)
            units.push_back({u.idx, 2e6 - double(l)});
        for (auto& [key, idx] : expertUnits(es))
            units.push_back({idx, 1e6 - double(key.first) * 1e3 - double(key.second) * 1e-3});
    } else if (s == "first-k" || s == "block") {
        std::vector<double> cos;
        if (s == "block") {
            checkStatsMatch(cfg, stats);
            cos = moeBlockCosine(stats);
        }
        for (auto& [l, idx] : blockUnits(cfg, es)) {
            double pr = -double(l);
            if (s == "block") {
                const double c = cos[size_t(l)];
                pr = std::isfinite(c) ? -c : -1e9;
            }
            units.push_back({idx, pr});
        }
        MOEWB_CHECK(!units.empty(), s, "the model has no MoE blocks");
        stopAtK = opt.k >= 0;
    } else if (s == "frequency" || s == "moqa" || s == "random") {
        if (s != "random")
            checkStatsMatch(cfg, stats);
        const auto eu = expertUnits(es);
        MOEWB_CHECK(!eu.empty(), s, "the model has no routed experts");
        std::map<int64_t, std::vector<double>> sig;
        std::vector<size_t> order(eu.size());
        std::iota(order.begin(), order.end(), size_t(0));
        std::vector<double> randomRank(eu.size(), 0.0);
        if (s == "random") {
            seededShuffle(order, opt.seed);
            for (size_t r = 0; r < order.size(); ++r)
                randomRank[order[r]] = double(order.size() - r);
        }
        for (size_t u = 0; u < eu.size(); ++u) {
            const auto [l, e] = eu[u].first;
            double pr = randomRank[u];
            if (s == "frequency") {
                const RouterStats* r = stats.router(l);
                pr = r->tokens > 0 ? double(r->expertTokens[size_t(e)]) / double(r->tokens) : 0.0;
            } else if (s == "moqa") {
                if (!sig.count(l))
                    sig[l] = moqaSignificance(stats, l);
                pr = sig[l][size_t(e)];
            }
            units.push_back({eu[u].second, pr});
        }
        if (opt.perLayer >= 0) {
            // Keep only the top-N experts of every layer (ties: lower expert index).
            std::map<int64_t, std::vector<size_t>> perL;
            for (size_t u = 0; u < eu.size(); ++u)
                perL[eu[u].first.first].push_back(u);
            std::vector<Unit> kept;
            for (auto& [l, us] : perL) {
                std::stable_sort(us.begin(), us.end(),
                                 [&](size_t a, size_t b) { return units[a].priority > units[b].priority; });
                for (size_t i = 0; i < us.size() && int64_t(i) < opt.perLayer; ++i)
                    kept.push_back(units[us[i]]);
            }
            units = kept;
        }
    } else if (s == "shared") {
        MOEWB_CHECK(cfg.hasSharedExpert(), "shared", "the model (", cfg.architecture,
                    ") has no shared experts; use attn-ffn or frequency instead");
        std::map<int64_t, Unit> sh;
        for (size_t i = 0; i < es.size(); ++i)
            if (isShared(es[i].role))
                sh[es[i].layer].idx.push_back(i);
        for (auto& [l, u] : sh)
            units.push_back({u.idx, -double(l)});
    } else if (s == "outlier") {
        std::map<std::string, float> score;
        for (const LinearStats& li : stats.linears)
            score[li.name] = li.outlierScore;
        size_t withScore = 0;
        for (size_t i = 0; i < es.size(); ++i) {
            auto it = score.find(es[i].name);
            const double sc = it == score.end() || !std::isfinite(it->second) ? -1e30 : double(it->second);
            withScore += sc > -1e30;
            units.push_back({{i}, sc});
        }
        MOEWB_CHECK(withScore > 0, "outlier", "the stats hold no weight outlier scores");
        if (opt.topP >= 0) {
            MOEWB_CHECK(opt.topP <= 1.0, "outlier", "--top-p ", opt.topP, " outside [0, 1]");
            std::stable_sort(units.begin(), units.end(),
                             [](const Unit& a, const Unit& b) { return a.priority > b.priority; });
            units.resize(size_t(std::ceil(opt.topP * double(units.size()))));
        }
    }

    std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) { return a.priority > b.priority; });
    if (stopAtK && size_t(opt.k) < units.size())
        units.resize(size_t(opt.k));
    int64_t cur = linearsBytes(es);
    size_t raised = 0, skipped = 0;
    for (const Unit& u : units) {
        int64_t delta = 0;
        for (size_t i : u.idx)
            delta += gptqLinearBytes(es[i].inFeatures, es[i].outFeatures, high, es[i].groupSize)
                - gptqLinearBytes(es[i].inFeatures, es[i].outFeatures, es[i].bits, es[i].groupSize);
        if (cur + delta > linBudget) {
            ++skipped;
            continue;
        }
        for (size_t i : u.idx)
            es[i].bits = high;
        cur += delta;
        ++raised;
    }
    if (s != "uniform") {
        std::ostringstream os;
        os << s << ": base " << low << " bits, " << raised << " of " << units.size() << " units raised to " << high
           << " bits";
        if (skipped)
            os << " (" << skipped << " did not fit the budget)";
        res.notes.push_back(os.str());
    }
    res.entries = std::move(es);
    res.size = planSize(res.entries, cfg);
    MOEWB_ASSERT(res.size.modelBytes <= res.budgetBytes);
    return res;
}

Plan planFromAllocation(const AllocResult& r, const AllocOptions& opt)
{
    Plan p;
    std::map<int64_t, int64_t> count;
    for (const PlanEntry& e : r.entries)
        count[e.bits] += 1;
    int64_t common = 4, best = -1;
    for (auto [b, c] : count)
        if (c > best)
            best = c, common = b;
    p.defaults.bits = common;
    p.defaults.groupSize = opt.groupSize;
    p.defaults.sym = opt.sym;
    p.defaults.method = opt.method;
    for (const PlanEntry& e : r.entries)
        if (e.bits != common)
            p.overrides[e.name].bits = e.bits;
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
