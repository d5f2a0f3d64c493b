// SPDX-License-Identifier: MIT
#include "session/session.h"

#include "moewb/plan/plan.h"
#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace moewb {

bool Session::operator==(const Session& o) const
{
    return modelDir == o.modelDir && statsPath == o.statsPath && planJson == o.planJson && planPath == o.planPath
        && results == o.results && windowGeometry == o.windowGeometry && windowState == o.windowState;
}

QByteArray sessionToJson(const Session& s)
{
    QJsonObject o;
    o.insert(QStringLiteral("format"), QStringLiteral("moewb-session"));
    o.insert(QStringLiteral("version"), kSessionFormatVersion);
    o.insert(QStringLiteral("model"), s.modelDir);
    o.insert(QStringLiteral("stats"), s.statsPath);
    if (s.planJson.isEmpty()) {
        o.insert(QStringLiteral("plan"), QJsonValue());
    } else {
        const QJsonDocument plan = QJsonDocument::fromJson(s.planJson.toUtf8());
        if (!plan.isObject())
            throw Error("session: the plan to save is not a JSON object");
        o.insert(QStringLiteral("plan"), plan.object());
    }
    o.insert(QStringLiteral("plan_path"), s.planPath);
    QJsonArray results;
    for (const RunResult& r : s.results)
        results.append(runResultToJson(r));
    o.insert(QStringLiteral("results"), results);
    QJsonObject layout;
    layout.insert(QStringLiteral("geometry"), QString::fromLatin1(s.windowGeometry.toBase64()));
    layout.insert(QStringLiteral("state"), QString::fromLatin1(s.windowState.toBase64()));
    o.insert(QStringLiteral("layout"), layout);
    return QJsonDocument(o).toJson(QJsonDocument::Indented);
}

void writeSession(const Session& session, const QString& path)
{
    writeFileAtomically(path.toStdString(), sessionToJson(session).toStdString());
}

Session readSession(const QString& path)
{
    const std::string where = path.toStdString();
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        throw IoError(where, "cannot open: " + file.errorString().toStdString());
    QJsonParseError err;
    const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &err);
    MOEWB_CHECK(err.error == QJsonParseError::NoError, where, "not a session file: invalid JSON at byte ", err.offset,
                " (", err.errorString().toStdString(), ")");
    MOEWB_CHECK(doc.isObject(), where, "not a session file: the JSON is not an object");
    const QJsonObject o = doc.object();
    MOEWB_CHECK(o.value(QStringLiteral("format")).toString() == QLatin1String("moewb-session"), where,
                "not a session file: $.format is not \"moewb-session\"");
    const QJsonValue version = o.value(QStringLiteral("version"));
    MOEWB_CHECK(version.isDouble() && version.toDouble() == kSessionFormatVersion, where, "$.version must be ",
                kSessionFormatVersion);
    const QDir base = QFileInfo(path).absoluteDir();
    auto pathField = [&](const char* key) {
        const QJsonValue v = o.value(QLatin1String(key));
        if (v.isUndefined() || v.isNull())
            return QString();
        MOEWB_CHECK(v.isString(), where, "$.", key, " must be a string");
        const QString p = v.toString();
        return p.isEmpty() || QDir::isAbsolutePath(p) ? p : QDir::cleanPath(base.filePath(p));
    };
    Session s;
    s.modelDir = pathField("model");
    s.statsPath = pathField("stats");
    s.planPath = pathField("plan_path");
    const QJsonValue plan = o.value(QStringLiteral("plan"));
    if (!plan.isUndefined() && !plan.isNull()) {
        MOEWB_CHECK(plan.isObject(), where, "$.plan must be an object or null");
        const std::string text = QJsonDocument(plan.toObject()).toJson(QJsonDocument::Compact).toStdString();
        s.planJson = QString::fromStdString(planToJson(parsePlanJson(text, where + ": $.plan")));
    }
    const QJsonValue results = o.value(QStringLiteral("results"));
    if (!results.isUndefined()) {
        MOEWB_CHECK(results.isArray(), where, "$.results must be an array");
        const QJsonArray a = results.toArray();
        for (int i = 0; i < a.size(); ++i) {
            const QString at = QStringLiteral("%1: $.results[%2]").arg(path).arg(i);
            MOEWB_CHECK(a[i].isObject(), at.toStdString(), "must be an object");
            s.results.push_back(runResultFromJson(a[i].toObject(), at));
        }
    }
    const QJsonValue layout = o.value(QStringLiteral("layout"));
    if (!layout.isUndefined()) {
        MOEWB_CHECK(layout.isObject(), where, "$.layout must be an object");
        const QJsonObject l = layout.toObject();
        for (const char* key : {"geometry", "state"})
            MOEWB_CHECK(l.value(QLatin1String(key)).isUndefined() || l.value(QLatin1String(key)).isString(), where,
                        "$.layout.", key, " must be a base64 string");
        s.windowGeometry = QByteArray::fromBase64(l.value(QStringLiteral("geometry")).toString().toLatin1());
        s.windowState = QByteArray::fromBase64(l.value(QStringLiteral("state")).toString().toLatin1());
    }
    return s;
}

} // namespace moewb
