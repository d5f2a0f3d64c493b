// SPDX-License-Identifier: MIT
#include "views/coverageview.h"

#include "appresources.h"
#include "document.h"
#include "plot/matrixplot.h"
#include "selection.h"

#include "moewb/stats/stats.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace moewb {

namespace {

constexpr CoverageMeasure kMeasures[] = {CoverageMeasure::StatsRouted, CoverageMeasure::RunRouted,
                                         CoverageMeasure::HessianTokens, CoverageMeasure::HessianWeight,
                                         CoverageMeasure::Status};

/// One colour per status, Fallback (0) … Enough (3), no blending between them.
QCPColorGradient statusGradient()
{
    QCPColorGradient g;
    g.clearColorStops();
    const CoverageStatus order[] = {CoverageStatus::Fallback, CoverageStatus::BelowMinimum, CoverageStatus::Lifted,
                                    CoverageStatus::Enough};
    for (int i = 0; i < 4; ++i)
        g.setColorStopAt(i / 3.0, coverageStatusColor(order[i]));
    g.setLevelCount(4);
    return g;
}

QString count(int64_t n)
{
    return QString::number(n);
}

} // namespace

CoverageView::CoverageView(Document* document, QWidget* parent)
    : PlotPanel(parent)
    , m_document(document)
    , m_plot(new MatrixPlot(this))
    , m_measureBox(new QComboBox(this))
    , m_minimumBox(new QSpinBox(this))
    , m_runLabel(new QLabel(this))
{
    for (CoverageMeasure m : kMeasures) {
        m_measureBox->addItem(coverageMeasureName(m), int(m));
        m_measureBox->setItemData(m_measureBox->count() - 1, coverageMeasureDescription(m), Qt::ToolTipRole);
    }
    m_minimumBox->setRange(1, 1000000);
    m_minimumBox->setValue(int(m_minimum));
    m_minimumBox->setToolTip(tr("Experts with fewer calibration tokens than this are quantized with RTN instead "
                                "of GPTQ (the quantize option \"minimum tokens per expert\"); a loaded quantize "
                                "report uses its own"));
    auto* load = new QToolButton(this);
    load->setText(tr("Load report…"));
    load->setToolTip(tr("Show the coverage of a quantize run (moewb_quant_report.json)"));
    connect(load, &QToolButton::clicked, this, &CoverageView::loadReportInteractively);

    toolRow()->addWidget(new QLabel(tr("Show:"), this));
    toolRow()->addWidget(m_measureBox);
    toolRow()->addWidget(new QLabel(tr("Minimum:"), this));
    toolRow()->addWidget(m_minimumBox);
    toolRow()->addWidget(load);
    finishToolRow();
    m_runLabel->setWordWrap(true);
    m_runLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred); // long paths wrap, not widen
    contentLayout()->addWidget(m_runLabel);

    m_plot->setCellShape(MatrixPlot::CellShape::Square);
    m_plot->setMinimumCellSize(3); // as the correlation matrix: 128 experts fit the default column
    contentLayout()->addWidget(m_plot->createScrollFrame(this), 1);
    m_plot->setAxisTitles(tr("expert"), tr("layer"));
    m_liftedMarkers = m_plot->addMarkerSet(
        QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(QColor(20, 20, 20), 1.5), QBrush(), 8), tr("lifted by balancing"));
    m_plot->setTooltipProvider([this](int row, int col) { return cellTooltip(row, col); });
    connect(m_plot, &MatrixPlot::cellClicked, this, [this](int row, int col) {
        if (row >= 0 && row < int(m_matrix.layers.size()))
            m_document->selection()->select(m_matrix.layers[size_t(row)], col);
    });
    connect(m_measureBox, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] { setMeasure(CoverageMeasure(m_measureBox->currentData().toInt())); });
    connect(m_minimumBox, qOverload<int>(&QSpinBox::valueChanged), this, [this](int v) { setMinimumTokens(v); });
    connect(m_document, &Document::statsChanged, this, &CoverageView::rebuild);
    connect(m_document->selection(), &Selection::changed, this, &CoverageView::followSelection);
    rebuild();
}

CoverageView::~CoverageView() = default;

QCustomPlot* CoverageView::plot() const
{
    return m_plot;
}

void CoverageView::setQuantCoverage(std::shared_ptr<const QuantCoverage> run)
{
    m_run = std::move(run);
    // a run's own numbers are what one loads it for; without one, the stats' routed tokens
    if (m_run && m_measure == CoverageMeasure::StatsRouted)
        m_measure = CoverageMeasure::HessianTokens;
    if (!m_run && measureNeedsRun(m_measure))
        m_measure = CoverageMeasure::StatsRouted;
    rebuild();
}

