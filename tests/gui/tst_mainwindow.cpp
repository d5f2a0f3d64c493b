// SPDX-License-Identifier: MIT
// The main window at real expert counts (#27), everything measured on the rendered window:
//  - at 8, 64, 128 and 256 experts (4, 16, 48 and 61 layers) and the default window size, the
//    correlation, domain and coverage matrices keep square cells (width / height in [0.8, 1.25]), and no two
//    tick labels of any axis of the heat map, the matrices or the outlier chart overlap (label
//    extents from the font at the rendered tick positions); the clustered order's labels name the
//    experts at their positions;
//  - the window's minimum size fits a 1366 × 768 screen, with a model and stats open, and at that
//    size the status bar and every dock lie inside the window;
//  - crash recovery when the command line names another model: saved aside where the message says
//    (and the other model opens with its own plan), restored (the plan's model opens instead), a
//    plan whose model is gone is saved aside, and a plan whose model was superseded is not applied
//    to the other model but saved aside;
//  - loading a 256-expert, 61-layer stats file reports progress per layer in the status bar and the
//    Cancel button stops it, leaving what was open;
//  - `moewb-gui --screenshot FILE --view NAME --size WxH` writes a PNG of exactly that size, for the
//    window and every view (the coverage view also with --quant-report); an unknown view or a
//    malformed size exits 2, a --quant-report that is not a quantize report 1.
// No assertion depends on wall-clock time (bench/bench_views.cpp times the redraws).
#include "mainwindow.h"
#include "test_paths.h"

#include "../widgets/statsfixture.h"
#include "alloc/planeditmodel.h"
#include "document.h"
#include "plot/matrixplot.h"
#include "selection.h"
#include "session/autosave.h"
#include "views/correlationview.h"
#include "views/coverageview.h"
#include "views/domainview.h"
#include "views/outlierview.h"
#include "views/routingheatmapview.h"

#include "moewb/plan/plan.h"
#include "moewb/stats/stats_h5.h"

#include <QDateTime>
#include <QDir>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QImage>
#include <QProcess>
#include <QProgressBar>
#include <QScrollBar>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QTest>
#include <QToolButton>

#include <algorithm>
#include <iterator>
#include <memory>
#include <tuple>

using namespace moewb;

