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
