// SPDX-License-Identifier: MIT
#include "plot/csvtable.h"

#include <QSaveFile>

#include <cmath>

namespace moewb {

namespace {
QString field(const QString& s)
{
    if (!s.contains(QLatin1Char(',')) && !s.contains(QLatin1Char('"')) && !s.contains(QLatin1Char('\n')))
        return s;
    QString q = s;
    q.replace(QLatin1String("\""), QLatin1String("\"\""));
    return QLatin1Char('"') + q + QLatin1Char('"');
}

QString line(const QStringList& fields)
{
    QStringList out;
    out.reserve(fields.size());
    for (const QString& f : fields)
        out << field(f);
    return out.join(QLatin1Char(',')) + QLatin1Char('\n');
}
} // namespace

QString CsvTable::toText() const
{
    QString text = line(header);
    for (const QStringList& row : rows)
        text += line(row);
    return text;
}

bool CsvTable::write(const QString& path, QString* error) const
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Text)) {
        if (error)
            *error = path + QStringLiteral(": ") + file.errorString();
        return false;
    }
    file.write(toText().toUtf8());
    if (!file.commit()) {
        if (error)
            *error = path + QStringLiteral(": ") + file.errorString();
        return false;
    }
    return true;
}

QString csvNumber(int64_t v) { return QString::number(qlonglong(v)); }

QString csvNumber(double v) { return std::isnan(v) ? QStringLiteral("nan") : QString::number(v, 'g', 17); }

QString csvNumber(float v) { return std::isnan(v) ? QStringLiteral("nan") : QString::number(double(v), 'g', 9); }

} // namespace moewb
