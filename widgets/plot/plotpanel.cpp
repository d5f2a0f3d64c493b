// SPDX-License-Identifier: MIT
#include "plot/plotpanel.h"

#include "appresources.h"
#include "plot/matrixplot.h"

#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QMenu>
#include <QMessageBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace moewb {

PlotPanel::PlotPanel(QWidget* parent)
    : QWidget(parent)
    , m_toolRow(new QHBoxLayout)
    , m_content(new QVBoxLayout)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(2, 2, 2, 2);
    m_toolRow->setContentsMargins(0, 0, 0, 0);
    m_content->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(m_toolRow);
    layout->addLayout(m_content, 1);
}

PlotPanel::~PlotPanel() = default;

void PlotPanel::finishToolRow()
{
    m_toolRow->addStretch(1);
    auto* reset = new QToolButton(this);
    reset->setIcon(appIcon(QStringLiteral("reset-zoom")));
    reset->setToolTip(tr("Reset zoom (drag to pan, wheel to zoom)"));
    connect(reset, &QToolButton::clicked, this, &PlotPanel::resetZoom);
    m_toolRow->addWidget(reset);

    auto* exportButton = new QToolButton(this);
    exportButton->setIcon(appIcon(QStringLiteral("export")));
    exportButton->setToolTip(tr("Export the plot (PNG, PDF) or its data (CSV)"));
    exportButton->setPopupMode(QToolButton::InstantPopup);
    auto* menu = new QMenu(exportButton);
    for (const QString& format : {QStringLiteral("png"), QStringLiteral("pdf"), QStringLiteral("csv")})
        menu->addAction(tr("Export %1…").arg(format.toUpper()), this,
                        [this, format] { exportInteractively(format); });
    exportButton->setMenu(menu);
    m_toolRow->addWidget(exportButton);
}

bool PlotPanel::exportPng(const QString& path, int width, int height) const
{
    return plot() && plot()->savePng(path, width, height);
}

bool PlotPanel::exportPdf(const QString& path) const
{
    return plot() && plot()->savePdf(path);
}

bool PlotPanel::exportCsv(const QString& path, QString* error) const
{
    return csvTable().write(path, error);
}

void PlotPanel::exportInteractively(const QString& format)
{
    const QString filter = format == QLatin1String("png") ? tr("PNG image (*.png)")
        : format == QLatin1String("pdf")                  ? tr("PDF document (*.pdf)")
                                                           : tr("CSV table (*.csv)");
    QString path = QFileDialog::getSaveFileName(this, tr("Export"), exportName() + QLatin1Char('.') + format, filter);
    if (path.isEmpty())
        return;
    if (QFileInfo(path).suffix().isEmpty())
        path += QLatin1Char('.') + format;
    QString error;
    bool ok = false;
    if (format == QLatin1String("png"))
        ok = exportPng(path);
    else if (format == QLatin1String("pdf"))
        ok = exportPdf(path);
    else
        ok = exportCsv(path, &error);
    if (!ok)
        QMessageBox::warning(this, tr("Export failed"), error.isEmpty() ? tr("Cannot write %1").arg(path) : error);
}

void PlotPanel::resetZoom()
{
    if (auto* matrix = qobject_cast<MatrixPlot*>(plot())) {
        matrix->resetView();
    } else if (QCustomPlot* p = plot()) {
        p->rescaleAxes();
        p->replot();
    }
}

} // namespace moewb
