// SPDX-License-Identifier: MIT
// Predicted quality while editing (#27), with real numbers on the small demo model
// (datasets/models/moewb-mixtral-8e-v2) calibrated here by the GUI's calibrate job with the Fisher:
//  - the GUI's cost-table job gives the same per-linear costs as `moewb plan --strategy budget
//    --errors FILE` (the CLI's measurement, another process), reports per linear and cancels;
//  - the budget gauge's predicted KLD for the CLI's budget plan equals the "predicted KL divergence"
//    that `moewb plan` prints for it;
//  - an edit of one linear's bits changes the predicted KLD by exactly that linear's cost
//    difference; dropping an expert takes its linears out of the sum; after a run of edits the
//    gauge's running sum equals a fresh sum over the plan;
//  - the heat map's cost mode shows, per expert, the sum of its linears' costs in the table
//    (found by name here, not by the view's listLinears order), and the tooltip carries the value;
//  - in the main window, opening the model and the Fisher stats measures the table by itself,
//    enables "budget" in the editor's strategy panel, and a live budget solve there lands on the
//    CLI's prediction; stats without a Fisher diagonal say what is missing;
//  - the calibrate dialog's "Measure loss sensitivity (Fisher)" reaches the job's settings.
// No test depends on wall-clock time (the gauge's speed is measured by bench/bench_plan_editor).
#include "test_paths.h"
#include "costtablekeeper.h"
#include "enginejobs.h"
#include "jobdialogs.h"
#include "mainwindow.h"

#include "alloc/allocationeditor.h"
#include "alloc/budgetgauge.h"
#include "alloc/planeditmodel.h"
#include "alloc/predictedcost.h"
#include "alloc/strategypanel.h"
#include "document.h"
#include "jobs/jobrunner.h"
#include "plot/matrixplot.h"
#include "views/routingheatmapview.h"

#include "moewb/alloc/allocate.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/stats/stats_h5.h"

#include <QCheckBox>
#include <QComboBox>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QUndoStack>

#include <cmath>
#include <memory>

using namespace moewb;

namespace {

const QString kModel = moewb::test::sourceDir() + QStringLiteral("/datasets/models/moewb-mixtral-8e-v2");

QString cli()
{
    return qEnvironmentVariable("MOEWB_CLI", moewb::test::binaryDir() + QStringLiteral("/app/cli/moewb"));
}

bool nearlyEqual(double a, double b, double rel)
{
    return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b));
}

/// Processes events until `done` or about a minute of polls; never a timing assertion.
template <typename F>
bool waitUntil(F done)
{
    for (int i = 0; i < 1200 && !done(); ++i)
        QTest::qWait(50);
    return done();
}

} // namespace

class TestPredictedCost : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void costTableEqualsCli();
    void costJobReportsAndCancels();
    void gaugeEqualsPlanPrediction();
    void editChangesByLinearCost();
    void heatmapCostMode();
    void mainWindowMeasuresAndSolvesBudget();
    void withoutFisherSaysWhatIsMissing();
    void calibrateDialogOffersFisher();

private:
    QTemporaryDir m_tmp;
    QString m_statsPath;
    std::shared_ptr<const ModelConfig> m_cfg;
    std::shared_ptr<const CalibStats> m_stats;
    std::shared_ptr<const ErrorTable> m_table;
    QString m_planPath;  ///< the CLI's budget plan at 3 bits
    double m_cliKld = 0; ///< the predicted KL divergence `moewb plan` printed for it
    QString m_cliErrors; ///< the CLI's error table (--errors)
};

