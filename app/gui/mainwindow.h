// SPDX-License-Identifier: MIT
// The workbench window: the routing heat map in the centre, docks for the model tree, correlation,
// domains, outliers, provenance, jobs and results; File / Edit / Plan / Jobs / View / Help menus;
// geometry, dock layout and recent files remembered in QSettings. The default layout gives the
// matrices room (correlation and domains as tabs on the right, the outliers, allocation, jobs and
// results as tabs below) and fits a 1366 × 768 screen: large dock contents scroll. The current plan is the
// PlanEditModel (undo/redo in the Edit menu, autosaved with crash recovery); jobs run the engine on
// a worker thread (enginejobs.h) and feed the document (stats), the plan (strategy) and the
// results (evaluate). A session (.moewb) saves and restores all of it.
#pragma once

#include "enginejobs.h"
#include "session/session.h"

#include <QMainWindow>
#include <QStringList>

#include <optional>

class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QTextBrowser;
class QToolButton;

namespace moewb {

class AllocationEditor;
class CorrelationView;
class CoverageView;
class Document;
class DomainView;
class JobRunner;
class JobsPanel;
class ModelTreeView;
class OutlierView;
class PlanAutosave;
class PlanEditModel;
class ResultsModel;
class ResultsView;
class RoutingHeatmapView;
struct AutosaveRecovery;
namespace gui {
class CostTableKeeper;
}

/// What to do with a plan an unclean exit left behind.
enum class RecoveryChoice {
    Restore,   ///< open the plan's model (instead of the one asked for, when they differ) with the plan
    SaveAside, ///< write the plan to a file next to the model's other outputs and say where
    Discard,   ///< delete it
};

struct RecoveryOutcome {
    QString message;            ///< what happened, one sentence (shown in the status bar)
    QString savedPath;          ///< SaveAside: where the plan went
    bool replacesModel = false; ///< Restore opened the plan's model instead of the requested one
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    /// The window's size on first start (a smaller screen gets less; the layout follows the size).
    static QSize defaultSize() { return QSize(1400, 900); }
    /// The views `--screenshot --view NAME` renders: heatmap, correlation, domains, coverage,
    /// outliers, allocation, results.
    static QStringList viewNames();
    QWidget* view(const QString& name) const; ///< nullptr for an unknown name

    Document* document() const { return m_document; }
    RoutingHeatmapView* heatmapView() const { return m_heatmap; }
    CorrelationView* correlationView() const { return m_correlation; }
    DomainView* domainView() const { return m_domains; }
    CoverageView* coverageView() const { return m_coverage; }
    /// Shows a quantize report's per-expert coverage in the coverage view (and raises it); false
    /// with the reason in errors() when the file is not a quantize report with coverage.
    bool openQuantReport(const QString& path);
    OutlierView* outlierView() const { return m_outliers; }
    ModelTreeView* treeView() const { return m_tree; }
    JobRunner* jobRunner() const { return m_runner; }
    JobsPanel* jobsPanel() const { return m_jobsPanel; }
    /// Measures the predicted-cost table when a model and Fisher statistics are open (#27).
    gui::CostTableKeeper* costTableKeeper() const { return m_costKeeper; }
    ResultsModel* resultsModel() const { return m_results; }
    ResultsView* resultsView() const { return m_resultsView; }
    /// THE current plan: strategies, the editor, sessions and quantize jobs all use it.
    PlanEditModel* planModel() const { return m_plan; }
    AllocationEditor* allocationEditor() const { return m_editor; }

    // ---- Jobs with given settings (the Jobs menu's dialogs end here; scripts and tests call them).
    // Each returns the job id (JobRunner), or 0 when it cannot start (the reason went to errors()).
    int startCalibrate(const gui::CalibrateSettings& settings);
    int startStrategy(const gui::StrategySettings& settings);
    int startQuantize(const gui::QuantizeSettings& settings); ///< with the current plan (export too)
    int startEvaluate(const gui::EvaluateSettings& settings);
    /// The last fake-quantized model (what Evaluate… offers first); empty before any.
    std::optional<gui::QuantizeOutcome> lastQuantized() const { return m_lastQuantized; }

