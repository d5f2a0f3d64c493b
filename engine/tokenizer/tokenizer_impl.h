// SPDX-License-Identifier: MIT
// Internals of tokenizer.json (moewb/tokenizer/tokenizer.h): one component family per file.
//
//   tokenizer.cpp            load/fromJson, the encode pipeline, decode, lookups
//   tokenizer_unicode.cpp    UTF-8 helpers, U+FFFD sanitising, White_Space, NFC/NFKC/NFD/NFKD
//   tokenizer_regex.cpp      PCRE2 wrapper (Split patterns, Replace)
//   tokenizer_added.cpp      added tokens: split the text on them (lstrip/rstrip/single_word)
//   tokenizer_normalize.cpp  normalizers
//   tokenizer_pretok.cpp     pre-tokenizers (ByteLevel, Split, Digits, Metaspace, Sequence)
//   tokenizer_bpe.cpp        the BPE model (heap merge over a linked list, word cache)
//   tokenizer_decode.cpp     decoders
//   tokenizer_post.cpp       post-processors (TemplateProcessing, ByteLevel, Bert/Roberta, Sequence)
//
// Note [Tokenizer text]: the pipeline works on std::string holding valid UTF-8 only. encode()
// replaces each maximal invalid subsequence by U+FFFD first (what a WHATWG/Python decoder with
// errors="replace" gives, since Hugging Face tokenizers only ever see Unicode strings).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace moewb::tok {

using json = nlohmann::json;

// ---- tokenizer_unicode.cpp -----------------------------------------------------------------