namespace {

QString mixtralDir() { return moewb::test::sourceDir() + QStringLiteral("/datasets/models/moewb-mixtral-8e-v2"); }
QString qwenDir() { return moewb::test::sourceDir() + QStringLiteral("/datasets/models/moewb-qwen2moe-8e-v2"); }
QString mixtralStats() { return moewb::test::sourceDir() + QStringLiteral("/datasets/stats/moewb-mixtral-8e-v2.stats.h5"); }

bool waitForDocument(Document* document, int timeoutMs = 60000)
{
    // a condition on the document, not a measurement: the limit only stops a hung test
    QElapsedTimer t;
    t.start();
    while (document->isLoading() && t.elapsed() < timeoutMs)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    QCoreApplication::processEvents();
    return !document->isLoading();
}

void settle(QWidget* window)
{
    for (int i = 0; i < 3; ++i) {
        QCoreApplication::processEvents();
        for (QCustomPlot* plot : window->findChildren<QCustomPlot*>())
            if (plot->isVisible())
                plot->replot();
    }
}

/// The rendered tick labels of an axis as pixel intervals along it (centred on the tick, the
/// label's width when it runs along the axis, its line height when it stands across); the first
/// two that overlap, or "" when none do.
QString overlappingLabels(QCPAxis* axis, int* shown = nullptr)
{
    const QVector<double> ticks = axis->tickVector();
    const QVector<QString> labels = axis->tickVectorLabels();
    const QFontMetricsF fm(axis->tickLabelFont());
    const bool horizontal = axis->orientation() == Qt::Horizontal;
    const bool along = horizontal == (std::abs(axis->tickLabelRotation()) < 45);
    std::vector<std::tuple<double, double, QString>> spans;
    for (int i = 0; i < ticks.size() && i < labels.size(); ++i) {
        if (!axis->range().contains(ticks[i]) || labels[i].isEmpty())
            continue;
        const double pos = axis->coordToPixel(ticks[i]);
        const double extent = along ? fm.horizontalAdvance(labels[i]) : fm.height();
        spans.emplace_back(pos - extent / 2, pos + extent / 2, labels[i]);
    }
    if (shown)
        *shown = int(spans.size());
    std::sort(spans.begin(), spans.end());
    for (size_t k = 1; k < spans.size(); ++k)
        if (std::get<0>(spans[k]) < std::get<1>(spans[k - 1]))
            return QStringLiteral("'%1' [%2, %3] overlaps '%4' [%5, %6]")
                .arg(std::get<2>(spans[k - 1]))
                .arg(std::get<0>(spans[k - 1]))
                .arg(std::get<1>(spans[k - 1]))
                .arg(std::get<2>(spans[k]))
                .arg(std::get<0>(spans[k]))
                .arg(std::get<1>(spans[k]));
    return {};
}

QByteArray readAll(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

/// What a workbench that autosaved `plan` for `model` and then died leaves in dir (a pid that
/// cannot exist: above Linux's pid_max).
void leaveCrashedAutosave(const QString& dir, const QString& model, const Plan& plan)
{
    QDir().mkpath(dir);
    QJsonObject o;
    o.insert(QStringLiteral("model"), model);
    o.insert(QStringLiteral("saved"), QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs));
    o.insert(QStringLiteral("plan"), QJsonDocument::fromJson(QByteArray::fromStdString(planToJson(plan))).object());
    QFile f(QDir(dir).filePath(QStringLiteral("plan-999999999.json")));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(QJsonDocument(o).toJson());
    f.close();
    QFile marker(QDir(dir).filePath(QStringLiteral("running-999999999")));
    QVERIFY(marker.open(QIODevice::WriteOnly));
    marker.write("x\n");
}

Plan recoveredPlan()
{
    Plan p;
    p.defaults.bits = 3;
    p.provenance.strategy = "uniform";
    return p;
}

} // namespace

class TestMainWindow : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void matricesAtExpertCounts_data();
    void matricesAtExpertCounts();
    void minimumSizeFitsLaptop();
    void recoverySavedAsideForAnotherModel();
    void recoveryRestoresThePlansModel();
    void recoveryOfAModelThatIsGone();
    void recoveredPlanNotAppliedToAnotherModel();
    void bigStatsLoadShowsProgressAndCancels();
    void screenshotOption();
    void cleanupTestCase();

private:
    QTemporaryDir m_home;
    QByteArray m_oldHome;
};

void TestMainWindow::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(m_home.isValid());
    // recovered plans go to ~/moewb/<model>/: a home of the test's own
    m_oldHome = qgetenv("HOME");
    qputenv("HOME", m_home.path().toUtf8());
    QCOMPARE(QDir::homePath(), m_home.path());
    QVERIFY(QFileInfo::exists(mixtralDir() + QStringLiteral("/config.json")));
    QVERIFY(QFileInfo::exists(qwenDir() + QStringLiteral("/config.json")));
}

void TestMainWindow::cleanupTestCase()
{
    qputenv("HOME", m_oldHome);
}

void TestMainWindow::matricesAtExpertCounts_data()
{
    QTest::addColumn<int>("experts");
    QTest::addColumn<int>("layers");
    QTest::newRow("8 experts") << 8 << 4;
    QTest::newRow("64 experts") << 64 << 16;
    QTest::newRow("128 experts") << 128 << 48;
    QTest::newRow("256 experts") << 256 << 61;
}

