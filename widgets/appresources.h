// SPDX-License-Identifier: MIT
// Access to resources/moewb.qrc (compiled into moewb_widgets): icons and colour-map presets.
#pragma once

#include <QIcon>
#include <QString>

class QCPColorGradient;

namespace moewb {

/// Registers the compiled resources of the static library; safe to call more than once.
void initResources();

/// The icon resources/icons/<name>.svg, or its PNG rendering when Qt has no SVG image plugin.
QIcon appIcon(const QString& name);

enum class ColorMap { Viridis, Magma, Diverging };

QString colorMapName(ColorMap map); ///< "viridis", "magma", "diverging"
/// A QCustomPlot gradient from the preset resources/colormaps/<name>.txt ("position #rrggbb" lines).
/// NaN cells are drawn light grey.
QCPColorGradient colorGradient(ColorMap map);

} // namespace moewb
