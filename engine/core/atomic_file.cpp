// SPDX-License-Identifier: MIT
#include "moewb/core/atomic_file.h"

#include "moewb/core/error.h"

#include <cstdio>
#include <unistd.h>

namespace moewb {

void writeFileAtomically(const std::string& path, const std::string& text)
{
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
        throw IoError(tmp, "cannot create");
    // fsync before the rename, so a crash leaves either the old file or the complete new one.
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0
        && ::fsync(::fileno(f)) == 0;
    if (std::fclose(f) != 0 || !ok) {
        std::remove(tmp.c_str());
        throw IoError(tmp, "write failed");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw IoError(path, "cannot rename the temporary file over it");
    }
}

} // namespace moewb
