// SPDX-License-Identifier: MIT
#include "mainwindow.h"

#include "appresources.h"
#include "document.h"
#include "selection.h"
#include "views/correlationview.h"
#include "views/domainview.h"
#include "views/modeltreeview.h"
#include "views/outlierview.h"
#include "views/routingheatmapview.h"

#include "moewb/calib/stats.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QSettings>
#include <QStatusBar>
#include <QTextBrowser>
#include <QToolBar>

#include <cstdio>

namespace moewb {

namespace {
constexpr int kMaxRecent = 8;
const char* kRecentKey = "recentFiles"; // entries "model:PATH" or "stats:PATH"
} // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent)
    , m_document(new Document(this))
    , m_heatmap(new RoutingHeatmapView(m_document, this))
    , m_tree(new ModelTreeView(m_document, this))
    , m_correlation(new CorrelationView(m_document, this))
    , m_domains(new DomainView(m_document, this))
    , m_outliers(new OutlierView(m_document, this))
    , m_provenance(new QTextBrowser(this))
    , m_statusLabel(new QLabel(this))
    , m_busy(new QProgressBar(this))
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
    addDock(tr("Outliers"), QStringLiteral("dock.outliers"), m_outliers, Qt::BottomDockWidgetArea);
    tabifyDockWidget(findChild<QDockWidget*>(QStringLiteral("dock.model")), provenance);
    findChild<QDockWidget*>(QStringLiteral("dock.model"))->raise();
    splitDockWidget(correlation, domains, Qt::Vertical);

    m_busy->setRange(0, 0);
    m_busy->setMaximumWidth(120);
    m_busy->setVisible(false);
    statusBar()->addWidget(m_statusLabel, 1);
    statusBar()->addPermanentWidget(m_busy);

    createActions();
    resize(1400, 900);
    resizeDocks({findChild<QDockWidget*>(QStringLiteral("dock.model"))}, {340}, Qt::Horizontal);
    resizeDocks({correlation}, {460}, Qt::Horizontal);
    resizeDocks({findChild<QDockWidget*>(QStringLiteral("dock.outliers"))}, {300}, Qt::Vertical);
    m_defaultState = saveState();

    updateRecentMenu();

    // only files that opened go into the recent list
    connect(m_document, &Document::modelChanged, this,
            [this] { addRecent(QStringLiteral("model"), m_document->modelDir()); });
    connect(m_document, &Document::statsChanged, this,
            [this] { addRecent(QStringLiteral("stats"), m_document->statsPath()); });
    connect(m_document, &Document::modelChanged, this, &MainWindow::updateStatus);
    connect(m_document, &Document::statsChanged, this, &MainWindow::updateStatus);
    connect(m_document, &Document::statsChanged, this, &MainWindow::updateProvenance);
    connect(m_document, &Document::loadingChanged, m_busy, &QWidget::setVisible);
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
    updateStatus();
    updateProvenance();
}

MainWindow::~MainWindow() = default;

void MainWindow::restoreSettings()
{
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("windowState")).toByteArray());
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
    m_recentMenu = file->addMenu(tr("&Recent files"));
    file->addSeparator();
    QAction* close = file->addAction(tr("&Close"), m_document, &Document::closeAll);
    close->setShortcut(QKeySequence::Close);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    quit->setMenuRole(QAction::QuitRole);

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
    restoreState(m_defaultState);
    for (QDockWidget* dock : findChildren<QDockWidget*>())
        dock->show();
}

void MainWindow::about()
{
    QMessageBox::about(this, tr("About moewb"),
                       tr("<h3>moewb %1</h3><p>A workbench for compressing Mixture-of-Experts language models: "
                          "routing statistics, expert correlation, weight outliers.</p>"
                          "<p>Qt %2, QCustomPlot.</p>")
                           .arg(QStringLiteral(MOEWB_VERSION), QString::fromLatin1(qVersion())));
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    if (m_batch) {
        event->accept();
        return;
    }
    QSettings settings;
    settings.setValue(QStringLiteral("geometry"), saveGeometry());
    settings.setValue(QStringLiteral("windowState"), saveState());
    event->accept();
}

} // namespace moewb
