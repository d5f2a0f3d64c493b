// SPDX-License-Identifier: MIT
#include "plot/matrixplot.h"

#include <QGridLayout>
#include <QScrollBar>
#include <QToolTip>

#include <algorithm>
#include <cmath>

namespace moewb {

namespace {
constexpr int kLabelGap = 4;     // px between two tick labels
constexpr int kScrollUnits = 100; // scroll bar steps per cell

// The smallest of 1, 2, 5, 10, 20, 50, … that is at least n.
int niceStep(double n)
{
    for (int base = 1;; base *= 10)
        for (int m : {1, 2, 5})
            if (m * base >= n || base > 100000000)
                return m * base;
}

QSharedPointer<QCPAxisTickerText> textTicker(const QStringList& labels, int step)
{
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
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
    m_markerSets.push_back(m_markers);
    m_markerStyles.push_back(m_markers->scatterStyle());

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

    // A range the plot did not set itself is the user's zoom or pan: keep it (clamped) from now on.
    for (QCPAxis* axis : {xAxis, yAxis})
        connect(axis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
            if (!m_applying)
                m_userView = true;
            syncScrollBars();
        });
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
    m_stepX = m_stepY = 0; // new labels: a new ticker at the next layout
    xAxis->setTicker(textTicker(m_colLabels, 1 << 30)); // until then only the first label
    yAxis->setTicker(textTicker(m_rowLabels, 1 << 30));
    updateHighlight();
    resetView();
}

void MatrixPlot::setCellShape(CellShape shape)
{
    m_shape = shape;
    if (shape == CellShape::Fill)
        axisRect()->setMaximumSize(QWIDGETSIZE_MAX, QWIDGETSIZE_MAX);
    resetView();
}

void MatrixPlot::setMinimumCellSize(int px)
{
    m_minCell = std::max(1, px);
    replot(QCustomPlot::rpQueuedReplot);
}

QSizeF MatrixPlot::cellSize() const
{
    const QRect r = axisRect()->rect();
    return QSizeF(r.width() / xAxis->range().size(), r.height() / yAxis->range().size());
}

int MatrixPlot::labelStep(Qt::Orientation orientation) const
{
    return orientation == Qt::Horizontal ? m_stepX : m_stepY;
}

QScrollBar* MatrixPlot::scrollBar(Qt::Orientation orientation) const
{
    return orientation == Qt::Horizontal ? m_hbar : m_vbar;
}

QWidget* MatrixPlot::createScrollFrame(QWidget* parent)
{
    auto* frame = new QWidget(parent);
    auto* grid = new QGridLayout(frame);
    grid->setContentsMargins(0, 0, 0, 0);
    grid->setSpacing(0);
    m_hbar = new QScrollBar(Qt::Horizontal, frame);
    m_vbar = new QScrollBar(Qt::Vertical, frame);
    grid->addWidget(this, 0, 0);
    grid->addWidget(m_vbar, 0, 1);
    grid->addWidget(m_hbar, 1, 0);
    for (QScrollBar* bar : {m_hbar, m_vbar}) {
        bar->setVisible(false);
        connect(bar, &QScrollBar::valueChanged, this, [this, bar](int value) {
            QCPAxis* axis = bar == m_hbar ? xAxis : yAxis;
            const double size = axis->range().size();
            const double lower = double(value) / kScrollUnits - 0.5;
            if (std::abs(lower - axis->range().lower) * kScrollUnits < 0.5)
                return; // the bar follows the axis (syncScrollBars)
            axis->setRange(lower, lower + size);
            replot(QCustomPlot::rpQueuedReplot);
        });
    }
    syncScrollBars();
    return frame;
}

void MatrixPlot::syncScrollBars()
{
    const auto sync = [](QScrollBar* bar, const QCPRange& range, int cells) {
        if (!bar)
            return;
        const QSignalBlocker block(bar);
        const bool partial = cells > 0 && range.size() < cells - 1e-6;
        if (partial) {
            const int page = int(std::lround(range.size() * kScrollUnits));
            bar->setRange(0, std::max(0, cells * kScrollUnits - page));
            bar->setPageStep(page);
            bar->setSingleStep(kScrollUnits);
            bar->setValue(int(std::lround((range.lower + 0.5) * kScrollUnits)));
        }
        if (bar->isVisibleTo(bar->parentWidget()) != partial)
            bar->setVisible(partial);
    };
    sync(m_hbar, xAxis->range(), m_cols);
    sync(m_vbar, yAxis->range(), m_rows);
}

void MatrixPlot::setRangesQuietly(const QCPRange& x, const QCPRange& y)
{
    m_applying = true;
    xAxis->setRange(x);
    yAxis->setRange(y);
    m_applying = false;
}

void MatrixPlot::updateLayout()
{
    QCustomPlot::updateLayout();
    // A changed size limit moves the axis rect and a new ticker can change the margins: lay out
    // again until nothing changes (two passes in practice).
    for (int pass = 0; pass < 3 && applyView(); ++pass)
        QCustomPlot::updateLayout();
}

bool MatrixPlot::applyView()
{
    if (m_applying)
        return false;
    QCPAxisRect* rect = axisRect();
    const int cols = std::max(m_cols, 1), rows = std::max(m_rows, 1);
    const QMargins margins = rect->margins();
    const QRect area = plotLayout()->rect();
    int scaleWidth = 0;
    if (m_scale->visible() && m_scale->layout() == plotLayout())
        scaleWidth = m_scale->outerRect().width() + plotLayout()->columnSpacing();
    // the inner size the axis rect would get without a size limit
    const double availW = std::max(1, area.width() - scaleWidth - margins.left() - margins.right());
    const double availH = std::max(1, area.height() - margins.top() - margins.bottom());
    bool changed = false;

    QCPRange xr = xAxis->range(), yr = yAxis->range();
    double w = availW, h = availH;
    if (m_shape == CellShape::Square) {
        const double fit = std::max(std::min(availW / cols, availH / rows), double(m_minCell));
        double cell = fit;
        if (m_userView) {
            const double current = rect->width() / std::max(xr.size(), 1e-9);
            if (current >= fit * 0.999)
                cell = current; // zoomed in, or scrolled: keep the place
            else
                m_userView = false; // zoomed out beyond the fitted matrix: fit again
        }
        // the axis rect is no larger than the matrix at this cell size: no empty band
        const int maxW = cols * cell <= availW + 0.5 ? int(std::lround(cols * cell)) : QWIDGETSIZE_MAX;
        const int maxH = rows * cell <= availH + 0.5 ? int(std::lround(rows * cell)) : QWIDGETSIZE_MAX;
        if (rect->maximumSize() != QSize(maxW, maxH)) {
            rect->setMaximumSize(maxW, maxH);
            changed = true;
        }
        w = std::min(availW, double(maxW));
        h = std::min(availH, double(maxH));
        const double sizeX = maxW == QWIDGETSIZE_MAX ? w / cell : cols;
        const double sizeY = maxH == QWIDGETSIZE_MAX ? h / cell : rows;
        xr = m_userView ? QCPRange(xr.lower, xr.lower + sizeX) : QCPRange(-0.5, -0.5 + sizeX);
        yr = m_userView ? QCPRange(yr.lower, yr.lower + sizeY) : QCPRange(-0.5, -0.5 + sizeY);
    } else if (!m_userView) {
        xr = QCPRange(-0.5, cols - 0.5);
        yr = QCPRange(-0.5, rows - 0.5);
    }
    // the highlighted cell comes into view once the plot has its real size (a scrolled place is
    // the user's from then on: it stays until they scroll or zoom)
    if (m_reveal && isVisible() && availW > 2 * m_minCell && availH > 2 * m_minCell) {
        m_reveal = false;
        if (reveal(xr, yr))
            m_userView = true;
    }
    // never beyond the matrix: zoomed out no further than all of it, panned no further than its edges
    const auto clamp = [](QCPRange r, int n) {
        const double size = std::min(r.size(), double(n));
        const double lower = std::clamp(r.lower, -0.5, n - 0.5 - size);
        return QCPRange(lower, lower + size);
    };
    xr = clamp(xr, cols);
    yr = clamp(yr, rows);
    const auto differs = [](const QCPRange& a, const QCPRange& b) {
        return std::abs(a.lower - b.lower) > 1e-9 || std::abs(a.upper - b.upper) > 1e-9;
    };
    if (differs(xr, xAxis->range()) || differs(yr, yAxis->range())) {
        setRangesQuietly(xr, yr);
        changed = true;
    }
    if (updateTicks(w / xr.size(), h / yr.size()))
        changed = true;
    scaleMarkers(w / xr.size(), h / yr.size());
    return changed;
}

void MatrixPlot::scaleMarkers(double cellWidth, double cellHeight)
{
    const double cell = std::min(cellWidth, cellHeight);
    for (size_t i = 0; i < m_markerSets.size(); ++i) {
        QCPScatterStyle style = m_markerStyles[i];
        style.setSize(std::min(style.size(), std::max(3.0, 0.8 * cell)));
        if (cell < 8) // thinner strokes on small cells
            style.setPen(QPen(style.pen().color(), 1));
        if (std::abs(m_markerSets[i]->scatterStyle().size() - style.size()) > 1e-9
            || m_markerSets[i]->scatterStyle().pen() != style.pen())
            m_markerSets[i]->setScatterStyle(style);
    }
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
    setMarkedCells(0, cells);
}

int MatrixPlot::addMarkerSet(const QCPScatterStyle& style, const QString& name)
{
    QCPGraph* graph = addGraph();
    graph->setLineStyle(QCPGraph::lsNone);
    graph->setScatterStyle(style);
    graph->setName(name);
    graph->setSelectable(QCP::stNone);
    m_markerSets.push_back(graph);
    m_markerStyles.push_back(style);
    return int(m_markerSets.size()) - 1;
}

void MatrixPlot::setMarkedCells(int set, const std::vector<QPoint>& cells)
{
    if (set < 0 || set >= int(m_markerSets.size()))
        return;
    QVector<double> keys, vals;
    for (const QPoint& p : cells) {
        keys << p.x();
        vals << p.y();
    }
    m_markerSets[size_t(set)]->setData(keys, vals);
}

std::vector<QPoint> MatrixPlot::markedCells(int set) const
{
    std::vector<QPoint> cells;
    if (set < 0 || set >= int(m_markerSets.size()))
        return cells;
    for (const QCPGraphData& d : *m_markerSets[size_t(set)]->data())
        cells.emplace_back(int(std::lround(d.key)), int(std::lround(d.value)));
    return cells;
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
    m_reveal = row >= 0 || col >= 0; // scrolled into view at the next layout (applyView)
    replot(QCustomPlot::rpQueuedReplot);
}

bool MatrixPlot::reveal(QCPRange& x, QCPRange& y) const
{
    // shift (keeping the zoom) so that the highlighted cell comes into view
    const auto shifted = [](QCPRange r, int i) {
        if (i < 0 || (i - 0.5 >= r.lower - 1e-9 && i + 0.5 <= r.upper + 1e-9))
            return r;
        const double size = r.size();
        const double lower = i - size / 2;
        return QCPRange(lower, lower + size);
    };
    const QCPRange nx = shifted(x, m_highlightCol), ny = shifted(y, m_highlightRow);
    const bool moved = nx != x || ny != y;
    x = nx;
    y = ny;
    return moved;
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
    setRangesQuietly(QCPRange(-0.5, std::max(m_cols, 1) - 0.5), QCPRange(-0.5, std::max(m_rows, 1) - 0.5));
    m_userView = false;
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

bool MatrixPlot::updateTicks(double cellWidth, double cellHeight)
{
    // Numbers (up to 4 digits) read best upright; longer text labels stand vertically. A label
    // needs its extent along the axis plus a gap: every n-th cell is labelled so that they fit.
    const QFontMetrics fx(xAxis->tickLabelFont()), fy(yAxis->tickLabelFont());
    int longest = 0, widest = 0;
    for (const QString& label : m_colLabels) {
        longest = std::max(longest, int(label.size()));
        widest = std::max(widest, fx.horizontalAdvance(label));
    }
    const bool rotated = longest > 4;
    const double extentX = rotated ? fx.height() : widest;
    const int stepX = niceStep((extentX + kLabelGap) / std::max(cellWidth, 1e-3));
    const int stepY = niceStep((fy.height() + kLabelGap) / std::max(cellHeight, 1e-3));
    if (stepX == m_stepX && stepY == m_stepY && rotated == m_rotatedX)
        return false;
    m_stepX = stepX;
    m_stepY = stepY;
    m_rotatedX = rotated;
    xAxis->setTickLabelRotation(rotated ? 90 : 0);
    xAxis->setTicker(textTicker(m_colLabels, stepX));
    yAxis->setTicker(textTicker(m_rowLabels, stepY));
    return true;
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
