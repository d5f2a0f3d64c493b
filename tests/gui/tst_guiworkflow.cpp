// SPDX-License-Identifier: MIT
// The GUI's engine jobs on the demo model (datasets/models/moewb-mixtral-8e-v2), driven the way the
// window drives them, with the CLI (MOEWB_CLI) or the engine called directly as the reference:
//  - a calibrate job cancelled after its first progress report ends Cancelled and leaves no
//    output (and no temporary file) behind;
//  - engine errors (no config.json, a truncated safetensors) fail the job with exactly the one-line
//    message the CLI prints, shown in the panel and its log;
//  - the GUI thread keeps dispatching timer events while a real job computes;
//  - the scripted workflow open → calibrate → strategy → edit → quantize (fake) → evaluate in a
//    MainWindow produces a results row whose numbers equal the CLI's for the same steps (stats,
//    plan, byte-identical weights, perplexity) and the plan's size computed directly; selecting
//    the run loads its plan; a session saved and reopened restores model, stats, plan and results,
//    and a malformed session changes nothing.
#include "test_paths.h"
#include "jobdialogs.h"
#include "mainwindow.h"

#include "alloc/planeditmodel.h"
#include "document.h"
#include "jobs/jobrunner.h"
#include "jobs/jobspanel.h"
#include "results/resultsmodel.h"
#include "results/resultsview.h"
#include "session/session.h"
#include "plot/matrixplot.h"
#include "views/coverageview.h"

#include "moewb/alloc/allocate.h"
#include "moewb/plan/plan.h"
#include "moewb/quant/quantize.h"
#include "moewb/plan/target_groups.h"
#include "moewb/workflow/gguf_budget.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/stats/stats_h5.h"

#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QComboBox>
#include <QLabel>
#include <QStandardItemModel>
#include <QTimer>
#include <QToolButton>
#include <QUndoStack>

using namespace moewb;

namespace {

const QString kModel = moewb::test::sourceDir() + QStringLiteral("/datasets/models/moewb-mixtral-8e-v2");

QString cli()
{
    return qEnvironmentVariable("MOEWB_CLI", moewb::test::binaryDir() + QStringLiteral("/app/cli/moewb"));
}

struct CliRun {
    int exitCode = -1;
    QString out, err;
};

CliRun runCli(const QStringList& args)
{
    QProcess p;
    p.start(cli(), args);
    p.waitForFinished(300000);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

bool waitForDocument(Document* document, int timeoutMs = 60000)
{
    QElapsedTimer t;
    t.start();
    while (document->isLoading() && t.elapsed() < timeoutMs)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    QCoreApplication::processEvents();
    return !document->isLoading();
}

/// Runs a strategy job in the window to its end: "" when it finished without an error, else why not.
QString runStrategy(MainWindow& window, const gui::StrategySettings& settings)
{
    if (window.startStrategy(settings) <= 0)
        return QStringLiteral("the strategy job did not start");
    if (!window.jobRunner()->waitForIdle(60000))
        return QStringLiteral("the strategy job did not finish in 60 s");
    return window.errors().join(QLatin1Char('\n'));
}

QByteArray readAll(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

bool writeFile(const QString& path, const QByteArray& data)
{
    QFile f(path);
    return f.open(QIODevice::WriteOnly | QIODevice::Truncate) && f.write(data) == data.size();
}

} // namespace

class TestGuiWorkflow : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void cancelLeavesNoOutput();
    void engineErrorIsShown();
    void eventLoopRunsDuringJob();
    void scriptedWorkflow();
    void dialogsGiveSettings();

private:
    QTemporaryDir m_tmp;
    QString m_calib; ///< the first 40 documents of the demo calibration set
    QString m_text;  ///< held-out text for perplexity
};

void TestGuiWorkflow::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true); // QSettings and AppData of the test, not the user's
    QVERIFY(QFileInfo::exists(kModel + QStringLiteral("/config.json")));
    QVERIFY2(QFileInfo(cli()).isExecutable(), qPrintable(cli()));
    QVERIFY(m_tmp.isValid());
    const QList<QByteArray> lines = readAll(moewb::test::sourceDir() + QStringLiteral("/datasets/corpus-v2/calib.jsonl")).split('\n');
    QVERIFY(lines.size() > 40);
    m_calib = m_tmp.filePath(QStringLiteral("calib.jsonl"));
    QVERIFY(writeFile(m_calib, lines.mid(0, 40).join('\n') + '\n'));
    m_text = m_tmp.filePath(QStringLiteral("eval.txt"));
    QVERIFY(writeFile(m_text, readAll(moewb::test::sourceDir() + QStringLiteral("/datasets/corpus-v2/eval/python.txt")).left(3000)));
}

