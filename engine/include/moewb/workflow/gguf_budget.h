// SPDX-License-Identifier: MIT
// `moewb plan --target gguf` (#26, docs/export-gguf.md "Budgets in GGUF bytes"): the budget
// strategy with the byte target meaning the size of the GGUF file quantizeToGguf writes (header,
// metadata, token embedding and output matrix included), and any plan's widths mapped to ggml types.
#pragma once

#include "moewb/alloc/allocate.h"
#include "moewb/export/gguf.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// The ggml type (plan spelling) a width maps to with --target gguf: 2 → q2_k, 3 → q3_k,
/// 4 → q4_k, 8 → q8_0; "" for 16 (unquantized).
std::string ggufTypeForBits(int64_t bits);

/// Token embedding and output types of --target gguf plans (llama.cpp's K mixes: Q4_K, Q6_K).
constexpr const char* kGgufBudgetTokenEmbd = "q4_k";
constexpr const char* kGgufBudgetOutput = "q6_k";

struct GgufBudgetResult {
    Plan plan;
    uint64_t fileBytes = 0; ///< ggufPlannedBytes(plan): the written file's exact size
    std::vector<std::string> notes;
};

/// "budget" with targetFileBytes = the GGUF file's size: one knapsack item per stacked expert
/// tensor (all experts of a layer and projection share a width, as the file stores one type) and
/// per other linear; bytes are each tensor's padded size in the ggml type of the width (width
/// fallback included), errors the table's. Re-solved with a smaller budget until the exact planned
/// file fits. InputError when even the cheapest plan does not fit.
/// `source` (model and stats paths, architecture, creation time) goes into the plan's provenance
/// before its size is measured, since the file embeds the plan.
GgufBudgetResult ggufBudgetPlan(const std::string& modelDir, const ModelConfig& cfg, const ErrorTable& errors,
                                const AllocOptions& opt, int64_t targetFileBytes, const PlanProvenance& source = {},
                                const GgufExportOptions& gopt = {});

/// Any allocation's widths as ggml types (ggufTypeForBits) with the --target gguf token embedding
/// and output types; the plan's file size in `fileBytes`.
GgufBudgetResult ggufPlanFromAllocation(const std::string& modelDir, const AllocResult& r, const AllocOptions& opt,
                                        const PlanProvenance& source = {}, const GgufExportOptions& gopt = {});

} // namespace moewb
