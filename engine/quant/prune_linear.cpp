// SPDX-License-Identifier: MIT
#include "quant/prune_linear.h"

#include "moewb/core/error.h"
#include "quant/sparse.h"
#include "quant/rtn.h"

#include <chrono>

namespace moewb {

QuantizedLinear pruneLinear(const LinearInput& in, const at::Tensor& h, int64_t tokens, const QuantizeOptions& opt,
                            const std::function<bool()>& cancel)
{
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const PlanEntry& e = *in.entry;
    MOEWB_ASSERT(e.sparsity > 0);
    const PruneSpec spec = e.pruneSpec();
    checkPruneSpec(spec, e.inFeatures, e.name);
    QuantizedLinear out;
    LinearQuantResult& r = out.result;
    r = planResult(e);
    r.tokens = h.defined() ? tokens : -1;
    const bool haveH = h.defined() && tokens > 0;
    std::string reasons;
    auto note = [&reasons](const std::string& s) { reasons += (reasons.empty() ? "" : "; ") + s; };

    at::Tensor norms; // E[x_j²]
    if (haveH) {
        norms = h.diagonal().to(at::kDouble) / 2;
    } else {
        auto it = opt.actSqMean.find(e.name);
        if (it != opt.actSqMean.end()) {
            MOEWB_CHECK(int64_t(it->second.size()) == e.inFeatures, e.name, "input norms have ", it->second.size(),
                        " channels, the linear ", e.inFeatures);
            norms = at::tensor(at::ArrayRef<float>(it->second)).to(at::kDouble);
        }
    }

    std::string method = e.pruneMethod;
    if (method == "sparsegpt") {
        MOEWB_CHECK(h.defined(), e.name, "prune method sparsegpt needs calibration data");
        if (e.expert >= 0 && tokens < opt.minExpertTokens) {
            method = haveH ? "wanda" : "magnitude";
            note("sparsegpt -> " + method + ": " + std::to_string(tokens) + " routed tokens < min-expert-tokens "
                 + std::to_string(opt.minExpertTokens));
        }
    }
    if (method == "wanda" && !norms.defined()) {
        MOEWB_CHECK(e.expert >= 0 && h.defined(), e.name,
                    "prune method wanda needs input norms: calibration data or calibration statistics");
        method = "magnitude";
        note("wanda -> magnitude: no routed calibration tokens");
    }

    const bool quant = e.bits < 16;
    std::string qmethod = quant ? e.method : "none";
    if (quant) {
        MOEWB_CHECK(isValidQuantMethod(e.method), e.name, quantMethodProblem(e.method));
        const std::string fb = expertFallbackReason(e, haveH ? tokens : 0, opt.minExpertTokens,
                                                    opt.balanceExperts != ExpertBalance::Off);
        if (e.method == "gptq" && !fb.empty()) {
            qmethod = "rtn";
            note("gptq -> rtn: " + fb);
        }
        if (qmethod == "gptq")
            MOEWB_CHECK(h.defined(), e.name, "method gptq needs calibration data");
    }

    ProgressFn poll;
    if (cancel)
        poll = [&cancel](const Progress&) { return cancel(); };
    const at::Tensor w = in.weight.to(at::kFloat);
    at::Tensor weight, mask;
    const bool sweep = method == "sparsegpt" || qmethod == "gptq";
    if (sweep) {
        SparseGptOptions so;
        so.spec = spec;
        so.dampPercent = opt.damp;
        so.blockSize = opt.blockSize;
        if (qmethod == "gptq") {
            so.bits = e.bits;
            so.groupSize = e.groupSize;
            so.sym = e.sym;
        }
        if (method != "sparsegpt")
            so.fixedMask = method == "wanda" ? wandaMask(w, norms, spec) : magnitudeMask(w, spec);
        SparseGptResult res = sparseGpt(w, h, so, poll);
        weight = res.weight;
        mask = res.mask;
        r.dampUsed = res.dampUsed;
        r.dampLambda = res.dampLambda;
        if (qmethod == "gptq") {
            out.q = res.q;
            out.scales = res.scales.to(at::kFloat).contiguous();
            out.zeros = res.zeros.to(at::kFloat).contiguous();
            out.gIdx = res.gIdx;
        }
    } else {
        mask = method == "wanda" ? wandaMask(w, norms, spec) : magnitudeMask(w, spec);
        weight = w.masked_fill(mask, 0);
    }
    if (qmethod == "rtn") {
        RtnResult rtn = rtnQuantize(weight, e.bits, e.groupSize, e.sym); // a zero stays exactly zero
        out.q = std::move(rtn.q);
        out.scales = std::move(rtn.scales);
        out.zeros = std::move(rtn.zeros);
        out.gIdx = naturalGroupIndex(e.inFeatures, e.groupSize);
    }
    if (quant) {
        out.scales = out.scales.to(at::kHalf).to(at::kFloat).contiguous();
        out.stored = dequantHalfScales(out.q, out.scales, out.zeros, out.gIdx).to(in.storeDtype).contiguous();
    } else {
        out.stored = weight.to(in.storeDtype).contiguous();
    }
    MOEWB_ASSERT(!(out.stored.masked_select(mask) != 0).any().item<bool>());
    r.method = qmethod;
    r.pruneMethod = method;
    r.fallback = reasons;
    r.numel = mask.numel();
    r.pruned = mask.sum().item<int64_t>();
    r.achievedSparsity = double(r.pruned) / double(r.numel);
    r.zeros = (out.stored == 0).sum().item<int64_t>();
    if (haveH)
        r.relError = relativeOutputError(w, out.stored, h);
    r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    return out;
}

} // namespace moewb
