// SPDX-License-Identifier: MIT
// A QCustomPlot showing one matrix as a colour map (one cell per value, no interpolation) with a
// colour scale, text tick labels, hover tooltips, click-to-select, crosses (and further marker sets)
// on marked cells, shrunk to fit small cells, and an outline on the highlighted cell. Row 0 is drawn at the top. Used by the routing heat map, the
// correlation view and the domain view.
//
// Cells either fill the plot (the heat map) or stay square (the correlation and domain matrices):
// a square matrix shrinks to fit down to a minimum cell size, below which it shows a part and
// scrolls (wheel zooms, drag pans, createScrollFrame() adds scroll bars). Tick labels thin out to
// every n-th row or column (n = 1, 2, 5, 10, 20, …) so that no two labels overlap at the current
// cell size; hovering a cell shows its exact values.
#pragma once

#include <QPoint>
#include <QStringList>
#include <qcustomplot.h>

#include <functional>
#include <vector>

class QScrollBar;

namespace moewb {

class MatrixPlot : public QCustomPlot {
    Q_OBJECT
public:
    enum class CellShape { Fill, Square };

    explicit MatrixPlot(QWidget* parent = nullptr);
    ~MatrixPlot() override;

    void setCellShape(CellShape shape);
    CellShape cellShape() const { return m_shape; }
    /// Smallest cell edge in pixels a square matrix shrinks to before it scrolls (default 4).
    void setMinimumCellSize(int px);
    int minimumCellSize() const { return m_minCell; }
    /// One cell's width and height in pixels at the current zoom (valid after a replot).
    QSizeF cellSize() const;
    /// Every n-th column (Qt::Horizontal) or row (Qt::Vertical) carries a label.
    int labelStep(Qt::Orientation orientation) const;
    /// Puts the plot into a new frame with a horizontal and a vertical scroll bar that show while
    /// only part of the matrix is in view; add the frame to a layout instead of the plot.
    QWidget* createScrollFrame(QWidget* parent);
    QScrollBar* scrollBar(Qt::Orientation orientation) const;

    /// values: rows × cols, row-major; NaN cells are grey.
    void setMatrix(int rows, int cols, std::vector<double> values, const QStringList& rowLabels,
                   const QStringList& colLabels);
    void setAxisTitles(const QString& x, const QString& y);
    void setValueTitle(const QString& title);
    void setGradient(const QCPColorGradient& gradient);
    /// Fixed colour range; an invalid (lower > upper) range means "fit the data".
    void setValueRange(double lower, double upper);
    void setMarkedCells(const std::vector<QPoint>& cells); ///< QPoint(col, row), red crosses
    /// A further kind of marker (drawn above the crosses) with its own style; returns its index for
    /// setMarkedCells(index, cells). The crosses are index 0.
    int addMarkerSet(const QCPScatterStyle& style, const QString& name);
    void setMarkedCells(int set, const std::vector<QPoint>& cells);
    /// The marked cells of a set, QPoint(col, row), ordered by column.
    std::vector<QPoint> markedCells(int set = 0) const;
    /// Cells of a multi-selection, drawn as square outlines; QPoint(col, row).
    void setSelectedCells(const std::vector<QPoint>& cells);
    /// Keyboard modifiers of the click that emitted the last cellClicked (none for arrow keys).
    Qt::KeyboardModifiers lastClickModifiers() const { return m_clickModifiers; }
    /// Outline one cell; col = -1 outlines a whole row, row = -1 a whole column, both -1 nothing.
    void setHighlight(int row, int col);
    int highlightRow() const { return m_highlightRow; }
    int highlightColumn() const { return m_highlightCol; }
    void setTooltipProvider(std::function<QString(int row, int col)> provider);
    /// The hover text of a cell (rich text).
    QString tooltipAt(int row, int col) const;

    int rows() const { return m_rows; }
    int cols() const { return m_cols; }
    double value(int row, int col) const;
    /// The cell under a widget pixel as QPoint(col, row), or (-1, -1) outside the matrix.
    QPoint cellAt(const QPoint& pixel) const;
    /// The widget pixel at the centre of a cell (valid after a replot with the current size).
    QPoint cellCenter(int row, int col) const;
    QCPColorMap* colorMap() const { return m_map; }
    QCPColorScale* colorScale() const { return m_scale; }

public slots:
    void resetView();

signals:
    /// A left click without dragging on a cell, or an arrow key moving the highlighted cell.
    void cellClicked(int row, int col);
    /// A rubber band: a left drag with Shift (or Ctrl+Shift) held, from cell (row0, col0) to
    /// (row1, col1), instead of panning. Only emitted when both ends are cells.
    void cellsDragged(int row0, int col0, int row1, int col1, Qt::KeyboardModifiers modifiers);

protected:
    void keyPressEvent(QKeyEvent* event) override;
    /// QCustomPlot's layout pass, then the cell shape, the view bounds and the label steps for the
    /// size the layout gave, and the layout again when they changed.
    void updateLayout() override;

private:
    void onMousePress(QMouseEvent* event);
    void onMouseRelease(QMouseEvent* event);
    void onMouseMove(QMouseEvent* event);
    bool applyView(); ///< true when it changed a range, a size limit or a ticker
    bool updateTicks(double cellWidth, double cellHeight);
    /// Markers no larger than a cell (their style's size at most), so that small cells stay readable.
    void scaleMarkers(double cellWidth, double cellHeight);
    void updateHighlight();
    bool reveal(QCPRange& x, QCPRange& y) const; ///< shifts x, y to show the highlight; true if moved
    void syncScrollBars();
    void setRangesQuietly(const QCPRange& x, const QCPRange& y);

    QCPColorMap* m_map;
    QCPColorScale* m_scale;
    QCPGraph* m_markers;
    std::vector<QCPGraph*> m_markerSets; ///< [0] = m_markers
    std::vector<QCPScatterStyle> m_markerStyles; ///< each set's style at large cells
    QCPGraph* m_selectedCells;
    QCPItemRect* m_highlightRect;
    QCPItemRect* m_band;      // rubber band while shift-dragging
    bool m_banding = false;
    int m_rows = 0;
    int m_cols = 0;
    std::vector<double> m_values;
    QStringList m_rowLabels;
    QStringList m_colLabels;
    double m_lower = 1;
    double m_upper = 0;
    int m_highlightRow = -1;
    int m_highlightCol = -1;
    QPoint m_pressPos;
    Qt::KeyboardModifiers m_clickModifiers;
    std::function<QString(int, int)> m_tooltip;
    CellShape m_shape = CellShape::Fill;
    int m_minCell = 4;
    bool m_userView = false; ///< zoomed or panned by the user: keep that view instead of fitting
    bool m_applying = false; ///< ranges being set by the plot itself, not by the user
    bool m_reveal = false;   ///< bring the highlighted cell into view at the next layout
    int m_stepX = 0;
    int m_stepY = 0;
    bool m_rotatedX = false;
    QScrollBar* m_hbar = nullptr;
    QScrollBar* m_vbar = nullptr;
};

} // namespace moewb
