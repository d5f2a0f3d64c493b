// SPDX-License-Identifier: MIT
// Error measurement of the budget strategy: streams one weight at a time (a DeepSeek-V3 checkpoint
// does not fit in memory), quantizes it with RTN at every candidate width and weights the error by
// the input second moments and the expert's routing frequency.
#include "moewb/alloc/allocate.h"

#include "model/weights.h"
#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"
#include "quant/rtn.h"

#include <map>

namespace moewb {

ErrorTable measureErrors(const std::string& modelDir, const ModelConfig& cfg, const CalibStats& stats,
                         int64_t groupSize, const std::vector<int64_t>& candidates, const ProgressFn& progress)
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
    std::vector<LinearInfo> lin;
    for (const LinearInfo& li : listLinears(cfg))
        if (isQuantizableRole(li.role))
            lin.push_back(li);
    for (size_t i = 0; i < lin.size(); ++i) {
        const LinearInfo& li = lin[i];
        report(progress, "measure quantization error", int64_t(i), int64_t(lin.size()), li.name);
        double usage = 1.0;
        if (li.expert >= 0) {
            const RouterStats* r = stats.router(li.layer);
            usage = (r && r->tokens > 0 && li.expert < r->numExperts)
                ? double(r->expertTokens[size_t(li.expert)]) / double(r->tokens)
                : 0.0;
        }
        LinearErrors row;
        row.name = li.name;
        const std::string wname = li.name + ".weight";
        at::Tensor w = loadTensor(ckpt, wname, at::kFloat);
        ckpt.release(wname);
        MOEWB_CHECK(w.dim() == 2 && w.size(0) == li.outFeatures && w.size(1) == li.inFeatures, wname,
                    "unexpected shape");
        at::Tensor colWeight; // E[x_j^2] per input column
        auto it = byName.find(li.name);
        if (it != byName.end() && int64_t(it->second->actSqMean.size()) == li.inFeatures)
            colWeight = at::from_blob(const_cast<float*>(it->second->actSqMean.data()), {li.inFeatures}, at::kFloat)
                            .to(at::kDouble);
        for (int64_t b : candidates) {
            row.bytes.push_back(gptqLinearBytes(li.inFeatures, li.outFeatures, b, groupSize));
            if (b >= 16) {
                row.error.push_back(0.0);
                continue;
            }
            const at::Tensor d = (w - rtnQuantize(w, b, groupSize, false).dequant).to(at::kDouble);
            const at::Tensor d2 = d * d;
            const double e = colWeight.defined() ? (d2 * colWeight.unsqueeze(0)).sum().item<double>()
                                                 : d2.sum().item<double>();
            row.error.push_back(usage * e);
        }
        t.linears.push_back(std::move(row));
    }
    report(progress, "measure quantization error", int64_t(lin.size()), int64_t(lin.size()));
    return t;
}

} // namespace moewb
