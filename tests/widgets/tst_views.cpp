// SPDX-License-Identifier: MIT
// The document and the plot views on a stats file written from the hand-made fixture: loading off
// the GUI thread, metric switches, linked selection by clicking a heat-map cell, clustering order,
// and PNG/CSV export whose numbers equal the stats.
#include "document.h"
#include "models/modeltreemodel.h"
#include "models/outliertablemodel.h"
#include "plot/matrixplot.h"
#include "selection.h"
#include "statsfixture.h"
#include "views/correlationview.h"
#include "views/domainview.h"
#include "views/modeltreeview.h"
#include "views/outlierview.h"
#include "views/routingheatmapview.h"

#include "moewb/stats/stats_h5.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <algorithm>
#include <memory>

using namespace moewb;

namespace {
QList<QStringList> readCsv(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly | QIODevice::Text))
        return {};
    QList<QStringList> rows;
    while (!f.atEnd())
        rows << QString::fromUtf8(f.readLine()).trimmed().split(QLatin1Char(','));
    return rows;
}
} // namespace

class TestViews : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void openStatsPopulatesViews();
    void openingBadFileReportsOneLine();
    void heatmapMetricSwitch();
    void heatmapClickSelectsExpertInTree();
    void heatmapSortByValue();
    void tooltipsShowExactNumbers();
    void treeClickSelectsEverywhere();
    void correlationClustering();
    void domainView();
    void outlierBarsAndTable();
    void focusAloneDoesNotSelect();
    void exportPngAndCsv();
    void manyExpertsStayReadable();
    void reopenKeepsViewsConsistent();
    void cleanupTestCase();

private:
    QTemporaryDir m_dir;
    QString m_statsPath;
    CalibStats m_stats;
    std::unique_ptr<Document> m_doc;
    std::unique_ptr<RoutingHeatmapView> m_heatmap;
    std::unique_ptr<ModelTreeView> m_tree;
    std::unique_ptr<CorrelationView> m_correlation;
    std::unique_ptr<DomainView> m_domains;
    std::unique_ptr<OutlierView> m_outliers;
};

void TestViews::initTestCase()
{
    QVERIFY(m_dir.isValid());
    m_stats = test::fixtureStats();
    m_statsPath = m_dir.filePath(QStringLiteral("fixture.stats.h5"));
    writeStats(m_stats, m_statsPath.toStdString());
    m_doc = std::make_unique<Document>();
    m_heatmap = std::make_unique<RoutingHeatmapView>(m_doc.get());
    m_tree = std::make_unique<ModelTreeView>(m_doc.get());
    m_correlation = std::make_unique<CorrelationView>(m_doc.get());
    m_domains = std::make_unique<DomainView>(m_doc.get());
    m_outliers = std::make_unique<OutlierView>(m_doc.get());
    for (QWidget* w : {static_cast<QWidget*>(m_heatmap.get()), static_cast<QWidget*>(m_tree.get()),
                       static_cast<QWidget*>(m_outliers.get())}) {
        w->resize(800, 500);
        w->show();
        QVERIFY(QTest::qWaitForWindowExposed(w));
    }
}

void TestViews::openStatsPopulatesViews()
{
    QSignalSpy loaded(m_doc.get(), &Document::statsChanged);
    m_doc->openStats(m_statsPath);
    QCOMPARE(loaded.count(), 0); // the result arrives through the event loop, never synchronously
    QVERIFY(loaded.wait(10000));
    QVERIFY(!m_doc->isLoading());
    QVERIFY(m_doc->stats());
    QVERIFY(*m_doc->stats() == m_stats);
    QCOMPARE(m_doc->statsPath(), m_statsPath);
    QVERIFY(m_doc->summary().contains(QStringLiteral("2 dead experts")));

    QCOMPARE(m_heatmap->matrixPlot()->rows(), 2);
    QCOMPARE(m_heatmap->matrixPlot()->cols(), 4);
    QCOMPARE(m_heatmap->matrixPlot()->value(0, 0), 0.4);
    QCOMPARE(m_tree->model()->rowCount(), 3);
    QCOMPARE(m_correlation->layer(), 1);
    QCOMPARE(m_correlation->matrixPlot()->rows(), 4);
    QVERIFY(m_domains->hasDomains());
    QCOMPARE(m_domains->matrixPlot()->rows(), 2);
    QCOMPARE(m_outliers->model()->rowCount(), int(m_stats.linears.size()));
    // dead experts of layer 2 carry markers
    QCOMPARE(m_heatmap->matrixPlot()->graph(0)->dataCount(), 2);
}

