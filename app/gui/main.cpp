// SPDX-License-Identifier: MIT
// moewb-gui [MODEL_DIR] [--stats FILE] [--session FILE.moewb] [--results results.json] [--select LAYER[:EXPERT]] [--screenshot-dir DIR]
#include "mainwindow.h"

#include "appresources.h"
#include "document.h"
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
#include <QElapsedTimer>
#include <QMessageBox>
#include <QTimer>

#include <cstdio>

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

} // namespace

int main(int argc, char** argv)
{
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
    const QCommandLineOption sessionOption(QStringLiteral("session"),
                                           QStringLiteral("Session file to open (.moewb: model, stats, plan, results)."),
                                           QStringLiteral("FILE"));
    parser.addOption(sessionOption);
    const QCommandLineOption resultsOption(QStringLiteral("results"),
                                           QStringLiteral("Import the runs of a 'moewb pipeline' results.json into the Results view."),
                                           QStringLiteral("FILE"));
    parser.addOption(resultsOption);
    parser.addOption(statsOption);
    parser.addOption(selectOption);
    parser.addOption(shotOption);
    parser.process(app);
    if (parser.positionalArguments().size() > 1) {
        std::fprintf(stderr, "moewb-gui: at most one MODEL_DIR\n");
        return 2;
    }

    moewb::MainWindow window;
    const bool screenshot = parser.isSet(shotOption);
    window.setBatchMode(screenshot);
    if (!screenshot) {
        window.restoreSettings();
        // Crash recovery: a plan autosaved by a workbench that did not close cleanly.
        if (const auto recovery = window.startAutosave()) {
            const QString text = QCoreApplication::translate("main", "moewb-gui did not close cleanly. Restore the plan it "
                                                                     "autosaved at %1 (model %2)?")
                                     .arg(recovery->saved.toLocalTime().toString(Qt::TextDate), recovery->modelDir);
            if (QMessageBox::question(nullptr, QCoreApplication::translate("main", "Recover plan"), text) == QMessageBox::Yes)
                window.recover(*recovery);
            else
                window.declineRecovery();
        }
    }
    if (parser.isSet(sessionOption) && !window.openSession(parser.value(sessionOption)) && screenshot)
        return 1;
    if (parser.isSet(resultsOption) && !window.importPipelineResults(parser.value(resultsOption)) && screenshot)
        return 1;
    if (!parser.positionalArguments().isEmpty())
        window.openModel(parser.positionalArguments().first());
    if (parser.isSet(statsOption))
        window.openStats(parser.value(statsOption));
    if (parser.isSet(selectOption) || screenshot) {
        if (!waitForDocument(window.document(), 120000)) {
            std::fprintf(stderr, "moewb-gui: loading did not finish in 2 minutes\n");
            return 1;
        }
        waitForDocument(window.document(), 10000); // a model opened from the stats' provenance
        if (parser.isSet(selectOption)) {
            const QStringList parts = parser.value(selectOption).split(QLatin1Char(':'));
            window.document()->selection()->select(parts.value(0).toInt(), parts.size() > 1 ? parts[1].toInt() : -1);
        }
    }
    if (screenshot)
        return window.errors().isEmpty() ? takeScreenshots(window, parser.value(shotOption)) : 1;
    window.show();
    return app.exec();
}
