// SPDX-License-Identifier: MIT
#include "views/routingheatmapview.h"

#include "alloc/predictedcost.h"
#include "appresources.h"
#include "document.h"
#include "plot/matrixplot.h"
#include "selection.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moewb {

namespace {
const int64_t kCostWidths[] = {2, 3, 4, 8}; // the budget solver's candidates (AllocOptions::candidates)

std::vector<int64_t> moeLayers(const CalibStats& stats)
{
    std::vector<int64_t> layers;
    for (const LayerStats& l : stats.layers)
        if (l.isMoe)
            layers.push_back(l.layer);
    return layers;
}
} // namespace

RoutingHeatmapView::RoutingHeatmapView(Document* document, QWidget* parent)
    : PlotPanel(parent)
    , m_document(document)
    , m_plot(new MatrixPlot(this))
    , m_metricBox(new QComboBox(this))
    , m_domainBox(new QComboBox(this))
    , m_colorBox(new QComboBox(this))
    , m_sortBox(new QCheckBox(tr("Sort by value"), this))
    , m_deadLabel(new QLabel(this))
{
    for (const RoutingMetricInfo& info : routingMetrics()) {
        m_metricBox->addItem(tr(info.name), int(info.metric));
        m_metricBox->setItemData(m_metricBox->count() - 1, QString::fromUtf8(info.formula), Qt::ToolTipRole);
    }
    for (int64_t bits : kCostWidths) {
        m_metricBox->addItem(tr("predicted cost at %1 bits").arg(bits), int(-bits));
        m_metricBox->setItemData(m_metricBox->count() - 1,
                                 tr("Predicted KL divergence (nats/token) if every linear of the expert were "
                                    "quantized to %1 bits: the sum of the budget's Fisher cost over the expert's "
                                    "linears. Needs statistics from calibrate --fisher.")
                                     .arg(bits),
                                 Qt::ToolTipRole);
    }
    m_domainBox->setToolTip(tr("Domain for the domain share"));
    m_colorBox->addItem(tr("Auto colours"), -1);
    m_colorBox->addItem(QStringLiteral("viridis"), int(ColorMap::Viridis));
    m_colorBox->addItem(QStringLiteral("magma"), int(ColorMap::Magma));
    m_colorBox->addItem(tr("diverging"), int(ColorMap::Diverging));
    m_sortBox->setToolTip(tr("Order the expert columns by the selected layer's value (descending)"));

    toolRow()->addWidget(new QLabel(tr("Metric:"), this));
    toolRow()->addWidget(m_metricBox);
    toolRow()->addWidget(m_domainBox);
    toolRow()->addWidget(m_colorBox);
    toolRow()->addWidget(m_sortBox);
    toolRow()->addWidget(m_deadLabel);
    finishToolRow();
    contentLayout()->addWidget(m_plot->createScrollFrame(this));

    m_plot->setAxisTitles(tr("expert"), tr("layer"));
    m_plot->setTooltipProvider([this](int row, int col) { return tooltip(row, col); });
    connect(m_plot, &MatrixPlot::cellClicked, this, &RoutingHeatmapView::onCellClicked);
    connect(m_plot, &MatrixPlot::cellsDragged, this,
            [this](int r0, int c0, int r1, int c1, Qt::KeyboardModifiers mods) {
                if (r1 < 0 || r1 >= int(m_matrix.layers.size()))
                    return;
                selectRectangle(r0, c0, r1, c1, mods & Qt::ControlModifier);
                m_anchor = QPoint(c0, r0);
                m_document->selection()->select(int(m_matrix.layers[size_t(r1)]), expertAtColumn(c1));
            });
    connect(m_metricBox, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] {
                const int data = m_metricBox->currentData().toInt();
                if (data < 0)
                    setCostBits(-data);
                else
                    setMetric(RoutingMetric(data), m_domainBox->currentIndex());
            });
    connect(m_domainBox, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this](int d) { setMetric(m_metric, d); });
    connect(m_colorBox, qOverload<int>(&QComboBox::currentIndexChanged), this, &RoutingHeatmapView::redraw);
    connect(m_sortBox, &QCheckBox::toggled, this, &RoutingHeatmapView::setSortedByValue);
    connect(m_document, &Document::statsChanged, this, &RoutingHeatmapView::rebuild);
    connect(m_document, &Document::costTableChanged, this, &RoutingHeatmapView::rebuild);
    connect(m_document->selection(), &Selection::changed, this, &RoutingHeatmapView::followSelection);
    connect(m_document->selection(), &Selection::expertsChanged, this, &RoutingHeatmapView::followExperts);
    rebuild();
}

RoutingHeatmapView::~RoutingHeatmapView() = default;

QCustomPlot* RoutingHeatmapView::plot() const
{
    return m_plot;
}