void TestViews::openingBadFileReportsOneLine()
{
    Document doc;
    QSignalSpy failed(&doc, &Document::loadFailed);
    const QString bogus = m_dir.filePath(QStringLiteral("not-hdf5.h5"));
    QFile f(bogus);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("this is not an HDF5 file\n");
    f.close();
    doc.openStats(bogus);
    QVERIFY(failed.wait(10000));
    QCOMPARE(failed.at(0).at(0).toString(), QStringLiteral("stats"));
    const QString message = failed.at(0).at(2).toString();
    QVERIFY2(message.startsWith(bogus), qPrintable(message));
    QVERIFY(!message.contains(QLatin1Char('\n')));
    QVERIFY(!doc.stats());

    QSignalSpy failedModel(&doc, &Document::loadFailed);
    doc.openModel(m_dir.filePath(QStringLiteral("no-such-model")));
    QVERIFY(failedModel.wait(10000));
    QCOMPARE(failedModel.at(0).at(0).toString(), QStringLiteral("model"));
    QVERIFY(!doc.config());
}

void TestViews::heatmapMetricSwitch()
{
    MatrixPlot* plot = m_heatmap->matrixPlot();
    m_heatmap->setMetric(RoutingMetric::Top1Share);
    QCOMPARE(plot->value(0, 1), 0.3);
    QCOMPARE(plot->value(1, 0), 0.6);
    m_heatmap->setMetric(RoutingMetric::WeightMass);
    QCOMPARE(plot->value(0, 0), 0.405);
    m_heatmap->setMetric(RoutingMetric::DomainShare, 1);
    QCOMPARE(m_heatmap->domain(), 1);
    QCOMPARE(plot->value(0, 2), 0.25);
    m_heatmap->setMetric(RoutingMetric::UniformDeviation);
    QCOMPARE(plot->value(1, 3), -1.0);
    // diverging metric: colour range centred on 0
    QCOMPARE(plot->colorMap()->dataRange().lower, -plot->colorMap()->dataRange().upper);
    m_heatmap->setMetric(RoutingMetric::TokenShare);
    QCOMPARE(plot->value(0, 3), 0.1);
}

void TestViews::heatmapClickSelectsExpertInTree()
{
    MatrixPlot* plot = m_heatmap->matrixPlot();
    plot->replot();
    const QPoint pixel = m_heatmap->cellCenter(1, 3);
    QVERIFY(plot->rect().contains(pixel));
    QCOMPARE(plot->cellAt(pixel), QPoint(3, 0));
    QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, pixel);
    QCOMPARE(m_doc->selection()->layer(), 1);
    QCOMPARE(m_doc->selection()->expert(), 3);
    const QModelIndex current = m_tree->tree()->currentIndex();
    QCOMPARE(current.data().toString(), QStringLiteral("expert 3"));
    QCOMPARE(current.data(ModelTreeModel::LayerRole).toInt(), 1);
    // the other views follow: correlation on layer 1, outlier bars of layer 1
    QCOMPARE(m_correlation->layer(), 1);
    QCOMPARE(m_domains->layer(), 1);

    // arrow keys move the selected cell
    QTest::keyClick(plot, Qt::Key_Left);
    QCOMPARE(m_doc->selection()->expert(), 2);
    QTest::keyClick(plot, Qt::Key_Down);
    QCOMPARE(m_doc->selection()->layer(), 2);
    QCOMPARE(m_doc->selection()->expert(), 2);
    QTest::keyClick(plot, Qt::Key_Down); // already the last MoE layer
    QCOMPARE(m_doc->selection()->layer(), 2);

    const QPoint other = m_heatmap->cellCenter(2, 0);
    QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, other);
    QCOMPARE(m_doc->selection()->layer(), 2);
    QCOMPARE(m_doc->selection()->expert(), 0);
    QCOMPARE(m_correlation->layer(), 2);
    QCOMPARE(m_tree->tree()->currentIndex().data(ModelTreeModel::LayerRole).toInt(), 2);
}

