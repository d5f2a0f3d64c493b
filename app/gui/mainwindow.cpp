// SPDX-License-Identifier: MIT
#include "mainwindow.h"

#include "costtablekeeper.h"
#include "engineallocbackend.h"

#include "alloc/allocationeditor.h"
#include "alloc/allocbackend.h"
#include "moewb/alloc/allocate.h"

#include "alloc/planeditmodel.h"
#include "appresources.h"
#include "document.h"
#include "jobdialogs.h"
#include "jobs/jobrunner.h"
#include "jobs/jobspanel.h"
#include "results/pipelineimport.h"
#include "results/resultsmodel.h"
#include "results/resultsview.h"
#include "selection.h"
#include "session/autosave.h"
#include "views/correlationview.h"
#include "views/coverageview.h"
#include "views/domainview.h"
#include "views/modeltreeview.h"
#include "views/outlierview.h"
#include "views/routingheatmapview.h"

#include "moewb/plan/plan.h"
#include "moewb/stats/stats.h"
#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDateTime>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QScreen>
#include <QScrollArea>
#include <QSettings>
#include <QStatusBar>
#include <QTextBrowser>
#include <QToolBar>
#include <QToolButton>
#include <QUndoStack>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>

namespace moewb {

namespace {
constexpr int kMaxRecent = 8;
// 1: correlation and domains as tabs in a tall right column (#27); an older saved layout (0, the
// two stacked) is not restored, so every user gets the new default once. 2: the coverage tab (#25).
constexpr int kLayoutVersion = 2;
const char* kRecentKey = "recentFiles"; // entries "model:PATH", "stats:PATH" or "session:PATH"

/// Whether two paths name the same directory (symlinks and "..", "." resolved where they exist).
bool sameDir(const QString& a, const QString& b)
{
    if (a.isEmpty() || b.isEmpty())
        return a.isEmpty() && b.isEmpty();
    const QString ca = QFileInfo(a).canonicalFilePath(), cb = QFileInfo(b).canonicalFilePath();
    if (!ca.isEmpty() && !cb.isEmpty())
        return ca == cb;
    return QDir::cleanPath(QFileInfo(a).absoluteFilePath()) == QDir::cleanPath(QFileInfo(b).absoluteFilePath());
}

QString modelName(const QString& dir)
{
    const QString name = QFileInfo(QDir::cleanPath(dir)).fileName();
    return name.isEmpty() ? dir : name;
}

/// A dock's content that scrolls instead of imposing its minimum size on the window.
QScrollArea* scrolling(QWidget* content, QWidget* parent)
{
    auto* area = new QScrollArea(parent);
    area->setWidget(content);
    area->setWidgetResizable(true);
    area->setFrameShape(QFrame::NoFrame);
    return area;
}
} // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent)
    , m_document(new Document(this))
    , m_heatmap(new RoutingHeatmapView(m_document, this))
    , m_tree(new ModelTreeView(m_document, this))
    , m_correlation(new CorrelationView(m_document, this))
    , m_domains(new DomainView(m_document, this))
    , m_coverage(new CoverageView(m_document, this))
    , m_outliers(new OutlierView(m_document, this))
    , m_provenance(new QTextBrowser(this))
    , m_statusLabel(new QLabel(this))
    , m_busy(new QProgressBar(this))
    , m_cancelLoad(new QToolButton(this))
{
    setWindowTitle(tr("moewb workbench"));
    setWindowIcon(appIcon(QStringLiteral("moewb")));
    setDockOptions(AnimatedDocks | AllowTabbedDocks | AllowNestedDocks);
    setCentralWidget(m_heatmap);

    addDock(tr("Model"), QStringLiteral("dock.model"), m_tree, Qt::LeftDockWidgetArea);
    QDockWidget* provenance = addDock(tr("Provenance"), QStringLiteral("dock.provenance"), m_provenance,
                                      Qt::LeftDockWidgetArea);
    QDockWidget* correlation = addDock(tr("Expert correlation"), QStringLiteral("dock.correlation"), m_correlation,
                                       Qt::RightDockWidgetArea);
    QDockWidget* domains = addDock(tr("Domains"), QStringLiteral("dock.domains"), m_domains, Qt::RightDockWidgetArea);
    QDockWidget* coverage = addDock(tr("Coverage"), QStringLiteral("dock.coverage"), m_coverage, Qt::RightDockWidgetArea);
    addDock(tr("Outliers"), QStringLiteral("dock.outliers"), m_outliers, Qt::BottomDockWidgetArea);
    // Allocation editor, jobs and results (#12): one plan model (m_plan) behind the editor, the
    // Edit/Plan menus, the jobs and the session.
    m_plan = new PlanEditModel(this);
    m_editor = new AllocationEditor(m_document, m_plan, this);
    m_editor->setFollowsDocumentModel(false); // onModelChanged sets the model and restores session plans
    m_runner = new JobRunner(this);
    m_jobsPanel = new JobsPanel(m_runner, this);
    m_costKeeper = new gui::CostTableKeeper(m_document, m_runner, this);
    connect(m_costKeeper, &gui::CostTableKeeper::measuringChanged, m_editor, &AllocationEditor::setCostTableMeasuring);
    m_results = new ResultsModel(this);
    m_resultsView = new ResultsView(m_results, this);
    QDockWidget* jobs = addDock(tr("Jobs"), QStringLiteral("dock.jobs"), m_jobsPanel, Qt::BottomDockWidgetArea);
    QDockWidget* results = addDock(tr("Results"), QStringLiteral("dock.results"), m_resultsView, Qt::BottomDockWidgetArea);
    // the editor's gauge, tool bar and tabs are taller than a laptop's bottom dock: it scrolls there
    m_editorArea = scrolling(m_editor, this);
    QDockWidget* editor = addDock(tr("Allocation"), QStringLiteral("dock.editor"), m_editorArea, Qt::BottomDockWidgetArea);
    tabifyDockWidget(findChild<QDockWidget*>(QStringLiteral("dock.outliers")), editor);
    tabifyDockWidget(editor, jobs);
    tabifyDockWidget(jobs, results);
    findChild<QDockWidget*>(QStringLiteral("dock.outliers"))->raise();
    tabifyDockWidget(findChild<QDockWidget*>(QStringLiteral("dock.model")), provenance);
    findChild<QDockWidget*>(QStringLiteral("dock.model"))->raise();
    // The matrices get a tall column of their own: correlation, domains and coverage as tabs.
    tabifyDockWidget(correlation, domains);
    tabifyDockWidget(domains, coverage);
    correlation->raise();

    m_busy->setObjectName(QStringLiteral("status.progress"));
    m_cancelLoad->setObjectName(QStringLiteral("status.cancelLoad"));
    m_busy->setRange(0, 0);
    m_busy->setMaximumWidth(160);
    m_busy->setVisible(false);
    m_cancelLoad->setText(tr("Cancel"));
    m_cancelLoad->setToolTip(tr("Stop loading the stats file (what is open stays)"));
    m_cancelLoad->setVisible(false);
    m_statusLabel->setMinimumWidth(0);
    m_statusLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred); // long summaries elide, not widen
    statusBar()->addWidget(m_statusLabel, 1);
    statusBar()->addPermanentWidget(m_busy);
    statusBar()->addPermanentWidget(m_cancelLoad);

