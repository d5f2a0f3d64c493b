// SPDX-License-Identifier: MIT
#include "alloc/allocationitemmodel.h"

#include "alloc/bitscolors.h"
#include "alloc/planeditmodel.h"

#include "moewb/plan/prune_spec.h"
#include "moewb/plan/target_groups.h"
#include "moewb/core/error.h"

#include <QFont>
#include <QLocale>

#include <algorithm>
#include <map>

namespace moewb {

namespace {

constexpr int64_t kMixed = -1000;

bool isAttention(LinearRole r)
{
    return r == LinearRole::Q || r == LinearRole::K || r == LinearRole::V || r == LinearRole::O;
}
bool isShared(LinearRole r)
{
    return r == LinearRole::SharedGateProj || r == LinearRole::SharedUp || r == LinearRole::SharedDown;
}
bool isDense(LinearRole r)
{
    return r == LinearRole::DenseGate || r == LinearRole::DenseUp || r == LinearRole::DenseDown;
}

QString bytesText(int64_t bytes)
{
    return QLocale::system().formattedDataSize(bytes, 2, QLocale::DataSizeSIFormat);
}

} // namespace

AllocationItemModel::AllocationItemModel(PlanEditModel* plan, QObject* parent)
    : QAbstractItemModel(parent)
    , m_plan(plan)
{
    connect(m_plan, &PlanEditModel::modelConfigChanged, this, &AllocationItemModel::rebuild);
    connect(m_plan, &PlanEditModel::entriesChanged, this, &AllocationItemModel::onEntriesChanged);
    rebuild();
}

AllocationItemModel::~AllocationItemModel() = default;

void AllocationItemModel::rebuild()
{
    beginResetModel();
    m_nodes.clear();
    m_top.clear();
    const std::vector<PlanEntry>& es = m_plan->entries();
    m_entryNode.assign(es.size(), -1);
    m_offTarget.clear();
    refreshTargetMarks();
    auto add = [this](NodeKind kind, int parent, int layer, int expert, int begin) {
        Node n;
        n.kind = kind;
        n.parent = parent;
        n.layer = layer;
        n.expert = expert;
        n.begin = begin;
        n.end = begin;
        if (parent < 0) {
            n.row = int(m_top.size());
            m_top.push_back(int(m_nodes.size()));
        } else {
            n.row = int(m_nodes[size_t(parent)].children.size());
            m_nodes[size_t(parent)].children.push_back(int(m_nodes.size()));
        }
        m_nodes.push_back(std::move(n));
        return int(m_nodes.size()) - 1;
    };
    int layerNode = -1, groupNode = -1, expertNode = -1;
    for (size_t i = 0; i < es.size(); ++i) {
        const PlanEntry& e = es[i];
        if (layerNode < 0 || m_nodes[size_t(layerNode)].layer != e.layer) {
            layerNode = add(NodeKind::Layer, -1, int(e.layer), -1, int(i));
            groupNode = expertNode = -1;
        }
        const NodeKind groupKind = isAttention(e.role) ? NodeKind::Attention
            : isDense(e.role)                          ? NodeKind::Mlp
                                                       : NodeKind::Moe;
        if (groupNode < 0 || m_nodes[size_t(groupNode)].kind != groupKind) {
            groupNode = add(groupKind, layerNode, int(e.layer), -1, int(i));
            expertNode = -1;
        }
        int parent = groupNode;
        if (groupKind == NodeKind::Moe) {
            const NodeKind ek = isShared(e.role) ? NodeKind::SharedExpert : NodeKind::Expert;
            if (expertNode < 0 || m_nodes[size_t(expertNode)].kind != ek
                || m_nodes[size_t(expertNode)].expert != int(e.expert))
                expertNode = add(ek, groupNode, int(e.layer), int(e.expert), int(i));
            parent = expertNode;
        }
        const int leaf = add(NodeKind::Linear, parent, int(e.layer), int(e.expert), int(i));
        m_entryNode[i] = leaf;
        for (int n = leaf; n >= 0; n = m_nodes[size_t(n)].parent)
            m_nodes[size_t(n)].end = int(i) + 1;
    }
    endResetModel();
}

std::vector<int> AllocationItemModel::refreshTargetMarks()
{
    const std::vector<PlanEntry>& es = m_plan->entries();
    std::vector<char> marks(es.size(), 0);
    if (m_plan->plan().target != PlanTarget::Gptq) // per-linear widths: nothing to check
        for (const TargetViolation& v : checkTarget(es, m_plan->plan().target))
            for (size_t i : v.members)
                marks[i] = 1;
    std::vector<int> flipped;
    for (size_t i = 0; i < marks.size(); ++i)
        if (i >= m_offTarget.size() || marks[i] != m_offTarget[i])
            flipped.push_back(int(i));
    m_offTarget = std::move(marks);
    return flipped;
}

bool AllocationItemModel::anyOffTarget(const Node& n) const
{
    for (int i = n.begin; i < n.end; ++i)
        if (size_t(i) < m_offTarget.size() && m_offTarget[size_t(i)])
            return true;
    return false;
}

void AllocationItemModel::onEntriesChanged(const QVector<int>& changedIn, bool all)
{
    // A group's other members change their mark with the edited one: they are repainted too.
    QVector<int> changed = changedIn;
    for (int i : refreshTargetMarks())
        changed.push_back(i);
    if (all) {
        if (m_entryNode.size() != m_plan->entries().size())
            return; // a new layout: rebuild() on modelConfigChanged
        for (const Node& n : m_nodes)
            n.summary.valid = false;
        // Every value may have changed, the structure did not. One dataChanged per parent would be
        // ~15k signals on DeepSeek-V3 (each a linear search in QTreeView); a layout change with no
        // moved index is what views and proxies handle in one pass (re-filter, re-sort, repaint).
        emit layoutAboutToBeChanged({}, QAbstractItemModel::NoLayoutChangeHint);
        emit layoutChanged({}, QAbstractItemModel::NoLayoutChangeHint);
        if (!m_top.empty())
            emit dataChanged(index(0, 0), index(int(m_top.size()) - 1, ColumnCount - 1));
        return;
    }
    // parent node (-1: top) → [min row, max row] of changed children
    std::map<int, std::pair<int, int>> ranges;
    auto mark = [&](int node) {
        const Node& n = m_nodes[size_t(node)];
        auto [it, fresh] = ranges.try_emplace(n.parent, n.row, n.row);
        if (!fresh) {
            it->second.first = std::min(it->second.first, n.row);
            it->second.second = std::max(it->second.second, n.row);
        }
    };
    std::vector<char> seen(m_nodes.size(), 0);
    for (int entry : changed) {
        if (entry < 0 || size_t(entry) >= m_entryNode.size())
            continue;
        for (int n = m_entryNode[size_t(entry)]; n >= 0 && !seen[size_t(n)]; n = m_nodes[size_t(n)].parent) {
            seen[size_t(n)] = 1;
            m_nodes[size_t(n)].summary.valid = false;
            mark(n);
        }
    }
    for (const auto& [parent, rows] : ranges) {
        const QModelIndex p = parent < 0 ? QModelIndex() : indexOfNode(parent);
        emit dataChanged(index(rows.first, 0, p), index(rows.second, ColumnCount - 1, p));
    }
}

/// "" (not pruned), "50% wanda", "2:4 sparsegpt".
QString AllocationItemModel::pruningText(const PlanEntry& e)
{
    if (e.sparsity <= 0)
        return {};
    const QString amount = e.pattern.m > 0 ? QString::fromStdString(prunePatternName(e.pattern))
                                           : QStringLiteral("%1%").arg(e.sparsity * 100.0, 0, 'g', 4);
    return amount + QLatin1Char(' ') + QString::fromStdString(e.pruneMethod);
}

const AllocationItemModel::Summary& AllocationItemModel::summaryOf(int node) const
{
    const Node& n = m_nodes[size_t(node)];
    Summary& s = n.summary;
    if (s.valid)
        return s;
    s = Summary{};
    const std::vector<PlanEntry>& es = m_plan->entries();
    const auto& overrides = m_plan->plan().overrides;
    for (int i = n.begin; i < n.end; ++i) {
        const PlanEntry& e = es[size_t(i)];
        if (i == n.begin) {
            s.bits = e.bits;
            s.groupSize = e.groupSize;
            s.sym = e.sym ? 1 : 0;
            s.method = QString::fromStdString(e.method);
            s.pruning = pruningText(e);
        } else {
            if (s.bits != e.bits)
                s.bits = kMixed;
            if (s.groupSize != e.groupSize)
                s.groupSize = kMixed;
            if (s.sym != (e.sym ? 1 : 0))
                s.sym = -1;
            if (!s.method.isEmpty() && s.method != QLatin1String(e.method.c_str()))
                s.method.clear();
            if (s.pruning != QLatin1String("?") && s.pruning != pruningText(e))
                s.pruning = QStringLiteral("?");
        }
        if (n.end - n.begin <= 3 || n.kind == NodeKind::Linear) // cheap enough for any row, but only
            s.overridden += overrides.count(e.name) ? 1 : 0;   // leaves and experts show it
        if (e.dropped) {
            ++s.dropped;
            continue;
        }
        const int64_t numel = e.inFeatures * e.outFeatures;
        s.bytes += gptqLinearBytes(e.inFeatures, e.outFeatures, e.bits, e.groupSize);
        s.params += numel;
        s.bitParams += e.bits * numel;
        s.nonzero += numel - (e.sparsity > 0 ? e.outFeatures * prunedPerRow(e.pruneSpec(), e.inFeatures) : 0);
    }
    s.valid = true;
    return s;
}

// ---------------------------------------------------------------------------------- lookups
std::vector<int> AllocationItemModel::entriesOf(const QModelIndex& index) const
{
    const int node = nodeOf(index);
    std::vector<int> out;
    if (node < 0)
        return out;
    for (int i = m_nodes[size_t(node)].begin; i < m_nodes[size_t(node)].end; ++i)
        out.push_back(i);
    return out;
}

std::vector<int> AllocationItemModel::entriesOf(const QModelIndexList& indices) const
{
    std::vector<char> in(m_plan->entries().size(), 0);
    for (const QModelIndex& idx : indices) {
        const int node = nodeOf(idx);
        if (node >= 0)
            std::fill(in.begin() + m_nodes[size_t(node)].begin, in.begin() + m_nodes[size_t(node)].end, 1);
    }
    std::vector<int> out;
    for (size_t i = 0; i < in.size(); ++i)
        if (in[i])
            out.push_back(int(i));
    return out;
}

QModelIndex AllocationItemModel::indexForEntry(int entry, int column) const
{
    if (entry < 0 || size_t(entry) >= m_entryNode.size())
        return {};
    return indexOfNode(m_entryNode[size_t(entry)], column);
}

QModelIndex AllocationItemModel::indexForLayer(int layer) const
{
    for (int n : m_top)
        if (m_nodes[size_t(n)].layer == layer)
            return indexOfNode(n);
    return {};
}

QModelIndex AllocationItemModel::indexForExpert(int layer, int expert) const
{
    const int l = nodeOf(indexForLayer(layer));
    if (l < 0)
        return {};
    for (int g : m_nodes[size_t(l)].children) {
        if (m_nodes[size_t(g)].kind != NodeKind::Moe)
            continue;
        for (int c : m_nodes[size_t(g)].children) {
            const Node& n = m_nodes[size_t(c)];
            if ((expert < 0 && n.kind == NodeKind::SharedExpert) || (n.kind == NodeKind::Expert && n.expert == expert))
                return indexOfNode(c);
        }
    }
    return {};
}

QModelIndex AllocationItemModel::indexFor(int layer, int expert, const QString& linear) const
{
    if (!linear.isEmpty()) {
        const int e = m_plan->entryIndex(linear.toStdString());
        if (e >= 0)
            return indexForEntry(e);
    }
    if (expert >= 0) {
        const QModelIndex i = indexForExpert(layer, expert);
        if (i.isValid())
            return i;
    }
    return indexForLayer(layer);
}

// ------------------------------------------------------------------------------- structure
int AllocationItemModel::nodeOf(const QModelIndex& index) const
{
    if (!index.isValid() || index.model() != this)
        return -1;
    return int(index.internalId());
}

QModelIndex AllocationItemModel::indexOfNode(int node, int column) const
{
    if (node < 0)
        return {};
    return createIndex(m_nodes[size_t(node)].row, column, quintptr(node));
}

QModelIndex AllocationItemModel::index(int row, int column, const QModelIndex& parent) const
{
    if (row < 0 || column < 0 || column >= ColumnCount)
        return {};
    const int p = nodeOf(parent);
    const std::vector<int>& kids = p < 0 ? m_top : m_nodes[size_t(p)].children;
    if (size_t(row) >= kids.size())
        return {};
    return createIndex(row, column, quintptr(kids[size_t(row)]));
}

QModelIndex AllocationItemModel::parent(const QModelIndex& child) const
{
    const int n = nodeOf(child);
    if (n < 0)
        return {};
    return indexOfNode(m_nodes[size_t(n)].parent);
}

int AllocationItemModel::rowCount(const QModelIndex& parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return 0;
    const int p = nodeOf(parent);
    return int(p < 0 ? m_top.size() : m_nodes[size_t(p)].children.size());
}

int AllocationItemModel::columnCount(const QModelIndex&) const
{
    return ColumnCount;
}

QVariant AllocationItemModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case NameColumn: return tr("Module");
    case BitsColumn: return tr("Bits");
    case GroupSizeColumn: return tr("Group");
    case SymColumn: return tr("Sym");
    case MethodColumn: return tr("Method");
    case SparsityColumn: return tr("Pruning");
    case ShapeColumn: return tr("Shape");
    case BytesColumn: return tr("Size");
    default: return {};
    }
}

