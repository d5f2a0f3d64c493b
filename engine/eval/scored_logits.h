// SPDX-License-Identifier: MIT
// One pass of a model over a text in perplexity windows (moewb/eval/perplexity.h), handing the
// log-probabilities of each window's scored positions to a sink: the common core of perplexity and
// KL divergence.
#pragma once

#include "moewb/eval/perplexity.h"
#include "moewb/hfconfig/hf_config.h"

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

namespace moewb {

/// The window length perplexity uses: `requested`, or 0 = min(max_position_embeddings, 2048).
int64_t contextLength(const ModelConfig& cfg, int64_t requested);

/// Rows of a window that are turned into float64 log-probabilities at once (bounds the temporaries).
constexpr int64_t kScoredRowBlock = 32;

/// window index, the window, log-softmax of its scored positions [count, V] (computed in float64,
/// handed over rounded to float32), and the targets [count] int64 (the tokens those positions predict).
using ScoredSink = std::function<void(size_t, const PplWindow&, const at::Tensor& logp, const at::Tensor& targets)>;

/// Perplexity of modelDir on ids (the rules of perplexity.h); `sink` (may be empty) sees every
/// window with scored positions, possibly out of window order.
PerplexityResult runScored(const std::string& modelDir, const std::vector<int32_t>& ids, const PerplexityOptions& opt,
                           const ScoredSink& sink, const ProgressFn& progress);

} // namespace moewb
