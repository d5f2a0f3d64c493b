// SPDX-License-Identifier: MIT
// A plan against its output format's constraint (moewb/workflow/format_constraint.h).
#include "moewb/workflow/format_constraint.h"

#include "moewb/plan/target_groups.h"

namespace moewb {

PlanTarget formatConstraintTarget(const Plan& plan, const std::string& format)
{
    return format == "gguf" ? PlanTarget::Gguf : plan.target;
}

namespace {

/// What the format writes instead of the impossible widths.
std::string insteadText(const std::string& format, PlanTarget target)
{
    const std::string runtime = planTargetRuntime(target);
    if (format == "gguf") // engine/export/gguf_layout.cpp: the stack takes the widest type asked
        return "a GGUF file stores one type per stack, so each is written at its widest width (more bytes than "
               "planned)";
    if (format == "gptq")
        return "the checkpoint keeps the planned widths, which " + runtime + " cannot load as they are";
    return "the fake-quantized model keeps the planned widths, which " + runtime + " could not load as they are";
}

} // namespace

std::string formatConstraintWarning(const Plan& plan, const ModelConfig& cfg, const std::string& format)
{
    const PlanTarget target = formatConstraintTarget(plan, format);
    if (target == PlanTarget::Gptq)
        return "";
    const std::vector<PlanEntry> entries = expandPlan(plan, cfg);
    const std::vector<TargetViolation> bad = checkTarget(entries, target);
    if (bad.empty())
        return "";
    return std::to_string(bad.size()) + " of " + std::to_string(sharedGroupCount(entries, target)) + " groups of "
        + "linears that " + planTargetRuntime(target) + " stores at one width have mixed widths (e.g. "
        + bad.front().label + ": " + widthsText(bad.front().widths) + "); " + insteadText(format, target);
}

} // namespace moewb