void TestViews::heatmapSortByValue()
{
    m_doc->selection()->select(1);
    m_heatmap->setSortedByValue(true);
    // layer 1 is already descending; layer 2 (selected next) puts the dead experts last too
    QCOMPARE(m_heatmap->expertAtColumn(0), 0);
    m_heatmap->setMetric(RoutingMetric::ProbMass);
    m_doc->selection()->select(2);
    QCOMPARE(m_heatmap->expertAtColumn(0), 0);
    QCOMPARE(m_heatmap->matrixPlot()->value(1, 3), 0.05);
    // reverse check with a metric where order differs: deviation is monotone in token share,
    // so select layer 1 and sort by its prob mass: {35, 30, 20, 15} descending = identity again;
    // clicking a sorted column still selects the right expert
    m_heatmap->matrixPlot()->replot();
    QTest::mouseClick(m_heatmap->matrixPlot(), Qt::LeftButton, Qt::NoModifier, m_heatmap->cellCenter(2, 1));
    QCOMPARE(m_doc->selection()->expert(), 1);
    m_heatmap->setSortedByValue(false);
    m_heatmap->setMetric(RoutingMetric::TokenShare);
}

void TestViews::tooltipsShowExactNumbers()
{
    const QString heat = m_heatmap->matrixPlot()->tooltipAt(0, 2); // layer 1, expert 2
    QVERIFY2(heat.contains(QStringLiteral("Layer 1, expert 2")), qPrintable(heat));
    QVERIFY(heat.contains(QStringLiteral("tokens routed: 40 of 100 (top-2)")));
    QVERIFY(heat.contains(QStringLiteral("top-1: 15")));
    QVERIFY(heat.contains(QStringLiteral("routing-weight mass: 19<")));
    QVERIFY(heat.contains(QStringLiteral("code: 25 tokens")));
    QVERIFY(!heat.contains(QStringLiteral("dead")));
    QVERIFY(m_heatmap->matrixPlot()->tooltipAt(1, 3).contains(QStringLiteral("never routed")));
    m_correlation->setLayer(1);
    const QString corr = m_correlation->matrixPlot()->tooltipAt(0, 1);
    QVERIFY2(corr.contains(QStringLiteral("tokens choosing both: 45")), qPrintable(corr));
    m_domains->setLayer(1);
    const QString dom = m_domains->matrixPlot()->tooltipAt(1, 2); // code, expert 2 of layer 1
    QVERIFY2(dom.contains(QStringLiteral("tokens: 25")) && dom.contains(QStringLiteral("share in domain: 0.25")),
             qPrintable(dom));
}

void TestViews::treeClickSelectsEverywhere()
{
    const QModelIndex source
        = m_tree->model()->indexFor(1, 2, QStringLiteral("model.layers.1.block_sparse_moe.experts.2.w2"));
    QVERIFY(source.isValid());
    const QModelIndex index = m_tree->proxy()->mapFromSource(source);
    m_tree->tree()->scrollTo(index);
    QTest::mouseClick(m_tree->tree()->viewport(), Qt::LeftButton, Qt::NoModifier,
                      m_tree->tree()->visualRect(index).center());
    QCOMPARE(m_doc->selection()->layer(), 1);
    QCOMPARE(m_doc->selection()->expert(), 2);
    QCOMPARE(m_doc->selection()->linear(), QStringLiteral("model.layers.1.block_sparse_moe.experts.2.w2"));
    // the outlier table follows
    const QModelIndex row = m_outliers->proxy()->mapToSource(m_outliers->table()->currentIndex());
    QCOMPARE(m_outliers->model()->linearAt(row.row())->name,
             std::string("model.layers.1.block_sparse_moe.experts.2.w2"));
}

void TestViews::correlationClustering()
{
    m_correlation->setLayer(1);
    m_correlation->setMeasure(CorrelationView::Measure::OutputCorrelation);
    QCOMPARE(m_correlation->order(), (std::vector<int64_t> {0, 1, 2, 3}));
    QCOMPARE(m_correlation->matrixPlot()->value(0, 2), double(0.9f));
    m_correlation->setClustered(true);
    QCOMPARE(m_correlation->order(), (std::vector<int64_t> {0, 2, 1, 3}));
    QCOMPARE(m_correlation->matrixPlot()->value(0, 1), double(0.9f)); // experts 0 × 2 now adjacent
    m_correlation->setMeasure(CorrelationView::Measure::CoactivationNormalized);
    QCOMPARE(m_correlation->valueAt(0, 1), 45.0 / std::sqrt(80.0 * 60.0));
    m_correlation->setClustered(false);
}

