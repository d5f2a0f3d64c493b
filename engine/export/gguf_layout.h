// SPDX-License-Identifier: MIT
// The tensors of the GGUF export (moewb/export/gguf.h) in file order: llama.cpp's names, ggml
// shapes, types, and the HF tensors each is made of (routed experts stacked into one 3-D tensor
// per layer and role).
#pragma once

#include "export/gguf_arch.h"
#include "export/gguf_types.h"

#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace moewb::gguf_export {

/// One tensor of the GGUF file and where its bytes come from.
struct OutTensor {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type = GgmlType::F32;
    std::vector<std::string> parts; ///< HF tensor names: one, or n_expert slices (stacked)
    int64_t permuteHeads = 0;       ///< llama q/k: rows permuted to interleaved RoPE with this many heads
    std::set<int64_t> partTypes;    ///< types the plan asked for (stacked tensors)
    int64_t extraBytes = 0;         ///< stacked: what one type for all experts costs over the asked types
    gguf::PackStats stats;
    std::string note;
};

/// Where an HF tensor lands: the output tensor and the slice index (expert) inside it.
struct Slot {
    size_t tensor = 0;
    int64_t part = 0;
};

struct GgufLayout {
    std::vector<OutTensor> tensors;  ///< in file order
    std::map<std::string, Slot> slots; ///< HF tensor name → place (output.weight has none)
    int64_t expertWidth = 0;         ///< out features of the routed experts' gate (0: no MoE layer)
    std::vector<std::string> notes;  ///< stacked tensors stored with a higher type than some experts asked for
    /// Expert linears that must be encoded in their stack's ggml type rather than the one the plan
    /// gives them (linear name → plan type name): the export quantizes with these overrides.
    std::map<std::string, std::string> stackOverrides;
};

/// token_embd, then per layer the architecture's norms, attention, router, stacked experts,
/// shared expert or dense MLP, then output_norm and output (a copy of the embedding when tied).
GgufLayout planLayout(const GgufArch& arch, const ModelConfig& cfg, const Checkpoint& ckpt, const TensorTypes& types);

/// A note for each 2-D tensor stored unquantized because its width is not a multiple of 32.
std::vector<std::string> widthNotes(const GgufLayout& layout, GgmlType unquantized);

} // namespace moewb::gguf_export
