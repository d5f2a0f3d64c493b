// SPDX-License-Identifier: MIT
// The GPTQ quantizer grid (docs/algorithms.md §3.1), shared by RTN and GPTQ so that both compute the same
// scale, zero and code bit for bit. Plain C++ (no torch): scalar helpers inlined into the loops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace moewb {

/// Grid of one group. T is the compute type (float in the engine, double in the float64 test mode).
template <typename T>
struct Grid {
    T scale;
    T zero;
};

/// From the group's smallest and largest weight: xmin = min(0, lo), xmax = max(0, hi);
/// sym: xmax = max(|xmin|, xmax), xmin = -xmax when xmin < 0; xmin == xmax == 0 → [-1, 1];
/// scale = (xmax - xmin) / maxq; zero = 2^(bits-1) (sym) or round(-xmin / scale) (asym).
template <typename T>
inline Grid<T> gridFromRange(T lo, T hi, int64_t bits, bool sym)
{
    const T maxq = T((int64_t(1) << bits) - 1);
    T xmin = std::min(lo, T(0));
    T xmax = std::max(hi, T(0));
    if (sym) {
        xmax = std::max(-xmin, xmax);
        if (xmin < 0)
            xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) {
        xmin = -1;
        xmax = 1;
    }
    Grid<T> g;
    g.scale = (xmax - xmin) / maxq;
    g.zero = sym ? T(int64_t(1) << (bits - 1)) : std::nearbyint(-xmin / g.scale);
    return g;
}

/// q = clamp(round(w / scale) + zero, 0, maxq), round half to even (the default rounding mode).
template <typename T>
inline T quantCode(T w, T scale, T zero, T maxq)
{
    return std::min(std::max(std::nearbyint(w / scale) + zero, T(0)), maxq);
}

/// w' = scale * (q - zero).
template <typename T>
inline T dequantCode(T q, T scale, T zero)
{
    return scale * (q - zero);
}

} // namespace moewb
