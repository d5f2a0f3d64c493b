// SPDX-License-Identifier: MIT
// tokenizer.ggml.* for the GGUF export (export/gguf_tokenizer.h).
#include "export/gguf_tokenizer.h"

#include "export/gguf_pretokenizer.h"
#include "export/gguf_tokenizer_special.h"
#include "export/gguf_vocab.h"

#include "moewb/core/error.h"
#include "moewb/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

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

/// The file parsed; null when it does not exist; InputError naming it when it is not valid JSON.
json readJson(const fs::path& path)
{
    std::ifstream f(path);
    if (!f)
        return json();
    try {
        return json::parse(f);
    } catch (const json::exception& e) {
        throw InputError(path.string(), std::string("invalid JSON (") + e.what() + ")");
    }
}

void addNote(TokenizerMeta& m, const std::string& note)
{
    m.note += (m.note.empty() ? "" : "; ") + note;
}

/// Whether text gets a leading "▁": a Prepend("▁") normalizer or a Metaspace pre-tokenizer that prepends.
bool addsSpacePrefix(const json& j)
{
    const std::string s = j.value("normalizer", json()).dump() + j.value("pre_tokenizer", json()).dump();
    const bool prepend = s.find("\"Prepend\"") != std::string::npos;
    const bool metaspace = s.find("\"Metaspace\"") != std::string::npos && s.find("\"never\"") == std::string::npos
        && s.find("\"add_prefix_space\":false") == std::string::npos;
    return prepend || metaspace;
}

TokenizerMeta byteLevelBpe(const json& j, const json& tokCfg, const ModelConfig& cfg, const Tokenizer& tok)
{
    const GgufVocab v = byteLevelVocab(j, cfg.vocabSize);
    const PreTokenizerName pre = preTokenizerName(j, tok);
    TokenizerMeta m;
    if (pre.how.empty())
        addNote(m, "warning: the tokenizer's pre-tokenizer is not one llama.cpp knows (probe hash " + pre.probeHash
                       + "): tokenizer.ggml.pre \"default\", and llama.cpp may split text differently from "
                         "tokenizer.json");
    if (!j.value("normalizer", json()).is_null() && !j["normalizer"].value("normalizers", json::array({1})).empty())
        addNote(m, "tokenizer.json normalizes text (" + j["normalizer"].value("type", std::string())
                       + ") and llama.cpp does not: text that is not already normalized may tokenize differently");
    m.kv.emplace_back("tokenizer.ggml.model", Value::str("gpt2"));
    m.kv.emplace_back("tokenizer.ggml.pre", Value::str(pre.name));
    m.kv.emplace_back("tokenizer.ggml.tokens", Value::strings(v.tokens));
    m.kv.emplace_back("tokenizer.ggml.token_type", Value::i32s(v.types));
    m.kv.emplace_back("tokenizer.ggml.merges", Value::strings(bpeMerges(j)));
    addSpecialTokens(m.kv, j, tokCfg, cfg, tok, v);
    addChatTemplate(m.kv, tokCfg);
    return m;
}

TokenizerMeta sentencePiece(const json& j, const json& tokCfg, const ModelConfig& cfg, const Tokenizer& tok)
{
    const GgufVocab v = sentencePieceVocab(j, cfg.vocabSize);
    TokenizerMeta m;
    if (j["model"].value("type", std::string()) == "Unigram")
        addNote(m, "Unigram tokenizer written as tokenizer.ggml.model \"llama\" with its scores: llama.cpp merges "
                   "pieces by score instead of the best segmentation, so some texts tokenize differently");
    m.kv.emplace_back("tokenizer.ggml.model", Value::str("llama"));
    m.kv.emplace_back("tokenizer.ggml.pre", Value::str("default"));
    m.kv.emplace_back("tokenizer.ggml.tokens", Value::strings(v.tokens));
    m.kv.emplace_back("tokenizer.ggml.scores", Value::f32s(v.scores));
    m.kv.emplace_back("tokenizer.ggml.token_type", Value::i32s(v.types));
    addSpecialTokens(m.kv, j, tokCfg, cfg, tok, v);
    m.kv.emplace_back("tokenizer.ggml.add_space_prefix", Value::boolean(addsSpacePrefix(j)));
    addChatTemplate(m.kv, tokCfg);
    return m;
}

} // namespace

TokenizerMeta tokenizerMetadata(const std::string& modelDir, const ModelConfig& cfg)
{
    const fs::path path = fs::path(modelDir) / "tokenizer.json";
    const json j = readJson(path);
    if (j.is_null())
        return noVocabulary("no tokenizer.json: the GGUF has no vocabulary (tokenizer.ggml.model \"none\")");
    const std::string model = ggmlTokenizerModel(j);
    if (model.empty())
        return noVocabulary("the tokenizer is neither byte-level BPE nor SentencePiece-style: the GGUF has no "
                            "vocabulary (tokenizer.ggml.model \"none\"); llama.cpp can load it but not tokenize text");
    const json tokCfg = readJson(fs::path(modelDir) / "tokenizer_config.json");
    const auto tok = Tokenizer::load(path.string());
    return model == "gpt2" ? byteLevelBpe(j, tokCfg, cfg, *tok) : sentencePiece(j, tokCfg, cfg, *tok);
}

} // namespace moewb::gguf_export
