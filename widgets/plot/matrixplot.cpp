// SPDX-License-Identifier: MIT
#include "plot/matrixplot.h"

#include <QToolTip>

#include <algorithm>
#include <cmath>

namespace moewb {

namespace {
// Label every n-th tick so that at most ~maxLabels labels fit (readable for 8 and for 256 experts).
QSharedPointer<QCPAxisTickerText> textTicker(const QStringList& labels, int maxLabels)
{
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    const int step = std::max(1, int(std::ceil(double(labels.size()) / maxLabels)));
    for (int i = 0; i < labels.size(); i += step)
        ticker->addTick(i, labels[i]);
    return ticker;
}
} // namespace

MatrixPlot::MatrixPlot(QWidget* parent)
    : QCustomPlot(parent)
    , m_map(new QCPColorMap(xAxis, yAxis))
    , m_scale(new QCPColorScale(this))
    , m_markers(addGraph())
    , m_selectedCells(addGraph())
    , m_highlightRect(new QCPItemRect(this))
    , m_band(new QCPItemRect(this))
{
    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus); // arrow keys move the selection
    setNoAntialiasingOnDrag(true);
    plotLayout()->addElement(0, 1, m_scale);
    m_scale->setType(QCPAxis::atRight);
    m_map->setColorScale(m_scale);
    m_map->setInterpolate(false);
    m_map->setTightBoundary(false);
    auto* margins = new QCPMarginGroup(this);
    axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    yAxis->setRangeReversed(true);
    xAxis->grid()->setVisible(false);
    yAxis->grid()->setVisible(false);
    xAxis->setSubTicks(false);
    yAxis->setSubTicks(false);

    m_markers->setLineStyle(QCPGraph::lsNone);
    m_markers->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCross, QPen(QColor(230, 30, 30), 2), QBrush(), 9));
    m_markers->setName(tr("never routed"));
    m_markers->setSelectable(QCP::stNone);

    m_selectedCells->setLineStyle(QCPGraph::lsNone);
    m_selectedCells->setScatterStyle(
        QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(QColor(20, 20, 20), 2), QBrush(), 10));
    m_selectedCells->setName(tr("selected"));
    m_selectedCells->setSelectable(QCP::stNone);

    m_highlightRect->setPen(QPen(QColor(255, 64, 0), 2.5));
    m_highlightRect->setBrush(Qt::NoBrush);
    m_highlightRect->setSelectable(false);
    m_highlightRect->setVisible(false);

    m_band->setPen(QPen(QColor(20, 20, 20), 1.5, Qt::DashLine));
    m_band->setBrush(QColor(255, 255, 255, 60));
    m_band->setSelectable(false);
    m_band->setVisible(false);

    connect(this, &QCustomPlot::mousePress, this, &MatrixPlot::onMousePress);
    connect(this, &QCustomPlot::mouseRelease, this, &MatrixPlot::onMouseRelease);
    connect(this, &QCustomPlot::mouseMove, this, &MatrixPlot::onMouseMove);
}

MatrixPlot::~MatrixPlot() = default;

void MatrixPlot::setMatrix(int rows, int cols, std::vector<double> values, const QStringList& rowLabels,
                           const QStringList& colLabels)
{
    m_rows = rows;
    m_cols = cols;
    m_values = std::move(values);
    m_rowLabels = rowLabels;
    m_colLabels = colLabels;
    QCPColorMapData* data = m_map->data();
    data->setSize(std::max(cols, 1), std::max(rows, 1));
    // Cell centres sit on integer coordinates. A dimension of size 1 is drawn over its whole range
    // (QCPColorMap adds half cells only for sizes > 1), so it gets the range of one cell.
    data->setRange(cols > 1 ? QCPRange(0, cols - 1) : QCPRange(-0.5, 0.5),
                   rows > 1 ? QCPRange(0, rows - 1) : QCPRange(-0.5, 0.5));
    data->fill(std::nan(""));
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            data->setCell(c, r, m_values[size_t(r) * size_t(cols) + size_t(c)]);
    if (m_lower <= m_upper)
        m_map->setDataRange(QCPRange(m_lower, m_upper));
    else
        m_map->rescaleDataRange(true);
    updateTicks();
    updateHighlight();
    resetView();
}

void MatrixPlot::setAxisTitles(const QString& x, const QString& y)
{
    xAxis->setLabel(x);
    yAxis->setLabel(y);
}

void MatrixPlot::setValueTitle(const QString& title)
{
    m_scale->axis()->setLabel(title);
}

void MatrixPlot::setGradient(const QCPColorGradient& gradient)
{
    m_map->setGradient(gradient);
    replot(QCustomPlot::rpQueuedReplot);
}

void MatrixPlot::setValueRange(double lower, double upper)
{
    m_lower = lower;
    m_upper = upper;
    if (lower <= upper)
        m_map->setDataRange(QCPRange(lower, upper));
    else
        m_map->rescaleDataRange(true);
}

void MatrixPlot::setMarkedCells(const std::vector<QPoint>& cells)
{
    QVector<double> keys, vals;
    for (const QPoint& p : cells) {
        keys << p.x();
        vals << p.y();
    }
    m_markers->setData(keys, vals);
}

void MatrixPlot::setSelectedCells(const std::vector<QPoint>& cells)
{
    QVector<double> keys, vals;
    for (const QPoint& p : cells) {
        keys << p.x();
        vals << p.y();
    }
    m_selectedCells->setData(keys, vals);
    replot(QCustomPlot::rpQueuedReplot);
}

void MatrixPlot::setHighlight(int row, int col)
{
    m_highlightRow = row;
    m_highlightCol = col;
    updateHighlight();
    replot(QCustomPlot::rpQueuedReplot);
}

