// SPDX-License-Identifier: MIT
// The BPE model of tokenizer.json: vocab + ranked merges, byte_fallback, unk/fuse_unk,
// ignore_merges, continuing_subword_prefix / end_of_word_suffix.
//
// Note [BPE merge order]: within a word, the adjacent pair with the lowest merge rank is merged
// first; ties go to the leftmost pair; after each merge the new symbol's two neighbour pairs are
// candidates. We keep the symbols in a doubly linked list and the candidates in a min-heap keyed
// by (rank, position), dropping stale entries when popped: O(n log n) for a word of n characters,
// so a megabyte without a space costs milliseconds, not the minutes of the textbook loop.
#include "tokenizer/tokenizer_impl.h"

#include "moewb/core/error.h"

#include <cstdio>
#include <queue>

namespace moewb::tok {

namespace {

constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 1 << 18;

uint64_t pairKey(int32_t a, int32_t b)
{
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

} // namespace

Bpe::Bpe(const json& model, const std::string& where)
    : m_where(where + ": model BPE")
{
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
        throw InputError(m_where, "dropout is not supported (it makes encoding random)");
    m_fuseUnk = optBool(model, "fuse_unk", false);
    m_byteFallback = optBool(model, "byte_fallback", false);
    m_ignoreMerges = optBool(model, "ignore_merges", false);
    m_prefix = optString(model, "continuing_subword_prefix");
    m_suffix = optString(model, "end_of_word_suffix");

    const json& vocab = model.at("vocab");
    if (!vocab.is_object())
        throw InputError(m_where, "vocab must be an object {token: id}");
    int32_t maxId = -1;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const int64_t id = it.value().get<int64_t>();
        if (id < 0 || id > (int64_t(1) << 30))
            throw InputError(m_where, "vocab id " + std::to_string(id) + " of '" + it.key() + "' is out of range");
        maxId = std::max(maxId, int32_t(id));
    }
    m_idToTok.assign(size_t(maxId + 1), std::string());
    std::vector<bool> seen(size_t(maxId + 1), false);
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const auto id = size_t(it.value().get<int32_t>());
        if (seen[id])
            throw InputError(m_where, "vocab id " + std::to_string(id) + " is given to both '" + m_idToTok[id]
                                          + "' and '" + it.key() + "'");
        seen[id] = true;
        m_idToTok[id] = it.key();
    }
    m_vocab.reserve(m_idToTok.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const auto id = it.value().get<int32_t>();
        m_vocab.emplace(std::string_view(m_idToTok[size_t(id)]), id);
    }

    const std::string unk = optString(model, "unk_token");
    if (!unk.empty()) {
        m_unk = find(unk);
        if (m_unk < 0)
            throw InputError(m_where, "unk_token '" + unk + "' is not in the vocabulary");
    }
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        m_byteIds[b] = find(name);
    }

    const json& merges = model.at("merges");
    if (!merges.is_array())
        throw InputError(m_where, "merges must be an array");
    m_merges.reserve(merges.size());
    int32_t rank = 0;
    for (const json& m : merges) {
        std::string l, r;
        if (m.is_string()) {
            const std::string s = m.get<std::string>();
            if (rank == 0 && s.rfind("#version", 0) == 0)
                continue;
            const auto sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                throw InputError(m_where, "merge '" + s + "' is not 'left right'");
            l = s.substr(0, sp);
            r = s.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2) {
            l = m[0].get<std::string>();
            r = m[1].get<std::string>();
        } else {
            throw InputError(m_where, "merge " + m.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
        }
        std::string merged = l;
        merged += !m_prefix.empty() && r.compare(0, m_prefix.size(), m_prefix) == 0 ? r.substr(m_prefix.size()) : r;
        const int32_t a = find(l), b = find(r), c = find(merged);
        if (a < 0 || b < 0 || c < 0)
            throw InputError(m_where, "merge '" + l + " " + r + "' uses a token that is not in the vocabulary");
        m_merges[pairKey(a, b)] = Merge{rank++, c}; // a repeated pair keeps its last rank
    }
}

const std::string* Bpe::token(int32_t id) const
{
    return id >= 0 && size_t(id) < m_idToTok.size() && !m_idToTok[size_t(id)].empty() ? &m_idToTok[size_t(id)]
                                                                                         : nullptr;
}

