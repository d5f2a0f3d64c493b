// SPDX-License-Identifier: MIT
// What the allocation editor needs from the engine's strategies and budget solver
// (moewb/alloc/allocate.h). The widgets library links only the torch-free moewb_io, so the
// application (app/gui) or a test fills this with the engine's functions, bound to the open model
// and stats (and for "budget" the document's predicted-cost table, when one was measured).
#pragma once

#include "moewb/alloc/allocate.h"

#include <functional>
#include <vector>

namespace moewb {

struct AllocBackend {
    std::vector<StrategyInfo> strategies;                          ///< allocStrategies()
    /// allocate(cfg, stats, opt), or allocateBudget(cfg, errors, opt) for "budget". May throw
    /// moewb::Error (shown to the user, plan untouched). Called on a worker thread.
    std::function<AllocResult(const AllocOptions&)> solve;
    std::function<Plan(const AllocResult&, const AllocOptions&)> toPlan; ///< planFromAllocation
    std::function<int64_t(const AllocOptions&)> budgetBytes;           ///< budgetBytesFor(cfg, opt)
    /// True when solve() can run "budget" (an ErrorTable is loaded); else that entry is disabled.
    bool hasErrorTable = false;

    bool valid() const { return solve && toPlan && budgetBytes && !strategies.empty(); }
};

} // namespace moewb
