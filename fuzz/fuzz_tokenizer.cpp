// SPDX-License-Identifier: MIT
// tokenizer.json: model, merges, normalizers, pre-tokenizers, added tokens, templates, decoders.
// The first line of the input (up to '\n') is text to encode and decode with the parsed tokenizer,
// the rest is the JSON, so the fuzzer explores both.
#include "fuzz_common.h"

#include "moewb/tokenizer/tokenizer.h"

#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const char* p = reinterpret_cast<const char*>(data);
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', size));
    const std::string text = nl ? std::string(p, nl) : std::string();
    const std::string json = nl ? std::string(nl + 1, p + size) : std::string(p, size);
    moewb::fuzz::expectCleanErrors([&] {
        const auto tok = moewb::Tokenizer::fromJson(json, "tokenizer.json");
        const std::vector<int32_t> ids = tok->encode(text, true);
        (void)tok->decode(ids, false);
        (void)tok->decode(ids, true);
    });
    return 0;
}
