// SPDX-License-Identifier: MIT
// GGUF: header, typed metadata (nested arrays, strings), tensor infos, alignment, offsets; on
// success every tensor small enough is read and, where the type is supported, dequantized.
#include "fuzz_common.h"

#include "gguf/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string path = moewb::fuzz::writeTemp(data, size, ".gguf");
    moewb::fuzz::expectCleanErrors([&] {
        const moewb::gguf::File f = moewb::gguf::read(path);
        for (const moewb::gguf::TensorEntry& t : f.tensors) {
            if (t.nbytes > (uint64_t(1) << 24))
                continue;
            (void)moewb::gguf::readTensorBytes(f, t);
            if (moewb::gguf::ggmlCanDequantize(t.type))
                (void)moewb::gguf::readTensorF32(f, t);
        }
    });
    std::remove(path.c_str());
    return 0;
}