void TestGuiWorkflow::cancelLeavesNoOutput()
{
    QTemporaryDir outDir;
    const QString out = outDir.filePath(QStringLiteral("cancelled.stats.h5"));
    JobRunner runner;
    JobsPanel panel(&runner);
    gui::CalibrateSettings s;
    s.modelDir = kModel;
    s.data = {m_calib};
    s.samples = 64;
    s.seqLen = 256;
    s.outPath = out;
    // Cancel as soon as the first progress report reaches the GUI thread.
    QString firstStage;
    connect(&runner, &JobRunner::progress, &runner, [&](int id, const QString& stage) {
        if (firstStage.isEmpty()) {
            firstStage = stage;
            panel.cancelButton(id)->click();
        }
    });
    QSignalSpy cancelled(&runner, &JobRunner::cancelled);
    QSignalSpy finished(&runner, &JobRunner::finished);
    const int id = runner.submit(gui::calibrateJob(s));
    QVERIFY(runner.waitForIdle(120000));
    QVERIFY(!firstStage.isEmpty());
    QCOMPARE(cancelled.size(), 1);
    QCOMPARE(finished.size(), 0);
    QCOMPARE(runner.state(id), JobState::Cancelled);
    QCOMPARE(panel.stateText(id), QStringLiteral("cancelled"));
    QVERIFY(!QFileInfo::exists(out));
    QCOMPARE(QDir(outDir.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden), QStringList{});
}

void TestGuiWorkflow::engineErrorIsShown()
{
    JobRunner runner;
    JobsPanel panel(&runner);
    QSignalSpy failed(&runner, &JobRunner::failed);

    // 1. A directory without config.json: the message the CLI prints after "moewb: error: ".
    QTemporaryDir empty;
    const CliRun ref = runCli({QStringLiteral("calibrate"), empty.path(), QStringLiteral("--data"), m_calib,
                               QStringLiteral("--out"), empty.filePath(QStringLiteral("s.h5"))});
    QCOMPARE(ref.exitCode, 1);
    const QString prefix = QStringLiteral("moewb: error: ");
    QVERIFY2(ref.err.trimmed().startsWith(prefix), qPrintable(ref.err));
    const QString expected = ref.err.trimmed().mid(prefix.size());
    gui::CalibrateSettings s;
    s.modelDir = empty.path();
    s.data = {m_calib};
    s.outPath = empty.filePath(QStringLiteral("s.h5"));
    const int id = runner.submit(gui::calibrateJob(s));
    QVERIFY(runner.waitForIdle(60000));
    QCOMPARE(failed.size(), 1);
    QCOMPARE(failed.last().at(1).toString(), expected);
    QVERIFY(expected.contains(QStringLiteral("config.json")));
    QCOMPARE(panel.stateText(id), QStringLiteral("failed"));
    QCOMPARE(panel.stageText(id), expected);
    QVERIFY(panel.logText().contains(QStringLiteral("error: ") + expected));

    // 2. A truncated safetensors: evaluation fails with the reader's message, as in the CLI.
    QTemporaryDir broken;
    for (const char* f : {"config.json", "tokenizer.json", "generation_config.json"})
        QVERIFY(QFile::copy(kModel + QLatin1Char('/') + QLatin1String(f), broken.filePath(QLatin1String(f))));
    QVERIFY(writeFile(broken.filePath(QStringLiteral("model.safetensors")),
                      readAll(kModel + QStringLiteral("/model.safetensors")).left(100000)));
    const CliRun ref2 = runCli({QStringLiteral("eval"), broken.path(), QStringLiteral("--ppl"), m_text});
    QCOMPARE(ref2.exitCode, 1);
    const QString expected2 = ref2.err.trimmed().section(QLatin1Char('\n'), -1).mid(prefix.size());
    QVERIFY2(expected2.contains(QStringLiteral("model.safetensors")), qPrintable(ref2.err));
    gui::EvaluateSettings e;
    e.modelDir = broken.path();
    e.pplFiles = {m_text};
    const int id2 = runner.submit(gui::evaluateJob(e));
    QVERIFY(runner.waitForIdle(60000));
    QCOMPARE(failed.size(), 2);
    QCOMPARE(failed.last().at(1).toString(), expected2);
    QCOMPARE(panel.stageText(id2), expected2);
}

