// SPDX-License-Identifier: MIT
// A plan checked against a model (moewb/plan/plan.h: validatePlan).
#include "moewb/plan/plan.h"

#include "moewb/core/error.h"

#include <map>

namespace moewb {

namespace {

void validateOverrides(const Plan& plan, const ModelConfig& cfg, const std::string& where)
{
    std::map<std::string, LinearRole> known;
    for (const LinearInfo& li : listLinears(cfg))
        known.emplace(li.name, li.role);
    for (const auto& [name, s] : plan.overrides) {
        const std::string path = "$.overrides[\"" + name + "\"]";
        auto it = known.find(name);
        if (it == known.end())
            throw InputError(where, path + ": unknown module (the model has no linear of that name)");
        if (!isQuantizableRole(it->second))
            throw InputError(where, path + ": " + linearRoleName(it->second) + " is never quantized");
    }
}

void validateDrops(const Plan& plan, const ModelConfig& cfg, const std::string& where)
{
    for (size_t i = 0; i < plan.droppedExperts.size(); ++i) {
        const DroppedExpert& e = plan.droppedExperts[i];
        const std::string path = "$.drop.experts[" + std::to_string(i) + "]";
        if (!cfg.isMoeLayer(e.layer))
            throw InputError(where, path + ": layer " + std::to_string(e.layer) + " is not a MoE layer");
        if (e.expert < 0 || e.expert >= cfg.numExperts)
            throw InputError(where, path + ": expert " + std::to_string(e.expert) + " out of range 0.."
                                 + std::to_string(cfg.numExperts - 1));
    }
    for (size_t i = 0; i < plan.droppedLayers.size(); ++i)
        if (!cfg.isMoeLayer(plan.droppedLayers[i]))
            throw InputError(where, "$.drop.layers[" + std::to_string(i) + "]: layer "
                                 + std::to_string(plan.droppedLayers[i]) + " is not a MoE layer");
    for (size_t i = 0; i < plan.droppedBlocks.size(); ++i)
        if (plan.droppedBlocks[i] < 0 || plan.droppedBlocks[i] >= cfg.numLayers)
            throw InputError(where, "$.drop.blocks[" + std::to_string(i) + "]: block "
                                 + std::to_string(plan.droppedBlocks[i]) + " out of range");
}

} // namespace

void validatePlan(const Plan& plan, const ModelConfig& cfg, const std::string& where)
{
    validateOverrides(plan, cfg, where);
    validateDrops(plan, cfg, where);
    // Pruning: every pruned linear's pattern must fit its in_features (M divides it).
    for (const PlanEntry& e : expandPlan(plan, cfg))
        if (e.sparsity > 0 && !e.dropped)
            checkPruneSpec(e.pruneSpec(), e.inFeatures, where + ": " + e.name);
}

} // namespace moewb
