// SPDX-License-Identifier: MIT
// `moewb plan --target gguf` (#26, docs/export-gguf.md "Budgets in GGUF bytes"): the budget
// strategy with the byte target meaning the size of the GGUF file quantizeToGguf writes (header,
// metadata, token embedding and output matrix included), and any plan's widths mapped to ggml types.
#pragma once

#include "moewb/alloc/allocate.h"
#include "moewb/alloc/ggml_errors.h"
#include "moewb/export/gguf.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// The ggml type (plan spelling) a width maps to with --target gguf: 2 → q2_k, 3 → q3_k,
/// 4 → q4_k, 8 → q8_0; "" for 16 (unquantized).
std::string ggufTypeForBits(int64_t bits);

/// Token embedding and output types of --target gguf plans (llama.cpp's Q4_K_M: Q4_K, Q6_K), the
/// default of the budget too: its token_embd / output errors are not commensurate with the linears'
/// (with "auto" the solver gave the demo Mixtral's token_embd Q2_K and a 7× larger KLD; export-gguf.md).
constexpr const char* kGgufBudgetTokenEmbd = "q4_k";
constexpr const char* kGgufBudgetOutput = "q6_k";

struct GgufBudgetResult {
    Plan plan;
    uint64_t fileBytes = 0; ///< ggufPlannedBytes(plan): the written file's exact size
    double error = 0.0;     ///< the table's total error of the chosen types (Fisher: the linears' predicted KL, nats/token)
    double solveSeconds = 0.0; ///< knapsack time, all rounds
    std::vector<std::string> notes;
};

/// The knapsack of a --target gguf budget: one item per stacked expert tensor (all experts of a
/// layer and projection: one ggml type), per other linear, then token_embd and output; options =
/// errors.types, bytes = the tensor's size in that type (width fallback applied) padded to the
/// file's alignment, errors the table's (summed over a stack's experts).
/// token_embd / output: "auto" = every candidate type, else that one type only; with a Fisher table
/// their errors count 0 (other units; ggufBudgetPlan refuses "auto" with it).
struct GgufBudgetItems {
    std::vector<std::vector<size_t>> groups; ///< quantizable-linear indices of each linear item
    std::vector<KnapsackItem> items;         ///< groups.size() + 2 (token_embd, output)
    std::vector<std::string> tokenEmbdTypes; ///< the token_embd item's options
    std::vector<std::string> outputTypes;    ///< the output item's options
};
GgufBudgetItems ggufBudgetItems(const ModelConfig& cfg, const GgmlErrorTable& errors,
                                const std::string& tokenEmbdType = kGgufBudgetTokenEmbd,
                                const std::string& outputType = kGgufBudgetOutput, const GgufExportOptions& gopt = {});

/// "budget" with targetFileBytes = the GGUF file's size: ggufBudgetItems solved with the
/// multiple-choice knapsack (token_embd and output types chosen with the linears'), re-solved with a
/// smaller budget until the exact planned file (header, metadata and the embedded plan included)
/// fits. InputError when even the cheapest plan does not fit, the table is not this model's, or
/// token_embd / output are "auto" with a Fisher table.
/// `source` (model and stats paths, architecture, creation time) goes into the plan's provenance
/// before its size is measured, since the file embeds the plan.
GgufBudgetResult ggufBudgetPlan(const std::string& modelDir, const ModelConfig& cfg, const GgmlErrorTable& errors,
                                const AllocOptions& opt, int64_t targetFileBytes,
                                const std::string& tokenEmbdType = kGgufBudgetTokenEmbd,
                                const std::string& outputType = kGgufBudgetOutput, const PlanProvenance& source = {},
                                const GgufExportOptions& gopt = {});

/// Any allocation's widths as ggml types (ggufTypeForBits) with the --target gguf token embedding
/// and output types; the plan's file size in `fileBytes`.
GgufBudgetResult ggufPlanFromAllocation(const std::string& modelDir, const AllocResult& r, const AllocOptions& opt,
                                        const PlanProvenance& source = {}, const GgufExportOptions& gopt = {});

/// The GGUF file size that `bits` average bits stand for with --target gguf (`moewb pipeline
/// --target gguf`): the size of the uniform plan at each candidate width of opt (every linear
/// ggufTypeForBits(w), token_embd / output as ggufPlanFromAllocation), linearly interpolated between
/// the two widths around `bits`; exactly the uniform file's size at a candidate width.
int64_t ggufBytesForBits(const std::string& modelDir, const ModelConfig& cfg, double bits, const AllocOptions& opt,
                         const GgufExportOptions& gopt = {});

} // namespace moewb
