// SPDX-License-Identifier: MIT
// moewb-alloc-editor MODEL_DIR --stats FILE [--strategy NAME] [--bits B] [--heatmap-cost BITS] [--screenshot PNG]
//
// The allocation editor (#12) on its own, next to the routing heat map it takes expert selections
// from, with the engine's strategies as its AllocBackend (the wiring the main window uses too:
// gui::engineAllocBackend). Stats with a Fisher diagonal get their predicted-cost table (#27,
// gui::costTableJob, measured before the window opens): the gauge shows the predicted KLD, "budget"
// is enabled, and --heatmap-cost BITS colours the heat map by the experts' predicted cost. With
// --screenshot it solves the strategy, gives two heat-map-selected experts 8 bits, drops one,
// writes the window as PNG and quits (docs/screenshots/allocation-editor.png).
#include "engineallocbackend.h"
#include "enginejobs.h"

#include "alloc/allocationeditor.h"
#include "alloc/allocationitemmodel.h"
#include "alloc/planeditmodel.h"
#include "alloc/strategypanel.h"
#include "document.h"
#include "selection.h"
#include "views/routingheatmapview.h"

#include "moewb/alloc/allocate.h"

#include <QAction>
#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QSplitter>
#include <QTreeView>

#include <cstdio>
#include <memory>

