// SPDX-License-Identifier: MIT
// Weight outliers: a sortable table of every linear's outlier score and a bar chart of the scores
// (the selected layer's linears, the maximum per layer, the maximum per expert of the selected
// layer, or the maximum per role over all layers), optionally on a log axis. More bars than the
// Top-N limit (default 40; 0 = all) become the N highest, sorted, plus one "others" bar with the
// mean of the rest, so a 128-expert layer's 388 linears stay readable. Rows and bars select their
// linear / layer / expert everywhere; hovering a bar shows its exact score.
#pragma once

#include "plot/plotpanel.h"

#include <QStringList>

#include <vector>

class QCheckBox;
class QCPBars;
class QComboBox;
class QSortFilterProxyModel;
class QSpinBox;
class QTableView;

namespace moewb {

class Document;
class OutlierTableModel;

class OutlierView : public PlotPanel {
    Q_OBJECT
public:
    enum class BarMode { LayerLinears, MaxPerLayer, MaxPerExpert, MaxPerRole };
    static constexpr int kDefaultTopN = 40;

    explicit OutlierView(Document* document, QWidget* parent = nullptr);
    ~OutlierView() override;

    QCustomPlot* plot() const override { return m_plot; }
    CsvTable csvTable() const override;
    QString exportName() const override { return QStringLiteral("outlier-scores"); }

    OutlierTableModel* model() const { return m_model; }
    QSortFilterProxyModel* proxy() const { return m_proxy; }
    QTableView* table() const { return m_table; }
    void setBarMode(BarMode mode);
    BarMode barMode() const { return m_mode; }
    void setLogScale(bool log);
    void resetZoom() override;
    /// At most n bars (the n highest and "others"); 0 shows every bar in its natural order.
    void setTopN(int n);
    int topN() const { return m_topN; }
    /// The bars as (label, value) in plot order; with "others" last when the limit applied.
    const std::vector<std::pair<QString, double>>& bars() const { return m_bars; }
    /// How many bars the "others" bar stands for (0: no "others" bar).
    int othersCount() const { return m_othersCount; }
    /// The hover text of bar i (rich text).
    QString barToolTip(int i) const;

private:
    struct BarTarget {
        int layer = -1;
        int expert = -1;
        QString linear;
        int count = 1; ///< linears behind the bar (its maximum)
    };
    void limitBars();
    void onPlotMove(QMouseEvent* event);
    void rebuild();
    void redraw();
    void updateTicks();
    void followSelection();
    void onTableCurrentChanged();
    void onPlotClick(QMouseEvent* event);
    int barLayer() const;

    Document* m_document;
    OutlierTableModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QTableView* m_table;
    QCustomPlot* m_plot;
    QCPBars* m_barsPlottable;
    QCPBars* m_othersPlottable = nullptr; ///< the grey "others" bar
    QComboBox* m_modeBox;
    QCheckBox* m_logBox;
    QSpinBox* m_topBox;
    int m_topN = kDefaultTopN;
    int m_othersCount = 0;
    double m_othersMin = 0, m_othersMax = 0;
    BarMode m_mode = BarMode::LayerLinears;
    std::vector<std::pair<QString, double>> m_bars;
    std::vector<BarTarget> m_targets;
    int m_barsLayer = -2;
    int m_tickWidth = -1;
    bool m_following = false;
};

} // namespace moewb
