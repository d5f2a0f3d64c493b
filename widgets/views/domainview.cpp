// SPDX-License-Identifier: MIT
#include "views/domainview.h"

#include "appresources.h"
#include "document.h"
#include "plot/matrixplot.h"
#include "routingmetrics.h"
#include "selection.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QStackedWidget>

#include <cmath>

namespace moewb {

DomainView::DomainView(Document* document, QWidget* parent)
    : PlotPanel(parent)
    , m_document(document)
    , m_plot(new MatrixPlot(this))
    , m_stack(new QStackedWidget(this))
    , m_hint(new QLabel(this))
    , m_layerBox(new QComboBox(this))
    , m_measureBox(new QComboBox(this))
{
    m_measureBox->addItem(tr("Share within the domain"), int(Measure::Share));
    m_measureBox->addItem(tr("Lift over all domains"), int(Measure::Lift));
    m_measureBox->setItemData(1, tr("domain share / overall token share; 1 = as often as the whole data"),
                              Qt::ToolTipRole);
    toolRow()->addWidget(new QLabel(tr("Layer:"), this));
    toolRow()->addWidget(m_layerBox);
    toolRow()->addWidget(m_measureBox);
    finishToolRow();
    m_hint->setAlignment(Qt::AlignCenter);
    m_hint->setWordWrap(true);
    // square cells, each at least a line of text high: every domain keeps its label, and many
    // experts scroll sideways instead of squeezing the domains into a strip
    m_plot->setCellShape(MatrixPlot::CellShape::Square);
    m_plot->setMinimumCellSize(QFontMetrics(m_plot->yAxis->tickLabelFont()).height() + 4);
    m_stack->addWidget(m_plot->createScrollFrame(this));
    m_stack->addWidget(m_hint);
    contentLayout()->addWidget(m_stack);
    m_plot->setAxisTitles(tr("expert"), tr("domain"));
    m_plot->setTooltipProvider([this](int row, int col) {
        const CalibStats* stats = m_document->stats();
        const RouterStats* r = stats ? stats->router(m_layer) : nullptr;
        if (!r || row >= r->domainTokens.rows || col >= r->numExperts)
            return QString();
        return tr("<b>%1, layer %2, expert %3</b><br>tokens: %4<br>share in domain: %5<br>overall share: %6<br>"
                  "lift: %7")
            .arg(QString::fromStdString(stats->provenance.domains[size_t(row)]))
            .arg(m_layer)
            .arg(col)
            .arg(r->domainTokens.at(row, col))
            .arg(routingValue(*r, RoutingMetric::DomainShare, col, row), 0, 'g', 6)
            .arg(routingValue(*r, RoutingMetric::TokenShare, col), 0, 'g', 6)
            .arg(domainLift(*r, col, row), 0, 'g', 6);
    });
    connect(m_plot, &MatrixPlot::cellClicked, this,
            [this](int, int col) { m_document->selection()->select(m_layer, col); });
    connect(m_layerBox, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
        if (m_layerBox->currentIndex() >= 0)
            setLayer(m_layerBox->currentData().toInt());
    });
    connect(m_measureBox, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] { setMeasure(Measure(m_measureBox->currentData().toInt())); });
    connect(m_document, &Document::statsChanged, this, &DomainView::rebuild);
    connect(m_document->selection(), &Selection::changed, this, &DomainView::followSelection);
    rebuild();
}

DomainView::~DomainView() = default;

QCustomPlot* DomainView::plot() const
{
    return m_plot;
}

bool DomainView::hasDomains() const
{
    const CalibStats* stats = m_document->stats();
    return stats && !stats->provenance.domains.empty();
}

void DomainView::rebuild()
{
    const CalibStats* stats = m_document->stats();
    int first = -1;
    {
        const QSignalBlocker block(m_layerBox);
        m_layerBox->clear();
        if (stats)
            for (const LayerStats& l : stats->layers)
                if (l.isMoe) {
                    m_layerBox->addItem(QString::number(l.layer), int(l.layer));
                    if (first < 0)
                        first = int(l.layer);
                }
    }
    m_hint->setText(!stats ? tr("Open a stats file to compare domains.")
                           : tr("These statistics have no domains. Calibrate with --domain NAME=FILE (or JSONL with a "
                                "\"domain\" field) to compare how domains route."));
    m_stack->setCurrentIndex(hasDomains() ? 0 : 1);
    m_layer = -1;
    setLayer(first);
}

