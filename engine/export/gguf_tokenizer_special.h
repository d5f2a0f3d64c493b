// SPDX-License-Identifier: MIT
// Special-token keys of the GGUF export (docs/export-gguf.md, "Tokenizer metadata"): bos / eos / unk / sep / pad /
// eot ids, add_bos / add_eos, and the chat template.
#pragma once

#include "export/gguf_vocab.h"
#include "gguf/gguf_file.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace moewb::gguf_export {

using KvList = std::vector<std::pair<std::string, gguf::Value>>;

/// tokenizer_config.json's *_token (looked up among tokenizer.json's added_tokens) first, then config.json's
/// *_token_id; ids outside the vocabulary are dropped. The EOT id is the first of llama.cpp's end-of-turn texts
/// the vocabulary has. add_bos / add_eos say what moewb's tokenizer (tokenizer.json's post-processor) does.
void addSpecialTokens(KvList& kv, const nlohmann::json& tokenizerJson, const nlohmann::json& tokenizerConfig,
                      const ModelConfig& cfg, const Tokenizer& tok, const GgufVocab& vocab);

/// tokenizer.chat_template from tokenizer_config.json, when it has one (a string, or the entry named "default"
/// of a list).
void addChatTemplate(KvList& kv, const nlohmann::json& tokenizerConfig);

} // namespace moewb::gguf_export
