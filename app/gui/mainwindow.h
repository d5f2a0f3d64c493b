// SPDX-License-Identifier: MIT
// The workbench window: the routing heat map in the centre, docks for the model tree, correlation,
// domains, outliers and provenance; File / View / Help menus; geometry, dock layout and recent
// files remembered in QSettings.
#pragma once

#include <QMainWindow>
#include <QStringList>

class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QTextBrowser;

namespace moewb {

class CorrelationView;
class Document;
class DomainView;
class ModelTreeView;
class OutlierView;
class RoutingHeatmapView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    Document* document() const { return m_document; }
    RoutingHeatmapView* heatmapView() const { return m_heatmap; }
    CorrelationView* correlationView() const { return m_correlation; }
    DomainView* domainView() const { return m_domains; }
    OutlierView* outlierView() const { return m_outliers; }
    ModelTreeView* treeView() const { return m_tree; }

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

private:
    void createActions();
    QDockWidget* addDock(const QString& title, const QString& objectName, QWidget* widget, Qt::DockWidgetArea area);
    void openModelDialog();
    void openStatsDialog();
    void addRecent(const QString& kind, const QString& path);
    void updateRecentMenu();
    void updateStatus();
    void updateProvenance();
    void onLoadFailed(const QString& what, const QString& path, const QString& message);
    void resetLayout();
    void about();

    Document* m_document;
    RoutingHeatmapView* m_heatmap;
    ModelTreeView* m_tree;
    CorrelationView* m_correlation;
    DomainView* m_domains;
    OutlierView* m_outliers;
    QTextBrowser* m_provenance;
    QMenu* m_viewMenu = nullptr;
    QMenu* m_recentMenu = nullptr;
    QLabel* m_statusLabel;
    QProgressBar* m_busy;
    QByteArray m_defaultState;
    bool m_batch = false;
    QStringList m_errors;
};

} // namespace moewb
