// SPDX-License-Identifier: MIT
// Bit-allocation strategies (#7, docs/algorithms.md §6) and the budget solver. Torch-free API;
// the implementations live in engine/alloc (the error measurement loads weights with torch).
//
// Budget: a target average bit-width B is turned into bytes as the GPTQ storage of every
// quantizable linear at B bits, interpolated linearly between the integer widths around B, plus
// the bf16 bytes of everything never quantized (fixedModelBytes). So "uniform 3-bit" exactly
// meets --bits 3, and every strategy's result satisfies modelBytes <= budgetBytes.
//
// Ladder: with candidates {2,3,4,8}, a heuristic strategy starts every linear at `low` = the largest
// width whose uniform model fits the budget and raises its units (experts, blocks, attention, ...)
// to `high` = the next width, in the strategy's priority order, while the budget allows (units that
// do not fit are skipped, smaller later ones may still fit).
#pragma once

#include "moewb/plan/plan.h"
#include "moewb/stats/stats.h"
#include "moewb/core/progress.h"
#include "moewb/hfconfig/hf_config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

struct AllocOptions {
    std::string strategy = "uniform"; ///< see allocStrategies()
    double targetBits = 0.0;          ///< average bits (0 = use targetBytes)
    int64_t targetBytes = 0;          ///< whole-model bytes (used when targetBits == 0)
    int64_t groupSize = 128;
    bool sym = true;
    std::string method = "gptq";
    uint64_t seed = 0;        ///< random
    int64_t k = -1;           ///< first-k / block: number of MoE blocks raised (-1: as many as fit)
    double topP = -1.0;       ///< outlier: fraction of linears raised (-1: as many as fit)
    int64_t perLayer = -1;    ///< frequency / random: experts raised per MoE layer (-1: global ranking)
    std::vector<int64_t> candidates{2, 3, 4, 8}; ///< widths the budget solver may choose
};

struct StrategyInfo {
    const char* name;
    const char* description;
};
/// The strategy table that drives CLI help, parsing and the GUI combo box.
const std::vector<StrategyInfo>& allocStrategies();

/// Quantization error of one linear at each candidate width (budget solver input).
struct LinearErrors {
    std::string name;
    std::vector<int64_t> bytes; ///< GPTQ bytes per candidate
    std::vector<double> error;  ///< usage-weighted error per candidate (non-increasing in practice)
};
struct ErrorTable {
    std::vector<int64_t> candidates; ///< widths, ascending
    int64_t groupSize = 128;
    bool sym = false;
    std::vector<LinearErrors> linears; ///< quantizable linears in listLinears() order
};

struct AllocResult {
    std::vector<PlanEntry> entries; ///< one per quantizable linear, bits set
    int64_t budgetBytes = 0;        ///< whole model
    PlanSize size;                  ///< achieved (size.modelBytes <= budgetBytes)
    std::vector<std::string> notes; ///< one line each, for the user
};

/// Whole-model bytes of the budget for `opt` (targetBits or targetBytes).
int64_t budgetBytesFor(const ModelConfig& cfg, const AllocOptions& opt);

/// Runs a heuristic strategy (everything but "budget"). InputError for unknown strategies, a budget
/// below all-2-bit, "shared" on a model without shared experts, stats that do not match the model.
AllocResult allocate(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt);

/// "budget": minimal total error under the byte budget, given measured errors.
AllocResult allocateBudget(const ModelConfig& cfg, const ErrorTable& errors, const AllocOptions& opt);

/// Measures the error table: per quantizable linear, ||(W - RTN_b(W)) diag(sqrt(E[x^2]))||_F^2 for
/// each candidate b (asymmetric min/max groups of groupSize), times usage = tokens routed to the
/// expert / router tokens (1 for dense linears). Streams one weight at a time from the checkpoint.
/// Linears without activation statistics use E[x^2] = 1.
ErrorTable measureErrors(const std::string& modelDir, const ModelConfig& cfg, const CalibStats& stats,
                         int64_t groupSize, const std::vector<int64_t>& candidates,
                         const ProgressFn& progress = {});
void saveErrorTable(const ErrorTable& t, const std::string& path); ///< JSON, atomic
ErrorTable loadErrorTable(const std::string& path);

/// Multiple-choice knapsack: pick one option per item minimizing the sum of errors with the sum of
/// bytes <= budget. Exact (dynamic programming over bytes / gcd) when items * capacity is small,
/// else Lagrangian relaxation (bisection on the multiplier) followed by a greedy fill of the
/// leftover budget. Returns the chosen option per item; InputError when even the cheapest options
/// exceed the budget.
struct KnapsackItem {
    std::vector<int64_t> bytes;
    std::vector<double> error;
};
enum class SolverMethod { Auto, Exact, Lagrangian };
std::vector<int> solveKnapsack(const std::vector<KnapsackItem>& items, int64_t budget,
                               SolverMethod method = SolverMethod::Auto);

/// The allocation as a plan: defaults = the most common width, one override per other linear.
Plan planFromAllocation(const AllocResult& r, const AllocOptions& opt);

} // namespace moewb
