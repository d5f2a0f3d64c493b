// SPDX-License-Identifier: MIT
// Target names (moewb/plan/plan_target.h).
#include "moewb/plan/plan_target.h"

namespace moewb {

const char* planTargetName(PlanTarget t)
{
    switch (t) {
    case PlanTarget::Gptq: return "gptq";
    case PlanTarget::Vllm: return "vllm";
    case PlanTarget::Gguf: return "gguf";
    }
    return "gptq";
}

const char* planTargetRuntime(PlanTarget t)
{
    switch (t) {
    case PlanTarget::Gptq: return "GPTQ loaders";
    case PlanTarget::Vllm: return "vLLM";
    case PlanTarget::Gguf: return "llama.cpp";
    }
    return "GPTQ loaders";
}

const std::vector<PlanTarget>& planTargets()
{
    static const std::vector<PlanTarget> all{PlanTarget::Gptq, PlanTarget::Vllm, PlanTarget::Gguf};
    return all;
}

bool parsePlanTarget(const std::string& name, PlanTarget& out)
{
    for (PlanTarget t : planTargets())
        if (name == planTargetName(t)) {
            out = t;
            return true;
        }
    return false;
}

} // namespace moewb