void MatrixPlot::setTooltipProvider(std::function<QString(int, int)> provider)
{
    m_tooltip = std::move(provider);
}

double MatrixPlot::value(int row, int col) const
{
    if (row < 0 || col < 0 || row >= m_rows || col >= m_cols)
        return std::nan("");
    return m_values[size_t(row) * size_t(m_cols) + size_t(col)];
}

QPoint MatrixPlot::cellAt(const QPoint& pixel) const
{
    if (!axisRect()->rect().contains(pixel))
        return {-1, -1};
    const int col = int(std::lround(xAxis->pixelToCoord(pixel.x())));
    const int row = int(std::lround(yAxis->pixelToCoord(pixel.y())));
    if (row < 0 || col < 0 || row >= m_rows || col >= m_cols)
        return {-1, -1};
    return {col, row};
}

QPoint MatrixPlot::cellCenter(int row, int col) const
{
    return QPoint(int(std::lround(xAxis->coordToPixel(col))), int(std::lround(yAxis->coordToPixel(row))));
}

void MatrixPlot::resetView()
{
    xAxis->setRange(-0.5, std::max(m_cols, 1) - 0.5);
    yAxis->setRange(-0.5, std::max(m_rows, 1) - 0.5);
    replot();
}

void MatrixPlot::onMousePress(QMouseEvent* event)
{
    m_pressPos = event->pos();
    // Shift+drag draws a rubber band instead of panning (QCustomPlot starts the pan after this signal).
    m_banding = event->button() == Qt::LeftButton && (event->modifiers() & Qt::ShiftModifier) && cellAt(m_pressPos).x() >= 0;
    setInteraction(QCP::iRangeDrag, !m_banding);
}

void MatrixPlot::keyPressEvent(QKeyEvent* event)
{
    int dr = 0, dc = 0;
    switch (event->key()) {
    case Qt::Key_Left: dc = -1; break;
    case Qt::Key_Right: dc = 1; break;
    case Qt::Key_Up: dr = -1; break;
    case Qt::Key_Down: dr = 1; break;
    default: QCustomPlot::keyPressEvent(event); return;
    }
    if (m_rows == 0 || m_cols == 0)
        return;
    // from the highlighted cell (a highlighted row or column starts at its first cell)
    const int row = std::clamp(std::max(m_highlightRow, 0) + dr, 0, m_rows - 1);
    const int col = std::clamp(std::max(m_highlightCol, 0) + dc, 0, m_cols - 1);
    event->accept();
    m_clickModifiers = Qt::NoModifier;
    emit cellClicked(row, col);
}

void MatrixPlot::onMouseRelease(QMouseEvent* event)
{
    if (m_banding) {
        m_banding = false;
        setInteraction(QCP::iRangeDrag, true);
        m_band->setVisible(false);
        replot(QCustomPlot::rpQueuedReplot);
        const QPoint a = cellAt(m_pressPos), b = cellAt(event->pos());
        if ((event->pos() - m_pressPos).manhattanLength() > 3) {
            if (a.x() >= 0 && b.x() >= 0)
                emit cellsDragged(a.y(), a.x(), b.y(), b.x(), event->modifiers());
            return;
        }
    }
    if (event->button() != Qt::LeftButton || (event->pos() - m_pressPos).manhattanLength() > 3)
        return;
    const QPoint cell = cellAt(event->pos());
    if (cell.x() >= 0) {
        m_clickModifiers = event->modifiers();
        emit cellClicked(cell.y(), cell.x());
        m_clickModifiers = Qt::NoModifier;
    }
}

void MatrixPlot::onMouseMove(QMouseEvent* event)
{
    if (m_banding) {
        m_band->topLeft->setPixelPosition(m_pressPos);
        m_band->bottomRight->setPixelPosition(event->pos());
        m_band->setVisible(true);
        replot(QCustomPlot::rpQueuedReplot);
        return;
    }
    if (event->buttons() != Qt::NoButton)
        return;
    const QPoint cell = cellAt(event->pos());
    if (cell.x() < 0) {
        QToolTip::hideText();
        return;
    }
    QToolTip::showText(mapToGlobal(event->pos()), tooltipAt(cell.y(), cell.x()), this);
}

QString MatrixPlot::tooltipAt(int row, int col) const
{
    if (m_tooltip)
        return m_tooltip(row, col);
    return QStringLiteral("%1, %2: %3")
        .arg(m_rowLabels.value(row), m_colLabels.value(col))
        .arg(value(row, col), 0, 'g', 6);
}

void MatrixPlot::updateTicks()
{
    // short labels of a few columns read best upright; many columns need the room of vertical text
    int longest = 0;
    for (const QString& label : m_colLabels)
        longest = std::max(longest, int(label.size()));
    xAxis->setTickLabelRotation(m_cols > 24 || longest > 4 ? 90 : 0);
    xAxis->setTicker(textTicker(m_colLabels, 32));
    yAxis->setTicker(textTicker(m_rowLabels, 40));
}

void MatrixPlot::updateHighlight()
{
    if (m_highlightRow < 0 && m_highlightCol < 0) {
        m_highlightRect->setVisible(false);
        return;
    }
    const double x0 = m_highlightCol < 0 ? -0.5 : m_highlightCol - 0.5;
    const double x1 = m_highlightCol < 0 ? m_cols - 0.5 : m_highlightCol + 0.5;
    const double y0 = m_highlightRow < 0 ? -0.5 : m_highlightRow - 0.5;
    const double y1 = m_highlightRow < 0 ? m_rows - 0.5 : m_highlightRow + 0.5;
    m_highlightRect->topLeft->setCoords(x0, y0);
    m_highlightRect->bottomRight->setCoords(x1, y1);
    m_highlightRect->setVisible(true);
}

} // namespace moewb