void TestMainWindow::matricesAtExpertCounts()
{
    QFETCH(int, experts);
    QFETCH(int, layers);
    MainWindow window;
    window.setBatchMode(true);
    window.resize(MainWindow::defaultSize());
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QCOMPARE(window.size(), MainWindow::defaultSize());
    window.document()->setStats(std::make_shared<const CalibStats>(test::syntheticStats(experts, layers)),
                                QStringLiteral("synthetic"));
    const auto check = [&](QCPAxis* axis, const char* what) {
        int shown = 0;
        const QString overlap = overlappingLabels(axis, &shown);
        QVERIFY2(overlap.isEmpty(), qPrintable(QStringLiteral("%1: %2").arg(QLatin1String(what), overlap)));
        QVERIFY2(shown >= 2, what); // thinned out, not gone
    };

    // the correlation matrix: square cells, thinned labels, exact tooltips, clustering
    window.findChild<QDockWidget*>(QStringLiteral("dock.correlation"))->raise();
    settle(&window);
    MatrixPlot* corr = window.correlationView()->matrixPlot();
    QVERIFY(corr->isVisible());
    QCOMPARE(corr->rows(), experts);
    QSizeF cell = corr->cellSize();
    double ratio = cell.width() / cell.height();
    QVERIFY2(ratio >= 0.8 && ratio <= 1.25, qPrintable(QStringLiteral("correlation cells %1 x %2 px")
                                                           .arg(cell.width()).arg(cell.height())));
    QVERIFY(cell.width() >= corr->minimumCellSize() - 0.5);
    // all of it in view, or a scroll bar to reach the rest
    const bool partial = corr->xAxis->range().size() < experts - 1e-6;
    QCOMPARE(corr->scrollBar(Qt::Horizontal)->isVisible(), partial);
    if (experts <= 16)
        QCOMPARE(corr->labelStep(Qt::Horizontal), 1); // every expert labelled
    check(corr->xAxis, "correlation x");
    check(corr->yAxis, "correlation y");
    const double v = corr->value(1, 0);
    QVERIFY(corr->tooltipAt(1, 0).contains(QString::number(v, 'g', 6)));

    window.correlationView()->setMeasure(CorrelationView::Measure::OutputCorrelation);
    window.correlationView()->setClustered(true);
    settle(&window);
    const std::vector<int64_t> order = window.correlationView()->order();
    QCOMPARE(int(order.size()), experts);
    // blocks of 16 (e % 16) correlate 0.8: clustered neighbours share e % 16
    if (experts >= 32)
        QCOMPARE(order[1] % 16, order[0] % 16);
    // each shown label names the expert at its position
    const QVector<double> ticks = corr->xAxis->tickVector();
    const QVector<QString> labels = corr->xAxis->tickVectorLabels();
    for (int i = 0; i < ticks.size(); ++i)
        if (corr->xAxis->range().contains(ticks[i]))
            QCOMPARE(labels[i], QString::number(order[size_t(std::lround(ticks[i]))]));
    check(corr->xAxis, "clustered correlation x");
    cell = corr->cellSize();
    ratio = cell.width() / cell.height();
    QVERIFY(ratio >= 0.8 && ratio <= 1.25);

    // the domain matrix: square cells, every domain labelled
    window.findChild<QDockWidget*>(QStringLiteral("dock.domains"))->raise();
    settle(&window);
    MatrixPlot* dom = window.domainView()->matrixPlot();
    QVERIFY(dom->isVisible());
    cell = dom->cellSize();
    ratio = cell.width() / cell.height();
    QVERIFY2(ratio >= 0.8 && ratio <= 1.25,
             qPrintable(QStringLiteral("domain cells %1 x %2 px").arg(cell.width()).arg(cell.height())));
    QCOMPARE(dom->labelStep(Qt::Vertical), 1);
    check(dom->xAxis, "domains x");
    check(dom->yAxis, "domains y");

    // the coverage matrix (layers × experts): square cells, thinned labels, exact tooltips
    window.findChild<QDockWidget*>(QStringLiteral("dock.coverage"))->raise();
    settle(&window);
    MatrixPlot* cov = window.coverageView()->matrixPlot();
    QVERIFY(cov->isVisible());
    QCOMPARE(cov->rows(), layers);
    QCOMPARE(cov->cols(), experts);
    cell = cov->cellSize();
    ratio = cell.width() / cell.height();
    QVERIFY2(ratio >= 0.8 && ratio <= 1.25,
             qPrintable(QStringLiteral("coverage cells %1 x %2 px").arg(cell.width()).arg(cell.height())));
    QVERIFY(cell.width() >= cov->minimumCellSize() - 0.5);
    QCOMPARE(cov->scrollBar(Qt::Horizontal)->isVisible(), cov->xAxis->range().size() < experts - 1e-6);
    qInfo("coverage at %d experts x %d layers: cells %.2f x %.2f px, label steps %d / %d, %.0f of %d experts in view",
          experts, layers, cell.width(), cell.height(), cov->labelStep(Qt::Horizontal), cov->labelStep(Qt::Vertical),
          cov->xAxis->range().size(), experts);
    check(cov->xAxis, "coverage x");
    check(cov->yAxis, "coverage y");
    const int64_t routed = window.document()->stats()->layers[1].router.expertTokens[0];
    QCOMPARE(cov->value(1, 0), double(routed));
    QVERIFY(cov->tooltipAt(1, 0).contains(QStringLiteral("routed in calibration (stats): %1 of").arg(routed)));

    // the heat map fills its area (not square) with legible labels
    MatrixPlot* heat = window.heatmapView()->matrixPlot();
    QCOMPARE(heat->rows(), layers);
    QCOMPARE(heat->cols(), experts);
    check(heat->xAxis, "heat map x");
    check(heat->yAxis, "heat map y");
    QVERIFY(heat->xAxis->range().size() >= experts - 1e-6); // all experts in view
    QVERIFY(heat->yAxis->range().size() >= layers - 1e-6);

    // the outlier chart of a layer: at most top-N bars plus "others", labels apart
    window.document()->selection()->select(0);
    settle(&window);
    OutlierView* out = window.outlierView();
    const int linears = 5 + 3 * experts;
    QCOMPARE(int(out->bars().size()), std::min(linears, OutlierView::kDefaultTopN + 1));
    QCOMPARE(out->othersCount(), std::max(0, linears - OutlierView::kDefaultTopN));
    check(out->plot()->xAxis, "outlier bars x");
}

