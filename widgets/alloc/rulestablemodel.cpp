// SPDX-License-Identifier: MIT
#include "alloc/rulestablemodel.h"

#include "alloc/planeditmodel.h"

#include "moewb/core/error.h"

#include <regex>

namespace moewb {

RulesTableModel::RulesTableModel(PlanEditModel* plan, QObject* parent)
    : QAbstractTableModel(parent)
    , m_plan(plan)
{
    connect(m_plan, &PlanEditModel::modelConfigChanged, this, [this] { m_counts.clear(); });
    connect(m_plan, &PlanEditModel::planChanged, this, &RulesTableModel::reset);
    reset();
}

void RulesTableModel::reset()
{
    const int rows = int(m_plan->plan().rules.size());
    if (rows != m_rows) {
        beginResetModel();
        m_rows = rows;
        endResetModel();
    } else if (rows > 0) {
        emit dataChanged(index(0, 0), index(rows - 1, ColumnCount - 1));
    }
}

int RulesTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_rows;
}

int RulesTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant RulesTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole)
        return {};
    if (orientation == Qt::Vertical)
        return section + 1;
    switch (section) {
    case MatchColumn: return tr("Regex (whole name)");
    case BitsColumn: return tr("Bits");
    case GroupSizeColumn: return tr("Group");
    case SymColumn: return tr("Sym");
    case MethodColumn: return tr("Method");
    case CountColumn: return tr("Linears");
    default: return {};
    }
}

int RulesTableModel::matchCount(const QString& regex) const
{
    auto it = m_counts.find(regex);
    if (it != m_counts.end())
        return *it;
    int n = 0;
    try {
        const std::regex re(regex.toStdString(), std::regex::ECMAScript | std::regex::optimize);
        for (const PlanEntry& e : m_plan->entries())
            n += std::regex_match(e.name, re) ? 1 : 0;
    } catch (const std::regex_error&) {
        n = -1;
    }
    m_counts.insert(regex, n);
    return n;
}

QVariant RulesTableModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= m_rows)
        return {};
    const PlanRule& r = m_plan->plan().rules[size_t(index.row())];
    const QuantSettings& s = r.set;
    if (role == Qt::ToolTipRole)
        return tr("Applies to every linear whose whole name matches; later rules win, overrides win over rules. "
                  "Empty cells inherit.");
    if (role == Qt::TextAlignmentRole && index.column() != MatchColumn)
        return int(Qt::AlignCenter);
    if (role != Qt::DisplayRole && role != Qt::EditRole)
        return {};
    const bool edit = role == Qt::EditRole;
    switch (index.column()) {
    case MatchColumn: return QString::fromStdString(r.match);
    case BitsColumn: return s.bits ? QVariant(qlonglong(*s.bits)) : (edit ? QVariant() : QVariant(QString()));
    case GroupSizeColumn:
        return s.groupSize ? QVariant(qlonglong(*s.groupSize)) : (edit ? QVariant() : QVariant(QString()));
    case SymColumn:
        if (!s.sym)
            return edit ? QVariant() : QVariant(QString());
        return edit ? QVariant(*s.sym) : QVariant(*s.sym ? tr("sym") : tr("asym"));
    case MethodColumn: return s.method ? QString::fromStdString(*s.method) : QString();
    case CountColumn: return edit ? QVariant() : QVariant(matchCount(QString::fromStdString(r.match)));
    default: return {};
    }
}

Qt::ItemFlags RulesTableModel::flags(const QModelIndex& index) const
{
    if (!index.isValid())
        return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (index.column() != CountColumn)
        f |= Qt::ItemIsEditable;
    return f;
}

bool RulesTableModel::setData(const QModelIndex& index, const QVariant& value, int role)
{
    if (!index.isValid() || role != Qt::EditRole || index.row() >= m_rows)
        return false;
    PlanRule r = m_plan->plan().rules[size_t(index.row())];
    const QString text = value.toString().trimmed();
    const bool clear = text.isEmpty();
    bool ok = true;
    switch (index.column()) {
    case MatchColumn: r.match = value.toString().toStdString(); break;
    case BitsColumn:
        r.set.bits = clear ? std::nullopt : std::optional<int64_t>(text.toLongLong(&ok));
        break;
    case GroupSizeColumn:
        r.set.groupSize = clear ? std::nullopt : std::optional<int64_t>(text.toLongLong(&ok));
        break;
    case SymColumn:
        if (clear)
            r.set.sym.reset();
        else if (value.userType() == QMetaType::Bool)
            r.set.sym = value.toBool();
        else if (text == QLatin1String("sym") || text == QLatin1String("true") || text == QLatin1String("1"))
            r.set.sym = true;
        else if (text == QLatin1String("asym") || text == QLatin1String("false") || text == QLatin1String("0"))
            r.set.sym = false;
        else
            ok = false;
        break;
    case MethodColumn:
        r.set.method = clear ? std::nullopt : std::optional<std::string>(text.toStdString());
        break;
    default: return false;
    }
    m_lastError.clear();
    if (!ok) {
        m_lastError = tr("rule %1: '%2' is not a valid %3").arg(index.row() + 1).arg(text, headerData(index.column(), Qt::Horizontal).toString());
        emit editFailed(m_lastError);
        return false;
    }
    try {
        m_plan->setRule(index.row(), r);
    } catch (const Error& e) {
        m_lastError = QString::fromStdString(e.what());
        emit editFailed(m_lastError);
        return false;
    }
    return true;
}

} // namespace moewb
