// SPDX-License-Identifier: MIT
#include "results/resultsview.h"

#include "results/resultsmodel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

namespace moewb {

ResultsView::ResultsView(ResultsModel* model, QWidget* parent)
    : PlotPanel(parent)
    , m_model(model)
    , m_proxy(new QSortFilterProxyModel(this))
    , m_table(new QTableView(this))
    , m_plot(new QCustomPlot(this))
    , m_points(m_plot->addGraph())
    , m_front(m_plot->addGraph())
    , m_selectedPoint(m_plot->addGraph())
    , m_intervalPoints(m_plot->addGraph())
    , m_errorBars(new QCPErrorBars(m_plot->xAxis, m_plot->yAxis))
    , m_qualityBox(new QComboBox(this))
    , m_loadButton(new QPushButton(tr("Load plan"), this))
    , m_removeButton(new QPushButton(tr("Remove run"), this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(ResultsModel::SortRole);
    m_table->setModel(m_proxy);
    m_table->setSortingEnabled(true);
    m_table->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder); // runs in the order they were made
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->setVisible(false);
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 4);
    m_table->horizontalHeader()->setStretchLastSection(true);

    m_loadButton->setToolTip(tr("Load the selected run's plan into the editor"));
    m_removeButton->setToolTip(tr("Remove the selected run from the session"));
    m_qualityBox->addItem(tr("Perplexity"), int(ResultsModel::Quality::Perplexity));
    m_qualityBox->addItem(tr("KL divergence"), int(ResultsModel::Quality::Kld));
    m_qualityBox->setToolTip(tr("The quality axis of the plot and of the Pareto front"));
    toolRow()->addWidget(new QLabel(tr("Quality:"), this));
    toolRow()->addWidget(m_qualityBox);
    toolRow()->addWidget(m_loadButton);
    toolRow()->addWidget(m_removeButton);
    toolRow()->addWidget(new QLabel(tr("★ = on the Pareto front (no run is both smaller and better)"), this), 1);
    finishToolRow();

    const QColor runs(59, 82, 139), front(230, 120, 20), selected(200, 30, 30);
    m_points->setLineStyle(QCPGraph::lsNone);
    m_points->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, runs, QColor(runs.red(), runs.green(), runs.blue(), 90), 9));
    m_points->setName(tr("runs"));
    m_front->setLineStyle(QCPGraph::lsLine);
    m_front->setPen(QPen(front, 2));
    m_front->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, front, front, 10));
    m_front->setName(tr("Pareto front"));
    m_selectedPoint->setLineStyle(QCPGraph::lsNone);
    m_selectedPoint->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(selected, 2.5), Qt::NoBrush, 17));
    m_selectedPoint->setName(tr("selected"));
    m_intervalPoints->setLineStyle(QCPGraph::lsNone);
    m_intervalPoints->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssNone));
    m_intervalPoints->removeFromLegend();
    m_errorBars->setDataPlottable(m_intervalPoints);
    m_errorBars->setErrorType(QCPErrorBars::etValueError);
    m_errorBars->setPen(QPen(runs, 1.5));
    m_errorBars->setWhiskerWidth(8);
    m_errorBars->setName(tr("95 % interval vs uniform"));
    m_plot->xAxis->setLabel(tr("model size (MB)"));
    m_plot->yAxis->setLabel(tr("perplexity (lower is better)"));
    m_plot->legend->setVisible(true);
    m_plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);

    auto* splitter = new QSplitter(Qt::Horizontal, this);
    splitter->addWidget(m_table);
    splitter->addWidget(m_plot);
    splitter->setStretchFactor(0, 3);
    splitter->setStretchFactor(1, 2);
    splitter->setSizes({640, 460});
    contentLayout()->addWidget(splitter);

    connect(m_model, &ResultsModel::runsChanged, this, &ResultsView::rebuild);
    connect(m_qualityBox, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] { setQualityAxis(m_qualityBox->currentData().toInt()); });
    // A click moves the current row too: each run is selected (and its plan requested) once.
    connect(m_table, &QAbstractItemView::clicked, this, [this](const QModelIndex& index) {
        if (m_proxy->mapToSource(index).row() != m_selected)
            selectRun(m_proxy->mapToSource(index).row());
    });
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current, const QModelIndex& previous) {
                // keyboard moves and clicks, not the current row Qt sets when the table gets focus
                if (previous.isValid() && current.isValid() && m_proxy->mapToSource(current).row() != m_selected)
                    selectRun(m_proxy->mapToSource(current).row());
            });
    connect(m_plot, &QCustomPlot::mousePress, this, &ResultsView::onPlotClick);
    connect(m_loadButton, &QPushButton::clicked, this, [this] {
        if (m_selected >= 0 && !m_model->run(m_selected).planJson.isEmpty())
            emit planRequested(m_model->run(m_selected));
    });
    connect(m_removeButton, &QPushButton::clicked, this, &ResultsView::removeSelected);
    rebuild();
}

