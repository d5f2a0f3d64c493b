// SPDX-License-Identifier: MIT
// The token list of the GGUF export's tokenizer.ggml.* keys (docs/export-gguf.md, "Tokenizer metadata"): tokens,
// llama.cpp token types and (SentencePiece-style) scores, from a parsed tokenizer.json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace moewb::gguf_export {

/// llama.cpp's token types (tokenizer.ggml.token_type).
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct GgufVocab {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<float> scores; ///< SentencePiece-style vocabularies only; empty for byte-level BPE
};

/// Which tokenizer.ggml.model a tokenizer.json maps to: "gpt2" (byte-level BPE), "llama" (BPE with byte
/// fallback, or Unigram: SentencePiece converted to tokenizer.json), or "" (neither).
std::string ggmlTokenizerModel(const nlohmann::json& j);

/// Byte-level BPE: every id below max(vocabSize, highest id + 1); gaps are "[PAD<id>]", UNUSED.
GgufVocab byteLevelVocab(const nlohmann::json& j, int64_t vocabSize);

/// SentencePiece-style: tokens with scores; <0xNN> pieces are BYTE, the unk piece UNKNOWN. A BPE model's score
/// of a piece is minus the rank of the first merge that makes it (the merge order as llama.cpp's score order).
GgufVocab sentencePieceVocab(const nlohmann::json& j, int64_t vocabSize);

/// "a b" per merge, from either of tokenizer.json's two spellings (a space inside a part becomes U+0120, as
/// llama.cpp's converter writes it).
std::vector<std::string> bpeMerges(const nlohmann::json& j);

/// Whether an added token's text looks like a control token to llama.cpp's converter (<|…|>, <｜…｜>, …).
bool looksSpecial(const std::string& text);

} // namespace moewb::gguf_export
