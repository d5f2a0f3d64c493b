// SPDX-License-Identifier: MIT
// tokenizer.ggml.pre for a byte-level BPE tokenizer.json (docs/export-gguf.md, "Pre-tokenizer name"): the name
// under which llama.cpp knows the tokenizer's pre-tokenizer regexes.
#pragma once

#include "moewb/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace moewb::gguf_export {

struct PreTokenizerName {
    std::string name; ///< "default" when not recognised
    std::string how;  ///< "regex", "regex and probe hash", "probe hash" or "" (not recognised)
    std::string probeHash; ///< SHA-256 of the probe text's ids, as llama.cpp's converter prints it
};

/// The pre_tokenizer's structure (its Split regexes, or GPT-2's plain ByteLevel, and the model's ignore_merges)
/// compared with the known ones decides how llama.cpp must split; among the names llama.cpp treats alike, the one
/// llama.cpp's converter would pick from the SHA-256 of the probe text's ids wins. A structure not in the table
/// falls back to that hash alone (e.g. deepseek-llm); neither known: "default", how "".
PreTokenizerName preTokenizerName(const nlohmann::json& tokenizerJson, const Tokenizer& tok);

/// The probe text (431 bytes of UTF-8) and the "[id, id, …]" SHA-256 of its ids.
const std::string& preTokenizerProbe();
std::string probeHash(const Tokenizer& tok);

/// By the pre_tokenizer's structure alone; nullopt when not one of the known ones.
std::optional<std::string> preTokenizerByRegex(const nlohmann::json& tokenizerJson);

} // namespace moewb::gguf_export
