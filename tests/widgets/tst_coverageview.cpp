// SPDX-License-Identifier: MIT
// The expert coverage view (#25, #27) on hand-made numbers: 3 MoE layers × 8 experts of stats
// (layers 1–3; layer 0 dense) and a quantize report for layers 1 and 2
// (tests/data/coverage/quant_report_2x8.json, next-choices, minimum 32):
//   stats routed   layer 1 {40, 30, 25, 20, 35, 10, 28, 12}, layer 2 {50, 50, 30, 30, 20, 10, 10, 0},
//                  layer 3 {25 × 8}; 100 tokens per layer, top-2;
//   report routed  as the stats; Hessian tokens layer 1 {40, 36, 33, 32, 35, 18, 40, 12},
//                  layer 2 {50, 50, 34, 32, 32, 32, 33, 0}; RTN fallbacks (1, 5), (1, 7), (2, 7).
// Checked: the cells' values and status colours, the marked experts (crosses: below the minimum;
// circles: lifted by balancing), the tooltips' exact text, the report's reading (also wrapped in a
// GGUF export's report), clicks selecting and the selection highlighting, and the CSV export.
#include "coverage/coveragematrix.h"
#include "coverage/quantcoverage.h"
#include "document.h"
#include "plot/matrixplot.h"
#include "selection.h"
#include "test_paths.h"
#include "views/coverageview.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <memory>

using namespace moewb;

namespace {

using Experts = QList<QPair<int, int>>;

QString reportPath()
{
    return moewb::test::sourceDir() + QStringLiteral("/tests/data/coverage/quant_report_2x8.json");
}

RouterStats router(std::vector<int64_t> expertTokens)
{
    RouterStats r;
    r.numExperts = int64_t(expertTokens.size());
    r.topK = 2;
    r.tokens = 100;
    r.expertTokens = std::move(expertTokens);
    r.expertTop1.assign(r.expertTokens.size(), 0);
    r.expertWeightMass.assign(r.expertTokens.size(), 0.0);
    r.expertProbMass.assign(r.expertTokens.size(), 0.0);
    r.domainTokens = Matrix<int64_t>(0, r.numExperts);
    r.coactivation = Matrix<int64_t>(r.numExperts, r.numExperts);
    r.transitions = Matrix<int64_t>(r.numExperts, 0);
    for (int64_t e = 0; e < r.numExperts; ++e)
        if (r.expertTokens[size_t(e)] == 0)
            r.deadExperts.push_back(e);
    return r;
}

std::shared_ptr<const CalibStats> coverageStats()
{
    auto s = std::make_shared<CalibStats>();
    s->numLayers = 4;
    s->hiddenSize = 16;
    s->layers.resize(4);
    const std::vector<int64_t> routed[] = {{40, 30, 25, 20, 35, 10, 28, 12},
                                           {50, 50, 30, 30, 20, 10, 10, 0},
                                           {25, 25, 25, 25, 25, 25, 25, 25}};
    for (int l = 0; l < 4; ++l) {
        s->layers[size_t(l)].layer = l;
        s->layers[size_t(l)].isMoe = l > 0;
        if (l > 0)
            s->layers[size_t(l)].router = router(routed[l - 1]);
    }
    return s;
}

/// The colour the plot draws a cell with.
QColor cellColor(MatrixPlot* plot, int row, int col)
{
    return QColor::fromRgb(plot->colorMap()->gradient().color(plot->value(row, col), plot->colorMap()->dataRange()));
}

Experts markedExperts(const CoverageView& view, int set)
{
    Experts experts;
    for (const QPoint& p : view.matrixPlot()->markedCells(set))
        experts.append({view.matrix().layers[size_t(p.y())], p.x()});
    std::sort(experts.begin(), experts.end());
    return experts;
}

} // namespace

class TestCoverageView : public QObject {
    Q_OBJECT
private slots:
    void init();
    void cleanup();
    void statsAlone();
    void reportNumbersAndStatus();
    void tooltipsExact();
    void readsReports();
    void selectionLinked();
    void csvExport();

private:
    std::unique_ptr<Document> m_document;
    std::unique_ptr<CoverageView> m_view;
};

void TestCoverageView::init()
{
    m_document = std::make_unique<Document>();
    m_document->setStats(coverageStats(), QStringLiteral("coverage.stats.h5"));
    m_view = std::make_unique<CoverageView>(m_document.get());
    m_view->resize(700, 400);
    m_view->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_view.get()));
}