ResultsView::~ResultsView() = default;

void ResultsView::setQualityAxis(int axis)
{
    if (axis == int(ResultsModel::Quality::Kld) && !m_model->hasKld())
        axis = int(ResultsModel::Quality::Perplexity);
    {
        const QSignalBlocker block(m_qualityBox);
        m_qualityBox->setCurrentIndex(m_qualityBox->findData(axis));
    }
    m_model->setQualityAxis(ResultsModel::Quality(axis)); // runsChanged → rebuild
    rebuild();
}

void ResultsView::rebuild()
{
    if (m_selected >= m_model->rowCount())
        m_selected = -1;
    // the KLD columns and axis only when some run has a KLD
    const bool kld = m_model->hasKld();
    m_table->setColumnHidden(ResultsModel::KldColumn, !kld);
    m_table->setColumnHidden(ResultsModel::SameTopColumn, !kld);
    m_qualityBox->setItemData(1, kld ? QVariant(int(Qt::ItemIsSelectable | Qt::ItemIsEnabled)) : QVariant(0),
                              Qt::UserRole - 1);
    if (!kld && m_model->qualityAxis() == ResultsModel::Quality::Kld) {
        const QSignalBlocker block(m_qualityBox);
        m_qualityBox->setCurrentIndex(0);
        m_model->setQualityAxis(ResultsModel::Quality::Perplexity); // emits runsChanged: rebuilds again
        return;
    }
    const ResultsModel::Quality axis = m_model->qualityAxis();
    m_plot->yAxis->setLabel(axis == ResultsModel::Quality::Kld ? tr("KL divergence from the unquantized model "
                                                                    "(nats, lower is better)")
                                                               : tr("perplexity (lower is better)"));
    QVector<double> x, y, fx, fy;
    QVector<double> ix, iy, minus, plus;
    for (const RunResult& r : m_model->runs()) {
        const double q = ResultsModel::quality(r, axis);
        if (q != q)
            continue;
        x << double(r.modelBytes) / 1e6;
        y << q;
        // the paired interval of (this − uniform), drawn around this run's KLD
        if (axis == ResultsModel::Quality::Kld && r.hasKldInterval()) {
            const double centre = r.kldDiff == r.kldDiff ? r.kldDiff : (r.kldLo + r.kldHi) / 2;
            ix << double(r.modelBytes) / 1e6;
            iy << q;
            minus << std::max(0.0, centre - r.kldLo);
            plus << std::max(0.0, r.kldHi - centre);
        }
    }
    for (int row : m_model->paretoRows()) {
        fx << double(m_model->run(row).modelBytes) / 1e6;
        fy << ResultsModel::quality(m_model->run(row), axis);
    }
    m_points->setData(x, y);
    m_intervalPoints->setData(ix, iy);
    m_errorBars->setData(minus, plus);
    m_errorBars->setVisible(!ix.isEmpty());
    if (ix.isEmpty())
        m_errorBars->removeFromLegend();
    else
        m_errorBars->addToLegend();
    m_front->setData(fx, fy, true); // already in size order; a front is monotone
    // Labels on the front only: the runs behind it are often close together (their names are in
    // the table and the tooltip).
    m_plot->clearItems();
    for (int row : m_model->paretoRows()) {
        const RunResult& r = m_model->run(row);
        auto* text = new QCPItemText(m_plot);
        text->position->setCoords(double(r.modelBytes) / 1e6, ResultsModel::quality(r, axis));
        text->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        text->setPadding(QMargins(6, 0, 0, 4));
        text->setText(r.label);
        text->setClipToAxisRect(false);
    }
    m_table->resizeColumnsToContents();
    resetZoom();
    highlight();
    m_removeButton->setEnabled(m_selected >= 0);
}

