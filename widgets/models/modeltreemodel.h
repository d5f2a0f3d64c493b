// SPDX-License-Identifier: MIT
// The model as a tree: layer → attention (q/k/v/o) | MoE (router, expert i → gate/up/down, shared
// expert → gate/up/down) | MLP (dense layers) → linear. Built from the stats' linears when stats are
// open (they carry outlier scores and token counts), else from the config's listLinears().
#pragma once

#include "moewb/stats/stats.h"
#include "moewb/hfconfig/hf_config.h"

#include <QAbstractItemModel>

#include <memory>
#include <vector>

namespace moewb {

/// What the last column shows; aggregates (layer, group, expert) show the maximum (outlier score)
/// or the router's count (tokens) of their subtree.
enum class TreeMetric { OutlierScore, Tokens };

class ModelTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { NameColumn, ShapeColumn, ParametersColumn, MetricColumn, ColumnCount };
    enum Role {
        LayerRole = Qt::UserRole + 1, ///< int, -1 on none
        ExpertRole,                   ///< int, routed expert index or -1
        LinearRole,                   ///< QString tensor name for linear rows, else empty
        KindRole,                     ///< NodeKind as int
        SortRole,                     ///< numeric value for sorting
        FilterRole,                   ///< display name + tensor name, for the filter box
    };
    enum class NodeKind { Layer, Group, Expert, Linear };

    explicit ModelTreeModel(QObject* parent = nullptr);
    ~ModelTreeModel() override;

    /// Rebuilds the tree; either pointer may be null. The model does not keep them.
    void setSource(const ModelConfig* config, const CalibStats* stats);
    void setMetric(TreeMetric metric);
    TreeMetric metric() const { return m_metric; }

    /// The index (column 0) of the most specific node for a selection: linear, else expert, else layer.
    QModelIndex indexFor(int layer, int expert, const QString& linear) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = QModelIndex()) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = QModelIndex()) const override;
    int columnCount(const QModelIndex& parent = QModelIndex()) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    struct Node;
    Node* nodeOf(const QModelIndex& index) const;
    QModelIndex indexOf(const Node* node) const;
    double metricValue(const Node* node) const;

    std::unique_ptr<Node> m_root;
    TreeMetric m_metric = TreeMetric::OutlierScore;
};

} // namespace moewb
