// SPDX-License-Identifier: MIT
// Multiple-choice knapsack for the budget strategy, and the error table around it.
#include "moewb/alloc/allocate.h"
#include "moewb/alloc/target_fit.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <numeric>
#include <queue>
#include <sstream>

#include <unistd.h>

namespace moewb {

namespace {

// Cap on items x capacity cells of the exact DP (one byte of back-pointer per cell).
constexpr int64_t kMaxDpCells = int64_t(64) << 20;

std::vector<int> solveExact(const std::vector<KnapsackItem>& items, const std::vector<int64_t>& minBytes,
                            int64_t capacity, int64_t unit)
{
    const size_t n = items.size();
    const int64_t cap = capacity / unit;
    std::vector<double> dp(size_t(cap + 1), 0.0), next(size_t(cap + 1));
    std::vector<uint8_t> choice(n * size_t(cap + 1), 0);
    const double inf = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < n; ++i) {
        const KnapsackItem& it = items[i];
        uint8_t* ch = &choice[i * size_t(cap + 1)];
        for (int64_t c = 0; c <= cap; ++c) {
            double best = inf;
            uint8_t bo = 0;
            for (size_t o = 0; o < it.bytes.size(); ++o) {
                const int64_t w = (it.bytes[o] - minBytes[i]) / unit;
                if (w > c)
                    continue;
                const double v = dp[size_t(c - w)] + it.error[o];
                // Ties: fewer bytes, so the result is deterministic and lean.
                if (v < best || (v == best && it.bytes[o] < it.bytes[bo])) {
                    best = v;
                    bo = uint8_t(o);
                }
            }
            next[size_t(c)] = best;
            ch[c] = bo;
        }
        dp.swap(next);
    }
    std::vector<int> out(n);
    int64_t c = cap;
    for (size_t i = n; i-- > 0;) {
        const int o = choice[i * size_t(cap + 1) + size_t(c)];
        out[i] = o;
        c -= (items[i].bytes[size_t(o)] - minBytes[i]) / unit;
    }
    return out;
}

// Choice minimizing error + lambda * bytes per item; returns total bytes.
int64_t lagrangeChoose(const std::vector<KnapsackItem>& items, double lambda, std::vector<int>& out)
{
    int64_t total = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const KnapsackItem& it = items[i];
        int best = 0;
        double bv = it.error[0] + lambda * double(it.bytes[0]);
        for (size_t o = 1; o < it.bytes.size(); ++o) {
            const double v = it.error[o] + lambda * double(it.bytes[o]);
            if (v < bv || (v == bv && it.bytes[o] < it.bytes[size_t(best)])) {
                bv = v;
                best = int(o);
            }
        }
        out[i] = best;
        total += it.bytes[size_t(best)];
    }
    return total;
}

std::vector<int> solveLagrangian(const std::vector<KnapsackItem>& items, int64_t budget)
{
    std::vector<int> cur(items.size());
    if (lagrangeChoose(items, 0.0, cur) <= budget)
        return cur;
    double lo = 0.0, hi = 1e-12;
    while (lagrangeChoose(items, hi, cur) > budget) {
        lo = hi;
        hi *= 4.0;
        MOEWB_ASSERT(hi < 1e300);
    }
    std::vector<int> feasible = cur;
    for (int iter = 0; iter < 50 && hi > lo * (1.0 + 1e-12); ++iter) {
        const double mid = 0.5 * (lo + hi);
        if (lagrangeChoose(items, mid, cur) <= budget) {
            hi = mid;
            feasible = cur;
        } else {
            lo = mid;
        }
    }
    // Greedy fill of what the multiplier left: best error drop per extra byte first, re-evaluating
    // an item after each of its upgrades.
    int64_t used = 0;
    for (size_t i = 0; i < items.size(); ++i)
        used += items[i].bytes[size_t(feasible[i])];
    int64_t left = budget - used;
    struct Up {
        double ratio;
        size_t item;
        int option;
        bool operator<(const Up& o) const { return ratio < o.ratio; }
    };
    auto bestUp = [&](size_t i, Up& up) {
        const KnapsackItem& it = items[i];
        const int c = feasible[i];
        bool found = false;
        for (size_t o = 0; o < it.bytes.size(); ++o) {
            const int64_t db = it.bytes[o] - it.bytes[size_t(c)];
            const double de = it.error[size_t(c)] - it.error[o];
            if (db <= 0 || de <= 0 || db > left)
                continue;
            const double r = de / double(db);
            if (!found || r > up.ratio) {
                up = {r, i, int(o)};
                found = true;
            }
        }
        return found;
    };
    std::priority_queue<Up> heap;
    for (size_t i = 0; i < items.size(); ++i) {
        Up u{};
        if (bestUp(i, u))
            heap.push(u);
    }
    while (!heap.empty() && left > 0) {
        const Up u = heap.top();
        heap.pop();
        const int64_t db = items[u.item].bytes[size_t(u.option)] - items[u.item].bytes[size_t(feasible[u.item])];
        if (db > left) {
            Up again{};
            if (bestUp(u.item, again))
                heap.push(again);
            continue;
        }
        feasible[u.item] = u.option;
        left -= db;
        Up again{};
        if (bestUp(u.item, again))
            heap.push(again);
    }
    return feasible;
}

} // namespace

