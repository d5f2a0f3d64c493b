// SPDX-License-Identifier: MIT
// Allocations the target runtime can load (#24, docs/allocation.md "Targets: budgets the runtime
// can load"): the budget's knapsack over the target's shared-width groups, and heuristic results
// made to comply. The groups: moewb/plan/target_groups.h.
#pragma once

#include "moewb/alloc/allocate.h"
#include "moewb/plan/target_groups.h"

#include <cstddef>
#include <vector>

namespace moewb {

/// solveKnapsack with one item per group: a group's option o costs the sum of its members' bytes
/// at o and has the sum of their errors (every member has the same options). Returns the choice
/// per item of `items` (members of a group share it). Singleton groups give solveKnapsack's result.
std::vector<int> solveKnapsackInGroups(const std::vector<KnapsackItem>& items,
                                       const std::vector<std::vector<size_t>>& groups, int64_t budget,
                                       SolverMethod method = SolverMethod::Auto);

/// Makes a heuristic allocation comply with opt.target. Every group with mixed widths first takes
/// the lowest width of its members (never over the budget: bytes only shrink), then, in the order
/// of the share of its bytes the strategy had put above that width (largest first; ties: model
/// order), is raised to the widest width of its members when r.budgetBytes allows (groups that do
/// not fit are skipped, later smaller ones may still fit). Updates r.size and adds a note when
/// anything changed. Groups that already share one width are untouched.
void fitToTarget(AllocResult& r, const ModelConfig& cfg, const AllocOptions& opt);

} // namespace moewb
