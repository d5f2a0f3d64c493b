// SPDX-License-Identifier: MIT
// moewb stats specialization STATS.h5 [--json]: routing specialization by domain (called by cmd_stats.cpp).
#pragma once

#include <QStringList>

namespace moewb::cli {

/// args[0] is the program label ("moewb stats specialization"), the rest its arguments.
int runStatsSpecialization(const QStringList& args);

} // namespace moewb::cli
