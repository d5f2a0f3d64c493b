// SPDX-License-Identifier: MIT
#include "moewb/core/json_limits.h"

#include "moewb/core/error.h"

namespace moewb {

void checkJsonDepth(const char* begin, size_t size, const std::string& where, int maxDepth)
{
    int depth = 0;
    bool inString = false;
    for (size_t i = 0; i < size; ++i) {
        const char c = begin[i];
        if (inString) {
            if (c == '\\')
                ++i; // skip the escaped character (\" does not end the string)
            else if (c == '"')
                inString = false;
            continue;
        }
        if (c == '"') {
            inString = true;
        } else if (c == '[' || c == '{') {
            if (++depth > maxDepth)
                throw InputError(where, "JSON nests deeper than " + std::to_string(maxDepth) + " levels (at byte "
                                            + std::to_string(i) + ")");
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
}

} // namespace moewb