void TestViews::domainView()
{
    m_domains->setLayer(1);
    QCOMPARE(m_domains->matrixPlot()->value(1, 2), 0.25);
    m_domains->setMeasure(DomainView::Measure::Lift);
    QCOMPARE(m_domains->matrixPlot()->value(0, 0), 0.5 / 0.4);
    m_domains->setMeasure(DomainView::Measure::Share);
}

void TestViews::outlierBarsAndTable()
{
    m_doc->selection()->select(1);
    m_outliers->setBarMode(OutlierView::BarMode::MaxPerLayer);
    QCOMPARE(int(m_outliers->bars().size()), 3);
    QCOMPARE(m_outliers->bars()[0].second, 3.5);
    QCOMPARE(m_outliers->bars()[1].second, 12.75);
    QCOMPARE(m_outliers->bars()[2].second, 5.5);
    m_outliers->setBarMode(OutlierView::BarMode::MaxPerExpert);
    QCOMPARE(int(m_outliers->bars().size()), 4);
    QCOMPARE(m_outliers->bars()[3].second, 12.75);
    m_outliers->setBarMode(OutlierView::BarMode::LayerLinears);
    QCOMPARE(int(m_outliers->bars().size()), 2 + 8);
    m_outliers->setLogScale(true);
    m_outliers->setLogScale(false);
    // selecting a table row selects the linear everywhere
    const int row = m_outliers->model()->rowOf(QStringLiteral("model.layers.2.self_attn.q_proj"));
    const QModelIndex index = m_outliers->proxy()->mapFromSource(m_outliers->model()->index(row, 0));
    m_outliers->table()->scrollTo(index);
    QTest::mouseClick(m_outliers->table()->viewport(), Qt::LeftButton, Qt::NoModifier,
                      m_outliers->table()->visualRect(index).center());
    QCOMPARE(m_doc->selection()->layer(), 2);
    QCOMPARE(m_doc->selection()->linear(), QStringLiteral("model.layers.2.self_attn.q_proj"));
    QCOMPARE(m_tree->tree()->currentIndex().data(ModelTreeModel::LinearRole).toString(),
             QStringLiteral("model.layers.2.self_attn.q_proj"));
}

void TestViews::focusAloneDoesNotSelect()
{
    // Qt makes the first row current when a view without a current row gets focus: that must not
    // move the shared selection.
    Document doc;
    doc.setStats(std::make_shared<CalibStats>(m_stats), QStringLiteral("fixture"));
    OutlierView outliers(&doc);
    ModelTreeView tree(&doc);
    outliers.show();
    tree.show();
    QVERIFY(QTest::qWaitForWindowExposed(&outliers));
    doc.selection()->select(2, 1);
    outliers.table()->setFocus();
    tree.tree()->setFocus();
    QApplication::processEvents();
    QCOMPARE(doc.selection()->layer(), 2);
    QCOMPARE(doc.selection()->expert(), 1);
    QCOMPARE(doc.selection()->linear(), QString());
}

