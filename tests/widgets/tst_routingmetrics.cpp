// SPDX-License-Identifier: MIT
// Routing metrics, sort order and average-linkage clustering on hand-made numbers.
#include "clustering.h"
#include "routingmetrics.h"
#include "statsfixture.h"

#include <QTest>

#include <cmath>

using namespace moewb;

class TestRoutingMetrics : public QObject {
    Q_OBJECT
private slots:
    void metricsOfOneRouter_data();
    void metricsOfOneRouter();
    void matrixSkipsDenseLayers();
    void undefinedValuesAreNan();
    void sortedOrderDescendingNanLast();
    void clusteringGroupsSimilarExperts();
    void clusteringTwoShuffledBlocks();
    void clusteringDegenerateInputs();
};

void TestRoutingMetrics::metricsOfOneRouter_data()
{
    QTest::addColumn<int>("metric");
    QTest::addColumn<int>("domain");
    QTest::addColumn<QVector<double>>("expected");
    QTest::newRow("token share") << int(RoutingMetric::TokenShare) << -1 << QVector<double> {0.4, 0.3, 0.2, 0.1};
    QTest::newRow("top-1 share") << int(RoutingMetric::Top1Share) << -1 << QVector<double> {0.5, 0.3, 0.15, 0.05};
    QTest::newRow("weight mass") << int(RoutingMetric::WeightMass) << -1
                                 << QVector<double> {0.405, 0.3025, 0.19, 0.1025};
    QTest::newRow("prob mass") << int(RoutingMetric::ProbMass) << -1 << QVector<double> {0.35, 0.3, 0.2, 0.15};
    QTest::newRow("domain prose") << int(RoutingMetric::DomainShare) << 0 << QVector<double> {0.5, 0.3, 0.15, 0.05};
    QTest::newRow("domain code") << int(RoutingMetric::DomainShare) << 1 << QVector<double> {0.3, 0.3, 0.25, 0.15};
    QTest::newRow("deviation") << int(RoutingMetric::UniformDeviation) << -1 << QVector<double> {0.6, 0.2, -0.2, -0.6};
}

void TestRoutingMetrics::metricsOfOneRouter()
{
    QFETCH(int, metric);
    QFETCH(int, domain);
    QFETCH(QVector<double>, expected);
    const RouterStats r = test::fixtureRouter1();
    for (int e = 0; e < 4; ++e)
        QVERIFY2(std::abs(routingValue(r, RoutingMetric(metric), e, domain) - expected[e]) < 1e-12,
                 qPrintable(QStringLiteral("expert %1: %2")
                                .arg(e)
                                .arg(routingValue(r, RoutingMetric(metric), e, domain))));
}

void TestRoutingMetrics::matrixSkipsDenseLayers()
{
    const CalibStats s = test::fixtureStats();
    const RoutingMatrix m = routingMatrix(s, RoutingMetric::TokenShare);
    QCOMPARE(m.layers, (std::vector<int64_t> {1, 2}));
    QCOMPARE(m.experts, int64_t(4));
    QCOMPARE(m.at(0, 0), 80.0 / 200.0);
    QCOMPARE(m.at(1, 1), 0.5);
    QCOMPARE(m.at(1, 3), 0.0);
    const RoutingMatrix dev = routingMatrix(s, RoutingMetric::UniformDeviation);
    QCOMPARE(dev.at(1, 2), -1.0); // dead expert
    QCOMPARE(dev.at(1, 0), 1.0);  // twice its fair share
    QCOMPARE(domainLift(s.layers[1].router, 0, 0), 0.5 / 0.4);
}

void TestRoutingMetrics::undefinedValuesAreNan()
{
    RouterStats r = test::fixtureRouter1();
    QVERIFY(std::isnan(routingValue(r, RoutingMetric::TokenShare, 4)));
    QVERIFY(std::isnan(routingValue(r, RoutingMetric::DomainShare, 0, 2)));
    QVERIFY(std::isnan(routingValue(r, RoutingMetric::DomainShare, 0, -1)));
    r.tokens = 0;
    QVERIFY(std::isnan(routingValue(r, RoutingMetric::Top1Share, 0)));
}

void TestRoutingMetrics::sortedOrderDescendingNanLast()
{
    const std::vector<double> v {0.1, std::nan(""), 0.5, 0.1, 0.3};
    QCOMPARE(sortedOrder(v), (std::vector<int64_t> {2, 4, 0, 3, 1}));
}

void TestRoutingMetrics::clusteringGroupsSimilarExperts()
{
    // experts {0, 2} and {1, 3} are similar: (0,2) merge at 0.1, then (1,3) at 0.2, then the rest
    const RouterStats r = test::fixtureRouter1();
    std::vector<double> sim(r.correlation.data.begin(), r.correlation.data.end());
    QCOMPARE(averageLinkageOrder(similarityToDistance(sim, 4), 4), (std::vector<int64_t> {0, 2, 1, 3}));
}

void TestRoutingMetrics::clusteringTwoShuffledBlocks()
{
    // six points on a line at positions p; blocks {1, 4, 5} near 0 and {0, 2, 3} near 10.
    // Distances |p_i - p_j|.
    const double p[6] = {10.0, 1.0, 12.5, 11.0, 0.0, 0.4};
    std::vector<double> d(36);
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j)
            d[size_t(i * 6 + j)] = std::abs(p[i] - p[j]);
    // steps: (4,5) 0.4; (1,{4,5}) avg(1, 0.6) = 0.8; (0,3) 1; ({0,3},2) avg(2.5, 1.5) = 2; blocks last.
    // Slot of a merge is the lower index: {1,4,5} lives in slot 1 with leaves [1, 4, 5];
    // {0,3,2} in slot 0 with leaves [0, 3, 2]; final [0, 3, 2, 1, 4, 5].
    QCOMPARE(averageLinkageOrder(d, 6), (std::vector<int64_t> {0, 3, 2, 1, 4, 5}));
}

void TestRoutingMetrics::clusteringDegenerateInputs()
{
    QCOMPARE(averageLinkageOrder({}, 0), std::vector<int64_t> {});
    QCOMPARE(averageLinkageOrder({0.0}, 1), std::vector<int64_t> {0});
    QCOMPARE(averageLinkageOrder({0.0, 1.0}, 2), std::vector<int64_t> {}); // wrong size
    const double nan = std::nan("");
    // NaN counts as the largest distance: 0 and 2 pair up first
    const std::vector<double> d {0, nan, 0.5, nan, 0, nan, 0.5, nan, 0};
    QCOMPARE(averageLinkageOrder(d, 3), (std::vector<int64_t> {0, 2, 1}));
}

QTEST_APPLESS_MAIN(TestRoutingMetrics)
#include "tst_routingmetrics.moc"
