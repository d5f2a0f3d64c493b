// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "moewb/core/error.h"

namespace moewb {

/// One progress report: a stage name, work done out of total (total may be 0 when unknown),
/// and a free-form message (e.g. "layer 3/32").
struct Progress {
    std::string stage;
    int64_t done = 0;
    int64_t total = 0;
    std::string message;
};

/// Progress sink. Returning false requests cancellation: the engine then throws
/// moewb::Cancelled at its next check, leaving no partial output behind.
using ProgressFn = std::function<bool(const Progress&)>;

/// Report progress and throw Cancelled if the sink asks to stop. An empty sink never cancels.
inline void report(const ProgressFn& fn, const std::string& stage, int64_t done, int64_t total,
                   const std::string& message = {})
{
    if (fn && !fn(Progress{stage, done, total, message}))
        throw Cancelled();
}

} // namespace moewb
