// SPDX-License-Identifier: MIT
// The per-expert calibration coverage of one quantize run (#25), as its report JSON states it:
// moewb_quant_report.json (fake and GPTQ outputs), or the "quantize" object of a GGUF export's
// FILE.gguf.moewb_report.json. Keys: docs/cli.md (Report) and docs/calibration-coverage.md.
#pragma once

#include <QByteArray>
#include <QString>

#include <cstdint>
#include <vector>

namespace moewb {

/// One entry of the report's experts[]: a routed expert whose inputs were collected.
struct QuantCoverageExpert {
    int layer = 0;
    int expert = 0;
    int64_t routedTokens = 0;  ///< calibration tokens the router sent it (top-k)
    int64_t hessianTokens = 0; ///< rows of its Hessians after balancing
    double hessianWeight = 0;  ///< Σ of their weights (= hessianTokens unless all-tokens)
};

/// One entry of totals.fallback_experts: an expert quantized with RTN instead of GPTQ.
struct QuantCoverageFallback {
    int layer = 0;
    int expert = 0;
    int64_t tokens = 0;
    QString reason;
};

struct QuantCoverage {
    QString path;                  ///< the file it was read from ("" when parsed from text)
    QString balance;               ///< options.balance_experts: "off" | "next-choices" | "all-tokens"
    int64_t minExpertTokens = 32;  ///< options.min_expert_tokens
    int64_t calibTokens = 0;       ///< calibration.tokens
    int64_t belowMinRouted = -1;   ///< totals.experts_below_min.routed (-1: not in the report)
    int64_t belowMinAfter = -1;    ///< totals.experts_below_min.after_balancing
    std::vector<QuantCoverageExpert> experts;
    std::vector<QuantCoverageFallback> fallbacks;

    const QuantCoverageExpert* find(int layer, int expert) const; ///< nullptr when not listed
    const QuantCoverageFallback* fallback(int layer, int expert) const;
};

/// Reads a quantize report's JSON text; false with a one-line error naming `where` when it is not
/// one or has no per-expert coverage (a report from before #25).
bool parseQuantCoverage(const QByteArray& json, const QString& where, QuantCoverage* out, QString* error);
/// parseQuantCoverage of a file; out->path is set.
bool readQuantCoverage(const QString& path, QuantCoverage* out, QString* error);

} // namespace moewb
