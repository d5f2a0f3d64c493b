// SPDX-License-Identifier: MIT
// Results table and size-vs-perplexity plot: the Pareto front of a hand-made set of runs (worked
// out below), the table's values, selecting a run (table row or plot point) requesting its plan,
// and the CSV export; KLD and same-top-token columns, the KLD quality axis and the error bars of
// the paired intervals from a pipeline results.json that has them (tests/data/results).
#include "test_paths.h"

#include "results/pipelineimport.h"
#include "results/resultsmodel.h"
#include "results/resultsview.h"

#include "moewb/plan/plan.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <qcustomplot.h>

#include <cmath>

using namespace moewb;

namespace {
RunResult run(const QString& label, int64_t bytes, double ppl, double bits, QMap<QString, double> tasks = {})
{
    RunResult r;
    r.label = label;
    r.modelBytes = bytes;
    r.perplexity = ppl;
    r.averageBits = bits;
    r.taskAccuracy = tasks;
    if (label != QLatin1String("baseline"))
        r.planJson = QStringLiteral("{\"version\": 1, \"label\": \"%1\"}").arg(label);
    r.modelPath = QStringLiteral("/runs/") + label;
    return r;
}

// Hand-worked front over (size, ppl):
//   A (100, 10)  on the front: nothing is smaller
//   B (200, 8)   on: only A is smaller, and A is worse
//   C (150, 12)  off: A is smaller and better
//   D (300, 8)   off: B is smaller and as good
//   E (400, 5)   on: the best perplexity
//   F (50, NaN)  not plotted (no perplexity)
//   G (200, 8)   on: equal to B, neither dominates the other
std::vector<RunResult> handRuns()
{
    return {run(QStringLiteral("A"), 100'000'000, 10.0, 2.5, {{QStringLiteral("hellaswag"), 0.25}, {QStringLiteral("winogrande"), 0.5}}),
            run(QStringLiteral("B"), 200'000'000, 8.0, 3.0, {{QStringLiteral("hellaswag"), 0.3}}),
            run(QStringLiteral("C"), 150'000'000, 12.0, 2.75),
            run(QStringLiteral("D"), 300'000'000, 8.0, 4.0),
            run(QStringLiteral("E"), 400'000'000, 5.0, 16.0),
            run(QStringLiteral("F"), 50'000'000, std::nan(""), 2.0),
            run(QStringLiteral("G"), 200'000'000, 8.0, 3.0)};
}
} // namespace

class TestResults : public QObject {
    Q_OBJECT
private slots:
    void paretoByHand();
    void tableValues();
    void jsonRoundTrip();
    void selectingRequestsPlan();
    void csvExport();
    void pipelineImport();
    void kldColumnsAxisAndErrorBars();
};

void TestResults::paretoByHand()
{
    QCOMPARE(paretoFront({}, {}), std::vector<int>{});
    QCOMPARE(paretoFront({1}, {1}), std::vector<int>{0});
    // A line going down: all on the front; going up: only the first.
    QCOMPARE(paretoFront({1, 2, 3}, {3, 2, 1}), (std::vector<int>{0, 1, 2}));
    QCOMPARE(paretoFront({1, 2, 3}, {1, 2, 3}), (std::vector<int>{0}));
    // The hand-made set: A, B, G, E by size.
    std::vector<double> x, y;
    for (const RunResult& r : handRuns()) {
        x.push_back(double(r.modelBytes));
        y.push_back(r.perplexity);
    }
    QCOMPARE(paretoFront(x, y), (std::vector<int>{0, 1, 6, 4}));
}