void TestViews::exportPngAndCsv()
{
    const QString png = m_dir.filePath(QStringLiteral("heatmap.png"));
    QVERIFY(m_heatmap->exportPng(png, 640, 400));
    QVERIFY(QFileInfo(png).size() > 1000);
    const QString pdf = m_dir.filePath(QStringLiteral("heatmap.pdf"));
    QVERIFY(m_heatmap->exportPdf(pdf));
    QVERIFY(QFileInfo(pdf).size() > 500);

    // heat map CSV: one row per (MoE layer, expert), columns straight from the stats
    const QString csv = m_dir.filePath(QStringLiteral("heatmap.csv"));
    QVERIFY(m_heatmap->exportCsv(csv));
    const QList<QStringList> rows = readCsv(csv);
    QCOMPARE(rows.size(), 1 + 8);
    const QStringList header = rows[0];
    const int cTokens = header.indexOf(QStringLiteral("expert_tokens"));
    const int cWeight = header.indexOf(QStringLiteral("expert_weight_mass"));
    const int cCode = header.indexOf(QStringLiteral("domain_tokens:code"));
    const int cDead = header.indexOf(QStringLiteral("dead"));
    QVERIFY(cTokens > 0 && cWeight > 0 && cCode > 0 && cDead > 0);
    for (int i = 1; i < rows.size(); ++i) {
        const int layer = rows[i][0].toInt();
        const int e = rows[i][1].toInt();
        const RouterStats& r = m_stats.layers[size_t(layer)].router;
        QCOMPARE(rows[i][cTokens].toLongLong(), r.expertTokens[size_t(e)]);
        QCOMPARE(rows[i][cWeight].toDouble(), r.expertWeightMass[size_t(e)]);
        QCOMPARE(rows[i][cCode].toLongLong(), r.domainTokens.at(1, e));
        QCOMPARE(rows[i][cDead].toInt(), r.expertTokens[size_t(e)] == 0 ? 1 : 0);
        QCOMPARE(rows[i].last().toDouble(), double(r.expertTokens[size_t(e)]) / 200.0);
    }

    // correlation CSV: floats written so that they read back exactly
    m_correlation->setLayer(1); // the selection is on layer 2: the user's choice of layer still sticks
    QCOMPARE(m_correlation->layer(), 1);
    const QString ccsv = m_dir.filePath(QStringLiteral("corr.csv"));
    QVERIFY(m_correlation->exportCsv(ccsv));
    const QList<QStringList> crows = readCsv(ccsv);
    QCOMPARE(crows.size(), 1 + 16);
    for (int i = 1; i < crows.size(); ++i) {
        const int a = crows[i][1].toInt(), b = crows[i][2].toInt();
        QCOMPARE(crows[i][3].toLongLong(), m_stats.layers[1].router.coactivation.at(a, b));
        QCOMPARE(crows[i][4].toFloat(), m_stats.layers[1].router.correlation.at(a, b));
    }

    // outlier CSV: every linear with its exact score
    const QString ocsv = m_dir.filePath(QStringLiteral("outliers.csv"));
    QVERIFY(m_outliers->exportCsv(ocsv));
    const QList<QStringList> orows = readCsv(ocsv);
    QCOMPARE(orows.size(), 1 + int(m_stats.linears.size()));
    for (size_t i = 0; i < m_stats.linears.size(); ++i) {
        const LinearStats& l = m_stats.linears[i];
        QCOMPARE(orows[int(i) + 1][0], QString::fromStdString(l.name));
        if (std::isnan(l.outlierScore))
            QCOMPARE(orows[int(i) + 1][7], QStringLiteral("nan"));
        else
            QCOMPARE(orows[int(i) + 1][7].toFloat(), l.outlierScore);
    }

    const QString dcsv = m_dir.filePath(QStringLiteral("domains.csv"));
    QVERIFY(m_domains->exportCsv(dcsv));
    QCOMPARE(readCsv(dcsv).size(), 1 + 8);
    QVERIFY(m_domains->exportPng(m_dir.filePath(QStringLiteral("domains.png"))));
    QVERIFY(m_outliers->exportPng(m_dir.filePath(QStringLiteral("outliers.png"))));
}

