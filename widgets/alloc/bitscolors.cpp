// SPDX-License-Identifier: MIT
#include "alloc/bitscolors.h"

#include <algorithm>
#include <cmath>

namespace moewb {

QColor bitsColor(double bits)
{
    struct Stop {
        double bits;
        QColor color;
    };
    static const Stop stops[] = {
        {2, QColor(230, 97, 86)},   {3, QColor(246, 168, 92)},  {4, QColor(250, 224, 128)},
        {8, QColor(150, 210, 130)}, {16, QColor(130, 170, 225)},
    };
    if (!(bits > 0))
        return QColor(200, 200, 200);
    const double x = std::log2(std::clamp(bits, 2.0, 16.0));
    for (size_t i = 1; i < std::size(stops); ++i) {
        const double a = std::log2(stops[i - 1].bits), b = std::log2(stops[i].bits);
        if (x <= b) {
            const double t = (x - a) / (b - a);
            const QColor& c0 = stops[i - 1].color;
            const QColor& c1 = stops[i].color;
            return QColor(int(std::lround(c0.red() + t * (c1.red() - c0.red()))),
                          int(std::lround(c0.green() + t * (c1.green() - c0.green()))),
                          int(std::lround(c0.blue() + t * (c1.blue() - c0.blue()))));
        }
    }
    return stops[std::size(stops) - 1].color;
}

} // namespace moewb
