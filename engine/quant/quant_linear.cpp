// SPDX-License-Identifier: MIT
#include "quant/quant_linear.h"

#include "moewb/core/error.h"
#include "quant/ggml_linear.h"
#include "quant/prune_linear.h"
#include "quant/gptq.h"
#include "quant/rtn.h"

#include <chrono>
#include <map>
#include <tuple>

namespace moewb {

double relativeOutputError(const at::Tensor& w, const at::Tensor& wq, const at::Tensor& h)
{
    const at::Tensor hf = h.to(at::kFloat);
    const at::Tensor w32 = w.to(at::kFloat);
    const at::Tensor dw = wq.to(at::kFloat) - w32;
    const double num = (dw.mm(hf) * dw).sum(at::kDouble).item<double>();
    const double den = (w32.mm(hf) * w32).sum(at::kDouble).item<double>();
    return den > 0 ? num / den : -1.0;
}

at::Tensor dequantHalfScales(const at::Tensor& q, const at::Tensor& scales, const at::Tensor& zeros,
                             const at::Tensor& gIdx)
{
    const at::Tensor idx = gIdx.to(at::kLong);
    const at::Tensor s = scales.to(at::kHalf).to(at::kFloat).index_select(1, idx);
    const at::Tensor z = zeros.to(at::kFloat).index_select(1, idx);
    return s * (q.to(at::kFloat) - z);
}

at::Tensor naturalGroupIndex(int64_t inFeatures, int64_t groupSize)
{
    const int64_t g = (groupSize <= 0 || groupSize > inFeatures) ? std::max<int64_t>(inFeatures, 1) : groupSize;
    return at::arange(inFeatures, at::kInt).div(g, "floor").to(at::kInt);
}

LinearQuantResult planResult(const PlanEntry& e)
{
    LinearQuantResult r;
    r.name = e.name;
    r.layer = e.layer;
    r.expert = e.expert;
    r.role = linearRoleName(e.role);
    r.plan = e;
    return r;
}

std::string expertFallbackReason(const PlanEntry& entry, int64_t tokens, int64_t minExpertTokens, bool balanced)
{
    if (entry.method != "gptq" || entry.expert < 0)
        return {};
    const char* what = balanced ? " calibration tokens after expert balancing" : " routed tokens";
    if (tokens <= 0)
        return balanced ? "no calibration tokens after expert balancing" : "no routed calibration tokens";
    if (tokens < minExpertTokens)
        return std::to_string(tokens) + what + " < min-expert-tokens " + std::to_string(minExpertTokens);
    return {};
}

namespace {

std::vector<QuantizedLinear> quantizeDenseLinears(const std::vector<LinearInput>& linears, const at::Tensor& h,
                                                  int64_t tokens, const QuantizeOptions& opt,
                                                  const std::function<bool()>& cancel)
{
    using clock = std::chrono::steady_clock;
    std::vector<QuantizedLinear> out(linears.size());
    // GPTQ linears grouped by settings: (bits, group, sym, act order, static groups) → indices.
    std::map<std::tuple<int64_t, int64_t, bool, bool, bool>, std::vector<size_t>> gptqSets;
    for (size_t i = 0; i < linears.size(); ++i) {
        const PlanEntry& e = *linears[i].entry;
        MOEWB_ASSERT(e.bits < 16);
        LinearQuantResult& r = out[i].result;
        r = planResult(e);
        r.tokens = h.defined() ? tokens : -1;
        MOEWB_CHECK(isValidQuantMethod(e.method), e.name, quantMethodProblem(e.method));
        r.fallback = expertFallbackReason(e, h.defined() ? tokens : 0, opt.minExpertTokens,
                                          opt.balanceExperts != ExpertBalance::Off);
        if (e.method == "gptq" && r.fallback.empty()) {
            MOEWB_CHECK(h.defined(), e.name, "method gptq needs calibration data");
            gptqSets[{e.bits, e.groupSize, e.sym, e.actOrder, e.staticGroups}].push_back(i);
        } else {
            const auto t0 = clock::now();
            RtnResult rtn = rtnQuantize(linears[i].weight, e.bits, e.groupSize, e.sym);
            out[i].q = std::move(rtn.q);
            out[i].scales = std::move(rtn.scales);
            out[i].zeros = std::move(rtn.zeros);
            out[i].gIdx = naturalGroupIndex(linears[i].weight.size(1), e.groupSize);
            r.method = "rtn";
            r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
        }
    }
    ProgressFn poll;
    if (cancel)
        poll = [&cancel](const Progress&) { return cancel(); };
    for (const auto& [key, idx] : gptqSets) {
        GptqOptions g;
        std::tie(g.bits, g.groupSize, g.sym, g.actOrder, g.staticGroups) = key;
        g.dampPercent = opt.damp;
        g.blockSize = opt.blockSize;
        std::vector<at::Tensor> ws;
        int64_t rows = 0;
        for (size_t i : idx) {
            ws.push_back(linears[i].weight);
            rows += linears[i].weight.size(0);
        }
        const auto t0 = clock::now();
        const GptqResult res = gptqQuantize(ws.size() == 1 ? ws[0] : at::cat(ws), h, g, poll);
        const double secs = std::chrono::duration<double>(clock::now() - t0).count();
        int64_t row = 0;
        for (size_t i : idx) {
            const int64_t n = linears[i].weight.size(0);
            out[i].q = res.q.narrow(0, row, n).to(at::kInt).contiguous();
            out[i].scales = res.scales.narrow(0, row, n).to(at::kFloat).contiguous();
            out[i].zeros = res.zeros.narrow(0, row, n).to(at::kFloat).contiguous();
            out[i].gIdx = res.gIdx;
            row += n;
            LinearQuantResult& r = out[i].result;
            r.method = "gptq";
            r.dampUsed = res.dampUsed;
            r.dampLambda = res.dampLambda;
            r.seconds = secs * double(n) / double(rows); // the shared call, split by rows
        }
    }
    for (size_t i = 0; i < linears.size(); ++i) {
        QuantizedLinear& ql = out[i];
        ql.scales = ql.scales.to(at::kHalf).to(at::kFloat).contiguous(); // what the checkpoint can hold
        ql.stored = dequantHalfScales(ql.q, ql.scales, ql.zeros, ql.gIdx).to(linears[i].storeDtype).contiguous();
        if (h.defined() && tokens > 0)
            out[i].result.relError = relativeOutputError(linears[i].weight, out[i].stored, h);
    }
    return out;
}

} // namespace

std::vector<QuantizedLinear> quantizeLinears(const std::vector<LinearInput>& linears, const at::Tensor& h,
                                             int64_t tokens, const QuantizeOptions& opt,
                                             const std::function<bool()>& cancel)
{
    // Linears the plan prunes (#14) take engine/quant/'s path; the others are quantized together.
    std::vector<QuantizedLinear> out(linears.size());
    std::vector<LinearInput> dense;
    std::vector<size_t> denseAt;
    for (size_t i = 0; i < linears.size(); ++i) {
        if (linears[i].entry->sparsity > 0) {
            out[i] = pruneLinear(linears[i], h, tokens, opt, cancel);
        } else if (!linears[i].entry->ggmlType.empty()) {
            out[i] = ggmlQuantizeLinear(linears[i], opt);
            out[i].result.tokens = h.defined() ? tokens : -1;
            if (h.defined() && tokens > 0)
                out[i].result.relError = relativeOutputError(linears[i].weight, out[i].stored, h);
        } else {
            dense.push_back(linears[i]);
            denseAt.push_back(i);
        }
    }
    if (!dense.empty()) {
        std::vector<QuantizedLinear> q = quantizeDenseLinears(dense, h, tokens, opt, cancel);
        for (size_t j = 0; j < q.size(); ++j)
            out[denseAt[j]] = std::move(q[j]);
    }
    return out;
}

} // namespace moewb
