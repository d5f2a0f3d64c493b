// SPDX-License-Identifier: MIT
// One evaluated run: which plan (its JSON, so selecting the run can load it again), how big the
// model is, and how good: perplexity, zero-shot task accuracies and — when the pipeline measured
// them (#23) — the KL divergence from the unquantized model, the share of positions with the same
// top token, and the paired 95 % interval of the KLD difference to the uniform plan of the same
// budget. The baseline (unquantized) run has no plan and 16 bits.
#pragma once

#include <QJsonObject>
#include <QMap>
#include <QMetaType>
#include <QString>

#include <cstdint>
#include <limits>

namespace moewb {

struct RunResult {
    QString label;        ///< e.g. "frequency@3", "baseline"
    QString planJson;     ///< the plan (moewb plan JSON); empty for the baseline
    QString planPath;     ///< where the plan was saved, if it was
    QString modelPath;    ///< the model that was evaluated
    double averageBits = 16.0;  ///< PlanSize::averageBits: sum(bits·numel)/sum(numel) over quantizable linears
    int64_t modelBytes = 0;     ///< whole model, GPTQ storage (bf16 for the baseline)
    double perplexity = std::numeric_limits<double>::quiet_NaN(); ///< NaN: not measured
    QString pplFile;            ///< the text it was measured on
    QMap<QString, double> taskAccuracy; ///< task name → acc (0..1)
    QString created;            ///< ISO 8601 UTC
    double kld = std::numeric_limits<double>::quiet_NaN();     ///< mean KL(P_ref ‖ P_run), nats; NaN: not measured
    double sameTop = std::numeric_limits<double>::quiet_NaN(); ///< share of positions with the same top token, 0..1
    /// KLD of this run minus KLD of the uniform run of the same budget, with its paired 95 %
    /// interval [lo, hi]; NaN when the pipeline did not compare it (uniform rows, the baseline).
    double kldDiff = std::numeric_limits<double>::quiet_NaN();
    double kldLo = std::numeric_limits<double>::quiet_NaN();
    double kldHi = std::numeric_limits<double>::quiet_NaN();

    bool hasPerplexity() const { return perplexity == perplexity; }
    bool hasKld() const { return kld == kld; }
    bool hasKldInterval() const { return kldLo == kldLo && kldHi == kldHi; }
    bool operator==(const RunResult& o) const;
};

QJsonObject runResultToJson(const RunResult& r);
/// Throws moewb::InputError("where: problem") when a field has the wrong type.
RunResult runResultFromJson(const QJsonObject& o, const QString& where);

} // namespace moewb

Q_DECLARE_METATYPE(moewb::RunResult)