    createActions();
    QSize size = defaultSize();
    if (const QScreen* screen = this->screen()) // a smaller screen: the window fits, frame included
        size = size.boundedTo(QSize(screen->availableGeometry().width() * 95 / 100,
                                    screen->availableGeometry().height() * 90 / 100));
    resize(size);
    m_defaultState = saveState(kLayoutVersion);

    updateRecentMenu();

    // only files that opened go into the recent list
    connect(m_document, &Document::modelChanged, this,
            [this] { addRecent(QStringLiteral("model"), m_document->modelDir()); });
    connect(m_document, &Document::statsChanged, this,
            [this] { addRecent(QStringLiteral("stats"), m_document->statsPath()); });
    connect(m_document, &Document::modelChanged, this, &MainWindow::updateStatus);
    connect(m_document, &Document::statsChanged, this, &MainWindow::updateStatus);
    connect(m_document, &Document::statsChanged, this, &MainWindow::updateProvenance);
    connect(m_document, &Document::loadingChanged, this, [this](bool loading) {
        m_busy->setVisible(loading);
        if (!loading) { // back to the busy indicator for the next load
            m_busy->setRange(0, 0);
            m_busy->setTextVisible(false);
            m_cancelLoad->setVisible(false);
        }
    });
    connect(m_document, &Document::loadProgress, this, &MainWindow::onStatsProgress);
    connect(m_cancelLoad, &QToolButton::clicked, m_document, &Document::cancelLoading);
    connect(m_document, &Document::loadCancelled, this, [this](const QString& path) {
        statusBar()->showMessage(tr("Loading %1 cancelled").arg(QFileInfo(path).fileName()), 10000);
    });
    connect(m_document, &Document::loadFailed, this, &MainWindow::onLoadFailed);
    connect(m_document->selection(), &Selection::changed, this, &MainWindow::updateStatus);
    connect(m_document, &Document::statsChanged, this, [this] {
        // stats name their model: open its config too when no model is open and the path exists
        const CalibStats* stats = m_document->stats();
        if (stats && !m_document->config()) {
            const QString dir = QString::fromStdString(stats->provenance.modelPath);
            if (!dir.isEmpty() && QFileInfo::exists(QDir(dir).filePath(QStringLiteral("config.json"))))
                m_document->openModel(dir);
        }
    });
    connect(m_document, &Document::modelChanged, this, &MainWindow::onModelChanged);
    connect(m_document, &Document::modelChanged, this, &MainWindow::updateAllocBackend);
    connect(m_document, &Document::statsChanged, this, &MainWindow::updateAllocBackend);
    connect(m_document, &Document::costTableChanged, this, &MainWindow::updateAllocBackend);
    connect(m_editor, &AllocationEditor::message, this, [this](const QString& text) { statusBar()->showMessage(text, 8000); });
    connect(m_plan, &PlanEditModel::planChanged, this, &MainWindow::updateStatus);
    connect(m_plan, &PlanEditModel::planChanged, this, [this] {
        if (m_autosave && m_plan->modelConfig())
            m_autosave->schedule(QString::fromStdString(planToJson(m_plan->plan())), m_document->modelDir());
    });
    connect(m_runner, &JobRunner::failed, this, &MainWindow::onJobFailed);
    connect(m_runner, &JobRunner::started, this, [jobs] { jobs->raise(); });
    connect(m_runner, &JobRunner::finished, this, [this, results](int id, const JobResult&) {
        if (m_runner->jobKind(id) == QLatin1String("evaluate"))
            results->raise();
    });
    connect(m_resultsView, &ResultsView::planRequested, this, &MainWindow::loadRunPlan);
    updateStatus();
    updateProvenance();
}

MainWindow::~MainWindow()
{
    m_runner->cancelAll(); // the worker must not outlive the document it reports to
    m_runner->waitForIdle(60000);
}

void MainWindow::restoreSettings()
{
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("geometry")).toByteArray());
    if (restoreState(settings.value(QStringLiteral("windowState")).toByteArray(), kLayoutVersion))
        m_layoutRestored = true;
}

