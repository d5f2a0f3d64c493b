// SPDX-License-Identifier: MIT
// Reading a GPTQ checkpoint's quantization settings (config.json `quantization_config` or
// quantize_config.json), as transformers, GPTQModel and vLLM write them: the global settings and
// GPTQModel's per-module `dynamic` overrides. Layout: docs/export-gptq.md.
#pragma once

#include "moewb/plan/gptq_dynamic.h"

#include <optional>
#include <string>

namespace moewb {

/// A checkpoint's `quantization_config` as far as moewb reads it.
struct GptqCheckpointConfig {
    GptqExport settings;              ///< global bits / group_size / sym / desc_act + ordered dynamic rules
    std::string checkpointFormat = "gptq";
    bool lmHead = false;
};

/// config.json["quantization_config"] of modelDir, else quantize_config.json; nullopt when neither
/// says quant_method "gptq" (quantize_config.json has no quant_method: then it is assumed).
/// Malformed JSON or fields: InputError naming the file.
std::optional<GptqCheckpointConfig> readGptqConfig(const std::string& modelDir);

} // namespace moewb