void ResultsView::resetZoom()
{
    bool found = false;
    QCPRange xr = m_points->getKeyRange(found);
    if (!found) {
        m_plot->xAxis->setRange(0, 1);
        m_plot->yAxis->setRange(0, 1);
    } else {
        QCPRange yr = m_points->getValueRange(found);
        bool bars = false;
        const QCPAbstractPlottable* errors = m_errorBars; // getValueRange is public in the base
        const QCPRange er = m_errorBars->visible() ? errors->getValueRange(bars) : QCPRange();
        if (bars)
            yr.expand(er); // the whole intervals in view
        // a margin around the points; a single point (size 0) gets a small window around it
        const double dx = xr.size() > 0 ? xr.size() * 0.08 : std::max(std::abs(xr.center()) * 0.05, 1e-3);
        const double dy = yr.size() > 0 ? yr.size() * 0.12 : std::max(std::abs(yr.center()) * 0.01, 1e-3);
        m_plot->xAxis->setRange(xr.lower - dx, xr.upper + 3 * dx); // room for the labels
        m_plot->yAxis->setRange(yr.lower - dy, yr.upper + dy);
    }
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void ResultsView::highlight()
{
    QVector<double> x, y;
    const double q = m_selected >= 0 ? ResultsModel::quality(m_model->run(m_selected), m_model->qualityAxis()) : NAN;
    if (q == q) {
        x << double(m_model->run(m_selected).modelBytes) / 1e6;
        y << q;
    }
    m_selectedPoint->setData(x, y);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
    const QModelIndex proxyIndex = m_selected >= 0 ? m_proxy->mapFromSource(m_model->index(m_selected, 0)) : QModelIndex();
    QItemSelectionModel* sel = m_table->selectionModel();
    const QSignalBlocker block(sel);
    if (proxyIndex.isValid()) {
        sel->setCurrentIndex(proxyIndex, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        m_table->scrollTo(proxyIndex);
    } else {
        sel->clearSelection();
    }
    m_table->viewport()->update();
    const bool hasPlan = m_selected >= 0 && !m_model->run(m_selected).planJson.isEmpty();
    m_loadButton->setEnabled(hasPlan);
    m_removeButton->setEnabled(m_selected >= 0);
}

void ResultsView::selectRun(int row)
{
    if (row < 0 || row >= m_model->rowCount())
        return;
    m_selected = row;
    highlight();
    emit runSelected(row);
    if (!m_model->run(row).planJson.isEmpty())
        emit planRequested(m_model->run(row));
}

int ResultsView::runAtPlotPosition(const QPointF& pos) const
{
    int best = -1;
    double bestDist = 12.0 * 12.0;
    for (int row = 0; row < m_model->rowCount(); ++row) {
        const RunResult& r = m_model->run(row);
        const double q = ResultsModel::quality(r, m_model->qualityAxis());
        if (q != q)
            continue;
        const double px = m_plot->xAxis->coordToPixel(double(r.modelBytes) / 1e6);
        const double py = m_plot->yAxis->coordToPixel(q);
        const double d = (px - pos.x()) * (px - pos.x()) + (py - pos.y()) * (py - pos.y());
        if (d <= bestDist) {
            bestDist = d;
            best = row;
        }
    }
    return best;
}

void ResultsView::onPlotClick(QMouseEvent* event)
{
    const int row = runAtPlotPosition(event->position());
    if (row >= 0)
        selectRun(row);
}

void ResultsView::removeSelected()
{
    if (m_selected < 0)
        return;
    const int row = m_selected;
    m_selected = -1;
    m_model->removeRun(row);
}

CsvTable ResultsView::csvTable() const
{
    CsvTable t;
    t.header = QStringList{QStringLiteral("label"), QStringLiteral("average_bits"), QStringLiteral("model_bytes"),
                           QStringLiteral("perplexity"), QStringLiteral("pareto")};
    const bool kld = m_model->hasKld();
    if (kld)
        t.header << QStringLiteral("kld") << QStringLiteral("same_top") << QStringLiteral("kld_vs_uniform_diff")
                 << QStringLiteral("kld_vs_uniform_lo") << QStringLiteral("kld_vs_uniform_hi");
    for (const QString& task : m_model->taskNames())
        t.header << QStringLiteral("acc:") + task;
    t.header << QStringLiteral("ppl_file") << QStringLiteral("plan_path") << QStringLiteral("model_path");
    for (int row = 0; row < m_model->rowCount(); ++row) {
        const RunResult& r = m_model->run(row);
        QStringList fields{r.label, csvNumber(r.averageBits), csvNumber(r.modelBytes), csvNumber(r.perplexity),
                           m_model->isOnFront(row) ? QStringLiteral("1") : QStringLiteral("0")};
        if (kld)
            fields << csvNumber(r.kld) << csvNumber(r.sameTop) << csvNumber(r.kldDiff) << csvNumber(r.kldLo)
                   << csvNumber(r.kldHi);
        for (const QString& task : m_model->taskNames())
            fields << (r.taskAccuracy.contains(task) ? csvNumber(r.taskAccuracy.value(task)) : QString());
        fields << r.pplFile << r.planPath << r.modelPath;
        t.rows << fields;
    }
    return t;
}

} // namespace moewb
