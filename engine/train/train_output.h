// SPDX-License-Identifier: MIT
// Writes a trained model as a Hugging Face directory (bf16 safetensors), atomically.
#pragma once

#include "moewb/train/train.h"

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace moewb {

/// OUT_DIR.tmp.<pid>/{config.json, model.safetensors, tokenizer.json, generation_config.json,
/// training_log.json}, renamed to opt.outDir at the end (an existing one is replaced only with force).
void writeTrainedModel(const TrainOptions& opt, const std::string& configText,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors, const TrainResult& result);

} // namespace moewb
