// SPDX-License-Identifier: MIT
// The allocation editor (#12): the budget gauge, the per-linear tree (AllocationItemModel) with
// bulk edits on the selected rows or on the experts picked in the routing heat map, trimming
// check boxes, the strategy panel with its live target slider, the rules table and the plan
// defaults; undo/redo and plan open/save actions for the main window's menus.
#pragma once

#include "alloc/allocbackend.h"

#include <QWidget>

class QAction;
class QLabel;
class QTabWidget;
class QTableView;
class QTreeView;

namespace moewb {

class AllocationItemModel;
class BudgetGauge;
class Document;
struct ModelConfig;
class PlanEditModel;
class RulesTableModel;
class StrategyPanel;

class AllocationEditor : public QWidget {
    Q_OBJECT
public:
    /// Follows document's selection and, unless setFollowsDocumentModel(false), its model: a newly
    /// opened model resets `plan` to the default plan for it (an empty plan model is set up for the
    /// document's current model right away; one that already has a model is left as it is).
    /// `plan` is shared with whoever saves sessions; neither is owned.
    AllocationEditor(Document* document, PlanEditModel* plan, QWidget* parent = nullptr);

    /// Off: whoever owns `plan` calls PlanEditModel::setModelConfig itself (e.g. a session restore
    /// that sets the model and then its saved plan).
    void setFollowsDocumentModel(bool follow) { m_followModel = follow; }
    ~AllocationEditor() override;

    /// The engine's strategies bound to the open model and stats (refill it when they change).
    void setBackend(AllocBackend backend);
    /// Whether the document's predicted-cost table is being measured now (the gauge says so).
    void setCostTableMeasuring(bool measuring);

    PlanEditModel* planModel() const { return m_plan; }
    AllocationItemModel* itemModel() const { return m_items; }
    RulesTableModel* rulesModel() const { return m_rules; }
    QTreeView* tree() const { return m_tree; }
    QTableView* rulesView() const { return m_rulesView; }
    BudgetGauge* gauge() const { return m_gauge; }
    StrategyPanel* strategyPanel() const { return m_strategy; }

    // Actions for the main window's menus and toolbar (owned by the editor; without shortcuts —
    // give them Ctrl+Z etc. where they are put in a menu, unless the window has its own actions on
    // the same undo stack).
    QAction* undoAction() const { return m_undo; }
    QAction* redoAction() const { return m_redo; }
    QAction* openPlanAction() const { return m_open; }
    QAction* savePlanAction() const { return m_save; }
    QAction* savePlanAsAction() const { return m_saveAs; }

    /// Bulk edits, each one undo command. Return false (message in lastError()) when refused.
    bool setBitsOnSelectedRows(int64_t bits);
    bool setBitsOnHeatmapSelection(int64_t bits); ///< "give these experts 8 bits"
    bool setDroppedOnHeatmapSelection(bool dropped);
    /// The fields present in `set` (group size, sym, method, ...); `what` names it for Edit > Undo.
    bool setSettingsOnSelectedRows(const QuantSettings& set, const QString& what);
    bool clearOverridesOnSelectedRows();
    /// Open / save without dialogs; false with the one-line message in lastError().
    bool openPlan(const QString& path);
    bool savePlan(const QString& path);
    QString lastError() const { return m_lastError; }

signals:
    /// A refused edit or a failed load/save (one line); the main window may show it in the status bar.
    void message(const QString& text);

private:
    void followModel();
    void followSelection();
    /// The gauge's predicted KLD: the document's cost table, or why there is none.
    void followCostTable();
    void onCurrentRowChanged();
    void updateHeatmapLabel();
    bool attempt(const std::function<void()>& edit);
    QWidget* makeRulesTab();
    QWidget* makeDefaultsTab();

    Document* m_document;
    PlanEditModel* m_plan;
    AllocationItemModel* m_items;
    RulesTableModel* m_rules;
    BudgetGauge* m_gauge;
    StrategyPanel* m_strategy;
    QTreeView* m_tree;
    QTableView* m_rulesView;
    QTabWidget* m_tabs;
    QLabel* m_heatmapLabel;
    QLabel* m_error;
    QAction* m_undo;
    QAction* m_redo;
    QAction* m_open;
    QAction* m_save;
    QAction* m_saveAs;
    QString m_lastError;
    bool m_following = false;
    bool m_followModel = true;
    bool m_costMeasuring = false;
    const ModelConfig* m_followed = nullptr; ///< the document's config the plan was last set up for
};

} // namespace moewb
