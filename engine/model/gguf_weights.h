// SPDX-License-Identifier: MIT
// The weights of a GGUF file for the layer-streaming forward (model/streamer.h): each tensor
// dequantized to float32 as it is needed, one decoder layer at a time, llama.cpp's q/k row
// permutation undone and stacked experts cut apart (model/gguf_config.h says where each lies).
#pragma once

#include "model/gguf_config.h"
#include "model/weights.h"

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace moewb {

class GgufWeights {
public:
    /// Reads and validates the file's header, metadata and every tensor the forward needs.
    explicit GgufWeights(const std::string& path);
    const ModelConfig& config() const { return m_cfg; }
    const std::string& path() const { return m_file.path; }

    LayerWeights layer(int64_t layer, at::ScalarType dtype) const;
    at::Tensor embedding(at::ScalarType dtype) const;
    HeadWeights head(at::ScalarType dtype) const;
    /// One tensor by its Hugging Face name, as `dtype` (tests, the calibration's outlier scores).
    at::Tensor tensor(const std::string& hfName, at::ScalarType dtype) const;

private:
    at::Tensor load(const std::string& hfName, at::ScalarType dtype) const;

    gguf::File m_file;
    ModelConfig m_cfg;
    std::map<std::string, GgufSource> m_sources;
};

} // namespace moewb