int32_t Bpe::find(std::string_view token) const
{
    auto it = m_vocab.find(token);
    return it == m_vocab.end() ? -1 : it->second;
}

bool Bpe::symbolIds(std::string_view ch, std::vector<int32_t>& ids) const
{
    ids.clear();
    for (unsigned char c : ch) {
        if (m_byteIds[c] < 0)
            return false;
        ids.push_back(m_byteIds[c]);
    }
    return true;
}

void Bpe::encodeWord(std::string_view word, std::vector<int32_t>& out) const
{
    if (word.empty())
        return;
    if (m_ignoreMerges) {
        if (int32_t id = find(word); id >= 0) {
            out.push_back(id);
            return;
        }
    }
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable) {
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        if (auto it = m_cache.find(std::string(word)); it != m_cache.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const size_t before = out.size();
    mergeWord(word, out);
    if (cacheable) {
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        if (m_cache.size() >= kMaxCacheEntries)
            m_cache.clear();
        m_cache.emplace(std::string(word), std::vector<int32_t>(out.begin() + long(before), out.end()));
    }
}

void Bpe::mergeWord(std::string_view word, std::vector<int32_t>& out) const
{
    struct Sym {
        int32_t id;
        int32_t prev, next;
    };
    std::vector<Sym> sym;
    sym.reserve(word.size());
    auto push = [&](int32_t id) {
        const auto n = int32_t(sym.size());
        sym.push_back(Sym{id, n - 1, -1});
        if (n > 0)
            sym[size_t(n - 1)].next = n;
    };

    // Initial symbols: one per character (decorated), else its bytes, else unk.
    std::string piece;
    std::vector<int32_t> bytes;
    bool pendingUnk = false; // the last symbol is an unk that a following unknown may fuse into
    for (size_t i = 0; i < word.size();) {
        const size_t n = std::min(utf8Len(static_cast<unsigned char>(word[i])), word.size() - i);
        const std::string_view ch = word.substr(i, n);
        const bool first = i == 0, last = i + n == word.size();
        i += n;
        int32_t id;
        if (m_prefix.empty() && m_suffix.empty()) {
            id = find(ch);
        } else {
            piece.clear();
            if (!first)
                piece += m_prefix;
            piece.append(ch);
            if (last)
                piece += m_suffix;
            id = find(piece);
        }
        if (id >= 0) {
            push(id);
            pendingUnk = false;
            continue;
        }
        if (m_byteFallback && symbolIds(ch, bytes)) {
            for (int32_t b : bytes)
                push(b);
            pendingUnk = false;
            continue;
        }
        if (m_unk < 0)
            continue; // no unk_token: the character is dropped
        if (!(pendingUnk && m_fuseUnk))
            push(m_unk);
        pendingUnk = true;
    }
    if (sym.empty())
        return;

    struct Cand {
        int32_t rank, left, right, id, leftId, rightId;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::vector<Cand> storage;
    storage.reserve(sym.size());
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap(std::greater<Cand>(), std::move(storage));
    auto candidate = [&](int32_t left) {
        if (left < 0)
            return;
        const int32_t right = sym[size_t(left)].next;
        if (right < 0)
            return;
        auto it = m_merges.find(pairKey(sym[size_t(left)].id, sym[size_t(right)].id));
        if (it != m_merges.end())
            heap.push(Cand{it->second.rank, left, right, it->second.id, sym[size_t(left)].id, sym[size_t(right)].id});
    };
    for (int32_t k = 0; k + 1 < int32_t(sym.size()); ++k)
        candidate(k);
    while (!heap.empty()) {
        const Cand c = heap.top();
        heap.pop();
        Sym& l = sym[size_t(c.left)];
        if (l.id != c.leftId || l.next != c.right || sym[size_t(c.right)].id != c.rightId)
            continue; // stale: one side has been merged away since
        Sym& r = sym[size_t(c.right)];
        l.id = c.id;
        l.next = r.next;
        if (r.next >= 0)
            sym[size_t(r.next)].prev = c.left;
        r.id = -1;
        candidate(l.prev);
        candidate(c.left);
    }
    for (int32_t k = 0; k >= 0; k = sym[size_t(k)].next)
        out.push_back(sym[size_t(k)].id);
}

} // namespace moewb::tok
