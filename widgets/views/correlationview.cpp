// SPDX-License-Identifier: MIT
#include "views/correlationview.h"

#include "appresources.h"
#include "clustering.h"
#include "document.h"
#include "plot/matrixplot.h"
#include "selection.h"

#include "moewb/stats/stats.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace moewb {

CorrelationView::CorrelationView(Document* document, QWidget* parent)
    : PlotPanel(parent)
    , m_document(document)
    , m_plot(new MatrixPlot(this))
    , m_layerBox(new QComboBox(this))
    , m_measureBox(new QComboBox(this))
    , m_clusterBox(new QCheckBox(tr("Cluster order"), this))
{
    m_measureBox->addItem(tr("Co-activation (tokens)"), int(Measure::Coactivation));
    m_measureBox->addItem(tr("Co-activation (normalised)"), int(Measure::CoactivationNormalized));
    m_measureBox->addItem(tr("Output correlation"), int(Measure::OutputCorrelation));
    m_measureBox->setCurrentIndex(1);
    m_clusterBox->setToolTip(tr("Order experts by average-linkage clustering on 1 − similarity"));
    toolRow()->addWidget(new QLabel(tr("Layer:"), this));
    toolRow()->addWidget(m_layerBox);
    toolRow()->addWidget(m_measureBox);
    toolRow()->addWidget(m_clusterBox);
    finishToolRow();
    // square cells: the matrix zooms and scrolls instead of being squeezed into the dock's shape
    m_plot->setCellShape(MatrixPlot::CellShape::Square);
    m_plot->setMinimumCellSize(3); // 128 experts fit the default window's column whole
    contentLayout()->addWidget(m_plot->createScrollFrame(this));
    m_plot->setAxisTitles(tr("expert"), tr("expert"));
    m_plot->setTooltipProvider([this](int row, int col) {
        if (row >= int(m_order.size()) || col >= int(m_order.size()))
            return QString();
        const int64_t i = m_order[size_t(row)], j = m_order[size_t(col)];
        const RouterStats* r = router();
        QString text = tr("<b>Layer %1, experts %2 × %3</b><br>%4: %5").arg(m_layer).arg(i).arg(j).arg(measureName())
                           .arg(valueAt(i, j), 0, 'g', 6);
        if (r && !r->coactivation.empty())
            text += tr("<br>tokens choosing both: %1<br>tokens of %2: %3, of %4: %5")
                        .arg(r->coactivation.at(i, j)).arg(i).arg(r->coactivation.at(i, i)).arg(j)
                        .arg(r->coactivation.at(j, j));
        return text;
    });
    connect(m_plot, &MatrixPlot::cellClicked, this, [this](int, int col) {
        if (col >= 0 && col < int(m_order.size()))
            m_document->selection()->select(m_layer, int(m_order[size_t(col)]));
    });
    connect(m_layerBox, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
        if (m_layerBox->currentIndex() >= 0)
            setLayer(m_layerBox->currentData().toInt());
    });
    connect(m_measureBox, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] { setMeasure(Measure(m_measureBox->currentData().toInt())); });
    connect(m_clusterBox, &QCheckBox::toggled, this, &CorrelationView::setClustered);
    connect(m_document, &Document::statsChanged, this, &CorrelationView::rebuild);
    connect(m_document->selection(), &Selection::changed, this, &CorrelationView::followSelection);
    rebuild();
}

CorrelationView::~CorrelationView() = default;

QCustomPlot* CorrelationView::plot() const
{
    return m_plot;
}

const RouterStats* CorrelationView::router() const
{
    const CalibStats* stats = m_document->stats();
    return stats ? stats->router(m_layer) : nullptr;
}

QString CorrelationView::measureName() const
{
    switch (m_measure) {
    case Measure::Coactivation: return tr("co-activation (tokens)");
    case Measure::CoactivationNormalized: return tr("co-activation / √(n_i n_j)");
    case Measure::OutputCorrelation: {
        const RouterStats* r = router();
        return r && !r->correlationMethod.empty()
            ? tr("output correlation (%1)").arg(QString::fromStdString(r->correlationMethod))
            : tr("output correlation");
    }
    }
    return {};
}

double CorrelationView::valueAt(int64_t i, int64_t j) const
{
    const RouterStats* r = router();
    if (!r || i < 0 || j < 0 || i >= r->numExperts || j >= r->numExperts)
        return std::nan("");
    switch (m_measure) {
    case Measure::Coactivation: return double(r->coactivation.at(i, j));
    case Measure::CoactivationNormalized: {
        const double den = std::sqrt(double(r->coactivation.at(i, i)) * double(r->coactivation.at(j, j)));
        return den > 0 ? double(r->coactivation.at(i, j)) / den : std::nan("");
    }
    case Measure::OutputCorrelation:
        return r->correlation.empty() ? std::nan("") : double(r->correlation.at(i, j));
    }
    return std::nan("");
}

