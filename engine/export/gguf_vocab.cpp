// SPDX-License-Identifier: MIT
// Token lists for tokenizer.ggml.* (export/gguf_vocab.h).
#include "export/gguf_vocab.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <unordered_map>

using json = nlohmann::json;

namespace moewb::gguf_export {

namespace {

constexpr float kNeverScore = -1e9f; ///< pieces no merge makes, and padding: merged last, if at all

struct Entry {
    std::string text;
    int32_t type = kNormal;
    bool added = false;
};

bool hasPrefix(const std::string& s, const std::string& p)
{
    return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

bool hasSuffix(const std::string& s, const std::string& p)
{
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

/// "<0x41>"-style byte-fallback pieces.
bool isBytePiece(const std::string& t)
{
    return t.size() == 6 && hasPrefix(t, "<0x") && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3]))
        && std::isxdigit(static_cast<unsigned char>(t[4]));
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to)
{
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
        s.replace(pos, from.size(), to);
    return s;
}

/// added_tokens: special (or special-looking) → CONTROL, others USER_DEFINED with "▁" written as a space.
void addAddedTokens(const json& j, std::map<int64_t, Entry>& byId)
{
    for (const json& a : j.value("added_tokens", json::array())) {
        Entry e;
        e.text = a.at("content").get<std::string>();
        e.added = true;
        if (a.value("special", false) || looksSpecial(e.text)) {
            e.type = kControl;
        } else {
            e.type = kUserDefined;
            e.text = replaceAll(e.text, "\xe2\x96\x81", " ");
        }
        byId[a.at("id").get<int64_t>()] = e;
    }
}

/// Lays byId out densely: ids the file does not define become "[PAD<id>]", UNUSED.
std::vector<Entry> dense(const std::map<int64_t, Entry>& byId, int64_t vocabSize)
{
    const int64_t n = std::max<int64_t>(vocabSize, byId.empty() ? 0 : byId.rbegin()->first + 1);
    std::vector<Entry> out(static_cast<size_t>(n));
    for (int64_t id = 0; id < n; ++id) {
        auto it = byId.find(id);
        out[size_t(id)] = it != byId.end() ? it->second : Entry{"[PAD" + std::to_string(id) + "]", kUnused, false};
    }
    return out;
}

GgufVocab split(const std::vector<Entry>& entries)
{
    GgufVocab v;
    for (const Entry& e : entries) {
        v.tokens.push_back(e.text);
        v.types.push_back(e.type);
    }
    return v;
}

/// The rank of the first merge producing each piece.
std::unordered_map<std::string, int64_t> firstMergeRank(const json& j)
{
    std::unordered_map<std::string, int64_t> rank;
    int64_t r = 0;
    for (const json& mg : j["model"].value("merges", json::array())) {
        std::string joined;
        if (mg.is_string()) {
            const std::string s = mg.get<std::string>();
            const size_t sp = s.find(' ', 1);
            joined = sp == std::string::npos ? s : s.substr(0, sp) + s.substr(sp + 1);
        } else if (mg.is_array() && mg.size() == 2) {
            joined = mg[0].get<std::string>() + mg[1].get<std::string>();
        }
        rank.emplace(joined, r++);
    }
    return rank;
}

/// BPE with byte fallback: model.vocab {piece: id}; scores from the merge ranks.
std::map<int64_t, Entry> bpePieces(const json& j, std::map<int64_t, float>& scores)
{
    const json& model = j["model"];
    const std::string unk = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
    const auto rank = firstMergeRank(j);
    std::map<int64_t, Entry> byId;
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
        const int64_t id = it.value().get<int64_t>();
        Entry e{it.key(), kNormal, false};
        if (e.text == unk)
            e.type = kUnknown;
        else if (isBytePiece(e.text))
            e.type = kByte;
        auto r = rank.find(e.text);
        scores[id] = e.type != kNormal ? 0.0f : r != rank.end() ? -float(r->second) : kNeverScore;
        byId[id] = e;
    }
    return byId;
}