bool CoverageView::loadReport(const QString& path, QString* error)
{
    auto run = std::make_shared<QuantCoverage>();
    if (!readQuantCoverage(path, run.get(), error))
        return false;
    setQuantCoverage(std::move(run));
    return true;
}

void CoverageView::loadReportInteractively()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Load a quantize report"), QString(),
                                                      tr("Quantize report (*.json)"));
    if (path.isEmpty())
        return;
    QString error;
    if (!loadReport(path, &error))
        QMessageBox::warning(this, tr("Cannot load the report"), error);
}

void CoverageView::setMeasure(CoverageMeasure measure)
{
    if (measureNeedsRun(measure) && !m_run)
        measure = CoverageMeasure::StatsRouted;
    m_measure = measure;
    const QSignalBlocker block(m_measureBox);
    m_measureBox->setCurrentIndex(m_measureBox->findData(int(measure)));
    redraw();
}

void CoverageView::setMinimumTokens(int64_t tokens)
{
    m_minimum = std::max<int64_t>(1, tokens);
    {
        const QSignalBlocker block(m_minimumBox);
        m_minimumBox->setValue(int(m_minimum));
    }
    rebuild();
}

void CoverageView::rebuild()
{
    const QVariant enabled(int(Qt::ItemIsSelectable | Qt::ItemIsEnabled));
    for (CoverageMeasure m : kMeasures)
        if (measureNeedsRun(m)) // item flags: a run's measures need a run
            m_measureBox->setItemData(m_measureBox->findData(int(m)), m_run ? enabled : QVariant(0), Qt::UserRole - 1);
    {
        const QSignalBlocker block(m_minimumBox);
        m_minimumBox->setValue(int(m_run ? m_run->minExpertTokens : m_minimum));
        m_minimumBox->setEnabled(!m_run);
    }
    m_matrix = buildCoverageMatrix(m_document->stats(), m_run.get(), m_minimum);
    updateRunLabel();
    setMeasure(m_measure); // redraws
}

void CoverageView::updateRunLabel()
{
    if (!m_run) {
        m_runLabel->setText(tr("Calibration stats only: load a quantize report to see the tokens each expert's "
                               "GPTQ used after balancing."));
        return;
    }
    QString text = tr("Quantize run %1: balancing %2, minimum %3 tokens, %4 calibration tokens")
                       .arg(m_run->path.isEmpty() ? tr("(report)") : QFileInfo(m_run->path).fileName(), m_run->balance)
                       .arg(m_run->minExpertTokens)
                       .arg(m_run->calibTokens);
    if (m_run->belowMinRouted >= 0)
        text += tr("; below the minimum: %1 experts routed, %2 after balancing")
                    .arg(m_run->belowMinRouted)
                    .arg(m_run->belowMinAfter);
    text += tr("; RTN fallbacks: %1").arg(m_run->fallbacks.size());
    m_runLabel->setText(text);
}

void CoverageView::redraw()
{
    const int rows = int(m_matrix.layers.size()), cols = m_matrix.experts;
    std::vector<double> values(size_t(rows) * size_t(cols));
    std::vector<QPoint> below, lifted;
    double maximum = 0;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const CoverageCell& cell = m_matrix.at(r, c);
            const double v = coverageValue(cell, m_measure);
            values[size_t(r) * size_t(cols) + size_t(c)] = v;
            if (!std::isnan(v))
                maximum = std::max(maximum, v);
            if (cell.status == CoverageStatus::Fallback || cell.status == CoverageStatus::BelowMinimum)
                below.emplace_back(c, r);
            else if (cell.status == CoverageStatus::Lifted)
                lifted.emplace_back(c, r);
        }
    QStringList rowLabels, colLabels;
    for (int layer : m_matrix.layers)
        rowLabels << QString::number(layer);
    for (int c = 0; c < cols; ++c)
        colLabels << QString::number(c);
    if (m_measure == CoverageMeasure::Status) {
        m_plot->setGradient(statusGradient());
        m_plot->setValueRange(0, 3);
        QSharedPointer<QCPAxisTickerText> names(new QCPAxisTickerText);
        for (CoverageStatus s : {CoverageStatus::Fallback, CoverageStatus::BelowMinimum, CoverageStatus::Lifted,
                                 CoverageStatus::Enough})
            names->addTick(int(s), coverageStatusName(s));
        m_plot->colorScale()->axis()->setTicker(names);
    } else {
        m_plot->setGradient(colorGradient(ColorMap::Viridis));
        m_plot->setValueRange(0, std::max(maximum, 1.0));
        m_plot->colorScale()->axis()->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
    m_plot->setValueTitle(coverageMeasureName(m_measure));
    m_plot->setMarkedCells(below);
    m_plot->setMarkedCells(m_liftedMarkers, lifted);
    m_plot->setMatrix(rows, cols, std::move(values), rowLabels, colLabels);
    followSelection();
}

