// SPDX-License-Identifier: MIT
#include "moewb/model/model_source.h"

#include "gguf/gguf_file.h"
#include "model/gguf_config.h"
#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/tokenizer/tokenizer.h"

#include <cstdint>
#include <filesystem>
#include <fstream>

namespace moewb {

bool isGgufFile(const std::string& path)
{
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return false;
    std::ifstream in(path, std::ios::binary);
    uint32_t magic = 0;
    in.read(reinterpret_cast<char*>(&magic), sizeof magic);
    return in && magic == gguf::kMagic;
}

ModelConfig loadModelConfig(const std::string& path)
{
    if (!isGgufFile(path))
        return loadConfig(path);
    const gguf::File f = gguf::read(path);
    const ModelConfig cfg = ggufModelConfig(f);
    ggufSources(f, cfg);
    return cfg;
}

void checkModelWeights(const std::string& path)
{
    if (isGgufFile(path))
        loadModelConfig(path);
    else
        Checkpoint::open(path);
}

std::shared_ptr<Tokenizer> loadModelTokenizer(const std::string& model, const std::string& tokenizer)
{
    if (!tokenizer.empty())
        return Tokenizer::load(tokenizer);
    if (isGgufFile(model))
        throw InputError(model, "a GGUF file's own vocabulary is not used for text: give the tokenizer.json of the "
                                "same model (eval --tokenizer DIR, or --kld-ref a Hugging Face directory)");
    return Tokenizer::load(model);
}

} // namespace moewb