QStringList MainWindow::viewNames()
{
    return {QStringLiteral("heatmap"),  QStringLiteral("correlation"), QStringLiteral("domains"),
            QStringLiteral("coverage"), QStringLiteral("outliers"),    QStringLiteral("allocation"),
            QStringLiteral("results")};
}

QWidget* MainWindow::view(const QString& name) const
{
    const QList<QWidget*> views{m_heatmap,  m_correlation, m_domains,    m_coverage,
                                m_outliers, m_editorArea,  m_resultsView};
    const int i = int(viewNames().indexOf(name));
    return i >= 0 ? views.value(i) : nullptr;
}

void MainWindow::showEvent(QShowEvent* event)
{
    QMainWindow::showEvent(event);
    if (!m_shown && !m_layoutRestored)
        applyDefaultDockSizes(); // for the size the window is shown at (a screenshot's, a laptop's)
    m_shown = true;
}

void MainWindow::applyDefaultDockSizes()
{
    // model tree 22 % (220–340 px), matrices 40 % of the width; the bottom tabs 32 % of the height
    const QSize s = size();
    const auto dock = [this](const char* name) { return findChild<QDockWidget*>(QLatin1String(name)); };
    resizeDocks({dock("dock.model")}, {std::clamp(s.width() * 22 / 100, 220, 340)}, Qt::Horizontal);
    resizeDocks({dock("dock.correlation")}, {s.width() * 40 / 100}, Qt::Horizontal);
    resizeDocks({dock("dock.outliers")}, {s.height() * 32 / 100}, Qt::Vertical);
}

void MainWindow::onStatsProgress(int done, int total, const QString& what)
{
    if (total <= 0)
        return;
    m_busy->setRange(0, total);
    m_busy->setValue(done);
    m_busy->setFormat(tr("stats %p%"));
    m_busy->setTextVisible(true);
    m_busy->setToolTip(tr("Reading the stats file: %1").arg(what));
    m_busy->setVisible(true);
    m_cancelLoad->setVisible(true);
}

QDockWidget* MainWindow::addDock(const QString& title, const QString& objectName, QWidget* widget,
                                 Qt::DockWidgetArea area)
{
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(objectName);
    dock->setWidget(widget);
    addDockWidget(area, dock);
    return dock;
}

void MainWindow::createActions()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* openModel = file->addAction(appIcon(QStringLiteral("open-model")), tr("Open &model directory…"), this,
                                         &MainWindow::openModelDialog);
    openModel->setShortcut(QKeySequence::Open);
    openModel->setStatusTip(tr("Open a Hugging Face model directory (config.json)"));
    QAction* openStats = file->addAction(appIcon(QStringLiteral("open-stats")), tr("Open &stats…"), this,
                                         &MainWindow::openStatsDialog);
    openStats->setShortcut(QKeySequence(tr("Ctrl+Shift+O")));
    openStats->setStatusTip(tr("Open a stats.h5 file written by moewb calibrate"));
    file->addSeparator();
    file->addAction(tr("Open &quantize report…"), this, [this] {
        m_coverage->loadReportInteractively();
        findChild<QDockWidget*>(QStringLiteral("dock.coverage"))->raise();
    })->setStatusTip(tr("Show a quantize run's per-expert calibration coverage (moewb_quant_report.json)"));
    file->addAction(tr("Open s&ession…"), this, &MainWindow::openSessionDialog);
    file->addAction(tr("Save sess&ion"), this, [this] { saveSessionDialog(false); })->setShortcut(QKeySequence::Save);
    file->addAction(tr("Save session &as…"), this, [this] { saveSessionDialog(true); })
        ->setShortcut(QKeySequence::SaveAs);
    file->addAction(tr("&Import pipeline results…"), this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Import moewb pipeline results"), {},
                                                          tr("results.json (*.json);;All files (*)"));
        if (!path.isEmpty())
            importPipelineResults(path);
    });
    file->addSeparator();
    m_recentMenu = file->addMenu(tr("&Recent files"));
    file->addSeparator();
    QAction* close = file->addAction(tr("&Close"), m_document, &Document::closeAll);
    close->setShortcut(QKeySequence::Close);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    quit->setMenuRole(QAction::QuitRole);

    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    QAction* undo = m_plan->undoStack()->createUndoAction(this, tr("&Undo"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = m_plan->undoStack()->createRedoAction(this, tr("&Redo"));
    redo->setShortcut(QKeySequence::Redo);
    edit->addAction(undo);
    edit->addAction(redo);

    QMenu* plan = menuBar()->addMenu(tr("&Plan"));
    plan->addAction(tr("&Open plan…"), this, &MainWindow::openPlanDialog);
    plan->addAction(tr("&Save plan as…"), this, &MainWindow::savePlanDialog);
    plan->addAction(tr("Show the allocation &editor"), this, [this] {
        if (auto* d = findChild<QDockWidget*>(QStringLiteral("dock.editor"))) {
            d->show();
            d->raise();
        }
    });
    plan->addSeparator();
    plan->addAction(tr("New from s&trategy…"), this, &MainWindow::strategyDialog);

    QMenu* jobsMenu = menuBar()->addMenu(tr("&Jobs"));
    QAction* calibrate = jobsMenu->addAction(tr("&Calibrate…"), this, &MainWindow::calibrateDialog);
    calibrate->setShortcut(QKeySequence(tr("Ctrl+Shift+K")));
    calibrate->setStatusTip(tr("Run calibration data through the model and open the statistics"));
    jobsMenu->addAction(tr("&Strategy…"), this, &MainWindow::strategyDialog)
        ->setStatusTip(tr("Propose a plan from a bit-allocation strategy"));
    jobsMenu->addAction(tr("&Measure predicted cost"), this, [this] {
            if (!m_costKeeper->start())
                reportError(tr("Measure predicted cost"), m_costKeeper->lastError());
        })
        ->setStatusTip(tr("Predict each linear's cost at 2, 3, 4 and 8 bits from the Fisher statistics (runs by "
                          "itself when a model and such statistics are open): the allocation editor then shows "
                          "the plan's predicted KLD and the budget strategy"));
    jobsMenu->addAction(tr("&Quantize…"), this, [this] { quantizeDialog(false); })
        ->setStatusTip(tr("Fake-quantize the model with the current plan, to evaluate it"));
    jobsMenu->addAction(tr("&Evaluate…"), this, &MainWindow::evaluateDialog)
        ->setStatusTip(tr("Perplexity and task accuracy of a model: a row of the Results table"));
    jobsMenu->addAction(tr("E&xport…"), this, [this] { quantizeDialog(true); })
        ->setStatusTip(tr("Write a GPTQ or GGUF checkpoint with the current plan"));
    jobsMenu->addSeparator();
    jobsMenu->addAction(tr("Cancel &all jobs"), m_runner, &JobRunner::cancelAll);

    m_viewMenu = menuBar()->addMenu(tr("&View"));
    const QList<QDockWidget*> docks = findChildren<QDockWidget*>();
    int n = 1;
    for (QDockWidget* dock : docks) {
        QAction* toggle = dock->toggleViewAction();
        toggle->setShortcut(QKeySequence(QStringLiteral("Alt+%1").arg(n++)));
        m_viewMenu->addAction(toggle);
    }
    m_viewMenu->addSeparator();
    m_viewMenu->addAction(tr("&Reset layout"), this, &MainWindow::resetLayout);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About moewb"), this, &MainWindow::about);
    help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);

    QToolBar* tools = addToolBar(tr("Main"));
    tools->setObjectName(QStringLiteral("toolbar.main"));
    tools->addAction(openModel);
    tools->addAction(openStats);
}