void TestViews::manyExpertsStayReadable()
{
    // 256 experts × 6 MoE layers, installed directly (no file): tick labels are thinned out, the
    // selection survives a sort, clustering 256 experts stays interactive.
    auto stats = std::make_shared<CalibStats>();
    const int64_t E = 256, L = 6;
    stats->numLayers = L;
    stats->layers.resize(size_t(L));
    for (int64_t l = 0; l < L; ++l) {
        LayerStats& layer = stats->layers[size_t(l)];
        layer.layer = l;
        layer.isMoe = true;
        RouterStats& r = layer.router;
        r.numExperts = E;
        r.topK = 8;
        r.tokens = 1000;
        r.domainTokens = Matrix<int64_t>(0, E);
        r.coactivation = Matrix<int64_t>(E, E);
        r.correlation = Matrix<float>(E, E);
        for (int64_t e = 0; e < E; ++e) {
            r.expertTokens.push_back((e * 37 + l * 11) % 61);
            r.expertTop1.push_back(r.expertTokens.back() / 2);
            r.expertWeightMass.push_back(double(r.expertTokens.back()) / 8.0);
            r.expertProbMass.push_back(double(e % 7));
            if (r.expertTokens.back() == 0)
                r.deadExperts.push_back(e);
            for (int64_t f = 0; f < E; ++f) {
                r.coactivation.at(e, f) = e == f ? r.expertTokens.back() : (e + f) % 5;
                r.correlation.at(e, f) = e == f ? 1.0f : float(((e % 16) == (f % 16)) ? 0.9 : 0.1);
            }
        }
        r.nextMoeLayer = l + 1 < L ? l + 1 : -1;
        r.transitions = Matrix<int64_t>(E, l + 1 < L ? E : 0);
        for (int64_t e = 0; e < E; ++e)
            for (const char* role : {"gate", "up", "down"})
                stats->linears.push_back(test::fixtureLinear(
                    "model.layers." + std::to_string(l) + ".mlp.experts." + std::to_string(e) + "." + role, l, e,
                    std::string("expert.") + role, 64, 32, r.expertTokens[size_t(e)], float(e % 13), 0));
    }
    validateStats(*stats);
    Document doc;
    RoutingHeatmapView heatmap(&doc);
    CorrelationView correlation(&doc);
    ModelTreeView tree(&doc);
    OutlierView outliers(&doc);
    QElapsedTimer loadTimer;
    loadTimer.start();
    heatmap.resize(1200, 500);
    heatmap.show();
    QVERIFY(QTest::qWaitForWindowExposed(&heatmap));
    doc.setStats(stats, QStringLiteral("synthetic"));
    QVERIFY2(loadTimer.elapsed() < 5000, qPrintable(QString::number(loadTimer.elapsed())));
    QCOMPARE(outliers.model()->rowCount(), int(L * E * 3));
    QCOMPARE(tree.model()->rowCount(tree.model()->index(5, 0)), 1); // MoE
    QCOMPARE(heatmap.matrixPlot()->cols(), int(E));
    QCOMPARE(heatmap.matrixPlot()->rows(), int(L));
    auto* ticker = dynamic_cast<QCPAxisTickerText*>(heatmap.matrixPlot()->xAxis->ticker().data());
    QVERIFY(ticker);
    QVERIFY(ticker->ticks().size() <= 32);
    doc.selection()->select(3, 200);
    heatmap.setSortedByValue(true);
    heatmap.matrixPlot()->replot();
    const QPoint pixel = heatmap.cellCenter(3, 200);
    QCOMPARE(heatmap.expertAtColumn(heatmap.matrixPlot()->cellAt(pixel).x()), 200);
    QElapsedTimer timer;
    timer.start();
    correlation.setMeasure(CorrelationView::Measure::OutputCorrelation);
    correlation.setClustered(true);
    QVERIFY2(timer.elapsed() < 5000, qPrintable(QString::number(timer.elapsed())));
    std::vector<int64_t> order = correlation.order();
    QCOMPARE(int(order.size()), int(E));
    // experts with equal e % 16 correlate 0.9: each group of 16 sits together
    for (int k = 0; k < int(E); k += 16)
        for (int m = 1; m < 16; ++m)
            QCOMPARE(order[size_t(k + m)] % 16, order[size_t(k)] % 16);
    std::sort(order.begin(), order.end());
    for (int64_t e = 0; e < E; ++e)
        QCOMPARE(order[size_t(e)], e);
}

void TestViews::reopenKeepsViewsConsistent()
{
    // replacing the stats while a linear is selected: the selection is cleared, every view rebuilds
    m_doc->selection()->select(1, 3, QStringLiteral("model.layers.1.block_sparse_moe.experts.3.w1"));
    CalibStats smaller = m_stats;
    smaller.linears.resize(2);
    m_doc->setStats(std::make_shared<const CalibStats>(smaller), QStringLiteral("smaller"));
    QCOMPARE(m_doc->selection()->layer(), -1);
    QCOMPARE(m_outliers->model()->rowCount(), 2);
    QCOMPARE(m_tree->model()->rowCount(), 3);
    QCOMPARE(m_heatmap->matrixPlot()->rows(), 2);
    m_doc->closeAll();
    QCOMPARE(m_outliers->model()->rowCount(), 0);
    QCOMPARE(m_heatmap->matrixPlot()->rows(), 0);
    QCOMPARE(m_correlation->matrixPlot()->rows(), 0);
    QVERIFY(!m_domains->hasDomains());
    QCOMPARE(m_doc->summary(), QStringLiteral("No model or stats open"));
}

void TestViews::cleanupTestCase()
{
    m_outliers.reset();
    m_domains.reset();
    m_correlation.reset();
    m_tree.reset();
    m_heatmap.reset();
    m_doc.reset();
}

QTEST_MAIN(TestViews)
#include "tst_views.moc"
