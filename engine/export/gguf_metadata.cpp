// SPDX-License-Identifier: MIT
// Metadata keys of the GGUF export (export/gguf_metadata.h).
#include "export/gguf_metadata.h"

#include "moewb/core/version.h"

namespace moewb::gguf_export {

namespace {

using gguf::Value;

void addGeneral(gguf::Writer& w, const GgufArch& arch, const MetadataFacts& facts)
{
    w.addKv("general.architecture", Value::str(arch.name));
    w.addKv("general.name", Value::str(facts.modelName));
    w.addKv("general.file_type", Value::u32(facts.fileType));
    w.addKv("general.quantization_version", Value::u32(2));
    w.addKv("general.quantized_by", Value::str(std::string("moewb ") + version()));
}

void addHyperParams(gguf::Writer& w, const GgufArch& arch, const HyperFacts& facts)
{
    const std::string prefix = std::string(arch.name) + ".";
    for (const HyperKey& k : arch.hyperParams)
        if (std::optional<Value> v = k.value(facts))
            w.addKv(prefix + k.key, std::move(*v));
}

} // namespace

void addMetadata(gguf::Writer& w, const GgufArch& arch, const ModelConfig& cfg, const MetadataFacts& facts,
                 TokenizerMeta tokenizer)
{
    addGeneral(w, arch, facts);
    addHyperParams(w, arch, HyperFacts{cfg, facts.expertWidth});
    for (auto& [k, v] : tokenizer.kv)
        w.addKv(k, std::move(v));
    w.addKv("moewb.plan", Value::str(facts.planJson));
    w.addKv("moewb.unquantized_type", Value::str(gguf::ggmlTypeName(facts.unquantized)));
}

} // namespace moewb::gguf_export
