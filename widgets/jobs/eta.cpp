// SPDX-License-Identifier: MIT
#include "jobs/eta.h"

#include <cmath>

namespace moewb {

double EtaEstimator::update(const std::string& stage, int64_t done, int64_t total, double nowSeconds)
{
    if (stage != m_stage || done < m_lastDone) {
        m_stage = stage;
        m_stageStart = nowSeconds;
        m_startDone = done;
    }
    m_lastDone = done;
    const int64_t progressed = done - m_startDone;
    if (total <= 0 || progressed <= 0 || done > total)
        return -1.0;
    const double elapsed = nowSeconds - m_stageStart;
    return elapsed * double(total - done) / double(progressed);
}

QString formatEta(double seconds)
{
    if (!(seconds >= 0))
        return {};
    const int64_t s = int64_t(std::llround(seconds));
    if (s < 60)
        return QStringLiteral("%1 s").arg(s);
    if (s < 3600)
        return QStringLiteral("%1 min %2 s").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60, 2, 10, QLatin1Char('0'));
}

} // namespace moewb
