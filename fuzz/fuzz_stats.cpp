// SPDX-License-Identifier: MIT
// stats.h5 through moewb's reader: HDF5 structure, attributes, dataset shapes and types, sizes
// that must agree. Note: the HDF5 library itself parses the container; a crash inside libhdf5
// (not in moewb) is reported as such in docs/robustness.md.
#include "fuzz_common.h"

#include "moewb/stats/stats_h5.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string path = moewb::fuzz::writeTemp(data, size, ".h5");
    moewb::fuzz::expectCleanErrors([&] {
        const moewb::CalibStats s = moewb::readStats(path);
        moewb::validateStats(s);
    });
    std::remove(path.c_str());
    return 0;
}
