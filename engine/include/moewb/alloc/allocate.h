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
#include "moewb/plan/plan_target.h"
#include "moewb/stats/stats.h"
#include "moewb/core/progress.h"
#include "moewb/hfconfig/hf_config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// What an ErrorTable's numbers predict (docs/allocation.md).
///   Fisher: predicted KL divergence from the unquantized model, nats per token,
///           ½ Σ_i F_i Σ_j (ΔW_ij)² E[x_j²] with F from `calibrate --fisher` (LinearStats::fisher);
///   Proxy:  usage · Σ_ij (ΔW_ij)² E[x_j²], the activation-weighted RTN error (no common unit
///           across layers and roles: the fallback when the statistics carry no Fisher);
///   Auto:   Fisher when the statistics have it, else Proxy.
enum class CostModel { Auto, Fisher, Proxy };
const char* costModelName(CostModel m); ///< "fisher", "proxy" ("auto" for Auto)
CostModel parseCostModel(const std::string& name); ///< InputError for anything but auto|fisher|proxy
/// The cost model `requested` stands for with these statistics: Auto → Fisher when they carry a
/// Fisher diagonal, else Proxy; Fisher and Proxy as they are (not checked).
CostModel effectiveCostModel(CostModel requested, const CalibStats& stats);
/// effectiveCostModel, and InputError when that is Fisher and the statistics have no Fisher diagonal.
CostModel resolveCostModel(CostModel requested, const CalibStats& stats);

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
    /// The runtime the plan is for: its shared-width groups (moewb/plan/target_groups.h) are one
    /// knapsack item for "budget"; heuristic results are made to comply (moewb/alloc/target_fit.h).
    PlanTarget target = PlanTarget::Gptq;
    CostModel costModel = CostModel::Auto;       ///< budget: what the solver minimises (measureErrors)
};

struct AllocResult;

/// The AllocOptions a strategy reads besides the target, group size, sym and method (bit set).
enum StrategyParam : unsigned {
    kParamK = 1u << 0,        ///< AllocOptions::k
    kParamTopP = 1u << 1,     ///< AllocOptions::topP
    kParamPerLayer = 1u << 2, ///< AllocOptions::perLayer
    kParamSeed = 1u << 3,     ///< AllocOptions::seed
};

/// A heuristic strategy: the whole allocation for one AllocOptions::strategy.
using StrategyFn = AllocResult (*)(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt);

struct StrategyInfo {
    const char* name;
    const char* description;
    bool needsStats = false;      ///< reads calibration statistics (routing, activations, scores)
    bool needsErrorTable = false; ///< "budget": runs on measured errors (allocateBudget), not allocate()
    unsigned params = 0;          ///< StrategyParam bits
    StrategyFn run = nullptr;     ///< what allocate() calls; null for "budget"
    bool fixedMix = false;        ///< a GGUF preset: types fixed by the mix, no --bits / --bytes target

    bool takes(StrategyParam p) const { return (params & p) != 0; }
};
/// The strategy table: CLI help and parsing, the GUI's strategy lists (which need statistics,
/// which parameters apply) and allocate()'s dispatch all read it.
const std::vector<StrategyInfo>& allocStrategies();
/// The table's entry for a name, or nullptr.
const StrategyInfo* findStrategy(const std::string& name);

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
    CostModel costModel = CostModel::Proxy; ///< Fisher or Proxy (never Auto)
    std::vector<LinearErrors> linears; ///< quantizable linears in listLinears() order
};

struct AllocResult {
    std::vector<PlanEntry> entries; ///< one per quantizable linear, bits set
    int64_t budgetBytes = 0;        ///< whole model
    PlanSize size;                  ///< achieved (size.modelBytes <= budgetBytes)
    std::vector<std::string> notes; ///< one line each, for the user
    std::string ggufTokenEmbd;      ///< GGUF presets: Plan::ggufTokenEmbd / ggufOutput
    std::string ggufOutput;
};

/// Whole-model bytes of the budget for `opt` (targetBits or targetBytes).
int64_t budgetBytesFor(const ModelConfig& cfg, const AllocOptions& opt);

/// Runs a heuristic strategy (everything but "budget") through its table entry. InputError for
/// unknown strategies, a budget below all-2-bit, "shared" on a model without shared experts, stats
/// that do not match the model.
AllocResult allocate(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt);

/// "budget": minimal total error under the byte budget, given measured errors.
AllocResult allocateBudget(const ModelConfig& cfg, const ErrorTable& errors, const AllocOptions& opt);

/// Measures the error table for each candidate b (ΔW = W − RTN_b(W), asymmetric min/max groups of
/// groupSize), per quantizable linear (see CostModel):
///   Fisher: ½ Σ_i F_i Σ_j ΔW_ij² E[x_j²];
///   Proxy:  usage · Σ_ij ΔW_ij² E[x_j²], usage = tokens routed to the expert / router tokens
///           (1 for dense linears).
/// Streams one weight at a time from the checkpoint. Linears without activation statistics use
/// E[x²] = 1. CostModel::Fisher on statistics without a Fisher → InputError.
ErrorTable measureErrors(const std::string& modelDir, const ModelConfig& cfg, const CalibStats& stats,
                         int64_t groupSize, const std::vector<int64_t>& candidates,
                         const ProgressFn& progress = {}, CostModel model = CostModel::Auto);
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