void TestResults::tableValues()
{
    ResultsModel model;
    QAbstractItemModelTester tester(&model);
    model.setRuns(handRuns());
    QCOMPARE(model.rowCount(), 7);
    QCOMPARE(model.taskNames(), (QStringList{QStringLiteral("hellaswag"), QStringLiteral("winogrande")}));
    QCOMPARE(model.columnCount(), ResultsModel::FirstTaskColumn + 2);
    auto cell = [&](int row, int col) { return model.data(model.index(row, col)).toString(); };
    QCOMPARE(cell(0, ResultsModel::LabelColumn), QStringLiteral("A"));
    QCOMPARE(cell(0, ResultsModel::BitsColumn), QStringLiteral("2.500"));
    QCOMPARE(cell(0, ResultsModel::SizeColumn), QStringLiteral("100.00"));
    QCOMPARE(cell(0, ResultsModel::PerplexityColumn), QStringLiteral("10.0000"));
    QCOMPARE(cell(0, ResultsModel::ParetoColumn), QStringLiteral("★"));
    QCOMPARE(cell(0, ResultsModel::FirstTaskColumn), QStringLiteral("0.2500"));
    QCOMPARE(cell(0, ResultsModel::FirstTaskColumn + 1), QStringLiteral("0.5000"));
    QCOMPARE(cell(1, ResultsModel::FirstTaskColumn + 1), QStringLiteral("–")); // B has no winogrande
    QCOMPARE(cell(2, ResultsModel::ParetoColumn), QString());                 // C is dominated
    QCOMPARE(cell(5, ResultsModel::PerplexityColumn), QStringLiteral("–"));   // F: not measured
    QCOMPARE(model.headerData(ResultsModel::FirstTaskColumn, Qt::Horizontal).toString(), QStringLiteral("hellaswag acc"));
    QCOMPARE(model.paretoRows(), (std::vector<int>{0, 1, 6, 4}));
    QCOMPARE(cell(0, ResultsModel::PlanColumn), QStringLiteral("invalid plan")); // the fixture's stand-in JSON

    // The plan column says what a plan does.
    Plan p;
    p.defaults.bits = 3;
    p.defaults.groupSize = 64;
    p.rules.push_back({"model\\.layers\\.0\\..*", {}});
    QuantSettings eight;
    eight.bits = 8;
    p.overrides["a"] = eight;
    p.overrides["b"] = eight;
    p.droppedExperts.push_back({1, 2});
    QCOMPARE(planSummary(QString::fromStdString(planToJson(p))),
             QStringLiteral("3b g64 gptq, 1 rule, 2 overrides, 1 expert dropped"));
    QCOMPARE(planSummary({}), QStringLiteral("–"));

    // Adding a better, smaller run moves the front.
    model.addRun(run(QStringLiteral("H"), 90'000'000, 4.0, 2.0));
    QCOMPARE(model.paretoRows(), std::vector<int>{7});
    model.removeRun(7);
    QCOMPARE(model.paretoRows(), (std::vector<int>{0, 1, 6, 4}));
}

void TestResults::jsonRoundTrip()
{
    for (const RunResult& r : handRuns()) {
        const RunResult back = runResultFromJson(runResultToJson(r), QStringLiteral("t"));
        QVERIFY(back == r);
    }
    QJsonObject bad = runResultToJson(handRuns()[0]);
    bad.insert(QStringLiteral("average_bits"), QStringLiteral("three"));
    try {
        runResultFromJson(bad, QStringLiteral("s.moewb: $.results[0]"));
        QFAIL("no error");
    } catch (const std::exception& e) {
        QCOMPARE(QString::fromUtf8(e.what()), QStringLiteral("s.moewb: $.results[0]: average_bits must be a number"));
    }
}

