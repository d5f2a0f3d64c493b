// SPDX-License-Identifier: MIT
// Added tokens: found in the text before the model sees it (leftmost match, then the longest),
// with lstrip/rstrip swallowing the whitespace beside them and single_word requiring word boundaries.
#include "tokenizer/tokenizer_impl.h"

#include <algorithm>

namespace moewb::tok {

namespace {

/// Code point ending just before byte offset i (valid UTF-8, i > 0).
uint32_t cpBefore(std::string_view s, size_t i)
{
    size_t k = i - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80)
        --k;
    uint32_t cp = 0;
    utf8Next(s, k, cp);
    return cp;
}

} // namespace

void AddedMatcher::build(const AddedToken* begin, const AddedToken* end)
{
    m_all.clear();
    m_byFirstByte.assign(256, {});
    for (const AddedToken* p = begin; p != end; ++p) {
        const AddedToken& t = *p;
        if (t.content.empty())
            continue;
        m_all.push_back(&t);
        m_byFirstByte[static_cast<unsigned char>(t.content[0])].push_back(&t);
    }
    for (auto& bucket : m_byFirstByte)
        std::stable_sort(bucket.begin(), bucket.end(),
                         [](const AddedToken* a, const AddedToken* b) { return a->content.size() > b->content.size(); });
}

void AddedMatcher::split(std::vector<Segment>& segments) const
{
    if (m_all.empty())
        return;
    std::vector<Segment> out;
    out.reserve(segments.size());
    for (Segment& seg : segments) {
        if (seg.added >= 0) {
            out.push_back(std::move(seg));
            continue;
        }
        const std::string_view s = seg.text;
        size_t textStart = 0; // start of the pending plain text
        for (size_t i = 0; i < s.size();) {
            const auto& bucket = m_byFirstByte[static_cast<unsigned char>(s[i])];
            const AddedToken* hit = nullptr;
            for (const AddedToken* t : bucket) {
                if (s.compare(i, t->content.size(), t->content) != 0)
                    continue;
                if (t->singleWord) {
                    const size_t end = i + t->content.size();
                    if ((i > 0 && isWordChar(cpBefore(s, i))) || (end < s.size() && [&] {
                            uint32_t cp = 0;
                            utf8Next(s, end, cp);
                            return isWordChar(cp);
                        }()))
                        continue;
                }
                hit = t;
                break;
            }
            if (!hit) {
                i += utf8Len(static_cast<unsigned char>(s[i]));
                continue;
            }
            size_t b = i, e = i + hit->content.size();
            if (hit->lstrip)
                while (b > textStart) {
                    const uint32_t cp = cpBefore(s, b);
                    if (!isWhiteSpace(cp))
                        break;
                    size_t k = b - 1;
                    while (k > textStart && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80)
                        --k;
                    b = k;
                }
            if (hit->rstrip)
                while (e < s.size()) {
                    uint32_t cp = 0;
                    const size_t n = utf8Next(s, e, cp);
                    if (!isWhiteSpace(cp))
                        break;
                    e += n;
                }
            if (b > textStart)
                out.push_back(Segment{std::string(s.substr(textStart, b - textStart)), -1, seg.atStart && textStart == 0});
            out.push_back(Segment{std::string(), hit->id, false});
            i = textStart = e;
        }
        if (textStart < s.size())
            out.push_back(Segment{std::string(s.substr(textStart)), -1, seg.atStart && textStart == 0});
    }
    segments.swap(out);
}

} // namespace moewb::tok
