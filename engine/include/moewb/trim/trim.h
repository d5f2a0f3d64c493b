// SPDX-License-Identifier: MIT
// Expert trimming (#10; docs/algorithms.md §7): choosing what to drop from calibration statistics
// (Expert Drop, Layer Drop, Block Drop) and writing the trimmed Hugging Face checkpoint.
// Users' view: docs/trimming.md. The drops themselves live in the plan (Plan::droppedExperts,
// droppedLayers, droppedBlocks), always indexed by the ORIGINAL model's layers and experts.
#pragma once

#include "moewb/plan/plan.h"
#include "moewb/stats/stats.h"
#include "moewb/core/progress.h"
#include "moewb/hfconfig/hf_config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// Expert Drop (docs/algorithms.md §7.1): score of expert e in layer l = mean over calibration tokens of
/// softmax(router logits)[e] over all experts (RouterStats::expertProbMass / tokens; falls back to
/// expertWeightMass when a stats file has no prob mass). Per layer (global = false): every MoE layer
/// keeps its `keep` best experts. Global: the (E − keep) · (MoE layers) lowest scores over all
/// layers are dropped, so layers may keep different numbers. Ties drop the higher index first.
/// Appends to plan.droppedExperts (sorted by layer, expert). keep < top-k or > E → InputError.
void selectExpertDrop(Plan& plan, const ModelConfig& cfg, const CalibStats& stats, int64_t keep, bool global);

/// Layer Drop (§7.2): drops the n MoE sub-layers with the highest cos(h_mid, h_out) (S^(NM),
/// LayerStats::cosine.mlp); dense layers never. Appends to plan.droppedLayers (ascending).
void selectLayerDrop(Plan& plan, const ModelConfig& cfg, const CalibStats& stats, int64_t n);

/// Block Drop (§7.3, discrete): drops the n decoder blocks with the highest cos(h_in, h_out)
/// (LayerStats::cosine.block). Appends to plan.droppedBlocks (ascending). n >= num_hidden_layers → InputError.
void selectBlockDrop(Plan& plan, const ModelConfig& cfg, const CalibStats& stats, int64_t n);

/// The shape of the trimmed model, derived from a plan's drops (validated against cfg).
struct TrimLayout {
    std::vector<int64_t> sourceLayer;                ///< output layer i ← original layer sourceLayer[i]
    std::vector<std::vector<int64_t>> keptExperts;   ///< per output layer: original expert ids, ascending (MoE layers)
    std::vector<int64_t> droppedMoeLayers;           ///< output layer indices whose MoE sub-layer is dropped
    int64_t numExperts = 0;                          ///< routed experts per MoE layer after the drop
};

/// Checks the plan's drops against the model and what HF configs can express; InputError (one
/// line, naming `where`) on: unknown layer/expert/block, duplicates, experts kept < top-k, layers
/// left with different expert counts, every block dropped, an architecture without trim support.
TrimLayout trimLayout(const ModelConfig& cfg, const Plan& plan, const std::string& where);

/// The trimmed model's config.json text: num_hidden_layers, num_local_experts / num_experts /
/// n_routed_experts, mlp_only_layers / decoder_sparse_step / first_k_dense_replace re-indexed,
/// "moewb_dropped_moe_layers" for Layer Drop. Everything else is kept as written.
std::string trimmedConfigJson(const std::string& configJsonText, const ModelConfig& cfg, const TrimLayout& layout,
                              const std::string& where);

/// The plan for the trimmed model (e.g. for `quantize` after `trim`): drops cleared, overrides
/// renamed to the trimmed model's linears (layers re-indexed, experts renumbered), overrides of
/// dropped parts removed; defaults, rules, activation bits and provenance kept. Rules are regexes
/// and are NOT rewritten: a rule naming a layer or expert index applies to the new numbering.
/// trimmedCfg = parseConfigJson(trimmedConfigJson(...)).
Plan planForTrimmed(const Plan& plan, const ModelConfig& cfg, const TrimLayout& layout,
                    const ModelConfig& trimmedCfg);

struct TrimReport {
    int64_t paramsBefore = 0;       ///< tensors of the input checkpoint
    int64_t paramsAfter = 0;        ///< tensors written
    int64_t activeParamsAfter = 0;  ///< paramsAfter minus the zeroed/unused tensors of dropped MoE sub-layers
    int64_t bytesBefore = 0;        ///< tensor bytes in, out
    int64_t bytesAfter = 0;
    int64_t layersBefore = 0, layersAfter = 0;
    int64_t expertsBefore = 0, expertsAfter = 0; ///< per MoE layer
    std::vector<std::string> notes;              ///< what HF loaders will and will not see, one sentence each
};

/// Writes the trimmed checkpoint to outDir (config.json, model.safetensors, companion files,
/// moewb_plan.json with the drops): built in outDir.tmp.<pid>, renamed at the end (nothing left
/// on error). Quantized (GPTQ) inputs are refused. force: replace an existing outDir.
TrimReport trimCheckpoint(const std::string& modelDir, const Plan& plan, const std::string& outDir, bool force,
                          const ProgressFn& progress = {});

} // namespace moewb
