// SPDX-License-Identifier: MIT
// Helpers shared by the engine tests: running the NumPy reference scripts, reading their output.
#pragma once

#include <QByteArray>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QtTest>

#include "test_paths.h"

#include <stdexcept>
#include <vector>

namespace moewb::test {

inline QString sourcePath(const QString& rel)
{
    return sourceDir() + QLatin1Char('/') + rel;
}

/// Runs /usr/bin/python3 with args; throws (failing the test) on a non-zero exit. Returns stdout.
inline QByteArray runPython(const QStringList& args, int timeoutMs = 300000)
{
    QProcess p;
    p.start(QString::fromLatin1(pythonPath()), args);
    if (!p.waitForFinished(timeoutMs))
        throw std::runtime_error("python timed out: " + args.join(' ').toStdString());
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0)
        throw std::runtime_error("python failed: " + args.join(' ').toStdString() + "\n"
                                 + p.readAllStandardError().toStdString());
    return p.readAllStandardOutput();
}

inline QByteArray readAll(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        throw std::runtime_error("cannot read " + path.toStdString());
    return f.readAll();
}

inline void writeAll(const QString& path, const QByteArray& bytes)
{
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate))
        throw std::runtime_error("cannot write " + path.toStdString());
    f.write(bytes);
}

/// Result of running a CLI binary.
struct CliRun {
    int exitCode = -1;
    QByteArray out, err;
};

inline CliRun runCli(const QString& program, const QStringList& args, int timeoutMs = 300000)
{
    QProcess p;
    p.start(program, args);
    CliRun r;
    if (!p.waitForFinished(timeoutMs))
        return r;
    r.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = p.readAllStandardOutput();
    r.err = p.readAllStandardError();
    return r;
}

inline QString moewbCli()
{
    const QByteArray env = qgetenv("MOEWB_CLI");
    return env.isEmpty() ? binaryDir() + QStringLiteral("/app/cli/moewb") : QString::fromLocal8Bit(env);
}

} // namespace moewb::test