std::vector<int> solveKnapsack(const std::vector<KnapsackItem>& items, int64_t budget, SolverMethod method)
{
    std::vector<int64_t> minBytes(items.size());
    int64_t minTotal = 0;
    int64_t unit = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const KnapsackItem& it = items[i];
        MOEWB_ASSERT(!it.bytes.empty() && it.bytes.size() == it.error.size() && it.bytes.size() < 256);
        minBytes[i] = *std::min_element(it.bytes.begin(), it.bytes.end());
        minTotal += minBytes[i];
        for (int64_t b : it.bytes)
            unit = std::gcd(unit, b - minBytes[i]);
    }
    MOEWB_CHECK(minTotal <= budget, "budget", "the budget (", budget, " bytes) is below the smallest choice (",
                minTotal, " bytes)");
    if (unit == 0) // every item has one size: the cheapest (least-error) choices are the only ones
        unit = 1;
    const int64_t capacity = budget - minTotal;
    const int64_t cells = int64_t(items.size()) * (capacity / unit + 1);
    const bool exact = method == SolverMethod::Exact || (method == SolverMethod::Auto && cells <= kMaxDpCells);
    if (exact) {
        MOEWB_CHECK(cells <= 8 * kMaxDpCells, "budget solver", "instance too large for the exact solver");
        return solveExact(items, minBytes, capacity, unit);
    }
    return solveLagrangian(items, budget);
}

AllocResult allocateBudget(const ModelConfig& cfg, const ErrorTable& errors, const AllocOptions& opt)
{
    Plan p;
    p.defaults.bits = errors.candidates.empty() ? 4 : errors.candidates.front();
    p.defaults.groupSize = opt.groupSize;
    p.defaults.sym = opt.sym;
    p.defaults.method = opt.method;
    AllocResult res;
    res.entries = expandPlan(p, cfg);
    MOEWB_CHECK(errors.groupSize == opt.groupSize, "errors", "measured with group size ", errors.groupSize,
                ", the plan uses ", opt.groupSize);
    MOEWB_CHECK(errors.linears.size() == res.entries.size(), "errors", "table has ", errors.linears.size(),
                " linears, the model ", res.entries.size());
    res.budgetBytes = budgetBytesFor(cfg, opt);
    std::vector<KnapsackItem> items(res.entries.size());
    for (size_t i = 0; i < items.size(); ++i) {
        MOEWB_CHECK(errors.linears[i].name == res.entries[i].name, "errors", "row ", i, " is ",
                    errors.linears[i].name, ", expected ", res.entries[i].name);
        items[i].bytes = errors.linears[i].bytes;
        items[i].error = errors.linears[i].error;
    }
    const std::vector<int> pick = solveKnapsackInGroups(items, sharedWidthGroups(res.entries, opt.target),
                                                        res.budgetBytes - fixedModelBytes(cfg));
    for (size_t i = 0; i < items.size(); ++i)
        res.entries[i].bits = errors.candidates[size_t(pick[i])];
    res.size = planSize(res.entries, cfg);
    MOEWB_ASSERT(res.size.modelBytes <= res.budgetBytes);
    double err = 0;
    for (size_t i = 0; i < items.size(); ++i)
        err += items[i].error[size_t(pick[i])];
    std::ostringstream os;
    if (errors.costModel == CostModel::Fisher)
        os << "budget: cost model fisher, predicted KL divergence " << err << " nats/token (sum over linears)";
    else
        os << "budget: cost model proxy (activation-weighted RTN error), total weighted error " << err;
    res.notes.push_back(os.str());
    return res;
}

void saveErrorTable(const ErrorTable& t, const std::string& path)
{
    nlohmann::ordered_json j;
    j["format"] = "moewb-alloc-errors";
    j["version"] = 1;
    j["candidates"] = t.candidates;
    j["group_size"] = t.groupSize;
    j["sym"] = t.sym;
    j["cost_model"] = costModelName(t.costModel);
    j["linears"] = nlohmann::ordered_json::array();
    for (const LinearErrors& l : t.linears)
        j["linears"].push_back({{"name", l.name}, {"bytes", l.bytes}, {"error", l.error}});
    writeFileAtomically(path, j.dump() + "\n");
}

ErrorTable loadErrorTable(const std::string& path)
{
    const std::string text = readFileBytes(path);
    ErrorTable t;
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        MOEWB_CHECK(j.value("format", "") == "moewb-alloc-errors" && j.value("version", 0) == 1, path,
                    "not a moewb error table (format moewb-alloc-errors, version 1)");
        t.candidates = j.at("candidates").get<std::vector<int64_t>>();
        t.groupSize = j.at("group_size").get<int64_t>();
        t.sym = j.at("sym").get<bool>();
        // Tables written before the Fisher cost model have no "cost_model": they hold the proxy.
        const std::string model = j.value("cost_model", "proxy");
        MOEWB_CHECK(model == "fisher" || model == "proxy", path, "unknown cost_model '", model, "'");
        t.costModel = parseCostModel(model);
        for (const auto& l : j.at("linears")) {
            LinearErrors e;
            e.name = l.at("name").get<std::string>();
            e.bytes = l.at("bytes").get<std::vector<int64_t>>();
            e.error = l.at("error").get<std::vector<double>>();
            MOEWB_CHECK(e.bytes.size() == t.candidates.size() && e.error.size() == t.candidates.size(), path,
                        e.name, ": expected ", t.candidates.size(), " values");
            t.linears.push_back(std::move(e));
        }
    } catch (const nlohmann::json::exception& e) {
        throw InputError(path, std::string("bad error table: ") + e.what());
    }
    return t;
}

} // namespace moewb