void MainWindow::openModel(const QString& dir)
{
    m_document->openModel(dir);
}

void MainWindow::openStats(const QString& path)
{
    m_document->openStats(path);
}

void MainWindow::openModelDialog()
{
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open model directory"), m_document->modelDir());
    if (!dir.isEmpty())
        openModel(dir);
}

void MainWindow::openStatsDialog()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Open stats"), QFileInfo(m_document->statsPath()).path(),
                                                      tr("moewb stats (*.h5 *.hdf5);;All files (*)"));
    if (!path.isEmpty())
        openStats(path);
}

void MainWindow::addRecent(const QString& kind, const QString& path)
{
    if (m_batch || path.isEmpty())
        return;
    const QString entry = kind + QLatin1Char(':') + QFileInfo(path).absoluteFilePath();
    QSettings settings;
    QStringList recent = settings.value(QLatin1String(kRecentKey)).toStringList();
    recent.removeAll(entry);
    recent.prepend(entry);
    while (recent.size() > kMaxRecent)
        recent.removeLast();
    settings.setValue(QLatin1String(kRecentKey), recent);
    updateRecentMenu();
}

void MainWindow::updateRecentMenu()
{
    m_recentMenu->clear();
    const QStringList recent = QSettings().value(QLatin1String(kRecentKey)).toStringList();
    for (const QString& entry : recent) {
        const int colon = entry.indexOf(QLatin1Char(':'));
        const QString kind = entry.left(colon);
        const QString path = entry.mid(colon + 1);
        QAction* action = m_recentMenu->addAction(QStringLiteral("%1: %2").arg(kind, path));
        connect(action, &QAction::triggered, this, [this, kind, path] {
            if (kind == QLatin1String("model"))
                openModel(path);
            else if (kind == QLatin1String("session"))
                openSession(path);
            else
                openStats(path);
        });
    }
    m_recentMenu->setEnabled(!recent.isEmpty());
    if (!recent.isEmpty()) {
        m_recentMenu->addSeparator();
        m_recentMenu->addAction(tr("Clear list"), this, [this] {
            QSettings().remove(QLatin1String(kRecentKey));
            updateRecentMenu();
        });
    }
}

void MainWindow::updateStatus()
{
    QString text = m_document->summary();
    const Selection* s = m_document->selection();
    if (s->layer() >= 0) {
        text += tr(" · selected: layer %1").arg(s->layer());
        if (s->expert() >= 0)
            text += tr(", expert %1").arg(s->expert());
        if (!s->linear().isEmpty())
            text += QStringLiteral(", %1").arg(s->linear());
    }
    if (m_plan->modelConfig()) {
        const PlanSize size = m_plan->size();
        text += tr(" · plan: %1 average bits, %2 MB").arg(size.averageBits, 0, 'f', 3).arg(double(size.modelBytes) / 1e6, 0, 'f', 2);
    }
    m_statusLabel->setText(text);
    QString title = tr("moewb workbench");
    if (!m_document->statsPath().isEmpty())
        title = QFileInfo(m_document->statsPath()).fileName() + QStringLiteral(" — ") + title;
    else if (!m_document->modelDir().isEmpty())
        title = QFileInfo(m_document->modelDir()).fileName() + QStringLiteral(" — ") + title;
    setWindowTitle(title);
}

