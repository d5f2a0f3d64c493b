// SPDX-License-Identifier: MIT
#pragma once

namespace moewb {
const char* version(); ///< "0.1.0"
} // namespace moewb
