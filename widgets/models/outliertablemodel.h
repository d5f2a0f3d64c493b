// SPDX-License-Identifier: MIT
// One row per linear of the stats (in the file's order) with its weight outlier score
// (docs/algorithms.md §5.2: max over columns of peak |W| / mean |W|), for the sortable outlier table.
#pragma once

#include "moewb/stats/stats.h"

#include <QAbstractTableModel>

namespace moewb {

class OutlierTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { NameColumn, LayerColumn, ExpertColumn, RoleColumn, ShapeColumn, ScoreColumn, ColumnColumn,
                  TokensColumn, ColumnCount };
    enum Role { SortRole = Qt::UserRole + 1, LinearIndexRole };

    explicit OutlierTableModel(QObject* parent = nullptr);
    ~OutlierTableModel() override;

    /// The model keeps the pointer; call again (or with nullptr) before the stats go away.
    void setStats(const CalibStats* stats);
    /// Row of the linear with this tensor name, -1 if none.
    int rowOf(const QString& linear) const;
    const LinearStats* linearAt(int row) const;

    int rowCount(const QModelIndex& parent = QModelIndex()) const override;
    int columnCount(const QModelIndex& parent = QModelIndex()) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    const CalibStats* m_stats = nullptr;
};

} // namespace moewb
