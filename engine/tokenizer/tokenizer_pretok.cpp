// SPDX-License-Identifier: MIT
// tokenizer.json pre-tokenizers: ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit,
// Sequence. Anything else is an InputError naming it.
#include "tokenizer/tokenizer_impl.h"

#include "moewb/core/error.h"

namespace moewb::tok {

namespace {

const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct ByteMap {
    std::string toChar[256];
    int fromCp[0x200];
    ByteMap()
    {
        std::fill(std::begin(fromCp), std::end(fromCp), -1);
        uint32_t extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const uint32_t cp = printable ? uint32_t(b) : 0x100 + extra++;
            appendUtf8(toChar[b], cp);
            fromCp[cp] = b;
        }
    }
};
const ByteMap& byteMap()
{
    static const ByteMap m;
    return m;
}

/// Runs fn(piece, out) on every piece, replacing the list by the results.
template <typename Fn>
void refine(std::vector<Piece>& pieces, Fn&& fn)
{
    std::vector<Piece> out;
    out.reserve(pieces.size() * 2);
    for (const Piece& p : pieces)
        fn(p, out);
    pieces.swap(out);
}

class SplitPre : public PreTokenizer {
public:
    std::unique_ptr<Regex> regex;
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    void apply(std::vector<Piece>& pieces) const override
    {
        std::vector<std::pair<size_t, size_t>> m;
        refine(pieces, [&](const Piece& p, std::vector<Piece>& out) {
            regex->findAll(p.text, m);
            splitByMatches(p, m, behavior, invert, out);
        });
    }
};

class ByteLevelPre : public PreTokenizer {
public:
    bool addPrefixSpace = false;
    std::unique_ptr<Regex> regex; // null: use_regex false
    void apply(std::vector<Piece>& pieces) const override
    {
        if (addPrefixSpace)
            for (Piece& p : pieces)
                if (p.text.empty() || p.text[0] != ' ')
                    p.text.insert(0, 1, ' ');
        if (regex) {
            std::vector<std::pair<size_t, size_t>> m;
            refine(pieces, [&](const Piece& p, std::vector<Piece>& out) {
                regex->findAll(p.text, m);
                splitByMatches(p, m, SplitBehavior::Isolated, false, out);
            });
        }
        const ByteMap& bm = byteMap();
        for (Piece& p : pieces) {
            std::string mapped;
            mapped.reserve(p.text.size() * 2);
            for (unsigned char c : p.text)
                mapped += bm.toChar[c];
            p.text.swap(mapped);
        }
    }
};

class MetaspacePre : public PreTokenizer {
public:
    std::string replacement;
    enum class Prepend { Always, First, Never } scheme = Prepend::Always;
    bool split = true;
    void apply(std::vector<Piece>& pieces) const override
    {
        std::vector<std::pair<size_t, size_t>> m;
        refine(pieces, [&](const Piece& in, std::vector<Piece>& out) {
            Piece p{std::string(), in.atStart};
            p.text.reserve(in.text.size() + replacement.size());
            for (char c : in.text) {
                if (c == ' ')
                    p.text += replacement;
                else
                    p.text += c;
            }
            const bool starts = p.text.compare(0, replacement.size(), replacement) == 0;
            if (!starts && (scheme == Prepend::Always || (scheme == Prepend::First && p.atStart)))
                p.text.insert(0, replacement);
            if (!split) {
                if (!p.text.empty())
                    out.push_back(std::move(p));
                return;
            }
            m.clear();
            for (size_t k = p.text.find(replacement); k != std::string::npos; k = p.text.find(replacement, k + replacement.size()))
                m.emplace_back(k, k + replacement.size());
            splitByMatches(p, m, SplitBehavior::MergedWithNext, false, out);
        });
    }
};

class SequencePre : public PreTokenizer {
public:
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    void apply(std::vector<Piece>& pieces) const override
    {
        for (const auto& p : parts)
            p->apply(pieces);
    }
};

SplitBehavior parseBehavior(const json& j, const std::string& where)
{
    const std::string b = j.get<std::string>();
    if (b == "Removed")
        return SplitBehavior::Removed;
    if (b == "Isolated")
        return SplitBehavior::Isolated;
    if (b == "MergedWithPrevious")
        return SplitBehavior::MergedWithPrevious;
    if (b == "MergedWithNext")
        return SplitBehavior::MergedWithNext;
    if (b == "Contiguous")
        return SplitBehavior::Contiguous;
    throw InputError(where, "Split behavior '" + b + "' is not supported");
}

std::unique_ptr<SplitPre> makeSplit(const std::string& regex, SplitBehavior behavior, bool invert, const std::string& where)
{
    auto s = std::make_unique<SplitPre>();
    s->regex = std::make_unique<Regex>(regex, false, where);
    s->behavior = behavior;
    s->invert = invert;
    return s;
}

} // namespace

const std::string& byteLevelChar(unsigned char b)
{
    return byteMap().toChar[b];
}

