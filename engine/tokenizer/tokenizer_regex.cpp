// SPDX-License-Identifier: MIT
// PCRE2 (UTF + Unicode properties, JIT) for Split pre-tokenizers and Replace normalizers/decoders.
#include "tokenizer/tokenizer_impl.h"

#include "moewb/core/error.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace moewb::tok {

namespace {

struct MatchData {
    pcre2_match_data* md = nullptr;
    explicit MatchData(const pcre2_code* code)
        : md(pcre2_match_data_create_from_pattern(code, nullptr))
    {
    }
    ~MatchData() { pcre2_match_data_free(md); }
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
};

} // namespace

Regex::Regex(const std::string& pattern, bool literal, const std::string& where)
{
    if (literal) {
        if (pattern.empty())
            throw InputError(where, "empty String pattern");
        m_literal = pattern;
        return;
    }
    int err = 0;
    PCRE2_SIZE off = 0;
    m_code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                           &off, nullptr);
    if (!m_code) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof buf);
        throw InputError(where, "regex '" + pattern + "' does not compile at offset " + std::to_string(off) + ": "
                             + reinterpret_cast<char*>(buf));
    }
    pcre2_jit_compile(m_code, PCRE2_JIT_COMPLETE); // falls back to the interpreter if JIT is unavailable
}

Regex::~Regex()
{
    pcre2_code_free(m_code);
}

std::unique_ptr<Regex> Regex::fromPattern(const json& pattern, const std::string& where)
{
    if (pattern.is_object() && pattern.contains("Regex"))
        return std::make_unique<Regex>(pattern["Regex"].get<std::string>(), false, where);
    if (pattern.is_object() && pattern.contains("String"))
        return std::make_unique<Regex>(pattern["String"].get<std::string>(), true, where);
    throw InputError(where, "pattern must be {\"Regex\": ...} or {\"String\": ...}, got " + pattern.dump());
}

void Regex::findAll(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const
{
    out.clear();
    if (!m_literal.empty()) {
        for (size_t p = s.find(m_literal); p != std::string_view::npos; p = s.find(m_literal, p + m_literal.size()))
            out.emplace_back(p, p + m_literal.size());
        return;
    }
    // One match data per thread and pattern would be faster still; creation is cheap next to BPE.
    MatchData md(m_code);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0;
    while (pos <= s.size()) {
        // The text is valid UTF-8 (Note [Tokenizer text]): skip PCRE2's per-call check, which
        // would rescan the subject and make splitting quadratic.
        const int rc = pcre2_match(m_code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md.md, nullptr);
        if (rc < 0)
            break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.md);
        if (ov[1] > ov[0]) {
            out.emplace_back(ov[0], ov[1]);
            pos = ov[1];
        } else { // empty match: step one code point
            pos = ov[1] < s.size() ? ov[1] + utf8Len(static_cast<unsigned char>(s[ov[1]])) : s.size() + 1;
        }
    }
}

std::string Regex::replaceAll(std::string_view s, std::string_view with) const
{
    std::vector<std::pair<size_t, size_t>> m;
    findAll(s, m);
    if (m.empty())
        return std::string(s);
    std::string out;
    out.reserve(s.size() + m.size() * with.size());
    size_t last = 0;
    for (const auto& [b, e] : m) {
        out.append(s.data() + last, b - last);
        out.append(with);
        last = e;
    }
    out.append(s.data() + last, s.size() - last);
    return out;
}

bool isWordChar(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    static const Regex word(R"(^\w$)", false, "isWordChar");
    std::string s;
    appendUtf8(s, cp);
    std::vector<std::pair<size_t, size_t>> m;
    word.findAll(s, m);
    return !m.empty();
}

} // namespace moewb::tok