void TestCoverageView::cleanup()
{
    m_view.reset();
    m_document.reset();
}

void TestCoverageView::statsAlone()
{
    const CoverageMatrix& m = m_view->matrix();
    QCOMPARE(m.layers, (std::vector<int>{1, 2, 3})); // the dense layer 0 is no row
    QCOMPARE(m.experts, 8);
    QCOMPARE(m_view->measure(), CoverageMeasure::StatsRouted);
    MatrixPlot* plot = m_view->matrixPlot();
    QCOMPARE(plot->rows(), 3);
    QCOMPARE(plot->cols(), 8);
    QCOMPARE(plot->value(0, 0), 40.0);
    QCOMPARE(plot->value(0, 5), 10.0);
    QCOMPARE(plot->value(1, 7), 0.0);
    QCOMPARE(plot->value(2, 3), 25.0);
    // without a run the measures of a run cannot be chosen
    m_view->setMeasure(CoverageMeasure::HessianTokens);
    QCOMPARE(m_view->measure(), CoverageMeasure::StatsRouted);

    // below the default minimum of 32: every stats count under 32
    const Experts below{{1, 1}, {1, 2}, {1, 3}, {1, 5}, {1, 6}, {1, 7}, {2, 2}, {2, 3}, {2, 4}, {2, 5},
                        {2, 6}, {2, 7}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}, {3, 5}, {3, 6}, {3, 7}};
    QCOMPARE(m_view->minimumTokens(), int64_t(32));
    QCOMPARE(m_view->belowMinimumExperts(), below);
    QCOMPARE(markedExperts(*m_view, 0), below);
    QVERIFY(m_view->liftedExperts().isEmpty());
    QCOMPARE(m.at(0, 0).status, CoverageStatus::Enough);
    QCOMPARE(m.at(0, 1).status, CoverageStatus::BelowMinimum);

    // a lower minimum: only the counts under 20
    m_view->setMinimumTokens(20);
    QCOMPARE(m_view->belowMinimumExperts(), (Experts{{1, 5}, {1, 7}, {2, 5}, {2, 6}, {2, 7}}));
    QCOMPARE(markedExperts(*m_view, 0), m_view->belowMinimumExperts());

    // the status colours
    m_view->setMeasure(CoverageMeasure::Status);
    plot = m_view->matrixPlot();
    QCOMPARE(cellColor(plot, 0, 0), coverageStatusColor(CoverageStatus::Enough));
    QCOMPARE(cellColor(plot, 0, 5), coverageStatusColor(CoverageStatus::BelowMinimum));
}

