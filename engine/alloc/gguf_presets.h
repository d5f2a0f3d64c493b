// SPDX-License-Identifier: MIT
// llama.cpp's quantization mixes as plan strategies (#26, docs/export-gguf.md "Presets"):
// gguf-q2_k, gguf-q3_k_m, gguf-q4_k_m, gguf-q5_k_m, gguf-q6_k give every linear, token_embd and
// output.weight the ggml type llama-quantize gives the same tensor for that mix (MoE rules
// included); the export's width fallback then applies as llama-quantize's does.
#pragma once

#include "moewb/alloc/allocate.h"

#include <string>

namespace moewb {

/// The preset named by opt.strategy ("gguf-q4_k_m", ...); the byte / bit target is not used.
AllocResult allocateGgufPreset(const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt);

/// The type (plan spelling, "q6_k") the preset gives entry e of cfg; InputError for an unknown preset.
std::string ggufPresetType(const std::string& preset, const ModelConfig& cfg, const PlanEntry& e);

} // namespace moewb
