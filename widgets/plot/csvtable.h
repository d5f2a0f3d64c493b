// SPDX-License-Identifier: MIT
// The data behind a plot as a table, for "Export CSV". Numbers are written so that they read back
// as the exact values of the stats file: integers in full, doubles with 17 and floats with 9
// significant digits (the round-trip precisions of IEEE binary64/binary32).
#pragma once

#include <QList>
#include <QString>
#include <QStringList>

#include <cstdint>

namespace moewb {

struct CsvTable {
    QStringList header;
    QList<QStringList> rows;

    /// RFC 4180: fields with a comma, quote or newline are quoted. Returns false with *error set
    /// when the file cannot be written.
    bool write(const QString& path, QString* error = nullptr) const;
    QString toText() const;
};

QString csvNumber(int64_t v);
QString csvNumber(double v);  ///< NaN → "nan"
QString csvNumber(float v);

} // namespace moewb
