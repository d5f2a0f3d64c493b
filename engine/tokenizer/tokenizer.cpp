// SPDX-License-Identifier: MIT
// Hugging Face tokenizer.json: loading and the encode/decode pipelines. The components live in
// tokenizer_*.cpp (see tokenizer_impl.h); a component we do not implement is an InputError naming
// it, never a silently different tokenization.
//
// Encode (as HF tokenizers): split the raw text on added tokens that are not `normalized`; normalize
// each remaining segment; split those on the `normalized` added tokens; pre-tokenize into words;
// BPE each word; add the post-processor's special tokens. `truncation` and `padding` are ignored,
// as transformers' encode() does by default.
#include "moewb/core/json_limits.h"
#include "moewb/tokenizer/tokenizer.h"

#include "tokenizer/tokenizer_impl.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace moewb {

using tok::json;

struct Tokenizer::Impl {
    std::string where;
    std::unique_ptr<tok::Normalizer> normalizer;
    std::unique_ptr<tok::PreTokenizer> preTokenizer;
    std::unique_ptr<tok::Bpe> model;
    std::unique_ptr<tok::Decoder> decoder;
    tok::PostProcessor post;
    std::vector<tok::AddedToken> added;
    tok::AddedMatcher rawMatcher, normalizedMatcher;
    std::unordered_map<int32_t, size_t> addedById;
    std::unordered_map<std::string, int32_t> addedByContent;
    int64_t vocabSize = 0;

