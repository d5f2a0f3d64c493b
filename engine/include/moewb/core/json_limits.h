// SPDX-License-Identifier: MIT
// A limit on how deeply JSON input may nest, checked before parsing. nlohmann-json parses
// iteratively, but serializing a value (e.g. for an error message) recurses once per level, so a
// hostile file nested 100,000 deep overflows the stack. Real configs, plans, tokenizers and
// safetensors headers nest fewer than ten levels.
#pragma once

#include <cstddef>
#include <string>

namespace moewb {

constexpr int kMaxJsonDepth = 128;

/// Throws InputError(where, "JSON nests deeper than 128 levels (at byte N)") when the brackets
/// outside strings nest deeper than maxDepth. Linear, no allocation; malformed text is left to the
/// parser.
void checkJsonDepth(const char* begin, size_t size, const std::string& where, int maxDepth = kMaxJsonDepth);
inline void checkJsonDepth(const std::string& text, const std::string& where, int maxDepth = kMaxJsonDepth)
{
    checkJsonDepth(text.data(), text.size(), where, maxDepth);
}

} // namespace moewb