QString AllocationItemModel::nodeName(const Node& n) const
{
    switch (n.kind) {
    case NodeKind::Layer: {
        const ModelConfig* cfg = m_plan->modelConfig();
        const bool moe = cfg && cfg->isMoeLayer(n.layer);
        return moe ? tr("layer %1").arg(n.layer) : tr("layer %1 (dense)").arg(n.layer);
    }
    case NodeKind::Attention: return tr("attention");
    case NodeKind::Moe: return tr("MoE");
    case NodeKind::Mlp: return tr("MLP");
    case NodeKind::Expert: return tr("expert %1").arg(n.expert);
    case NodeKind::SharedExpert: return tr("shared expert");
    case NodeKind::Linear: {
        const PlanEntry& e = m_plan->entries()[size_t(n.begin)];
        const QString tail = QString::fromStdString(e.name.substr(e.name.rfind('.') + 1));
        if (tail.endsWith(QLatin1String("_proj")))
            return tail;
        const std::string role = linearRoleName(e.role);
        return tail + QStringLiteral(" (") + QString::fromStdString(role.substr(role.find('.') + 1)) + QLatin1Char(')');
    }
    }
    return {};
}

QVariant AllocationItemModel::data(const QModelIndex& index, int role) const
{
    const int node = nodeOf(index);
    if (node < 0)
        return {};
    return nodeData(node, index.column(), role);
}

