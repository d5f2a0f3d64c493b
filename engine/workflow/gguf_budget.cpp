// SPDX-License-Identifier: MIT
// Budgets in GGUF file bytes (moewb/workflow/gguf_budget.h).
#include "moewb/workflow/gguf_budget.h"

#include "gguf/gguf_quants.h"
#include "moewb/core/error.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace moewb {

namespace {

int64_t alignUp(int64_t x, int64_t a)
{
    return (x + a - 1) / a * a;
}

/// Bytes of one linear in the type of `bits` (the export's width fallback applied).
int64_t linearBytes(const LinearInfo& li, int64_t bits, gguf::GgmlType unquantized)
{
    gguf::GgmlType t = unquantized;
    const std::string name = ggufTypeForBits(bits);
    if (!name.empty()) {
        MOEWB_ASSERT(gguf::ggmlTypeFromName(name, t));
        t = gguf::rowFallbackType(t, li.inFeatures);
    }
    return gguf::ggmlRowBytes(t, li.inFeatures) * li.outFeatures;
}

/// Quantizable linears grouped as the file stores them: a stacked expert tensor, or one linear.
std::vector<std::vector<size_t>> fileTensors(const std::vector<LinearInfo>& linears)
{
    std::map<std::tuple<int64_t, LinearRole>, size_t> stackAt;
    std::vector<std::vector<size_t>> groups;
    for (size_t i = 0; i < linears.size(); ++i) {
        const LinearInfo& li = linears[i];
        if (li.expert >= 0) {
            auto [it, fresh] = stackAt.emplace(std::make_tuple(li.layer, li.role), groups.size());
            if (fresh)
                groups.emplace_back();
            groups[it->second].push_back(i);
        } else {
            groups.push_back({i});
        }
    }
    return groups;
}

AllocResult resultWithTypes(std::vector<PlanEntry> entries, const ModelConfig& cfg)
{
    AllocResult r;
    for (PlanEntry& e : entries)
        e.ggmlType = ggufTypeForBits(e.bits);
    r.entries = std::move(entries);
    r.size = planSize(r.entries, cfg);
    r.ggufTokenEmbd = kGgufBudgetTokenEmbd;
    r.ggufOutput = kGgufBudgetOutput;
    return r;
}

void setSource(Plan& p, const PlanProvenance& source)
{
    p.provenance.modelPath = source.modelPath;
    p.provenance.statsPath = source.statsPath;
    p.provenance.architecture = source.architecture;
    p.provenance.created = source.created;
}

/// The plan with its achieved file size in the provenance, and that size (a fixed point: the
/// size is written into the plan the file embeds).
uint64_t settleSize(const std::string& modelDir, Plan& plan, const GgufExportOptions& gopt)
{
    uint64_t size = ggufPlannedBytes(modelDir, plan, gopt);
    for (int i = 0; i < 4 && uint64_t(plan.provenance.achievedBytes) != size; ++i) {
        plan.provenance.achievedBytes = int64_t(size);
        size = ggufPlannedBytes(modelDir, plan, gopt);
    }
    return size;
}

} // namespace

std::string ggufTypeForBits(int64_t bits)
{
    switch (bits) {
    case 2: return "q2_k";
    case 3: return "q3_k";
    case 4: return "q4_k";
    case 8: return "q8_0";
    default: return "";
    }
}

GgufBudgetResult ggufPlanFromAllocation(const std::string& modelDir, const AllocResult& r, const AllocOptions& opt,
                                        const PlanProvenance& source, const GgufExportOptions& gopt)
{
    const ModelConfig cfg = loadConfig(modelDir);
    GgufBudgetResult out;
    out.plan = planFromAllocation(resultWithTypes(r.entries, cfg), opt);
    out.plan.provenance.params += (out.plan.provenance.params.empty() ? "" : " ") + std::string("target=gguf");
    setSource(out.plan, source);
    out.fileBytes = settleSize(modelDir, out.plan, gopt);
    return out;
}

GgufBudgetResult ggufBudgetPlan(const std::string& modelDir, const ModelConfig& cfg, const ErrorTable& errors,
                                const AllocOptions& opt, int64_t targetFileBytes, const PlanProvenance& source,
                                const GgufExportOptions& gopt)
{
    const gguf::GgmlType unq = gguf::floatTypeFromName(gopt.unquantizedType, "GGUF budget");
    std::vector<LinearInfo> linears;
    for (const LinearInfo& li : listLinears(cfg))
        if (isQuantizableRole(li.role))
            linears.push_back(li);
    MOEWB_CHECK(errors.linears.size() == linears.size(), "budget", "the error table has ", errors.linears.size(),
                " linears, the model ", linears.size());
    const std::vector<std::vector<size_t>> groups = fileTensors(linears);
    std::vector<KnapsackItem> items(groups.size());
    int64_t cheapest = 0;
    for (size_t g = 0; g < groups.size(); ++g) {
        for (size_t c = 0; c < errors.candidates.size(); ++c) {
            int64_t bytes = 0;
            double err = 0;
            for (size_t i : groups[g]) {
                bytes += linearBytes(linears[i], errors.candidates[c], unq);
                err += errors.linears[i].error[c];
            }
            items[g].bytes.push_back(alignUp(bytes, gopt.alignment));
            items[g].error.push_back(err);
        }
        cheapest += *std::min_element(items[g].bytes.begin(), items[g].bytes.end());
    }
    Plan base;
    base.defaults = {};
    std::vector<PlanEntry> entries = expandPlan(base, cfg);
    auto planOf = [&](const std::vector<int>& choice) {
        for (size_t g = 0; g < groups.size(); ++g)
            for (size_t i : groups[g])
                entries[i].bits = errors.candidates[size_t(choice[g])];
        Plan p = planFromAllocation(resultWithTypes(entries, cfg), opt);
        p.provenance.targetBytes = targetFileBytes;
        p.provenance.params = "target=gguf";
        setSource(p, source);
        return p;
    };
    std::vector<int> lowest(groups.size());
    for (size_t g = 0; g < groups.size(); ++g)
        lowest[g] = int(std::min_element(items[g].bytes.begin(), items[g].bytes.end()) - items[g].bytes.begin());
    Plan low = planOf(lowest);
    const int64_t fixed = int64_t(settleSize(modelDir, low, gopt)) - cheapest;
    MOEWB_CHECK(fixed + cheapest <= targetFileBytes, "budget", "the smallest GGUF of this model is ",
                fixed + cheapest, " bytes, more than the target ", targetFileBytes);
    GgufBudgetResult out;
    int64_t budget = targetFileBytes - fixed;
    for (int round = 0; round < 8; ++round) {
        out.plan = planOf(solveKnapsack(items, budget));
        out.fileBytes = settleSize(modelDir, out.plan, gopt);
        if (int64_t(out.fileBytes) <= targetFileBytes)
            return out;
        budget -= int64_t(out.fileBytes) - targetFileBytes;
    }
    out.plan = low;
    out.fileBytes = settleSize(modelDir, out.plan, gopt);
    out.notes.push_back("the knapsack did not settle under the target; wrote the smallest plan");
    return out;
}

} // namespace moewb
