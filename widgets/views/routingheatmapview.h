// SPDX-License-Identifier: MIT
// Layers × experts routing heat map: one row per MoE layer, one column per routed expert, coloured
// by the chosen RoutingMetric (routingmetrics.h). Never-routed experts carry a red cross. A click
// selects the expert everywhere; hovering shows the exact counts. Ctrl+click toggles an expert in
// the multi-selection (Selection::experts(), outlined squares), shift+click selects the rectangle
// from the last clicked cell, shift+drag a rubber band (ctrl+shift adds either): the allocation
// editor's bulk edits use it. With the document's cost table (#27) the experts can instead be
// coloured by their predicted cost at a chosen width (alloc/predictedcost.h: the sum over the
// expert's linears, nats/token), with the same selection.
#pragma once

#include "plot/plotpanel.h"
#include "routingmetrics.h"

#include <vector>

class QCheckBox;
class QComboBox;
class QLabel;

namespace moewb {

class Document;
class MatrixPlot;

class RoutingHeatmapView : public PlotPanel {
    Q_OBJECT
public:
    explicit RoutingHeatmapView(Document* document, QWidget* parent = nullptr);
    ~RoutingHeatmapView() override;

    QCustomPlot* plot() const override;
    MatrixPlot* matrixPlot() const { return m_plot; }
    CsvTable csvTable() const override;
    QString exportName() const override { return QStringLiteral("routing-heatmap"); }

    /// domain: index into the stats' domains, used by RoutingMetric::DomainShare only.
    void setMetric(RoutingMetric metric, int domain = -1);
    RoutingMetric metric() const { return m_metric; }
    /// Colour by the predicted cost at `bits` (one of the cost table's widths) instead of the
    /// routing metric; 0: back to the metric. Ignored (0) without a cost table.
    void setCostBits(int64_t bits);
    int64_t costBits() const { return m_costBits; }
    int domain() const { return m_domain; }
    /// Order the expert columns by the selected (else first) layer's value, descending.
    void setSortedByValue(bool sorted);
    const RoutingMatrix& matrix() const { return m_matrix; }
    /// The expert shown in plot column col (differs from col when sorted).
    int expertAtColumn(int col) const;
    /// Widget pixel of the cell of (decoder layer, expert), for tests and tours.
    QPoint cellCenter(int layer, int expert) const;

private:
    void rebuild();
    void redraw();
    void followSelection();
    void followExperts();
    void onCellClicked(int row, int col);
    /// Selects the experts of plot rows r0..r1 × columns c0..c1 (added to the selection when `add`).
    void selectRectangle(int r0, int c0, int r1, int c1, bool add);
    QString tooltip(int row, int col) const;
    QString valueTitle() const;
    void selectModeInBox();
    int rowOfLayer(int layer) const;

    Document* m_document;
    MatrixPlot* m_plot;
    QComboBox* m_metricBox;
    QComboBox* m_domainBox;
    QComboBox* m_colorBox;
    QCheckBox* m_sortBox;
    QLabel* m_deadLabel;
    RoutingMetric m_metric = RoutingMetric::TokenShare;
    int m_domain = -1;
    int64_t m_costBits = 0; // > 0: colour by predicted cost at this width
    bool m_sorted = false;
    RoutingMatrix m_matrix;
    std::vector<int64_t> m_columnOrder; // plot column → expert
    int m_sortRow = -1;                 // matrix row the columns are sorted by, -1: unsorted
    QPoint m_anchor{-1, -1};            // (col, row) of the last click, for shift+click rectangles
};

} // namespace moewb