QVariant AllocationItemModel::nodeData(int node, int column, int role) const
{
    const Node& n = m_nodes[size_t(node)];
    switch (role) {
    case LayerRole: return n.layer;
    case ExpertRole: return n.kind == NodeKind::SharedExpert ? -1 : n.expert;
    case LinearRole:
        return n.kind == NodeKind::Linear ? QString::fromStdString(m_plan->entries()[size_t(n.begin)].name) : QString();
    case KindRole: return int(n.kind);
    case ChoicesRole:
        switch (column) {
        case BitsColumn: return QVariantList{2, 3, 4, 8, 16};
        case GroupSizeColumn: return QVariantList{32, 64, 128, -1};
        case SymColumn: return QVariantList{true, false};
        case MethodColumn: return QVariantList{QStringLiteral("gptq"), QStringLiteral("rtn")};
        case SparsityColumn:
            return QVariantList{QStringLiteral("0"), QStringLiteral("25%"), QStringLiteral("50%"), QStringLiteral("2:4"),
                                QStringLiteral("4:8")};
        default: return {};
        }
    default: break;
    }
    const Summary& s = summaryOf(node);
    if (role == AverageBitsRole)
        return s.params ? double(s.bitParams) / double(s.params) : 0.0;
    if (role == OffTargetRole)
        return anyOffTarget(n);
    if (role == Qt::BackgroundRole && column == NameColumn && anyOffTarget(n))
        return QColor(255, 214, 153); // orange: the target's runtime cannot load these widths
    const bool allDropped = s.dropped == n.end - n.begin;
    if (role == Qt::CheckStateRole && column == NameColumn) {
        const ModelConfig* cfg = m_plan->modelConfig();
        switch (n.kind) {
        case NodeKind::Layer: return m_plan->isBlockDropped(n.layer) ? Qt::Unchecked : Qt::Checked;
        case NodeKind::Moe:
            if (cfg && cfg->isMoeLayer(n.layer))
                return m_plan->isLayerDropped(n.layer) ? Qt::Unchecked : Qt::Checked;
            return {};
        case NodeKind::Expert: return m_plan->isExpertDropped(n.layer, n.expert) ? Qt::Unchecked : Qt::Checked;
        default: return {};
        }
    }
    if (role == Qt::ForegroundRole && allDropped)
        return QColor(140, 140, 140);
    if (role == Qt::FontRole) {
        QFont f;
        f.setStrikeOut(allDropped);
        f.setBold(n.kind == NodeKind::Linear && s.overridden > 0 && column != NameColumn);
        return f;
    }
    if (role == Qt::BackgroundRole && column == BitsColumn && !allDropped)
        return bitsColor(s.params ? double(s.bitParams) / double(s.params) : double(s.bits));
    // Pruning overlay: the more weights pruned, the deeper the violet (white = dense).
    if (role == Qt::BackgroundRole && column == SparsityColumn && !allDropped && s.params > 0 && s.nonzero < s.params) {
        const double pruned = 1.0 - double(s.nonzero) / double(s.params);
        return QColor::fromRgbF(1.0 - 0.45 * pruned, 1.0 - 0.6 * pruned, 1.0 - 0.1 * pruned);
    }
    if (role == Qt::TextAlignmentRole && column != NameColumn)
        return int(column == BytesColumn ? Qt::AlignRight | Qt::AlignVCenter : Qt::AlignCenter);
    if (role == Qt::ToolTipRole) {
        if (n.kind != NodeKind::Linear)
            return tr("%1: %2 linears, %3 dropped, %4 (average %5 bits)")
                .arg(nodeName(n))
                .arg(n.end - n.begin)
                .arg(s.dropped)
                .arg(bytesText(s.bytes))
                .arg(s.params ? double(s.bitParams) / double(s.params) : 0.0, 0, 'f', 3);
        const PlanEntry& e = m_plan->entries()[size_t(n.begin)];
        const PlanEntry& r = m_plan->ruleEntry(n.begin);
        return tr("%1\nfrom defaults and rules: %2 bits, group %3, %4, %5%6%7")
            .arg(QString::fromStdString(e.name))
            .arg(r.bits)
            .arg(r.groupSize)
            .arg(r.sym ? tr("sym") : tr("asym"))
            .arg(QString::fromStdString(r.method))
            .arg(s.overridden ? tr("\nhand-tuned (override)") : QString())
            .arg(e.dropped ? tr("\ndropped") : QString())
            + (anyOffTarget(n) ? tr("\n%1 stores this linear's group at one width, but it has mixed widths")
                                     .arg(QString::fromUtf8(planTargetRuntime(m_plan->plan().target)))
                               : QString());
    }
    if (role != Qt::DisplayRole && role != Qt::EditRole)
        return {};
    const bool edit = role == Qt::EditRole;
    const QString mixed = edit ? QString() : tr("mixed");
    switch (column) {
    case NameColumn: return nodeName(n);
    case BitsColumn:
        if (s.bits == kMixed)
            return edit ? QVariant() : QVariant(mixed);
        return edit ? QVariant(qlonglong(s.bits)) : QVariant(s.bits == 16 ? tr("16 (bf16)") : QString::number(s.bits));
    case GroupSizeColumn:
        if (s.groupSize == kMixed)
            return edit ? QVariant() : QVariant(mixed);
        return edit ? QVariant(qlonglong(s.groupSize)) : QVariant(s.groupSize < 0 ? tr("row") : QString::number(s.groupSize));
    case SymColumn:
        if (s.sym < 0)
            return edit ? QVariant() : QVariant(mixed);
        return edit ? QVariant(s.sym == 1) : QVariant(s.sym == 1 ? tr("sym") : tr("asym"));
    case MethodColumn:
        if (s.method.isEmpty())
            return edit ? QVariant() : QVariant(mixed);
        return s.method;
    case SparsityColumn:
        if (s.pruning == QLatin1String("?"))
            return edit ? QVariant() : QVariant(mixed);
        if (edit)
            return s.pruning.isEmpty() ? QStringLiteral("0") : s.pruning.section(QLatin1Char(' '), 0, 0);
        return s.pruning.isEmpty() ? QStringLiteral("—") : s.pruning;
    case ShapeColumn:
        if (edit)
            return {};
        if (n.kind == NodeKind::Linear) {
            const PlanEntry& e = m_plan->entries()[size_t(n.begin)];
            return QStringLiteral("%1 × %2").arg(e.outFeatures).arg(e.inFeatures);
        }
        return n.end - n.begin == 1 ? tr("1 linear") : tr("%1 linears").arg(n.end - n.begin);
    case BytesColumn:
        if (edit)
            return qlonglong(s.bytes);
        return allDropped ? tr("dropped") : bytesText(s.bytes);
    default: return {};
    }
}

