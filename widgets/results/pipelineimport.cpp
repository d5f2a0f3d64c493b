// SPDX-License-Identifier: MIT
#include "results/pipelineimport.h"

#include "moewb/plan/plan.h"
#include "moewb/core/error.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <limits>

namespace moewb {

std::vector<RunResult> importPipelineResults(const QString& path)
{
    const std::string where = path.toStdString();
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        throw IoError(where, "cannot open: " + file.errorString().toStdString());
    QJsonParseError err;
    const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &err);
    MOEWB_CHECK(err.error == QJsonParseError::NoError, where, "invalid JSON at byte ", err.offset);
    const QJsonObject root = doc.object();
    MOEWB_CHECK(doc.isObject() && root.value(QStringLiteral("rows")).isArray(), where,
                "not a moewb pipeline results file: no $.rows array");
    const QString model = root.value(QStringLiteral("model")).toString();
    const QDir base = QFileInfo(path).absoluteDir();
    std::vector<RunResult> runs;
    const QJsonArray rows = root.value(QStringLiteral("rows")).toArray();
    for (int i = 0; i < rows.size(); ++i) {
        const std::string at = where + ": $.rows[" + std::to_string(i) + "]";
        MOEWB_CHECK(rows[i].isObject(), at, "must be an object");
        const QJsonObject o = rows[i].toObject();
        RunResult r;
        r.label = o.value(QStringLiteral("label")).toString();
        MOEWB_CHECK(!r.label.isEmpty(), at, "label must be a non-empty string");
        MOEWB_CHECK(o.value(QStringLiteral("average_bits")).isDouble() && o.value(QStringLiteral("model_bytes")).isDouble(),
                    at, "average_bits and model_bytes must be numbers");
        r.averageBits = o.value(QStringLiteral("average_bits")).toDouble();
        r.modelBytes = int64_t(o.value(QStringLiteral("model_bytes")).toDouble());
        const QJsonObject ppl = o.value(QStringLiteral("perplexity")).toObject();
        if (!ppl.isEmpty()) {
            r.pplFile = ppl.begin().key();
            r.perplexity = ppl.begin().value().toDouble(r.perplexity);
        }
        // KLD and same-top share of the text the perplexity is shown for (else the first text)
        const auto ofText = [&](const char* key) {
            const QJsonValue v = o.value(QLatin1String(key));
            if (v.isUndefined() || v.isNull())
                return std::numeric_limits<double>::quiet_NaN();
            MOEWB_CHECK(v.isObject(), at, key, " must be an object {text: number}");
            const QJsonObject byText = v.toObject();
            const QJsonValue x = byText.contains(r.pplFile) ? byText.value(r.pplFile)
                : byText.isEmpty()                          ? QJsonValue()
                                                            : byText.begin().value();
            MOEWB_CHECK(x.isUndefined() || x.isNull() || x.isDouble(), at, key, " values must be numbers");
            return x.toDouble(std::numeric_limits<double>::quiet_NaN());
        };
        r.kld = ofText("kld");
        r.sameTop = ofText("same_top");
        const QJsonValue vs = o.value(QStringLiteral("kld_vs_uniform"));
        if (vs.isObject()) {
            const QJsonObject i = vs.toObject();
            const double nan = std::numeric_limits<double>::quiet_NaN();
            r.kldDiff = i.value(QStringLiteral("diff")).toDouble(nan);
            r.kldLo = i.value(QStringLiteral("lo")).toDouble(nan);
            r.kldHi = i.value(QStringLiteral("hi")).toDouble(nan);
        } else {
            MOEWB_CHECK(vs.isUndefined() || vs.isNull(), at, "kld_vs_uniform must be an object {diff, lo, hi}");
        }
        const QJsonObject tasks = o.value(QStringLiteral("tasks")).toObject();
        for (auto it = tasks.begin(); it != tasks.end(); ++it)
            if (it.value().toObject().value(QStringLiteral("acc")).isDouble())
                r.taskAccuracy.insert(it.key(), it.value().toObject().value(QStringLiteral("acc")).toDouble());
        const QString plan = o.value(QStringLiteral("plan")).toString();
        if (!plan.isEmpty()) {
            r.planPath = QDir::isAbsolutePath(plan) ? plan : base.filePath(plan);
            if (QFileInfo::exists(r.planPath))
                r.planJson = QString::fromStdString(planToJson(loadPlan(r.planPath.toStdString())));
        }
        r.modelPath = r.label == QLatin1String("baseline") ? model : QString();
        runs.push_back(std::move(r));
    }
    return runs;
}

} // namespace moewb
