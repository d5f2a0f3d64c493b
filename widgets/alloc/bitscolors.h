// SPDX-License-Identifier: MIT
// One colour scale for bit-widths, shared by the allocation tree and the budget gauge: 2 bits red,
// 3 orange, 4 yellow, 8 green, 16 (unquantized) blue; averages in between blend in log2 space.
#pragma once

#include <QColor>

namespace moewb {

QColor bitsColor(double bits);

} // namespace moewb