void MainWindow::updateProvenance()
{
    const CalibStats* stats = m_document->stats();
    if (!stats) {
        m_provenance->setHtml(tr("<p>No stats open. <b>File → Open stats…</b> opens a file written by "
                                 "<code>moewb calibrate</code>.</p>"));
        return;
    }
    const StatsProvenance& p = stats->provenance;
    auto row = [](const QString& k, const QString& v) {
        return QStringLiteral("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(k, v.toHtmlEscaped());
    };
    QString html = QStringLiteral("<table cellspacing=4>");
    html += row(tr("File"), m_document->statsPath());
    html += row(tr("Model"), QString::fromStdString(p.modelPath));
    html += row(tr("Architecture"), QString::fromStdString(p.architecture));
    html += row(tr("Data"), QString::fromStdString(p.dataDescription));
    html += row(tr("Windows"), QStringLiteral("%1 × %2 tokens%3").arg(p.numSamples).arg(p.seqLen)
                                   .arg(p.randomWindows ? tr(", random (seed %1)").arg(p.seed) : QString()));
    html += row(tr("Tokens"), QString::number(p.numTokens));
    for (size_t d = 0; d < p.domains.size(); ++d)
        html += row(tr("Domain %1").arg(QString::fromStdString(p.domains[d])),
                    tr("%1 tokens").arg(d < p.domainTokenCounts.size() ? p.domainTokenCounts[d] : 0));
    html += row(tr("Dead experts"), QString::number(stats->totalDeadExperts()));
    html += row(tr("Compute"), QStringLiteral("%1 on %2").arg(QString::fromStdString(p.computeDtype),
                                                              QString::fromStdString(p.device)));
    html += row(tr("Written by"), QStringLiteral("moewb %1, %2").arg(QString::fromStdString(p.toolVersion),
                                                                     QString::fromStdString(p.created)));
    html += QStringLiteral("</table>");
    m_provenance->setHtml(html);
}

void MainWindow::onLoadFailed(const QString& what, const QString& path, const QString& message)
{
    m_errors << message;
    if (what == QLatin1String("model") && !m_pendingPlanJson.isEmpty() && sameDir(m_pendingPlanModel, path)) {
        // the model of a recovered (or session) plan did not open: keep the plan where it can be found
        const QString json = std::exchange(m_pendingPlanJson, QString());
        m_pendingPlanPath.clear();
        const QString model = std::exchange(m_pendingPlanModel, QString());
        const QString saved = savePlanAside(json, model);
        if (!saved.isEmpty())
            statusBar()->showMessage(tr("The plan for %1 was saved to %2: its model did not open").arg(model, saved));
    }
    const QString title = what == QLatin1String("model") ? tr("Cannot open model") : tr("Cannot open stats");
    if (m_batch) {
        std::fprintf(stderr, "moewb-gui: %s: %s\n", qPrintable(title), qPrintable(message));
        return;
    }
    QMessageBox::critical(this, title, tr("%1\n\n%2").arg(path, message));
}

void MainWindow::resetLayout()
{
    for (QDockWidget* dock : findChildren<QDockWidget*>())
        dock->setFloating(false);
    restoreState(m_defaultState, kLayoutVersion);
    for (QDockWidget* dock : findChildren<QDockWidget*>())
        dock->show();
    findChild<QDockWidget*>(QStringLiteral("dock.correlation"))->raise();
    findChild<QDockWidget*>(QStringLiteral("dock.outliers"))->raise();
    applyDefaultDockSizes();
}

void MainWindow::about()
{
    QMessageBox::about(this, tr("About moewb"),
                       tr("<h3>moewb %1</h3><p>A workbench for compressing Mixture-of-Experts language models: "
                          "routing statistics, expert correlation, weight outliers, bit allocation, quantization, "
                          "export and evaluation.</p>"
                          "<p>Qt %2, QCustomPlot.</p>")
                           .arg(QStringLiteral(MOEWB_VERSION), QString::fromLatin1(qVersion())));
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    if (m_batch) {
        m_runner->cancelAll();
        m_runner->waitForIdle(60000);
        event->accept();
        return;
    }
    if (m_runner->isBusy()) {
        if (QMessageBox::question(this, tr("Jobs are running"),
                                  tr("Cancel the running and queued jobs and quit? Cancelled jobs leave no output."))
            != QMessageBox::Yes) {
            event->ignore();
            return;
        }
        m_runner->cancelAll();
        m_runner->waitForIdle(60000);
    }
    if (m_autosave)
        m_autosave->finish(); // a clean close: nothing to recover next time
    QSettings settings;
    settings.setValue(QStringLiteral("geometry"), saveGeometry());
    settings.setValue(QStringLiteral("windowState"), saveState(kLayoutVersion));
    event->accept();
}

// ---- Plan, jobs, results, sessions (#12)

void MainWindow::reportError(const QString& title, const QString& message)
{
    m_errors << message;
    if (m_batch) {
        std::fprintf(stderr, "moewb-gui: %s: %s\n", qPrintable(title), qPrintable(message));
        return;
    }
    QMessageBox::critical(this, title, message);
}

bool MainWindow::openQuantReport(const QString& path)
{
    QString error;
    if (!m_coverage->loadReport(path, &error)) {
        reportError(tr("Cannot show the expert coverage"), error);
        return false;
    }
    findChild<QDockWidget*>(QStringLiteral("dock.coverage"))->raise();
    return true;
}

void MainWindow::onModelChanged()
{
    const ModelConfig* cfg = m_document->config();
    m_plan->setModelConfig(cfg ? std::make_shared<const ModelConfig>(*cfg) : nullptr);
    // A session's (or a recovery's) plan goes in after every other follower of modelChanged has
    // run: the allocation editor also resets the plan model to the default plan for a new model.
    if (!m_pendingPlanJson.isEmpty())
        QMetaObject::invokeMethod(this, &MainWindow::applyPendingPlan, Qt::QueuedConnection);
    updateStatus();
}

/// The editor's strategy panel solves with the engine: heuristics from the open stats; "budget" on
/// the document's cost table (CostTableKeeper measures it from Fisher stats), disabled without one.
void MainWindow::updateAllocBackend()
{
    const bool open = m_document->config() && m_document->stats();
    m_editor->setBackend(gui::engineAllocBackend(
        open ? std::make_shared<const ModelConfig>(*m_document->config()) : nullptr,
        open ? std::make_shared<const CalibStats>(*m_document->stats()) : nullptr, m_document->costTable(),
        m_document->modelDir().toStdString()));
}

void MainWindow::applyPendingPlan()
{
    if (m_pendingPlanJson.isEmpty() || !m_plan->modelConfig())
        return;
    const QString json = std::exchange(m_pendingPlanJson, QString());
    const QString from = std::exchange(m_pendingPlanPath, QString());
    const QString model = std::exchange(m_pendingPlanModel, QString());
    if (!model.isEmpty() && !sameDir(model, m_document->modelDir())) {
        // another model opened before the plan's own: not a plan for this one, but not lost either
        const QString saved = savePlanAside(json, model);
        if (!saved.isEmpty())
            statusBar()->showMessage(
                tr("The plan for %1 was saved to %2 (%3 is open)").arg(model, saved, m_document->modelDir()));
        return;
    }
    try {
        m_plan->setPlan(parsePlanJson(json.toStdString(), from.toStdString()), tr("Restore plan"));
        m_plan->undoStack()->clear(); // the restored plan is where editing starts
    } catch (const std::exception& e) {
        reportError(tr("Cannot restore the plan"), QString::fromUtf8(e.what()));
    }
}

void MainWindow::onJobFailed(int id, const QString& message)
{
    reportError(tr("%1 failed").arg(m_runner->jobName(id)), message);
}

void MainWindow::loadRunPlan(const RunResult& run)
{
    if (!m_plan->modelConfig()) {
        reportError(tr("Cannot load the plan"), tr("open the model of run %1 first").arg(run.label));
        return;
    }
    try {
        m_plan->setPlan(parsePlanJson(run.planJson.toStdString(), run.label.toStdString()),
                        tr("Load plan of %1").arg(run.label));
    } catch (const std::exception& e) {
        reportError(tr("Cannot load the plan of %1").arg(run.label), QString::fromUtf8(e.what()));
    }
}

QString MainWindow::workDir() const
{
    const QString name = m_document->modelDir().isEmpty() ? QStringLiteral("work")
                                                           : QFileInfo(m_document->modelDir()).fileName();
    return QDir::home().filePath(QStringLiteral("moewb/") + name);
}

QString MainWindow::uniquePath(const QString& stem, const QString& suffix) const
{
    const QDir dir(workDir());
    QString path = dir.filePath(stem + suffix);
    for (int n = 2; QFileInfo::exists(path); ++n)
        path = dir.filePath(QStringLiteral("%1-%2%3").arg(stem).arg(n).arg(suffix));
    return path;
}

int MainWindow::startCalibrate(const gui::CalibrateSettings& settings)
{
    gui::CalibrateSettings s = settings;
    if (s.modelDir.isEmpty())
        s.modelDir = m_document->modelDir();
    if (s.modelDir.isEmpty()) {
        reportError(tr("Calibrate"), tr("open a model directory first (File → Open model directory…)"));
        return 0;
    }
    QDir().mkpath(QFileInfo(s.outPath).absolutePath());
    Job job = gui::calibrateJob(s);
    job.onDone = [this](const JobResult& r) {
        m_document->setStats(std::any_cast<std::shared_ptr<const CalibStats>>(r.value), r.outputPath);
    };
    return m_runner->submit(std::move(job));
}

int MainWindow::startStrategy(const gui::StrategySettings& settings)
{
    const ModelConfig* cfg = m_document->config();
    if (!cfg || !m_plan->modelConfig()) {
        reportError(tr("Strategy"), tr("open a model directory first (File → Open model directory…)"));
        return 0;
    }
    // The job works on copies: the document may open other files while it runs.
    auto stats = m_document->stats() ? std::make_shared<const CalibStats>(*m_document->stats()) : nullptr;
    Job job = gui::strategyJob(std::make_shared<const ModelConfig>(*cfg), m_document->modelDir(), stats,
                               m_document->statsPath(), settings, m_document->costTable());
    const QString text = tr("Strategy %1 @ %2 bits").arg(settings.strategy).arg(settings.bits);
    job.onDone = [this, text](const JobResult& r) { m_plan->setPlan(std::any_cast<Plan>(r.value), text); };
    return m_runner->submit(std::move(job));
}

int MainWindow::startQuantize(const gui::QuantizeSettings& settings)
{
    gui::QuantizeSettings s = settings;
    if (s.modelDir.isEmpty())
        s.modelDir = m_document->modelDir();
    if (!m_plan->modelConfig() || s.modelDir.isEmpty()) {
        reportError(tr("Quantize"), tr("open a model directory and make a plan first"));
        return 0;
    }
    QDir().mkpath(QFileInfo(s.outPath).absolutePath());
    Job job = gui::quantizeJob(m_plan->plan(), s);
    job.onDone = [this](const JobResult& r) {
        const auto outcome = std::any_cast<gui::QuantizeOutcome>(r.value);
        if (outcome.format == QLatin1String("fake"))
            m_lastQuantized = outcome;
        openQuantReport(outcome.reportPath); // its per-expert coverage, in the coverage view
    };
    return m_runner->submit(std::move(job));
}

int MainWindow::startEvaluate(const gui::EvaluateSettings& settings)
{
    if (settings.modelDir.isEmpty()) {
        reportError(tr("Evaluate"), tr("choose the model directory to evaluate"));
        return 0;
    }
    Job job = gui::evaluateJob(settings);
    job.onDone = [this](const JobResult& r) { m_results->addRun(std::any_cast<RunResult>(r.value)); };
    return m_runner->submit(std::move(job));
}

void MainWindow::calibrateDialog()
{
    if (m_document->modelDir().isEmpty())
        return reportError(tr("Calibrate"), tr("open a model directory first (File → Open model directory…)"));
    const QString name = QFileInfo(m_document->modelDir()).fileName();
    gui::CalibrateDialog dialog(m_document->modelDir(), uniquePath(name, QStringLiteral(".stats.h5")), this);
    if (dialog.exec() == QDialog::Accepted)
        startCalibrate(dialog.settings());
}

void MainWindow::strategyDialog()
{
    if (!m_plan->modelConfig())
        return reportError(tr("Strategy"), tr("open a model directory first (File → Open model directory…)"));
    gui::StrategyDialog dialog(m_document->stats() != nullptr, this);
    if (dialog.exec() == QDialog::Accepted)
        startStrategy(dialog.settings());
}

void MainWindow::quantizeDialog(bool exportMode)
{
    if (!m_plan->modelConfig())
        return reportError(exportMode ? tr("Export") : tr("Quantize"),
                           tr("open a model directory and make a plan first (Jobs → Strategy…)"));
    const Plan& plan = m_plan->plan();
    QString stem = QString::fromStdString(plan.provenance.strategy);
    if (stem.isEmpty())
        stem = QStringLiteral("plan");
    stem += QStringLiteral("-%1bit").arg(m_plan->size().averageBits, 0, 'f', 2);
    const QString out = uniquePath(stem + (exportMode ? QStringLiteral("-gptq") : QStringLiteral("-fake")), {});
    gui::QuantizeDialog dialog(m_document->modelDir(), out, exportMode, this);
    if (dialog.exec() == QDialog::Accepted)
        startQuantize(dialog.settings());
}

void MainWindow::evaluateDialog()
{
    const QString model = m_lastQuantized ? m_lastQuantized->outPath : m_document->modelDir();
    gui::EvaluateDialog dialog(model, this);
    if (dialog.exec() == QDialog::Accepted)
        startEvaluate(dialog.settings());
}

void MainWindow::openPlanDialog()
{
    if (!m_plan->modelConfig())
        return reportError(tr("Open plan"), tr("open the plan's model directory first"));
    const QString path = QFileDialog::getOpenFileName(this, tr("Open plan"), QFileInfo(m_plan->planPath()).path(),
                                                      tr("moewb plans (*.json);;All files (*)"));
    if (path.isEmpty())
        return;
    try {
        m_plan->loadPlanFile(path);
    } catch (const std::exception& e) {
        reportError(tr("Cannot open the plan"), QString::fromUtf8(e.what()));
    }
}

void MainWindow::savePlanDialog()
{
    if (!m_plan->modelConfig())
        return;
    const QString start = m_plan->planPath().isEmpty() ? uniquePath(QStringLiteral("plan"), QStringLiteral(".json"))
                                                       : m_plan->planPath();
    const QString path = QFileDialog::getSaveFileName(this, tr("Save plan"), start, tr("moewb plans (*.json)"));
    if (path.isEmpty())
        return;
    try {
        QDir().mkpath(QFileInfo(path).absolutePath());
        m_plan->savePlanFile(path);
    } catch (const std::exception& e) {
        reportError(tr("Cannot save the plan"), QString::fromUtf8(e.what()));
    }
}

Session MainWindow::currentSession() const
{
    Session s;
    s.modelDir = m_document->modelDir();
    s.statsPath = m_document->statsPath();
    if (m_plan->modelConfig())
        s.planJson = QString::fromStdString(planToJson(m_plan->plan()));
    s.planPath = m_plan->planPath();
    s.results = m_results->runs();
    s.windowGeometry = saveGeometry();
    s.windowState = saveState(kLayoutVersion);
    return s;
}

bool MainWindow::openSession(const QString& path)
{
    Session s;
    try {
        s = readSession(path);
    } catch (const std::exception& e) {
        reportError(tr("Cannot open the session"), QString::fromUtf8(e.what()));
        return false;
    }
    m_sessionPath = path;
    m_results->setRuns(s.results);
    if (!s.windowGeometry.isEmpty() && !m_batch)
        restoreGeometry(s.windowGeometry);
    if (!s.windowState.isEmpty() && restoreState(s.windowState, kLayoutVersion))
        m_layoutRestored = true;
    m_pendingPlanJson = s.planJson;
    m_pendingPlanPath = s.planPath.isEmpty() ? path : s.planPath;
    m_pendingPlanModel = s.modelDir;
    if (!s.modelDir.isEmpty())
        m_document->openModel(s.modelDir); // the plan is set once it has loaded (onModelChanged)
    if (!s.statsPath.isEmpty())
        m_document->openStats(s.statsPath);
    if (!m_batch)
        addRecent(QStringLiteral("session"), path);
    return true;
}

bool MainWindow::saveSession(const QString& path)
{
    try {
        writeSession(currentSession(), path);
    } catch (const std::exception& e) {
        reportError(tr("Cannot save the session"), QString::fromUtf8(e.what()));
        return false;
    }
    m_sessionPath = path;
    if (!m_batch)
        addRecent(QStringLiteral("session"), path);
    return true;
}

bool MainWindow::importPipelineResults(const QString& path)
{
    try {
        for (RunResult& r : moewb::importPipelineResults(path))
            m_results->addRun(std::move(r));
    } catch (const std::exception& e) {
        reportError(tr("Cannot import the results"), QString::fromUtf8(e.what()));
        return false;
    }
    return true;
}

void MainWindow::openSessionDialog()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Open session"), QFileInfo(m_sessionPath).path(),
                                                      tr("moewb sessions (*.moewb);;All files (*)"));
    if (!path.isEmpty())
        openSession(path);
}

