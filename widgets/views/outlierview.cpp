// SPDX-License-Identifier: MIT
#include "views/outlierview.h"

#include "document.h"
#include "models/outliertablemodel.h"
#include "selection.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QToolTip>
#include <QTableView>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace moewb {

OutlierView::OutlierView(Document* document, QWidget* parent)
    : PlotPanel(parent)
    , m_document(document)
    , m_model(new OutlierTableModel(this))
    , m_proxy(new QSortFilterProxyModel(this))
    , m_table(new QTableView(this))
    , m_plot(new QCustomPlot(this))
    , m_barsPlottable(new QCPBars(m_plot->xAxis, m_plot->yAxis))
    , m_modeBox(new QComboBox(this))
    , m_logBox(new QCheckBox(tr("Log scale"), this))
    , m_topBox(new QSpinBox(this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(OutlierTableModel::SortRole);
    m_table->setModel(m_proxy);
    m_table->setSortingEnabled(true);
    m_table->sortByColumn(OutlierTableModel::NameColumn, Qt::AscendingOrder);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->setVisible(false);
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 4);
    m_table->horizontalHeader()->setStretchLastSection(true);

    m_modeBox->addItem(tr("Linears of the selected layer"), int(BarMode::LayerLinears));
    m_modeBox->addItem(tr("Maximum per layer"), int(BarMode::MaxPerLayer));
    m_modeBox->addItem(tr("Maximum per expert (selected layer)"), int(BarMode::MaxPerExpert));
    m_modeBox->addItem(tr("Maximum per role (all layers)"), int(BarMode::MaxPerRole));
    m_topBox->setRange(0, 10000);
    m_topBox->setSpecialValueText(tr("all"));
    m_topBox->setPrefix(tr("top "));
    m_topBox->setValue(m_topN);
    m_topBox->setToolTip(tr("More bars than this: the highest ones, sorted, and one bar for the mean of the others "
                            "(the table lists every linear)"));
    toolRow()->addWidget(new QLabel(tr("Bars:"), this));
    toolRow()->addWidget(m_modeBox);
    toolRow()->addWidget(m_topBox);
    toolRow()->addWidget(m_logBox);
    finishToolRow();

    m_othersPlottable = new QCPBars(m_plot->xAxis, m_plot->yAxis);
    m_othersPlottable->setWidth(0.8);
    m_othersPlottable->setPen(QPen(QColor(120, 120, 120)));
    m_othersPlottable->setBrush(QColor(160, 160, 160, 150));
    m_othersPlottable->setSelectable(QCP::stNone);
    m_barsPlottable->setWidth(0.8);
    m_barsPlottable->setPen(QPen(QColor(33, 145, 140)));
    m_barsPlottable->setBrush(QColor(33, 145, 140, 170));
    m_plot->yAxis->setLabel(tr("outlier score"));
    m_plot->xAxis->setTickLabelRotation(90);
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->axisRect()->setRangeDrag(Qt::Horizontal);
    m_plot->axisRect()->setRangeZoom(Qt::Horizontal);

    auto* splitter = new QSplitter(Qt::Horizontal, this);
    splitter->addWidget(m_table);
    splitter->addWidget(m_plot);
    splitter->setStretchFactor(0, 2);
    splitter->setStretchFactor(1, 3);
    contentLayout()->addWidget(splitter);

    connect(m_modeBox, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] { setBarMode(BarMode(m_modeBox->currentData().toInt())); });
    connect(m_logBox, &QCheckBox::toggled, this, &OutlierView::setLogScale);
    connect(m_topBox, qOverload<int>(&QSpinBox::valueChanged), this, &OutlierView::setTopN);
    m_plot->setMouseTracking(true);
    connect(m_plot, &QCustomPlot::mouseMove, this, &OutlierView::onPlotMove);
    // Keyboard moves (from a current row) and clicks select; the current row Qt sets by itself
    // when the table first gets focus (from no current row) must not move the selection.
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current, const QModelIndex& previous) {
                if (previous.isValid() && current.isValid())
                    onTableCurrentChanged();
            });
    connect(m_table, &QAbstractItemView::clicked, this, &OutlierView::onTableCurrentChanged);
    connect(m_plot, &QCustomPlot::mouseRelease, this, &OutlierView::onPlotClick);
    connect(m_plot, &QCustomPlot::afterLayout, this, &OutlierView::updateTicks); // label density follows the width
    connect(m_document, &Document::statsChanged, this, &OutlierView::rebuild);
    connect(m_document->selection(), &Selection::changed, this, &OutlierView::followSelection);
    rebuild();
}

OutlierView::~OutlierView() = default;

void OutlierView::rebuild()
{
    m_model->setStats(m_document->stats());
    m_table->resizeColumnsToContents();
    m_barsLayer = -2;
    redraw();
}

