// SPDX-License-Identifier: MIT
// What differs per architecture in the GGUF export (moewb/export/gguf.h): the name llama.cpp
// knows it by, how each HF tensor of a decoder layer is named in the file, the hyper-parameter
// keys and the notes on what llama.cpp will do differently. Everything else (layout order, types,
// metadata framing, the write loop) is shared. Adding an architecture is one more GgufArch in
// gguf_arch.cpp's table.
#pragma once

#include "gguf/gguf_file.h"
#include "moewb/hfconfig/hf_config.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moewb::gguf_export {

/// Rows of llama.cpp's q/k are permuted to interleaved RoPE with this many heads (docs/export-gguf.md, "q/k row permutation").
enum class RopeRows { Kept, PerHead, PerKvHead };

/// One linear of a decoder layer: blk.N.<name>.weight (and .bias when the HF linear has one).
struct LinearName {
    LinearRole role;
    const char* name;
    RopeRows rows = RopeRows::Kept;
};

/// A per-layer F32 vector: blk.N.<name>.weight from <layerPrefix>.<hf>, `width(cfg)` wide.
struct NormName {
    const char* name;
    const char* hf;
    int64_t (*width)(const ModelConfig&);
};

/// What the hyper-parameter keys are computed from: the config and what the layout found.
struct HyperFacts {
    const ModelConfig& cfg;
    int64_t expertWidth = 0; ///< out features of the routed experts' gate (0: no MoE layer)
};

/// "<arch>.<key>" = value(facts); a key whose value is nullopt is not written.
struct HyperKey {
    const char* key;
    std::optional<gguf::Value> (*value)(const HyperFacts&);
};

struct GgufArch {
    Arch arch;                          ///< the HF architecture exported
    const char* name;                   ///< general.architecture
    std::vector<NormName> attnNorms;    ///< before the attention linears
    std::vector<LinearName> attention;  ///< q, k, v, o
    std::vector<NormName> qkNorms;      ///< q/k RMSNorm weights (Qwen3-MoE per head, OLMoE whole)
    std::vector<NormName> ffnNorms;     ///< after the attention linears
    std::vector<LinearName> experts;    ///< stacked routed experts (ne = {in, out, n_expert})
    const char* sharedGate;             ///< the shared expert's gate vector (written when the config has one)
    std::vector<LinearName> shared;     ///< the shared expert's linears
    std::vector<LinearName> dense;      ///< the MLP of a dense layer
    std::vector<HyperKey> hyperParams;  ///< in file order
    /// Notes on what llama.cpp does differently with this model (nullptr: none).
    void (*caveats)(const ModelConfig&, std::vector<std::string>& notes);
};

/// The table entry for cfg.arch; InputError naming modelDir for an architecture without one.
const GgufArch& ggufArchFor(const ModelConfig& cfg, const std::string& modelDir);

} // namespace moewb::gguf_export