void DomainView::setLayer(int layer)
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

void DomainView::setMeasure(Measure measure)
{
    m_measure = measure;
    const QSignalBlocker block(m_measureBox);
    m_measureBox->setCurrentIndex(m_measureBox->findData(int(measure)));
    redraw();
}

void DomainView::redraw()
{
    const CalibStats* stats = m_document->stats();
    const RouterStats* r = stats ? stats->router(m_layer) : nullptr;
    const int rows = r ? int(r->domainTokens.rows) : 0;
    const int cols = r && rows > 0 ? int(r->numExperts) : 0;
    std::vector<double> values(size_t(rows) * size_t(cols));
    QStringList rowLabels, colLabels;
    std::vector<QPoint> dead;
    for (int d = 0; d < rows; ++d) {
        rowLabels << QString::fromStdString(stats->provenance.domains[size_t(d)]);
        for (int e = 0; e < cols; ++e) {
            values[size_t(d) * size_t(cols) + size_t(e)] = m_measure == Measure::Share
                ? routingValue(*r, RoutingMetric::DomainShare, e, d)
                : domainLift(*r, e, d);
            if (r->domainTokens.at(d, e) == 0)
                dead.push_back(QPoint(e, d));
        }
    }
    for (int e = 0; e < cols; ++e)
        colLabels << QString::number(e);
    if (m_measure == Measure::Share) {
        m_plot->setGradient(colorGradient(ColorMap::Viridis));
        m_plot->setValueRange(1, 0);
        m_plot->setValueTitle(tr("domain share"));
    } else {
        // lift is a ratio: centre the diverging map on 1 with a symmetric range
        double extent = 0;
        for (double v : values)
            if (!std::isnan(v))
                extent = std::max(extent, std::abs(v - 1.0));
        extent = std::max(extent, 1e-9);
        m_plot->setGradient(colorGradient(ColorMap::Diverging));
        m_plot->setValueRange(1.0 - extent, 1.0 + extent);
        m_plot->setValueTitle(tr("lift over all domains"));
    }
    m_plot->setMarkedCells(dead);
    m_plot->setMatrix(rows, cols, std::move(values), rowLabels, colLabels);
    updateHighlight();
}

void DomainView::followSelection()
{
    const Selection* s = m_document->selection();
    if (s->layer() >= 0 && s->layer() != m_layer && m_document->stats() && m_document->stats()->router(s->layer())) {
        setLayer(s->layer());
        return;
    }
    updateHighlight();
}

void DomainView::updateHighlight()
{
    const Selection* s = m_document->selection();
    m_plot->setHighlight(-1, s->layer() == m_layer ? s->expert() : -1);
}

CsvTable DomainView::csvTable() const
{
    CsvTable table;
    table.header << QStringLiteral("layer") << QStringLiteral("domain") << QStringLiteral("expert")
                 << QStringLiteral("domain_tokens") << QStringLiteral("domain_share") << QStringLiteral("token_share")
                 << QStringLiteral("lift");
    const CalibStats* stats = m_document->stats();
    const RouterStats* r = stats ? stats->router(m_layer) : nullptr;
    if (!r)
        return table;
    for (int64_t d = 0; d < r->domainTokens.rows; ++d)
        for (int64_t e = 0; e < r->numExperts; ++e)
            table.rows << QStringList {csvNumber(int64_t(m_layer)),
                                       QString::fromStdString(stats->provenance.domains[size_t(d)]), csvNumber(e),
                                       csvNumber(r->domainTokens.at(d, e)),
                                       csvNumber(routingValue(*r, RoutingMetric::DomainShare, e, d)),
                                       csvNumber(routingValue(*r, RoutingMetric::TokenShare, e)),
                                       csvNumber(domainLift(*r, e, d))};
    return table;
}

} // namespace moewb
