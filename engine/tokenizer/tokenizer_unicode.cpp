// SPDX-License-Identifier: MIT
// UTF-8 helpers and Unicode normalization (NFC/NFD/NFKC/NFKD) for tokenizer.json.
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_unicode_data.h"

#include <algorithm>
#include <iterator>

namespace moewb::tok {

void appendUtf8(std::string& out, uint32_t cp)
{
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

namespace {

/// Length of the well-formed sequence at s[i], or 0 if it is not; *bad = bytes of the maximal
/// ill-formed subpart (>= 1) in that case (Unicode table 3-7).
size_t wellFormed(std::string_view s, size_t i, size_t* bad)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80)
        return 1;
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        if (b0 == 0xE0)
            lo = 0xA0;
        if (b0 == 0xED)
            hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        if (b0 == 0xF0)
            lo = 0x90;
        if (b0 == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; ++k) {
        if (i + k >= s.size()) {
            *bad = k;
            return 0;
        }
        const auto c = static_cast<unsigned char>(s[i + k]);
        const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (c < l || c > h) {
            *bad = k;
            return 0;
        }
    }
    return need + 1;
}

} // namespace

bool isValidUtf8(std::string_view s)
{
    for (size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        size_t bad = 0;
        const size_t n = wellFormed(s, i, &bad);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

std::string sanitizeUtf8(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 8);
    for (size_t i = 0; i < s.size();) {
        size_t bad = 0;
        const size_t n = wellFormed(s, i, &bad);
        if (n) {
            out.append(s.data() + i, n);
            i += n;
        } else {
            out += "\xEF\xBF\xBD";
            i += bad;
        }
    }
    return out;
}

bool isWhiteSpace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
        || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
        || cp == 0x3000;
}

// ---- normalization ---------------------------------------------------------------------------

namespace {

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t ccc(uint32_t cp)
{
    using unidata::kCcc;
    auto it = std::lower_bound(std::begin(kCcc), std::end(kCcc), cp,
                               [](const unidata::Ccc& e, uint32_t c) { return e.cp < c; });
    return it != std::end(kCcc) && it->cp == cp ? it->ccc : 0;
}

void decompose(uint32_t cp, bool compat, std::vector<uint32_t>& out)
{
    if (cp >= kSBase && cp < kSBase + kSCount) {
        const uint32_t s = cp - kSBase;
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount)
            out.push_back(kTBase + s % kTCount);
        return;
    }
    using unidata::kDecomp;
    auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), cp,
                               [](const unidata::Decomp& e, uint32_t c) { return e.cp < c; });
    if (it == std::end(kDecomp) || it->cp != cp) {
        out.push_back(cp);
        return;
    }
    const uint16_t off = compat ? it->comOff : it->canOff;
    const uint8_t len = compat ? it->comLen : it->canLen;
    out.insert(out.end(), unidata::kDecompData + off, unidata::kDecompData + off + len);
}

uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
        return a + (b - kTBase);
    using unidata::kComp;
    const uint64_t key = (uint64_t(a) << 21) | b;
    auto it = std::lower_bound(std::begin(kComp), std::end(kComp), key,
                               [](const unidata::Comp& e, uint64_t k) { return e.key < k; });
    return it != std::end(kComp) && it->key == key ? it->cp : 0;
}

template <size_t N>
bool inRanges(const uint32_t (&r)[N][2], uint32_t cp)
{
    auto it = std::upper_bound(std::begin(r), std::end(r), cp, [](uint32_t c, const uint32_t(&e)[2]) { return c < e[0]; });
    return it != std::begin(r) && cp <= (*(it - 1))[1];
}

bool unstable(uint32_t cp, NormalForm form)
{
    switch (form) {
    case NormalForm::NFC:
        return inRanges(unidata::kUnstableNFC, cp);
    case NormalForm::NFKC:
        return inRanges(unidata::kUnstableNFKC, cp);
    case NormalForm::NFD:
        return inRanges(unidata::kUnstableNFD, cp);
    case NormalForm::NFKD:
        return inRanges(unidata::kUnstableNFKD, cp);
    }
    return true;
}

} // namespace

std::string unicodeNormalize(std::string_view s, NormalForm form)
{
    // Quick check: if no code point can change anything (quick-check "Yes"), s is already normal.
    bool quick = true;
    for (size_t i = 0; i < s.size() && quick;) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        uint32_t cp = 0;
        i += utf8Next(s, i, cp);
        quick = !unstable(cp, form);
    }
    if (quick)
        return std::string(s);

    const bool compat = form == NormalForm::NFKC || form == NormalForm::NFKD;
    std::vector<uint32_t> cps;
    cps.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        i += utf8Next(s, i, cp);
        decompose(cp, compat, cps);
    }
    // Canonical ordering: stable sort of each run of non-starters by combining class.
    for (size_t i = 0; i < cps.size();) {
        if (ccc(cps[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < cps.size() && ccc(cps[j]) != 0)
            ++j;
        std::stable_sort(cps.begin() + long(i), cps.begin() + long(j),
                         [](uint32_t a, uint32_t b) { return ccc(a) < ccc(b); });
        i = j;
    }
    if (form == NormalForm::NFC || form == NormalForm::NFKC) {
        std::vector<uint32_t> out;
        out.reserve(cps.size());
        long starter = -1;
        bool intervening = false;
        uint8_t lastCcc = 0;
        for (uint32_t c : cps) {
            const uint8_t cc = ccc(c);
            if (starter >= 0 && !(intervening && (lastCcc == 0 || lastCcc >= cc))) {
                if (uint32_t comp = compose(out[size_t(starter)], c)) {
                    out[size_t(starter)] = comp;
                    continue;
                }
            }
            if (cc == 0) {
                starter = long(out.size());
                intervening = false;
            } else {
                intervening = true;
            }
            lastCcc = cc;
            out.push_back(c);
        }
        cps.swap(out);
    }
    std::string r;
    r.reserve(s.size() + 8);
    for (uint32_t c : cps)
        appendUtf8(r, c);
    return r;
}

} // namespace moewb::tok
