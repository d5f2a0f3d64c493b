// SPDX-License-Identifier: MIT
// quantize's check of a plan against what the output format's runtime can load (#24,
// docs/cli.md "quantize"): the groups of moewb/plan/target_groups.h whose widths differ.
#pragma once

#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan.h"

#include <string>

namespace moewb {

/// The target whose groups `format` must respect for `plan`: gguf (one ggml type per stacked expert
/// tensor) for the gguf format, else the target the plan was made for (vllm for a plan made for vLLM).
PlanTarget formatConstraintTarget(const Plan& plan, const std::string& format);

/// One line for the user when the plan's widths break that constraint, "" when they do not: how
/// many groups mix widths, one example, and what the format does instead (gguf: each stack at its
/// widest width, as the GGUF export does; gptq and fake: the planned widths are kept).
std::string formatConstraintWarning(const Plan& plan, const ModelConfig& cfg, const std::string& format);

} // namespace moewb
