// SPDX-License-Identifier: MIT
// The runtime a plan is made for (#24, docs/allocation.md "Targets: budgets the runtime can load"):
// which linears the runtime stores at one width. The groups themselves: moewb/plan/target_groups.h.
#pragma once

#include <string>
#include <vector>

namespace moewb {

/// gptq: per-linear widths (GPTQModel `dynamic`, one entry per module; transformers, GPTQModel).
/// vllm: vLLM's fused kernels: one width per MoE layer's routed experts (gate, up and down
///       together), per q/k/v and per gate/up of a dense or shared-expert MLP.
/// gguf: llama.cpp: one ggml type per stacked expert tensor (all experts of a layer and projection).
enum class PlanTarget { Gptq, Vllm, Gguf };

const char* planTargetName(PlanTarget t);          ///< "gptq", "vllm", "gguf"
const char* planTargetRuntime(PlanTarget t);       ///< "GPTQ loaders", "vLLM", "llama.cpp"
const std::vector<PlanTarget>& planTargets();      ///< every target, in the order above
/// Parses a name of planTargetName(); false (out untouched) for anything else.
bool parsePlanTarget(const std::string& name, PlanTarget& out);

} // namespace moewb
