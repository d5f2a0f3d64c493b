// SPDX-License-Identifier: MIT
// Budgets in GGUF file bytes (moewb/workflow/gguf_budget.h).
#include "moewb/workflow/gguf_budget.h"

#include "gguf/gguf_quants.h"
#include "moewb/core/error.h"
#include "moewb/plan/target_groups.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace moewb {

namespace {

int64_t alignUp(int64_t x, int64_t a)
{
    return (x + a - 1) / a * a;
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
    out.plan.target = PlanTarget::Gguf;
    setSource(out.plan, source);
    out.fileBytes = settleSize(modelDir, out.plan, gopt);
    return out;
}

GgufBudgetResult ggufBudgetPlan(const std::string& modelDir, const ModelConfig& cfg, const GgmlErrorTable& errors,
                                const AllocOptions& opt, int64_t targetFileBytes, const std::string& tokenEmbdType,
                                const std::string& outputType, const PlanProvenance& source,
                                const GgufExportOptions& gopt)
{
    MOEWB_CHECK(errors.costModel != CostModel::Fisher || (tokenEmbdType != "auto" && outputType != "auto"), "budget",
                "token_embd / output type 'auto' needs the proxy cost model (the Fisher cost measures no "
                "embedding error); give them a type or use the proxy");
    const GgufBudgetItems b = ggufBudgetItems(cfg, errors, tokenEmbdType, outputType, gopt);
    std::vector<PlanEntry> entries = expandPlan(Plan{}, cfg);
    MOEWB_CHECK(entries.size() == errors.linears.size(), "budget", "the error table has ", errors.linears.size(),
                " linears, the model ", entries.size());
    auto planOf = [&](const std::vector<int>& choice) {
        AllocResult r;
        for (size_t g = 0; g < b.groups.size(); ++g)
            for (size_t i : b.groups[g]) {
                entries[i].ggmlType = errors.types[size_t(choice[g])];
                entries[i].bits = ggufBitsOfType(entries[i].ggmlType);
                entries[i].method = "rtn";
            }
        r.entries = entries;
        r.size = planSize(r.entries, cfg);
        r.ggufTokenEmbd = b.tokenEmbdTypes[size_t(choice[b.groups.size()])];
        r.ggufOutput = b.outputTypes[size_t(choice[b.groups.size() + 1])];
        Plan p = planFromAllocation(r, opt);
        p.provenance.targetBytes = targetFileBytes;
        p.provenance.params = "target=gguf";
        p.target = PlanTarget::Gguf;
        setSource(p, source);
        return p;
    };
    std::vector<int> lowest(b.items.size());
    int64_t cheapest = 0;
    for (size_t g = 0; g < b.items.size(); ++g) {
        const auto& bytes = b.items[g].bytes;
        lowest[g] = int(std::min_element(bytes.begin(), bytes.end()) - bytes.begin());
        cheapest += bytes[size_t(lowest[g])];
    }
    Plan low = planOf(lowest);
    const int64_t fixed = int64_t(settleSize(modelDir, low, gopt)) - cheapest;
    MOEWB_CHECK(fixed + cheapest <= targetFileBytes, "budget", "the smallest GGUF of this model is ",
                fixed + cheapest, " bytes, more than the target ", targetFileBytes);
    GgufBudgetResult out;
    int64_t budget = targetFileBytes - fixed;
    // The embedded plan (its rules) changes the metadata's size with the choice: shrink the budget by
    // the overshoot plus a margin that doubles each round until the planned file fits.
    for (int round = 0; round < 24; ++round) {
        const auto ts = std::chrono::steady_clock::now();
        const std::vector<int> choice = solveKnapsack(b.items, budget);
        out.solveSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
        out.plan = planOf(choice);
        out.fileBytes = settleSize(modelDir, out.plan, gopt);
        out.error = 0;
        for (size_t g = 0; g < b.items.size(); ++g)
            out.error += b.items[g].error[size_t(choice[g])];
        if (int64_t(out.fileBytes) <= targetFileBytes)
            return out;
        budget -= int64_t(out.fileBytes) - targetFileBytes + (int64_t(gopt.alignment) << round);
    }
    out.plan = low;
    out.fileBytes = settleSize(modelDir, out.plan, gopt);
    out.notes.push_back("the knapsack did not settle under the target; wrote the smallest plan");
    return out;
}

GgufBudgetItems ggufBudgetItems(const ModelConfig& cfg, const GgmlErrorTable& errors, const std::string& tokenEmbdType,
                                const std::string& outputType, const GgufExportOptions& gopt)
{
    const std::vector<LinearInfo> linears = quantizableLinears(cfg);
    MOEWB_CHECK(errors.linears.size() == linears.size(), "budget", "the error table has ", errors.linears.size(),
                " linears, the model ", linears.size());
    for (size_t i = 0; i < linears.size(); ++i)
        MOEWB_CHECK(errors.linears[i].name == linears[i].name, "budget", "error table row ", i, " is ",
                    errors.linears[i].name, ", expected ", linears[i].name);
    std::vector<gguf::GgmlType> types;
    for (const std::string& n : errors.types) {
        gguf::GgmlType t;
        MOEWB_CHECK(gguf::ggmlTypeFromName(n, t) && gguf::ggmlCanQuantize(t), "budget",
                    "candidate type '" + n + "' is not encoded by moewb");
        types.push_back(t);
    }
    GgufBudgetItems b;
    b.groups = sharedWidthGroups(linears, PlanTarget::Gguf); // the file's tensors: a stack of experts or one linear
    auto tensorBytes = [&](gguf::GgmlType t, int64_t rows, int64_t cols) {
        return alignUp(gguf::ggmlRowBytes(gguf::rowFallbackType(t, cols), cols) * rows, gopt.alignment);
    };
    for (const std::vector<size_t>& g : b.groups) {
        KnapsackItem item;
        for (size_t c = 0; c < types.size(); ++c) {
            int64_t bytes = 0;
            double err = 0;
            for (size_t i : g) {
                bytes += gguf::ggmlRowBytes(gguf::rowFallbackType(types[c], linears[i].inFeatures),
                                            linears[i].inFeatures)
                    * linears[i].outFeatures;
                err += errors.linears[i].error[c];
            }
            item.bytes.push_back(alignUp(bytes, gopt.alignment));
            item.error.push_back(err);
        }
        b.items.push_back(std::move(item));
    }
    auto embeddingItem = [&](const GgmlTensorErrors& e, const std::string& fixed, std::vector<std::string>& names) {
        KnapsackItem item;
        for (size_t c = 0; c < types.size(); ++c) {
            if (fixed != "auto" && fixed != errors.types[c])
                continue;
            item.bytes.push_back(tensorBytes(types[c], cfg.vocabSize, cfg.hiddenSize));
            // Fisher: the embeddings' squared perturbations are in other units than the linears'
            // predicted KL (their type is fixed then), so they add nothing to the plan's cost.
            item.error.push_back(errors.costModel == CostModel::Fisher ? 0.0 : e.error.at(c));
            names.push_back(errors.types[c]);
        }
        MOEWB_CHECK(!item.bytes.empty(), "budget", e.name, ": type '", fixed, "' is not among the candidates");
        b.items.push_back(std::move(item));
    };
    embeddingItem(errors.tokenEmbd, tokenEmbdType, b.tokenEmbdTypes);
    embeddingItem(errors.output, outputType, b.outputTypes);
    return b;
}

int64_t ggufBytesForBits(const std::string& modelDir, const ModelConfig& cfg, double bits, const AllocOptions& opt,
                         const GgufExportOptions& gopt)
{
    std::vector<int64_t> widths = opt.candidates;
    std::sort(widths.begin(), widths.end());
    MOEWB_CHECK(!widths.empty() && bits >= double(widths.front()) - 1e-9 && bits <= double(widths.back()) + 1e-9,
                "budget", "average bits ", bits, " outside the candidate widths ", widths.front(), "..", widths.back());
    auto uniformBytes = [&](int64_t w) {
        AllocOptions u = opt;
        u.strategy = "uniform";
        u.targetBits = double(w);
        u.targetBytes = 0;
        u.target = PlanTarget::Gguf;
        return double(ggufPlanFromAllocation(modelDir, allocate(cfg, CalibStats{}, u), u, {}, gopt).fileBytes);
    };
    size_t hi = 0;
    while (double(widths[hi]) < bits - 1e-9)
        ++hi;
    if (std::abs(double(widths[hi]) - bits) < 1e-9 || hi == 0)
        return int64_t(uniformBytes(widths[hi]));
    const double lo = uniformBytes(widths[hi - 1]), up = uniformBytes(widths[hi]);
    const double t = (bits - double(widths[hi - 1])) / double(widths[hi] - widths[hi - 1]);
    return int64_t(std::floor(lo + t * (up - lo)));
}

} // namespace moewb
