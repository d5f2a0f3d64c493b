// SPDX-License-Identifier: MIT
// The quantization plan being edited in the GUI (#12): the Plan, its per-linear expansion
// (expandPlan) kept up to date incrementally, the byte/bit totals (planSize) with a breakdown by
// kind of linear, and the undo stack (one QUndoCommand per user edit, bulk edits as one command).
//
// Speed (47k linears): an override edit re-derives only the touched entries from the cached
// "defaults + rules" expansion and updates the totals by difference; only an edit of the rules or
// the defaults re-runs the regexes over every linear. Every state equals expandPlan(plan(), cfg)
// and planSize(entries(), cfg) exactly (tests/widgets/tst_alloceditor.cpp checks it).
#pragma once

#include "moewb/plan/plan.h"

#include <QObject>
#include <QString>
#include <QVector>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

class QUndoStack;

namespace moewb {

/// Kind of a quantizable linear, for the budget breakdown.
enum class LinearKind { Attention, RoutedExpert, SharedExpert, DenseMlp, Count };
LinearKind linearKind(LinearRole role);
const char* linearKindName(LinearKind kind); ///< "attention", "routed experts", ...

/// Totals of the not-dropped linears of one kind (or of all of them).
struct KindTotals {
    int64_t bytes = 0;  ///< GPTQ storage
    int64_t params = 0; ///< weights
    int64_t bitParams = 0; ///< sum(bits * numel)
    int64_t nonzeroParams = 0; ///< weights left after pruning (#14)
    int64_t linears = 0;
    double averageBits() const { return params ? double(bitParams) / double(params) : 0.0; }
};
struct PlanBreakdown {
    KindTotals kinds[int(LinearKind::Count)];
    int64_t fixedBytes = 0; ///< fixedModelBytes(cfg): embeddings, lm_head, norms, routers (bf16)
    const KindTotals& of(LinearKind k) const { return kinds[int(k)]; }
};

class PlanEditModel : public QObject {
    Q_OBJECT
public:
    explicit PlanEditModel(QObject* parent = nullptr);
    ~PlanEditModel() override;

    /// Resets to a default plan, clears undo. nullptr: no model (no entries, edits throw).
    void setModelConfig(std::shared_ptr<const ModelConfig> cfg);
    const ModelConfig* modelConfig() const { return m_cfg.get(); }
    const Plan& plan() const { return *m_plan; }
    /// Replaces the whole plan as ONE undoable command (text shown in Edit > Undo). Throws
    /// moewb::InputError (plan untouched) when validatePlan fails for the current model.
    void setPlan(const Plan& plan, const QString& undoText);
    /// Like setPlan, but when the command on top of the stack was pushed with the same non-zero
    /// mergeKey (and nothing else came between) it is replaced instead of stacked: a dragged budget
    /// slider that re-solves live is one undo step.
    void setPlanMerged(const Plan& plan, const QString& undoText, int mergeKey);
    void setPlanMerged(Plan&& plan, const QString& undoText, int mergeKey); ///< no copy of a big plan
    QUndoStack* undoStack() const { return m_undo; }

    const std::vector<PlanEntry>& entries() const { return m_entries; } ///< expandPlan(plan, cfg)
    PlanSize size() const; ///< planSize(entries, cfg), from running totals
    PlanBreakdown breakdown() const { return m_breakdown; }
    int entryIndex(const std::string& name) const; ///< -1 if not a quantizable linear
    /// Bits/group/sym/method the entry gets from the defaults and rules alone (no override).
    const PlanEntry& ruleEntry(int index) const { return m_ruleEntries[size_t(index)]; }

    QString planPath() const { return m_planPath; } ///< file last loaded/saved, "" if none
    /// Throws moewb::Error with a one-line message; plan untouched on error.
    void loadPlanFile(const QString& path);
    void savePlanFile(const QString& path); ///< atomic (savePlan)

    // ---- Edits. Each is one undoable command; an edit that changes nothing pushes nothing.
    /// Sets the fields present in `set` in the overrides of the given entries (indices into
    /// entries()). InputError on invalid bits/group size/method.
    void setSettings(const std::vector<int>& entries, const QuantSettings& set, const QString& undoText);
    void setBits(const std::vector<int>& entries, int64_t bits);
    void setGroupSize(const std::vector<int>& entries, int64_t groupSize);
    void setSym(const std::vector<int>& entries, bool sym);
    void setMethod(const std::vector<int>& entries, const std::string& method);
    /// Pruning (#14) from text: "0" (dense), "0.5" or "50%" (unstructured), "2:4" / "4:8" (N:M);
    /// the prune method stays what the plan says. InputError on anything else.
    void setPruning(const std::vector<int>& entries, const std::string& text);
    /// Removes the overrides of the entries (they fall back to defaults and rules).
    void clearOverrides(const std::vector<int>& entries);

    void setDefaults(const PlanDefaults& d);
    /// Rules. InputError (nothing changed) on an invalid regex or setting.
    void insertRule(int at, const PlanRule& rule); ///< at = -1 or rules().size(): append
    void setRule(int index, const PlanRule& rule);
    void removeRule(int index);
    void moveRule(int from, int to);
    /// Checks a rule without applying it; throws InputError naming the problem.
    static void checkRule(const PlanRule& rule);

    bool isExpertDropped(int64_t layer, int64_t expert) const;
    bool isLayerDropped(int64_t layer) const; ///< MoE sub-layer (Layer Drop)
    bool isBlockDropped(int64_t layer) const; ///< whole decoder block (Block Drop)
    void setExpertsDropped(const std::vector<DroppedExpert>& experts, bool dropped);
    void setLayerDropped(int64_t layer, bool dropped);
    void setBlockDropped(int64_t layer, bool dropped);

signals:
    /// setModelConfig() ran: a new layout of entries (emitted before planChanged).
    void modelConfigChanged();
    void planChanged();
    /// After planChanged: which entries may have changed (all: every entry; then `changed` is empty).
    void entriesChanged(const QVector<int>& changed, bool all);

private:
    friend class OverridesCommand;
    friend class PlanCommand;
    using OverrideDelta = std::vector<std::pair<std::string, std::optional<QuantSettings>>>;
    void requireModel() const;
    void pushOverrides(OverrideDelta before, OverrideDelta after, const QString& text);
    void pushPlan(Plan after, const QString& text, int mergeKey);
    // What commands call (no undo push).
    void applyOverrides(const OverrideDelta& delta);
    void applyPlan(const std::shared_ptr<const Plan>& plan);
    Plan& mutablePlan();
    void rebuildRuleEntries();
    void rebuildEntries();
    void recomputeTotals();
    void addTotals(const PlanEntry& e, int sign);
    bool entryDropped(const PlanEntry& e) const;

    std::shared_ptr<const ModelConfig> m_cfg;
    std::shared_ptr<const Plan> m_plan; ///< never null; shared with undo commands, copied on write
    std::vector<PlanEntry> m_ruleEntries; ///< defaults + rules, no overrides, no drops
    std::vector<double> m_ruleRawSparsity; ///< their sparsity before an N:M pattern fixes it
    std::vector<PlanEntry> m_entries;
    std::unordered_map<std::string, int> m_index;
    PlanBreakdown m_breakdown;
    QUndoStack* m_undo;
    QString m_planPath;
};

} // namespace moewb
