// SPDX-License-Identifier: MIT
#include "moewb/eval/perplexity.h"

#include "eval/scored_logits.h"
#include "model/streamer.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/tokenizer/tokenizer.h"
#include "moewb/model/model_source.h"
#include "moewb/model/runtime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

namespace moewb {

std::vector<PplWindow> perplexityWindows(int64_t n, int64_t ctx, int64_t stride)
{
    MOEWB_CHECK(ctx >= 2, "perplexity", "the context must be at least 2 tokens, got ", ctx);
    MOEWB_CHECK(stride >= 1, "perplexity", "the stride must be at least 1 token, got ", stride);
    std::vector<PplWindow> out;
    if (n < 2)
        return out;
    const int64_t step = std::min(stride, ctx - 1);
    int64_t prevEnd = 0;
    for (int64_t b = 0;; b += step) {
        const int64_t e = std::min(b + ctx, n);
        out.push_back(PplWindow{b, e, std::max(b + 1, prevEnd)});
        prevEnd = e;
        if (e == n)
            break;
    }
    return out;
}

std::vector<PplWindow> llamaChunkWindows(int64_t n, int64_t ctx, int64_t maxChunks)
{
    MOEWB_CHECK(ctx >= 4, "perplexity", "llama chunks need a context of at least 4 tokens, got ", ctx);
    std::vector<PplWindow> out;
    for (int64_t c = 0; c < std::min(n / ctx, maxChunks); ++c)
        out.push_back(PplWindow{c * ctx, (c + 1) * ctx, c * ctx + ctx / 2 + 1});
    return out;
}

std::vector<PplWindow> windowsFor(int64_t n, const PerplexityOptions& opt)
{
    return opt.llamaChunks > 0 ? llamaChunkWindows(n, opt.ctx, opt.llamaChunks) : perplexityWindows(n, opt.ctx, opt.stride);
}

int64_t contextLength(const ModelConfig& cfg, int64_t requested)
{
    return requested > 0 ? requested
                         : std::min<int64_t>(cfg.maxPositionEmbeddings > 0 ? cfg.maxPositionEmbeddings : 2048, 2048);
}

PerplexityResult runScored(const std::string& modelDir, const std::vector<int32_t>& ids, const PerplexityOptions& opt,
                           const ScoredSink& sink, const ProgressFn& progress)
{
    const auto t0 = std::chrono::steady_clock::now();
    initRuntime(false);
    const Model model(modelDir);
    const ModelConfig& cfg = model.config();
    PerplexityResult r;
    r.ctx = contextLength(cfg, opt.ctx);
    r.stride = opt.stride > 0 ? opt.stride : r.ctx;
    r.totalTokens = int64_t(ids.size());
    MOEWB_CHECK(r.totalTokens >= 2, modelDir, "perplexity needs at least 2 tokens, the text has ", r.totalTokens);

    PerplexityOptions resolved = opt;
    resolved.ctx = r.ctx;
    resolved.stride = r.stride;
    const std::vector<PplWindow> windows = windowsFor(r.totalTokens, resolved);
    MOEWB_CHECK(!windows.empty(), modelDir, "the text has ", r.totalTokens, " tokens, less than one chunk of ", r.ctx);
    r.windows = int64_t(windows.size());
    const at::Tensor all = at::tensor(at::ArrayRef<int32_t>(ids)).to(at::kLong);
    std::vector<at::Tensor> seqs;
    for (const auto& w : windows)
        seqs.push_back(all.slice(0, w.begin, w.end));

    StreamOptions so;
    so.dtype = computeDtype(cfg, opt.dtype);
    so.maxBatchTokens = opt.maxBatchTokens;
    so.streaming = opt.streaming;
    so.activationBits = opt.activationBits;
    std::vector<double> nll(windows.size(), 0.0);
    model.run(seqs, so,
              [&](size_t i, const at::Tensor& logits) {
                  const PplWindow& w = windows[i];
                  // logits[t] predicts token begin+t+1; score targets p in [firstScored, end).
                  const int64_t from = w.firstScored - w.begin - 1, count = w.end - w.firstScored;
                  if (count <= 0)
                      return;
                  const at::Tensor targets = all.slice(0, w.firstScored, w.end);
                  // float64 log-softmax a block of rows at a time: with a 150k vocabulary a whole
                  // window in float64 would be twice its logits again (bench/bench_kld_rss.cpp).
                  at::Tensor lp = sink ? at::empty({count, logits.size(1)}, at::kFloat) : at::Tensor();
                  double sum = 0.0;
                  for (int64_t r = 0; r < count; r += kScoredRowBlock) {
                      const int64_t n = std::min(kScoredRowBlock, count - r);
                      const at::Tensor block = at::log_softmax(logits.slice(0, from + r, from + r + n).to(at::kDouble), -1);
                      sum += block.gather(1, targets.slice(0, r, r + n).unsqueeze(1)).sum().item<double>();
                      if (sink)
                          lp.slice(0, r, r + n).copy_(block);
                  }
                  nll[i] = -sum;
                  if (sink)
                      sink(i, w, lp, targets);
              },
              nullptr, progress);
    for (size_t i = 0; i < windows.size(); ++i) {
        r.nllSum += nll[i];
        r.scoredTokens += windows[i].end - windows[i].firstScored;
        r.forwardTokens += windows[i].end - windows[i].begin;
    }
    r.perplexity = std::exp(r.nllSum / double(r.scoredTokens));
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

PerplexityResult evaluatePerplexity(const std::string& modelDir, const std::vector<int32_t>& ids,
                                    const PerplexityOptions& opt, const ProgressFn& progress)
{
    return runScored(modelDir, ids, opt, {}, progress);
}

PerplexityResult evaluatePerplexityFile(const std::string& modelDir, const std::string& textFile,
                                        const PerplexityOptions& opt, const ProgressFn& progress)
{
    // Validate the model (config.json, safetensors headers) before spending time on tokenization.
    loadModelConfig(modelDir);
    checkModelWeights(modelDir);
    const std::string text = readFileBytes(textFile);
    report(progress, "tokenize", 0, 1);
    const auto tok = loadModelTokenizer(modelDir, opt.tokenizer);
    const std::vector<int32_t> ids = tok->encode(text, /*addSpecialTokens=*/true);
    report(progress, "tokenize", 1, 1);
    return evaluatePerplexity(modelDir, ids, opt, progress);
}

} // namespace moewb
