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
    std::string how;  ///< "probe hash", "regex" or "" (not recognised)
    std::string probeHash; ///< SHA-256 of the probe text's ids, as llama.cpp's converter prints it
};

/// The ids of llama.cpp's probe text (special tokens added) hashed and looked up among the known vocabularies;
/// else the pre_tokenizer's Split regexes (or plain GPT-2 ByteLevel) compared with the known ones.
PreTokenizerName preTokenizerName(const nlohmann::json& tokenizerJson, const Tokenizer& tok);

/// The probe text (431 bytes of UTF-8) and the "[id, id, …]" SHA-256 of its ids.
const std::string& preTokenizerProbe();
std::string probeHash(const Tokenizer& tok);

/// By the pre_tokenizer's structure alone; nullopt when not one of the known ones.
std::optional<std::string> preTokenizerByRegex(const nlohmann::json& tokenizerJson);

} // namespace moewb::gguf_export
