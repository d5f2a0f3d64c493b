// SPDX-License-Identifier: MIT
// The write loop of the GGUF export (moewb/export/gguf.h): the quantized linears as quantizeModel
// hands them over, stored on the quantizer's own grid where a block allows it, then every other
// tensor converted from the checkpoint; q/k rows permuted where the layout says so.
#pragma once

#include "export/gguf_layout.h"

#include "gguf/gguf_file.h"
#include "moewb/core/progress.h"
#include "moewb/quant/quantize.h"
#include "moewb/safetensors/safetensors.h"

#include <cstdint>
#include <functional>
#include <set>
#include <string>

namespace moewb::gguf_export {

/// Writes the bytes of a layout's tensors into a begun writer; counts blocks in OutTensor::stats.
class TensorData {
public:
    TensorData(gguf::Writer& writer, GgufLayout& layout)
        : m_writer(writer)
        , m_layout(layout)
    {
    }

    /// A QuantizedWeightSink: one quantized linear into its place (each exactly once).
    void quantized(const QuantizedWeight& w);
    /// Every part quantized() did not write (output.weight always: it may copy the embedding),
    /// from the checkpoint, reporting "write" progress per tensor.
    void fromCheckpoint(const Checkpoint& ckpt, const ProgressFn& progress);

private:
    using RowEncoder = std::function<void(int64_t hfRow, uint8_t* out)>;
    /// Slice `part` of t, rows × cols, each row encoded from the HF row it comes from.
    void writeRows(OutTensor& t, int64_t part, int64_t rows, int64_t cols, const RowEncoder& encodeRow);
    void writePart(OutTensor& t, int64_t part, const std::vector<float>& x);
    /// A llama-arch q/k bias: one row, permuted like the weight's rows.
    void writePermutedBias(OutTensor& t, const std::vector<float>& x);

    gguf::Writer& m_writer;
    GgufLayout& m_layout;
    std::set<std::string> m_written; ///< HF tensors quantized() wrote
};

} // namespace moewb::gguf_export
