// SPDX-License-Identifier: MIT
// tokenizer.ggml.* of the GGUF export (docs/export-gguf.md, "Format reference"): the vocabulary, token types and merges of
// a byte-level BPE tokenizer.json ("gpt2") or a SentencePiece-style one ("llama"); "none" for every other kind.
#pragma once

#include "gguf/gguf_file.h"
#include "moewb/hfconfig/hf_config.h"

#include <string>
#include <utility>
#include <vector>

namespace moewb::gguf_export {

struct TokenizerMeta {
    std::vector<std::pair<std::string, gguf::Value>> kv; ///< in file order
    std::string note;                                    ///< what llama.cpp will do differently; may be empty
};

/// From MODEL_DIR/tokenizer.json; InputError naming it when it is not valid JSON.
TokenizerMeta tokenizerMetadata(const std::string& modelDir, const ModelConfig& cfg);

} // namespace moewb::gguf_export
