// SPDX-License-Identifier: MIT
#include "moewb/core/text_file.h"

#include "moewb/core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <sys/stat.h>

namespace moewb {

std::string readFileBytes(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        throw InputError(path, "is a directory, not a file");
    errno = 0;
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f)
        throw IoError(path, std::string("cannot open: ") + std::strerror(errno));
    std::string out;
    char buf[1 << 16];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0)
        out.append(buf, n);
    if (std::ferror(f.get()))
        throw IoError(path, std::string("cannot read: ") + std::strerror(errno));
    return out;
}

void throwCannotAccess(const std::string& path, const std::string& missing)
{
    struct stat st {};
    errno = 0;
    const int rc = ::stat(path.c_str(), &st);
    const int err = rc == 0 ? 0 : errno;
    if (err == ENOENT || err == ENOTDIR || err == 0)
        throw InputError(path, missing);
    throw IoError(path, std::string("cannot access: ") + std::strerror(err));
}

} // namespace moewb
