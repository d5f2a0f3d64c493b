// SPDX-License-Identifier: MIT
// What a model path names: a Hugging Face directory (config.json, safetensors, tokenizer.json) or
// a GGUF file (docs/export-gguf.md, "Evaluating GGUF files"), which the forward reads by
// dequantizing each tensor as its layer streams through. Torch-free.
#pragma once

#include "moewb/hfconfig/hf_config.h"

#include <memory>
#include <string>

namespace moewb {

class Tokenizer;

/// A regular file that starts with the GGUF magic.
bool isGgufFile(const std::string& path);

/// loadConfig for a directory; for a GGUF file its metadata mapped to a ModelConfig (llama /
/// Mixtral, qwen2moe, qwen3moe, olmoe, deepseek, qwen2), with every tensor the forward needs
/// checked (present, decodable type, shape). InputError on one line otherwise.
ModelConfig loadModelConfig(const std::string& path);

/// Validates the weights without loading them: the safetensors headers of a directory, the
/// tensor table of a GGUF file.
void checkModelWeights(const std::string& path);

/// The tokenizer that turns text into the model's ids: `tokenizer` (a tokenizer.json or a
/// directory holding one) when given, else the model directory's tokenizer.json. A GGUF file
/// needs `tokenizer`: moewb does not build a tokenizer from GGUF metadata (InputError saying so).
std::shared_ptr<Tokenizer> loadModelTokenizer(const std::string& model, const std::string& tokenizer = {});

} // namespace moewb
