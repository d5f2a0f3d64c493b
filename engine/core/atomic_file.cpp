// SPDX-License-Identifier: MIT
#include "moewb/core/atomic_file.h"

#include "moewb/core/error.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <unistd.h>

namespace moewb {

long pidSuffix(const std::string& name, const std::string& prefix)
{
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0)
        return -1;
    long pid = 0;
    for (size_t i = prefix.size(); i < name.size(); ++i) {
        if (name[i] < '0' || name[i] > '9' || pid > 1000000000L)
            return -1;
        pid = pid * 10 + (name[i] - '0');
    }
    return pid;
}

bool processAlive(long pid)
{
    return pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno != ESRCH);
}

void removeStaleTemporaries(const std::string& path)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p = fs::path(path).lexically_normal();
    const fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
    const std::string prefix = p.filename().string() + ".tmp.";
    for (const auto& e : fs::directory_iterator(parent, ec)) {
        const long pid = pidSuffix(e.path().filename().string(), prefix);
        if (pid > 0 && pid != long(::getpid()) && !processAlive(pid))
            fs::remove_all(e.path(), ec);
    }
}

void writeFileAtomically(const std::string& path, const std::string& text)
{
    removeStaleTemporaries(path);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
        throw IoError(tmp, std::string("cannot create (") + std::strerror(errno) + ")");
    // fsync before the rename, so a crash leaves either the old file or the complete new one.
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0
        && ::fsync(::fileno(f)) == 0;
    int err = ok ? 0 : errno;
    if (std::fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        std::remove(tmp.c_str());
        throw IoError(tmp, std::string("write failed (") + std::strerror(err) + ")");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        err = errno;
        std::remove(tmp.c_str());
        throw IoError(path, std::string("cannot rename the temporary file over it (") + std::strerror(err) + ")");
    }
}

} // namespace moewb
