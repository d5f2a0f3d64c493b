// SPDX-License-Identifier: MIT
// config.json: every architecture's fields, types and ranges; on success the derived views
// (linear list, expected tensors, parameter count) must be computable without UB.
#include "fuzz_common.h"

#include "moewb/hfconfig/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    moewb::fuzz::expectCleanErrors([&] {
        const moewb::ModelConfig cfg = moewb::parseConfigJson(text, "config.json");
        // Keep the derived views bounded: a fuzzed config may claim billions of layers.
        if (cfg.numLayers > 256 || cfg.numExperts > 512)
            return;
        (void)moewb::listLinears(cfg).size();
        (void)moewb::expectedTensors(cfg).size();
        (void)moewb::parameterCount(cfg);
    });
    return 0;
}