void TestMainWindow::minimumSizeFitsLaptop()
{
    MainWindow window;
    window.setBatchMode(true);
    window.openModel(mixtralDir());
    window.openStats(mixtralStats());
    QVERIFY(waitForDocument(window.document()));
    QVERIFY(window.document()->stats() && window.document()->config());
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    const QSize minimum = window.minimumSizeHint().expandedTo(window.minimumSize());
    QVERIFY2(minimum.width() <= 1366 && minimum.height() <= 768,
             qPrintable(QStringLiteral("minimum %1 x %2").arg(minimum.width()).arg(minimum.height())));
    window.resize(1366, 768);
    settle(&window);
    QCOMPARE(window.size(), QSize(1366, 768));
    QVERIFY(window.rect().contains(window.statusBar()->geometry()));
    int shown = 0;
    for (QDockWidget* dock : window.findChildren<QDockWidget*>())
        if (dock->isVisible() && !dock->visibleRegion().isEmpty()) { // the raised tab of each group
            ++shown;
            QVERIFY2(window.rect().contains(dock->geometry()), qPrintable(dock->objectName()));
        }
    QCOMPARE(shown, 3); // model, correlation, outliers
    qInfo("minimum window size %d x %d", minimum.width(), minimum.height());
    // and the matrices are still square there
    window.findChild<QDockWidget*>(QStringLiteral("dock.correlation"))->raise();
    settle(&window);
    const QSizeF cell = window.correlationView()->matrixPlot()->cellSize();
    QVERIFY(cell.width() / cell.height() >= 0.8 && cell.width() / cell.height() <= 1.25);
}