void TestPredictedCost::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(m_tmp.isValid());
    QVERIFY2(QFileInfo(cli()).isExecutable(), qPrintable(cli()));
    m_cfg = std::make_shared<const ModelConfig>(loadConfig(kModel.toStdString()));

    // The GUI's calibrate job with "Measure loss sensitivity (Fisher)" checked.
    gui::CalibrateSettings cs;
    cs.modelDir = kModel;
    cs.data = {moewb::test::sourceDir() + QStringLiteral("/datasets/corpus-v2/calib.jsonl")};
    cs.samples = 4;
    cs.seqLen = 64;
    cs.fisher = true;
    cs.outPath = m_tmp.filePath(QStringLiteral("fisher.stats.h5"));
    const JobResult calibrated = gui::calibrateJob(cs).work({});
    m_stats = std::any_cast<std::shared_ptr<const CalibStats>>(calibrated.value);
    QVERIFY(m_stats->hasFisher());
    QCOMPARE(m_stats->fisher.tokens, int64_t(4 * 64));
    m_statsPath = cs.outPath;
    QVERIFY(readStats(m_statsPath.toStdString()).hasFisher());

    // The GUI's cost-table job.
    const JobResult measured = gui::costTableJob(m_cfg, kModel, m_stats).work({});
    m_table = std::any_cast<std::shared_ptr<const ErrorTable>>(measured.value);
    QVERIFY(m_table->costModel == CostModel::Fisher);
    QCOMPARE(m_table->candidates, (std::vector<int64_t>{2, 3, 4, 8}));
    QCOMPARE(m_table->groupSize, int64_t(128));

    // The CLI's budget plan at 3 bits on the same stats, with its own measurement of the errors.
    m_planPath = m_tmp.filePath(QStringLiteral("budget.plan.json"));
    m_cliErrors = m_tmp.filePath(QStringLiteral("errors.json"));
    QProcess p;
    p.start(cli(), {QStringLiteral("plan"), kModel, QStringLiteral("--stats"), m_statsPath, QStringLiteral("--strategy"),
                    QStringLiteral("budget"), QStringLiteral("--bits"), QStringLiteral("3"), QStringLiteral("--errors"),
                    m_cliErrors, QStringLiteral("--out"), m_planPath});
    QVERIFY(p.waitForFinished(300000));
    const QString out = QString::fromUtf8(p.readAllStandardOutput());
    QVERIFY2(p.exitCode() == 0, qPrintable(out + QString::fromUtf8(p.readAllStandardError())));
    const QRegularExpressionMatch m =
        QRegularExpression(QStringLiteral("predicted KL divergence ([0-9.eE+-]+) nats/token")).match(out);
    QVERIFY2(m.hasMatch(), qPrintable(out));
    m_cliKld = m.captured(1).toDouble();
    QVERIFY(m_cliKld > 0);
    qInfo("moewb plan --strategy budget --bits 3: predicted KL divergence %s nats/token", qPrintable(m.captured(1)));
}

void TestPredictedCost::costTableEqualsCli()
{
    const ErrorTable cliTable = loadErrorTable(m_cliErrors.toStdString());
    QVERIFY(cliTable.costModel == CostModel::Fisher);
    QCOMPARE(cliTable.candidates, m_table->candidates);
    QCOMPARE(cliTable.linears.size(), m_table->linears.size());
    for (size_t i = 0; i < cliTable.linears.size(); ++i) {
        QCOMPARE(cliTable.linears[i].name, m_table->linears[i].name);
        QCOMPARE(cliTable.linears[i].bytes, m_table->linears[i].bytes);
        for (size_t c = 0; c < cliTable.candidates.size(); ++c)
            QVERIFY2(nearlyEqual(cliTable.linears[i].error[c], m_table->linears[i].error[c], 1e-9),
                     qPrintable(QString::fromStdString(cliTable.linears[i].name)));
    }
}

