// SPDX-License-Identifier: MIT
// Where the checkout and the build tree are, for every test. Not compiled into the tests: ctest
// passes them in the environment (cmake/MoewbTest.cmake), so a clone in another folder builds
// byte-identical test objects and ccache reuses them. A test run by hand finds them from the
// build tree's CMakeCache.txt above its executable.
#pragma once

#include <QByteArray>
#include <QFile>
#include <QFileInfo>
#include <QString>

#include <cstdlib>

namespace moewb::test {

namespace detail {

/// CMAKE_HOME_DIRECTORY and the cache's own folder, from the nearest CMakeCache.txt above the
/// running executable ("" when none).
inline std::pair<QString, QString> dirsFromCache()
{
    QString dir = QFileInfo(QStringLiteral("/proc/self/exe")).canonicalFilePath();
    for (dir = QFileInfo(dir).path(); !dir.isEmpty() && dir != QStringLiteral("/"); dir = QFileInfo(dir).path()) {
        QFile cache(dir + QStringLiteral("/CMakeCache.txt"));
        if (!cache.open(QIODevice::ReadOnly))
            continue;
        for (const QByteArray& line : cache.readAll().split('\n'))
            if (line.startsWith("CMAKE_HOME_DIRECTORY:INTERNAL="))
                return {QString::fromLocal8Bit(line.mid(30)).trimmed(), dir};
        return {QString(), dir};
    }
    return {};
}

inline QString dirFromEnv(const char* name, bool source)
{
    const char* v = std::getenv(name);
    if (v && *v)
        return QString::fromLocal8Bit(v);
    static const std::pair<QString, QString> fromCache = dirsFromCache();
    return source ? fromCache.first : fromCache.second;
}

} // namespace detail

inline QString sourceDir()
{
    static const QString dir = detail::dirFromEnv("MOEWB_SOURCE_DIR", true);
    return dir;
}

inline QString binaryDir()
{
    static const QString dir = detail::dirFromEnv("MOEWB_BINARY_DIR", false);
    return dir;
}

inline const char* pythonPath()
{
    return "/usr/bin/python3"; // Debian's Python, with python3-numpy and python3-h5py
}

} // namespace moewb::test