void TestMainWindow::recoverySavedAsideForAnotherModel()
{
    // The workbench crashed with a plan for the Qwen2-MoE demo; the command line now opens Mixtral.
    QTemporaryDir autosave;
    leaveCrashedAutosave(autosave.path(), qwenDir(), recoveredPlan());
    MainWindow window;
    window.setBatchMode(true);
    const std::optional<AutosaveRecovery> r = window.startAutosave(autosave.path());
    QVERIFY(r.has_value());
    QCOMPARE(r->modelDir, qwenDir());
    QVERIFY(MainWindow::canRestore(*r));
    // the prompt says what it recovers, for which model, and which model the command line opens
    const QString question = window.recoveryQuestion(*r, mixtralDir());
    QVERIFY2(question.contains(qwenDir()) && question.contains(mixtralDir()) && question.contains(QStringLiteral("3b g128 gptq")),
             qPrintable(question));

    const RecoveryOutcome out = window.resolveRecovery(*r, RecoveryChoice::SaveAside, mixtralDir());
    QVERIFY(!out.replacesModel);
    QVERIFY2(out.savedPath.startsWith(m_home.path() + QStringLiteral("/moewb/moewb-qwen2moe-8e-v2/recovered-plan-")),
             qPrintable(out.savedPath));
    QVERIFY(out.message.contains(out.savedPath));
    QCOMPARE(window.statusBar()->currentMessage(), out.message);
    QVERIFY(parsePlanJson(readAll(out.savedPath).toStdString(), "saved") == recoveredPlan());
    // the autosave is gone: nothing offered twice
    QVERIFY(!QFile::exists(QDir(autosave.path()).filePath(QStringLiteral("plan-999999999.json"))));
    QVERIFY(!PlanAutosave(autosave.path()).pendingRecovery());
    // the command line's model opens with its own (default) plan
    window.openModel(mixtralDir());
    QVERIFY(waitForDocument(window.document()));
    QCoreApplication::processEvents();
    QCOMPARE(window.document()->modelDir(), mixtralDir());
    QCOMPARE(window.planModel()->plan().defaults.bits, 4);
}

void TestMainWindow::recoveryRestoresThePlansModel()
{
    QTemporaryDir autosave;
    leaveCrashedAutosave(autosave.path(), qwenDir(), recoveredPlan());
    MainWindow window;
    window.setBatchMode(true);
    const std::optional<AutosaveRecovery> r = window.startAutosave(autosave.path());
    QVERIFY(r.has_value());
    const RecoveryOutcome out = window.resolveRecovery(*r, RecoveryChoice::Restore, mixtralDir());
    QVERIFY(out.replacesModel); // main.cpp then leaves the command line's model closed
    QVERIFY(out.savedPath.isEmpty());
    QVERIFY(out.message.contains(qwenDir()) && out.message.contains(mixtralDir()));
    QVERIFY(waitForDocument(window.document()));
    QCOMPARE(window.document()->modelDir(), qwenDir());
    QTRY_VERIFY(window.planModel()->plan() == recoveredPlan());
    QVERIFY(window.errors().isEmpty());
    QVERIFY(!PlanAutosave(autosave.path()).pendingRecovery());
}

void TestMainWindow::recoveryOfAModelThatIsGone()
{
    QTemporaryDir autosave;
    const QString gone = m_home.filePath(QStringLiteral("deleted-model"));
    leaveCrashedAutosave(autosave.path(), gone, recoveredPlan());
    MainWindow window;
    window.setBatchMode(true);
    const std::optional<AutosaveRecovery> r = window.startAutosave(autosave.path());
    QVERIFY(r.has_value());
    QVERIFY(!MainWindow::canRestore(*r));
    QVERIFY(window.recoveryQuestion(*r, mixtralDir()).contains(QStringLiteral("cannot be opened")));
    // Restore is not possible: the plan is saved aside instead of being lost
    const RecoveryOutcome out = window.resolveRecovery(*r, RecoveryChoice::Restore, mixtralDir());
    QVERIFY(!out.replacesModel);
    QVERIFY(out.savedPath.startsWith(m_home.path() + QStringLiteral("/moewb/deleted-model/")));
    QVERIFY(parsePlanJson(readAll(out.savedPath).toStdString(), "saved") == recoveredPlan());
    QVERIFY(!window.document()->isLoading());
}