void TestPredictedCost::costJobReportsAndCancels()
{
    int reports = 0;
    bool cancelled = false;
    try {
        gui::costTableJob(m_cfg, kModel, m_stats).work([&](const Progress& p) {
            reports += p.total == int64_t(m_table->linears.size()) ? 1 : 0;
            return reports < 3; // cancel at the third linear
        });
    } catch (const Cancelled&) {
        cancelled = true;
    }
    QVERIFY(cancelled);
    QCOMPARE(reports, 3);
    // statistics without the Fisher: a one-line reason, nothing measured
    auto plain = std::make_shared<CalibStats>(*m_stats);
    plain->fisher = FisherParams{};
    try {
        gui::costTableJob(m_cfg, kModel, plain).work({});
        QFAIL("measured without a Fisher diagonal");
    } catch (const InputError& e) {
        QVERIFY2(QString::fromUtf8(e.what()).contains(QStringLiteral("calibrate --fisher")), e.what());
    }
}

void TestPredictedCost::gaugeEqualsPlanPrediction()
{
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    plan.loadPlanFile(m_planPath);
    BudgetGauge gauge(&plan);
    QVERIFY(!gauge.hasPredictedCost());
    gauge.setCostTable(m_table);
    QVERIFY(gauge.hasPredictedCost());
    const PlanCost c = gauge.shownCost();
    QCOMPARE(c.linears, int64_t(m_table->linears.size()));
    QCOMPARE(c.droppedLinears, int64_t(0));
    // `moewb plan` prints six significant digits
    QVERIFY2(nearlyEqual(c.kld, m_cliKld, 5e-6), qPrintable(QStringLiteral("gauge %1, moewb plan %2")
                                                                  .arg(c.kld, 0, 'g', 12)
                                                                  .arg(m_cliKld, 0, 'g', 12)));
    // and exactly what the engine's solver sums for the same allocation
    AllocOptions opt;
    opt.strategy = "budget";
    opt.targetBits = 3.0;
    const AllocResult r = allocateBudget(*m_cfg, *m_table, opt);
    double solverSum = 0;
    for (size_t i = 0; i < r.entries.size(); ++i) {
        QCOMPARE(r.entries[i].bits, plan.entries()[i].bits);
        solverSum += linearCostAt(*m_table, i, r.entries[i].bits);
    }
    QCOMPARE(c.kld, solverSum);
    QVERIFY(gauge.predictedText().startsWith(QStringLiteral("predicted KLD ")));
    qInfo("gauge: %s", qPrintable(gauge.predictedText()));
}

void TestPredictedCost::editChangesByLinearCost()
{
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    plan.loadPlanFile(m_planPath);
    BudgetGauge gauge(&plan);
    gauge.setCostTable(m_table);
    const std::string name = m_cfg->expertLinear(1, 5, "down");
    const int i = plan.entryIndex(name);
    QVERIFY(i >= 0);
    const int64_t before = plan.entries()[size_t(i)].bits;
    const int64_t after = before == 4 ? 2 : 4;
    const double k0 = gauge.shownCost().kld;
    plan.setBits({i}, after);
    const double k1 = gauge.shownCost().kld;
    const double want = linearCostAt(*m_table, size_t(i), after) - linearCostAt(*m_table, size_t(i), before);
    QVERIFY(want != 0);
    QVERIFY2(std::abs((k1 - k0) - want) <= 1e-12 * k0,
             qPrintable(QStringLiteral("changed by %1, the linear's cost difference is %2").arg(k1 - k0, 0, 'g', 17).arg(want, 0, 'g', 17)));
    qInfo("%s %lld -> %lld bits: predicted KLD %.9g -> %.9g (difference %.9g, the linear's %.9g)", name.c_str(),
          (long long)before, (long long)after, k0, k1, k1 - k0, want);
    plan.setBits({i}, 16); // bf16 costs nothing
    QVERIFY(std::abs((k0 - gauge.shownCost().kld) - linearCostAt(*m_table, size_t(i), before)) <= 1e-12 * k0);
    plan.undoStack()->undo();
    plan.undoStack()->undo();
    QVERIFY(std::abs(gauge.shownCost().kld - k0) <= 1e-12 * k0); // back where it was, up to rounding

    // Dropping expert 5 of layer 1: its three linears leave the sum.
    double expertCost = 0;
    for (const char* role : {"gate", "up", "down"}) {
        const int j = plan.entryIndex(m_cfg->expertLinear(1, 5, role));
        expertCost += linearCostAt(*m_table, size_t(j), plan.entries()[size_t(j)].bits);
    }
    plan.setExpertsDropped({DroppedExpert{1, 5}}, true);
    QCOMPARE(gauge.shownCost().droppedLinears, int64_t(3));
    QVERIFY(std::abs((k0 - gauge.shownCost().kld) - expertCost) <= 1e-12 * k0);
    QVERIFY(gauge.predictedText().contains(QStringLiteral("3 linears dropped: they count 0")));

    // Edits followed one by one (O(changed)) land where a fresh sum over the plan does.
    std::vector<int> layer0;
    for (size_t j = 0; j < plan.entries().size(); ++j)
        if (plan.entries()[j].layer == 0)
            layer0.push_back(int(j));
    plan.setBits(layer0, 2);
    plan.setBits({i}, 8);
    plan.undoStack()->undo();
    const PlanCost fresh = predictedPlanCost(*m_table, plan.entries());
    QVERIFY(std::abs(gauge.shownCost().kld - fresh.kld) <= 1e-12 * fresh.kld);
    QCOMPARE(gauge.shownCost().linears, fresh.linears);
    QCOMPARE(gauge.shownCost().droppedLinears, fresh.droppedLinears);
}