void TestResults::selectingRequestsPlan()
{
    ResultsModel model;
    std::vector<RunResult> runs = handRuns();
    runs.push_back(run(QStringLiteral("baseline"), 500'000'000, 4.5, 16.0));
    model.setRuns(runs);
    ResultsView view(&model);
    view.resize(1000, 500);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.plot()->replot();
    QCOMPARE(view.plot()->graph(0)->dataCount(), 7); // F has no perplexity
    QCOMPARE(view.plot()->graph(1)->dataCount(), 5); // the front: A, B, G, E and the better, bigger baseline
    QCOMPARE(view.plot()->graph(1)->data()->at(0)->key, 100.0);
    QCOMPARE(view.plot()->graph(1)->data()->at(3)->value, 5.0);
    QCOMPARE(view.plot()->graph(1)->data()->at(4)->value, 4.5);

    QSignalSpy plans(&view, &ResultsView::planRequested);
    // A click on E's point in the plot.
    const QPointF e(view.plot()->xAxis->coordToPixel(400.0), view.plot()->yAxis->coordToPixel(5.0));
    QCOMPARE(view.runAtPlotPosition(e), 4);
    QTest::mouseClick(view.plot(), Qt::LeftButton, {}, e.toPoint());
    QCOMPARE(plans.size(), 1);
    QCOMPARE(plans.last().at(0).value<RunResult>().label, QStringLiteral("E"));
    QCOMPARE(view.selectedRow(), 4);
    QCOMPARE(view.plot()->graph(2)->dataCount(), 1); // the selection ring
    // A click on the table's row of C.
    QAbstractItemModel* shown = view.table()->model();
    QCOMPARE(shown->index(0, 0).data().toString(), QStringLiteral("A")); // in the order the runs were made
    QModelIndex c;
    for (int r = 0; r < shown->rowCount(); ++r)
        if (shown->index(r, 0).data().toString() == QLatin1String("C"))
            c = shown->index(r, 0);
    QTest::mouseClick(view.table()->viewport(), Qt::LeftButton, {}, view.table()->visualRect(c).center());
    QCOMPARE(plans.size(), 2);
    QCOMPARE(plans.last().at(0).value<RunResult>().planJson, handRuns()[2].planJson);
    // The baseline has no plan: selected, nothing requested.
    view.selectRun(7);
    QCOMPARE(view.selectedRow(), 7);
    QCOMPARE(plans.size(), 2);
}

void TestResults::csvExport()
{
    ResultsModel model;
    model.setRuns(handRuns());
    ResultsView view(&model);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("results.csv"));
    QVERIFY(view.exportCsv(path));
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly | QIODevice::Text));
    const QStringList lines = QString::fromUtf8(f.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 8);
    QCOMPARE(lines[0], QStringLiteral("label,average_bits,model_bytes,perplexity,pareto,acc:hellaswag,acc:winogrande,"
                                      "ppl_file,plan_path,model_path"));
    QCOMPARE(lines[1], QStringLiteral("A,2.5,100000000,10,1,0.25,0.5,,,/runs/A"));
    QCOMPARE(lines[3], QStringLiteral("C,2.75,150000000,12,0,,,,,/runs/C"));
    QVERIFY(view.exportPng(dir.filePath(QStringLiteral("results.png")), 800, 500));
}

void TestResults::pipelineImport()
{
    // The layout `moewb pipeline` writes (engine/workflow/pipeline.cpp pipelineResultToJson).
    QTemporaryDir dir;
    Plan plan;
    plan.defaults.bits = 3;
    plan.provenance.strategy = "uniform";
    savePlan(plan, dir.filePath(QStringLiteral("plan-uniform-3.json")).toStdString());
    const QByteArray json = R"({"tool": "moewb 0.1.0", "model": "/m", "rows": [
      {"label": "baseline", "strategy": "", "target_bits": 16, "average_bits": 16, "model_bytes": 26000000,
       "perplexity": {"eval.txt": 7.5}, "tasks": {"demo_hellaswag": {"n": 100, "acc": 0.31, "acc_stderr": 0.04}},
       "plan": "", "seconds": 1},
      {"label": "uniform@3", "strategy": "uniform", "target_bits": 3, "average_bits": 3, "model_bytes": 9000000,
       "perplexity": {"eval.txt": 8.25}, "tasks": {"demo_hellaswag": {"n": 100, "acc": 0.29, "acc_stderr": 0.04}},
       "plan": "plan-uniform-3.json", "seconds": 2}]})";
    const QString path = dir.filePath(QStringLiteral("results.json"));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(json);
    f.close();
    const std::vector<RunResult> runs = importPipelineResults(path);
    QCOMPARE(runs.size(), size_t(2));
    QCOMPARE(runs[0].label, QStringLiteral("baseline"));
    QCOMPARE(runs[0].modelPath, QStringLiteral("/m"));
    QCOMPARE(runs[0].perplexity, 7.5);
    QCOMPARE(runs[0].pplFile, QStringLiteral("eval.txt"));
    QVERIFY(runs[0].planJson.isEmpty());
    QCOMPARE(runs[1].averageBits, 3.0);
    QCOMPARE(runs[1].modelBytes, int64_t(9000000));
    QCOMPARE(runs[1].taskAccuracy.value(QStringLiteral("demo_hellaswag")), 0.29);
    QVERIFY(parsePlanJson(runs[1].planJson.toStdString(), "imported") == plan);
    // Not a results file: one line naming it.
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write("{\"rows\": 3}");
    f.close();
    try {
        importPipelineResults(path);
        QFAIL("no error");
    } catch (const std::exception& e) {
        QCOMPARE(QString::fromUtf8(e.what()), path + QStringLiteral(": not a moewb pipeline results file: no $.rows array"));
    }
}