void TestGuiWorkflow::eventLoopRunsDuringJob()
{
    JobRunner runner;
    QTemporaryDir outDir;
    gui::CalibrateSettings s;
    s.modelDir = kModel;
    s.data = {m_calib};
    s.samples = 32;
    s.seqLen = 256;
    s.outPath = outDir.filePath(QStringLiteral("s.h5"));
    int ticksWhileRunning = 0;
    QTimer timer;
    timer.setInterval(5);
    connect(&timer, &QTimer::timeout, [&] {
        if (runner.runningJob() != 0)
            ++ticksWhileRunning;
    });
    timer.start();
    const int id = runner.submit(gui::calibrateJob(s));
    QVERIFY(runner.waitForIdle(120000));
    QCOMPARE(runner.state(id), JobState::Done);
    QVERIFY(QFileInfo::exists(s.outPath));
    // A blocked event loop would dispatch at most one (coalesced) timeout for the whole job.
    QVERIFY2(ticksWhileRunning >= 3, qPrintable(QString::number(ticksWhileRunning)));
}

void TestGuiWorkflow::scriptedWorkflow()
{
    QTemporaryDir work;
    const QString statsGui = work.filePath(QStringLiteral("gui.stats.h5"));
    const QString statsCli = work.filePath(QStringLiteral("cli.stats.h5"));
    const QString quantGui = work.filePath(QStringLiteral("q-gui"));
    const QString quantCli = work.filePath(QStringLiteral("q-cli"));
    const QString planFile = work.filePath(QStringLiteral("plan.json"));

    MainWindow window;
    window.setBatchMode(true);
    // open
    window.openModel(kModel);
    QVERIFY(waitForDocument(window.document()));
    QVERIFY(window.document()->config());
    QVERIFY(window.planModel()->modelConfig());

    // calibrate
    gui::CalibrateSettings cs;
    cs.data = {m_calib};
    cs.samples = 16;
    cs.seqLen = 128;
    cs.outPath = statsGui;
    QVERIFY(window.startCalibrate(cs) > 0);
    QVERIFY(window.jobRunner()->waitForIdle(120000));
    QVERIFY2(window.errors().isEmpty(), qPrintable(window.errors().join(QLatin1Char('\n'))));
    QCOMPARE(window.document()->statsPath(), statsGui);
    QVERIFY(window.document()->stats());
    const CliRun cal = runCli({QStringLiteral("calibrate"), kModel, QStringLiteral("--data"), m_calib,
                               QStringLiteral("--samples"), QStringLiteral("16"), QStringLiteral("--seq-len"),
                               QStringLiteral("128"), QStringLiteral("--out"), statsCli});
    QVERIFY2(cal.exitCode == 0, qPrintable(cal.err));
    const CalibStats a = readStats(statsGui.toStdString()), b = readStats(statsCli.toStdString());
    QCOMPARE(a.provenance.numTokens, b.provenance.numTokens);
    QCOMPARE(a.provenance.numTokens, int64_t(16 * 128));
    QCOMPARE(a.layers.size(), b.layers.size());
    for (size_t l = 0; l < a.layers.size(); ++l) {
        QVERIFY(a.layers[l].isMoe);
        QCOMPARE(a.layers[l].router.expertTokens, b.layers[l].router.expertTokens);
        QVERIFY(a.layers[l].router.coactivation == b.layers[l].router.coactivation);
        QVERIFY(a.layers[l].router.expertWeightMass == b.layers[l].router.expertWeightMass);
    }

    // strategy: frequency at 3 bits, compared with allocate() called directly
    gui::StrategySettings ss;
    ss.strategy = QStringLiteral("frequency");
    ss.bits = 3.0;
    QCOMPARE(runStrategy(window, ss), QString());
    const ModelConfig cfg = loadConfig(kModel.toStdString());
    AllocOptions ao;
    ao.strategy = "frequency";
    ao.targetBits = 3.0;
    const AllocResult direct = allocate(cfg, a, ao);
    PlanEditModel* plan = window.planModel();
    QCOMPARE(plan->plan().provenance.strategy, std::string("frequency"));
    QCOMPARE(plan->entries().size(), direct.entries.size());
    for (size_t i = 0; i < direct.entries.size(); ++i)
        QCOMPARE(plan->entries()[i].bits, direct.entries[i].bits);
    QCOMPARE(plan->size().modelBytes, direct.size.modelBytes);

    // the same strategy made for vLLM and for llama.cpp (#24): as `moewb plan --target vllm|gguf`
    ss.target = QStringLiteral("vllm");
    QCOMPARE(runStrategy(window, ss), QString());
    AllocOptions av = ao;
    av.target = PlanTarget::Vllm;
    const AllocResult directVllm = allocate(cfg, a, av);
    QCOMPARE(plan->plan().target, PlanTarget::Vllm);
    QVERIFY(checkTarget(plan->entries(), PlanTarget::Vllm).empty());
    for (size_t i = 0; i < directVllm.entries.size(); ++i)
        QCOMPARE(plan->entries()[i].bits, directVllm.entries[i].bits);
    ss.target = QStringLiteral("gguf");
    QCOMPARE(runStrategy(window, ss), QString());
    AllocOptions ag = ao;
    ag.target = PlanTarget::Gguf;
    const Plan ggufPlan = ggufPlanFromAllocation(kModel.toStdString(), allocate(cfg, a, ag), ag).plan;
    QCOMPARE(plan->plan().target, PlanTarget::Gguf);
    QCOMPARE(plan->plan().ggufTokenEmbd, ggufPlan.ggufTokenEmbd);
    QCOMPARE(plan->plan().ggufOutput, ggufPlan.ggufOutput);
    const std::vector<PlanEntry> ggufEntries = expandPlan(ggufPlan, cfg);
    QCOMPARE(plan->entries().size(), ggufEntries.size());
    for (size_t i = 0; i < ggufEntries.size(); ++i)
        QCOMPARE(plan->entries()[i].ggmlType, ggufEntries[i].ggmlType);
    ss.target = QStringLiteral("gptq"); // back to per-linear widths: the first plan again
    QCOMPARE(runStrategy(window, ss), QString());
    QCOMPARE(plan->plan().target, PlanTarget::Gptq);
    for (size_t i = 0; i < direct.entries.size(); ++i)
        QCOMPARE(plan->entries()[i].bits, direct.entries[i].bits);

    // edit: one bulk change (every attention linear of layer 0 to 8 bits), one undo step
    std::vector<int> attention0;
    for (int i = 0; i < int(plan->entries().size()); ++i)
        if (plan->entries()[size_t(i)].layer == 0 && plan->entries()[size_t(i)].expert < 0)
            attention0.push_back(i);
    QCOMPARE(attention0.size(), size_t(4)); // q, k, v, o
    const int undoBefore = plan->undoStack()->count();
    plan->setBits(attention0, 8);
    QCOMPARE(plan->undoStack()->count(), undoBefore + 1);
    for (int i : attention0)
        QCOMPARE(plan->entries()[size_t(i)].bits, int64_t(8));
    const Plan edited = plan->plan();
    const PlanSize editedSize = planSize(expandPlan(edited, cfg), cfg);
    QVERIFY(editedSize.modelBytes > direct.size.modelBytes);

    // quantize (fake, GPTQ) in the GUI and with the CLI: byte-identical weights
    gui::QuantizeSettings qs;
    qs.format = QStringLiteral("fake");
    qs.outPath = quantGui;
    qs.calib = {m_calib};
    qs.samples = 8;
    qs.seqLen = 128;
    QVERIFY(window.startQuantize(qs) > 0);
    QVERIFY(window.jobRunner()->waitForIdle(180000));
    QVERIFY2(window.errors().isEmpty(), qPrintable(window.errors().join(QLatin1Char('\n'))));
    QVERIFY(window.lastQuantized().has_value());
    QCOMPARE(window.lastQuantized()->outPath, quantGui);
    savePlan(edited, planFile.toStdString());
    const CliRun q = runCli({QStringLiteral("quantize"), kModel, QStringLiteral("--plan"), planFile, QStringLiteral("--out"),
                             quantCli, QStringLiteral("--calib"), m_calib, QStringLiteral("--samples"), QStringLiteral("8"),
                             QStringLiteral("--seq-len"), QStringLiteral("128")});
    QVERIFY2(q.exitCode == 0, qPrintable(q.err));
    const QByteArray weightsGui = readAll(quantGui + QStringLiteral("/model.safetensors"));
    QVERIFY(!weightsGui.isEmpty());
    QVERIFY2(weightsGui == readAll(quantCli + QStringLiteral("/model.safetensors")), "GUI and CLI weights differ");

    // the run's report shows in the coverage view (default balancing all-tokens: every expert's
    // Hessian takes every calibration token)
    const QuantCoverage* coverage = window.coverageView()->quantCoverage();
    QVERIFY(coverage);
    QCOMPARE(coverage->path, quantGui + QStringLiteral("/moewb_quant_report.json"));
    QCOMPARE(coverage->balance, QStringLiteral("all-tokens"));
    QCOMPARE(coverage->calibTokens, int64_t(8 * 128));
    const QJsonObject report = QJsonDocument::fromJson(readAll(coverage->path)).object();
    const QJsonArray reportExperts = report.value(QStringLiteral("experts")).toArray();
    QVERIFY(!reportExperts.isEmpty());
    QCOMPARE(int(coverage->experts.size()), int(reportExperts.size()));
    for (int i = 0; i < reportExperts.size(); ++i) {
        const QJsonObject e = reportExperts[i].toObject();
        const QuantCoverageExpert& c = coverage->experts[size_t(i)];
        QCOMPARE(c.layer, e.value(QStringLiteral("layer")).toInt());
        QCOMPARE(c.expert, e.value(QStringLiteral("expert")).toInt());
        QCOMPARE(c.routedTokens, e.value(QStringLiteral("routed_tokens")).toInteger());
        QCOMPARE(c.hessianTokens, coverage->calibTokens);
    }
    const CoverageMatrix& shown = window.coverageView()->matrix();
    const QuantCoverageExpert& first = coverage->experts.front();
    QCOMPARE(window.coverageView()->matrixPlot()->value(shown.rowOfLayer(first.layer), first.expert),
             double(first.hessianTokens));
    const size_t expertsCovered = coverage->experts.size();

    // expert balancing goes to the engine: off gives each expert only its routed tokens
    qs.outPath = quantGui + QStringLiteral("-off");
    qs.balanceExperts = QStringLiteral("off");
    QVERIFY(window.startQuantize(qs) > 0);
    QVERIFY(window.jobRunner()->waitForIdle(180000));
    QVERIFY2(window.errors().isEmpty(), qPrintable(window.errors().join(QLatin1Char('\n'))));
    const QuantCoverage* balanced = window.coverageView()->quantCoverage();
    QVERIFY(balanced);
    QCOMPARE(balanced->balance, QStringLiteral("off"));
    QCOMPARE(balanced->calibTokens, int64_t(8 * 128));
    QCOMPARE(balanced->experts.size(), expertsCovered);
    for (const QuantCoverageExpert& c : balanced->experts)
        QCOMPARE(c.hessianTokens, c.routedTokens);

    // evaluate the quantized model and the original: two results rows
    gui::EvaluateSettings es;
    es.modelDir = quantGui;
    es.pplFiles = {m_text};
    es.ctx = 128;
    QVERIFY(window.startEvaluate(es) > 0);
    es.modelDir = kModel;
    QVERIFY(window.startEvaluate(es) > 0); // queued behind the first
    QVERIFY(window.jobRunner()->waitForIdle(180000));
    QVERIFY2(window.errors().isEmpty(), qPrintable(window.errors().join(QLatin1Char('\n'))));
    ResultsModel* results = window.resultsModel();
    QCOMPARE(results->rowCount(), 2);
    const RunResult& row = results->run(0);
    QCOMPARE(row.label, QStringLiteral("frequency@3"));
    QCOMPARE(row.averageBits, editedSize.averageBits);
    QCOMPARE(row.modelBytes, editedSize.modelBytes);
    QVERIFY(parsePlanJson(row.planJson.toStdString(), "row") == edited);
    auto cliPpl = [&](const QString& model) {
        const CliRun e = runCli({QStringLiteral("eval"), model, QStringLiteral("--ppl"), m_text, QStringLiteral("--ctx"),
                                 QStringLiteral("128"), QStringLiteral("--json")});
        return QJsonDocument::fromJson(e.out.toUtf8()).object().value(QStringLiteral("perplexity")).toDouble(-1);
    };
    QCOMPARE(row.perplexity, cliPpl(quantGui));
    const RunResult& base = results->run(1);
    QCOMPARE(base.label, QStringLiteral("baseline"));
    QCOMPARE(base.averageBits, 16.0);
    QCOMPARE(base.perplexity, cliPpl(kModel));
    QVERIFY(base.perplexity < row.perplexity); // 3 bits cost something
    QVERIFY(base.modelBytes > row.modelBytes);
    QCOMPARE(results->paretoRows(), (std::vector<int>{0, 1})); // smaller-but-worse and bigger-but-better
    QCOMPARE(results->data(results->index(0, ResultsModel::PerplexityColumn)).toString(),
             QString::number(row.perplexity, 'f', 4));

    // MOEWB_SCREENSHOT_DIR=DIR: the Jobs panel after these real jobs, for docs/screenshots/jobs.png
    if (const QString shots = qEnvironmentVariable("MOEWB_SCREENSHOT_DIR"); !shots.isEmpty()) {
        QWidget* panel = window.jobsPanel();
        panel->setParent(nullptr);
        panel->resize(1000, 560);
        panel->show();
        QCoreApplication::processEvents();
        QVERIFY(panel->grab().save(QDir(shots).filePath(QStringLiteral("jobs.png"))));
        window.findChild<QDockWidget*>(QStringLiteral("dock.jobs"))->setWidget(panel); // back home
    }

    // selecting a run loads its plan (after another edit, it comes back)
    plan->setBits(attention0, 2);
    QVERIFY(!(plan->plan() == edited));
    window.resultsView()->selectRun(0);
    QVERIFY(plan->plan() == edited);
    plan->undoStack()->undo(); // loading the run's plan is one undoable step
    QCOMPARE(plan->entries()[size_t(attention0[0])].bits, int64_t(2));
    window.resultsView()->selectRun(0);

    // session: save, reopen in a fresh window, everything back
    const QString sessionFile = work.filePath(QStringLiteral("workflow.moewb"));
    QVERIFY(window.saveSession(sessionFile));
    if (const QString keep = qEnvironmentVariable("MOEWB_WORKFLOW_SESSION"); !keep.isEmpty())
        QFile::copy(sessionFile, keep); // docs/screenshots/results.png is made from it
    MainWindow reopened;
    reopened.setBatchMode(true);
    // Another follower of the document that resets the plan model for a new model, connected after
    // the window's own (as the allocation editor is): the session's plan must still win.
    connect(reopened.document(), &Document::modelChanged, &reopened, [&reopened] {
        if (const ModelConfig* c = reopened.document()->config())
            reopened.planModel()->setModelConfig(std::make_shared<const ModelConfig>(*c));
    });
    QVERIFY(reopened.openSession(sessionFile));
    QVERIFY(waitForDocument(reopened.document()));
    QCOMPARE(reopened.document()->modelDir(), kModel);
    QCOMPARE(reopened.document()->statsPath(), statsGui);
    // The session's plan is applied by a queued call after every modelChanged follower: wait for it.
    QTRY_VERIFY(reopened.planModel()->plan() == edited);
    QCOMPARE(reopened.resultsModel()->rowCount(), 2);
    QVERIFY(reopened.resultsModel()->runs() == results->runs());
    QVERIFY(reopened.currentSession().planJson == window.currentSession().planJson);

    // a malformed session: one line, nothing changed
    const QString bad = work.filePath(QStringLiteral("bad.moewb"));
    QVERIFY(writeFile(bad, "{\"format\": \"moewb-session\", \"version\": 1, \"results\": 5}"));
    QVERIFY(!reopened.openSession(bad));
    QCOMPARE(reopened.errors().size(), 1);
    QCOMPARE(reopened.errors().first(), bad + QStringLiteral(": $.results must be an array"));
    QCOMPARE(reopened.resultsModel()->rowCount(), 2);
    QVERIFY(reopened.planModel()->plan() == edited);
    QCOMPARE(reopened.document()->modelDir(), kModel);
}

