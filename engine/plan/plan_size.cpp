// SPDX-License-Identifier: MIT
// GPTQ byte accounting of a plan (moewb/plan/plan.h: gptqLinearBytes, fixedModelBytes, planSize).
#include "moewb/plan/plan.h"

namespace moewb {

int64_t gptqLinearBytes(int64_t k, int64_t n, int64_t bits, int64_t groupSize)
{
    if (bits >= 16)
        return 2 * k * n;
    const int64_t g = groupSize <= 0 ? k : groupSize;
    const int64_t groups = (k + g - 1) / g;
    const int64_t qweight = (k * bits + 31) / 32 * n * 4;
    const int64_t qzeros = groups * ((n * bits + 31) / 32) * 4;
    const int64_t scales = groups * n * 2;
    const int64_t gIdx = k * 4;
    return qweight + qzeros + scales + gIdx;
}

int64_t fixedModelBytes(const ModelConfig& cfg)
{
    int64_t quant = 0;
    for (const LinearInfo& li : listLinears(cfg))
        if (isQuantizableRole(li.role))
            quant += li.inFeatures * li.outFeatures;
    return 2 * (parameterCount(cfg) - quant);
}

PlanSize planSize(const std::vector<PlanEntry>& entries, const ModelConfig& cfg)
{
    PlanSize s;
    double bitSum = 0;
    for (const PlanEntry& e : entries) {
        if (e.dropped)
            continue;
        const int64_t numel = e.inFeatures * e.outFeatures;
        s.linearBytes += gptqLinearBytes(e.inFeatures, e.outFeatures, e.bits, e.groupSize);
        s.quantParams += numel;
        bitSum += double(e.bits) * double(numel);
        s.nonzeroParams += numel - (e.sparsity > 0 ? e.outFeatures * prunedPerRow(e.pruneSpec(), e.inFeatures) : 0);
    }
    s.density = s.quantParams ? double(s.nonzeroParams) / double(s.quantParams) : 1.0;
    s.modelBytes = s.linearBytes + fixedModelBytes(cfg);
    s.averageBits = s.quantParams ? bitSum / double(s.quantParams) : 0.0;
    s.effectiveBits = s.quantParams ? 8.0 * double(s.linearBytes) / double(s.quantParams) : 0.0;
    return s;
}

} // namespace moewb
