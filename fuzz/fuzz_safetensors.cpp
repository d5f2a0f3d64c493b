// SPDX-License-Identifier: MIT
// safetensors: header length, JSON header, dtypes, shapes, offsets, alignment, UTF-8 names,
// duplicate keys; on success every tensor's bytes are read (ASan catches any range past the map).
#include "fuzz_common.h"

#include "moewb/safetensors/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string path = moewb::fuzz::writeTemp(data, size, ".safetensors");
    moewb::fuzz::expectCleanErrors([&] {
        const auto f = moewb::SafetensorsFile::open(path);
        volatile uint8_t sink = 0;
        for (const moewb::TensorInfo& info : f->tensors()) {
            const uint8_t* p = f->data(info);
            const uint64_t n = info.nbytes();
            if (n > 0)
                sink = sink ^ p[0] ^ p[n - 1];
        }
    });
    std::remove(path.c_str());
    return 0;
}
