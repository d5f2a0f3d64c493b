// SPDX-License-Identifier: MIT
// Tokenizes strings with llama.cpp's own tokenizer from a vocabulary-only GGUF (docs/export-gguf.md, "Tokenizers in
// llama.cpp"). Not part of the build; compile against a llama.cpp build tree:
//   g++ -O2 -std=c++17 -I$LLAMA/include -I$LLAMA/ggml/include tests/reference/llama_tokenize_golden.cpp \
//       $LLAMA/build/src/libllama.a $LLAMA/build/ggml/src/libggml.a $LLAMA/build/ggml/src/libggml-cpu.a \
//       $LLAMA/build/ggml/src/libggml-base.a -fopenmp -lpthread -o llama_tokenize_golden
// Usage: llama_tokenize_golden VOCAB.gguf < hex-lines > id-lines. Each input line is the text's bytes in hex; each
// output line the ids (add_special and parse_special on, as moewb tokenize adds the tokenizer's specials).
#include "llama.h"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

static std::string unhex(const std::string& h)
{
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
        out += char(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

int main(int argc, char** argv)
{
    if (argc != 2)
        return 2;
    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model* model = llama_model_load_from_file(argv[1], mp);
    if (!model)
        return 1;
    const llama_vocab* vocab = llama_model_get_vocab(model);
    std::string line;
    std::vector<llama_token> ids;
    while (std::getline(std::cin, line)) {
        const std::string text = unhex(line);
        ids.resize(text.size() * 2 + 8);
        int n = llama_tokenize(vocab, text.data(), int(text.size()), ids.data(), int(ids.size()), true, true);
        if (n < 0) {
            ids.resize(size_t(-n));
            n = llama_tokenize(vocab, text.data(), int(text.size()), ids.data(), int(ids.size()), true, true);
        }
        for (int i = 0; i < n; ++i)
            std::printf(i ? " %d" : "%d", ids[size_t(i)]);
        std::printf("\n");
    }
    llama_model_free(model);
    return 0;
}
