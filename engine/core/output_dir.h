// SPDX-License-Identifier: MIT
// A model output directory that appears complete or not at all (quantize --format fake / gptq):
// built in <out>.tmp.<pid>, companion files copied from the input model, renamed over <out> at the end.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace moewb {

/// Removes a directory tree on destruction unless released: errors and cancels leave nothing.
class TempDir {
public:
    explicit TempDir(std::filesystem::path p);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return m_path; }
    void release() { m_path.clear(); }

private:
    std::filesystem::path m_path;
};

/// Files of a HF model directory besides the weights that a loader needs: config, generation
/// config, tokenizer files, and remote-code modules (*.py, e.g. DeepSeek's modeling_deepseek.py).
bool isCompanionFile(const std::filesystem::path& p);

/// Removes what killed runs left next to outDir: <out>.tmp.<pid> directories of processes that no
/// longer exist, and puts back an <out>.old.<pid> when <out> itself is missing.
void removeStaleOutputs(const std::filesystem::path& outDir);

/// Checks outDir against force and modelDir (InputError: exists without force, is the input model,
/// is not a directory) and creates the empty temporary directory <outDir>.tmp.<pid>.
std::filesystem::path prepareOutputDir(const std::string& modelDir, const std::string& outDir, bool force);

/// Copies every companion file of modelDir into dir.
void copyCompanionFiles(const std::string& modelDir, const std::filesystem::path& dir);

/// Writes text to p (IoError naming p).
void writeTextFile(const std::filesystem::path& p, const std::string& text);

/// Renames tmp over outDir. An existing outDir is exchanged with tmp atomically (renameat2
/// RENAME_EXCHANGE) and then removed; where the file system cannot exchange names it is moved
/// aside first (removeStaleOutputs restores it if the process dies in between).
void publishOutputDir(const std::filesystem::path& tmp, const std::string& outDir);

/// Bytes available to an unprivileged user on the file system holding `path`; -1 if unknown.
int64_t freeDiskBytes(const std::filesystem::path& path);

/// Sum of the sizes of the regular files under dir.
uint64_t directoryBytes(const std::filesystem::path& dir);

} // namespace moewb
