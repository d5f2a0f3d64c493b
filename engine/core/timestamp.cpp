// SPDX-License-Identifier: MIT
#include "moewb/core/timestamp.h"

#include <ctime>

namespace moewb {

std::string utcTimestamp()
{
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

} // namespace moewb
