// SPDX-License-Identifier: MIT
// The groups of linears each target stores at one width (moewb/plan/target_groups.h).
//
// vLLM (docs/allocation.md "Targets: budgets the runtime can load"): a MoE layer's routed experts
// are one FusedMoE module with one quantization method (vllm/model_executor/layers/quantization/
// gptq_marlin.py, get_moe_quant_method: GPTQModel `dynamic` overrides are matched against the fused
// module's prefix "...experts", so gate/up (w13) and down (w2) of every expert share the config);
// q/k/v are one QKVParallelLinear (qkv_proj) and an MLP's gate/up one MergedColumnParallelLinear
// (gate_up_proj), whose quantization method is chosen once for the fused prefix.
// GGUF: ggml stores ffn_{gate,up,down}_exps of a layer as one tensor of one type (docs/export-gguf.md).
#include "moewb/plan/target_groups.h"

#include <map>
#include <tuple>

namespace moewb {

namespace {

/// Which group a linear belongs to: (kind, layer, sub) with kind 0 = a group of its own.
using GroupKey = std::tuple<int, int64_t, int>;

GroupKey groupKey(int64_t layer, int64_t expert, LinearRole role, PlanTarget target)
{
    if (target == PlanTarget::Gguf && expert >= 0)
        return {1, layer, int(role)};
    if (target != PlanTarget::Vllm)
        return {0, 0, 0};
    if (expert >= 0)
        return {1, layer, 0};
    switch (role) {
    case LinearRole::Q:
    case LinearRole::K:
    case LinearRole::V: return {2, layer, 0};
    case LinearRole::SharedGateProj:
    case LinearRole::SharedUp: return {3, layer, 0};
    case LinearRole::DenseGate:
    case LinearRole::DenseUp: return {4, layer, 0};
    default: return {0, 0, 0};
    }
}

template <class Linear>
std::vector<std::vector<size_t>> groupsOf(const std::vector<Linear>& linears, PlanTarget target)
{
    std::map<GroupKey, size_t> at;
    std::vector<std::vector<size_t>> groups;
    for (size_t i = 0; i < linears.size(); ++i) {
        const GroupKey key = groupKey(linears[i].layer, linears[i].expert, linears[i].role, target);
        if (std::get<0>(key) == 0) {
            groups.push_back({i});
            continue;
        }
        auto [it, fresh] = at.emplace(key, groups.size());
        if (fresh)
            groups.emplace_back();
        groups[it->second].push_back(i);
    }
    return groups;
}

const char* projection(LinearRole role)
{
    switch (role) {
    case LinearRole::ExpertGate: return "gate";
    case LinearRole::ExpertUp: return "up";
    default: return "down";
    }
}

} // namespace

std::vector<std::vector<size_t>> sharedWidthGroups(const std::vector<LinearInfo>& linears, PlanTarget target)
{
    return groupsOf(linears, target);
}

std::vector<std::vector<size_t>> sharedWidthGroups(const std::vector<PlanEntry>& entries, PlanTarget target)
{
    return groupsOf(entries, target);
}

std::string widthsText(const std::set<int64_t>& widths)
{
    std::string s;
    for (int64_t w : widths)
        s += (s.empty() ? "" : ", ") + std::to_string(w);
    return s + " bits";
}

std::string sharedWidthGroupLabel(const std::vector<PlanEntry>& entries, const std::vector<size_t>& group,
                                  PlanTarget target)
{
    const PlanEntry& e = entries[group.front()];
    if (group.size() == 1)
        return e.name;
    const std::string layer = "layer " + std::to_string(e.layer) + ", ";
    if (e.expert >= 0)
        return layer + (target == PlanTarget::Gguf ? std::string("routed experts' ") + projection(e.role) + " projection"
                                                   : std::string("routed experts"));
    if (e.role == LinearRole::Q || e.role == LinearRole::K || e.role == LinearRole::V)
        return layer + "attention q/k/v";
    if (e.role == LinearRole::SharedGateProj || e.role == LinearRole::SharedUp)
        return layer + "shared expert gate/up";
    return layer + "MLP gate/up";
}

std::vector<TargetViolation> checkTarget(const std::vector<PlanEntry>& entries, PlanTarget target)
{
    std::vector<TargetViolation> out;
    for (std::vector<size_t>& g : sharedWidthGroups(entries, target)) {
        if (g.size() < 2)
            continue;
        std::set<int64_t> widths;
        for (size_t i : g)
            if (!entries[i].dropped)
                widths.insert(entries[i].bits);
        if (widths.size() > 1)
            out.push_back({g, std::move(widths), sharedWidthGroupLabel(entries, g, target)});
    }
    return out;
}

size_t sharedGroupCount(const std::vector<PlanEntry>& entries, PlanTarget target)
{
    size_t n = 0;
    for (const std::vector<size_t>& g : sharedWidthGroups(entries, target))
        n += g.size() > 1;
    return n;
}

} // namespace moewb
