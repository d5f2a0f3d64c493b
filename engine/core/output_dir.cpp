// SPDX-License-Identifier: MIT
#include "core/output_dir.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"

#include <fstream>
#include <set>
#include <system_error>
#include <vector>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb {

TempDir::TempDir(fs::path p)
    : m_path(std::move(p))
{
}

TempDir::~TempDir()
{
    if (!m_path.empty()) {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
}

bool isCompanionFile(const fs::path& p)
{
    static const std::set<std::string> names = {
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
        "chat_template.json", "chat_template.jinja"};
    const std::string n = p.filename().string();
    return names.count(n) > 0 || p.extension() == ".py";
}


void removeStaleOutputs(const fs::path& out)
{
    removeStaleTemporaries(out.string()); // half-written outputs of killed runs
    std::error_code ec;
    const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
    const std::string base = out.filename().string();
    std::vector<fs::path> oldDirs;
    for (const auto& e : fs::directory_iterator(parent, ec)) {
        const long oldPid = pidSuffix(e.path().filename().string(), base + ".old.");
        if (oldPid > 0 && !processAlive(oldPid))
            oldDirs.push_back(e.path());
    }
    // A run killed between moving the previous output aside and renaming the new one in (only
    // possible where the file system cannot exchange two names atomically): put it back.
    for (const auto& d : oldDirs) {
        if (!fs::exists(out, ec))
            fs::rename(d, out, ec);
        else
            fs::remove_all(d, ec);
    }
}

fs::path prepareOutputDir(const std::string& modelDir, const std::string& outDir, bool force)
{
    MOEWB_CHECK(!outDir.empty(), "output", "no output directory given");
    const fs::path out = fs::path(outDir).lexically_normal();
    std::error_code ec;
    removeStaleOutputs(out);
    if (fs::exists(out, ec)) {
        if (!force)
            throw OutputExistsError(outDir);
        MOEWB_CHECK(!fs::equivalent(out, modelDir, ec), outDir, "is the input model directory");
        MOEWB_CHECK(fs::is_directory(out), outDir, "exists and is not a directory");
    }
    MOEWB_CHECK(fs::is_directory(modelDir), modelDir, "not a directory");
    const fs::path tmpPath = out.string() + ".tmp." + std::to_string(::getpid());
    fs::remove_all(tmpPath, ec);
    if (!fs::create_directories(tmpPath, ec) || ec)
        throw IoError(tmpPath.string(), "cannot create directory (" + ec.message() + ")");
    return tmpPath;
}

void copyCompanionFiles(const std::string& modelDir, const fs::path& dir)
{
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(modelDir)) {
        if (!entry.is_regular_file() || !isCompanionFile(entry.path()))
            continue;
        fs::copy_file(entry.path(), dir / entry.path().filename(), fs::copy_options::overwrite_existing, ec);
        if (ec)
            throw IoError(entry.path().string(), "cannot copy (" + ec.message() + ")");
    }
}

void writeTextFile(const fs::path& p, const std::string& text)
{
    std::FILE* f = std::fopen(p.c_str(), "wb");
    if (!f)
        throw IoError(p.string(), std::string("cannot create file (") + std::strerror(errno) + ")");
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0;
    int err = ok ? 0 : errno;
    if (std::fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok)
        throw IoError(p.string(), std::string("write failed (") + std::strerror(err) + ")");
}

void publishOutputDir(const fs::path& tmpPath, const std::string& outDir)
{
    const fs::path out = fs::path(outDir).lexically_normal();
    std::error_code ec;
    if (fs::exists(out, ec)) {
        // Swap the complete new directory and the previous output in one step: at every instant
        // <out> is one of the two, whole (a kill -9 here cannot leave it missing or half-written).
        if (::renameat2(AT_FDCWD, tmpPath.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) == 0) {
            fs::remove_all(tmpPath, ec); // now the previous output
            return;
        }
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
            throw IoError(outDir, std::string("cannot replace it with ") + tmpPath.string() + " ("
                                      + std::strerror(errno) + ")");
        const fs::path old = out.string() + ".old." + std::to_string(::getpid());
        fs::rename(out, old, ec);
        if (ec)
            throw IoError(outDir, "cannot move the existing directory aside (" + ec.message() + ")");
        fs::rename(tmpPath, out, ec);
        if (ec) {
            std::error_code ec2;
            fs::rename(old, out, ec2);
            throw IoError(outDir, "cannot rename " + tmpPath.string() + " (" + ec.message() + ")");
        }
        fs::remove_all(old, ec);
    } else {
        if (out.has_parent_path())
            fs::create_directories(out.parent_path(), ec);
        fs::rename(tmpPath, out, ec);
        if (ec)
            throw IoError(outDir, "cannot rename " + tmpPath.string() + " (" + ec.message() + ")");
    }
}

int64_t freeDiskBytes(const fs::path& path)
{
    struct statvfs s {};
    if (::statvfs(path.c_str(), &s) != 0)
        return -1;
    return int64_t(s.f_bavail) * int64_t(s.f_frsize);
}

uint64_t directoryBytes(const fs::path& dir)
{
    uint64_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
        if (e.is_regular_file(ec))
            n += e.file_size(ec);
    return n;
}

} // namespace moewb
