// SPDX-License-Identifier: MIT
// The plan as a tree for the allocation editor (#12): layer → attention | MoE (→ expert i, shared
// expert) | MLP → linear; routers are never quantized and not shown. Columns: name, bits, group size,
// sym, method, shape, bytes. Aggregated rows show the common value of their linears or "mixed" and
// the sum of the bytes; the bits cell is coloured by the (weighted average) bit-width. Editing a
// cell of any row sets that field on every linear below it (one undo command). The name column of
// layers, MoE groups and experts is checkable: unchecking drops the block, the MoE layer, the expert.
//
// Updates are incremental: PlanEditModel::entriesChanged marks the touched linears and their
// ancestors and emits one dataChanged per parent; aggregated values are cached per node.
#pragma once

#include "moewb/plan/plan.h"

#include <QAbstractItemModel>

#include <vector>

namespace moewb {

class PlanEditModel;

class AllocationItemModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { NameColumn, BitsColumn, GroupSizeColumn, SymColumn, MethodColumn, SparsityColumn, ShapeColumn,
                  BytesColumn, ColumnCount };
    enum Role {
        LayerRole = Qt::UserRole + 1, ///< int
        ExpertRole,                   ///< int, routed expert or -1
        LinearRole,                   ///< QString tensor name for linear rows
        KindRole,                     ///< NodeKind as int
        ChoicesRole,                  ///< QVariantList of the values an editable column takes
        AverageBitsRole,              ///< double, numel-weighted over the not-dropped linears
        OffTargetRole,                ///< bool: a linear under it is in a group the plan's target stores
                                      ///< at one width, and that group mixes widths (#24)
    };
    enum class NodeKind { Layer, Attention, Moe, Expert, SharedExpert, Mlp, Linear };

    explicit AllocationItemModel(PlanEditModel* plan, QObject* parent = nullptr);
    ~AllocationItemModel() override;

    PlanEditModel* planModel() const { return m_plan; }
    /// Entry indices (PlanEditModel::entries()) of the linears under an index (any column).
    std::vector<int> entriesOf(const QModelIndex& index) const;
    /// Union over several indices (e.g. the selected rows), sorted, without duplicates.
    std::vector<int> entriesOf(const QModelIndexList& indices) const;
    QModelIndex indexForEntry(int entry, int column = 0) const;
    QModelIndex indexForLayer(int layer) const;
    QModelIndex indexForExpert(int layer, int expert) const; ///< expert -1: the shared expert
    /// The most specific row for a Selection (linear, else expert, else layer).
    QModelIndex indexFor(int layer, int expert, const QString& linear) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = QModelIndex()) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = QModelIndex()) const override;
    int columnCount(const QModelIndex& parent = QModelIndex()) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    /// The message of the last edit the plan refused ("" if none).
    QString lastError() const { return m_lastError; }

signals:
    void editFailed(const QString& message);

private:
    struct Summary {
        bool valid = false;
        int64_t bits = 0, groupSize = 0; ///< -1000: mixed
        int sym = 0;                     ///< 1 true, 0 false, -1 mixed
        QString method;                  ///< "" mixed
        QString pruning;                 ///< "" none, "50%", "2:4"; "?" mixed (#14)
        int64_t nonzero = 0;             ///< weights left after pruning
        int64_t bytes = 0, params = 0, bitParams = 0;
        int dropped = 0; ///< linears dropped
        int overridden = 0;
    };
    struct Node {
        NodeKind kind;
        int parent = -1; ///< -1: top level
        int row = 0;
        int layer = -1;
        int expert = -1;
        int begin = 0, end = 0; ///< entry range
        std::vector<int> children;
        mutable Summary summary;
    };
    void rebuild();
    void onEntriesChanged(const QVector<int>& changed, bool all);
    /// Recomputes m_offTarget (checkTarget of the plan's target); the entries whose mark flipped.
    std::vector<int> refreshTargetMarks();
    bool anyOffTarget(const Node& n) const;
    const Summary& summaryOf(int node) const;
    static QString pruningText(const PlanEntry& e);
    int nodeOf(const QModelIndex& index) const;
    QModelIndex indexOfNode(int node, int column = 0) const;
    QVariant nodeData(int node, int column, int role) const;
    bool setNodeData(int node, int column, const QVariant& value);
    QString nodeName(const Node& n) const;

    PlanEditModel* m_plan;
    std::vector<Node> m_nodes;
    std::vector<int> m_top;       ///< layer nodes
    std::vector<int> m_entryNode; ///< entry → linear node
    std::vector<char> m_offTarget; ///< entry → in a group of the plan's target with mixed widths
    QString m_lastError;
};

} // namespace moewb
