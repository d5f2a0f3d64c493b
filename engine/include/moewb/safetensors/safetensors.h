// SPDX-License-Identifier: MIT
// safetensors: mmap reader with the reference implementation's validation, sharded checkpoints
// (model.safetensors.index.json), and an atomic streaming writer. No torch here: tensors are
// byte ranges; engine/model/weights.h turns them into at::Tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moewb {

/// safetensors dtypes that moewb reads and writes (the enum order is the reference's alignment order).
enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

const char* dtypeName(DType d);          ///< "BF16"
int dtypeBytes(DType d);                 ///< 2
DType dtypeFromName(const std::string&); ///< throws InputError on an unknown string

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    uint64_t begin = 0; ///< offset into the data buffer (after the header)
    uint64_t end = 0;
    int64_t numel() const;
    uint64_t nbytes() const { return end - begin; }
};

/// One .safetensors file, memory-mapped read-only and fully validated on open.
class SafetensorsFile {
public:
    /// Throws InputError("<path>: <problem>") on any violation of the format.
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return m_path; }
    const std::vector<TensorInfo>& tensors() const { return m_tensors; } ///< sorted by name
    const TensorInfo* find(const std::string& name) const;               ///< nullptr if absent
    const std::map<std::string, std::string>& metadata() const { return m_metadata; }
    /// Pointer to the tensor's bytes inside the mapping; may be unaligned.
    const uint8_t* data(const TensorInfo& t) const;
    uint64_t fileSize() const { return m_size; }
    /// Tells the kernel the tensor's pages are no longer needed (they leave the resident set).
    void release(const TensorInfo& t) const;

private:
    SafetensorsFile() = default;
    std::string m_path;
    std::vector<TensorInfo> m_tensors;
    std::map<std::string, size_t> m_index;
    std::map<std::string, std::string> m_metadata;
    const uint8_t* m_map = nullptr;
    uint64_t m_size = 0;
    uint64_t m_dataStart = 0;
};

/// A model directory's weights: model.safetensors, or shards listed by model.safetensors.index.json.
class Checkpoint {
public:
    /// Opens dir/model.safetensors.index.json if present, else dir/model.safetensors, else every
    /// *.safetensors in the directory. A tensor present in two shards, or an index entry whose shard
    /// lacks it, is an InputError.
    static Checkpoint open(const std::string& dir);

    bool has(const std::string& name) const;
    /// Throws InputError("<dir>: missing tensor '<name>'") if absent.
    const TensorInfo& info(const std::string& name) const;
    const uint8_t* data(const std::string& name) const;
    const SafetensorsFile& fileOf(const std::string& name) const;
    /// Drops the tensor's mapped pages from the resident set after it was copied out.
    void release(const std::string& name) const;
    std::vector<std::string> names() const; ///< sorted
    const std::string& dir() const { return m_dir; }

private:
    std::string m_dir;
    std::vector<std::shared_ptr<SafetensorsFile>> m_files;
    std::map<std::string, std::pair<size_t, const TensorInfo*>> m_where;
};

/// Streaming, atomic safetensors writer. All tensors are declared first (name, dtype, shape), which
/// fixes the header and the offsets in the reference writer's order (dtype alignment descending,
/// then name); then each tensor's bytes are written, in any order, straight to disk. commit()
/// checks that every tensor was written and renames the temp file over the target. Destroying an
/// uncommitted writer removes the temp file, so no partial output is ever left behind.
class SafetensorsWriter {
public:
    explicit SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata = {{"format", "pt"}});
    ~SafetensorsWriter();
    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

    void declare(const std::string& name, DType dtype, const std::vector<int64_t>& shape);
    /// Writes the header; called implicitly by the first write().
    void begin();
    /// nbytes must equal the declared size.
    void write(const std::string& name, const void* bytes, uint64_t nbytes);
    void commit();

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

} // namespace moewb
