// SPDX-License-Identifier: MIT
// The layers × experts table of the coverage view (#25): per routed expert, the tokens the
// calibration stats routed to it and, when a quantize run's report is loaded (quantcoverage.h),
// the tokens routed in that run, the rows of its Hessians after balancing and whether it fell back
// to RTN. Each cell gets a status against the GPTQ minimum (--min-expert-tokens).
#pragma once

#include "coverage/quantcoverage.h"

#include <QColor>
#include <QString>

#include <cstdint>
#include <vector>

namespace moewb {

struct CalibStats;

/// Ordered from worst to best: the colour scale of CoverageMeasure::Status runs the same way.
enum class CoverageStatus {
    Fallback,     ///< the quantize run quantized it with RTN (too few Hessian tokens after balancing)
    BelowMinimum, ///< no run loaded: fewer routed calibration tokens than the minimum
    Lifted,       ///< the run routed it fewer than the minimum, balancing lifted it to GPTQ
    Enough,       ///< at least the minimum routed: GPTQ
    NoData,       ///< neither the stats nor the run know this expert
};

enum class CoverageMeasure { Status, StatsRouted, RunRouted, HessianTokens, HessianWeight };

struct CoverageCell {
    int64_t statsRouted = -1;   ///< calibration stats' expert_tokens (-1: no stats for it)
    int64_t statsTokens = 0;    ///< the layer's calibration tokens in the stats
    int64_t topK = 0;
    const QuantCoverageExpert* run = nullptr;        ///< the run's entry, nullptr when not listed
    const QuantCoverageFallback* fallback = nullptr; ///< the run's fallback entry, nullptr when GPTQ ran
    CoverageStatus status = CoverageStatus::NoData;
};

struct CoverageMatrix {
    std::vector<int> layers; ///< rows: decoder layer indices (MoE layers of the stats and the run)
    int experts = 0;         ///< columns
    int64_t minExpertTokens = 32;
    std::vector<CoverageCell> cells; ///< layers.size() × experts, row-major

    const CoverageCell& at(int row, int col) const { return cells[size_t(row) * size_t(experts) + size_t(col)]; }
    int rowOfLayer(int layer) const; ///< -1 when not a row
};

/// Builds the table from the stats and/or a run (either may be null; `run` must outlive the
/// result). The minimum is the run's when there is one, else minExpertTokens.
CoverageMatrix buildCoverageMatrix(const CalibStats* stats, const QuantCoverage* run, int64_t minExpertTokens);

/// The cell's number for a measure (Status: the status as 0 … 3), NaN when it has none.
double coverageValue(const CoverageCell& cell, CoverageMeasure measure);
/// Whether a measure needs a quantize run.
bool measureNeedsRun(CoverageMeasure measure);
QString coverageMeasureName(CoverageMeasure measure);        ///< short, for the menu and the colour scale
QString coverageMeasureDescription(CoverageMeasure measure); ///< one sentence, for tooltips
/// A short name, e.g. "RTN fallback".
QString coverageStatusName(CoverageStatus status);
/// The fixed colour of each status (CoverageMeasure::Status draws with these).
QColor coverageStatusColor(CoverageStatus status);

} // namespace moewb
