// SPDX-License-Identifier: MIT
// The Plan value (moewb/plan/plan.h): equality.
#include "moewb/plan/plan.h"

namespace moewb {

static bool operator==(const PlanProvenance& a, const PlanProvenance& b)
{
    return a.strategy == b.strategy && a.modelPath == b.modelPath && a.statsPath == b.statsPath
        && a.architecture == b.architecture && a.targetBits == b.targetBits && a.targetBytes == b.targetBytes
        && a.achievedBits == b.achievedBits && a.achievedBytes == b.achievedBytes && a.seed == b.seed
        && a.params == b.params && a.toolVersion == b.toolVersion && a.created == b.created;
}

bool operator==(const PlanRule& a, const PlanRule& b)
{
    return a.match == b.match && a.set == b.set;
}

bool operator==(const Plan& a, const Plan& b)
{
    return a.version == b.version && a.defaults == b.defaults && a.rules == b.rules && a.overrides == b.overrides
        && a.droppedExperts == b.droppedExperts && a.droppedLayers == b.droppedLayers
        && a.droppedBlocks == b.droppedBlocks && a.activationBits == b.activationBits
        && a.ggufTokenEmbd == b.ggufTokenEmbd && a.ggufOutput == b.ggufOutput && a.target == b.target
        && a.provenance == b.provenance;
}

} // namespace moewb