void TestGuiWorkflow::dialogsGiveSettings()
{
    // What the Jobs menu's dialogs hand to the jobs (defaults and pass-through of the window's values).
    gui::CalibrateDialog calibrate(kModel, QStringLiteral("/out/m.stats.h5"));
    QCOMPARE(calibrate.settings().modelDir, kModel);
    QCOMPARE(calibrate.settings().outPath, QStringLiteral("/out/m.stats.h5"));
    QVERIFY(calibrate.settings().samples >= 1);

    gui::QuantizeDialog quantize(kModel, QStringLiteral("/out/q"), false);
    QCOMPARE(quantize.settings().format, QStringLiteral("fake"));
    QCOMPARE(quantize.settings().outPath, QStringLiteral("/out/q"));
    QCOMPARE(quantize.settings().balanceExperts, QStringLiteral("all-tokens")); // the default (kDefaultExpertBalance)
    QComboBox* balance = nullptr;
    for (QComboBox* box : quantize.findChildren<QComboBox*>())
        if (box->findData(QStringLiteral("all-tokens")) >= 0)
            balance = box;
    QVERIFY(balance);
    QCOMPARE(balance->count(), 4);
    balance->setCurrentIndex(balance->findData(QStringLiteral("sampled")));
    QCOMPARE(quantize.settings().balanceExperts, QStringLiteral("sampled"));
    QCOMPARE(parseExpertBalance(quantize.settings().balanceExperts.toStdString(), "test"), ExpertBalance::Sampled);
    balance->setCurrentIndex(balance->findData(QStringLiteral("all-tokens")));
    QCOMPARE(quantize.settings().balanceExperts, QStringLiteral("all-tokens"));
    // the explanation follows the choice, in words rather than flag names
    bool explained = false;
    for (QLabel* label : quantize.findChildren<QLabel*>())
        explained = explained || label->text() == balance->currentData(Qt::ToolTipRole).toString();
    QVERIFY(explained);
    QVERIFY(!balance->currentData(Qt::ToolTipRole).toString().contains(QLatin1String("--")));
    gui::QuantizeDialog exporter(kModel, QStringLiteral("/out/q"), true);
    QCOMPARE(exporter.settings().format, QStringLiteral("gptq"));
    auto* format = exporter.findChild<QComboBox*>();
    QVERIFY(format);
    format->setCurrentIndex(1); // GGUF: the output becomes a .gguf file
    QCOMPARE(exporter.settings().format, QStringLiteral("gguf"));
    QCOMPARE(exporter.settings().outPath, QStringLiteral("/out/q.gguf"));

    // Without stats the strategies that need them cannot be chosen.
    gui::StrategyDialog strategy(false);
    auto* box = strategy.findChild<QComboBox*>();
    auto* items = qobject_cast<QStandardItemModel*>(box->model());
    QVERIFY(items);
    int disabled = 0;
    for (int i = 0; i < box->count(); ++i) {
        const QString name = box->itemData(i).toString();
        const bool needsStats = name == QLatin1String("frequency") || name == QLatin1String("outlier")
            || name == QLatin1String("block") || name == QLatin1String("moqa") || name == QLatin1String("budget");
        QCOMPARE(items->item(i)->isEnabled(), !needsStats);
        disabled += needsStats;
    }
    QCOMPARE(disabled, 5);

    gui::EvaluateDialog evaluate(QStringLiteral("/out/q"));
    QCOMPARE(evaluate.settings().modelDir, QStringLiteral("/out/q"));
}

QTEST_MAIN(TestGuiWorkflow)
#include "tst_guiworkflow.moc"
