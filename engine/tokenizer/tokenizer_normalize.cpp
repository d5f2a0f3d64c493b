// SPDX-License-Identifier: MIT
// tokenizer.json normalizers: Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD,
// Strip. Anything else is an InputError naming it.
#include "tokenizer/tokenizer_impl.h"

#include "moewb/core/error.h"

namespace moewb::tok {

namespace {

class SequenceNormalizer : public Normalizer {
public:
    std::vector<std::unique_ptr<Normalizer>> parts;
    void apply(std::string& s) const override
    {
        for (const auto& p : parts)
            p->apply(s);
    }
};

class Prepend : public Normalizer {
public:
    std::string prefix;
    void apply(std::string& s) const override
    {
        if (!s.empty())
            s.insert(0, prefix);
    }
};

class Replace : public Normalizer {
public:
    std::unique_ptr<Regex> pattern;
    std::string content;
    void apply(std::string& s) const override { s = pattern->replaceAll(s, content); }
};

class Unicode : public Normalizer {
public:
    NormalForm form = NormalForm::NFC;
    void apply(std::string& s) const override { s = unicodeNormalize(s, form); }
};

class Strip : public Normalizer {
public:
    bool left = true, right = true;
    void apply(std::string& s) const override
    {
        size_t b = 0, e = s.size();
        if (left)
            while (b < e) {
                uint32_t cp = 0;
                const size_t n = utf8Next(s, b, cp);
                if (!isWhiteSpace(cp))
                    break;
                b += n;
            }
        if (right)
            while (e > b) {
                size_t k = e - 1;
                while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80)
                    --k;
                uint32_t cp = 0;
                utf8Next(s, k, cp);
                if (!isWhiteSpace(cp))
                    break;
                e = k;
            }
        s = s.substr(b, e - b);
    }
};

} // namespace

std::unique_ptr<Normalizer> makeNormalizer(const json& j, const std::string& where)
{
    if (j.is_null())
        return nullptr;
    const std::string type = typeOf(j);
    if (type == "Sequence") {
        auto seq = std::make_unique<SequenceNormalizer>();
        for (const auto& x : j.at("normalizers"))
            if (auto n = makeNormalizer(x, where))
                seq->parts.push_back(std::move(n));
        return seq;
    }
    if (type == "Prepend") {
        auto p = std::make_unique<Prepend>();
        p->prefix = j.at("prepend").get<std::string>();
        return p;
    }
    if (type == "Replace") {
        auto r = std::make_unique<Replace>();
        r->pattern = Regex::fromPattern(j.at("pattern"), where + ": normalizer Replace");
        r->content = j.at("content").get<std::string>();
        return r;
    }
    if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
        auto u = std::make_unique<Unicode>();
        u->form = type == "NFC" ? NormalForm::NFC
            : type == "NFD"     ? NormalForm::NFD
            : type == "NFKC"    ? NormalForm::NFKC
                                : NormalForm::NFKD;
        return u;
    }
    if (type == "Strip") {
        auto s = std::make_unique<Strip>();
        s->left = optBool(j, "strip_left", true);
        s->right = optBool(j, "strip_right", true);
        return s;
    }
    throw InputError(where, "normalizer '" + type + "' is not supported");
}

} // namespace moewb::tok
