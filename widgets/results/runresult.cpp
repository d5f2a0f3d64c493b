// SPDX-License-Identifier: MIT
#include "results/runresult.h"

#include "moewb/core/error.h"

#include <QJsonArray>
#include <QJsonValue>

namespace moewb {

namespace {
bool sameNumber(double a, double b)
{
    return a == b || (a != a && b != b); // NaN equals NaN here: "not measured" in both
}
} // namespace

bool RunResult::operator==(const RunResult& o) const
{
    return label == o.label && planJson == o.planJson && planPath == o.planPath && modelPath == o.modelPath
        && averageBits == o.averageBits && modelBytes == o.modelBytes && sameNumber(perplexity, o.perplexity)
        && pplFile == o.pplFile && taskAccuracy == o.taskAccuracy && created == o.created && sameNumber(kld, o.kld)
        && sameNumber(sameTop, o.sameTop) && sameNumber(kldDiff, o.kldDiff) && sameNumber(kldLo, o.kldLo)
        && sameNumber(kldHi, o.kldHi);
}

QJsonObject runResultToJson(const RunResult& r)
{
    QJsonObject tasks;
    for (auto it = r.taskAccuracy.cbegin(); it != r.taskAccuracy.cend(); ++it)
        tasks.insert(it.key(), it.value());
    QJsonObject o;
    o.insert(QStringLiteral("label"), r.label);
    o.insert(QStringLiteral("plan"), r.planJson);
    o.insert(QStringLiteral("plan_path"), r.planPath);
    o.insert(QStringLiteral("model_path"), r.modelPath);
    o.insert(QStringLiteral("average_bits"), r.averageBits);
    // int64 through a double: exact up to 2^53 bytes (9 PB)
    o.insert(QStringLiteral("model_bytes"), double(r.modelBytes));
    o.insert(QStringLiteral("perplexity"), r.hasPerplexity() ? QJsonValue(r.perplexity) : QJsonValue());
    o.insert(QStringLiteral("ppl_file"), r.pplFile);
    o.insert(QStringLiteral("task_accuracy"), tasks);
    o.insert(QStringLiteral("created"), r.created);
    // written only when measured: sessions without them stay as before
    if (r.hasKld())
        o.insert(QStringLiteral("kld"), r.kld);
    if (r.sameTop == r.sameTop)
        o.insert(QStringLiteral("same_top"), r.sameTop);
    if (r.kldDiff == r.kldDiff || r.hasKldInterval())
        o.insert(QStringLiteral("kld_vs_uniform"),
                 QJsonObject{{QStringLiteral("diff"), r.kldDiff == r.kldDiff ? QJsonValue(r.kldDiff) : QJsonValue()},
                             {QStringLiteral("lo"), r.kldLo == r.kldLo ? QJsonValue(r.kldLo) : QJsonValue()},
                             {QStringLiteral("hi"), r.kldHi == r.kldHi ? QJsonValue(r.kldHi) : QJsonValue()}});
    return o;
}

RunResult runResultFromJson(const QJsonObject& o, const QString& where)
{
    const std::string w = where.toStdString();
    auto str = [&](const char* key) {
        const QJsonValue v = o.value(QLatin1String(key));
        if (v.isUndefined())
            return QString();
        MOEWB_CHECK(v.isString(), w, key, " must be a string");
        return v.toString();
    };
    auto num = [&](const char* key, double fallback) {
        const QJsonValue v = o.value(QLatin1String(key));
        if (v.isUndefined() || v.isNull())
            return fallback;
        MOEWB_CHECK(v.isDouble(), w, key, " must be a number");
        return v.toDouble();
    };
    RunResult r;
    r.label = str("label");
    MOEWB_CHECK(!r.label.isEmpty(), w, "label must be a non-empty string");
    r.planJson = str("plan");
    r.planPath = str("plan_path");
    r.modelPath = str("model_path");
    r.averageBits = num("average_bits", 16.0);
    MOEWB_CHECK(r.averageBits > 0 && r.averageBits <= 16, w, "average_bits ", r.averageBits, " is not in (0, 16]");
    const double bytes = num("model_bytes", 0.0);
    MOEWB_CHECK(bytes >= 0 && bytes < 9.0e15 && bytes == double(int64_t(bytes)), w,
                "model_bytes must be a non-negative integer");
    r.modelBytes = int64_t(bytes);
    r.perplexity = num("perplexity", std::numeric_limits<double>::quiet_NaN());
    r.pplFile = str("ppl_file");
    const QJsonValue tasks = o.value(QStringLiteral("task_accuracy"));
    if (!tasks.isUndefined()) {
        MOEWB_CHECK(tasks.isObject(), w, "task_accuracy must be an object");
        const QJsonObject t = tasks.toObject();
        for (auto it = t.begin(); it != t.end(); ++it) {
            MOEWB_CHECK(it.value().isDouble(), w, "task_accuracy.", it.key().toStdString(), " must be a number");
            r.taskAccuracy.insert(it.key(), it.value().toDouble());
        }
    }
    r.created = str("created");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.kld = num("kld", nan);
    r.sameTop = num("same_top", nan);
    const QJsonValue vs = o.value(QStringLiteral("kld_vs_uniform"));
    if (!vs.isUndefined() && !vs.isNull()) {
        MOEWB_CHECK(vs.isObject(), w, "kld_vs_uniform must be an object");
        const QJsonObject i = vs.toObject();
        const auto field = [&](const char* key) {
            const QJsonValue v = i.value(QLatin1String(key));
            if (v.isUndefined() || v.isNull())
                return nan;
            MOEWB_CHECK(v.isDouble(), w, "kld_vs_uniform.", key, " must be a number");
            return v.toDouble();
        };
        r.kldDiff = field("diff");
        r.kldLo = field("lo");
        r.kldHi = field("hi");
    }
    return r;
}

} // namespace moewb