namespace {

bool waitForDocument(moewb::Document* document, int timeoutMs)
{
    QElapsedTimer timer;
    timer.start();
    while (document->isLoading() && timer.elapsed() < timeoutMs)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    QCoreApplication::processEvents();
    return !document->isLoading();
}

/// The engine's allocator bound to the document's model, stats and cost table (copies: the backend
/// runs on a worker thread while the document may load something else).
moewb::AllocBackend fillBackend(const moewb::Document& doc)
{
    using namespace moewb;
    if (!doc.config() || !doc.stats())
        return {};
    return gui::engineAllocBackend(std::make_shared<const ModelConfig>(*doc.config()),
                                   std::make_shared<const CalibStats>(*doc.stats()), doc.costTable(),
                                   doc.modelDir().toStdString());
}

/// Stats with a Fisher diagonal: the predicted-cost table, measured here and now (the GUI's job,
/// run in place; the demo models take seconds). False with the message on stderr when it fails.
bool measureCostTable(moewb::Document& doc)
{
    using namespace moewb;
    if (!doc.config() || !doc.stats() || !doc.stats()->hasFisher())
        return true;
    try {
        const JobResult r = gui::costTableJob(std::make_shared<const ModelConfig>(*doc.config()), doc.modelDir(),
                                              std::make_shared<const CalibStats>(*doc.stats()))
                                .work({});
        doc.setCostTable(std::any_cast<std::shared_ptr<const ErrorTable>>(r.value));
        return true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moewb-alloc-editor: %s\n", e.what());
        return false;
    }
}

} // namespace

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("moewb-alloc-editor"));
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("The moewb allocation editor next to the routing heat map."));
    parser.addHelpOption();
    parser.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    const QCommandLineOption statsOpt(QStringLiteral("stats"), QStringLiteral("Stats file (moewb calibrate)."),
                                      QStringLiteral("FILE"));
    const QCommandLineOption strategyOpt(QStringLiteral("strategy"), QStringLiteral("Strategy to start with."),
                                         QStringLiteral("NAME"), QStringLiteral("frequency"));
    const QCommandLineOption bitsOpt(QStringLiteral("bits"), QStringLiteral("Target average bits."),
                                     QStringLiteral("B"), QStringLiteral("3.0"));
    const QCommandLineOption shotOpt(QStringLiteral("screenshot"), QStringLiteral("Write the window as PNG, quit."),
                                     QStringLiteral("PNG"));
    const QCommandLineOption costOpt(QStringLiteral("heatmap-cost"),
                                     QStringLiteral("Colour the heat map by the experts' predicted cost at BITS "
                                                    "(stats from calibrate --fisher)."),
                                     QStringLiteral("BITS"));
    parser.addOptions({statsOpt, strategyOpt, bitsOpt, shotOpt, costOpt});
    parser.process(app);
    if (parser.positionalArguments().size() != 1) {
        std::fprintf(stderr, "moewb-alloc-editor: give one MODEL_DIR\n");
        return 2;
    }

    moewb::Document doc;
    moewb::PlanEditModel plan;
    QSplitter window;
    auto* heat = new moewb::RoutingHeatmapView(&doc, &window);
    auto* editor = new moewb::AllocationEditor(&doc, &plan, &window);
    editor->undoAction()->setShortcut(QKeySequence::Undo); // standalone: the editor's actions own them
    editor->redoAction()->setShortcut(QKeySequence::Redo);
    editor->savePlanAction()->setShortcut(QKeySequence::Save);
    editor->openPlanAction()->setShortcut(QKeySequence::Open);
    window.addActions({editor->undoAction(), editor->redoAction(), editor->savePlanAction(), editor->openPlanAction()});
    window.addWidget(heat);
    window.addWidget(editor);
    window.setStretchFactor(0, 2);
    window.setStretchFactor(1, 3);
    window.resize(1500, 900);
    QObject::connect(&doc, &moewb::Document::loadFailed, [](const QString&, const QString&, const QString& msg) {
        std::fprintf(stderr, "moewb-alloc-editor: %s\n", qPrintable(msg));
    });
    doc.openModel(parser.positionalArguments().first());
    if (parser.isSet(statsOpt))
        doc.openStats(parser.value(statsOpt));
    if (!waitForDocument(&doc, 120000) || !doc.config()) {
        std::fprintf(stderr, "moewb-alloc-editor: the model did not load\n");
        return 1;
    }
    if (!measureCostTable(doc))
        return 1;
    if (parser.isSet(costOpt)) {
        heat->setCostBits(parser.value(costOpt).toLongLong());
        if (heat->costBits() == 0) {
            std::fprintf(stderr, "moewb-alloc-editor: --heatmap-cost needs stats from calibrate --fisher and "
                                 "a width of 2, 3, 4 or 8\n");
            return 2;
        }
    }
    editor->setBackend(fillBackend(doc));
    QObject::connect(&doc, &moewb::Document::statsChanged, editor, [&] { editor->setBackend(fillBackend(doc)); });
    QObject::connect(&doc, &moewb::Document::costTableChanged, editor, [&] { editor->setBackend(fillBackend(doc)); });
    moewb::StrategyPanel* panel = editor->strategyPanel();
    panel->setLive(false);
    panel->setStrategy(parser.value(strategyOpt));
    panel->setTargetBits(parser.value(bitsOpt).toDouble());
    if (doc.stats()) {
        QSignalSpy done(panel, &moewb::StrategyPanel::solved);
        QSignalSpy failed(panel, &moewb::StrategyPanel::failed);
        panel->solve();
        QElapsedTimer t;
        t.start();
        while (done.isEmpty() && failed.isEmpty() && t.elapsed() < 60000)
            QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
        if (!failed.isEmpty())
            std::fprintf(stderr, "moewb-alloc-editor: %s\n", qPrintable(panel->message()));
    }
    panel->setLive(true);

    if (!parser.isSet(shotOpt)) {
        window.show();
        return app.exec();
    }
    // A state worth a picture: two experts picked in the heat map get 8 bits, one is dropped, and
    // layer 1's MoE block is open in the tree.
    moewb::Selection* sel = doc.selection();
    const int layer = plan.modelConfig()->isMoeLayer(1) ? 1 : 0;
    sel->setExperts({{layer, 2}, {layer, 5}});
    editor->setBitsOnHeatmapSelection(8);
    sel->setExperts({{layer, 6}});
    editor->setDroppedOnHeatmapSelection(true);
    sel->setExperts({{layer, 2}, {layer, 5}});
    sel->select(layer, 2);
    moewb::AllocationItemModel* items = editor->itemModel();
    QTreeView* tree = editor->tree();
    const QModelIndex l = items->indexForLayer(layer);
    tree->expand(l);
    tree->expand(items->index(1, 0, l));
    tree->expand(items->indexForExpert(layer, 2));
    tree->scrollTo(l, QAbstractItemView::PositionAtTop);
    window.show();
    QCoreApplication::processEvents();
    heat->matrixPlot();
    QCoreApplication::processEvents();
    if (!window.grab().save(parser.value(shotOpt))) {
        std::fprintf(stderr, "moewb-alloc-editor: cannot write %s\n", qPrintable(parser.value(shotOpt)));
        return 1;
    }
    std::printf("wrote %s\n", qPrintable(parser.value(shotOpt)));
    return 0;
}
