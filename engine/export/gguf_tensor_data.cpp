// SPDX-License-Identifier: MIT
// Tensor bytes of the GGUF export (export/gguf_tensor_data.h).
#include "export/gguf_tensor_data.h"

#include "moewb/core/error.h"

#include <cstring>

namespace moewb::gguf_export {

namespace {

/// Row order of llama.cpp's q/k (docs/export-gguf.md, "q/k row permutation"): new row → HF row.
std::vector<int64_t> ropePermutation(int64_t rows, int64_t heads)
{
    std::vector<int64_t> perm(static_cast<size_t>(rows));
    const int64_t hd = rows / heads, half = hd / 2;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < half; ++j)
            for (int64_t t = 0; t < 2; ++t)
                perm[size_t(h * hd + j * 2 + t)] = h * hd + t * half + j;
    return perm;
}

/// n values of an F32, F16 or BF16 buffer as floats.
std::vector<float> floatsOf(const void* data, DType dtype, int64_t n)
{
    std::vector<float> out(static_cast<size_t>(n));
    const uint8_t* p = static_cast<const uint8_t*>(data);
    MOEWB_ASSERT(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16);
    if (dtype == DType::F32) {
        std::memcpy(out.data(), p, size_t(n) * 4);
        return out;
    }
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[size_t(i)] = dtype == DType::BF16 ? gguf::bf16ToFp32(h) : gguf::fp16ToFp32(h);
    }
    return out;
}

/// An F32, F16 or BF16 checkpoint tensor as floats (its mapping released afterwards).
std::vector<float> loadFloats(const Checkpoint& ckpt, const std::string& name)
{
    const TensorInfo& info = ckpt.info(name);
    const uint8_t* p = ckpt.data(name);
    const int64_t n = info.numel();
    std::vector<float> out(static_cast<size_t>(n));
    switch (info.dtype) {
    case DType::F32:
        std::memcpy(out.data(), p, size_t(n) * 4);
        break;
    case DType::BF16:
    case DType::F16:
        for (int64_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            out[size_t(i)] = info.dtype == DType::BF16 ? gguf::bf16ToFp32(h) : gguf::fp16ToFp32(h);
        }
        break;
    default:
        throw InputError(ckpt.dir(), "tensor '" + name + "' has dtype " + dtypeName(info.dtype)
                                         + "; the GGUF export reads F32, F16 and BF16");
    }
    ckpt.release(name);
    return out;
}

bool isFloatType(GgmlType t)
{
    return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

} // namespace

void TensorData::writeRows(OutTensor& t, int64_t part, int64_t rows, int64_t cols, const RowEncoder& encodeRow)
{
    const int64_t rb = gguf::ggmlRowBytes(t.type, cols);
    std::vector<uint8_t> buf(static_cast<size_t>(rows * rb));
    std::vector<int64_t> perm;
    if (t.permuteHeads > 0)
        perm = ropePermutation(rows, t.permuteHeads);
    for (int64_t r = 0; r < rows; ++r)
        encodeRow(perm.empty() ? r : perm[size_t(r)], buf.data() + r * rb);
    m_writer.write(t.name, uint64_t(part) * uint64_t(rows * rb), buf.data(), buf.size());
}

void TensorData::quantized(const QuantizedWeight& w)
{
    auto it = m_layout.slots.find(w.tensorName);
    MOEWB_ASSERT(it != m_layout.slots.end() && w.shape.size() == 2);
    MOEWB_ASSERT(m_written.insert(w.tensorName).second);
    OutTensor& t = m_layout.tensors[it->second.tensor];
    const int64_t rows = w.shape[0], cols = w.shape[1];
    MOEWB_ASSERT(t.ne[0] == cols && t.ne[1] == rows);
    if (w.ggmlRows && w.ggmlType == int64_t(t.type)) { // encoded by quantizeModel in this very type
        MOEWB_ASSERT(w.ggmlRowBytes == gguf::ggmlRowBytes(t.type, cols));
        t.stats.encodedBlocks += rows * cols / gguf::ggmlBlockSize(t.type);
        return writeRows(t, it->second.part, rows, cols, [&](int64_t r, uint8_t* out) {
            std::memcpy(out, w.ggmlRows + r * w.ggmlRowBytes, size_t(w.ggmlRowBytes));
        });
    }
    if (!w.q) { // a ggml-encoded linear in a stack of a float type: its decoded values
        const std::vector<float> x = floatsOf(w.data, w.dtype, rows * cols);
        return writeRows(t, it->second.part, rows, cols,
                         [&](int64_t r, uint8_t* out) { gguf::quantizeRow(t.type, x.data() + r * cols, out, cols); });
    }
    MOEWB_ASSERT(w.scales && w.zeros && w.gIdx);
    writeRows(t, it->second.part, rows, cols, [&](int64_t r, uint8_t* out) {
        gguf::GridRow g;
        g.q = w.q + r * cols;
        g.scales = w.scales + r * w.groups;
        g.zeros = w.zeros + r * w.groups;
        g.gIdx = w.gIdx;
        gguf::packGridRow(t.type, g, out, cols, t.stats);
    });
}

void TensorData::writePermutedBias(OutTensor& t, const std::vector<float>& x)
{
    const int64_t n = int64_t(x.size());
    const std::vector<int64_t> perm = ropePermutation(n, t.permuteHeads);
    std::vector<float> y(x.size());
    for (size_t i = 0; i < y.size(); ++i)
        y[i] = x[size_t(perm[i])];
    std::vector<uint8_t> buf(static_cast<size_t>(gguf::ggmlRowBytes(t.type, n)));
    gguf::quantizeRow(t.type, y.data(), buf.data(), n);
    m_writer.write(t.name, 0, buf.data(), buf.size());
}

void TensorData::writePart(OutTensor& t, int64_t part, const std::vector<float>& x)
{
    const int64_t cols = t.ne[0];
    const int64_t rows = int64_t(x.size()) / cols;
    MOEWB_ASSERT(rows * cols == int64_t(x.size()));
    if (!isFloatType(t.type))
        t.stats.encodedBlocks += rows * cols / gguf::ggmlBlockSize(t.type);
    if (t.ne.size() == 1 && t.permuteHeads > 0)
        return writePermutedBias(t, x);
    writeRows(t, part, rows, cols,
              [&](int64_t r, uint8_t* out) { gguf::quantizeRow(t.type, x.data() + r * cols, out, cols); });
}

void TensorData::fromCheckpoint(const Checkpoint& ckpt, const ProgressFn& progress)
{
    const int64_t n = int64_t(m_layout.tensors.size());
    int64_t done = 0;
    for (OutTensor& t : m_layout.tensors) {
        report(progress, "write", done++, n, t.name);
        for (size_t k = 0; k < t.parts.size(); ++k) {
            const std::string& hf = t.parts[k];
            if (m_written.count(hf) && t.name != "output.weight")
                continue;
            writePart(t, int64_t(k), loadFloats(ckpt, hf));
        }
    }
    report(progress, "write", n, n);
}

} // namespace moewb::gguf_export
