// SPDX-License-Identifier: MIT
#include "moewb/core/version.h"

namespace moewb {
const char* version()
{
    return MOEWB_VERSION;
}
} // namespace moewb
