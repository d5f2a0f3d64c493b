// SPDX-License-Identifier: MIT
// The one format moewb records creation times in (stats provenance, plan provenance).
#pragma once

#include <string>

namespace moewb {

/// The current time in UTC as ISO 8601 to the second, e.g. "2025-01-31T12:00:00Z".
std::string utcTimestamp();

} // namespace moewb