void TestCoverageView::reportNumbersAndStatus()
{
    QString error;
    QVERIFY2(m_view->loadReport(reportPath(), &error), qPrintable(error));
    const QuantCoverage* run = m_view->quantCoverage();
    QVERIFY(run);
    QCOMPARE(run->balance, QStringLiteral("next-choices"));
    QCOMPARE(run->minExpertTokens, int64_t(32));
    QCOMPARE(run->calibTokens, int64_t(100));
    QCOMPARE(run->belowMinRouted, int64_t(12));
    QCOMPARE(run->belowMinAfter, int64_t(3));
    QCOMPARE(int(run->experts.size()), 16);
    QCOMPARE(int(run->fallbacks.size()), 3);

    // a report switches the view to the Hessian tokens
    QCOMPARE(m_view->measure(), CoverageMeasure::HessianTokens);
    MatrixPlot* plot = m_view->matrixPlot();
    const double hessian[2][8] = {{40, 36, 33, 32, 35, 18, 40, 12}, {50, 50, 34, 32, 32, 32, 33, 0}};
    for (int r = 0; r < 2; ++r)
        for (int e = 0; e < 8; ++e)
            QCOMPARE(plot->value(r, e), hessian[r][e]);
    QVERIFY(std::isnan(plot->value(2, 0))); // layer 3: not in the run
    m_view->setMeasure(CoverageMeasure::RunRouted);
    QCOMPARE(m_view->matrixPlot()->value(0, 3), 20.0);
    QCOMPARE(m_view->matrixPlot()->value(1, 7), 0.0);
    m_view->setMeasure(CoverageMeasure::HessianWeight);
    QCOMPARE(m_view->matrixPlot()->value(0, 1), 36.0);

    // status: the run's fallbacks, the experts balancing lifted, layer 3 from the stats
    const CoverageMatrix& m = m_view->matrix();
    QCOMPARE(m.minExpertTokens, int64_t(32));
    QCOMPARE(m.at(0, 0).status, CoverageStatus::Enough);
    QCOMPARE(m.at(0, 3).status, CoverageStatus::Lifted); // 20 routed, exactly 32 after balancing
    QCOMPARE(m.at(0, 5).status, CoverageStatus::Fallback);
    QCOMPARE(m.at(1, 7).status, CoverageStatus::Fallback);
    QCOMPARE(m.at(2, 0).status, CoverageStatus::BelowMinimum);
    const Experts below{{1, 5}, {1, 7}, {2, 7}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}, {3, 5}, {3, 6}, {3, 7}};
    const Experts lifted{{1, 1}, {1, 2}, {1, 3}, {1, 6}, {2, 2}, {2, 3}, {2, 4}, {2, 5}, {2, 6}};
    QCOMPARE(m_view->belowMinimumExperts(), below);
    QCOMPARE(markedExperts(*m_view, 0), below);
    QCOMPARE(m_view->liftedExperts(), lifted);
    QCOMPARE(markedExperts(*m_view, 1), lifted);

    m_view->setMeasure(CoverageMeasure::Status);
    plot = m_view->matrixPlot();
    QCOMPARE(plot->value(0, 5), 0.0);
    QCOMPARE(cellColor(plot, 0, 5), coverageStatusColor(CoverageStatus::Fallback));
    QCOMPARE(cellColor(plot, 2, 0), coverageStatusColor(CoverageStatus::BelowMinimum));
    QCOMPARE(cellColor(plot, 0, 1), coverageStatusColor(CoverageStatus::Lifted));
    QCOMPARE(cellColor(plot, 0, 0), coverageStatusColor(CoverageStatus::Enough));
    // four distinct colours
    QVERIFY(coverageStatusColor(CoverageStatus::Fallback) != coverageStatusColor(CoverageStatus::BelowMinimum));
    QVERIFY(coverageStatusColor(CoverageStatus::Lifted) != coverageStatusColor(CoverageStatus::Enough));

    // dropping the run: back to the stats
    m_view->setQuantCoverage(nullptr);
    QCOMPARE(m_view->measure(), CoverageMeasure::Status);
    m_view->setMeasure(CoverageMeasure::RunRouted);
    QCOMPARE(m_view->measure(), CoverageMeasure::StatsRouted);
    QCOMPARE(m_view->belowMinimumExperts().size(), 20);
}

void TestCoverageView::tooltipsExact()
{
    QCOMPARE(m_view->tooltip(1, 5),
             QStringLiteral("<b>Layer 1, expert 5</b><br>routed in calibration (stats): 10 of 100 tokens (top-2)"
                            "<br><font color=#d7301f>below the GPTQ minimum of 32 tokens: RTN unless balanced</font>"));
    QVERIFY(m_view->loadReport(reportPath()));
    QCOMPARE(m_view->tooltip(1, 5),
             QStringLiteral("<b>Layer 1, expert 5</b><br>routed in calibration (stats): 10 of 100 tokens (top-2)"
                            "<br>quantize run (balancing next-choices): 10 tokens routed, 18 Hessian tokens, "
                            "Hessian weight 18"
                            "<br><font color=#d7301f>RTN fallback: fewer than 32 tokens for its Hessian</font>"));
    QCOMPARE(m_view->tooltip(2, 3),
             QStringLiteral("<b>Layer 2, expert 3</b><br>routed in calibration (stats): 30 of 100 tokens (top-2)"
                            "<br>quantize run (balancing next-choices): 30 tokens routed, 32 Hessian tokens, "
                            "Hessian weight 32<br>GPTQ: lifted to the minimum of 32 tokens by balancing"));
    QCOMPARE(m_view->tooltip(2, 0),
             QStringLiteral("<b>Layer 2, expert 0</b><br>routed in calibration (stats): 50 of 100 tokens (top-2)"
                            "<br>quantize run (balancing next-choices): 50 tokens routed, 50 Hessian tokens, "
                            "Hessian weight 50<br>GPTQ: at least the minimum of 32 tokens"));
    QCOMPARE(m_view->tooltip(0, 0), QString()); // the dense layer
    // the plot's hover text is the view's
    QCOMPARE(m_view->matrixPlot()->tooltipAt(1, 3), m_view->tooltip(2, 3));
}