bool MainWindow::saveSessionDialog(bool askPath)
{
    QString path = m_sessionPath;
    if (askPath || path.isEmpty()) {
        const QString start = path.isEmpty() ? QDir(workDir()).filePath(QStringLiteral("session.moewb")) : path;
        path = QFileDialog::getSaveFileName(this, tr("Save session"), start, tr("moewb sessions (*.moewb)"));
        if (path.isEmpty())
            return false;
        if (!path.endsWith(QLatin1String(".moewb")))
            path += QStringLiteral(".moewb");
        QDir().mkpath(QFileInfo(path).absolutePath());
    }
    return saveSession(path);
}

std::optional<AutosaveRecovery> MainWindow::startAutosave(const QString& dir)
{
    if (!m_autosave)
        m_autosave = new PlanAutosave(dir, this);
    connect(m_autosave, &PlanAutosave::saveFailed, this,
            [this](const QString& message) { statusBar()->showMessage(tr("autosave failed: %1").arg(message), 10000); });
    std::optional<AutosaveRecovery> r = m_autosave->pendingRecovery();
    m_autosave->begin();
    return r;
}

void MainWindow::recover(const AutosaveRecovery& recovery)
{
    m_pendingPlanJson = recovery.planJson;
    m_pendingPlanPath = recovery.file;
    m_pendingPlanModel = recovery.modelDir;
    if (!recovery.modelDir.isEmpty() && recovery.modelDir != m_document->modelDir())
        m_document->openModel(recovery.modelDir);
    else
        applyPendingPlan();
    if (m_autosave)
        m_autosave->discardRecovery();
}