void TestMainWindow::recoveredPlanNotAppliedToAnotherModel()
{
    // Restore starts loading the plan's model; another model opened before it finished wins the
    // document — the plan must not land on it, and must not vanish either.
    QTemporaryDir autosave;
    leaveCrashedAutosave(autosave.path(), qwenDir(), recoveredPlan());
    MainWindow window;
    window.setBatchMode(true);
    const std::optional<AutosaveRecovery> r = window.startAutosave(autosave.path());
    QVERIFY(r.has_value());
    window.resolveRecovery(*r, RecoveryChoice::Restore);
    window.openModel(mixtralDir()); // supersedes the Qwen load
    QVERIFY(waitForDocument(window.document()));
    QTRY_VERIFY(window.statusBar()->currentMessage().contains(QStringLiteral("was saved to")));
    QCOMPARE(window.document()->modelDir(), mixtralDir());
    QCOMPARE(window.planModel()->plan().defaults.bits, 4);
    const QString message = window.statusBar()->currentMessage();
    const QString saved = message.mid(message.indexOf(m_home.path())).section(QLatin1Char(' '), 0, 0);
    QVERIFY2(QFileInfo::exists(saved), qPrintable(message));
    QVERIFY(parsePlanJson(readAll(saved).toStdString(), "saved") == recoveredPlan());
}

void TestMainWindow::bigStatsLoadShowsProgressAndCancels()
{
    // a DeepSeek-V3-shaped stats file: 61 layers × 256 experts (no correlation probe)
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("v3-shaped.stats.h5"));
    {
        const CalibStats big = test::syntheticStats(256, 61, 6, false);
        writeStats(big, path.toStdString());
    }
    MainWindow window;
    window.setBatchMode(true);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    Document* doc = window.document();
    auto* bar = window.findChild<QProgressBar*>(QStringLiteral("status.progress"));
    auto* cancel = window.findChild<QToolButton*>(QStringLiteral("status.cancelLoad"));
    QVERIFY(bar && cancel);

    // a whole load: one report after the header, one per layer, one after the linears
    QSignalSpy progress(doc, &Document::loadProgress);
    QSignalSpy changed(doc, &Document::statsChanged);
    QSignalSpy cancelled(doc, &Document::loadCancelled);
    int seenMaximum = -1;
    bool cancelSeen = false;
    auto watch = connect(doc, &Document::loadProgress, this, [&](int, int total) {
        seenMaximum = bar->maximum();
        cancelSeen = cancel->isVisible();
        QCOMPARE(total, 63);
    });
    window.openStats(path);
    QVERIFY(changed.wait(120000));
    disconnect(watch);
    QCOMPARE(progress.size(), 63);
    for (int i = 0; i < progress.size(); ++i) {
        QCOMPARE(progress[i][0].toInt(), i + 1);
        QCOMPARE(progress[i][1].toInt(), 63);
    }
    QCOMPARE(seenMaximum, 63); // the status bar showed it
    QVERIFY(cancelSeen);
    QVERIFY(!cancel->isVisible()); // done: gone again
    const CalibStats* loaded = doc->stats();
    QVERIFY(loaded && loaded->numLayers == 61 && loaded->layers[60].router.numExperts == 256);

    // again, cancelled with the button at the first report: nothing changes
    progress.clear();
    bool clicked = false;
    watch = connect(doc, &Document::loadProgress, this, [&] {
        if (!clicked) {
            clicked = true;
            cancel->click();
        }
    });
    window.openStats(path);
    QVERIFY(cancelled.wait(120000));
    disconnect(watch);
    QVERIFY(clicked);
    QCOMPARE(cancelled.size(), 1);
    QCOMPARE(cancelled[0][0].toString(), path);
    QCOMPARE(progress.size(), 1); // the reports still queued behind the click are dropped
    QCOMPARE(changed.size(), 1);
    QCOMPARE(doc->stats(), loaded);
    QVERIFY(!doc->isLoading());
    QVERIFY(window.statusBar()->currentMessage().contains(QStringLiteral("cancelled")));
    QVERIFY(window.errors().isEmpty());
}

