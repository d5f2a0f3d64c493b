// SPDX-License-Identifier: MIT
// Hugging Face tokenizer.json (BPE model: byte-level and SentencePiece-style), exact.
//
// Supported: model BPE (both merge encodings, byte_fallback, unk_token/fuse_unk, ignore_merges,
// continuing_subword_prefix, end_of_word_suffix); normalizers Sequence, Prepend, Replace, NFC, NFD,
// NFKC, NFKD, Strip; pre-tokenizers Sequence, ByteLevel, Split (all behaviors, invert), Digits,
// Metaspace, Whitespace, WhitespaceSplit; added tokens (special, lstrip, rstrip, single_word,
// normalized); post-processors TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing,
// Sequence; decoders ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence.
// Verified id for id against the JavaScript port of HF tokenizers on GPT-2, Llama-2 (Mixtral),
// Llama-3, Qwen3 and DeepSeek-V3 (tests/engine/tst_tokenizer.cpp). Objects are immutable after
// loading; encode/decode may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moewb {

class Tokenizer {
public:
    /// Loads a tokenizer.json file, or MODEL_DIR/tokenizer.json. An unsupported component
    /// (normalizer, pre-tokenizer, model, decoder, post-processor type) is an InputError naming it.
    static std::shared_ptr<Tokenizer> load(const std::string& pathOrDir);
    static std::shared_ptr<Tokenizer> fromJson(const std::string& jsonText, const std::string& where);
    virtual ~Tokenizer();

    /// addSpecialTokens: apply the post-processor (BOS/EOS), as HF's add_special_tokens=True.
    /// text is UTF-8; each maximal invalid byte sequence is read as U+FFFD (as Python's
    /// bytes.decode(errors="replace") or a WHATWG TextDecoder would give HF).
    std::vector<int32_t> encode(const std::string& text, bool addSpecialTokens = true) const;
    /// skipSpecialTokens: drop added tokens marked special, as HF's skip_special_tokens=True.
    std::string decode(const std::vector<int32_t>& ids, bool skipSpecialTokens = false) const;

    int64_t vocabSize() const; ///< model vocab + added tokens (max id + 1)
    std::optional<int32_t> tokenToId(const std::string& token) const;
    std::string idToToken(int32_t id) const;

    struct Impl;

private:
    Tokenizer();
    std::unique_ptr<Impl> d;
};

} // namespace moewb