int OutlierView::barLayer() const
{
    const CalibStats* stats = m_document->stats();
    const int sel = m_document->selection()->layer();
    if (sel >= 0)
        return sel;
    if (!stats)
        return -1;
    // no selection: the first MoE layer in MaxPerExpert mode, else layer 0
    if (m_mode == BarMode::MaxPerExpert)
        for (const LayerStats& l : stats->layers)
            if (l.isMoe)
                return int(l.layer);
    return stats->numLayers > 0 ? 0 : -1;
}

void OutlierView::setBarMode(BarMode mode)
{
    m_mode = mode;
    const QSignalBlocker block(m_modeBox);
    m_modeBox->setCurrentIndex(m_modeBox->findData(int(mode)));
    redraw();
}

void OutlierView::setTopN(int n)
{
    m_topN = std::max(0, n);
    {
        const QSignalBlocker block(m_topBox);
        m_topBox->setValue(m_topN);
    }
    redraw();
}

void OutlierView::setLogScale(bool log)
{
    {
        const QSignalBlocker block(m_logBox);
        m_logBox->setChecked(log);
    }
    if (log) {
        m_plot->yAxis->setScaleType(QCPAxis::stLogarithmic);
        m_plot->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    } else {
        m_plot->yAxis->setScaleType(QCPAxis::stLinear);
        m_plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
    // bars start at the axis' lower end: on a log axis that must be positive
    m_barsPlottable->setBaseValue(log ? 1.0 : 0.0);
    m_othersPlottable->setBaseValue(log ? 1.0 : 0.0);
    resetZoom();
}

void OutlierView::redraw()
{
    const CalibStats* stats = m_document->stats();
    const int layer = barLayer();
    m_barsLayer = layer;
    m_bars.clear();
    m_targets.clear();
    if (stats) {
        if (m_mode == BarMode::LayerLinears) {
            for (const LinearStats& l : stats->linears)
                if (l.layer == layer) {
                    QString label = QString::fromStdString(l.role);
                    if (l.expert >= 0)
                        label = QStringLiteral("e%1.%2")
                                    .arg(l.expert)
                                    .arg(label.mid(label.indexOf(QLatin1Char('.')) + 1));
                    m_bars.emplace_back(label, double(l.outlierScore));
                    m_targets.push_back({int(l.layer), int(l.expert), QString::fromStdString(l.name)});
                }
        } else if (m_mode == BarMode::MaxPerLayer) {
            std::vector<double> best(size_t(stats->numLayers), std::nan(""));
            for (const LinearStats& l : stats->linears)
                if (l.layer >= 0 && l.layer < stats->numLayers && !std::isnan(l.outlierScore)
                    && !(best[size_t(l.layer)] >= l.outlierScore))
                    best[size_t(l.layer)] = l.outlierScore;
            for (int64_t i = 0; i < stats->numLayers; ++i) {
                m_bars.emplace_back(QString::number(i), best[size_t(i)]);
                m_targets.push_back({int(i), -1, {}});
            }
        } else if (m_mode == BarMode::MaxPerExpert) {
            std::map<int64_t, std::pair<double, int>> best; // expert → (max score, linears)
            for (const LinearStats& l : stats->linears)
                if (l.layer == layer && l.expert >= 0 && !std::isnan(l.outlierScore)) {
                    auto it = best.find(l.expert);
                    if (it == best.end())
                        best[l.expert] = {l.outlierScore, 1};
                    else
                        it->second = {std::max(it->second.first, double(l.outlierScore)), it->second.second + 1};
                }
            for (const auto& [expert, value] : best) {
                m_bars.emplace_back(QString::number(expert), value.first);
                m_targets.push_back({layer, int(expert), {}, value.second});
            }
        } else {
            // roles in order of first appearance; the bar selects the linear with the highest score
            std::vector<std::string> roles;
            std::map<std::string, size_t> best; // role → linear index
            std::map<std::string, int> count;
            for (size_t i = 0; i < stats->linears.size(); ++i) {
                const LinearStats& l = stats->linears[i];
                if (std::isnan(l.outlierScore))
                    continue;
                auto it = best.find(l.role);
                if (it == best.end()) {
                    roles.push_back(l.role);
                    best[l.role] = i;
                } else if (stats->linears[it->second].outlierScore < l.outlierScore) {
                    it->second = i;
                }
                ++count[l.role];
            }
            for (const std::string& role : roles) {
                const LinearStats& l = stats->linears[best[role]];
                m_bars.emplace_back(QString::fromStdString(role), double(l.outlierScore));
                m_targets.push_back({int(l.layer), int(l.expert), QString::fromStdString(l.name), count[role]});
            }
        }
    }
    limitBars();
    QVector<double> keys, values, otherKeys, otherValues;
    for (size_t i = 0; i < m_bars.size(); ++i) {
        const bool other = m_othersCount > 0 && i + 1 == m_bars.size();
        (other ? otherKeys : keys) << double(i);
        (other ? otherValues : values) << (std::isnan(m_bars[i].second) ? 0.0 : m_bars[i].second);
    }
    m_barsPlottable->setData(keys, values);
    m_othersPlottable->setData(otherKeys, otherValues);
    m_tickWidth = -1;
    updateTicks();
    QString axis = m_mode == BarMode::LayerLinears ? tr("linear of layer %1").arg(layer)
        : m_mode == BarMode::MaxPerLayer          ? tr("layer")
        : m_mode == BarMode::MaxPerExpert         ? tr("expert of layer %1").arg(layer)
                                                  : tr("role (all layers)");
    if (m_othersCount > 0)
        axis += tr(": top %1 of %2, grey = mean of the rest").arg(m_bars.size() - 1)
                    .arg(m_bars.size() - 1 + size_t(m_othersCount));
    m_plot->xAxis->setLabel(axis);
    resetZoom();
    followSelection();
}

void OutlierView::limitBars()
{
    m_othersCount = 0;
    if (m_topN <= 0 || int(m_bars.size()) <= m_topN)
        return;
    // the N highest, sorted (NaN last), and one bar for the mean of the rest
    std::vector<size_t> order(m_bars.size());
    std::iota(order.begin(), order.end(), size_t(0));
    const auto key = [this](size_t i) { return std::isnan(m_bars[i].second) ? -INFINITY : m_bars[i].second; };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
    std::vector<std::pair<QString, double>> bars;
    std::vector<BarTarget> targets;
    for (int k = 0; k < m_topN; ++k) {
        bars.push_back(m_bars[order[size_t(k)]]);
        targets.push_back(m_targets[order[size_t(k)]]);
    }
    double sum = 0;
    int n = 0;
    m_othersMin = INFINITY;
    m_othersMax = -INFINITY;
    for (size_t k = size_t(m_topN); k < order.size(); ++k) {
        const double v = m_bars[order[k]].second;
        if (std::isnan(v))
            continue;
        sum += v;
        ++n;
        m_othersMin = std::min(m_othersMin, v);
        m_othersMax = std::max(m_othersMax, v);
    }
    m_othersCount = int(order.size()) - m_topN;
    bars.emplace_back(tr("others (%1)").arg(m_othersCount), n > 0 ? sum / n : std::nan(""));
    targets.push_back({-1, -1, {}, m_othersCount});
    m_bars = std::move(bars);
    m_targets = std::move(targets);
}

QString OutlierView::barToolTip(int i) const
{
    if (i < 0 || i >= int(m_bars.size()))
        return {};
    const BarTarget& t = m_targets[size_t(i)];
    const double v = m_bars[size_t(i)].second;
    if (m_othersCount > 0 && i == int(m_bars.size()) - 1)
        return tr("<b>%1 more bars</b><br>mean score: %2<br>lowest: %3, highest: %4<br>(every linear is in the table)")
            .arg(m_othersCount)
            .arg(v, 0, 'g', 6)
            .arg(m_othersMin, 0, 'g', 6)
            .arg(m_othersMax, 0, 'g', 6);
    QString text = QStringLiteral("<b>%1</b><br>").arg(m_bars[size_t(i)].first.toHtmlEscaped());
    if (!t.linear.isEmpty())
        text += t.linear.toHtmlEscaped() + QStringLiteral("<br>");
    text += tr("outlier score: %1").arg(v, 0, 'g', 6);
    if (t.count > 1)
        text += tr("<br>highest of %1 linears").arg(t.count);
    return text;
}

void OutlierView::onPlotMove(QMouseEvent* event)
{
    if (event->buttons() != Qt::NoButton || !m_plot->axisRect()->rect().contains(event->pos())) {
        QToolTip::hideText();
        return;
    }
    const int i = int(std::lround(m_plot->xAxis->pixelToCoord(event->pos().x())));
    const QString text = barToolTip(i);
    if (text.isEmpty())
        QToolTip::hideText();
    else
        QToolTip::showText(m_plot->mapToGlobal(event->pos()), text, m_plot);
}

void OutlierView::updateTicks()
{
    // Vertical labels need a line height (and a gap) each: label every n-th bar so that they fit.
    const int width = m_plot->axisRect()->width();
    if (width == m_tickWidth)
        return;
    m_tickWidth = width;
    const double perBar = double(width) / double(m_bars.size() + 1); // the range has half a bar of room each side
    const double need = QFontMetrics(m_plot->xAxis->tickLabelFont()).height() + 4;
    const int step = std::max(1, int(std::ceil(need / std::max(perBar, 1e-3))));
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    const size_t n = m_bars.size();
    const size_t others = m_othersCount > 0 ? n - 1 : n; // the "others" bar is always labelled
    for (size_t i = 0; i < others; i += size_t(step))
        if (others == n || i + size_t(step) <= others) // not too close to the "others" label
            ticker->addTick(double(i), m_bars[i].first);
    if (others < n)
        ticker->addTick(double(others), m_bars[others].first);
    m_plot->xAxis->setTicker(ticker);
}

void OutlierView::resetZoom()
{
    // every bar whole: the keys run 0 … n−1, a bar is 0.8 wide
    m_plot->rescaleAxes();
    m_plot->xAxis->setRange(-0.7, std::max<double>(double(m_bars.size()), 1.0) - 0.3);
    m_plot->replot();
}

void OutlierView::followSelection()
{
    const Selection* s = m_document->selection();
    if (m_mode != BarMode::MaxPerLayer && barLayer() != m_barsLayer) {
        redraw(); // ends here again
        return;
    }
    // highlight the selected bar in a second colour via the selection decorator
    QCPDataSelection selected;
    for (size_t i = 0; i < m_targets.size(); ++i) {
        const BarTarget& t = m_targets[i];
        if (t.layer < 0 && t.linear.isEmpty())
            continue; // "others"
        bool hit = false;
        if (!t.linear.isEmpty()) // a linear's bar: that linear, or every linear of the selected expert
            hit = s->linear().isEmpty() ? s->expert() >= 0 && t.layer == s->layer() && t.expert == s->expert()
                                        : t.linear == s->linear();
        else if (t.expert >= 0)
            hit = t.layer == s->layer() && t.expert == s->expert();
        else
            hit = t.layer == s->layer();
        if (hit)
            selected.addDataRange(QCPDataRange(int(i), int(i) + 1));
    }
    m_barsPlottable->setSelectable(QCP::stMultipleDataRanges);
    m_barsPlottable->setSelection(selected);
    m_plot->replot(QCustomPlot::rpQueuedReplot);

    const int row = m_model->rowOf(s->linear());
    const QModelIndex index = row >= 0 ? m_proxy->mapFromSource(m_model->index(row, 0)) : QModelIndex();
    if (index.isValid() && index.row() != m_table->currentIndex().row()) {
        m_following = true;
        m_table->setCurrentIndex(index);
        m_table->scrollTo(index);
        m_following = false;
    } else if (!index.isValid() && s->layer() >= 0) {
        // a layer or an expert: bring its first linear into view without selecting a row
        if (const CalibStats* stats = m_document->stats())
            for (size_t i = 0; i < stats->linears.size(); ++i)
                if (stats->linears[i].layer == s->layer()
                    && (s->expert() < 0 || stats->linears[i].expert == s->expert())) {
                    m_table->scrollTo(m_proxy->mapFromSource(m_model->index(int(i), 0)),
                                      QAbstractItemView::PositionAtTop);
                    break;
                }
    }
}

void OutlierView::onTableCurrentChanged()
{
    if (m_following)
        return;
    const QModelIndex source = m_proxy->mapToSource(m_table->currentIndex());
    if (const LinearStats* l = m_model->linearAt(source.row()))
        m_document->selection()->select(int(l->layer), int(l->expert), QString::fromStdString(l->name));
}

void OutlierView::onPlotClick(QMouseEvent* event)
{
    if (event->button() != Qt::LeftButton || !m_plot->axisRect()->rect().contains(event->pos()))
        return;
    const int i = int(std::lround(m_plot->xAxis->pixelToCoord(event->pos().x())));
    if (i < 0 || i >= int(m_targets.size()))
        return;
    const BarTarget& t = m_targets[size_t(i)];
    if (t.layer < 0 && t.linear.isEmpty())
        return; // "others"
    m_document->selection()->select(t.layer, t.expert, t.linear);
}

CsvTable OutlierView::csvTable() const
{
    // The whole table (every linear), so the CSV equals the stats whatever the bar mode.
    CsvTable table;
    table.header << QStringLiteral("name") << QStringLiteral("layer") << QStringLiteral("expert")
                 << QStringLiteral("role") << QStringLiteral("in_features") << QStringLiteral("out_features")
                 << QStringLiteral("tokens") << QStringLiteral("outlier_score") << QStringLiteral("outlier_column");
    if (const CalibStats* stats = m_document->stats())
        for (const LinearStats& l : stats->linears)
            table.rows << QStringList {QString::fromStdString(l.name), csvNumber(l.layer), csvNumber(l.expert),
                                       QString::fromStdString(l.role), csvNumber(l.inFeatures),
                                       csvNumber(l.outFeatures), csvNumber(l.tokens), csvNumber(l.outlierScore),
                                       csvNumber(l.outlierColumn)};
    return table;
}

} // namespace moewb
