// SPDX-License-Identifier: MIT
// tokenizer.json: byte-level BPE (GPT-2 / Llama-3 / Qwen style). Components outside this set are
// rejected with an InputError naming them, never tokenized differently.
#include "moewb/io/tokenizer.h"

#include "moewb/core/error.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <queue>
#include <sstream>
#include <unordered_map>

namespace moewb {

namespace {

using json = nlohmann::json;

const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string utf8(uint32_t cp)
{
    std::string s;
    if (cp < 0x80) {
        s += char(cp);
    } else if (cp < 0x800) {
        s += char(0xC0 | (cp >> 6));
        s += char(0x80 | (cp & 0x3F));
    } else {
        s += char(0xE0 | (cp >> 12));
        s += char(0x80 | ((cp >> 6) & 0x3F));
        s += char(0x80 | (cp & 0x3F));
    }
    return s;
}

/// GPT-2's reversible byte → printable code point table.
struct ByteTable {
    std::string byteToChar[256];
    std::unordered_map<std::string, uint8_t> charToByte;
    ByteTable()
    {
        uint32_t extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            byteToChar[b] = utf8(printable ? uint32_t(b) : 256 + extra++);
            charToByte[byteToChar[b]] = uint8_t(b);
        }
    }
};
const ByteTable& byteTable()
{
    static const ByteTable t;
    return t;
}

size_t utf8Len(unsigned char c)
{
    return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

struct Regex {
    pcre2_code* code = nullptr;
    Regex(const std::string& pattern, const std::string& where)
    {
        int err = 0;
        PCRE2_SIZE off = 0;
        code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
        if (!code) {
            PCRE2_UCHAR buf[256];
            pcre2_get_error_message(err, buf, sizeof buf);
            throw InputError(where, "pre_tokenizer regex does not compile at offset " + std::to_string(off) + ": "
                                 + reinterpret_cast<char*>(buf));
        }
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    }
    ~Regex() { pcre2_code_free(code); }
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    /// Splits s into matches and the gaps between them ("Isolated" behaviour).
    void split(const std::string& s, std::vector<std::string>& out) const
    {
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
        size_t pos = 0, last = 0;
        while (pos <= s.size()) {
            const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, md, nullptr);
            if (rc < 0)
                break;
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
            if (ov[0] > last)
                out.push_back(s.substr(last, ov[0] - last));
            if (ov[1] > ov[0])
                out.push_back(s.substr(ov[0], ov[1] - ov[0]));
            last = ov[1];
            pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
        }
        if (last < s.size())
            out.push_back(s.substr(last));
        pcre2_match_data_free(md);
    }
};

} // namespace

struct Tokenizer::Impl {
    std::string where;
    std::unordered_map<std::string, int32_t> vocab;
    std::vector<std::string> idToTok;
    std::unordered_map<std::string, int32_t> mergeRank; // left + '\xff' + right
    bool ignoreMerges = false;
    std::vector<std::unique_ptr<Regex>> splits; // applied in order, each on the previous pieces
    bool byteLevel = false;
    bool prefixSpace = false;
    struct Added {
        std::string content;
        int32_t id;
        bool special, lstrip, rstrip;
    };
    std::vector<Added> added; // longest content first
    std::vector<int32_t> prefixIds, suffixIds; // TemplateProcessing single
    std::unordered_map<int32_t, bool> specialIds;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

