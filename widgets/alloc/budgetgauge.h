// SPDX-License-Identifier: MIT
// Live budget gauge of the plan being edited (#12): average bits (the papers' definition), effective
// bits (scales, zeros and g_idx included), the model size (GPTQ storage + the bf16 rest), the
// delta against the target, and a stacked bar with the breakdown attention / routed experts / shared
// experts / dense MLP / fixed (embeddings, lm_head, norms, routers). The bar and the delta turn red
// when the plan is over the target. Numbers come from PlanEditModel's running totals, which equal
// planSize(expandPlan(plan, cfg)). With a cost table (#27, alloc/predictedcost.h) it also shows the
// plan's predicted KL divergence, recomputed on every edit; without one it says what is missing.
#pragma once

#include "alloc/planeditmodel.h"
#include "alloc/predictedcost.h"

#include <QWidget>

#include <memory>

class QLabel;

namespace moewb {

class BudgetBar;

class BudgetGauge : public QWidget {
    Q_OBJECT
public:
    explicit BudgetGauge(PlanEditModel* plan, QWidget* parent = nullptr);
    ~BudgetGauge() override;

    /// The target: average bits and the whole-model byte budget it means (budgetBytesFor). Bytes
    /// <= 0: no target (the delta is hidden).
    void setTarget(double bits, int64_t budgetBytes);
    double targetBits() const { return m_targetBits; }
    int64_t targetBytes() const { return m_targetBytes; }

    /// What is shown now (for tests and the status bar).
    PlanSize shownSize() const { return m_size; }
    PlanBreakdown shownBreakdown() const { return m_breakdown; }
    bool overTarget() const;
    QString summaryText() const;   ///< "4.180 bits avg · 5.940 effective · 12.345 GB"
    QString deltaText() const;     ///< "+0.123 GB (+0.05 bits) over the 3.50-bit target", "" without one
    QString breakdownText() const; ///< one line per part
    /// "" when the plan's widths fit its target, else "2 groups that vLLM stores at one width have
    /// mixed widths (e.g. layer 1, routed experts: 2, 3 bits)" (#24; moewb/plan/target_groups.h).
    QString targetText() const;

    /// The budget's cost table for the open model (Fisher cost model), or nullptr with the line
    /// to show instead, e.g. "needs calibration with the Fisher cost (calibrate --fisher)".
    void setCostTable(std::shared_ptr<const ErrorTable> table, const QString& missing = {});
    /// True when the predicted KLD is shown (a table that fits the plan's model).
    bool hasPredictedCost() const { return m_costFits; }
    PlanCost shownCost() const { return m_tracker.cost(); }
    /// "predicted KLD 0.01234 nats/token", with what is not counted; or "predicted KLD: <missing>".
    QString predictedText() const;

public slots:
    void refresh();

private:
    /// The predicted KLD after an edit: O(changed entries); all: summed again.
    void onEntriesChanged(const QVector<int>& changed, bool all);
    void resetPredicted(); ///< checks the table against the plan's model and sums every entry
    void showPredicted();

    PlanEditModel* m_plan;
    BudgetBar* m_bar;
    QLabel* m_summary;
    QLabel* m_predicted;
    QLabel* m_delta;
    QLabel* m_breakdownLabel;
    QLabel* m_target;
    QString m_targetText;
    PlanSize m_size;
    PlanBreakdown m_breakdown;
    std::shared_ptr<const ErrorTable> m_costTable;
    QString m_costMissing;
    bool m_costFits = false;
    bool m_costChecked = false; ///< m_costFits is up to date for the table and the plan's model
    PlanCostTracker m_tracker;
    double m_targetBits = 0.0;
    int64_t m_targetBytes = 0;
};

/// Bytes as the gauge prints them: GB (10^9, three decimals) from 1 GB, else MB or kB (two decimals).
QString sizeText(int64_t bytes);

} // namespace moewb
