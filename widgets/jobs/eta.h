// SPDX-License-Identifier: MIT
// Remaining time of one progress stage, from the rate since the stage began: eta = elapsed ·
// (total − done) / done. A new stage name (or done going backwards) restarts the estimate.
#pragma once

#include <QString>

#include <cstdint>
#include <string>

namespace moewb {

class EtaEstimator {
public:
    /// Feeds one report at time nowSeconds (any monotonic clock); returns the estimate in seconds,
    /// or -1 when unknown (total 0, nothing done yet in this stage).
    double update(const std::string& stage, int64_t done, int64_t total, double nowSeconds);

private:
    std::string m_stage;
    double m_stageStart = 0.0;
    int64_t m_startDone = 0;
    int64_t m_lastDone = -1;
};

/// "12 s", "3 min 05 s", "1 h 02 min"; "" for negative (unknown).
QString formatEta(double seconds);

} // namespace moewb
