// SPDX-License-Identifier: MIT
// The model tree and the outlier table: structure checked by QAbstractItemModelTester, values exact.
#include "test_paths.h"
#include "models/modeltreemodel.h"
#include "models/outliertablemodel.h"
#include "statsfixture.h"

#include "moewb/hfconfig/hf_config.h"

#include <QAbstractItemModelTester>
#include <QSortFilterProxyModel>
#include <QTest>

using namespace moewb;

namespace {
QModelIndex child(const QAbstractItemModel& m, const QModelIndex& parent, const QString& name)
{
    for (int r = 0; r < m.rowCount(parent); ++r) {
        const QModelIndex i = m.index(r, 0, parent);
        if (i.data().toString() == name)
            return i;
    }
    return {};
}

QString cell(const QModelIndex& i, int column)
{
    return i.sibling(i.row(), column).data().toString();
}
} // namespace

class TestItemModels : public QObject {
    Q_OBJECT
private slots:
    void treeFromStats();
    void treeMetricSwitch();
    void treeIndexForSelection();
    void treeFilterKeepsParentsAndChildren();
    void treeFromDemoConfig();
    void outlierTable();
    void outlierTableSortsByScore();
};

void TestItemModels::treeFromStats()
{
    const CalibStats stats = test::fixtureStats();
    ModelTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setSource(nullptr, &stats);
    QCOMPARE(model.rowCount(), 3);
    const QModelIndex l0 = model.index(0, 0);
    QCOMPARE(l0.data().toString(), QStringLiteral("layer 0"));
    QVERIFY(child(model, l0, QStringLiteral("attention")).isValid());
    QVERIFY(child(model, l0, QStringLiteral("MLP")).isValid());
    const QModelIndex l1 = model.index(1, 0);
    QCOMPARE(model.rowCount(l1), 2); // attention, MoE
    const QModelIndex moe = child(model, l1, QStringLiteral("MoE"));
    QCOMPARE(model.rowCount(moe), 5); // router + 4 experts
    QCOMPARE(model.index(0, 0, moe).data().toString(), QStringLiteral("router"));
    const QModelIndex e3 = child(model, moe, QStringLiteral("expert 3"));
    QVERIFY(e3.isValid());
    QCOMPARE(e3.data(ModelTreeModel::ExpertRole).toInt(), 3);
    QCOMPARE(e3.data(ModelTreeModel::LayerRole).toInt(), 1);
    const QModelIndex gate = child(model, e3, QStringLiteral("gate"));
    QCOMPARE(gate.data(ModelTreeModel::LinearRole).toString(),
             QStringLiteral("model.layers.1.block_sparse_moe.experts.3.w1"));
    QCOMPARE(cell(gate, ModelTreeModel::ShapeColumn), QStringLiteral("16 × 8"));
    QCOMPARE(gate.sibling(gate.row(), ModelTreeModel::ParametersColumn).data(ModelTreeModel::SortRole).toLongLong(),
             128LL);
    QCOMPARE(cell(gate, ModelTreeModel::MetricColumn), QStringLiteral("12.75"));
    // aggregates: the maximum outlier score and the summed parameters of the subtree
    QCOMPARE(cell(e3, ModelTreeModel::MetricColumn), QStringLiteral("12.75"));
    QCOMPARE(cell(l1, ModelTreeModel::MetricColumn), QStringLiteral("12.75"));
    QCOMPARE(l1.sibling(1, ModelTreeModel::ParametersColumn).data(ModelTreeModel::SortRole).toLongLong(),
             64LL + 32 + 4 * 256);
    // layer 2, expert 2 was not scored (NaN): empty cell
    const QModelIndex l2e2 = child(model, child(model, model.index(2, 0), QStringLiteral("MoE")),
                                   QStringLiteral("expert 2"));
    QCOMPARE(cell(child(model, l2e2, QStringLiteral("gate")), ModelTreeModel::MetricColumn), QString());
    QCOMPARE(cell(l2e2, ModelTreeModel::MetricColumn), QStringLiteral("3.25")); // its down projection: 1.25 + 2
}

void TestItemModels::treeMetricSwitch()
{
    const CalibStats stats = test::fixtureStats();
    ModelTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setSource(nullptr, &stats);
    model.setMetric(TreeMetric::Tokens);
    QCOMPARE(model.headerData(ModelTreeModel::MetricColumn, Qt::Horizontal).toString(), QStringLiteral("Tokens"));
    const QModelIndex moe = child(model, model.index(1, 0), QStringLiteral("MoE"));
    QCOMPARE(cell(child(model, moe, QStringLiteral("expert 0")), ModelTreeModel::MetricColumn), QStringLiteral("80"));
    QCOMPARE(cell(child(model, moe, QStringLiteral("expert 3")), ModelTreeModel::MetricColumn), QStringLiteral("20"));
    QCOMPARE(cell(model.index(1, 0), ModelTreeModel::MetricColumn), QStringLiteral("100"));
}

void TestItemModels::treeIndexForSelection()
{
    const CalibStats stats = test::fixtureStats();
    ModelTreeModel model;
    model.setSource(nullptr, &stats);
    QCOMPARE(model.indexFor(1, -1, {}).data().toString(), QStringLiteral("layer 1"));
    const QModelIndex e2 = model.indexFor(2, 2, {});
    QCOMPARE(e2.data().toString(), QStringLiteral("expert 2"));
    QCOMPARE(e2.parent().parent().data().toString(), QStringLiteral("layer 2"));
    const QModelIndex down = model.indexFor(1, 0, QStringLiteral("model.layers.1.block_sparse_moe.experts.0.w2"));
    QCOMPARE(down.data().toString(), QStringLiteral("down"));
    QVERIFY(!model.indexFor(7, -1, {}).isValid());
}

