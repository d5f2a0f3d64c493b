// SPDX-License-Identifier: MIT
// The metadata of the GGUF export (moewb/export/gguf.h), in file order: general.*, the
// architecture's hyper-parameters (export/gguf_arch.h), tokenizer.ggml.* and moewb.*.
#pragma once

#include "export/gguf_arch.h"
#include "export/gguf_tokenizer.h"
#include "export/gguf_types.h"

#include "gguf/gguf_file.h"

#include <cstdint>
#include <string>

namespace moewb::gguf_export {

/// What the metadata says beyond the config.
struct MetadataFacts {
    std::string modelName;   ///< general.name
    uint32_t fileType = 1;   ///< general.file_type (fileTypeOf)
    int64_t expertWidth = 0; ///< GgufLayout::expertWidth
    std::string planJson;    ///< moewb.plan
    GgmlType unquantized = GgmlType::F16;
};

void addMetadata(gguf::Writer& w, const GgufArch& arch, const ModelConfig& cfg, const MetadataFacts& facts,
                 TokenizerMeta tokenizer);

} // namespace moewb::gguf_export