int byteLevelByte(uint32_t cp)
{
    return cp < 0x200 ? byteMap().fromCp[cp] : -1;
}

void splitByMatches(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                    bool invert, std::vector<Piece>& out)
{
    const std::string& s = piece.text;
    if (s.empty())
        return;
    struct Span {
        size_t b, e;
        bool match;
    };
    std::vector<Span> spans;
    spans.reserve(matches.size() * 2 + 1);
    size_t last = 0;
    for (const auto& [b, e] : matches) {
        if (b > last)
            spans.push_back({last, b, invert});
        spans.push_back({b, e, !invert});
        last = e;
    }
    if (last < s.size())
        spans.push_back({last, s.size(), invert});

    std::vector<std::pair<size_t, size_t>> parts;
    parts.reserve(spans.size());
    switch (behavior) {
    case SplitBehavior::Removed:
        for (const Span& sp : spans)
            if (!sp.match)
                parts.emplace_back(sp.b, sp.e);
        break;
    case SplitBehavior::Isolated:
        for (const Span& sp : spans)
            parts.emplace_back(sp.b, sp.e);
        break;
    case SplitBehavior::MergedWithPrevious: {
        bool prevMatch = false;
        for (const Span& sp : spans) {
            if (sp.match && !prevMatch && !parts.empty())
                parts.back().second = sp.e;
            else
                parts.emplace_back(sp.b, sp.e);
            prevMatch = sp.match;
        }
        break;
    }
    case SplitBehavior::MergedWithNext: {
        // A match is glued to the span after it unless that span is a match too.
        bool nextMatch = false;
        for (size_t k = spans.size(); k-- > 0;) {
            const Span& sp = spans[k];
            if (sp.match && !nextMatch && !parts.empty())
                parts.back().first = sp.b;
            else
                parts.emplace_back(sp.b, sp.e);
            nextMatch = sp.match;
        }
        std::reverse(parts.begin(), parts.end());
        break;
    }
    case SplitBehavior::Contiguous: {
        bool prevMatch = false;
        for (size_t k = 0; k < spans.size(); ++k) {
            const Span& sp = spans[k];
            if (k > 0 && sp.match == prevMatch)
                parts.back().second = sp.e;
            else
                parts.emplace_back(sp.b, sp.e);
            prevMatch = sp.match;
        }
        break;
    }
    }
    for (const auto& [b, e] : parts)
        if (e > b)
            out.push_back(Piece{s.substr(b, e - b), piece.atStart && b == 0});
}

std::unique_ptr<PreTokenizer> makePreTokenizer(const json& j, const std::string& where)
{
    if (j.is_null())
        return nullptr;
    const std::string type = typeOf(j);
    const std::string w = where + ": pre_tokenizer " + type;
    if (type == "Sequence") {
        auto seq = std::make_unique<SequencePre>();
        for (const auto& x : j.at("pretokenizers"))
            if (auto p = makePreTokenizer(x, where))
                seq->parts.push_back(std::move(p));
        return seq;
    }
    if (type == "ByteLevel") {
        auto b = std::make_unique<ByteLevelPre>();
        b->addPrefixSpace = optBool(j, "add_prefix_space", true);
        if (optBool(j, "use_regex", true))
            b->regex = std::make_unique<Regex>(kGpt2Pattern, false, w);
        return b;
    }
    if (type == "Split") {
        auto s = std::make_unique<SplitPre>();
        s->regex = Regex::fromPattern(j.at("pattern"), w);
        s->behavior = parseBehavior(j.at("behavior"), w);
        s->invert = optBool(j, "invert", false);
        return s;
    }
    if (type == "Digits")
        return optBool(j, "individual_digits", false) ? makeSplit(R"(\p{N})", SplitBehavior::Isolated, false, w)
                                                       : makeSplit(R"(\p{N}+)", SplitBehavior::Isolated, false, w);
    if (type == "WhitespaceSplit")
        return makeSplit(R"(\s+)", SplitBehavior::Removed, false, w);
    if (type == "Whitespace")
        return makeSplit(R"(\w+|[^\w\s]+)", SplitBehavior::Removed, true, w);
    if (type == "Metaspace") {
        auto m = std::make_unique<MetaspacePre>();
        m->replacement = optString(j, "replacement", "\xE2\x96\x81");
        if (m->replacement.empty())
            throw InputError(w, "empty replacement");
        const std::string scheme = optString(j, "prepend_scheme",
                                             optBool(j, "add_prefix_space", true) ? "always" : "never");
        if (scheme == "always")
            m->scheme = MetaspacePre::Prepend::Always;
        else if (scheme == "first")
            m->scheme = MetaspacePre::Prepend::First;
        else if (scheme == "never")
            m->scheme = MetaspacePre::Prepend::Never;
        else
            throw InputError(w, "prepend_scheme '" + scheme + "' is not supported");
        m->split = optBool(j, "split", true);
        return m;
    }
    throw InputError(where, "pre_tokenizer '" + type + "' is not supported");
}

} // namespace moewb::tok
