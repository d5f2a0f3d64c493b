// SPDX-License-Identifier: MIT
// moewb-gui [MODEL_DIR] [--stats FILE] [--session FILE.moewb] [--results results.json] [--select LAYER[:EXPERT]]
//           [--quant-report moewb_quant_report.json]
//           [--screenshot FILE.png [--view NAME] [--size WxH]] [--screenshot-dir DIR]
#include "mainwindow.h"
#include "moewb/model/runtime.h"

#include "appresources.h"
#include "document.h"
#include "jobs/jobrunner.h"
#include "results/resultsview.h"
#include "session/autosave.h"
#include "selection.h"
#include "views/correlationview.h"
#include "views/domainview.h"
#include "views/outlierview.h"
#include "views/routingheatmapview.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QLayout>
#include <QMessageBox>
#include <QPushButton>
#include <QRegularExpression>
#include <QTimer>
#include <qcustomplot.h>

#include <cstdio>
#include <cstring>

namespace {

// Waits (processing events) until the document has finished loading; false on timeout.
bool waitForDocument(moewb::Document* document, int timeoutMs)
{
    QElapsedTimer timer;
    timer.start();
    while (document->isLoading() && timer.elapsed() < timeoutMs)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    QCoreApplication::processEvents();
    return !document->isLoading();
}

// Writes the whole window and each view as PNG into dir; returns the process exit code.
int takeScreenshots(moewb::MainWindow& window, const QString& dir)
{
    QDir().mkpath(dir);
    window.resize(moewb::MainWindow::defaultSize()); // not the (offscreen) screen's size
    window.show();
    QCoreApplication::processEvents();
    const struct {
        QWidget* widget;
        const char* name;
        int width = 1000;
    } shots[] = {
        {&window, "main-window.png"},
        {window.heatmapView(), "routing-heatmap.png"},
        {window.correlationView(), "correlation.png"},
        {window.outlierView(), "outliers.png"},
        {window.domainView(), "domains.png"},
        // with --results or --session; jobs.png comes from tests/gui (MOEWB_SCREENSHOT_DIR)
        {window.resultsView(), "results.png", 1500},
    };
    for (const auto& shot : shots) {
        QWidget* w = shot.widget;
        if (w != &window) { // a view alone, at a readable size
            w->setParent(nullptr);
            w->resize(shot.width, 640);
            w->show();
            QCoreApplication::processEvents();
        }
        const QString path = QDir(dir).filePath(QString::fromLatin1(shot.name));
        if (!w->grab().save(path)) {
            std::fprintf(stderr, "moewb-gui: cannot write %s\n", qPrintable(path));
            return 1;
        }
        std::printf("wrote %s\n", qPrintable(path));
    }
    return 0;
}

// Writes the window, or one view alone, at exactly size into path; returns the process exit code.
int takeScreenshot(moewb::MainWindow& window, const QString& path, const QString& viewName, const QSize& size)
{
    QWidget* w = &window;
    if (!viewName.isEmpty()) {
        w = window.view(viewName);
        w->setParent(nullptr); // the view alone, as a window of its own
    }
    const QSize minimum = w->minimumSizeHint();
    if (minimum.width() > size.width() || minimum.height() > size.height()) {
        // exactly the size asked for: below the minimum the content is clipped, not the picture grown
        std::fprintf(stderr, "moewb-gui: note: %dx%d is below the %s's minimum %dx%d; parts are clipped\n",
                     size.width(), size.height(), viewName.isEmpty() ? "window" : qPrintable(viewName),
                     minimum.width(), minimum.height());
        if (w->layout())
            w->layout()->setSizeConstraint(QLayout::SetNoConstraint);
        w->setMinimumSize(0, 0);
    }
    w->resize(size);
    w->show();
    QCoreApplication::processEvents();
    if (moewb::Selection* selection = window.document()->selection(); selection->layer() >= 0) {
        // select again at the final size: the views scroll the selection into view for the size they have now
        const int layer = selection->layer(), expert = selection->expert();
        const QString linear = selection->linear();
        selection->clear();
        selection->select(layer, expert, linear);
        QCoreApplication::processEvents();
    }
    if (w->size() != size) {
        std::fprintf(stderr, "moewb-gui: %s cannot be %dx%d (it took %dx%d)\n",
                     viewName.isEmpty() ? "the window" : qPrintable(viewName), size.width(), size.height(), w->width(),
                     w->height());
        return 1;
    }
    // twice: plots lay out again for the size they got (square cells, label steps)
    QCoreApplication::processEvents();
    for (QCustomPlot* plot : w->findChildren<QCustomPlot*>())
        plot->replot();
    QCoreApplication::processEvents();
    const QImage image = w->grab().toImage();
    if (image.size() != size || !image.save(path)) {
        std::fprintf(stderr, "moewb-gui: cannot write %s\n", qPrintable(path));
        return 1;
    }
    std::printf("wrote %s (%dx%d)\n", qPrintable(path), image.width(), image.height());
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    moewb::restartWithFastBlas(argv); // returns unless OpenBLAS needs its fast kernels chosen at load
    // Screenshots render offscreen: no display needed (an explicit QT_QPA_PLATFORM still wins).
    for (int i = 1; i < argc; ++i)
        if ((std::strcmp(argv[i], "--screenshot") == 0 || std::strcmp(argv[i], "--screenshot-dir") == 0
             || std::strncmp(argv[i], "--screenshot=", 13) == 0 || std::strncmp(argv[i], "--screenshot-dir=", 17) == 0)
            && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
            qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    QCoreApplication::setOrganizationName(QStringLiteral("moewb"));
    QCoreApplication::setApplicationName(QStringLiteral("moewb-gui"));
    QCoreApplication::setApplicationVersion(QStringLiteral(MOEWB_VERSION));
    moewb::initResources();
    QApplication::setWindowIcon(moewb::appIcon(QStringLiteral("moewb")));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "The moewb workbench: routing heat map, expert correlation, domains and weight outliers of a MoE model's "
        "calibration statistics; bit allocation, quantization, export and evaluation as background jobs."));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory to open"),
                                 QStringLiteral("[MODEL_DIR]"));
    const QCommandLineOption statsOption(QStringLiteral("stats"),
                                         QStringLiteral("Stats file to open (moewb calibrate)."),
                                         QStringLiteral("FILE"));
    const QCommandLineOption selectOption(QStringLiteral("select"),
                                          QStringLiteral("Select a layer, or an expert of it, after loading."),
                                          QStringLiteral("LAYER[:EXPERT]"));
    const QCommandLineOption shotOption(QStringLiteral("screenshot-dir"),
                                        QStringLiteral("Load, write PNGs of the window and each view into DIR, quit."),
                                        QStringLiteral("DIR"));
    const QCommandLineOption oneShotOption(
        QStringLiteral("screenshot"), QStringLiteral("Load, write a PNG of the main window (or --view) to FILE, quit."),
        QStringLiteral("FILE.png"));
    const QCommandLineOption viewOption(QStringLiteral("view"),
                                        QStringLiteral("With --screenshot: one view alone, NAME one of %1.")
                                            .arg(moewb::MainWindow::viewNames().join(QStringLiteral(", "))),
                                        QStringLiteral("NAME"));
    const QCommandLineOption sizeOption(QStringLiteral("size"),
                                        QStringLiteral("With --screenshot: the picture's size (default 1400x900)."),
                                        QStringLiteral("WxH"));
    parser.addOption(oneShotOption);
    parser.addOption(viewOption);
    parser.addOption(sizeOption);
    const QCommandLineOption sessionOption(QStringLiteral("session"),
                                           QStringLiteral("Session file to open (.moewb: model, stats, plan, results)."),
                                           QStringLiteral("FILE"));
    parser.addOption(sessionOption);
    const QCommandLineOption resultsOption(QStringLiteral("results"),
                                           QStringLiteral("Import the runs of a 'moewb pipeline' results.json into the Results view."),
                                           QStringLiteral("FILE"));
    parser.addOption(resultsOption);
    const QCommandLineOption reportOption(
        QStringLiteral("quant-report"),
        QStringLiteral("Show a quantize run's per-expert calibration coverage (moewb_quant_report.json) in the coverage view."),
        QStringLiteral("FILE"));
    parser.addOption(reportOption);
    parser.addOption(statsOption);
    parser.addOption(selectOption);
    parser.addOption(shotOption);
    parser.process(app);
    if (parser.positionalArguments().size() > 1) {
        std::fprintf(stderr, "moewb-gui: at most one MODEL_DIR\n");
        return 2;
    }

    const bool oneShot = parser.isSet(oneShotOption);
    QSize shotSize = moewb::MainWindow::defaultSize();
    if (parser.isSet(sizeOption)) {
        const QRegularExpressionMatch m
            = QRegularExpression(QStringLiteral("^(\\d{2,5})x(\\d{2,5})$")).match(parser.value(sizeOption));
        if (!m.hasMatch()) {
            std::fprintf(stderr, "moewb-gui: --size %s: expected WxH, e.g. 1366x768\n", qPrintable(parser.value(sizeOption)));
            return 2;
        }
        shotSize = QSize(m.captured(1).toInt(), m.captured(2).toInt());
    }
    if (parser.isSet(viewOption) && !moewb::MainWindow::viewNames().contains(parser.value(viewOption))) {
        std::fprintf(stderr, "moewb-gui: --view %s: not a view; one of %s\n", qPrintable(parser.value(viewOption)),
                     qPrintable(moewb::MainWindow::viewNames().join(QStringLiteral(", "))));
        return 2;
    }
    if ((parser.isSet(viewOption) || parser.isSet(sizeOption)) && !oneShot) {
        std::fprintf(stderr, "moewb-gui: --view and --size go with --screenshot FILE.png\n");
        return 2;
    }

    moewb::MainWindow window;
    const bool screenshot = parser.isSet(shotOption) || oneShot;
    window.setBatchMode(screenshot);
    const QString requestedModel = parser.positionalArguments().value(0);
    bool openRequested = true;
    if (!screenshot) {
        window.restoreSettings();
        // Crash recovery: a plan autosaved by a workbench that did not close cleanly. The prompt
        // says what it is and for which model; whatever the answer, the plan is not lost silently.
        if (const auto recovery = window.startAutosave()) {
            const QString planModel = QFileInfo(QDir::cleanPath(recovery->modelDir)).fileName();
            const bool other = !requestedModel.isEmpty()
                && QFileInfo(requestedModel).canonicalFilePath() != QFileInfo(recovery->modelDir).canonicalFilePath();
            QMessageBox box(QMessageBox::Question, QCoreApplication::translate("main", "Recover plan"),
                            window.recoveryQuestion(*recovery, requestedModel));
            QPushButton* restore = box.addButton(
                other ? QCoreApplication::translate("main", "Open %1 with the plan").arg(planModel)
                      : QCoreApplication::translate("main", "Restore"),
                QMessageBox::AcceptRole);
            QPushButton* aside = box.addButton(
                other ? QCoreApplication::translate("main", "Save the plan to a file, open %1")
                            .arg(QFileInfo(QDir::cleanPath(requestedModel)).fileName())
                      : QCoreApplication::translate("main", "Save to a file"),
                QMessageBox::RejectRole);
            QPushButton* discard = box.addButton(QCoreApplication::translate("main", "Discard"), QMessageBox::DestructiveRole);
            restore->setEnabled(moewb::MainWindow::canRestore(*recovery));
            box.setDefaultButton(restore->isEnabled() ? restore : aside);
            box.setEscapeButton(aside); // closing the prompt keeps the plan
            box.exec();
            const moewb::RecoveryChoice choice = box.clickedButton() == restore ? moewb::RecoveryChoice::Restore
                : box.clickedButton() == discard                               ? moewb::RecoveryChoice::Discard
                                                                               : moewb::RecoveryChoice::SaveAside;
            const moewb::RecoveryOutcome outcome = window.resolveRecovery(*recovery, choice, requestedModel);
            openRequested = !outcome.replacesModel; // the plan's model instead of the command line's
            if (choice != moewb::RecoveryChoice::Discard && !outcome.savedPath.isEmpty())
                QMessageBox::information(nullptr, QCoreApplication::translate("main", "Plan saved"), outcome.message);
        }
    }
    // A job that loading starts by itself (the predicted cost of Fisher stats) raises the Jobs tab;
    // a picture of the window shows the default bottom tab (Outliers) instead.
    bool loadingRanJobs = false;
    const QMetaObject::Connection ranJobs = QObject::connect(window.jobRunner(), &moewb::JobRunner::started, &window,
                                                             [&loadingRanJobs] { loadingRanJobs = true; });
    if (parser.isSet(sessionOption) && !window.openSession(parser.value(sessionOption)) && screenshot)
        return 1;
    if (parser.isSet(resultsOption) && !window.importPipelineResults(parser.value(resultsOption)) && screenshot)
        return 1;
    if (parser.isSet(reportOption) && !window.openQuantReport(parser.value(reportOption)) && screenshot)
        return 1;
    if (!requestedModel.isEmpty() && openRequested)
        window.openModel(requestedModel);
    if (parser.isSet(statsOption) && openRequested)
        window.openStats(parser.value(statsOption));
    if (parser.isSet(selectOption) || screenshot) {
        if (!waitForDocument(window.document(), 120000)) {
            std::fprintf(stderr, "moewb-gui: loading did not finish in 2 minutes\n");
            return 1;
        }
        waitForDocument(window.document(), 10000); // a model opened from the stats' provenance
        if (screenshot && !window.jobRunner()->waitForIdle(600000)) { // e.g. the predicted cost of Fisher stats
            std::fprintf(stderr, "moewb-gui: the jobs started by loading did not finish in 10 minutes\n");
            return 1;
        }
        if (screenshot && loadingRanJobs && !parser.isSet(resultsOption) && !parser.isSet(reportOption))
            if (auto* outliers = window.findChild<QDockWidget*>(QStringLiteral("dock.outliers")))
                outliers->raise();
        if (parser.isSet(selectOption)) {
            const QStringList parts = parser.value(selectOption).split(QLatin1Char(':'));
            window.document()->selection()->select(parts.value(0).toInt(), parts.size() > 1 ? parts[1].toInt() : -1);
        }
    }
    QObject::disconnect(ranJobs);
    if (oneShot)
        return window.errors().isEmpty()
            ? takeScreenshot(window, parser.value(oneShotOption), parser.value(viewOption), shotSize)
            : 1;
    if (screenshot)
        return window.errors().isEmpty() ? takeScreenshots(window, parser.value(shotOption)) : 1;
    window.show();
    return app.exec();
}