void TestItemModels::treeFilterKeepsParentsAndChildren()
{
    const CalibStats stats = test::fixtureStats();
    ModelTreeModel model;
    model.setSource(nullptr, &stats);
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setRecursiveFilteringEnabled(true);
    proxy.setAutoAcceptChildRows(true);
    proxy.setFilterRole(ModelTreeModel::FilterRole);
    QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    proxy.setFilterFixedString(QStringLiteral("layers.2.block_sparse_moe.experts.1.w2"));
    QCOMPARE(proxy.rowCount(), 1);
    const QModelIndex layer = proxy.index(0, 0);
    QCOMPARE(layer.data().toString(), QStringLiteral("layer 2"));
    const QModelIndex moe = proxy.index(0, 0, layer);
    const QModelIndex expert = proxy.index(0, 0, moe);
    QCOMPARE(expert.data().toString(), QStringLiteral("expert 1"));
    QCOMPARE(proxy.rowCount(expert), 1);
    proxy.setFilterFixedString(QStringLiteral("expert 3"));
    QCOMPARE(proxy.rowCount(), 2); // layers 1 and 2
    const QModelIndex e3 = proxy.index(0, 0, proxy.index(0, 0, proxy.index(0, 0)));
    QCOMPARE(e3.data().toString(), QStringLiteral("expert 3"));
    QCOMPARE(proxy.rowCount(e3), 2); // children of a matching row stay visible
}

void TestItemModels::treeFromDemoConfig()
{
    const ModelConfig cfg = loadConfig((moewb::test::sourceDir() + QStringLiteral("/datasets/models/moewb-mixtral-8e-v2")).toStdString());
    ModelTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setSource(&cfg, nullptr);
    QCOMPARE(model.rowCount(), 2);
    const QModelIndex moe = child(model, model.index(1, 0), QStringLiteral("MoE"));
    QCOMPARE(model.rowCount(moe), 1 + 8);
    const QModelIndex attention = child(model, model.index(1, 0), QStringLiteral("attention"));
    QCOMPARE(model.rowCount(attention), 4);
    // out × in: 4 key/value heads of 32 from hidden 256 (the experts' linears are square at 256)
    QCOMPARE(cell(child(model, attention, QStringLiteral("k_proj")), ModelTreeModel::ShapeColumn), QStringLiteral("128 × 256"));
    const QModelIndex e7 = child(model, moe, QStringLiteral("expert 7"));
    QCOMPARE(model.rowCount(e7), 3);
    QCOMPARE(cell(child(model, e7, QStringLiteral("down")), ModelTreeModel::ShapeColumn), QStringLiteral("256 × 256"));
    QCOMPARE(cell(e7, ModelTreeModel::MetricColumn), QString()); // no stats: no scores
}

void TestItemModels::outlierTable()
{
    const CalibStats stats = test::fixtureStats();
    OutlierTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setStats(&stats);
    QCOMPARE(model.rowCount(), int(stats.linears.size()));
    QCOMPARE(model.columnCount(), int(OutlierTableModel::ColumnCount));
    const int row = model.rowOf(QStringLiteral("model.layers.1.block_sparse_moe.experts.3.w1"));
    QVERIFY(row >= 0);
    QCOMPARE(model.index(row, OutlierTableModel::ScoreColumn).data().toDouble(), 12.75);
    QCOMPARE(model.index(row, OutlierTableModel::LayerColumn).data().toInt(), 1);
    QCOMPARE(model.index(row, OutlierTableModel::ExpertColumn).data().toInt(), 3);
    QCOMPARE(model.index(row, OutlierTableModel::TokensColumn).data().toInt(), 20);
    QCOMPARE(model.index(row, OutlierTableModel::ColumnColumn).data().toInt(), 3);
    QCOMPARE(model.index(0, OutlierTableModel::ExpertColumn).data().toString(), QString()); // not an expert
    model.setStats(nullptr);
    QCOMPARE(model.rowCount(), 0);
}

void TestItemModels::outlierTableSortsByScore()
{
    const CalibStats stats = test::fixtureStats();
    OutlierTableModel model;
    model.setStats(&stats);
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setSortRole(OutlierTableModel::SortRole);
    proxy.sort(OutlierTableModel::ScoreColumn, Qt::DescendingOrder);
    QCOMPARE(proxy.index(0, OutlierTableModel::NameColumn).data().toString(),
             QStringLiteral("model.layers.1.block_sparse_moe.experts.3.w1"));
    QCOMPARE(proxy.index(1, OutlierTableModel::NameColumn).data().toString(),
             QStringLiteral("model.layers.2.self_attn.q_proj"));
    // the unscored linear sorts last
    QCOMPARE(proxy.index(proxy.rowCount() - 1, OutlierTableModel::NameColumn).data().toString(),
             QStringLiteral("model.layers.2.block_sparse_moe.experts.2.w1"));
}

QTEST_GUILESS_MAIN(TestItemModels)
#include "tst_itemmodels.moc"