void RoutingHeatmapView::setMetric(RoutingMetric metric, int domain)
{
    const CalibStats* stats = m_document->stats();
    const int domains = stats ? int(stats->provenance.domains.size()) : 0;
    if (metric == RoutingMetric::DomainShare && domains > 0)
        domain = std::clamp(domain, 0, domains - 1);
    m_metric = metric;
    m_domain = domain;
    m_costBits = 0;
    {
        const QSignalBlocker block(m_domainBox);
        if (domain >= 0 && domain < m_domainBox->count())
            m_domainBox->setCurrentIndex(domain);
    }
    selectModeInBox();
    redraw();
}

void RoutingHeatmapView::setCostBits(int64_t bits)
{
    const auto table = m_document->costTable();
    const bool measured = table && std::find(table->candidates.begin(), table->candidates.end(), bits) != table->candidates.end();
    if (bits <= 0 || !measured)
        return setMetric(m_metric, m_domain);
    m_costBits = bits;
    selectModeInBox();
    redraw();
}

void RoutingHeatmapView::selectModeInBox()
{
    const QSignalBlocker block(m_metricBox);
    m_metricBox->setCurrentIndex(m_metricBox->findData(m_costBits > 0 ? int(-m_costBits) : int(m_metric)));
    m_domainBox->setVisible(m_costBits == 0 && m_metric == RoutingMetric::DomainShare);
}

QString RoutingHeatmapView::valueTitle() const
{
    if (m_costBits > 0)
        return tr("predicted cost at %1 bits (nats/token)").arg(m_costBits);
    const CalibStats* stats = m_document->stats();
    QString title = tr(routingMetricInfo(m_metric).name);
    if (m_metric == RoutingMetric::DomainShare && stats && m_domain >= 0
        && m_domain < int(stats->provenance.domains.size()))
        title += QStringLiteral(" (%1)").arg(QString::fromStdString(stats->provenance.domains[size_t(m_domain)]));
    return title;
}

void RoutingHeatmapView::setSortedByValue(bool sorted)
{
    m_sorted = sorted;
    const QSignalBlocker block(m_sortBox);
    m_sortBox->setChecked(sorted);
    redraw();
}

void RoutingHeatmapView::rebuild()
{
    const CalibStats* stats = m_document->stats();
    {
        const QSignalBlocker block(m_domainBox);
        m_domainBox->clear();
        if (stats)
            for (const std::string& d : stats->provenance.domains)
                m_domainBox->addItem(QString::fromStdString(d));
    }
    const bool hasDomains = stats && !stats->provenance.domains.empty();
    const int domainIndex = m_metricBox->findData(int(RoutingMetric::DomainShare));
    const QVariant flags = hasDomains ? QVariant(int(Qt::ItemIsSelectable | Qt::ItemIsEnabled)) : QVariant(0);
    m_metricBox->setItemData(domainIndex, flags, Qt::UserRole - 1); // item flags: disabled without domains
    if (!hasDomains && m_metric == RoutingMetric::DomainShare)
        m_metric = RoutingMetric::TokenShare;
    const auto table = m_document->costTable();
    for (int64_t bits : kCostWidths) {
        const bool measured = table && m_document->config()
            && std::find(table->candidates.begin(), table->candidates.end(), bits) != table->candidates.end();
        m_metricBox->setItemData(m_metricBox->findData(int(-bits)),
                                 measured ? QVariant(int(Qt::ItemIsSelectable | Qt::ItemIsEnabled)) : QVariant(0),
                                 Qt::UserRole - 1);
    }
    const int64_t costBits = m_costBits;
    setMetric(m_metric, hasDomains ? std::max(m_domain, 0) : -1);
    if (costBits > 0)
        setCostBits(costBits); // stays in the cost mode while the table has that width
}

