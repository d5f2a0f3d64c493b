// SPDX-License-Identifier: MIT
// A GGUF file read back as a model (docs/export-gguf.md, "Evaluating GGUF files"): its
// architecture and hyper-parameter metadata mapped to moewb's ModelConfig, and for every tensor
// the forward needs (by its Hugging Face name) where it lies in the file. Torch-free.
#pragma once

#include "gguf/gguf_file.h"
#include "moewb/hfconfig/hf_config.h"

#include <cstdint>
#include <map>
#include <string>

namespace moewb {

/// Where one HF tensor lies in the GGUF file.
struct GgufSource {
    const gguf::TensorEntry* tensor = nullptr;
    int64_t expert = -1;       ///< slice of a stacked expert tensor (ne = {in, out, n_expert}); -1: whole
    int64_t permuteHeads = 0;  ///< > 0: rows permuted by llama.cpp's converter for this many heads (undo)
};

/// The ModelConfig of a GGUF file: general.architecture llama (Mixtral with experts, Llama
/// without), qwen2moe, qwen3moe, olmoe, deepseek, qwen2. Routing follows what llama.cpp runs for
/// each (top-k renormalized for llama and qwen3moe only). InputError "<path>: <problem>" for an
/// unknown architecture or a missing or out-of-range key.
ModelConfig ggufModelConfig(const gguf::File& f);

/// llama.cpp's name of a linear's weight: "blk.3.attn_q.weight", "blk.3.ffn_up_exps.weight" (the
/// stacked tensor of every routed expert of the layer), "blk.3.ffn_gate_inp.weight" (router).
std::string ggufWeightName(int64_t layer, LinearRole role);

/// HF tensor name → source, for every tensor expectedTensors(cfg) lists, each checked: present,
/// decodable type, shape. InputError naming the file and the GGUF tensor otherwise.
std::map<std::string, GgufSource> ggufSources(const gguf::File& f, const ModelConfig& cfg);

} // namespace moewb