    void encodeText(std::string text, bool atStart, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::encodeText(std::string text, bool atStart, std::vector<int32_t>& out) const
{
    std::vector<tok::Piece> pieces;
    pieces.push_back(tok::Piece{std::move(text), atStart});
    if (preTokenizer)
        preTokenizer->apply(pieces);
    for (const tok::Piece& p : pieces)
        model->encodeWord(p.text, out);
}

Tokenizer::Tokenizer()
    : d(std::make_unique<Impl>())
{
}

Tokenizer::~Tokenizer() = default;

std::shared_ptr<Tokenizer> Tokenizer::load(const std::string& pathOrDir)
{
    std::string path = pathOrDir;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        path = (std::filesystem::path(path) / "tokenizer.json").string();
    return fromJson(readFileBytes(path), path);
}

std::shared_ptr<Tokenizer> Tokenizer::fromJson(const std::string& jsonText, const std::string& where)
{
    checkJsonDepth(jsonText, where);
    json j;
    try {
        j = json::parse(jsonText);
    } catch (const json::exception& e) {
        throw InputError(where, std::string("invalid JSON: ") + e.what());
    }
    if (!j.is_object())
        throw InputError(where, "tokenizer.json must be a JSON object");
    std::shared_ptr<Tokenizer> t(new Tokenizer());
    Impl& d = *t->d;
    d.where = where;
    static const json kNull;
    auto get = [&j](const char* key) -> const json& {
        auto it = j.find(key);
        return it != j.end() ? *it : kNull;
    };
    try {
        if (!j.contains("model"))
            throw InputError(where, "no 'model'");
        const json& model = j["model"];
        const std::string type = tok::typeOf(model);
        if (!(type == "BPE" || (type.empty() && model.contains("merges"))))
            throw InputError(where, "model '" + (type.empty() ? model.dump().substr(0, 60) : type)
                                 + "' is not supported (only BPE)");
        // A malformed component names itself: "normalizer 'Replace' is malformed: ...".
        auto component = [&](const char* key, auto&& make) {
            const json& c = get(key);
            try {
                return make(c);
            } catch (const json::exception& e) {
                throw InputError(where, std::string(key) + " '" + tok::typeOf(c) + "' is malformed: " + e.what());
            }
        };
        d.model = component("model", [&](const json& c) { return std::make_unique<tok::Bpe>(c, where); });
        d.normalizer = component("normalizer", [&](const json& c) { return tok::makeNormalizer(c, where); });
        d.preTokenizer = component("pre_tokenizer", [&](const json& c) { return tok::makePreTokenizer(c, where); });
        d.decoder = component("decoder", [&](const json& c) { return tok::makeDecoder(c, where); });
        d.post = component("post_processor", [&](const json& c) { return tok::makePostProcessor(c, where); });

        int64_t maxId = d.model->maxId();
        for (const json& a : get("added_tokens").is_array() ? j["added_tokens"] : json::array()) {
            tok::AddedToken at;
            at.content = a.at("content").get<std::string>();
            at.id = a.at("id").get<int32_t>();
            at.special = a.value("special", false);
            at.lstrip = a.value("lstrip", false);
            at.rstrip = a.value("rstrip", false);
            at.singleWord = a.value("single_word", false);
            at.normalized = a.value("normalized", !at.special);
            if (at.id < 0)
                throw InputError(where, "added token '" + at.content + "' has a negative id");
            if (!tok::isValidUtf8(at.content))
                throw InputError(where, "added token content is not valid UTF-8");
            maxId = std::max<int64_t>(maxId, at.id);
            d.added.push_back(std::move(at));
        }
        d.vocabSize = maxId + 1;
        // Tokens with `normalized` are looked for after the normalizer, the others before it;
        // without a normalizer both see the same text and one pass suffices.
        std::stable_partition(d.added.begin(), d.added.end(),
                              [&](const tok::AddedToken& a) { return !(a.normalized && d.normalizer); });
        const auto nRaw = std::count_if(d.added.begin(), d.added.end(),
                                        [&](const tok::AddedToken& a) { return !(a.normalized && d.normalizer); });
        for (size_t k = 0; k < d.added.size(); ++k) {
            d.addedById[d.added[k].id] = k;
            d.addedByContent[d.added[k].content] = d.added[k].id;
        }
        // The matchers point into d.added, which does not change from here on.
        d.rawMatcher.build(d.added.data(), d.added.data() + nRaw);
        d.normalizedMatcher.build(d.added.data() + nRaw, d.added.data() + d.added.size());
    } catch (const json::exception& e) {
        throw InputError(where, std::string("malformed tokenizer.json: ") + e.what());
    }
    return t;
}

std::vector<int32_t> Tokenizer::encode(const std::string& input, bool addSpecialTokens) const
{
    std::vector<int32_t> out;
    if (addSpecialTokens)
        out = d->post.prefix;
    std::vector<tok::Segment> segments;
    segments.push_back(tok::Segment{tok::lossyUtf8(input), -1, true});
    d->rawMatcher.split(segments);
    for (tok::Segment& seg : segments) {
        if (seg.added >= 0) {
            out.push_back(seg.added);
            continue;
        }
        if (d->normalizer)
            d->normalizer->apply(seg.text);
        if (d->normalizedMatcher.empty()) {
            d->encodeText(std::move(seg.text), seg.atStart, out);
            continue;
        }
        std::vector<tok::Segment> sub;
        sub.push_back(std::move(seg));
        d->normalizedMatcher.split(sub);
        for (tok::Segment& s : sub) {
            if (s.added >= 0)
                out.push_back(s.added);
            else
                d->encodeText(std::move(s.text), s.atStart, out);
        }
    }
    if (addSpecialTokens)
        out.insert(out.end(), d->post.suffix.begin(), d->post.suffix.end());
    return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skipSpecialTokens) const
{
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        if (auto it = d->addedById.find(id); it != d->addedById.end()) {
            const tok::AddedToken& a = d->added[it->second];
            if (!(skipSpecialTokens && a.special))
                tokens.push_back(a.content);
            continue;
        }
        const std::string* t = d->model->token(id);
        if (!t)
            throw InputError(d->where, "token id " + std::to_string(id) + " is not in the vocabulary");
        tokens.push_back(*t);
    }
    if (!d->decoder) { // as HF: tokens joined by spaces
        std::string s;
        for (size_t k = 0; k < tokens.size(); ++k)
            s += (k ? " " : "") + tokens[k];
        return s;
    }
    d->decoder->apply(tokens);
    std::string s;
    for (const std::string& t : tokens)
        s += t;
    return s;
}

int64_t Tokenizer::vocabSize() const
{
    return d->vocabSize;
}

std::optional<int32_t> Tokenizer::tokenToId(const std::string& token) const
{
    if (auto it = d->addedByContent.find(token); it != d->addedByContent.end())
        return it->second;
    const int32_t id = d->model->find(token);
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

std::string Tokenizer::idToToken(int32_t id) const
{
    if (auto it = d->addedById.find(id); it != d->addedById.end())
        return d->added[it->second].content;
    const std::string* t = d->model->token(id);
    return t ? *t : std::string();
}

} // namespace moewb