Qt::ItemFlags AllocationItemModel::flags(const QModelIndex& index) const
{
    const int node = nodeOf(index);
    if (node < 0)
        return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    const int c = index.column();
    if (c == BitsColumn || c == GroupSizeColumn || c == SymColumn || c == MethodColumn || c == SparsityColumn)
        f |= Qt::ItemIsEditable;
    if (c == NameColumn && nodeData(node, c, Qt::CheckStateRole).isValid())
        f |= Qt::ItemIsUserCheckable;
    if (m_nodes[size_t(node)].kind == NodeKind::Linear)
        f |= Qt::ItemNeverHasChildren;
    return f;
}

bool AllocationItemModel::setData(const QModelIndex& index, const QVariant& value, int role)
{
    const int node = nodeOf(index);
    if (node < 0)
        return false;
    try {
        m_lastError.clear();
        if (role == Qt::CheckStateRole && index.column() == NameColumn) {
            const Node& n = m_nodes[size_t(node)];
            const bool drop = value.toInt() == Qt::Unchecked;
            switch (n.kind) {
            case NodeKind::Layer: m_plan->setBlockDropped(n.layer, drop); return true;
            case NodeKind::Moe: m_plan->setLayerDropped(n.layer, drop); return true;
            case NodeKind::Expert: m_plan->setExpertsDropped({{n.layer, n.expert}}, drop); return true;
            default: return false;
            }
        }
        if (role != Qt::EditRole)
            return false;
        return setNodeData(node, index.column(), value);
    } catch (const Error& e) {
        m_lastError = QString::fromStdString(e.what());
        emit editFailed(m_lastError);
        return false;
    }
}

bool AllocationItemModel::setNodeData(int node, int column, const QVariant& value)
{
    if (!value.isValid())
        return false;
    const std::vector<int> entries = entriesOf(indexOfNode(node));
    switch (column) {
    case BitsColumn: m_plan->setBits(entries, value.toLongLong()); return true;
    case GroupSizeColumn: m_plan->setGroupSize(entries, value.toLongLong()); return true;
    case SymColumn: m_plan->setSym(entries, value.toBool()); return true;
    case MethodColumn: m_plan->setMethod(entries, value.toString().toStdString()); return true;
    case SparsityColumn: m_plan->setPruning(entries, value.toString().toStdString()); return true;
    default: return false;
    }
}

} // namespace moewb
