// SPDX-License-Identifier: MIT
// Expert coverage (#25, #27): layers × experts, square cells, coloured by the tokens each routed
// expert got: routed in calibration (the open stats) and, once a quantize run's report is loaded
// (a quantize job loads its own), routed in that run and used for its Hessians after balancing.
// Red crosses mark experts below the GPTQ minimum (RTN fallbacks of the run; without a run, experts
// the stats route fewer tokens than the minimum), circles experts that balancing lifted to GPTQ.
// A click selects the expert everywhere; the selection elsewhere outlines its cell (or layer row);
// hovering shows the exact numbers.
#pragma once

#include "coverage/coveragematrix.h"
#include "plot/plotpanel.h"

#include <QList>
#include <QPair>

#include <memory>

class QComboBox;
class QLabel;
class QSpinBox;

namespace moewb {

class Document;
class MatrixPlot;

class CoverageView : public PlotPanel {
    Q_OBJECT
public:
    explicit CoverageView(Document* document, QWidget* parent = nullptr);
    ~CoverageView() override;

    QCustomPlot* plot() const override;
    MatrixPlot* matrixPlot() const { return m_plot; }
    CsvTable csvTable() const override;
    QString exportName() const override { return QStringLiteral("expert-coverage"); }

    /// The quantize run shown next to the stats; nullptr shows the stats alone.
    void setQuantCoverage(std::shared_ptr<const QuantCoverage> run);
    const QuantCoverage* quantCoverage() const { return m_run.get(); }
    /// Reads a quantize report (moewb_quant_report.json or FILE.gguf.moewb_report.json) and shows
    /// it; false with a one-line error, and what was shown stays.
    bool loadReport(const QString& path, QString* error = nullptr);

    void setMeasure(CoverageMeasure measure);
    CoverageMeasure measure() const { return m_measure; }
    /// The GPTQ minimum the stats are compared with while no run is shown (a run has its own).
    void setMinimumTokens(int64_t tokens);
    int64_t minimumTokens() const { return m_matrix.minExpertTokens; }

    const CoverageMatrix& matrix() const { return m_matrix; }
    /// Experts marked below the minimum (crosses) and lifted by balancing (circles), as (layer, expert).
    QList<QPair<int, int>> belowMinimumExperts() const;
    QList<QPair<int, int>> liftedExperts() const;
    /// The hover text of the cell of (decoder layer, expert), "" when it is not shown.
    QString tooltip(int layer, int expert) const;
    /// Widget pixel of the cell of (decoder layer, expert), for tests and tours.
    QPoint cellCenter(int layer, int expert) const;

public slots:
    /// Asks for a report file and loads it; errors go to a message box.
    void loadReportInteractively();

private:
    void rebuild();
    void redraw();
    void followSelection();
    void updateRunLabel();
    QString cellTooltip(int row, int col) const;
    QList<QPair<int, int>> expertsWithStatus(CoverageStatus status) const;

    Document* m_document;
    MatrixPlot* m_plot;
    QComboBox* m_measureBox;
    QSpinBox* m_minimumBox;
    QLabel* m_runLabel;
    int m_liftedMarkers = -1; ///< MatrixPlot marker set of the lifted experts
    std::shared_ptr<const QuantCoverage> m_run;
    CoverageMeasure m_measure = CoverageMeasure::StatsRouted;
    int64_t m_minimum = 32;
    CoverageMatrix m_matrix;
};

} // namespace moewb
