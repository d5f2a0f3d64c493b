// SPDX-License-Identifier: MIT
#include "engineallocbackend.h"

#include "moewb/core/error.h"
#include "moewb/workflow/gguf_budget.h"

#include <string>

namespace moewb::gui {

AllocBackend engineAllocBackend(std::shared_ptr<const ModelConfig> cfg, std::shared_ptr<const CalibStats> stats,
                                std::shared_ptr<const ErrorTable> costTable, const std::string& modelDir)
{
    AllocBackend b;
    if (!cfg || !stats)
        return b;
    b.strategies = allocStrategies();
    b.solve = [cfg, stats, costTable](const AllocOptions& o) {
        const StrategyInfo* info = findStrategy(o.strategy);
        if (!info || !info->needsErrorTable)
            return allocate(*cfg, *stats, o);
        if (!costTable)
            throw InputError("budget", "the predicted cost is not measured yet (Jobs → Measure predicted cost)");
        if (costTable->groupSize != o.groupSize)
            throw InputError("budget", "the predicted cost was measured at group size "
                                           + std::to_string(costTable->groupSize) + ": choose that group size");
        return allocateBudget(*cfg, *costTable, o);
    };
    b.toPlan = [modelDir](const AllocResult& r, const AllocOptions& o) {
        return o.target == PlanTarget::Gguf ? ggufPlanFromAllocation(modelDir, r, o).plan : planFromAllocation(r, o);
    };
    b.budgetBytes = [cfg](const AllocOptions& o) { return budgetBytesFor(*cfg, o); };
    b.hasErrorTable = costTable != nullptr;
    return b;
}

} // namespace moewb::gui
