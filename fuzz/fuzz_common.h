// SPDX-License-Identifier: MIT
// Shared by the fuzz targets: the contract under test is "any input either parses or throws a
// moewb::Error (one clear line naming the file)". Any other exception escaping a parser is a
// finding (an unmapped error path) and aborts, as do crashes, leaks and UB (the sanitizers).
#pragma once

#include "moewb/core/error.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <unistd.h>

namespace moewb::fuzz {

/// Parsers that take a path get the input through a file in /dev/shm (or /tmp).
inline std::string writeTemp(const uint8_t* data, size_t size, const char* suffix)
{
    static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    const std::string path = dir + "/moewb-fuzz-" + std::to_string(getpid()) + suffix;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
    return path;
}

template <typename F>
void expectCleanErrors(F&& body)
{
    try {
        body();
    } catch (const moewb::Error& e) {
        // The message must be one non-empty line.
        const std::string m = e.what();
        if (m.empty() || m.find('\n') != std::string::npos) {
            std::fprintf(stderr, "fuzz: error message is not one line: [%s]\n", m.c_str());
            std::abort();
        }
    } catch (const std::bad_alloc&) {
        // Allocation limits (-rss_limit_mb / -malloc_limit_mb) report real blow-ups themselves.
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz: non-moewb exception escaped: %s\n", e.what());
        std::abort();
    }
}

} // namespace moewb::fuzz
