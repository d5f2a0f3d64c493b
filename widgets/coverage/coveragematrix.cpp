// SPDX-License-Identifier: MIT
#include "coverage/coveragematrix.h"

#include "moewb/stats/stats.h"

#include <QCoreApplication>

#include <algorithm>
#include <cmath>
#include <set>

namespace moewb {

namespace {

QString tr(const char* text)
{
    return QCoreApplication::translate("CoverageMatrix", text);
}

CoverageStatus statusOf(const CoverageCell& c, int64_t minimum)
{
    if (c.run) {
        if (c.fallback || c.run->hessianTokens < minimum)
            return CoverageStatus::Fallback;
        return c.run->routedTokens < minimum ? CoverageStatus::Lifted : CoverageStatus::Enough;
    }
    if (c.statsRouted >= 0)
        return c.statsRouted < minimum ? CoverageStatus::BelowMinimum : CoverageStatus::Enough;
    return CoverageStatus::NoData;
}

} // namespace

int CoverageMatrix::rowOfLayer(int layer) const
{
    const auto it = std::find(layers.begin(), layers.end(), layer);
    return it == layers.end() ? -1 : int(it - layers.begin());
}

CoverageMatrix buildCoverageMatrix(const CalibStats* stats, const QuantCoverage* run, int64_t minExpertTokens)
{
    CoverageMatrix m;
    m.minExpertTokens = run ? run->minExpertTokens : minExpertTokens;
    std::set<int> layers;
    if (stats)
        for (const LayerStats& l : stats->layers)
            if (l.isMoe) {
                layers.insert(int(l.layer));
                m.experts = std::max(m.experts, int(l.router.numExperts));
            }
    if (run)
        for (const QuantCoverageExpert& e : run->experts) {
            layers.insert(e.layer);
            m.experts = std::max(m.experts, e.expert + 1);
        }
    m.layers.assign(layers.begin(), layers.end());
    m.cells.resize(m.layers.size() * size_t(m.experts));
    for (size_t row = 0; row < m.layers.size(); ++row) {
        const int layer = m.layers[row];
        const RouterStats* router = stats ? stats->router(layer) : nullptr;
        for (int e = 0; e < m.experts; ++e) {
            CoverageCell& c = m.cells[row * size_t(m.experts) + size_t(e)];
            if (router && e < router->numExperts) {
                c.statsRouted = router->expertTokens[size_t(e)];
                c.statsTokens = router->tokens;
                c.topK = router->topK;
            }
            if (run) {
                c.run = run->find(layer, e);
                c.fallback = run->fallback(layer, e);
            }
            c.status = statusOf(c, m.minExpertTokens);
        }
    }
    return m;
}

double coverageValue(const CoverageCell& c, CoverageMeasure measure)
{
    const double none = std::nan("");
    switch (measure) {
    case CoverageMeasure::Status: return c.status == CoverageStatus::NoData ? none : double(int(c.status));
    case CoverageMeasure::StatsRouted: return c.statsRouted >= 0 ? double(c.statsRouted) : none;
    case CoverageMeasure::RunRouted: return c.run ? double(c.run->routedTokens) : none;
    case CoverageMeasure::HessianTokens: return c.run ? double(c.run->hessianTokens) : none;
    case CoverageMeasure::HessianWeight: return c.run ? c.run->hessianWeight : none;
    }
    return none;
}

bool measureNeedsRun(CoverageMeasure measure)
{
    return measure == CoverageMeasure::RunRouted || measure == CoverageMeasure::HessianTokens
        || measure == CoverageMeasure::HessianWeight;
}

QString coverageMeasureName(CoverageMeasure measure)
{
    switch (measure) {
    case CoverageMeasure::Status: return tr("GPTQ or RTN");
    case CoverageMeasure::StatsRouted: return tr("routed (stats)");
    case CoverageMeasure::RunRouted: return tr("routed (run)");
    case CoverageMeasure::HessianTokens: return tr("Hessian tokens");
    case CoverageMeasure::HessianWeight: return tr("Hessian weight");
    }
    return {};
}

QString coverageMeasureDescription(CoverageMeasure measure)
{
    switch (measure) {
    case CoverageMeasure::Status: return tr("Whether the quantize run used GPTQ or fell back to RTN (colours)");
    case CoverageMeasure::StatsRouted: return tr("Tokens the router sent to the expert in the calibration stats");
    case CoverageMeasure::RunRouted: return tr("Tokens the router sent to the expert in the quantize run");
    case CoverageMeasure::HessianTokens: return tr("Tokens the quantize run built the expert's Hessians from, after balancing");
    case CoverageMeasure::HessianWeight:
        return tr("Sum of those tokens' weights (their router probabilities when balancing uses all tokens)");
    }
    return {};
}

QString coverageStatusName(CoverageStatus status)
{
    switch (status) {
    case CoverageStatus::Fallback: return tr("RTN fallback");
    case CoverageStatus::BelowMinimum: return tr("below the minimum");
    case CoverageStatus::Lifted: return tr("lifted by balancing");
    case CoverageStatus::Enough: return tr("enough tokens");
    case CoverageStatus::NoData: return tr("no data");
    }
    return {};
}

QColor coverageStatusColor(CoverageStatus status)
{
    switch (status) {
    case CoverageStatus::Fallback: return QColor(0xd7, 0x30, 0x1f);     // red
    case CoverageStatus::BelowMinimum: return QColor(0xf4, 0xa5, 0x82); // salmon: a warning, not yet a fact
    case CoverageStatus::Lifted: return QColor(0xfd, 0xd4, 0x49);       // yellow
    case CoverageStatus::Enough: return QColor(0x3b, 0x7d, 0xd8);       // blue
    case CoverageStatus::NoData: return QColor(0xc0, 0xc0, 0xc0);
    }
    return {};
}

} // namespace moewb
