// SPDX-License-Identifier: MIT
#include "models/outliertablemodel.h"

#include <cmath>

namespace moewb {

OutlierTableModel::OutlierTableModel(QObject* parent)
    : QAbstractTableModel(parent)
{
}

OutlierTableModel::~OutlierTableModel() = default;

void OutlierTableModel::setStats(const CalibStats* stats)
{
    beginResetModel();
    m_stats = stats;
    endResetModel();
}

int OutlierTableModel::rowOf(const QString& linear) const
{
    if (!m_stats || linear.isEmpty())
        return -1;
    const std::string name = linear.toStdString();
    for (size_t i = 0; i < m_stats->linears.size(); ++i)
        if (m_stats->linears[i].name == name)
            return int(i);
    return -1;
}

const LinearStats* OutlierTableModel::linearAt(int row) const
{
    if (!m_stats || row < 0 || row >= int(m_stats->linears.size()))
        return nullptr;
    return &m_stats->linears[size_t(row)];
}

int OutlierTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() || !m_stats ? 0 : int(m_stats->linears.size());
}

int OutlierTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant OutlierTableModel::data(const QModelIndex& index, int role) const
{
    const LinearStats* l = index.isValid() ? linearAt(index.row()) : nullptr;
    if (!l)
        return {};
    const bool scored = !std::isnan(l->outlierScore);
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case NameColumn: return QString::fromStdString(l->name);
        case LayerColumn: return qlonglong(l->layer);
        case ExpertColumn: return l->expert >= 0 ? QVariant(qlonglong(l->expert)) : QVariant(QString());
        case RoleColumn: return QString::fromStdString(l->role);
        case ShapeColumn: return QStringLiteral("%1 × %2").arg(l->outFeatures).arg(l->inFeatures);
        case ScoreColumn: return scored ? QVariant(double(l->outlierScore)) : QVariant(QString());
        case ColumnColumn: return l->outlierColumn >= 0 ? QVariant(qlonglong(l->outlierColumn)) : QVariant(QString());
        case TokensColumn: return qlonglong(l->tokens);
        }
        return {};
    }
    if (role == SortRole) {
        switch (index.column()) {
        case NameColumn: return index.row(); // file order
        case LayerColumn: return qlonglong(l->layer);
        case ExpertColumn: return qlonglong(l->expert);
        case RoleColumn: return QString::fromStdString(l->role);
        case ShapeColumn: return qlonglong(l->outFeatures * l->inFeatures);
        case ScoreColumn: return scored ? double(l->outlierScore) : -1.0;
        case ColumnColumn: return qlonglong(l->outlierColumn);
        case TokensColumn: return qlonglong(l->tokens);
        }
        return {};
    }
    if (role == LinearIndexRole)
        return index.row();
    if (role == Qt::TextAlignmentRole && index.column() != NameColumn && index.column() != RoleColumn)
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole && index.column() == ScoreColumn)
        return tr("max over input columns j of max_i |W_ij| / mean_i |W_ij|");
    return {};
}

QVariant OutlierTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole)
        return {};
    if (orientation == Qt::Vertical)
        return section + 1;
    switch (section) {
    case NameColumn: return tr("Linear");
    case LayerColumn: return tr("Layer");
    case ExpertColumn: return tr("Expert");
    case RoleColumn: return tr("Role");
    case ShapeColumn: return tr("Shape (out × in)");
    case ScoreColumn: return tr("Outlier score");
    case ColumnColumn: return tr("Column");
    case TokensColumn: return tr("Tokens");
    }
    return {};
}

} // namespace moewb