void MainWindow::declineRecovery()
{
    if (m_autosave)
        m_autosave->discardRecovery();
}

} // namespace moewb

namespace moewb {

bool MainWindow::canRestore(const AutosaveRecovery& recovery)
{
    return !recovery.modelDir.isEmpty() && QFileInfo::exists(QDir(recovery.modelDir).filePath(QStringLiteral("config.json")));
}

QString MainWindow::recoveryQuestion(const AutosaveRecovery& recovery, const QString& requestedModel) const
{
    const QString model = recovery.modelDir.isEmpty() ? tr("(no model)") : recovery.modelDir;
    QString text = tr("moewb-gui did not close cleanly. It had autosaved a plan at %1:\n\n    %2\n\nfor the model %3.")
                       .arg(recovery.saved.toLocalTime().toString(Qt::TextDate), planSummary(recovery.planJson), model);
    const bool other = !requestedModel.isEmpty() && !sameDir(requestedModel, recovery.modelDir);
    if (!canRestore(recovery))
        text += tr("\n\nThat model directory cannot be opened any more: the plan can be saved to a file "
                   "(%1).").arg(recoveredPlanPath(recovery.modelDir));
    else if (other)
        text += tr("\n\nThe command line opens another model, %1. Open %2 with the recovered plan instead, or save the "
                   "plan to a file (%3) and open %1?")
                    .arg(requestedModel, modelName(recovery.modelDir), recoveredPlanPath(recovery.modelDir));
    else
        text += tr("\n\nRestore it, or save it to a file (%1)?").arg(recoveredPlanPath(recovery.modelDir));
    return text;
}

QString MainWindow::recoveredPlanPath(const QString& modelDir) const
{
    const QString name = modelDir.isEmpty() ? QStringLiteral("work") : modelName(modelDir);
    const QDir dir(QDir::home().filePath(QStringLiteral("moewb/") + name));
    const QString stem = QStringLiteral("recovered-plan-") + QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"));
    QString path = dir.filePath(stem + QStringLiteral(".json"));
    for (int n = 2; QFileInfo::exists(path); ++n)
        path = dir.filePath(QStringLiteral("%1-%2.json").arg(stem).arg(n));
    return path;
}

QString MainWindow::savePlanAside(const QString& planJson, const QString& modelDir)
{
    const QString path = recoveredPlanPath(modelDir);
    try {
        QDir().mkpath(QFileInfo(path).absolutePath());
        writeFileAtomically(path.toStdString(), planJson.toStdString());
    } catch (const std::exception& e) {
        reportError(tr("Cannot save the recovered plan"), QString::fromUtf8(e.what()));
        return {};
    }
    return path;
}

RecoveryOutcome MainWindow::resolveRecovery(const AutosaveRecovery& recovery, RecoveryChoice choice,
                                            const QString& requestedModel)
{
    RecoveryOutcome out;
    const bool other = !requestedModel.isEmpty() && !sameDir(requestedModel, recovery.modelDir);
    if (choice == RecoveryChoice::Restore && !canRestore(recovery))
        choice = RecoveryChoice::SaveAside; // never lose it: the model is gone, the plan is not
    switch (choice) {
    case RecoveryChoice::Restore:
        recover(recovery); // opens the plan's model; the plan follows once it has loaded
        out.replacesModel = other;
        out.message = other ? tr("Restored the autosaved plan of %1, opened instead of %2")
                                  .arg(recovery.modelDir, requestedModel)
                            : tr("Restored the autosaved plan of %1").arg(recovery.modelDir);
        break;
    case RecoveryChoice::SaveAside:
        out.savedPath = savePlanAside(recovery.planJson, recovery.modelDir);
        if (out.savedPath.isEmpty()) { // keep the autosave: the next start offers it again
            out.message = tr("The autosaved plan could not be saved; it stays in %1").arg(recovery.file);
            break;
        }
        declineRecovery();
        out.message = tr("The autosaved plan of %1 was saved to %2 (open that model, then Plan → Open plan…)")
                          .arg(recovery.modelDir.isEmpty() ? tr("(no model)") : recovery.modelDir, out.savedPath);
        break;
    case RecoveryChoice::Discard:
        declineRecovery();
        out.message = tr("The autosaved plan was discarded");
        break;
    }
    statusBar()->showMessage(out.message);
    return out;
}

} // namespace moewb