void TestPredictedCost::heatmapCostMode()
{
    Document doc;
    doc.setModel(m_cfg, kModel);
    doc.setStats(m_stats, m_statsPath);
    RoutingHeatmapView view(&doc);
    view.setCostBits(3);
    QCOMPARE(view.costBits(), int64_t(0)); // no table yet: stays on the routing metric
    doc.setCostTable(m_table);
    for (int64_t bits : {2, 3, 4}) {
        view.setCostBits(bits);
        QCOMPARE(view.costBits(), bits);
        const RoutingMatrix& m = view.matrix();
        QCOMPARE(m.experts, m_cfg->numExperts);
        QCOMPARE(int64_t(m.layers.size()), m_cfg->numLayers); // every layer of the demo is MoE
        const size_t col = size_t(std::find(m_table->candidates.begin(), m_table->candidates.end(), bits)
                                  - m_table->candidates.begin());
        for (size_t r = 0; r < m.layers.size(); ++r)
            for (int64_t e = 0; e < m.experts; ++e) {
                double want = 0;
                for (const char* role : {"gate", "up", "down"}) {
                    const std::string name = m_cfg->expertLinear(m.layers[r], e, role);
                    for (const LinearErrors& l : m_table->linears)
                        if (l.name == name)
                            want += l.error[col];
                }
                QVERIFY(want > 0);
                QCOMPARE(m.at(r, e), want);
            }
    }
    const QString tip = view.matrixPlot()->tooltipAt(0, 2);
    QVERIFY2(tip.contains(QStringLiteral("predicted cost at 4 bits")), qPrintable(tip));
    QVERIFY2(tip.contains(QString::number(view.matrix().at(0, size_t(view.expertAtColumn(2))), 'g', 12)), qPrintable(tip));
    // new stats drop the table: back to the routing metric
    doc.setStats(m_stats, m_statsPath);
    QCOMPARE(view.costBits(), int64_t(0));
}