void CorrelationView::rebuild()
{
    const CalibStats* stats = m_document->stats();
    const QSignalBlocker block(m_layerBox);
    m_layerBox->clear();
    int first = -1;
    bool anyCorrelation = false;
    if (stats)
        for (const LayerStats& l : stats->layers)
            if (l.isMoe) {
                m_layerBox->addItem(QString::number(l.layer), int(l.layer));
                if (first < 0)
                    first = int(l.layer);
                anyCorrelation = anyCorrelation || !l.router.correlation.empty();
            }
    m_measureBox->setItemData(2, anyCorrelation ? QVariant(int(Qt::ItemIsSelectable | Qt::ItemIsEnabled)) : QVariant(0),
                              Qt::UserRole - 1);
    m_measureBox->setItemData(2, anyCorrelation ? tr("Expert output correlation on the probe tokens")
                                                : tr("Not in these stats (calibrate with the correlation probe)"),
                              Qt::ToolTipRole);
    if (!anyCorrelation && m_measure == Measure::OutputCorrelation)
        m_measure = Measure::CoactivationNormalized;
    m_layer = -1;
    setLayer(first);
}

void CorrelationView::setLayer(int layer)
{
    const CalibStats* stats = m_document->stats();
    if (layer >= 0 && (!stats || !stats->router(layer)))
        return;
    m_layer = layer;
    {
        const QSignalBlocker block(m_layerBox);
        m_layerBox->setCurrentIndex(m_layerBox->findData(layer));
    }
    redraw();
}

void CorrelationView::setMeasure(Measure measure)
{
    m_measure = measure;
    const QSignalBlocker block(m_measureBox);
    m_measureBox->setCurrentIndex(m_measureBox->findData(int(measure)));
    redraw();
}

void CorrelationView::setClustered(bool clustered)
{
    m_clustered = clustered;
    const QSignalBlocker block(m_clusterBox);
    m_clusterBox->setChecked(clustered);
    redraw();
}

void CorrelationView::redraw()
{
    const RouterStats* r = router();
    const int64_t n = r ? r->numExperts : 0;
    m_order.resize(size_t(n));
    std::iota(m_order.begin(), m_order.end(), int64_t(0));
    if (m_clustered && n > 1) {
        // raw counts are not a similarity: cluster them on the normalised co-activation instead
        const Measure saved = m_measure;
        if (m_measure == Measure::Coactivation)
            m_measure = Measure::CoactivationNormalized;
        std::vector<double> similarity(size_t(n * n));
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j)
                similarity[size_t(i * n + j)] = valueAt(i, j);
        m_measure = saved;
        m_order = averageLinkageOrder(similarityToDistance(similarity, n), n);
    }
    std::vector<double> values(size_t(n * n));
    QStringList labels;
    for (int64_t a = 0; a < n; ++a) {
        labels << QString::number(m_order[size_t(a)]);
        for (int64_t b = 0; b < n; ++b)
            values[size_t(a * n + b)] = valueAt(m_order[size_t(a)], m_order[size_t(b)]);
    }
    if (m_measure == Measure::OutputCorrelation) {
        m_plot->setGradient(colorGradient(ColorMap::Diverging));
        m_plot->setValueRange(-1, 1);
    } else {
        // the diagonal (an expert with itself) would dwarf the pairs: scale the colours to the
        // off-diagonal values and let the diagonal saturate
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (int64_t a = 0; a < n; ++a)
            for (int64_t b = 0; b < n; ++b) {
                const double v = values[size_t(a * n + b)];
                if (a != b && !std::isnan(v)) {
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                }
            }
        m_plot->setGradient(colorGradient(ColorMap::Magma));
        if (hi > lo)
            m_plot->setValueRange(lo, hi);
        else
            m_plot->setValueRange(1, 0);
    }
    m_plot->setValueTitle(measureName());
    m_plot->setMatrix(int(n), int(n), std::move(values), labels, labels);
    updateHighlight();
}

void CorrelationView::followSelection()
{
    const Selection* s = m_document->selection();
    if (s->layer() >= 0 && s->layer() != m_layer && m_document->stats() && m_document->stats()->router(s->layer())) {
        setLayer(s->layer());
        return;
    }
    updateHighlight();
}

void CorrelationView::updateHighlight()
{
    const Selection* s = m_document->selection();
    int pos = -1;
    if (s->layer() == m_layer && s->expert() >= 0)
        for (size_t k = 0; k < m_order.size(); ++k)
            if (m_order[k] == s->expert())
                pos = int(k);
    m_plot->setHighlight(-1, pos); // the selected expert's column
}

CsvTable CorrelationView::csvTable() const
{
    CsvTable table;
    table.header << QStringLiteral("layer") << QStringLiteral("expert_i") << QStringLiteral("expert_j")
                 << QStringLiteral("coactivation") << QStringLiteral("correlation") << measureName();
    const RouterStats* r = router();
    if (!r)
        return table;
    for (int64_t a : m_order)
        for (int64_t b : m_order)
            table.rows << QStringList {csvNumber(int64_t(m_layer)), csvNumber(a), csvNumber(b),
                                       csvNumber(r->coactivation.at(a, b)),
                                       r->correlation.empty() ? QString() : csvNumber(r->correlation.at(a, b)),
                                       csvNumber(valueAt(a, b))};
    return table;
}

} // namespace moewb