/// Decodes the code point at s[i] of valid UTF-8; returns its length in bytes.
inline size_t utf8Next(std::string_view s, size_t i, uint32_t& cp)
{
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    if ((c >> 5) == 6) {
        cp = (uint32_t(c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
        return 2;
    }
    if ((c >> 4) == 14) {
        cp = (uint32_t(c & 0x0F) << 12) | (uint32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6)
            | (static_cast<unsigned char>(s[i + 2]) & 0x3F);
        return 3;
    }
    cp = (uint32_t(c & 0x07) << 18) | (uint32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 12)
        | (uint32_t(static_cast<unsigned char>(s[i + 2]) & 0x3F) << 6) | (static_cast<unsigned char>(s[i + 3]) & 0x3F);
    return 4;
}

/// Length in bytes of the UTF-8 sequence starting with lead byte c (valid UTF-8 assumed).
inline size_t utf8Len(unsigned char c)
{
    return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
}

void appendUtf8(std::string& out, uint32_t cp);
/// True if s is valid UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool isValidUtf8(std::string_view s);
/// s with every maximal invalid subpart replaced by U+FFFD (Unicode "best practice", as WHATWG).
std::string sanitizeUtf8(std::string_view s);
/// UTF-8 of bytes with invalid parts replaced (as from_utf8_lossy / TextDecoder).
inline std::string lossyUtf8(std::string_view s)
{
    return isValidUtf8(s) ? std::string(s) : sanitizeUtf8(s);
}
/// Unicode White_Space property.
bool isWhiteSpace(uint32_t cp);
/// Letters, marks, numbers and connector punctuation (regex \w with Unicode semantics).
bool isWordChar(uint32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string unicodeNormalize(std::string_view s, NormalForm form);

// ---- tokenizer_regex.cpp -------------------------------------------------------------------

/// A compiled PCRE2 pattern (UTF + UCP) or literal string, matched on valid UTF-8.
class Regex {
public:
    /// literal: the pattern is a plain string (Split/Replace {"String": ...}).
    Regex(const std::string& pattern, bool literal, const std::string& where);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    /// Non-empty, non-overlapping matches, left to right, as [begin, end) byte offsets.
    void findAll(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;
    std::string replaceAll(std::string_view s, std::string_view with) const;
    /// Pattern given as {"Regex": "..."} or {"String": "..."}.
    static std::unique_ptr<Regex> fromPattern(const json& pattern, const std::string& where);

private:
    pcre2_real_code_8* m_code = nullptr;
    std::string m_literal; // non-empty: plain substring search, no PCRE2
};

// ---- pieces of text flowing through the pipeline --------------------------------------------

struct Piece {
    std::string text;
    bool atStart = false; ///< begins at offset 0 of the input (Metaspace prepend_scheme "first")
};

// ---- tokenizer_normalize.cpp ---------------------------------------------------------------

class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void apply(std::string& s) const = 0;
};
/// null → nullptr. Unsupported type → InputError naming it.
std::unique_ptr<Normalizer> makeNormalizer(const json& j, const std::string& where);

// ---- tokenizer_pretok.cpp ------------------------------------------------------------------

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    /// Refines the pieces in place (order kept, empty pieces dropped).
    virtual void apply(std::vector<Piece>& pieces) const = 0;
};
std::unique_ptr<PreTokenizer> makePreTokenizer(const json& j, const std::string& where);

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
/// Splits text at the given matches (sorted, non-overlapping) per behavior; appends to out.
void splitByMatches(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                    bool invert, std::vector<Piece>& out);
/// GPT-2's reversible byte ↔ printable code point map (ByteLevel pre-tokenizer and decoder).
const std::string& byteLevelChar(unsigned char b); // UTF-8 of the code point for byte b
int byteLevelByte(uint32_t cp); // inverse; -1 if cp is not in the map

// ---- tokenizer_bpe.cpp ---------------------------------------------------------------------

class Bpe {
public:
    Bpe(const json& model, const std::string& where);
    /// Appends the ids of one pre-tokenized word.
    void encodeWord(std::string_view word, std::vector<int32_t>& out) const;

    const std::vector<std::string>& idToToken() const { return m_idToTok; }
    const std::string* token(int32_t id) const;
    int32_t find(std::string_view token) const; ///< -1 if absent
    int32_t maxId() const { return int32_t(m_idToTok.size()) - 1; }

private:
    struct Merge {
        int32_t rank;
        int32_t id;
    };
    void mergeWord(std::string_view word, std::vector<int32_t>& out) const;
    bool symbolIds(std::string_view s, std::vector<int32_t>& ids) const; // vocab or byte fallback

    std::string m_where;
    std::vector<std::string> m_idToTok;
    std::unordered_map<std::string_view, int32_t> m_vocab; // views into m_idToTok
    std::unordered_map<uint64_t, Merge> m_merges; // left id << 32 | right id
    int32_t m_unk = -1;
    bool m_fuseUnk = false, m_byteFallback = false, m_ignoreMerges = false;
    std::string m_prefix, m_suffix; // continuing_subword_prefix, end_of_word_suffix
    int32_t m_byteIds[256];

    mutable std::mutex m_cacheMutex;
    mutable std::unordered_map<std::string, std::vector<int32_t>> m_cache;
};

// ---- tokenizer_added.cpp -------------------------------------------------------------------

struct AddedToken {
    std::string content;
    int32_t id = -1;
    bool special = false, lstrip = false, rstrip = false, singleWord = false, normalized = false;
};

/// One part of the input: either plain text (added == -1) or an added token's id.
struct Segment {
    std::string text;
    int32_t added = -1;
    bool atStart = false;
};

/// Matches a set of added tokens in text (leftmost, then longest).
class AddedMatcher {
public:
    void build(const AddedToken* begin, const AddedToken* end); // keeps pointers into [begin, end)
    bool empty() const { return m_all.empty(); }
    /// Splits text segments (added == -1) further on the tokens; added segments pass through.
    void split(std::vector<Segment>& segments) const;

private:
    std::vector<const AddedToken*> m_all;
    std::vector<std::vector<const AddedToken*>> m_byFirstByte; // 256 buckets, longest first
};

// ---- tokenizer_decode.cpp ------------------------------------------------------------------

class Decoder {
public:
    virtual ~Decoder() = default;
    virtual void apply(std::vector<std::string>& tokens) const = 0;
};
std::unique_ptr<Decoder> makeDecoder(const json& j, const std::string& where);

// ---- tokenizer_post.cpp --------------------------------------------------------------------

/// The single-sequence part of a post-processor: ids before and after the sequence.
struct PostProcessor {
    std::vector<int32_t> prefix, suffix;
};
/// null → empty. Unsupported type → InputError naming it.
PostProcessor makePostProcessor(const json& j, const std::string& where);

/// "type" of a component object ("" if absent).
inline std::string typeOf(const json& j)
{
    if (!j.is_object())
        return std::string();
    auto it = j.find("type");
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// Optional string field: missing or null → fallback.
inline std::string optString(const json& j, const char* key, const std::string& fallback = std::string())
{
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? fallback : it->get<std::string>();
}
inline bool optBool(const json& j, const char* key, bool fallback)
{
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? fallback : it->get<bool>();
}

} // namespace moewb::tok
