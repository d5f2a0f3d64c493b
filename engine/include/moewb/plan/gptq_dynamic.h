// SPDX-License-Identifier: MIT
// The export of a plan's per-linear table to GPTQModel's `dynamic` overrides (docs/plan-format.md,
// docs/export-gptq.md) and the lookup GPTQModel/vLLM do over them. engine/plan/gptq_dynamic.cpp.
#pragma once

#include "moewb/plan/plan.h"

#include <optional>
#include <string>
#include <vector>

namespace moewb {

/// GPTQModel `dynamic` overrides: ordered (key, settings) pairs. Keys are "+:regex" or "-:regex"
/// (negative = left unquantized); settings hold only what differs from the global config.
struct DynamicRule {
    std::string key;
    QuantSettings set;
};
struct GptqExport {
    int64_t bits = 4;      ///< global "bits"
    int64_t groupSize = 128;
    bool sym = true;
    bool actOrder = false; ///< "desc_act"
    std::vector<DynamicRule> dynamic;
};

/// Compact export of the table: the most common quantized setting becomes the global config, the
/// rest is grouped by equal settings into regexes over layer/expert/role (e.g. one rule for "these
/// experts of these layers, these projections"). Routers and unquantized linears get "-:" rules.
/// `allLinears` is listLinears(cfg) (so routers can be excluded explicitly).
GptqExport exportGptqDynamic(const std::vector<PlanEntry>& entries, const std::vector<LinearInfo>& allLinears);
/// JSON of the export's `dynamic` object (insertion-ordered).
std::string dynamicToJson(const GptqExport& e);

/// What GPTQModel/vLLM would decide for `name` (first applicable rule, Python re.match semantics:
/// anchored at the start only): nullopt when a "-:" rule excludes it, else the merged settings.
std::optional<PlanEntry> dynamicLookup(const GptqExport& e, const std::string& name);


} // namespace moewb