void CoverageView::followSelection()
{
    const Selection* s = m_document->selection();
    const int row = m_matrix.rowOfLayer(s->layer());
    if (row < 0)
        m_plot->setHighlight(-1, -1);
    else
        m_plot->setHighlight(row, s->expert() < m_matrix.experts ? s->expert() : -1); // -1: the layer's row
}

QList<QPair<int, int>> CoverageView::expertsWithStatus(CoverageStatus status) const
{
    QList<QPair<int, int>> experts;
    for (int r = 0; r < int(m_matrix.layers.size()); ++r)
        for (int c = 0; c < m_matrix.experts; ++c)
            if (m_matrix.at(r, c).status == status)
                experts.append({m_matrix.layers[size_t(r)], c});
    return experts;
}

QList<QPair<int, int>> CoverageView::belowMinimumExperts() const
{
    // the run's fallbacks, and where no run says otherwise the stats' experts below the minimum
    QList<QPair<int, int>> experts = expertsWithStatus(CoverageStatus::Fallback);
    experts += expertsWithStatus(CoverageStatus::BelowMinimum);
    std::sort(experts.begin(), experts.end());
    return experts;
}

QList<QPair<int, int>> CoverageView::liftedExperts() const
{
    return expertsWithStatus(CoverageStatus::Lifted);
}

QString CoverageView::tooltip(int layer, int expert) const
{
    return cellTooltip(m_matrix.rowOfLayer(layer), expert);
}

QPoint CoverageView::cellCenter(int layer, int expert) const
{
    const int row = m_matrix.rowOfLayer(layer);
    if (row < 0 || expert < 0 || expert >= m_matrix.experts)
        return {-1, -1};
    return m_plot->cellCenter(row, expert);
}

QString CoverageView::cellTooltip(int row, int col) const
{
    if (row < 0 || row >= int(m_matrix.layers.size()) || col < 0 || col >= m_matrix.experts)
        return {};
    const CoverageCell& c = m_matrix.at(row, col);
    const int64_t minimum = m_matrix.minExpertTokens;
    QString text = tr("<b>Layer %1, expert %2</b>").arg(m_matrix.layers[size_t(row)]).arg(col);
    if (c.statsRouted >= 0)
        text += tr("<br>routed in calibration (stats): %1 of %2 tokens (top-%3)")
                    .arg(count(c.statsRouted), count(c.statsTokens))
                    .arg(c.topK);
    if (c.run)
        text += tr("<br>quantize run (balancing %1): %2 tokens routed, %3 Hessian tokens, Hessian weight %4")
                    .arg(m_run->balance, count(c.run->routedTokens), count(c.run->hessianTokens))
                    .arg(c.run->hessianWeight, 0, 'g', 6);
    switch (c.status) {
    case CoverageStatus::Fallback:
        text += tr("<br><font color=#d7301f>RTN fallback: fewer than %1 tokens for its Hessian</font>").arg(minimum);
        break;
    case CoverageStatus::BelowMinimum:
        text += tr("<br><font color=#d7301f>below the GPTQ minimum of %1 tokens: RTN unless balanced</font>").arg(minimum);
        break;
    case CoverageStatus::Lifted:
        text += tr("<br>GPTQ: lifted to the minimum of %1 tokens by balancing").arg(minimum);
        break;
    case CoverageStatus::Enough: text += tr("<br>GPTQ: at least the minimum of %1 tokens").arg(minimum); break;
    case CoverageStatus::NoData: text += tr("<br>no coverage data"); break;
    }
    return text;
}

CsvTable CoverageView::csvTable() const
{
    CsvTable table;
    table.header << QStringLiteral("layer") << QStringLiteral("expert") << QStringLiteral("stats_routed_tokens")
                 << QStringLiteral("routed_tokens") << QStringLiteral("hessian_tokens")
                 << QStringLiteral("hessian_weight") << QStringLiteral("fallback") << QStringLiteral("status");
    for (int r = 0; r < int(m_matrix.layers.size()); ++r)
        for (int e = 0; e < m_matrix.experts; ++e) {
            const CoverageCell& c = m_matrix.at(r, e);
            QStringList line;
            line << csvNumber(int64_t(m_matrix.layers[size_t(r)])) << csvNumber(int64_t(e))
                 << (c.statsRouted >= 0 ? csvNumber(c.statsRouted) : QString())
                 << (c.run ? csvNumber(c.run->routedTokens) : QString())
                 << (c.run ? csvNumber(c.run->hessianTokens) : QString())
                 << (c.run ? csvNumber(c.run->hessianWeight) : QString())
                 << (c.status == CoverageStatus::Fallback ? QStringLiteral("1") : QStringLiteral("0"))
                 << coverageStatusName(c.status);
            table.rows << line;
        }
    return table;
}

} // namespace moewb
