// SPDX-License-Identifier: MIT
// The predicted quality of a plan while it is edited (#27): the budget strategy's cost table
// (ErrorTable, moewb/alloc/allocate.h), measured by the engine's measureErrors with the Fisher cost
// model, looked up per linear at the width the plan gives it. The numbers are the budget solver's:
// predicted KL divergence from the unquantized model in nats per token, ½ Σ_out F · Σ ΔW² E[x²]
// with ΔW the RTN error at the table's group size (docs/allocation.md). Plain C++, no Qt, no torch.
//
// What the sum counts: every quantizable linear that is not dropped, at its assigned width (16 bits
// costs 0). Dropped linears (trimmed experts, layers, blocks) count 0: they are not quantized, and
// what dropping costs is outside this model. Pruning (#14) is not in the model either.
#pragma once

#include "routingmetrics.h"

#include "moewb/alloc/allocate.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// Predicted cost of row `row` of the table at `bits`: 0 for 16 bits, the measured value for a
/// candidate width, NaN for a width the table was not measured at.
double linearCostAt(const ErrorTable& table, size_t row, int64_t bits);

/// "" when the table's rows are the entries' linears in the same order (then row i is entries[i]),
/// else one line saying what differs.
std::string costTableMismatch(const ErrorTable& table, const std::vector<PlanEntry>& entries);

struct PlanCost {
    double kld = 0.0;              ///< Σ over counted linears, nats/token
    int64_t linears = 0;           ///< counted (not dropped)
    int64_t droppedLinears = 0;    ///< not counted: belong to a dropped expert, layer or block
    int64_t unmeasuredLinears = 0; ///< not counted: a width the table has no value for
    int64_t otherGroupSize = 0;    ///< counted at the table's group size although the plan sets another
    int64_t prunedLinears = 0;     ///< counted without their pruning (sparsity > 0)
};

/// The plan's predicted cost: a sum in entry order, O(entries) (45k linears: 1.5-3 ms), equal
/// to the budget solver's "predicted KL divergence" for its own plan. `table` must fit `entries`
/// (costTableMismatch == "").
PlanCost predictedPlanCost(const ErrorTable& table, const std::vector<PlanEntry>& entries);

/// predictedPlanCost kept up to date through edits in O(changed entries): reset() sums every
/// entry, update() takes the changed ones out at what they counted and back in at what they count
/// now (PlanEditModel::entriesChanged says which). After updates the sum may differ from a fresh
/// predictedPlanCost in the last bits (rounding), never more.
class PlanCostTracker {
public:
    /// table nullptr: nothing is tracked (cost() is all zero). `table` must fit `entries` and
    /// outlive the tracker's use of it.
    void reset(const ErrorTable* table, const std::vector<PlanEntry>& entries);
    void update(const std::vector<PlanEntry>& entries, const int* changed, size_t count);
    const PlanCost& cost() const { return m_cost; }

private:
    struct Counted {
        double kld = 0.0;
        bool linear = false, dropped = false, unmeasured = false, otherGroupSize = false, pruned = false;
    };
    static Counted countOf(const ErrorTable& table, size_t row, const PlanEntry& e);
    void add(const Counted& c, int sign);

    const ErrorTable* m_table = nullptr;
    std::vector<Counted> m_counted; ///< per entry, what it adds to m_cost now
    PlanCost m_cost;
};

/// Layers × experts: the predicted cost of each routed expert at `bits` (the sum over its
/// linears), rows = `layers` (decoder indices), columns = cfg.numExperts; NaN where a layer has no
/// such expert or the table has no value at `bits`. The table's rows are cfg's quantizable linears in listLinears() order.
RoutingMatrix expertCostMatrix(const ErrorTable& table, const ModelConfig& cfg, const std::vector<int64_t>& layers,
                               int64_t bits);

} // namespace moewb
