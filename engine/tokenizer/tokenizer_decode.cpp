// SPDX-License-Identifier: MIT
// tokenizer.json decoders: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder,
// Sequence. Each maps the list of token strings to a new list; decode() joins the result.
#include "tokenizer/tokenizer_impl.h"

#include "moewb/core/error.h"

namespace moewb::tok {

namespace {

class SequenceDec : public Decoder {
public:
    std::vector<std::unique_ptr<Decoder>> parts;
    void apply(std::vector<std::string>& t) const override
    {
        for (const auto& p : parts)
            p->apply(t);
    }
};

/// Byte-level characters back to bytes; the bytes of all tokens form one UTF-8 text (invalid
/// sequences become U+FFFD). A token with a character outside the map is taken verbatim.
class ByteLevelDec : public Decoder {
public:
    void apply(std::vector<std::string>& tokens) const override
    {
        std::string bytes;
        for (const std::string& t : tokens) {
            const size_t mark = bytes.size();
            bool ok = true;
            for (size_t i = 0; i < t.size() && ok;) {
                uint32_t cp = 0;
                i += utf8Next(t, i, cp);
                const int b = byteLevelByte(cp);
                if (b < 0)
                    ok = false;
                else
                    bytes += char(b);
            }
            if (!ok) {
                bytes.resize(mark);
                bytes += t;
            }
        }
        tokens.assign(1, lossyUtf8(bytes));
    }
};

class ReplaceDec : public Decoder {
public:
    std::unique_ptr<Regex> pattern;
    std::string content;
    void apply(std::vector<std::string>& tokens) const override
    {
        for (std::string& t : tokens)
            t = pattern->replaceAll(t, content);
    }
};

/// Runs of <0xXX> tokens become their bytes if those are valid UTF-8, else one U+FFFD per byte.
class ByteFallbackDec : public Decoder {
public:
    void apply(std::vector<std::string>& tokens) const override
    {
        std::vector<std::string> out;
        out.reserve(tokens.size());
        std::string bytes;
        size_t count = 0;
        auto flush = [&] {
            if (!count)
                return;
            if (isValidUtf8(bytes)) {
                out.push_back(bytes);
            } else {
                for (size_t k = 0; k < count; ++k)
                    out.emplace_back("\xEF\xBF\xBD");
            }
            bytes.clear();
            count = 0;
        };
        for (std::string& t : tokens) {
            int v = -1;
            if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
                auto hex = [](char c) {
                    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                };
                const int h = hex(t[3]), l = hex(t[4]);
                if (h >= 0 && l >= 0)
                    v = h * 16 + l;
            }
            if (v >= 0) {
                bytes += char(v);
                ++count;
            } else {
                flush();
                out.push_back(std::move(t));
            }
        }
        flush();
        tokens.swap(out);
    }
};

class FuseDec : public Decoder {
public:
    void apply(std::vector<std::string>& tokens) const override
    {
        std::string all;
        for (const std::string& t : tokens)
            all += t;
        tokens.assign(1, std::move(all));
    }
};

/// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDec : public Decoder {
public:
    std::string content;
    size_t start = 0, stop = 0;
    void apply(std::vector<std::string>& tokens) const override
    {
        for (std::string& t : tokens) {
            size_t b = 0, e = t.size();
            for (size_t k = 0; k < start && t.compare(b, content.size(), content) == 0 && b < e; ++k)
                b += content.size();
            for (size_t k = 0; k < stop && e >= b + content.size() && t.compare(e - content.size(), content.size(), content) == 0; ++k)
                e -= content.size();
            t = t.substr(b, e - b);
        }
    }
};

class MetaspaceDec : public Decoder {
public:
    std::string replacement;
    bool stripFirst = true;
    void apply(std::vector<std::string>& tokens) const override
    {
        for (size_t i = 0; i < tokens.size(); ++i) {
            std::string& t = tokens[i];
            std::string r;
            r.reserve(t.size());
            // As HF: in the first token every replacement is dropped (not only a leading one).
            const bool drop = i == 0 && stripFirst;
            for (size_t k = 0; k < t.size();) {
                if (t.compare(k, replacement.size(), replacement) == 0) {
                    if (!drop)
                        r += ' ';
                    k += replacement.size();
                } else {
                    r += t[k++];
                }
            }
            t.swap(r);
        }
    }
};

class BpeDec : public Decoder {
public:
    std::string suffix;
    void apply(std::vector<std::string>& tokens) const override
    {
        for (size_t i = 0; i < tokens.size(); ++i) {
            std::string& t = tokens[i];
            const std::string with = i + 1 == tokens.size() ? "" : " ";
            std::string r;
            for (size_t k = 0; k < t.size();) {
                if (!suffix.empty() && t.compare(k, suffix.size(), suffix) == 0) {
                    r += with;
                    k += suffix.size();
                } else {
                    r += t[k++];
                }
            }
            t.swap(r);
        }
    }
};

} // namespace

std::unique_ptr<Decoder> makeDecoder(const json& j, const std::string& where)
{
    if (j.is_null())
        return nullptr;
    const std::string type = typeOf(j);
    const std::string w = where + ": decoder " + type;
    if (type == "Sequence") {
        auto seq = std::make_unique<SequenceDec>();
        for (const auto& x : j.at("decoders"))
            if (auto d = makeDecoder(x, where))
                seq->parts.push_back(std::move(d));
        return seq;
    }
    if (type == "ByteLevel")
        return std::make_unique<ByteLevelDec>();
    if (type == "Replace") {
        auto r = std::make_unique<ReplaceDec>();
        r->pattern = Regex::fromPattern(j.at("pattern"), w);
        r->content = j.at("content").get<std::string>();
        return r;
    }
    if (type == "ByteFallback")
        return std::make_unique<ByteFallbackDec>();
    if (type == "Fuse")
        return std::make_unique<FuseDec>();
    if (type == "Strip") {
        auto s = std::make_unique<StripDec>();
        s->content = j.at("content").get<std::string>();
        s->start = j.value("start", size_t(0));
        s->stop = j.value("stop", size_t(0));
        if (s->content.empty())
            throw InputError(w, "empty content");
        return s;
    }
    if (type == "Metaspace") {
        auto m = std::make_unique<MetaspaceDec>();
        m->replacement = optString(j, "replacement", "\xE2\x96\x81");
        const std::string scheme = optString(j, "prepend_scheme", optBool(j, "add_prefix_space", true) ? "always" : "never");
        m->stripFirst = scheme != "never";
        if (m->replacement.empty())
            throw InputError(w, "empty replacement");
        return m;
    }
    if (type == "BPEDecoder") {
        auto b = std::make_unique<BpeDec>();
        b->suffix = optString(j, "suffix", "</w>");
        return b;
    }
    throw InputError(where, "decoder '" + type + "' is not supported");
}

} // namespace moewb::tok