void RoutingHeatmapView::redraw()
{
    const CalibStats* stats = m_document->stats();
    const auto table = m_document->costTable();
    if (m_costBits > 0 && stats && table && m_document->config())
        m_matrix = expertCostMatrix(*table, *m_document->config(), moeLayers(*stats), m_costBits);
    else
        m_matrix = stats ? routingMatrix(*stats, m_metric, m_domain) : RoutingMatrix {};
    const int rows = int(m_matrix.layers.size());
    const int cols = int(m_matrix.experts);
    m_columnOrder.resize(size_t(cols));
    std::iota(m_columnOrder.begin(), m_columnOrder.end(), int64_t(0));
    m_sortRow = -1;
    if (m_sorted && rows > 0) {
        const int sel = rowOfLayer(m_document->selection()->layer());
        m_sortRow = sel >= 0 ? sel : 0;
        const size_t row = size_t(m_sortRow);
        m_columnOrder = sortedOrder(std::vector<double>(m_matrix.values.begin() + row * cols,
                                                        m_matrix.values.begin() + (row + 1) * cols));
    }
    std::vector<double> values(size_t(rows) * size_t(cols));
    QStringList rowLabels, colLabels;
    std::vector<QPoint> dead;
    for (int r = 0; r < rows; ++r) {
        rowLabels << QString::number(m_matrix.layers[size_t(r)]);
        const RouterStats& router = stats->layers[size_t(m_matrix.layers[size_t(r)])].router;
        for (int c = 0; c < cols; ++c) {
            const int64_t e = m_columnOrder[size_t(c)];
            values[size_t(r) * size_t(cols) + size_t(c)] = m_matrix.at(size_t(r), e);
            if (std::binary_search(router.deadExperts.begin(), router.deadExperts.end(), e))
                dead.push_back(QPoint(c, r));
        }
    }
    for (int c = 0; c < cols; ++c)
        colLabels << QString::number(m_columnOrder[size_t(c)]);

    const bool diverging = m_costBits == 0 && routingMetricInfo(m_metric).diverging;
    const int colour = m_colorBox->currentData().toInt();
    const ColorMap map = colour >= 0 ? ColorMap(colour) : diverging ? ColorMap::Diverging : ColorMap::Viridis;
    m_plot->setGradient(colorGradient(map));
    if (diverging) { // centre 0 so that "uniform" is the neutral colour
        double extent = 0;
        for (double v : values)
            if (!std::isnan(v))
                extent = std::max(extent, std::abs(v));
        m_plot->setValueRange(-std::max(extent, 1e-9), std::max(extent, 1e-9));
    } else {
        m_plot->setValueRange(1, 0); // fit the data
    }
    m_plot->setValueTitle(valueTitle());
    m_plot->setMarkedCells(dead);
    m_deadLabel->setText(dead.empty() ? QString()
                                      : tr("<span style='color:#e61e1e'>✕</span> never routed: %1").arg(dead.size()));
    m_plot->setMatrix(rows, cols, std::move(values), rowLabels, colLabels);
    followExperts();
    followSelection();
}

int RoutingHeatmapView::rowOfLayer(int layer) const
{
    const auto it = std::find(m_matrix.layers.begin(), m_matrix.layers.end(), int64_t(layer));
    return it == m_matrix.layers.end() ? -1 : int(it - m_matrix.layers.begin());
}

int RoutingHeatmapView::expertAtColumn(int col) const
{
    return col >= 0 && col < int(m_columnOrder.size()) ? int(m_columnOrder[size_t(col)]) : -1;
}

QPoint RoutingHeatmapView::cellCenter(int layer, int expert) const
{
    const auto it = std::find(m_columnOrder.begin(), m_columnOrder.end(), int64_t(expert));
    const int row = rowOfLayer(layer);
    if (row < 0 || it == m_columnOrder.end())
        return {-1, -1};
    return m_plot->cellCenter(row, int(it - m_columnOrder.begin()));
}

void RoutingHeatmapView::followSelection()
{
    const Selection* s = m_document->selection();
    const int row = rowOfLayer(s->layer());
    if (m_sorted && row >= 0 && row != m_sortRow) {
        redraw(); // the column order follows the selected layer; redraw() ends here again
        return;
    }
    int col = -1;
    if (row >= 0 && s->expert() >= 0) {
        const auto it = std::find(m_columnOrder.begin(), m_columnOrder.end(), int64_t(s->expert()));
        col = it == m_columnOrder.end() ? -1 : int(it - m_columnOrder.begin());
    }
    if (row < 0)
        m_plot->setHighlight(-1, -1);
    else
        m_plot->setHighlight(row, col); // col -1: the whole layer row
}

void RoutingHeatmapView::followExperts()
{
    std::vector<QPoint> cells;
    for (const auto& [layer, expert] : m_document->selection()->experts()) {
        const int row = rowOfLayer(layer);
        const auto it = std::find(m_columnOrder.begin(), m_columnOrder.end(), int64_t(expert));
        if (row >= 0 && it != m_columnOrder.end())
            cells.emplace_back(int(it - m_columnOrder.begin()), row);
    }
    m_plot->setSelectedCells(cells);
}

void RoutingHeatmapView::selectRectangle(int ra, int ca, int rb, int cb, bool add)
{
    Selection* s = m_document->selection();
    QList<QPair<int, int>> cells = add ? s->experts() : QList<QPair<int, int>>{};
    const int r0 = std::max(0, std::min(ra, rb)), r1 = std::max(ra, rb);
    const int c0 = std::max(0, std::min(ca, cb)), c1 = std::max(ca, cb);
    for (int r = r0; r <= r1 && r < int(m_matrix.layers.size()); ++r)
        for (int c = c0; c <= c1; ++c)
            if (expertAtColumn(c) >= 0)
                cells.append({int(m_matrix.layers[size_t(r)]), expertAtColumn(c)});
    s->setExperts(cells);
}

