// SPDX-License-Identifier: MIT
// The plan's ordered regex rules as an editable table (#12): match, bits, group size, sym, method and
// how many linears the regex matches. An empty cell leaves that field to earlier rules / defaults.
// Every edit is one PlanEditModel command; an invalid regex or value is refused with the one-line
// message in lastError() / editFailed(), and the plan stays as it was.
#pragma once

#include <QAbstractTableModel>
#include <QHash>

namespace moewb {

class PlanEditModel;

class RulesTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { MatchColumn, BitsColumn, GroupSizeColumn, SymColumn, MethodColumn, CountColumn, ColumnCount };

    explicit RulesTableModel(PlanEditModel* plan, QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = QModelIndex()) const override;
    int columnCount(const QModelIndex& parent = QModelIndex()) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    /// Linears of the model whose whole name the regex matches (cached per regex).
    int matchCount(const QString& regex) const;
    QString lastError() const { return m_lastError; }

signals:
    void editFailed(const QString& message);

private:
    void reset();

    PlanEditModel* m_plan;
    int m_rows = 0;
    mutable QHash<QString, int> m_counts;
    QString m_lastError;
};

} // namespace moewb