void TestMainWindow::screenshotOption()
{
    const QString gui = moewb::test::binaryDir() + QStringLiteral("/app/gui/moewb-gui");
    QVERIFY2(QFileInfo(gui).isExecutable(), qPrintable(gui));
    QTemporaryDir dir;
    const auto run = [&](const QStringList& args) {
        QProcess p;
        p.start(gui, args);
        p.waitForFinished(120000);
        return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    };
    const QStringList data{mixtralDir(), QStringLiteral("--stats"), mixtralStats()};
    struct Shot {
        QString view;
        QSize size;
    };
    const Shot shots[] = {{{}, QSize(1366, 768)}, {QStringLiteral("heatmap"), QSize(800, 500)},
                          {QStringLiteral("correlation"), QSize(640, 600)}, {QStringLiteral("domains"), QSize(900, 400)},
                          {QStringLiteral("coverage"), QSize(700, 400)},
                          {QStringLiteral("outliers"), QSize(1000, 480)}, {QStringLiteral("allocation"), QSize(1100, 640)},
                          {QStringLiteral("results"), QSize(1200, 500)}};
    for (const Shot& shot : shots) {
        const QString png = dir.filePath((shot.view.isEmpty() ? QStringLiteral("window") : shot.view) + QStringLiteral(".png"));
        QStringList args{QStringLiteral("--screenshot"), png, QStringLiteral("--size"),
                         QStringLiteral("%1x%2").arg(shot.size.width()).arg(shot.size.height())};
        if (!shot.view.isEmpty())
            args << QStringLiteral("--view") << shot.view;
        QCOMPARE(run(args + data), 0);
        const QImage image(png);
        QCOMPARE(image.size(), shot.size);
    }
    QCOMPARE(int(MainWindow::viewNames().size()), int(std::size(shots)) - 1); // every view has a picture above
    // the coverage view with a quantize report; a file that is not one exits 1 without a picture
    const QString report = moewb::test::sourceDir() + QStringLiteral("/tests/data/coverage/quant_report_2x8.json");
    QCOMPARE(run(QStringList{QStringLiteral("--screenshot"), dir.filePath(QStringLiteral("r.png")), QStringLiteral("--view"),
                             QStringLiteral("coverage"), QStringLiteral("--quant-report"), report} + data),
             0);
    QVERIFY(QFileInfo::exists(dir.filePath(QStringLiteral("r.png"))));
    QCOMPARE(run(QStringList{QStringLiteral("--screenshot"), dir.filePath(QStringLiteral("bad.png")),
                             QStringLiteral("--quant-report"), mixtralDir() + QStringLiteral("/config.json")} + data),
             1);
    QVERIFY(!QFileInfo::exists(dir.filePath(QStringLiteral("bad.png"))));
    QCOMPARE(run(QStringList{QStringLiteral("--screenshot"), dir.filePath(QStringLiteral("x.png")),
                             QStringLiteral("--view"), QStringLiteral("nonsense")} + data), 2);
    QCOMPARE(run(QStringList{QStringLiteral("--screenshot"), dir.filePath(QStringLiteral("x.png")),
                             QStringLiteral("--size"), QStringLiteral("big")} + data), 2);
    QVERIFY(!QFileInfo::exists(dir.filePath(QStringLiteral("x.png"))));
}

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
