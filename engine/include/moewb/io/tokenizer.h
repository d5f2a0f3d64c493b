// SPDX-License-Identifier: MIT
// Hugging Face tokenizer.json (BPE model: byte-level and SentencePiece-style), exact.
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
