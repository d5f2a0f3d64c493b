// SPDX-License-Identifier: MIT
#include "session/autosave.h"

#include "moewb/core/atomic_file.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>

#include <cerrno>
#include <csignal>
#include <exception>

#include <signal.h>

namespace moewb {

namespace {
bool processAlive(qint64 pid)
{
    if (pid <= 0)
        return false;
    return ::kill(pid_t(pid), 0) == 0 || errno == EPERM;
}
} // namespace

PlanAutosave::PlanAutosave(const QString& dir, QObject* parent)
    : QObject(parent)
    , m_dir(dir.isEmpty() ? QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + QStringLiteral("/autosave")
                          : dir)
{
    m_timer.setSingleShot(true);
    m_timer.setInterval(1500);
    connect(&m_timer, &QTimer::timeout, this, &PlanAutosave::write);
}

PlanAutosave::~PlanAutosave() = default;

QString PlanAutosave::planFile() const
{
    return QDir(m_dir).filePath(QStringLiteral("plan-%1.json").arg(QCoreApplication::applicationPid()));
}

QString PlanAutosave::markerFile() const
{
    return QDir(m_dir).filePath(QStringLiteral("running-%1").arg(QCoreApplication::applicationPid()));
}

std::optional<AutosaveRecovery> PlanAutosave::pendingRecovery() const
{
    std::optional<AutosaveRecovery> best;
    const QDir dir(m_dir);
    const qint64 self = QCoreApplication::applicationPid();
    for (const QString& marker : dir.entryList({QStringLiteral("running-*")}, QDir::Files)) {
        bool ok = false;
        const qint64 pid = marker.mid(8).toLongLong(&ok);
        if (!ok || pid == self || processAlive(pid))
            continue; // our own, or another workbench still running
        const QString file = dir.filePath(QStringLiteral("plan-%1.json").arg(pid));
        QFile f(file);
        if (!f.open(QIODevice::ReadOnly))
            continue; // crashed before its first plan change: nothing to recover
        const QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
        if (!o.value(QStringLiteral("plan")).isObject())
            continue; // unreadable autosave (cut short by the crash itself): skip it
        AutosaveRecovery r;
        r.file = file;
        r.modelDir = o.value(QStringLiteral("model")).toString();
        r.planJson = QString::fromUtf8(QJsonDocument(o.value(QStringLiteral("plan")).toObject()).toJson());
        r.saved = QDateTime::fromString(o.value(QStringLiteral("saved")).toString(), Qt::ISODate);
        if (!best || r.saved > best->saved)
            best = r;
    }
    return best;
}

void PlanAutosave::discardRecovery()
{
    QDir dir(m_dir);
    const qint64 self = QCoreApplication::applicationPid();
    for (const QString& marker : dir.entryList({QStringLiteral("running-*")}, QDir::Files)) {
        bool ok = false;
        const qint64 pid = marker.mid(8).toLongLong(&ok);
        if (!ok || pid == self || processAlive(pid))
            continue;
        dir.remove(QStringLiteral("plan-%1.json").arg(pid));
        dir.remove(marker);
    }
}

void PlanAutosave::begin()
{
    QDir().mkpath(m_dir);
    QFile marker(markerFile());
    if (marker.open(QIODevice::WriteOnly | QIODevice::Truncate))
        marker.write(QDateTime::currentDateTimeUtc().toString(Qt::ISODate).toUtf8() + '\n');
    else
        emit saveFailed(tr("%1: cannot write the autosave marker: %2").arg(markerFile(), marker.errorString()));
    m_begun = true;
}

void PlanAutosave::schedule(const QString& planJson, const QString& modelDir)
{
    m_planJson = planJson;
    m_modelDir = modelDir;
    m_dirty = true;
    m_timer.start();
}

void PlanAutosave::flush()
{
    if (m_dirty)
        write();
}

void PlanAutosave::write()
{
    m_timer.stop();
    m_dirty = false;
    if (m_planJson.isEmpty()) {
        QFile::remove(planFile());
        return;
    }
    const QJsonDocument plan = QJsonDocument::fromJson(m_planJson.toUtf8());
    QJsonObject o;
    o.insert(QStringLiteral("model"), m_modelDir);
    o.insert(QStringLiteral("saved"), QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs));
    o.insert(QStringLiteral("plan"), plan.object());
    try {
        QDir().mkpath(m_dir);
        writeFileAtomically(planFile().toStdString(), QJsonDocument(o).toJson().toStdString());
    } catch (const std::exception& e) {
        emit saveFailed(QString::fromStdString(e.what()));
    }
}

void PlanAutosave::finish()
{
    m_timer.stop();
    m_dirty = false;
    QFile::remove(planFile());
    QFile::remove(markerFile());
    m_begun = false;
}

} // namespace moewb
