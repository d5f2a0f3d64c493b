// SPDX-License-Identifier: MIT
// Special-token keys (export/gguf_tokenizer_special.h).
#include "export/gguf_tokenizer_special.h"

#include <map>
#include <optional>

using json = nlohmann::json;

namespace moewb::gguf_export {

namespace {

using gguf::Value;

/// tokenizer_config.json's name → the GGUF key's middle part.
const std::vector<std::pair<const char*, const char*>> kSpecialKinds = {
    {"bos", "bos"}, {"eos", "eos"}, {"unk", "unknown"}, {"sep", "seperator"}, {"pad", "padding"},
};

/// The text of tokenizer_config.json's "<kind>_token" (a string or an AddedToken object).
std::optional<std::string> configToken(const json& cfg, const std::string& kind)
{
    if (!cfg.is_object() || !cfg.contains(kind + "_token"))
        return std::nullopt;
    const json& e = cfg[kind + "_token"];
    if (e.is_string())
        return e.get<std::string>();
    if (e.is_object() && e.contains("content") && e["content"].is_string())
        return e["content"].get<std::string>();
    return std::nullopt;
}

std::optional<int64_t> addedTokenId(const json& j, const std::string& content)
{
    for (const json& a : j.value("added_tokens", json::array()))
        if (a.value("content", std::string()) == content)
            return a.at("id").get<int64_t>();
    return std::nullopt;
}

std::optional<int64_t> eotId(const GgufVocab& vocab)
{
    // llama.cpp's end-of-turn texts, in its order; the DeepSeek one is <｜end▁of▁sentence｜>.
    static const char* texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
                                  "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"};
    for (const char* t : texts)
        for (size_t id = 0; id < vocab.tokens.size(); ++id)
            if (vocab.tokens[id] == t)
                return int64_t(id);
    return std::nullopt;
}

} // namespace

void addSpecialTokens(KvList& kv, const json& j, const json& tokCfg, const ModelConfig& cfg, const Tokenizer& tok,
                      const GgufVocab& vocab)
{
    const int64_t n = int64_t(vocab.tokens.size());
    std::map<std::string, int64_t> ids;
    for (const auto& [kind, key] : kSpecialKinds)
        if (const auto text = configToken(tokCfg, kind))
            if (const auto id = addedTokenId(j, *text); id && *id < n)
                ids.emplace(key, *id);
    if (cfg.bosTokenId && *cfg.bosTokenId >= 0 && *cfg.bosTokenId < n)
        ids.emplace("bos", *cfg.bosTokenId);
    if (cfg.eosTokenId && *cfg.eosTokenId >= 0 && *cfg.eosTokenId < n)
        ids.emplace("eos", *cfg.eosTokenId);
    for (const auto& [kind, key] : kSpecialKinds) {
        (void)kind;
        if (auto it = ids.find(key); it != ids.end())
            kv.emplace_back(std::string("tokenizer.ggml.") + key + "_token_id", Value::u32(uint32_t(it->second)));
    }
    if (const auto eot = eotId(vocab))
        kv.emplace_back("tokenizer.ggml.eot_token_id", Value::u32(uint32_t(*eot)));

    const std::vector<int32_t> with = tok.encode("a", true), without = tok.encode("a", false);
    const bool addBos = with.size() > without.size() && !without.empty() && with.front() != without.front();
    const bool addEos = with.size() > without.size() && !without.empty() && with.back() != without.back();
    kv.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(addBos));
    kv.emplace_back("tokenizer.ggml.add_eos_token", Value::boolean(addEos));
}

void addChatTemplate(KvList& kv, const json& tokCfg)
{
    if (!tokCfg.is_object() || !tokCfg.contains("chat_template"))
        return;
    const json& t = tokCfg["chat_template"];
    if (t.is_string()) {
        kv.emplace_back("tokenizer.chat_template", Value::str(t.get<std::string>()));
        return;
    }
    for (const json& e : t.is_array() ? t : json::array())
        if (e.is_object() && e.value("name", std::string()) == "default" && e.contains("template")
            && e["template"].is_string())
            kv.emplace_back("tokenizer.chat_template", Value::str(e["template"].get<std::string>()));
}

} // namespace moewb::gguf_export