void TestResults::kldColumnsAxisAndErrorBars()
{
    const QString path = moewb::test::sourceDir() + QStringLiteral("/tests/data/results/pipeline-kld.json");
    const std::vector<RunResult> runs = importPipelineResults(path);
    QCOMPARE(runs.size(), size_t(6));
    QCOMPARE(runs[0].kld, 0.0);
    QCOMPARE(runs[0].sameTop, 1.0);
    QCOMPARE(runs[2].label, QStringLiteral("frequency@3"));
    QCOMPARE(runs[2].kld, 0.095);
    QCOMPARE(runs[2].sameTop, 0.88);
    QCOMPARE(runs[2].kldDiff, 0.015);
    QCOMPARE(runs[2].kldLo, 0.005);
    QCOMPARE(runs[2].kldHi, 0.025);
    QVERIFY(!runs[1].hasKldInterval()); // uniform rows are the reference
    // the session JSON keeps them, and a run without them reads back without them
    for (const RunResult& r : runs)
        QVERIFY(runResultFromJson(runResultToJson(r), QStringLiteral("t")) == r);
    QVERIFY(!runResultToJson(handRuns()[0]).contains(QStringLiteral("kld")));

    ResultsModel model;
    QAbstractItemModelTester tester(&model);
    model.setRuns(runs);
    QVERIFY(model.hasKld());
    auto cell = [&](int row, int col) { return model.data(model.index(row, col)).toString(); };
    QCOMPARE(model.headerData(ResultsModel::KldColumn, Qt::Horizontal).toString(), QStringLiteral("KLD"));
    QCOMPARE(cell(2, ResultsModel::KldColumn), QStringLiteral("0.095"));
    QCOMPARE(cell(2, ResultsModel::SameTopColumn), QStringLiteral("88.00"));
    QCOMPARE(cell(0, ResultsModel::SameTopColumn), QStringLiteral("100.00"));
    QVERIFY(model.data(model.index(3, 0), Qt::ToolTipRole).toString().contains(QStringLiteral("excludes 0")));
    QVERIFY(!model.data(model.index(5, 0), Qt::ToolTipRole).toString().contains(QStringLiteral("excludes 0")));
    // Perplexity front by hand (size MB, ppl): frequency@3 (11.9, 103.5) beats uniform@3 (12, 104) and
    // budget@3 (12, 104.5); then uniform@4 (15, 101), outlier@4 (15.5, 100.8), baseline (40, 100).
    QCOMPARE(model.paretoRows(), (std::vector<int>{2, 4, 5, 0}));
    // KLD front by hand: frequency@3 (11.9, .095), budget@3 (12, .06) beats uniform@3 (12, .08),
    // uniform@4 (15, .02) beats outlier@4 (15.5, .025), baseline (40, 0).
    model.setQualityAxis(ResultsModel::Quality::Kld);
    QCOMPARE(model.paretoRows(), (std::vector<int>{2, 3, 4, 0}));
    QCOMPARE(cell(3, ResultsModel::ParetoColumn), QStringLiteral("★"));
    QCOMPARE(cell(5, ResultsModel::ParetoColumn), QString());
    model.setQualityAxis(ResultsModel::Quality::Perplexity);

    ResultsView view(&model);
    view.resize(1200, 500);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(!view.table()->isColumnHidden(ResultsModel::KldColumn));
    QVERIFY(!view.table()->isColumnHidden(ResultsModel::SameTopColumn));
    QVERIFY(!view.errorBars()->visible()); // perplexity axis: no KLD intervals
    view.setQualityAxis(int(ResultsModel::Quality::Kld));
    QCOMPARE(model.qualityAxis(), ResultsModel::Quality::Kld);
    QCOMPARE(view.qualityBox()->currentData().toInt(), int(ResultsModel::Quality::Kld));
    QVERIFY(view.plot()->yAxis->label().contains(QStringLiteral("KL divergence")));
    view.plot()->replot();
    // points on the KLD axis, the front through frequency@3, budget@3, uniform@4, baseline
    QCOMPARE(view.plot()->graph(0)->dataCount(), 6);
    QCOMPARE(view.plot()->graph(1)->dataCount(), 4);
    QCOMPARE(view.plot()->graph(1)->data()->at(1)->value, 0.06);
    // error bars: the paired interval of (run − uniform) around each compared run's KLD
    QVERIFY(view.errorBars()->visible());
    QCOMPARE(view.errorBars()->dataCount(), 3);
    QCPGraph* centres = view.plot()->graph(3);
    QCOMPARE(centres->dataCount(), 3);
    struct Expect {
        double size, kld, minus, plus;
    };
    const Expect expect[] = {{11.9, 0.095, 0.010, 0.010}, {12.0, 0.06, 0.010, 0.010}, {15.5, 0.025, 0.007, 0.007}};
    for (int i = 0; i < 3; ++i) {
        QCOMPARE(centres->data()->at(i)->key, expect[i].size);
        QCOMPARE(centres->data()->at(i)->value, expect[i].kld);
        QVERIFY(std::abs(view.errorBars()->data()->at(i).errorMinus - expect[i].minus) < 1e-12);
        QVERIFY(std::abs(view.errorBars()->data()->at(i).errorPlus - expect[i].plus) < 1e-12);
    }
    // the whole intervals are in view
    QVERIFY(view.plot()->yAxis->range().contains(0.095 + 0.010));
    QVERIFY(view.plot()->yAxis->range().contains(0.0));
    // a click on budget@3's point selects it on this axis
    const QPointF b(view.plot()->xAxis->coordToPixel(12.0), view.plot()->yAxis->coordToPixel(0.06));
    QCOMPARE(view.runAtPlotPosition(b), 3);
    // CSV: the KLD columns, exactly
    QTemporaryDir dir;
    QVERIFY(view.exportCsv(dir.filePath(QStringLiteral("r.csv"))));
    QFile f(dir.filePath(QStringLiteral("r.csv")));
    QVERIFY(f.open(QIODevice::ReadOnly | QIODevice::Text));
    const QStringList lines = QString::fromUtf8(f.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QVERIFY2(lines[0].startsWith(QStringLiteral("label,average_bits,model_bytes,perplexity,pareto,kld,same_top,"
                                                 "kld_vs_uniform_diff,kld_vs_uniform_lo,kld_vs_uniform_hi")),
             qPrintable(lines[0]));
    const QStringList freq = lines[3].split(QLatin1Char(','));
    QCOMPARE(freq.mid(0, 5), (QStringList{QStringLiteral("frequency@3"), QStringLiteral("3"), QStringLiteral("11900000"),
                                          QStringLiteral("103.5"), QStringLiteral("1")}));
    const double values[] = {0.095, 0.88, 0.015, 0.005, 0.025}; // written to read back exactly
    for (int i = 0; i < 5; ++i)
        QCOMPARE(freq[5 + i].toDouble(), values[i]);

    // runs without KLD: the columns hide and the axis falls back to perplexity
    model.setRuns(handRuns());
    QVERIFY(view.table()->isColumnHidden(ResultsModel::KldColumn));
    QCOMPARE(model.qualityAxis(), ResultsModel::Quality::Perplexity);
    QVERIFY(view.plot()->yAxis->label().contains(QStringLiteral("perplexity")));
}

QTEST_MAIN(TestResults)
#include "tst_results.moc"
