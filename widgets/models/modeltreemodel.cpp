// SPDX-License-Identifier: MIT
#include "models/modeltreemodel.h"

#include <QLocale>

#include <algorithm>
#include <cmath>
#include <map>

namespace moewb {

struct ModelTreeModel::Node {
    NodeKind kind = NodeKind::Group;
    QString name;        // display name
    QString tensor;      // linear: tensor name
    QString role;        // linear: role name
    int layer = -1;
    int expert = -1;
    int64_t inFeatures = 0;
    int64_t outFeatures = 0;
    int64_t parameters = 0;  // subtree sum
    double outlier = std::nan(""); // subtree max
    double tokens = std::nan("");  // linear: rows seen; expert/layer: router counts
    Node* parent = nullptr;
    int row = 0;
    std::vector<std::unique_ptr<Node>> children;

    Node* child(const QString& childName, NodeKind childKind)
    {
        for (auto& c : children)
            if (c->name == childName && c->kind == childKind)
                return c.get();
        auto node = std::make_unique<Node>();
        node->kind = childKind;
        node->name = childName;
        node->parent = this;
        node->layer = layer;
        node->expert = expert;
        node->row = int(children.size());
        children.push_back(std::move(node));
        return children.back().get();
    }
};

namespace {
struct LinearEntry {
    std::string name, role;
    int64_t layer, expert, in, out, tokens;
    double outlier;
};

// "expert.gate" → group path and the linear's short name.
void placement(const std::string& role, QStringList& path, QString& shortName)
{
    const QString r = QString::fromStdString(role);
    if (r.endsWith(QLatin1String("_proj")) && r.size() == 6) { // q_proj k_proj v_proj o_proj
        path << QStringLiteral("attention");
        shortName = r;
    } else if (r == QLatin1String("router") || r == QLatin1String("shared_expert_gate")) {
        path << QStringLiteral("MoE");
        shortName = r;
    } else if (r.startsWith(QLatin1String("expert."))) {
        path << QStringLiteral("MoE");
        shortName = r.mid(7);
    } else if (r.startsWith(QLatin1String("shared."))) {
        path << QStringLiteral("MoE") << QStringLiteral("shared expert");
        shortName = r.mid(7);
    } else if (r.startsWith(QLatin1String("dense."))) {
        path << QStringLiteral("MLP");
        shortName = r.mid(6);
    } else {
        path << QStringLiteral("other");
        shortName = r;
    }
}
} // namespace

ModelTreeModel::ModelTreeModel(QObject* parent)
    : QAbstractItemModel(parent)
    , m_root(std::make_unique<Node>())
{
}

ModelTreeModel::~ModelTreeModel() = default;

void ModelTreeModel::setSource(const ModelConfig* config, const CalibStats* stats)
{
    std::vector<LinearEntry> entries;
    if (stats && !stats->linears.empty()) {
        for (const LinearStats& l : stats->linears)
            entries.push_back({l.name, l.role, l.layer, l.expert, l.inFeatures, l.outFeatures, l.tokens,
                               double(l.outlierScore)});
    } else if (config) {
        for (const LinearInfo& l : listLinears(*config))
            entries.push_back({l.name, linearRoleName(l.role), l.layer, l.expert, l.inFeatures, l.outFeatures, -1,
                               std::nan("")});
    }
    int64_t numLayers = stats ? stats->numLayers : config ? config->numLayers : 0;
    for (const LinearEntry& e : entries)
        numLayers = std::max(numLayers, e.layer + 1);

    beginResetModel();
    m_root = std::make_unique<Node>();
    for (int64_t l = 0; l < numLayers; ++l) {
        Node* layer = m_root->child(QStringLiteral("layer %1").arg(l), NodeKind::Layer);
        layer->layer = int(l);
        if (const RouterStats* r = stats ? stats->router(l) : nullptr)
            layer->tokens = double(r->tokens);
    }
    for (const LinearEntry& e : entries) {
        if (e.layer < 0)
            continue;
        Node* node = m_root->children[size_t(e.layer)].get();
        QStringList path;
        QString shortName;
        placement(e.role, path, shortName);
        for (const QString& group : path)
            node = node->child(group, NodeKind::Group);
        if (e.expert >= 0) {
            node = node->child(QStringLiteral("expert %1").arg(e.expert), NodeKind::Expert);
            node->expert = int(e.expert);
            if (const RouterStats* r = stats ? stats->router(e.layer) : nullptr)
                if (e.expert < int64_t(r->expertTokens.size()))
                    node->tokens = double(r->expertTokens[size_t(e.expert)]);
        }
        Node* leaf = node->child(shortName, NodeKind::Linear);
        leaf->tensor = QString::fromStdString(e.name);
        leaf->role = QString::fromStdString(e.role);
        leaf->expert = int(e.expert);
        leaf->inFeatures = e.in;
        leaf->outFeatures = e.out;
        leaf->parameters = e.in * e.out;
        leaf->outlier = e.outlier;
        leaf->tokens = e.tokens >= 0 ? double(e.tokens) : std::nan("");
        for (Node* up = leaf->parent; up; up = up->parent) {
            up->parameters += leaf->parameters;
            if (!std::isnan(leaf->outlier) && !(up->outlier >= leaf->outlier))
                up->outlier = leaf->outlier;
        }
    }
    endResetModel();
}

void ModelTreeModel::setMetric(TreeMetric metric)
{
    if (metric == m_metric)
        return;
    m_metric = metric;
    emit headerDataChanged(Qt::Horizontal, MetricColumn, MetricColumn);
    // every row's metric cell changes; a reset is simplest and keeps persistent indexes valid enough
    beginResetModel();
    endResetModel();
}

ModelTreeModel::Node* ModelTreeModel::nodeOf(const QModelIndex& index) const
{
    return index.isValid() ? static_cast<Node*>(index.internalPointer()) : m_root.get();
}

QModelIndex ModelTreeModel::indexOf(const Node* node) const
{
    if (!node || node == m_root.get())
        return {};
    return createIndex(node->row, 0, const_cast<Node*>(node));
}

QModelIndex ModelTreeModel::indexFor(int layer, int expert, const QString& linear) const
{
    if (layer < 0 || layer >= int(m_root->children.size()))
        return {};
    const Node* layerNode = m_root->children[size_t(layer)].get();
    const Node* best = layerNode;
    // depth-first search for the linear, remembering the expert node on the way
    std::vector<const Node*> stack {layerNode};
    while (!stack.empty()) {
        const Node* n = stack.back();
        stack.pop_back();
        if (!linear.isEmpty() && n->kind == NodeKind::Linear && n->tensor == linear)
            return indexOf(n);
        if (expert >= 0 && n->kind == NodeKind::Expert && n->expert == expert)
            best = n;
        for (auto it = n->children.rbegin(); it != n->children.rend(); ++it)
            stack.push_back(it->get());
    }
    return indexOf(best);
}

QModelIndex ModelTreeModel::index(int row, int column, const QModelIndex& parent) const
{
    if (column < 0 || column >= ColumnCount || (parent.isValid() && parent.column() != 0))
        return {};
    const Node* p = nodeOf(parent);
    if (row < 0 || row >= int(p->children.size()))
        return {};
    return createIndex(row, column, p->children[size_t(row)].get());
}

QModelIndex ModelTreeModel::parent(const QModelIndex& child) const
{
    if (!child.isValid())
        return {};
    return indexOf(nodeOf(child)->parent);
}

int ModelTreeModel::rowCount(const QModelIndex& parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return 0;
    return int(nodeOf(parent)->children.size());
}

int ModelTreeModel::columnCount(const QModelIndex&) const
{
    return ColumnCount;
}

double ModelTreeModel::metricValue(const Node* node) const
{
    return m_metric == TreeMetric::OutlierScore ? node->outlier : node->tokens;
}

QVariant ModelTreeModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid())
        return {};
    const Node* n = nodeOf(index);
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case NameColumn: return n->name;
        case ShapeColumn:
            return n->kind == NodeKind::Linear ? QStringLiteral("%1 × %2").arg(n->outFeatures).arg(n->inFeatures)
                                               : QString();
        case ParametersColumn: return n->parameters > 0 ? QLocale().toString(qlonglong(n->parameters)) : QString();
        case MetricColumn: {
            const double v = metricValue(n);
            if (std::isnan(v))
                return QString();
            return m_metric == TreeMetric::Tokens ? QString::number(qlonglong(v)) : QString::number(v, 'f', 2);
        }
        }
        return {};
    case Qt::ToolTipRole:
        if (n->kind == NodeKind::Linear)
            return QStringLiteral("%1\nrole %2, %3 × %4")
                .arg(n->tensor, n->role)
                .arg(n->outFeatures)
                .arg(n->inFeatures);
        return {};
    case Qt::TextAlignmentRole:
        return index.column() == NameColumn ? QVariant() : QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case LayerRole: return n->layer;
    case ExpertRole: return n->expert;
    case LinearRole: return n->tensor;
    case KindRole: return int(n->kind);
    case FilterRole: return n->tensor.isEmpty() ? n->name : n->name + QLatin1Char(' ') + n->tensor;
    case SortRole:
        switch (index.column()) {
        case NameColumn: return n->row; // tree order
        case ShapeColumn:
        case ParametersColumn: return qlonglong(n->parameters);
        case MetricColumn: {
            const double v = metricValue(n);
            return std::isnan(v) ? -1.0 : v;
        }
        }
        return {};
    }
    return {};
}

QVariant ModelTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case NameColumn: return tr("Name");
    case ShapeColumn: return tr("Shape (out × in)");
    case ParametersColumn: return tr("Parameters");
    case MetricColumn: return m_metric == TreeMetric::OutlierScore ? tr("Outlier score") : tr("Tokens");
    }
    return {};
}

} // namespace moewb
