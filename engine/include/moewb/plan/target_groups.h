// SPDX-License-Identifier: MIT
// One definition of each target's constraint (#24): the groups of linears a runtime stores at one
// width (moewb/plan/plan_target.h says which runtime each target is). Read by the budget solver
// (one knapsack item per group, engine/alloc/target_fit.cpp), the heuristic strategies (made to
// comply), the --target gguf budget (engine/workflow/gguf_budget.cpp), quantize's format check
// (engine/workflow/format_constraint.cpp) and the GUI allocation editor (widgets/alloc/).
#pragma once

#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan.h"
#include "moewb/plan/plan_target.h"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace moewb {

/// A partition of `linears` (indices into it, each group ascending, groups ordered by their first
/// member): the linears the target stores at one width share a group, every other linear is a
/// group of its own. gptq: singletons. gguf: the routed experts of one (layer, role). vllm: all
/// routed experts of a layer; q, k, v of a layer; gate and up of a layer's shared expert; gate and
/// up of a layer's dense MLP.
std::vector<std::vector<size_t>> sharedWidthGroups(const std::vector<LinearInfo>& linears, PlanTarget target);
std::vector<std::vector<size_t>> sharedWidthGroups(const std::vector<PlanEntry>& entries, PlanTarget target);

/// A group of the target whose (not dropped) linears have more than one width.
struct TargetViolation {
    std::vector<size_t> members;  ///< indices into the entries, dropped ones included
    std::set<int64_t> widths;     ///< the widths its not-dropped members have
    std::string label;            ///< "layer 3, routed experts", for messages
};

/// The groups of `target` that mix widths in `entries` (expandPlan order), in group order.
std::vector<TargetViolation> checkTarget(const std::vector<PlanEntry>& entries, PlanTarget target);

/// How many groups of more than one linear the target has (dropped linears counted).
size_t sharedGroupCount(const std::vector<PlanEntry>& entries, PlanTarget target);

/// The user-facing name of a group: "layer 3, routed experts", "layer 0, attention q/k/v", ...
std::string sharedWidthGroupLabel(const std::vector<PlanEntry>& entries, const std::vector<size_t>& group,
                                  PlanTarget target);

/// "2, 3 bits"
std::string widthsText(const std::set<int64_t>& widths);

} // namespace moewb
