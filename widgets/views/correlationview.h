// SPDX-License-Identifier: MIT
// Expert × expert matrix of one MoE layer: co-activation counts, co-activation normalised to
// c_ij / sqrt(c_ii c_jj), or the expert output correlation when the stats carry it. Rows and
// columns can be ordered by average-linkage clustering (clustering.h) on 1 - similarity.
#pragma once

#include "plot/plotpanel.h"

#include <vector>

class QCheckBox;
class QComboBox;

namespace moewb {

class Document;
class MatrixPlot;
struct RouterStats;

class CorrelationView : public PlotPanel {
    Q_OBJECT
public:
    enum class Measure { Coactivation, CoactivationNormalized, OutputCorrelation };

    explicit CorrelationView(Document* document, QWidget* parent = nullptr);
    ~CorrelationView() override;

    QCustomPlot* plot() const override;
    MatrixPlot* matrixPlot() const { return m_plot; }
    CsvTable csvTable() const override;
    QString exportName() const override { return QStringLiteral("expert-correlation"); }

    int layer() const { return m_layer; }
    void setLayer(int layer); ///< a decoder layer index; non-MoE layers are ignored
    void setMeasure(Measure measure);
    Measure measure() const { return m_measure; }
    void setClustered(bool clustered);
    /// Display order of the experts (identity unless clustered).
    const std::vector<int64_t>& order() const { return m_order; }
    /// The measure for experts (i, j) of the current layer, NaN when unavailable.
    double valueAt(int64_t i, int64_t j) const;

private:
    void rebuild();
    void redraw();
    void followSelection(); ///< a selection in another layer switches this view's layer
    void updateHighlight();
    const RouterStats* router() const;
    QString measureName() const;

    Document* m_document;
    MatrixPlot* m_plot;
    QComboBox* m_layerBox;
    QComboBox* m_measureBox;
    QCheckBox* m_clusterBox;
    int m_layer = -1;
    Measure m_measure = Measure::CoactivationNormalized;
    bool m_clustered = false;
    std::vector<int64_t> m_order;
};

} // namespace moewb
