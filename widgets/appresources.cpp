// SPDX-License-Identifier: MIT
#include "appresources.h"

#include <QFile>
#include <QImageReader>
#include <QTextStream>
#include <qcustomplot.h>

static void registerMoewbResources()
{
    Q_INIT_RESOURCE(moewb);
}

namespace moewb {

void initResources()
{
    static const bool once = (registerMoewbResources(), true);
    Q_UNUSED(once);
}

QIcon appIcon(const QString& name)
{
    initResources();
    static const bool hasSvg = QImageReader::supportedImageFormats().contains("svg");
    return QIcon(QStringLiteral(":/icons/%1.%2").arg(name, hasSvg ? QStringLiteral("svg") : QStringLiteral("png")));
}

QString colorMapName(ColorMap map)
{
    switch (map) {
    case ColorMap::Viridis: return QStringLiteral("viridis");
    case ColorMap::Magma: return QStringLiteral("magma");
    case ColorMap::Diverging: return QStringLiteral("diverging");
    }
    return {};
}

QCPColorGradient colorGradient(ColorMap map)
{
    initResources();
    QCPColorGradient gradient;
    gradient.clearColorStops();
    gradient.setColorInterpolation(QCPColorGradient::ciRGB);
    gradient.setLevelCount(256);
    gradient.setNanHandling(QCPColorGradient::nhNanColor);
    gradient.setNanColor(QColor(220, 220, 220));
    QFile file(QStringLiteral(":/colormaps/%1.txt").arg(colorMapName(map)));
    if (file.open(QIODevice::ReadOnly | QIODevice::Text)) {
        QTextStream in(&file);
        while (!in.atEnd()) {
            const QString line = in.readLine().trimmed();
            if (line.isEmpty() || line.startsWith(QLatin1Char('#')))
                continue;
            const QStringList parts = line.split(QLatin1Char(' '), Qt::SkipEmptyParts);
            bool ok = false;
            const double pos = parts.value(0).toDouble(&ok);
            const QColor colour(parts.value(1));
            if (ok && colour.isValid())
                gradient.setColorStopAt(pos, colour);
        }
    }
    if (gradient.colorStops().isEmpty()) { // a broken build without resources: still draw something
        gradient.setColorStopAt(0, Qt::black);
        gradient.setColorStopAt(1, Qt::white);
    }
    return gradient;
}

} // namespace moewb
