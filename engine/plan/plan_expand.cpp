// SPDX-License-Identifier: MIT
// A plan expanded to its per-linear table (moewb/plan/plan.h: expandPlan).
#include "moewb/plan/plan.h"

#include <regex>
#include <set>

namespace moewb {

bool isQuantizableRole(LinearRole role)
{
    return role != LinearRole::Router && role != LinearRole::SharedGate;
}

std::vector<LinearInfo> quantizableLinears(const ModelConfig& cfg)
{
    std::vector<LinearInfo> out;
    for (const LinearInfo& li : listLinears(cfg))
        if (isQuantizableRole(li.role))
            out.push_back(li);
    return out;
}

namespace {

/// What a plan drops, as sets.
struct Drops {
    std::set<std::pair<int64_t, int64_t>> experts;
    std::set<int64_t> layers;
    std::set<int64_t> blocks;

    explicit Drops(const Plan& plan)
        : layers(plan.droppedLayers.begin(), plan.droppedLayers.end())
        , blocks(plan.droppedBlocks.begin(), plan.droppedBlocks.end())
    {
        for (const DroppedExpert& d : plan.droppedExperts)
            experts.insert({d.layer, d.expert});
    }
    bool drops(const LinearInfo& li, const ModelConfig& cfg) const
    {
        const bool mlpPart = li.role != LinearRole::Q && li.role != LinearRole::K && li.role != LinearRole::V
            && li.role != LinearRole::O;
        return blocks.count(li.layer) || (mlpPart && layers.count(li.layer) && cfg.isMoeLayer(li.layer))
            || (li.expert >= 0 && experts.count({li.layer, li.expert}));
    }
};

} // namespace

std::vector<PlanEntry> expandPlan(const Plan& plan, const ModelConfig& cfg)
{
    std::vector<std::regex> res;
    for (const PlanRule& r : plan.rules)
        res.emplace_back(r.match, std::regex::ECMAScript | std::regex::optimize);
    const Drops drops(plan);

    std::vector<PlanEntry> out;
    for (const LinearInfo& li : listLinears(cfg)) {
        if (!isQuantizableRole(li.role))
            continue;
        PlanEntry e;
        static_cast<LinearSettings&>(e) = resolveDefaults(plan.defaults, li.name);
        e.name = li.name;
        e.layer = li.layer;
        e.expert = li.expert;
        e.role = li.role;
        e.inFeatures = li.inFeatures;
        e.outFeatures = li.outFeatures;
        for (size_t r = 0; r < res.size(); ++r)
            if (std::regex_match(li.name, res[r]))
                applyQuantSettings(e, plan.rules[r].set, e.name);
        auto it = plan.overrides.find(li.name);
        if (it != plan.overrides.end())
            applyQuantSettings(e, it->second, e.name);
        e.dropped = drops.drops(li, cfg);
        if (e.sparsity > 0) // an N:M pattern fixes the sparsity; 0 always means "not pruned"
            e.sparsity = patternSparsity(e.pattern, e.sparsity);
        out.push_back(std::move(e));
    }
    return out;
}

} // namespace moewb