void TestCoverageView::readsReports()
{
    QFile file(reportPath());
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QByteArray text = file.readAll();
    QuantCoverage direct;
    QString error;
    QVERIFY2(parseQuantCoverage(text, QStringLiteral("r"), &direct, &error), qPrintable(error));
    const QuantCoverageExpert* e = direct.find(1, 6);
    QVERIFY(e);
    QCOMPARE(e->routedTokens, int64_t(28));
    QCOMPARE(e->hessianTokens, int64_t(40));
    QCOMPARE(e->hessianWeight, 40.0);
    QVERIFY(direct.fallback(2, 7));
    QCOMPARE(direct.fallback(2, 7)->tokens, int64_t(0));
    QVERIFY(!direct.fallback(2, 6));

    // a GGUF export's report wraps it in "quantize"
    QJsonObject gguf;
    gguf.insert(QStringLiteral("format"), QStringLiteral("moewb-gguf-report"));
    gguf.insert(QStringLiteral("quantize"), QJsonDocument::fromJson(text).object());
    QuantCoverage wrapped;
    QVERIFY(parseQuantCoverage(QJsonDocument(gguf).toJson(), QStringLiteral("g"), &wrapped, &error));
    QCOMPARE(wrapped.experts.size(), direct.experts.size());
    QCOMPARE(wrapped.balance, direct.balance);

    // not a report, or one from before expert balancing: one line naming the file, nothing changes
    QJsonObject old = QJsonDocument::fromJson(text).object();
    old.remove(QStringLiteral("experts"));
    QuantCoverage none;
    QVERIFY(!parseQuantCoverage(QJsonDocument(old).toJson(), QStringLiteral("old.json"), &none, &error));
    QVERIFY(error.startsWith(QStringLiteral("old.json: ")) && !error.contains(QLatin1Char('\n')));
    QVERIFY(!parseQuantCoverage("{\"format\": \"other\"}", QStringLiteral("x.json"), &none, &error));
    QCOMPARE(error, QStringLiteral("x.json: not a moewb quantize report"));
    QVERIFY(!m_view->loadReport(QStringLiteral("/nonexistent/report.json"), &error));
    QVERIFY(!m_view->quantCoverage());
}

void TestCoverageView::selectionLinked()
{
    QVERIFY(m_view->loadReport(reportPath()));
    MatrixPlot* plot = m_view->matrixPlot();
    plot->replot();
    // selected elsewhere: its cell is outlined, a layer alone outlines the row
    m_document->selection()->select(2, 5);
    QCOMPARE(plot->highlightRow(), 1);
    QCOMPARE(plot->highlightColumn(), 5);
    m_document->selection()->select(3);
    QCOMPARE(plot->highlightRow(), 2);
    QCOMPARE(plot->highlightColumn(), -1);
    m_document->selection()->select(0); // the dense layer: nothing here
    QCOMPARE(plot->highlightRow(), -1);
    // a click selects the expert everywhere
    const QPoint pixel = m_view->cellCenter(1, 7);
    QCOMPARE(plot->cellAt(pixel), QPoint(7, 0));
    QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, pixel);
    QCOMPARE(m_document->selection()->layer(), 1);
    QCOMPARE(m_document->selection()->expert(), 7);
    QCOMPARE(plot->highlightRow(), 0);
    QCOMPARE(plot->highlightColumn(), 7);
}

void TestCoverageView::csvExport()
{
    QVERIFY(m_view->loadReport(reportPath()));
    const CsvTable table = m_view->csvTable();
    QCOMPARE(table.header.join(QLatin1Char(',')),
             QStringLiteral("layer,expert,stats_routed_tokens,routed_tokens,hessian_tokens,hessian_weight,fallback,status"));
    QCOMPARE(table.rows.size(), 24);
    QCOMPARE(table.rows[5].join(QLatin1Char(',')), QStringLiteral("1,5,10,10,18,18,1,RTN fallback"));
    QCOMPARE(table.rows[11].join(QLatin1Char(',')), QStringLiteral("2,3,30,30,32,32,0,lifted by balancing"));
    QCOMPARE(table.rows[16].join(QLatin1Char(',')), QStringLiteral("3,0,25,,,,0,below the minimum"));
}

QTEST_MAIN(TestCoverageView)
#include "tst_coverageview.moc"
