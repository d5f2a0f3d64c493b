// SPDX-License-Identifier: MIT
// Wall-clock timing shared by the benchmarks.
#pragma once

#include <chrono>
#include <functional>

namespace moewb::bench {

/// Seconds of one call of f (steady clock).
inline double seconds(const std::function<void()>& f)
{
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace moewb::bench
