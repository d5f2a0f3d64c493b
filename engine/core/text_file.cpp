// SPDX-License-Identifier: MIT
#include "moewb/core/text_file.h"

#include "moewb/core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace moewb {

std::string cannotOpenReason(int err)
{
    return std::string("cannot open (") + std::strerror(err) + ")";
}

std::string readFileBytes(const std::string& path)
{
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw IoError(path, "is a directory, not a file");
    errno = 0;
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f)
        throw IoError(path, cannotOpenReason(errno));
    std::string out;
    char buf[1 << 16];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0)
        out.append(buf, n);
    if (std::ferror(f.get()))
        throw IoError(path, std::string("cannot read (") + std::strerror(errno) + ")");
    return out;
}

} // namespace moewb
