// SPDX-License-Identifier: MIT
// tokenizer.ggml.* for the GGUF export (export/gguf_tokenizer.h).
#include "export/gguf_tokenizer.h"

#include "moewb/core/error.h"
#include "moewb/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace moewb::gguf_export {

namespace {

using gguf::Value;

TokenizerMeta noVocabulary(std::string note)
{
    TokenizerMeta m;
    m.kv.emplace_back("tokenizer.ggml.model", Value::str("none"));
    m.note = std::move(note);
    return m;
}

bool isByteLevelBpe(const json& j)
{
    const json& model = j.value("model", json::object());
    const bool byteLevel = model.value("type", std::string()) == "BPE" && j.contains("decoder")
        && j["decoder"].is_object() && j["decoder"].value("type", std::string()) == "ByteLevel";
    return byteLevel && model.contains("vocab") && model["vocab"].is_object();
}

struct Vocabulary {
    std::vector<std::string> tokens;
    std::vector<int32_t> types; ///< llama.cpp's token types
};

/// Every id below max(vocab_size, highest id + 1): the token, or "[PADn]" (UNUSED) for a gap.
Vocabulary vocabulary(const json& j, int64_t vocabSize)
{
    const json& vocab = j["model"]["vocab"];
    std::map<int64_t, std::string> byId;
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
        byId[it.value().get<int64_t>()] = it.key();
    std::map<int64_t, int32_t> types;
    for (const json& a : j.value("added_tokens", json::array())) {
        const int64_t id = a.at("id").get<int64_t>();
        byId[id] = a.at("content").get<std::string>();
        types[id] = a.value("special", false) ? 3 : 4; // CONTROL / USER_DEFINED
    }
    const int64_t n = std::max<int64_t>(vocabSize, byId.empty() ? 0 : byId.rbegin()->first + 1);
    Vocabulary v;
    v.tokens.resize(size_t(n));
    v.types.assign(size_t(n), 1); // NORMAL
    for (int64_t id = 0; id < n; ++id) {
        auto it = byId.find(id);
        if (it == byId.end()) {
            v.tokens[size_t(id)] = "[PAD" + std::to_string(id) + "]";
            v.types[size_t(id)] = 5; // UNUSED
        } else {
            v.tokens[size_t(id)] = it->second;
            auto t = types.find(id);
            if (t != types.end())
                v.types[size_t(id)] = t->second;
        }
    }
    return v;
}

/// "a b" per merge, from either of tokenizer.json's two spellings.
std::vector<std::string> merges(const json& j)
{
    std::vector<std::string> out;
    for (const json& mg : j["model"].value("merges", json::array())) {
        if (mg.is_string())
            out.push_back(mg.get<std::string>());
        else if (mg.is_array() && mg.size() == 2)
            out.push_back(mg[0].get<std::string>() + " " + mg[1].get<std::string>());
    }
    return out;
}

/// llama.cpp picks its pre-tokenizer regex by name: a plain ByteLevel(use_regex) pre-tokenizer is
/// GPT-2's regex ("gpt-2"); anything else gets "default" and a note.
std::string preTokenizer(const json& j, std::string& note)
{
    const json& pt = j.value("pre_tokenizer", json());
    if (pt.is_object() && pt.value("type", std::string()) == "ByteLevel" && pt.value("use_regex", true))
        return "gpt-2";
    note = "pre-tokenizer is not GPT-2's ByteLevel regex: tokenizer.ggml.pre \"default\" may split text "
           "differently from tokenizer.json in llama.cpp";
    return "default";
}

/// bos/eos ids from config.json; whether the post-processor adds them, as moewb's own tokenizer does it.
void specialTokens(TokenizerMeta& m, const ModelConfig& cfg, const std::string& path)
{
    if (cfg.bosTokenId)
        m.kv.emplace_back("tokenizer.ggml.bos_token_id", Value::u32(uint32_t(*cfg.bosTokenId)));
    if (cfg.eosTokenId)
        m.kv.emplace_back("tokenizer.ggml.eos_token_id", Value::u32(uint32_t(*cfg.eosTokenId)));
    const auto tok = Tokenizer::load(path);
    const std::vector<int32_t> with = tok->encode("a", true), without = tok->encode("a", false);
    const bool addBos = with.size() > without.size() && !without.empty() && with.front() != without.front();
    const bool addEos = with.size() > without.size() && !without.empty() && with.back() != without.back();
    m.kv.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(addBos));
    m.kv.emplace_back("tokenizer.ggml.add_eos_token", Value::boolean(addEos));
}

} // namespace

TokenizerMeta tokenizerMetadata(const std::string& modelDir, const ModelConfig& cfg)
{
    const fs::path path = fs::path(modelDir) / "tokenizer.json";
    std::ifstream f(path);
    if (!f)
        return noVocabulary("no tokenizer.json: the GGUF has no vocabulary (tokenizer.ggml.model \"none\")");
    json j;
    try {
        j = json::parse(f);
    } catch (const json::exception& e) {
        throw InputError(path.string(), std::string("invalid JSON (") + e.what() + ")");
    }
    if (!isByteLevelBpe(j))
        return noVocabulary("the tokenizer is not byte-level BPE: the GGUF has no vocabulary (tokenizer.ggml.model "
                            "\"none\"); llama.cpp can load it but not tokenize text");
    const Vocabulary v = vocabulary(j, cfg.vocabSize);
    const std::vector<std::string> mergeList = merges(j);
    TokenizerMeta m;
    const std::string pre = preTokenizer(j, m.note);
    m.kv.emplace_back("tokenizer.ggml.model", Value::str("gpt2"));
    m.kv.emplace_back("tokenizer.ggml.pre", Value::str(pre));
    m.kv.emplace_back("tokenizer.ggml.tokens", Value::strings(v.tokens));
    m.kv.emplace_back("tokenizer.ggml.token_type", Value::i32s(v.types));
    m.kv.emplace_back("tokenizer.ggml.merges", Value::strings(mergeList));
    specialTokens(m, cfg, path.string());
    return m;
}

} // namespace moewb::gguf_export
