// SPDX-License-Identifier: MIT
// Per-domain routing of one MoE layer: a domains × experts map of each domain's token share per
// expert, or of its lift over the whole data set (share in the domain / share overall). Shows a
// hint instead when the stats were calibrated without --domain.
#pragma once

#include "plot/plotpanel.h"

class QComboBox;
class QLabel;
class QStackedWidget;

namespace moewb {

class Document;
class MatrixPlot;

class DomainView : public PlotPanel {
    Q_OBJECT
public:
    enum class Measure { Share, Lift };

    explicit DomainView(Document* document, QWidget* parent = nullptr);
    ~DomainView() override;

    QCustomPlot* plot() const override;
    MatrixPlot* matrixPlot() const { return m_plot; }
    CsvTable csvTable() const override;
    QString exportName() const override { return QStringLiteral("domain-routing"); }

    int layer() const { return m_layer; }
    void setLayer(int layer);
    void setMeasure(Measure measure);
    bool hasDomains() const;

private:
    void rebuild();
    void redraw();
    void followSelection(); ///< a selection in another layer switches this view's layer
    void updateHighlight();

    Document* m_document;
    MatrixPlot* m_plot;
    QStackedWidget* m_stack;
    QLabel* m_hint;
    QComboBox* m_layerBox;
    QComboBox* m_measureBox;
    int m_layer = -1;
    Measure m_measure = Measure::Share;
};

} // namespace moewb