    void bpe(const std::string& piece, std::vector<int32_t>& out) const;
    void encodePlain(const std::string& text, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::bpe(const std::string& word, std::vector<int32_t>& out) const
{
    if (auto it = cache.find(word); it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
    }
    std::vector<int32_t> ids;
    if (auto v = vocab.find(word); ignoreMerges && v != vocab.end()) {
        ids.push_back(v->second);
    } else {
        // Symbols in a linked list; candidate merges in a min-heap by (rank, position), validated
        // lazily: O(n log n) even for one very long word.
        std::vector<std::string> sym;
        for (size_t i = 0; i < word.size();) {
            const size_t n = std::min(utf8Len(static_cast<unsigned char>(word[i])), word.size() - i);
            sym.push_back(word.substr(i, n));
            i += n;
        }
        const int n = int(sym.size());
        std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
        std::vector<bool> alive(static_cast<size_t>(n), true);
        for (int i = 0; i < n; ++i) {
            prev[size_t(i)] = i - 1;
            next[size_t(i)] = i + 1 < n ? i + 1 : -1;
        }
        using Cand = std::tuple<int32_t, int, std::string, std::string>; // rank, left pos, left, right
        std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
        auto push = [&](int i) {
            const int j = next[size_t(i)];
            if (i < 0 || j < 0)
                return;
            auto r = mergeRank.find(sym[size_t(i)] + '\xff' + sym[size_t(j)]);
            if (r != mergeRank.end())
                heap.emplace(r->second, i, sym[size_t(i)], sym[size_t(j)]);
        };
        for (int i = 0; i + 1 < n; ++i)
            push(i);
        while (!heap.empty()) {
            auto [rank, i, l, r] = heap.top();
            heap.pop();
            const int j = i >= 0 && alive[size_t(i)] ? next[size_t(i)] : -1;
            if (j < 0 || sym[size_t(i)] != l || sym[size_t(j)] != r)
                continue; // stale
            sym[size_t(i)] += sym[size_t(j)];
            alive[size_t(j)] = false;
            next[size_t(i)] = next[size_t(j)];
            if (next[size_t(j)] >= 0)
                prev[size_t(next[size_t(j)])] = i;
            push(prev[size_t(i)]);
            push(i);
        }
        for (int i = 0; i >= 0 && i < n; i = next[size_t(i)]) {
            auto v2 = vocab.find(sym[size_t(i)]);
            if (v2 == vocab.end())
                throw InputError(where, "BPE symbol '" + sym[size_t(i)] + "' is not in the vocabulary (no unk_token)");
            ids.push_back(v2->second);
        }
    }
    if (cache.size() < 200000)
        cache.emplace(word, ids);
    out.insert(out.end(), ids.begin(), ids.end());
}

void Tokenizer::Impl::encodePlain(const std::string& text, std::vector<int32_t>& out) const
{
    if (text.empty())
        return;
    std::vector<std::string> pieces{prefixSpace && text[0] != ' ' ? " " + text : text};
    for (const auto& re : splits) {
        std::vector<std::string> next;
        for (const auto& p : pieces)
            re->split(p, next);
        pieces.swap(next);
    }
    const ByteTable& bt = byteTable();
    for (const auto& p : pieces) {
        std::string mapped;
        if (byteLevel) {
            for (unsigned char c : p)
                mapped += bt.byteToChar[c];
        } else {
            mapped = p;
        }
        bpe(mapped, out);
    }
}

Tokenizer::Tokenizer()
    : d(std::make_unique<Impl>())
{
}
Tokenizer::~Tokenizer() = default;

std::shared_ptr<Tokenizer> Tokenizer::load(const std::string& pathOrDir)
{
    std::string path = pathOrDir;
    {
        std::ifstream probe(path + "/tokenizer.json");
        if (probe)
            path += "/tokenizer.json";
    }
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError(path, "cannot open tokenizer.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return fromJson(ss.str(), path);
}

std::shared_ptr<Tokenizer> Tokenizer::fromJson(const std::string& text, const std::string& where)
{
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw InputError(where, std::string("invalid JSON: ") + e.what());
    }
    std::shared_ptr<Tokenizer> t(new Tokenizer());
    Impl& d = *t->d;
    d.where = where;
    auto typeOf = [](const json& c) { return c.is_object() && c.contains("type") ? c["type"].get<std::string>() : std::string(); };
    try {
        const json& model = j.at("model");
        if (typeOf(model) != "BPE")
            throw InputError(where, "model type '" + typeOf(model) + "' is not supported (only BPE)");
        if (model.value("byte_fallback", false))
            throw InputError(where, "BPE byte_fallback is not supported by this build");
        for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (model.contains(k) && !model[k].is_null() && !model[k].get<std::string>().empty())
                throw InputError(where, std::string("BPE ") + k + " is not supported by this build");
        if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
            throw InputError(where, "BPE dropout is not supported");
        d.ignoreMerges = model.value("ignore_merges", false);
        int32_t maxId = -1;
        for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
            d.vocab[it.key()] = it.value().get<int32_t>();
            maxId = std::max(maxId, it.value().get<int32_t>());
        }
        int32_t rank = 0;
        for (const auto& m : model.at("merges")) {
            std::string l, r;
            if (m.is_string()) {
                const std::string s = m.get<std::string>();
                const auto sp = s.find(' ');
                if (sp == std::string::npos)
                    throw InputError(where, "merge '" + s + "' is not 'left right'");
                l = s.substr(0, sp);
                r = s.substr(sp + 1);
            } else {
                l = m.at(0).get<std::string>();
                r = m.at(1).get<std::string>();
            }
            d.mergeRank.emplace(l + '\xff' + r, rank++);
        }
        for (const auto& a : j.value("added_tokens", json::array())) {
            Impl::Added ad{a.at("content").get<std::string>(), a.at("id").get<int32_t>(), a.value("special", false),
                           a.value("lstrip", false), a.value("rstrip", false)};
            if (a.value("single_word", false))
                throw InputError(where, "added token '" + ad.content + "': single_word is not supported by this build");
            d.added.push_back(ad);
            d.specialIds[ad.id] = ad.special;
            maxId = std::max(maxId, ad.id);
        }
        std::sort(d.added.begin(), d.added.end(),
                  [](const Impl::Added& a, const Impl::Added& b) { return a.content.size() > b.content.size(); });
        d.idToTok.assign(size_t(maxId + 1), std::string());
        for (const auto& [k, v] : d.vocab)
            d.idToTok[size_t(v)] = k;
        for (const auto& a : d.added)
            d.idToTok[size_t(a.id)] = a.content;

        if (j.contains("normalizer") && !j["normalizer"].is_null())
            throw InputError(where, "normalizer '" + typeOf(j["normalizer"]) + "' is not supported by this build");
        std::vector<json> pre;
        if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
            const json& p = j["pre_tokenizer"];
            if (typeOf(p) == "Sequence")
                for (const auto& x : p.at("pretokenizers"))
                    pre.push_back(x);
            else
                pre.push_back(p);
        }
        for (const auto& p : pre) {
            const std::string type = typeOf(p);
            if (type == "ByteLevel") {
                d.byteLevel = true;
                d.prefixSpace = p.value("add_prefix_space", false);
                if (p.value("use_regex", true))
                    d.splits.push_back(std::make_unique<Regex>(kGpt2Pattern, where));
            } else if (type == "Split") {
                if (p.value("invert", false) || p.value("behavior", std::string("Isolated")) != "Isolated")
                    throw InputError(where, "Split pre-tokenizer: only behavior Isolated without invert is supported");
                const json& pat = p.at("pattern");
                if (!pat.contains("Regex"))
                    throw InputError(where, "Split pre-tokenizer: only Regex patterns are supported");
                d.splits.push_back(std::make_unique<Regex>(pat["Regex"].get<std::string>(), where));
            } else {
                throw InputError(where, "pre_tokenizer '" + type + "' is not supported by this build");
            }
        }
        if (!d.byteLevel)
            throw InputError(where, "only byte-level BPE tokenizers are supported by this build");
        if (j.contains("post_processor") && !j["post_processor"].is_null()) {
            const json& pp = j["post_processor"];
            const std::string type = typeOf(pp);
            if (type == "TemplateProcessing") {
                bool seenSeq = false;
                for (const auto& item : pp.at("single")) {
                    if (item.contains("Sequence")) {
                        seenSeq = true;
                    } else {
                        const std::string id = item.at("SpecialToken").at("id").get<std::string>();
                        const auto& ids = pp.at("special_tokens").at(id).at("ids");
                        for (const auto& x : ids)
                            (seenSeq ? d.suffixIds : d.prefixIds).push_back(x.get<int32_t>());
                    }
                }
            } else if (type != "ByteLevel") {
                throw InputError(where, "post_processor '" + type + "' is not supported by this build");
            }
        }
        if (j.contains("decoder") && !j["decoder"].is_null() && typeOf(j["decoder"]) != "ByteLevel")
            throw InputError(where, "decoder '" + typeOf(j["decoder"]) + "' is not supported by this build");
    } catch (const json::exception& e) {
        throw InputError(where, std::string("malformed tokenizer.json: ") + e.what());
    }
    return t;
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool addSpecialTokens) const
{
    std::vector<int32_t> out;
    if (addSpecialTokens)
        out = d->prefixIds;
    // Added tokens are matched first (longest at each position); the text between goes to BPE.
    size_t start = 0, i = 0;
    std::string pending;
    while (i < text.size()) {
        const Impl::Added* hit = nullptr;
        for (const auto& a : d->added)
            if (!a.content.empty() && text.compare(i, a.content.size(), a.content) == 0) {
                hit = &a;
                break;
            }
        if (!hit) {
            ++i;
            continue;
        }
        size_t segEnd = i;
        if (hit->lstrip)
            while (segEnd > start && std::isspace(static_cast<unsigned char>(text[segEnd - 1])))
                --segEnd;
        d->encodePlain(text.substr(start, segEnd - start), out);
        out.push_back(hit->id);
        i += hit->content.size();
        if (hit->rstrip)
            while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
                ++i;
        start = i;
    }
    d->encodePlain(text.substr(start), out);
    if (addSpecialTokens)
        out.insert(out.end(), d->suffixIds.begin(), d->suffixIds.end());
    return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skipSpecialTokens) const
{
    const ByteTable& bt = byteTable();
    std::string out;
    for (int32_t id : ids) {
        if (id < 0 || size_t(id) >= d->idToTok.size())
            throw InputError("decode", "token id " + std::to_string(id) + " is outside the vocabulary");
        auto sp = d->specialIds.find(id);
        if (sp != d->specialIds.end()) {
            if (!(skipSpecialTokens && sp->second))
                out += d->idToTok[size_t(id)];
            continue;
        }
        const std::string& tok = d->idToTok[size_t(id)];
        for (size_t i = 0; i < tok.size();) {
            const size_t n = std::min(utf8Len(static_cast<unsigned char>(tok[i])), tok.size() - i);
            auto b = bt.charToByte.find(tok.substr(i, n));
            if (b != bt.charToByte.end())
                out += char(b->second);
            else
                out += tok.substr(i, n);
            i += n;
        }
    }
    return out;
}

int64_t Tokenizer::vocabSize() const
{
    return int64_t(d->idToTok.size());
}

std::optional<int32_t> Tokenizer::tokenToId(const std::string& token) const
{
    for (const auto& a : d->added)
        if (a.content == token)
            return a.id;
    auto it = d->vocab.find(token);
    return it == d->vocab.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

std::string Tokenizer::idToToken(int32_t id) const
{
    return id >= 0 && size_t(id) < d->idToTok.size() ? d->idToTok[size_t(id)] : std::string();
}

} // namespace moewb
