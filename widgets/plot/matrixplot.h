// SPDX-License-Identifier: MIT
// A QCustomPlot showing one matrix as a colour map (one cell per value, no interpolation) with a
// colour scale, text tick labels, hover tooltips, click-to-select, crosses on marked cells and an
// outline on the highlighted cell. Row 0 is drawn at the top. Used by the routing heat map, the
// correlation view and the domain view.
#pragma once

#include <QPoint>
#include <QStringList>
#include <qcustomplot.h>

#include <functional>
#include <vector>

namespace moewb {

class MatrixPlot : public QCustomPlot {
    Q_OBJECT
public:
    explicit MatrixPlot(QWidget* parent = nullptr);
    ~MatrixPlot() override;

    /// values: rows × cols, row-major; NaN cells are grey.
    void setMatrix(int rows, int cols, std::vector<double> values, const QStringList& rowLabels,
                   const QStringList& colLabels);
    void setAxisTitles(const QString& x, const QString& y);
    void setValueTitle(const QString& title);
    void setGradient(const QCPColorGradient& gradient);
    /// Fixed colour range; an invalid (lower > upper) range means "fit the data".
    void setValueRange(double lower, double upper);
    void setMarkedCells(const std::vector<QPoint>& cells); ///< QPoint(col, row)
    /// Cells of a multi-selection, drawn as square outlines; QPoint(col, row).
    void setSelectedCells(const std::vector<QPoint>& cells);
    /// Keyboard modifiers of the click that emitted the last cellClicked (none for arrow keys).
    Qt::KeyboardModifiers lastClickModifiers() const { return m_clickModifiers; }
    /// Outline one cell; col = -1 outlines a whole row, row = -1 a whole column, both -1 nothing.
    void setHighlight(int row, int col);
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

private:
    void onMousePress(QMouseEvent* event);
    void onMouseRelease(QMouseEvent* event);
    void onMouseMove(QMouseEvent* event);
    void updateTicks();
    void updateHighlight();

    QCPColorMap* m_map;
    QCPColorScale* m_scale;
    QCPGraph* m_markers;
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
};

} // namespace moewb
