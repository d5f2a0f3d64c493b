// SPDX-License-Identifier: MIT
// Weight outliers: a sortable table of every linear's outlier score and a bar chart of the scores
// (the selected layer's linears, the maximum per layer, or the maximum per expert of the selected
// layer), optionally on a log axis. Rows and bars select their linear / layer / expert everywhere.
#pragma once

#include "plot/plotpanel.h"

#include <QStringList>

#include <vector>

class QCheckBox;
class QCPBars;
class QComboBox;
class QSortFilterProxyModel;
class QTableView;

namespace moewb {

class Document;
class OutlierTableModel;

class OutlierView : public PlotPanel {
    Q_OBJECT
public:
    enum class BarMode { LayerLinears, MaxPerLayer, MaxPerExpert };

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
    /// The bars as (label, value) in plot order.
    const std::vector<std::pair<QString, double>>& bars() const { return m_bars; }

private:
    struct BarTarget {
        int layer = -1;
        int expert = -1;
        QString linear;
    };
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
    QComboBox* m_modeBox;
    QCheckBox* m_logBox;
    BarMode m_mode = BarMode::LayerLinears;
    std::vector<std::pair<QString, double>> m_bars;
    std::vector<BarTarget> m_targets;
    int m_barsLayer = -2;
    int m_tickWidth = -1;
    bool m_following = false;
};

} // namespace moewb
