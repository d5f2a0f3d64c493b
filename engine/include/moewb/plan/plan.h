// SPDX-License-Identifier: MIT
// The quantization plan (#7): one editable JSON file saying how every linear of a model is
// quantized. Users' view: docs/plan-format.md. In moewb_io (engine/plan/, no torch, usable by the
// CLI and the GUI), one file a job: plan_json.cpp (read and write), plan_validate.cpp (against a
// model), plan_expand.cpp (the per-linear table), plan_size.cpp (GPTQ byte accounting). The
// settings themselves: moewb/plan/quant_settings.h; the export to GPTQModel's `dynamic`
// overrides: moewb/plan/gptq_dynamic.h.
#pragma once

#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan_target.h"
#include "moewb/plan/quant_settings.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moewb {

constexpr int64_t kPlanFormatVersion = 1;

/// Ordered regex rule: applies to every linear whose whole name matches `match` (ECMAScript).
struct PlanRule {
    std::string match;
    QuantSettings set;
};

struct DroppedExpert {
    int64_t layer = 0;
    int64_t expert = 0;
    bool operator==(const DroppedExpert& o) const { return layer == o.layer && expert == o.expert; }
};

/// Where a plan came from: kept so `plan show` can say it and reruns can reproduce it.
struct PlanProvenance {
    std::string strategy;
    std::string modelPath;
    std::string statsPath;
    std::string architecture;
    double targetBits = 0.0;   ///< 0 when the budget was given in bytes
    int64_t targetBytes = 0;   ///< byte budget of the whole model
    double achievedBits = 0.0;
    int64_t achievedBytes = 0; ///< whole model, GPTQ storage
    int64_t seed = 0;
    std::string params;        ///< strategy parameters as "k=4 top_p=0.25"
    std::string toolVersion;
    std::string created;
};

struct Plan {
    int64_t version = kPlanFormatVersion;
    PlanDefaults defaults;
    std::vector<PlanRule> rules;
    std::map<std::string, QuantSettings> overrides; ///< full linear name → settings
    std::vector<DroppedExpert> droppedExperts;
    std::vector<int64_t> droppedLayers; ///< MoE layers removed (Layer Drop)
    std::vector<int64_t> droppedBlocks; ///< whole decoder blocks removed (Block Drop)
    int64_t activationBits = 16;        ///< 16 = activations not quantized
    /// GGUF (#26): ggml types of token_embd and output.weight (plan key "gguf"; "" = the export's
    /// unquantized type). --format fake applies them too (quantized and dequantized in place).
    std::string ggufTokenEmbd;
    std::string ggufOutput;
    /// The runtime the widths are made for (#24; plan key "target", absent = gptq): which linears
    /// must share one width (moewb/plan/target_groups.h).
    PlanTarget target = PlanTarget::Gptq;
    PlanProvenance provenance;
};

bool operator==(const PlanRule& a, const PlanRule& b);
bool operator==(const Plan& a, const Plan& b);

/// Parses plan JSON. `where` (the file name) starts every error; errors name the JSON path, e.g.
/// "plan.json: $.rules[1].match: invalid regex '(': ...". Unknown keys are errors (typos would
/// otherwise silently do nothing).
Plan parsePlanJson(const std::string& text, const std::string& where);
Plan loadPlan(const std::string& path);
std::string planToJson(const Plan& plan);
/// Atomic: written to path + ".tmp.<pid>" and renamed over path.
void savePlan(const Plan& plan, const std::string& path);

/// Linears a plan may quantize: everything listLinears() gives except routers and Qwen2-MoE's
/// shared_expert_gate (tiny, numerically sensitive, never quantized — docs/algorithms.md §2).
bool isQuantizableRole(LinearRole role);
/// listLinears(cfg) without the roles isQuantizableRole excludes, in listLinears' order.
std::vector<LinearInfo> quantizableLinears(const ModelConfig& cfg);

/// Checks the plan against a model: override names must be quantizable linears of the model,
/// dropped experts/layers/blocks must exist. InputError names `where` and the JSON path.
void validatePlan(const Plan& plan, const ModelConfig& cfg, const std::string& where);

/// One row of the expanded per-linear table: a linear and its resolved settings.
struct PlanEntry : LinearSettings {
    std::string name;
    int64_t layer = -1;
    int64_t expert = -1;
    LinearRole role = LinearRole::Q;
    int64_t inFeatures = 0;
    int64_t outFeatures = 0;
    bool dropped = false; ///< belongs to a dropped expert, layer or block
};

/// Defaults, then every matching rule in order (later rules override fields set by earlier ones),
/// then the explicit override. One entry per quantizable linear, in listLinears() order.
std::vector<PlanEntry> expandPlan(const Plan& plan, const ModelConfig& cfg);

/// Real GPTQ storage of one linear [out, in] (docs/export-gptq.md, "What is written"):
/// qweight int32 [ceil(K*b/32), N], qzeros int32 [ceil(K/G), ceil(N*b/32)], scales fp16
/// [ceil(K/G), N], g_idx int32 [K]; bits 16 = the bf16 weight (2*K*N). Biases are not counted
/// (same size either way).
int64_t gptqLinearBytes(int64_t inFeatures, int64_t outFeatures, int64_t bits, int64_t groupSize);

/// Bytes of everything a plan never quantizes (embeddings, lm_head, norms, routers, biases,
/// shared-expert gates) stored as bf16.
int64_t fixedModelBytes(const ModelConfig& cfg);

struct PlanSize {
    int64_t linearBytes = 0;     ///< quantizable linears, GPTQ storage
    int64_t modelBytes = 0;      ///< linearBytes + fixedModelBytes
    int64_t quantParams = 0;     ///< weights of the quantizable linears (dropped ones excluded)
    double averageBits = 0.0;    ///< sum(bits*numel)/sum(numel), the papers' definition (no scales)
    double effectiveBits = 0.0;  ///< 8*linearBytes/quantParams: scales, zeros and g_idx included
    /// Pruning: the bytes above are those of the dense export (pruned weights are stored as zeros,
    /// so they cost the same); these count what survives: Σ numel·(1 − sparsity) and its share.
    int64_t nonzeroParams = 0;
    double density = 1.0;        ///< nonzeroParams / quantParams (1 when nothing is pruned)
};
/// Dropped entries cost nothing.
PlanSize planSize(const std::vector<PlanEntry>& entries, const ModelConfig& cfg);

} // namespace moewb
