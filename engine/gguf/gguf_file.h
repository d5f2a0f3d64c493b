// SPDX-License-Identifier: MIT
// GGUF v3 container (docs/export-gguf.md, "File layout"): typed metadata, tensor infos, aligned data. A streaming
// writer (tensors declared first, bytes written at their offsets in any order, temp file renamed
// at commit) and a validating reader. Torch-free.
#pragma once

#include "gguf/gguf_quants.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace moewb::gguf {

constexpr uint32_t kMagic = 0x46554747; // "GGUF"
constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;

enum class ValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* valueTypeName(ValueType t);

/// One metadata value. Integers of every width live in i (signed) or u (unsigned), floats in f.
struct Value {
    ValueType type = ValueType::UINT32;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0.0;
    bool b = false;
    std::string s;
    ValueType arrayType = ValueType::UINT8; ///< element type (ARRAY only)
    std::vector<Value> items;               ///< ARRAY only

    static Value u32(uint32_t v);
    static Value i32(int32_t v);
    static Value u64(uint64_t v);
    static Value f32(float v);
    static Value boolean(bool v);
    static Value str(std::string v);
    static Value strings(const std::vector<std::string>& v);
    static Value i32s(const std::vector<int32_t>& v);
    static Value f32s(const std::vector<float>& v);

    bool isInteger() const;
    int64_t asInt() const; ///< any integer type (InputError otherwise)
    double asFloat() const; ///< float or integer types
    /// One line for gguf-info: scalars as text, arrays as "[type × n] first items …".
    std::string toText(size_t maxItems = 8) const;
};

struct TensorEntry {
    std::string name;
    std::vector<int64_t> ne; ///< ggml order: fastest-varying first
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0;     ///< relative to the data section
    uint64_t nbytes = 0;
    int64_t numel() const;
};

/// Streaming writer. addKv / addTensor, then begin() (header and infos written, data area
/// allocated, padding zero), then write() each tensor's bytes (whole or in slices, any order),
/// then commit(): checks every tensor byte was written, fsyncs and renames PATH.tmp.<pid> over
/// PATH. Destroying an uncommitted writer removes the temp file.
class Writer {
public:
    explicit Writer(std::string path, uint32_t alignment = kDefaultAlignment);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    void addKv(const std::string& key, Value v); ///< duplicate keys are an internal error
    void addTensor(const std::string& name, const std::vector<int64_t>& ne, GgmlType type);
    /// The file size begin() will produce (valid after the last addTensor / addKv).
    uint64_t plannedSize() const;
    void begin();
    const TensorEntry& tensor(const std::string& name) const;
    /// Writes n bytes at byte `offset` inside tensor `name`.
    void write(const std::string& name, uint64_t offset, const void* data, uint64_t n);
    void commit();
    const std::string& tempPath() const;

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

/// A parsed, validated GGUF file (metadata and tensor infos; data read on demand).
struct File {
    std::string path;
    uint32_t version = 0;
    uint32_t alignment = kDefaultAlignment;
    std::vector<std::pair<std::string, Value>> kv; ///< in file order
    std::vector<TensorEntry> tensors;              ///< in file order
    uint64_t dataOffset = 0;
    uint64_t fileSize = 0;

    const Value* find(const std::string& key) const;
    const TensorEntry* findTensor(const std::string& name) const;
};

/// Reads and validates header, metadata and tensor infos. Any problem is an InputError
/// "<path>: <problem>" on one line: bad magic, unsupported version, truncated file, duplicate key
/// or tensor, unknown value or tensor type, bad dims, misaligned or out-of-range offsets (the
/// ggml rule: tensors contiguous in info order, each padded to the alignment).
File read(const std::string& path);

/// The raw bytes of one tensor.
std::vector<uint8_t> readTensorBytes(const File& f, const TensorEntry& t);
/// The tensor dequantized to float32 (numel values, ggml order = row-major of the reversed ne).
/// InputError naming the tensor and block when a quantized block's scale is NaN or infinite.
std::vector<float> readTensorF32(const File& f, const TensorEntry& t);
/// Rows [firstRow, firstRow + rows) of the tensor (a row = ne[0] values) dequantized into out
/// (rows · ne[0] floats), reading only their bytes: one expert of a stacked expert tensor without
/// the other experts. Errors as readTensorF32's.
void readRowsF32(const File& f, const TensorEntry& t, int64_t firstRow, int64_t rows, float* out);

} // namespace moewb::gguf