void RoutingHeatmapView::onCellClicked(int row, int col)
{
    if (row < 0 || row >= int(m_matrix.layers.size()))
        return;
    Selection* s = m_document->selection();
    const int layer = int(m_matrix.layers[size_t(row)]);
    const int expert = expertAtColumn(col);
    const Qt::KeyboardModifiers mods = m_plot->lastClickModifiers();
    if ((mods & Qt::ShiftModifier) && m_anchor.x() >= 0 && expert >= 0) {
        selectRectangle(m_anchor.y(), m_anchor.x(), row, col, mods & Qt::ControlModifier);
    } else if ((mods & Qt::ControlModifier) && expert >= 0) {
        s->toggleExpert(layer, expert);
        m_anchor = QPoint(col, row);
    } else {
        s->setExperts(expert >= 0 ? QList<QPair<int, int>>{{layer, expert}} : QList<QPair<int, int>>{});
        m_anchor = QPoint(col, row);
    }
    s->select(layer, expert);
}

QString RoutingHeatmapView::tooltip(int row, int col) const
{
    const CalibStats* stats = m_document->stats();
    const int expert = expertAtColumn(col);
    if (!stats || row < 0 || row >= int(m_matrix.layers.size()) || expert < 0)
        return {};
    const int layer = int(m_matrix.layers[size_t(row)]);
    const RouterStats& r = stats->layers[size_t(layer)].router;
    if (expert >= r.numExperts)
        return tr("Layer %1 has %2 experts").arg(layer).arg(r.numExperts);
    const size_t e = size_t(expert);
    QString text = tr("<b>Layer %1, expert %2</b><br>%3: %4<br>tokens routed: %5 of %6 (top-%7)<br>"
                      "top-1: %8<br>routing-weight mass: %9<br>router probability mass: %10")
                       .arg(layer)
                       .arg(expert)
                       .arg(valueTitle())
                       .arg(m_matrix.at(size_t(row), expert), 0, 'g', m_costBits > 0 ? 12 : 6)
                       .arg(r.expertTokens[e])
                       .arg(r.tokens)
                       .arg(r.topK)
                       .arg(r.expertTop1[e])
                       .arg(r.expertWeightMass[e], 0, 'g', 6)
                       .arg(r.expertProbMass[e], 0, 'g', 6);
    for (int64_t d = 0; d < r.domainTokens.rows; ++d)
        text += tr("<br>%1: %2 tokens")
                    .arg(QString::fromStdString(stats->provenance.domains[size_t(d)]))
                    .arg(r.domainTokens.at(d, expert));
    if (r.expertTokens[e] == 0)
        text += tr("<br><font color=red>never routed (dead)</font>");
    return text;
}

CsvTable RoutingHeatmapView::csvTable() const
{
    CsvTable table;
    const CalibStats* stats = m_document->stats();
    table.header << QStringLiteral("layer") << QStringLiteral("expert") << QStringLiteral("expert_tokens")
                 << QStringLiteral("expert_top1") << QStringLiteral("expert_weight_mass")
                 << QStringLiteral("expert_prob_mass") << QStringLiteral("router_tokens") << QStringLiteral("top_k");
    if (stats)
        for (const std::string& d : stats->provenance.domains)
            table.header << QStringLiteral("domain_tokens:") + QString::fromStdString(d);
    table.header << QStringLiteral("dead")
                 << (m_costBits > 0 ? QStringLiteral("predicted_cost_%1bit").arg(m_costBits)
                                    : QString::fromUtf8(routingMetricInfo(m_metric).name));
    if (!stats)
        return table;
    for (size_t row = 0; row < m_matrix.layers.size(); ++row) {
        const int64_t layer = m_matrix.layers[row];
        const RouterStats& r = stats->layers[size_t(layer)].router;
        for (int64_t e = 0; e < r.numExperts; ++e) {
            QStringList line;
            line << csvNumber(layer) << csvNumber(e) << csvNumber(r.expertTokens[size_t(e)])
                 << csvNumber(r.expertTop1[size_t(e)]) << csvNumber(r.expertWeightMass[size_t(e)])
                 << csvNumber(r.expertProbMass[size_t(e)]) << csvNumber(r.tokens) << csvNumber(r.topK);
            for (int64_t d = 0; d < r.domainTokens.rows; ++d)
                line << csvNumber(r.domainTokens.at(d, e));
            line << (r.expertTokens[size_t(e)] == 0 ? QStringLiteral("1") : QStringLiteral("0"))
                 << csvNumber(m_matrix.at(row, e));
            table.rows << line;
        }
    }
    return table;
}

} // namespace moewb
