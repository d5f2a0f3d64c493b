// SPDX-License-Identifier: MIT
// Linked into every test that runs the engine in-process: before main, the test restarts with the
// OpenBLAS kernels the moewb programs choose at start (restartWithFastBlas, moewb/model/runtime.h),
// so that its in-process results equal those of the moewb CLI it runs (on CPUs OpenBLAS does not
// recognise, the generic and the AVX-512 kernels round fp32 products differently).
#include "moewb/model/runtime.h"

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

[[gnu::constructor]] void restartWithTheProgramsBlas()
{
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    for (size_t start = 0; start < all.size();) {
        const size_t end = all.find('\0', start);
        args.push_back(all.substr(start, end == std::string::npos ? std::string::npos : end - start));
        start = end == std::string::npos ? all.size() : end + 1;
    }
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    moewb::restartWithFastBlas(argv.data());
}

} // namespace
