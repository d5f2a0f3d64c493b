// SPDX-License-Identifier: MIT
// Error measurement of the budget strategy: streams one weight at a time (a DeepSeek-V3 checkpoint
// does not fit in memory), quantizes it with RTN at every candidate width and weights the error by
// the input second moments and either the Fisher diagonal at the linear's output (predicted KL
// divergence) or the expert's routing frequency (the proxy). docs/allocation.md derives both.
#include "moewb/alloc/allocate.h"

#include "alloc/linear_cost.h"
#include "model/weights.h"
#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"
#include "quant/rtn.h"

#include <map>

namespace moewb {

const char* costModelName(CostModel m)
{
    switch (m) {
    case CostModel::Fisher:
        return "fisher";
    case CostModel::Proxy:
        return "proxy";
    default:
        return "auto";
    }
}

CostModel parseCostModel(const std::string& name)
{
    if (name == "auto")
        return CostModel::Auto;
    if (name == "fisher")
        return CostModel::Fisher;
    if (name == "proxy")
        return CostModel::Proxy;
    throw InputError("cost model", "unknown cost model '" + name + "' (use auto, fisher or proxy)");
}

double weightedRtnError(const at::Tensor& w, int64_t bits, int64_t groupSize, const at::Tensor& rowWeight,
                        const at::Tensor& colWeight)
{
    if (bits >= 16)
        return 0.0;
    const at::Tensor wf = w.to(at::kFloat);
    const at::Tensor d = (wf - rtnQuantize(wf, bits, groupSize, false).dequant).to(at::kDouble);
    at::Tensor d2 = d * d;
    if (colWeight.defined())
        d2 = d2 * colWeight.to(at::kDouble).unsqueeze(0);
    at::Tensor perRow = d2.sum(1);
    if (rowWeight.defined())
        perRow = perRow * rowWeight.to(at::kDouble);
    return perRow.sum().item<double>();
}

namespace {

/// A float vector of the statistics as a tensor (undefined unless it has exactly n values).
at::Tensor statVector(const std::vector<float>& v, int64_t n)
{
    if (int64_t(v.size()) != n)
        return {};
    return at::from_blob(const_cast<float*>(v.data()), {n}, at::kFloat).to(at::kDouble);
}

/// Proxy row weight: the share of router tokens routed to the expert (1 for dense linears).
double usageOf(const LinearInfo& li, const CalibStats& stats)
{
    if (li.expert < 0)
        return 1.0;
    const RouterStats* r = stats.router(li.layer);
    return (r && r->tokens > 0 && li.expert < r->numExperts)
        ? double(r->expertTokens[size_t(li.expert)]) / double(r->tokens)
        : 0.0;
}

} // namespace

CostModel effectiveCostModel(CostModel requested, const CalibStats& stats)
{
    if (requested == CostModel::Auto)
        return stats.hasFisher() ? CostModel::Fisher : CostModel::Proxy;
    return requested;
}

CostModel resolveCostModel(CostModel requested, const CalibStats& stats)
{
    const CostModel m = effectiveCostModel(requested, stats);
    MOEWB_CHECK(m != CostModel::Fisher || stats.hasFisher(), "cost model",
                "the statistics have no Fisher diagonal: run moewb calibrate --fisher");
    return m;
}

ErrorTable measureErrors(const std::string& modelDir, const ModelConfig& cfg, const CalibStats& stats,
                         int64_t groupSize, const std::vector<int64_t>& candidates, const ProgressFn& progress,
                         CostModel model)
{
    MOEWB_CHECK(!candidates.empty(), "errors", "no candidate bit-widths");
    for (int64_t b : candidates)
        MOEWB_CHECK(isValidBits(b), "candidate bit-widths", bitsProblem(b));
    std::map<std::string, const LinearStats*> byName;
    for (const LinearStats& l : stats.linears)
        byName[l.name] = &l;
    const Checkpoint ckpt = Checkpoint::open(modelDir);

    ErrorTable t;
    t.candidates = candidates;
    t.groupSize = groupSize;
    t.sym = false;
    t.costModel = resolveCostModel(model, stats);
    const bool fisher = t.costModel == CostModel::Fisher;
    const std::vector<LinearInfo> lin = quantizableLinears(cfg);
    for (size_t i = 0; i < lin.size(); ++i) {
        const LinearInfo& li = lin[i];
        report(progress, "measure quantization error", int64_t(i), int64_t(lin.size()), li.name);
        LinearErrors row;
        row.name = li.name;
        const std::string wname = li.name + ".weight";
        at::Tensor w = loadTensor(ckpt, wname, at::kFloat);
        ckpt.release(wname);
        MOEWB_CHECK(w.dim() == 2 && w.size(0) == li.outFeatures && w.size(1) == li.inFeatures, wname,
                    "unexpected shape");
        const auto it = byName.find(li.name);
        const LinearStats* ls = it == byName.end() ? nullptr : it->second;
        const at::Tensor colWeight = ls ? statVector(ls->actSqMean, li.inFeatures) : at::Tensor(); // E[x_j²]
        at::Tensor rowWeight; // ½ F_i (Fisher) or undefined (proxy: scaled by usage below)
        if (fisher) {
            MOEWB_CHECK(ls && int64_t(ls->fisher.size()) == li.outFeatures, li.name,
                        "no Fisher diagonal in the statistics (run moewb calibrate --fisher)");
            rowWeight = 0.5 * statVector(ls->fisher, li.outFeatures);
        }
        const double scale = fisher ? 1.0 : usageOf(li, stats);
        for (int64_t b : candidates) {
            row.bytes.push_back(gptqLinearBytes(li.inFeatures, li.outFeatures, b, groupSize));
            row.error.push_back(scale * weightedRtnError(w, b, groupSize, rowWeight, colWeight));
        }
        t.linears.push_back(std::move(row));
    }
    report(progress, "measure quantization error", int64_t(lin.size()), int64_t(lin.size()));
    return t;
}

} // namespace moewb
