// SPDX-License-Identifier: MIT
// The one place where a rule's or an override's settings land on a linear's expanded entry:
// expandPlan applies it, and so does the GUI's incremental expansion (widgets/alloc), so the two
// cannot drift apart when the plan format gains a field. Kept out of plan.h so that its users do
// not rebuild every file that includes the plan format.
#pragma once

#include "moewb/plan/plan.h"

namespace moewb {

/// Copies every field set in s onto e (unset fields leave e alone). Does not apply the N:M
/// normalization of the sparsity, which expandPlan does once after rules and override.
void applyQuantSettings(PlanEntry& e, const QuantSettings& s);

} // namespace moewb