/// Unigram: model.vocab [[piece, score], …] in id order.
std::map<int64_t, Entry> unigramPieces(const json& j, std::map<int64_t, float>& scores)
{
    const json& model = j["model"];
    const int64_t unk = model.value("unk_id", json()).is_number_integer() ? model["unk_id"].get<int64_t>() : -1;
    const bool byteFallback = model.value("byte_fallback", false);
    std::map<int64_t, Entry> byId;
    int64_t id = 0;
    for (const json& p : model["vocab"]) {
        Entry e{p.at(0).get<std::string>(), kNormal, false};
        if (unk == id)
            e.type = kUnknown;
        else if (byteFallback && isBytePiece(e.text))
            e.type = kByte;
        scores[id] = p.at(1).get<float>();
        byId[id++] = e;
    }
    return byId;
}

} // namespace

bool looksSpecial(const std::string& t)
{
    return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || (hasPrefix(t, "<|") && hasSuffix(t, "|>"))
        || (hasPrefix(t, "<\xef\xbd\x9c") && hasSuffix(t, "\xef\xbd\x9c>")) // <｜…｜> (DeepSeek)
        || (hasPrefix(t, "<unused") && hasSuffix(t, ">"));
}

std::string ggmlTokenizerModel(const json& j)
{
    const json& model = j.value("model", json::object());
    const std::string type = model.value("type", std::string());
    if (type == "Unigram" && model.contains("vocab") && model["vocab"].is_array())
        return "llama";
    if (type != "BPE" || !model.contains("vocab") || !model["vocab"].is_object())
        return "";
    if (model.value("byte_fallback", false))
        return "llama";
    const json& dec = j.value("decoder", json());
    const json& pre = j.value("pre_tokenizer", json());
    const auto hasByteLevel = [](const json& x, const char* list) {
        if (!x.is_object())
            return false;
        if (x.value("type", std::string()) == "ByteLevel")
            return true;
        for (const json& y : x.value(list, json::array()))
            if (y.is_object() && y.value("type", std::string()) == "ByteLevel")
                return true;
        return false;
    };
    return hasByteLevel(dec, "decoders") || hasByteLevel(pre, "pretokenizers") ? "gpt2" : "";
}

GgufVocab byteLevelVocab(const json& j, int64_t vocabSize)
{
    std::map<int64_t, Entry> byId;
    const json& vocab = j["model"]["vocab"];
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
        byId[it.value().get<int64_t>()] = Entry{it.key(), kNormal, false};
    addAddedTokens(j, byId);
    return split(dense(byId, vocabSize));
}

GgufVocab sentencePieceVocab(const json& j, int64_t vocabSize)
{
    std::map<int64_t, float> scores;
    std::map<int64_t, Entry> byId = j["model"].value("type", std::string()) == "Unigram" ? unigramPieces(j, scores)
                                                                                         : bpePieces(j, scores);
    std::map<int64_t, bool> unk;
    for (const auto& [id, e] : byId)
        unk[id] = e.type == kUnknown;
    addAddedTokens(j, byId);
    for (auto& [id, e] : byId) {
        if (unk[id])
            e.type = kUnknown; // <unk> is an added special token too, but llama.cpp wants UNKNOWN
        if (e.added)
            scores[id] = 0.0f;
    }
    const std::vector<Entry> entries = dense(byId, vocabSize);
    GgufVocab v = split(entries);
    v.scores.resize(entries.size());
    for (size_t id = 0; id < entries.size(); ++id) {
        auto s = scores.find(int64_t(id));
        v.scores[id] = entries[id].type == kUnused ? kNeverScore : s != scores.end() ? s->second : 0.0f;
    }
    return v;
}

std::vector<std::string> bpeMerges(const json& j)
{
    std::vector<std::string> out;
    const auto part = [](std::string s) { return replaceAll(std::move(s), " ", "\xc4\xa0"); }; // U+0120
    for (const json& mg : j["model"].value("merges", json::array())) {
        if (mg.is_string())
            out.push_back(mg.get<std::string>());
        else if (mg.is_array() && mg.size() == 2)
            out.push_back(part(mg[0].get<std::string>()) + " " + part(mg[1].get<std::string>()));
    }
    return out;
}

} // namespace moewb::gguf_export
