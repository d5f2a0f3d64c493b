// SPDX-License-Identifier: MIT
// What quantization costs, measured against the unquantized model (docs/evaluation.md): for every
// position perplexity scores, the KL divergence KL(P_ref ‖ P_model) of the next-token
// distributions in nats, and whether both models put the same token first.
//
// Memory: the reference's log-probabilities of the scored positions are computed once, window by
// window, and kept in an unlinked temporary file (float32, scored tokens × vocabulary × 4 bytes of
// disk); the evaluated model then runs window by window and reads back one window's block at a
// time. Neither model ever holds more than one window's logits, and each run streams one decoder
// layer at a time as perplexity does.
#pragma once

#include "moewb/core/progress.h"
#include "moewb/eval/perplexity.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moewb {

/// The reference side of a comparison: one text (token ids) run through the reference model.
class KldReference {
public:
    /// Runs refModelDir over ids with the windows of opt (perplexityWindows) and stores the
    /// log-probabilities of every scored position. tmpDir: where the (unlinked) cache file lives;
    /// empty = the system's temporary directory.
    KldReference(const std::string& refModelDir, const std::vector<int32_t>& ids, const PerplexityOptions& opt,
                 const ProgressFn& progress = {}, const std::string& tmpDir = {});
    ~KldReference();
    KldReference(const KldReference&) = delete;
    KldReference& operator=(const KldReference&) = delete;

    const std::string& modelDir() const;
    const std::vector<int32_t>& ids() const;
    const PerplexityResult& perplexity() const; ///< the reference's own perplexity on the text
    int64_t vocab() const;                      ///< logits per position (the lm_head's rows)

    struct Impl;
    const Impl& impl() const { return *m; }

private:
    std::unique_ptr<Impl> m;
};

/// One model against a reference on the reference's text and windows.
struct KldResult {
    PerplexityResult perplexity;   ///< the evaluated model's perplexity, from the same pass
    int64_t tokens = 0;            ///< scored positions (= perplexity.scoredTokens)
    double meanKld = 0.0;          ///< nats
    double p99Kld = 0.0;           ///< 99th percentile of the per-position KLD (linear interpolation)
    double sameTop = 0.0;          ///< share of positions whose most likely next token is the same, in [0, 1]
    /// Per window (paired bootstrap over windows): KLD sum, scored positions, same-top count.
    std::vector<double> windowKld;
    std::vector<int64_t> windowTokens;
    std::vector<int64_t> windowSameTop;
};

/// Runs modelDir over the reference's text and windows and compares position by position. The
/// two models must produce the same number of logits per position (InputError otherwise).
KldResult evaluateKld(const std::string& modelDir, const KldReference& ref, const PerplexityOptions& opt,
                      const ProgressFn& progress = {});

/// A text file as the reference sees it: tokenized with refModelDir's tokenizer.json.
std::unique_ptr<KldReference> kldReferenceForFile(const std::string& refModelDir, const std::string& textFile,
                                                  const PerplexityOptions& opt, const ProgressFn& progress = {},
                                                  const std::string& tmpDir = {});

/// evaluateKld after checking that modelDir's tokenizer turns the text into the same ids as the
/// reference's did (InputError naming both models otherwise: the distributions would not be over
/// the same tokens). textFile: the file the reference was built from.
KldResult evaluateKldFile(const std::string& modelDir, const KldReference& ref, const std::string& textFile,
                          const PerplexityOptions& opt, const ProgressFn& progress = {});

/// The 99th-percentile rule used for p99: NumPy's default (linear interpolation between the
/// order statistics at rank q·(n − 1)). Exposed for tests.
double percentileLinear(std::vector<double> values, double q);

} // namespace moewb