    // ---- Sessions.
    Session currentSession() const;
    /// Restores model, stats, plan (once the model has loaded), results and layout; on error shows
    /// the one-line message and changes nothing.
    bool openSession(const QString& path);
    bool saveSession(const QString& path);
    /// Adds the rows of a `moewb pipeline` results.json to the Results view.
    bool importPipelineResults(const QString& path);
    QString sessionPath() const { return m_sessionPath; }
    /// Plan autosave in dir ("" = QStandardPaths::AppDataLocation/autosave); returns what an
    /// unclean exit left behind, if anything (the caller offers it, then calls recover()).
    std::optional<AutosaveRecovery> startAutosave(const QString& dir = {});
    void recover(const AutosaveRecovery& recovery);
    void declineRecovery();
    /// The question the recovery prompt asks: when the plan was saved, for which model, what it
    /// holds, and — when requestedModel (the command line's) is another model — that too.
    QString recoveryQuestion(const AutosaveRecovery& recovery, const QString& requestedModel = {}) const;
    /// Whether Restore is possible (the plan's model directory still has a config.json).
    static bool canRestore(const AutosaveRecovery& recovery);
    /// Carries out the choice; the autosave is gone afterwards in every case. Never loses the plan
    /// silently: a plan that cannot be restored is saved aside instead, and the message says where.
    RecoveryOutcome resolveRecovery(const AutosaveRecovery& recovery, RecoveryChoice choice,
                                    const QString& requestedModel = {});
    /// Where a recovered plan of modelDir is saved aside: ~/moewb/<model>/recovered-plan-<time>.json.
    QString recoveredPlanPath(const QString& modelDir) const;

    /// Window geometry and dock layout of the last session (not used for screenshots).
    void restoreSettings();
    void openModel(const QString& dir);
    void openStats(const QString& path);
    /// Batch (screenshot) mode: load errors go to stderr instead of a message box, and nothing
    /// is written to the settings (recent files, layout).
    void setBatchMode(bool batch) { m_batch = batch; }
    QStringList errors() const { return m_errors; }

protected:
    void closeEvent(QCloseEvent* event) override;
    void showEvent(QShowEvent* event) override;

private:
    void createActions();
    QDockWidget* addDock(const QString& title, const QString& objectName, QWidget* widget, Qt::DockWidgetArea area);
    void openModelDialog();
    void openStatsDialog();
    void openSessionDialog();
    bool saveSessionDialog(bool askPath);
    void openPlanDialog();
    void savePlanDialog();
    void calibrateDialog();
    void strategyDialog();
    void quantizeDialog(bool exportMode);
    void evaluateDialog();
    void onModelChanged();
    void updateAllocBackend();
    void applyPendingPlan();
    void onJobFailed(int id, const QString& message);
    void loadRunPlan(const RunResult& run);
    void reportError(const QString& title, const QString& message);
    QString workDir() const; ///< default place for job outputs: ~/moewb/<model name>
    QString uniquePath(const QString& stem, const QString& suffix) const;
    void addRecent(const QString& kind, const QString& path);
    void updateRecentMenu();
    void updateStatus();
    void updateProvenance();
    void onLoadFailed(const QString& what, const QString& path, const QString& message);
    void resetLayout();
    void applyDefaultDockSizes(); ///< the default split of the current window size among the docks
    void about();
    /// Writes a plan to recoveredPlanPath(modelDir); returns the path ("" and m_errors on failure).
    QString savePlanAside(const QString& planJson, const QString& modelDir);
    void onStatsProgress(int done, int total, const QString& what);

    Document* m_document;
    RoutingHeatmapView* m_heatmap;
    ModelTreeView* m_tree;
    CorrelationView* m_correlation;
    DomainView* m_domains;
    CoverageView* m_coverage;
    OutlierView* m_outliers;
    QTextBrowser* m_provenance;
    PlanEditModel* m_plan;
    AllocationEditor* m_editor;
    QWidget* m_editorArea; // the editor as its dock shows it: scrolling when the dock is smaller
    JobRunner* m_runner;
    JobsPanel* m_jobsPanel;
    gui::CostTableKeeper* m_costKeeper;
    ResultsModel* m_results;
    ResultsView* m_resultsView;
    PlanAutosave* m_autosave = nullptr;
    std::optional<gui::QuantizeOutcome> m_lastQuantized;
    QString m_sessionPath;
    QString m_pendingPlanJson; ///< a session's or recovery's plan, set once its model has loaded
    QString m_pendingPlanPath;
    QString m_pendingPlanModel; ///< the model the pending plan is for ("" = whatever opens next)
    QMenu* m_viewMenu = nullptr;
    QMenu* m_recentMenu = nullptr;
    QLabel* m_statusLabel;
    QProgressBar* m_busy;
    QToolButton* m_cancelLoad;
    QByteArray m_defaultState;
    bool m_layoutRestored = false; ///< a saved layout was restored: keep its dock sizes
    bool m_shown = false;
    bool m_batch = false;
    QStringList m_errors;
};

} // namespace moewb
