// SPDX-License-Identifier: MIT
// The Results dock: the table of runs and a scatter of model size against a quality measure —
// perplexity, or the KL divergence from the unquantized model when the runs have it — with the
// Pareto front drawn as a line through the runs no other run beats in both. On the KLD axis a
// run with a paired interval against the uniform plan of its budget carries an error bar: the
// interval [lo, hi] of the difference, drawn around its KLD. Selecting a run (a table row or a
// point) highlights it in both and emits planRequested with its plan, so the main window can load
// it into the editor. Exports: PNG/PDF of the plot, CSV of the table. (Predicted quality from the
// cost model of #24 has no place here yet: it belongs to the plan being edited, not to runs.)
#pragma once

#include "plot/plotpanel.h"
#include "results/runresult.h"

class QCPErrorBars;
class QCPGraph;
class QComboBox;
class QCustomPlot;
class QMouseEvent;
class QPushButton;
class QSortFilterProxyModel;
class QTableView;

namespace moewb {

class ResultsModel;

class ResultsView : public PlotPanel {
    Q_OBJECT
public:
    explicit ResultsView(ResultsModel* model, QWidget* parent = nullptr);
    ~ResultsView() override;

    QCustomPlot* plot() const override { return m_plot; }
    CsvTable csvTable() const override;
    QString exportName() const override { return QStringLiteral("results"); }

    ResultsModel* model() const { return m_model; }
    QTableView* table() const { return m_table; }
    int selectedRow() const { return m_selected; } ///< model row, −1 when none
    /// Selects a run (model row) as a click would: highlights it and emits planRequested when the
    /// run has a plan.
    void selectRun(int row);
    void resetZoom() override;
    /// The model row of the point nearest to a widget position of the plot (within 12 px), or −1.
    int runAtPlotPosition(const QPointF& pos) const;
    /// The plot's quality axis (the model's Pareto front follows it); KLD only when runs have it.
    void setQualityAxis(int axis); ///< a ResultsModel::Quality
    QComboBox* qualityBox() const { return m_qualityBox; }
    QCPErrorBars* errorBars() const { return m_errorBars; }

signals:
    void planRequested(const moewb::RunResult& run);
    void runSelected(int row);

private:
    void rebuild();
    void onPlotClick(QMouseEvent* event);
    void removeSelected();
    void highlight();

    ResultsModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QTableView* m_table;
    QCustomPlot* m_plot;
    QCPGraph* m_points;
    QCPGraph* m_front;
    QCPGraph* m_selectedPoint;
    QCPGraph* m_intervalPoints; ///< invisible: the runs with an interval, carrying the error bars
    QCPErrorBars* m_errorBars;
    QComboBox* m_qualityBox;
    QPushButton* m_loadButton;
    QPushButton* m_removeButton;
    int m_selected = -1;
};

} // namespace moewb