void TestPredictedCost::mainWindowMeasuresAndSolvesBudget()
{
    MainWindow w;
    w.setBatchMode(true);
    w.openModel(kModel);
    QVERIFY(waitUntil([&] { return w.document()->config() != nullptr; }));
    w.openStats(m_statsPath);
    QVERIFY(waitUntil([&] { return w.document()->costTable() != nullptr; }));
    QVERIFY2(w.errors().isEmpty(), qPrintable(w.errors().join(QLatin1Char('\n'))));
    const std::shared_ptr<const ErrorTable> table = w.document()->costTable();
    QCOMPARE(table->linears.size(), m_table->linears.size());
    for (size_t i = 0; i < table->linears.size(); ++i)
        QCOMPARE(table->linears[i].error, m_table->linears[i].error);

    StrategyPanel* panel = w.allocationEditor()->strategyPanel();
    QVERIFY(panel->backend().hasErrorTable);
    auto* items = qobject_cast<QStandardItemModel*>(panel->strategyBox()->model());
    QVERIFY(items->item(panel->strategyBox()->findText(QStringLiteral("budget")))->isEnabled());
    BudgetGauge* gauge = w.allocationEditor()->gauge();
    QVERIFY(gauge->hasPredictedCost());

    QSignalSpy solved(panel, &StrategyPanel::solved);
    panel->setLive(false);
    panel->setStrategy(QStringLiteral("budget"));
    panel->setTargetBits(3.0);
    panel->solve();
    QVERIFY(waitUntil([&] { return solved.count() > 0; }));
    QVERIFY2(nearlyEqual(gauge->shownCost().kld, m_cliKld, 5e-6), qPrintable(gauge->predictedText()));
    QVERIFY(panel->message().contains(QStringLiteral("predicted KL divergence")));

    // Asked again while it measures, the keeper keeps the job it has.
    QSignalSpy measuring(w.costTableKeeper(), &gui::CostTableKeeper::measuringChanged);
    const int id = w.costTableKeeper()->start();
    QVERIFY(id > 0);
    QCOMPARE(w.costTableKeeper()->start(), id);
    QCOMPARE(measuring.count(), 1);
    QVERIFY(w.jobRunner()->waitForIdle(120000));
    QCOMPARE(measuring.count(), 2);
    QCOMPARE(measuring.last().first().toBool(), false);

    // A keeper asked to measure without Fisher stats says why.
    w.document()->setStats(nullptr, {});
    QCOMPARE(w.costTableKeeper()->start(), 0);
    QVERIFY(w.costTableKeeper()->lastError().contains(QStringLiteral("calibrate --fisher")));
    QVERIFY(!panel->backend().hasErrorTable);
}

void TestPredictedCost::withoutFisherSaysWhatIsMissing()
{
    Document doc;
    PlanEditModel plan;
    AllocationEditor editor(&doc, &plan);
    auto plain = std::make_shared<CalibStats>(*m_stats);
    plain->fisher = FisherParams{};
    for (LinearStats& l : plain->linears)
        l.fisher.clear();
    doc.setModel(m_cfg, kModel);
    doc.setStats(plain, QStringLiteral("plain.stats.h5"));
    QCOMPARE(editor.gauge()->predictedText(),
             QStringLiteral("predicted KLD: needs calibration with the Fisher cost (calibrate --fisher)"));
    doc.setStats(m_stats, m_statsPath);
    QVERIFY(editor.gauge()->predictedText().startsWith(QStringLiteral("predicted KLD: not measured yet")));
    editor.setCostTableMeasuring(true);
    QCOMPARE(editor.gauge()->predictedText(), QStringLiteral("predicted KLD: measuring… (Jobs panel)"));
    doc.setCostTable(m_table);
    QVERIFY(editor.gauge()->hasPredictedCost());
}

void TestPredictedCost::calibrateDialogOffersFisher()
{
    gui::CalibrateDialog dialog(kModel, m_tmp.filePath(QStringLiteral("d.stats.h5")));
    QCheckBox* fisher = nullptr;
    for (QCheckBox* box : dialog.findChildren<QCheckBox*>())
        if (box->text() == QStringLiteral("Measure loss sensitivity (Fisher)"))
            fisher = box;
    QVERIFY(fisher);
    fisher->setChecked(true);
    QVERIFY(dialog.settings().fisher);
    fisher->setChecked(false);
    QVERIFY(!dialog.settings().fisher);
}

QTEST_MAIN(TestPredictedCost)
#include "tst_predictedcost.moc"
