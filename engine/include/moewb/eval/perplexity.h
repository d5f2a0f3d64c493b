// SPDX-License-Identifier: MIT
// Perplexity over raw text with strided windows.
//
// Windowing (every token after the first is scored exactly once):
//   N tokens, context C (window length), stride S (1 <= S; effective stride s = min(S, C - 1) so
//   consecutive windows share at least one token). Window k covers [b_k, min(b_k + C, N)) with
//   b_0 = 0, b_{k+1} = b_k + s; windows stop after the one that reaches N. Window k scores the
//   predictions of tokens p in [max(b_k + 1, e_{k-1}), e_k), where e_{k-1} is the previous
//   window's end (0 for the first), each predicted from the tokens b_k..p-1 of its window.
//   A text shorter than C is one window over all its tokens. No BOS is added unless the
//   tokenizer's post-processor adds one. perplexity = exp(sum of NLL / scored tokens).
#pragma once

#include "moewb/core/progress.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

struct PerplexityOptions {
    int64_t ctx = 0;              ///< window length; 0 = min(max_position_embeddings, 2048)
    int64_t stride = 0;           ///< 0 = ctx
    std::string dtype = "auto";   ///< auto | bf16 | f32
    int64_t maxBatchTokens = 8192;
    bool streaming = true;
    int64_t activationBits = 16;  ///< < 16: per-token activation fake-quantization (StreamOptions)
    /// > 0: llama-perplexity's windows instead (llamaChunkWindows), at most this many chunks.
    int64_t llamaChunks = 0;
    /// tokenizer.json (or its directory) for the *File functions; empty = the model directory's.
    /// Required for a GGUF model (moewb/model/model_source.h).
    std::string tokenizer;
};

struct PerplexityResult {
    double nllSum = 0.0;
    int64_t scoredTokens = 0;
    int64_t totalTokens = 0;
    int64_t forwardTokens = 0; ///< tokens pushed through the model: Σ window lengths (the speed's unit)
    int64_t windows = 0;
    int64_t ctx = 0;
    int64_t stride = 0;
    double perplexity = 0.0;
    double seconds = 0.0;
};

/// [begin, end) of each window and the first scored position, per the rule above.
struct PplWindow {
    int64_t begin, end, firstScored;
};
std::vector<PplWindow> perplexityWindows(int64_t numTokens, int64_t ctx, int64_t stride);
/// llama-perplexity's windows (#26, docs/export-gguf.md): the first min(numTokens / ctx, maxChunks)
/// non-overlapping chunks of ctx tokens, each scoring only the tokens at chunk positions
/// ctx/2 + 1 … ctx − 1 (the second half's predictions), so moewb and llama.cpp score the same tokens.
std::vector<PplWindow> llamaChunkWindows(int64_t numTokens, int64_t ctx, int64_t maxChunks);
/// The windows opt asks for: llamaChunkWindows when opt.llamaChunks > 0, else perplexityWindows
/// (opt.ctx and opt.stride already resolved).
std::vector<PplWindow> windowsFor(int64_t numTokens, const PerplexityOptions& opt);

PerplexityResult evaluatePerplexity(const std::string& modelDir, const std::vector<int32_t>& ids,
                                    const PerplexityOptions& opt, const ProgressFn& progress = {});

/// Tokenizes a UTF-8 text file with MODEL_DIR/tokenizer.json (opt.tokenizer when set), then
/// evaluatePerplexity. MODEL_DIR may be a GGUF file (moewb/model/model_source.h).
PerplexityResult evaluatePerplexityFile(const std::string& modelDir, const std::string& textFile,
                                        const PerplexityOptions& opt, const ProgressFn& progress = {});

} // namespace moewb
