// SPDX-License-Identifier: MIT
// Base of every plot view: a tool row (the view's own controls, then Reset zoom and Export) above
// the view's content. Export writes the QCustomPlot as PNG or PDF and the view's data as CSV.
#pragma once

#include "plot/csvtable.h"

#include <QWidget>

class QCustomPlot;
class QHBoxLayout;
class QVBoxLayout;

namespace moewb {

class PlotPanel : public QWidget {
    Q_OBJECT
public:
    explicit PlotPanel(QWidget* parent = nullptr);
    ~PlotPanel() override;

    virtual QCustomPlot* plot() const = 0;
    /// The numbers currently plotted, exactly as the stats hold them.
    virtual CsvTable csvTable() const = 0;
    /// A short file-name stem for exports, e.g. "routing-heatmap".
    virtual QString exportName() const = 0;

    bool exportPng(const QString& path, int width = 0, int height = 0) const;
    bool exportPdf(const QString& path) const;
    bool exportCsv(const QString& path, QString* error = nullptr) const;

public slots:
    /// Asks for a file name and exports by its suffix (.png, .pdf, .csv); errors go to a message box.
    void exportInteractively(const QString& format);
    virtual void resetZoom();

protected:
    QHBoxLayout* toolRow() const { return m_toolRow; }
    QVBoxLayout* contentLayout() const { return m_content; }
    /// Adds Reset zoom and Export to the end of the tool row; call after adding the own controls.
    void finishToolRow();

private:
    QHBoxLayout* m_toolRow;
    QVBoxLayout* m_content;
};

} // namespace moewb
