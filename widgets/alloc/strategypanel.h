// SPDX-License-Identifier: MIT
// Strategy picker of the allocation editor (#12): the strategies of the injected AllocBackend with
// their parameters (k, top_p, per-layer, seed, group size, sym, method), a target-bits slider and
// the runtime the plan is made for (#24: GPTQ per-linear widths, vLLM's one width per fused MoE,
// GGUF's one type per stacked expert tensor; moewb/plan/target_groups.h). The runtime box follows
// the open plan's target.
// With "live" on, every change re-solves after a short debounce on a worker thread (the newest
// request wins; one solve at a time) and replaces the plan's quantization settings (defaults, rules,
// overrides; the trimming choices stay). One slider drag is one undo step (setPlanMerged).
// "budget" needs a measured ErrorTable: without one it is disabled with a tooltip saying so.
#pragma once

#include "alloc/allocbackend.h"

#include <QFutureWatcher>
#include <QWidget>

#include <memory>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;
class QTimer;

namespace moewb {

class PlanEditModel;

class StrategyPanel : public QWidget {
    Q_OBJECT
public:
    StrategyPanel(PlanEditModel* plan, AllocBackend backend, QWidget* parent = nullptr);
    ~StrategyPanel() override; ///< waits for a running solve

    void setBackend(AllocBackend backend);
    const AllocBackend& backend() const { return m_backend; }
    AllocOptions options() const; ///< what the widgets say now
    void setStrategy(const QString& name);
    void setTargetBits(double bits);
    /// The runtime the next solve is for (also follows the open plan's target on every plan change).
    void setPlanTarget(PlanTarget target);
    PlanTarget planTarget() const;
    double targetBits() const;
    void setLive(bool live);
    bool isSolving() const;
    QSlider* slider() const { return m_slider; }
    QComboBox* strategyBox() const { return m_strategy; }
    QString message() const; ///< the notes or error of the last solve

public slots:
    /// Solve now (no debounce); the result arrives asynchronously (solved() / failed()).
    void solve();

signals:
    /// The target changed: bits and the whole-model byte budget (for the budget gauge).
    void targetChanged(double bits, int64_t budgetBytes);
    void solved();
    void failed(const QString& message);

private:
    struct Outcome {
        AllocOptions options;
        std::shared_ptr<Plan> plan;
        AllocResult result; ///< without entries
        QString error;
    };
    void requestSolve(); ///< debounced when live
    void onFinished();
    void updateEnabled();
    void emitTarget();
    void newGesture() { ++m_gesture; }

    PlanEditModel* m_plan;
    AllocBackend m_backend;
    QComboBox* m_strategy;
    QSpinBox* m_k;
    QDoubleSpinBox* m_topP;
    QSpinBox* m_perLayer;
    QSpinBox* m_seed;
    QComboBox* m_groupSize;
    QCheckBox* m_sym;
    QComboBox* m_method;
    QComboBox* m_runtime; ///< data: planTargetName()
    QSlider* m_slider;
    QDoubleSpinBox* m_bitsBox;
    QCheckBox* m_live;
    QPushButton* m_solveButton;
    QLabel* m_message;
    QTimer* m_debounce;
    QFutureWatcher<Outcome> m_watcher;
    bool m_pending = false;
    int m_gesture = 1;
};

} // namespace moewb
