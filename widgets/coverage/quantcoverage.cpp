// SPDX-License-Identifier: MIT
#include "coverage/quantcoverage.h"

#include <QCoreApplication>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace moewb {

namespace {

QString tr(const char* text)
{
    return QCoreApplication::translate("QuantCoverage", text);
}

} // namespace

const QuantCoverageExpert* QuantCoverage::find(int layer, int expert) const
{
    for (const QuantCoverageExpert& e : experts)
        if (e.layer == layer && e.expert == expert)
            return &e;
    return nullptr;
}

const QuantCoverageFallback* QuantCoverage::fallback(int layer, int expert) const
{
    for (const QuantCoverageFallback& f : fallbacks)
        if (f.layer == layer && f.expert == expert)
            return &f;
    return nullptr;
}

bool parseQuantCoverage(const QByteArray& json, const QString& where, QuantCoverage* out, QString* error)
{
    const auto fail = [&](const QString& why) {
        if (error)
            *error = QStringLiteral("%1: %2").arg(where, why);
        return false;
    };
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(json, &parseError);
    if (!doc.isObject())
        return fail(parseError.error != QJsonParseError::NoError ? parseError.errorString() : tr("not a JSON object"));
    QJsonObject root = doc.object();
    if (root.value(QStringLiteral("quantize")).isObject()) // a GGUF export's report wraps the quantize report
        root = root.value(QStringLiteral("quantize")).toObject();
    if (root.value(QStringLiteral("format")).toString() != QLatin1String("moewb-quant-report"))
        return fail(tr("not a moewb quantize report"));
    if (!root.value(QStringLiteral("experts")).isArray())
        return fail(tr("the report has no per-expert coverage (written before expert balancing existed)"));

    QuantCoverage c;
    const QJsonObject options = root.value(QStringLiteral("options")).toObject();
    c.balance = options.value(QStringLiteral("balance_experts")).toString(QStringLiteral("off"));
    c.minExpertTokens = options.value(QStringLiteral("min_expert_tokens")).toInteger(32);
    c.calibTokens = root.value(QStringLiteral("calibration")).toObject().value(QStringLiteral("tokens")).toInteger(0);
    const QJsonObject totals = root.value(QStringLiteral("totals")).toObject();
    const QJsonObject below = totals.value(QStringLiteral("experts_below_min")).toObject();
    c.belowMinRouted = below.value(QStringLiteral("routed")).toInteger(-1);
    c.belowMinAfter = below.value(QStringLiteral("after_balancing")).toInteger(-1);
    for (const QJsonValue& v : root.value(QStringLiteral("experts")).toArray()) {
        const QJsonObject o = v.toObject();
        QuantCoverageExpert e;
        e.layer = o.value(QStringLiteral("layer")).toInt(-1);
        e.expert = o.value(QStringLiteral("expert")).toInt(-1);
        e.routedTokens = o.value(QStringLiteral("routed_tokens")).toInteger(0);
        e.hessianTokens = o.value(QStringLiteral("hessian_tokens")).toInteger(0);
        e.hessianWeight = o.value(QStringLiteral("hessian_weight")).toDouble(0);
        if (e.layer < 0 || e.expert < 0)
            return fail(tr("an entry of experts[] has no layer or expert"));
        c.experts.push_back(e);
    }
    for (const QJsonValue& v : totals.value(QStringLiteral("fallback_experts")).toArray()) {
        const QJsonObject o = v.toObject();
        QuantCoverageFallback f;
        f.layer = o.value(QStringLiteral("layer")).toInt(-1);
        f.expert = o.value(QStringLiteral("expert")).toInt(-1);
        f.tokens = o.value(QStringLiteral("tokens")).toInteger(0);
        f.reason = o.value(QStringLiteral("reason")).toString();
        c.fallbacks.push_back(f);
    }
    *out = std::move(c);
    return true;
}

bool readQuantCoverage(const QString& path, QuantCoverage* out, QString* error)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        if (error)
            *error = QStringLiteral("%1: %2").arg(path, file.errorString());
        return false;
    }
    if (!parseQuantCoverage(file.readAll(), path, out, error))
        return false;
    out->path = path;
    return true;
}

} // namespace moewb
