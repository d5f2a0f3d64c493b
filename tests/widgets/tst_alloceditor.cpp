// SPDX-License-Identifier: MIT
// The allocation editor (#12): PlanEditModel edits, bulk edits and undo/redo give exactly the
// expected per-linear settings and always equal expandPlan(plan, cfg); the budget numbers equal
// planSize() and hand-computed bytes of a tiny DeepSeek-shaped config; plans round-trip through the
// plan JSON; invalid plan files leave the plan untouched; heat-map multi-selection → bulk set; the
// item model, the gauge and the strategy panel driven by the real engine allocator.
#include "test_paths.h"
#include "alloc/allocationeditor.h"
#include "alloc/allocationitemmodel.h"
#include "alloc/bitscolors.h"
#include "alloc/budgetgauge.h"
#include "alloc/planeditmodel.h"
#include "alloc/rulestablemodel.h"
#include "alloc/strategypanel.h"
#include "plot/matrixplot.h"
#include "document.h"
#include "selection.h"
#include "statsfixture.h"
#include "views/routingheatmapview.h"

#include "moewb/alloc/allocate.h"
#include "moewb/plan/target_groups.h"
#include "moewb/core/error.h"

#include <QApplication>
#include <QFile>
#include <QItemSelectionModel>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>
#include <QUndoStack>

#include <memory>

using namespace moewb;

namespace {

// layer 0 dense (MLP 64), layers 1-2 MoE: 4 routed experts of width 16 + 1 shared expert (16);
// hidden 32, 2 heads of 16, vocab 64.
const char* kTinyDeepseek = R"({
  "architectures": ["DeepseekForCausalLM"], "model_type": "deepseek",
  "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
  "num_hidden_layers": 3, "num_attention_heads": 2, "num_key_value_heads": 2,
  "vocab_size": 64, "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
  "first_k_dense_replace": 1, "moe_layer_freq": 1, "max_position_embeddings": 64
})";

std::shared_ptr<const ModelConfig> tinyConfig()
{
    return std::make_shared<const ModelConfig>(parseConfigJson(kTinyDeepseek, "tiny.json"));
}

bool sameEntries(const std::vector<PlanEntry>& a, const std::vector<PlanEntry>& b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        const PlanEntry &x = a[i], &y = b[i];
        if (x.name != y.name || x.layer != y.layer || x.expert != y.expert || x.role != y.role
            || x.inFeatures != y.inFeatures || x.outFeatures != y.outFeatures || x.dropped != y.dropped
            || !(static_cast<const LinearSettings&>(x) == y)) {
            qWarning("entry %zu differs: %s", i, x.name.c_str());
            return false;
        }
    }
    return true;
}

bool sameSize(const PlanSize& a, const PlanSize& b)
{
    return a.linearBytes == b.linearBytes && a.modelBytes == b.modelBytes && a.quantParams == b.quantParams
        && a.averageBits == b.averageBits && a.effectiveBits == b.effectiveBits && a.nonzeroParams == b.nonzeroParams
        && a.density == b.density;
}

// The model's state is what a fresh expansion of its plan gives.
bool consistent(const PlanEditModel& m)
{
    const std::vector<PlanEntry> ref = expandPlan(m.plan(), *m.modelConfig());
    return sameEntries(m.entries(), ref) && sameSize(m.size(), planSize(ref, *m.modelConfig()));
}

std::vector<int> indicesWhere(const PlanEditModel& m, const std::function<bool(const PlanEntry&)>& pred)
{
    std::vector<int> out;
    for (size_t i = 0; i < m.entries().size(); ++i)
        if (pred(m.entries()[i]))
            out.push_back(int(i));
    return out;
}

int64_t bitsOf(const PlanEditModel& m, const std::string& name)
{
    const int i = m.entryIndex(name);
    return i < 0 ? -1 : m.entries()[size_t(i)].bits;
}

QString errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const Error& e) {
        return QString::fromStdString(e.what());
    }
    return QStringLiteral("(no error)");
}

void writeFile(const QString& path, const QByteArray& text)
{
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(text);
}

} // namespace

class TestAllocEditor : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void defaultPlanBytesByHand();
    void singleAndBulkEditsWithUndo();
    void rulesDefaultsAndOverrides();
    void dropsAndBreakdown();
    void sliderMergesIntoOneCommand();
    void saveLoadRoundTrip();
    void invalidPlanFileLeavesPlan();
    void itemModelTreeAndEdits();
    void rulesTableEdits();
    void gaugeMatchesEngine();
    void heatmapMultiSelectionBulkSet();
    void strategyPanelLiveSolve();
    void editorOpenSaveMessages();
    void pruningEditsAndGauge();
    void targetMarks();
    void strategyPanelRuntime();

private:
    AllocBackend engineBackend(std::shared_ptr<const ModelConfig> cfg, std::shared_ptr<const CalibStats> stats);

    QTemporaryDir m_dir;
    std::shared_ptr<const ModelConfig> m_cfg;
};

void TestAllocEditor::initTestCase()
{
    QVERIFY(m_dir.isValid());
    m_cfg = tinyConfig();
    QCOMPARE(m_cfg->numExperts, int64_t(4));
    QCOMPARE(m_cfg->sharedIntermediateSize, int64_t(16));
}

// Default plan (4 bits, group 128, so one group per row for these small in_features). Bytes per
// linear from docs/export-gptq.md ("What is written") by hand: qweight ceil(K*b/32)*N*4,
// qzeros ceil(K/G)*ceil(N*b/32)*4, scales ceil(K/G)*N*2, g_idx 4K.
//   attention 32x32: 512 + 16 + 64 + 128 = 720, 12 of them = 8640
//   dense gate/up K=32 N=64: 1024 + 32 + 128 + 128 = 1312; down K=64 N=32: 1024 + 16 + 64 + 256 = 1360
//   expert/shared gate/up K=32 N=16: 256 + 8 + 32 + 128 = 424; down K=16 N=32: 256 + 16 + 64 + 64 = 400
//   → 1248 per expert; 8 routed experts = 9984, 2 shared = 2496, dense 3984. Sum 25104.
// Fixed bf16: embed 2048 + lm_head 2048 + norms 3*64 + 32 + routers 2*128 = 4576 params = 9152 B.
void TestAllocEditor::defaultPlanBytesByHand()
{
    PlanEditModel m;
    QSignalSpy changed(&m, &PlanEditModel::planChanged);
    m.setModelConfig(m_cfg);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(m.entries().size(), size_t(12 + 3 + 8 * 3 + 2 * 3));
    QVERIFY(consistent(m));
    const PlanBreakdown b = m.breakdown();
    QCOMPARE(b.of(LinearKind::Attention).bytes, int64_t(8640));
    QCOMPARE(b.of(LinearKind::DenseMlp).bytes, int64_t(3984));
    QCOMPARE(b.of(LinearKind::RoutedExpert).bytes, int64_t(9984));
    QCOMPARE(b.of(LinearKind::SharedExpert).bytes, int64_t(2496));
    QCOMPARE(b.fixedBytes, int64_t(9152));
    const PlanSize s = m.size();
    QCOMPARE(s.linearBytes, int64_t(25104));
    QCOMPARE(s.modelBytes, int64_t(34256));
    QCOMPARE(s.quantParams, int64_t(33792));
    QCOMPARE(s.averageBits, 4.0);
    QCOMPARE(s.effectiveBits, 8.0 * 25104 / 33792);
    QCOMPARE(m.undoStack()->count(), 0);
}

void TestAllocEditor::singleAndBulkEditsWithUndo()
{
    PlanEditModel m;
    m.setModelConfig(m_cfg);
    const std::string q1 = "model.layers.1.self_attn.q_proj";
    const std::string e10 = "model.layers.1.mlp.experts.0.";

    // One linear to 8 bits: K=N=32 at 8 bits = 1024 + 32 + 64 + 128 = 1248 (+528).
    m.setBits({m.entryIndex(q1)}, 8);
    QCOMPARE(bitsOf(m, q1), int64_t(8));
    QCOMPARE(m.size().linearBytes, int64_t(25104 + 528));
    QCOMPARE(m.undoStack()->count(), 1);
    QVERIFY(consistent(m));

    // Bulk: every linear of expert 0 of layer 1 to 8 bits, one command. 8-bit bytes: gate/up
    // 512 + 16 + 32 + 128 = 688, down 512 + 32 + 64 + 64 = 672 → +800 over 4 bits.
    const std::vector<int> expert = indicesWhere(m, [](const PlanEntry& e) { return e.layer == 1 && e.expert == 0; });
    QCOMPARE(expert.size(), size_t(3));
    m.setBits(expert, 8);
    QCOMPARE(m.undoStack()->count(), 2);
    QCOMPARE(m.undoStack()->undoText(), QStringLiteral("Set 8 bits on 3 linears"));
    for (const char* r : {"gate_proj", "up_proj", "down_proj"})
        QCOMPARE(bitsOf(m, e10 + r), int64_t(8));
    QCOMPARE(bitsOf(m, "model.layers.1.mlp.experts.1.gate_proj"), int64_t(4));
    QCOMPARE(m.size().linearBytes, int64_t(25104 + 528 + 800));
    QCOMPARE(m.breakdown().of(LinearKind::RoutedExpert).bytes, int64_t(9984 + 800));
    QCOMPARE(m.size().averageBits, (33792.0 * 4 + 1024 * 4 + 1536 * 4) / 33792);
    QVERIFY(consistent(m));

    // Bulk over the whole layer 2 to 2 bits, then group size 32 on the same set.
    const std::vector<int> layer2 = indicesWhere(m, [](const PlanEntry& e) { return e.layer == 2; });
    m.setBits(layer2, 2);
    m.setGroupSize(layer2, 32);
    m.setSym(layer2, false);
    m.setMethod(layer2, "rtn");
    QCOMPARE(m.undoStack()->count(), 6);
    for (int i : layer2) {
        const PlanEntry& e = m.entries()[size_t(i)];
        QCOMPARE(e.bits, int64_t(2));
        QCOMPARE(e.groupSize, int64_t(32));
        QCOMPARE(e.sym, false);
        QCOMPARE(e.method, std::string("rtn"));
    }
    QVERIFY(consistent(m));
    // Setting what is already set pushes nothing.
    m.setBits(layer2, 2);
    QCOMPARE(m.undoStack()->count(), 6);

    // Undo back step by step: each undo restores exactly the previous per-linear bits.
    m.undoStack()->undo(); // method
    QCOMPARE(m.entries()[size_t(layer2[0])].method, std::string("gptq"));
    m.undoStack()->undo(); // sym
    m.undoStack()->undo(); // group size
    QCOMPARE(m.entries()[size_t(layer2[0])].groupSize, int64_t(128));
    QCOMPARE(m.entries()[size_t(layer2[0])].bits, int64_t(2));
    m.undoStack()->undo(); // layer 2 bits
    for (int i : layer2)
        QCOMPARE(m.entries()[size_t(i)].bits, int64_t(4));
    QVERIFY(consistent(m));
    m.undoStack()->undo(); // expert 0 bulk
    QCOMPARE(bitsOf(m, e10 + "down_proj"), int64_t(4));
    QCOMPARE(m.size().linearBytes, int64_t(25104 + 528));
    m.undoStack()->undo(); // q_proj
    QCOMPARE(bitsOf(m, q1), int64_t(4));
    QVERIFY(m.plan().overrides.empty());
    QCOMPARE(m.size().linearBytes, int64_t(25104));
    QVERIFY(consistent(m));
    // Redo everything.
    for (int i = 0; i < 6; ++i)
        m.undoStack()->redo();
    QCOMPARE(bitsOf(m, q1), int64_t(8));
    QCOMPARE(bitsOf(m, e10 + "up_proj"), int64_t(8));
    QCOMPARE(m.entries()[size_t(layer2[5])].method, std::string("rtn"));
    QVERIFY(consistent(m));

    // Clearing overrides falls back to the defaults, undoable as one command.
    m.clearOverrides(layer2);
    QCOMPARE(m.entries()[size_t(layer2[0])].bits, int64_t(4));
    QVERIFY(consistent(m));
    m.undoStack()->undo();
    QCOMPARE(m.entries()[size_t(layer2[0])].bits, int64_t(2));

    // Invalid values are refused without a command.
    const int before = m.undoStack()->count();
    QVERIFY(errorOf([&] { m.setBits(layer2, 5); }).contains("bits 5"));
    QVERIFY(errorOf([&] { m.setGroupSize(layer2, 20); }).contains("group size 20"));
    QCOMPARE(m.undoStack()->count(), before);
}

void TestAllocEditor::rulesDefaultsAndOverrides()
{
    PlanEditModel m;
    m.setModelConfig(m_cfg);
    const std::string down1 = "model.layers.1.mlp.experts.2.down_proj";
    m.setBits({m.entryIndex(down1)}, 8); // override wins over any rule

    PlanRule downs;
    downs.match = R"(.*\.experts\.\d+\.down_proj)";
    downs.set.bits = 3;
    m.insertRule(-1, downs);
    QCOMPARE(bitsOf(m, "model.layers.2.mlp.experts.0.down_proj"), int64_t(3));
    QCOMPARE(bitsOf(m, "model.layers.2.mlp.experts.0.up_proj"), int64_t(4));
    QCOMPARE(bitsOf(m, down1), int64_t(8));
    QVERIFY(consistent(m));

    PlanRule layer2;
    layer2.match = R"(model\.layers\.2\..*)";
    layer2.set.bits = 2;
    m.insertRule(-1, layer2);
    QCOMPARE(bitsOf(m, "model.layers.2.mlp.experts.0.down_proj"), int64_t(2)); // later rule wins
    m.moveRule(1, 0);
    QCOMPARE(m.plan().rules[0].match, layer2.match);
    QCOMPARE(bitsOf(m, "model.layers.2.mlp.experts.0.down_proj"), int64_t(3));
    QCOMPARE(bitsOf(m, "model.layers.2.self_attn.q_proj"), int64_t(2));
    QVERIFY(consistent(m));

    // A single override edit after rules still only touches its entry (and stays consistent).
    m.setBits({m.entryIndex("model.layers.2.self_attn.k_proj")}, 16);
    QCOMPARE(bitsOf(m, "model.layers.2.self_attn.k_proj"), int64_t(16));
    QVERIFY(consistent(m));

    PlanDefaults d;
    d.bits = 3;
    d.groupSize = 64;
    m.setDefaults(d);
    QCOMPARE(bitsOf(m, "model.layers.0.self_attn.q_proj"), int64_t(3));
    QCOMPARE(m.entries()[0].groupSize, int64_t(64));
    QVERIFY(consistent(m));

    PlanRule bad;
    bad.match = "(unclosed";
    bad.set.bits = 2;
    const int before = m.undoStack()->count();
    QVERIFY(errorOf([&] { m.insertRule(0, bad); }).contains("invalid regex '(unclosed'"));
    QVERIFY(errorOf([&] { m.setRule(0, bad); }).contains("invalid regex"));
    QCOMPARE(m.undoStack()->count(), before);
    QCOMPARE(m.plan().rules.size(), size_t(2));

    m.removeRule(0);
    QCOMPARE(bitsOf(m, "model.layers.2.self_attn.q_proj"), int64_t(3));
    QVERIFY(consistent(m));
    // Undo the whole sequence back to the default plan.
    while (m.undoStack()->canUndo())
        m.undoStack()->undo();
    QVERIFY(m.plan() == Plan{});
    QVERIFY(consistent(m));
    QCOMPARE(m.size().linearBytes, int64_t(25104));
}

void TestAllocEditor::dropsAndBreakdown()
{
    PlanEditModel m;
    m.setModelConfig(m_cfg);
    m.setExpertsDropped({{2, 3}}, true);
    QVERIFY(m.isExpertDropped(2, 3));
    QCOMPARE(m.breakdown().of(LinearKind::RoutedExpert).bytes, int64_t(9984 - 1248));
    QCOMPARE(m.size().quantParams, int64_t(33792 - 1536));
    QVERIFY(consistent(m));
    // Expert 0 of layer 1 at 8 bits: bitParams 4*32256 + 4*1536 over 32256 weights.
    m.setBits(indicesWhere(m, [](const PlanEntry& e) { return e.layer == 1 && e.expert == 0; }), 8);
    QCOMPARE(m.size().averageBits, (4.0 * 32256 + 4.0 * 1536) / 32256);
    QVERIFY(consistent(m));

    m.setLayerDropped(1, true); // MoE sub-layer: routed + shared experts, attention stays
    QVERIFY(m.isLayerDropped(1));
    QCOMPARE(m.breakdown().of(LinearKind::RoutedExpert).bytes, int64_t(3 * 1248)); // layer 2 minus expert 3
    QCOMPARE(m.breakdown().of(LinearKind::SharedExpert).bytes, int64_t(1248));
    QCOMPARE(m.breakdown().of(LinearKind::Attention).bytes, int64_t(8640));
    m.setBlockDropped(0, true); // dense block: attention and MLP
    QCOMPARE(m.breakdown().of(LinearKind::Attention).bytes, int64_t(8640 - 4 * 720));
    QCOMPARE(m.breakdown().of(LinearKind::DenseMlp).bytes, int64_t(0));
    QVERIFY(consistent(m));
    QCOMPARE(m.plan().droppedBlocks, std::vector<int64_t>{0});
    QCOMPARE(m.undoStack()->count(), 4);
    m.undoStack()->undo();
    m.undoStack()->undo();
    QVERIFY(m.plan().droppedLayers.empty());
    QCOMPARE(m.breakdown().of(LinearKind::DenseMlp).bytes, int64_t(3984));
    m.setExpertsDropped({{2, 3}, {1, 1}}, false); // only (2,3) was dropped: one command, one change
    QVERIFY(m.plan().droppedExperts.empty());
    QVERIFY(consistent(m));
    QVERIFY(errorOf([&] { m.setLayerDropped(0, true); }).contains("not a MoE layer"));
}

void TestAllocEditor::sliderMergesIntoOneCommand()
{
    PlanEditModel m;
    m.setModelConfig(m_cfg);
    for (int64_t bits : {3, 2, 8}) {
        Plan p;
        p.defaults.bits = bits;
        m.setPlanMerged(p, QStringLiteral("Solve %1 bits").arg(bits), 7);
    }
    QCOMPARE(m.undoStack()->count(), 1);
    QCOMPARE(m.undoStack()->undoText(), QStringLiteral("Solve 8 bits"));
    QCOMPARE(m.plan().defaults.bits, int64_t(8));
    Plan p;
    p.defaults.bits = 3;
    m.setPlanMerged(p, QStringLiteral("Solve again"), 8); // a new gesture: a new command
    QCOMPARE(m.undoStack()->count(), 2);
    m.undoStack()->undo();
    QCOMPARE(m.plan().defaults.bits, int64_t(8));
    m.undoStack()->undo();
    QCOMPARE(m.plan().defaults.bits, int64_t(4));
    QVERIFY(consistent(m));
}

void TestAllocEditor::saveLoadRoundTrip()
{
    PlanEditModel m;
    m.setModelConfig(m_cfg);
    m.setBits({0, 5, 17}, 8);
    m.setSym({3}, false);
    PlanRule r;
    r.match = ".*down_proj";
    r.set.bits = 3;
    r.set.groupSize = 32;
    m.insertRule(0, r);
    m.setExpertsDropped({{1, 2}}, true);
    m.setBlockDropped(0, true);
    const QString path = m_dir.filePath("roundtrip.plan.json");
    m.savePlanFile(path);
    QCOMPARE(m.planPath(), path);
    QVERIFY(m.undoStack()->isClean());

    PlanEditModel n;
    n.setModelConfig(m_cfg);
    n.loadPlanFile(path);
    QVERIFY(n.plan() == m.plan());
    QVERIFY(n.plan() == loadPlan(path.toStdString()));
    QVERIFY(sameEntries(n.entries(), m.entries()));
    QVERIFY(sameSize(n.size(), m.size()));
    QCOMPARE(n.planPath(), path);
    QCOMPARE(n.undoStack()->count(), 1);
    QCOMPARE(n.undoStack()->undoText(), QStringLiteral("Load plan roundtrip.plan.json"));
    n.undoStack()->undo();
    QVERIFY(n.plan() == Plan{});
}

void TestAllocEditor::invalidPlanFileLeavesPlan()
{
    PlanEditModel m;
    m.setModelConfig(m_cfg);
    m.setBits({1}, 3);
    const Plan before = m.plan();
    const int commands = m.undoStack()->count();
    QSignalSpy changed(&m, &PlanEditModel::planChanged);

    const QString garbage = m_dir.filePath("garbage.json");
    writeFile(garbage, "{ not json");
    QString msg = errorOf([&] { m.loadPlanFile(garbage); });
    QVERIFY2(msg.startsWith(garbage) && !msg.contains('\n'), qPrintable(msg));

    const QString unknown = m_dir.filePath("unknown.json");
    writeFile(unknown, R"({"format": "moewb-plan", "version": 1, "overrides": {"model.layers.9.self_attn.q_proj": {"bits": 8}}})");
    msg = errorOf([&] { m.loadPlanFile(unknown); });
    QVERIFY2(msg.contains("unknown module"), qPrintable(msg));

    const QString badRegex = m_dir.filePath("regex.json");
    writeFile(badRegex, R"({"format": "moewb-plan", "version": 1, "rules": [{"match": "(", "bits": 8}]})");
    msg = errorOf([&] { m.loadPlanFile(badRegex); });
    QVERIFY2(msg.contains("$.rules[0].match"), qPrintable(msg));

    const QString router = m_dir.filePath("router.json");
    writeFile(router, R"({"format": "moewb-plan", "version": 1, "overrides": {"model.layers.1.mlp.gate": {"bits": 8}}})");
    msg = errorOf([&] { m.loadPlanFile(router); });
    QVERIFY2(msg.contains("never quantized"), qPrintable(msg));

    msg = errorOf([&] { m.loadPlanFile(m_dir.filePath("missing.json")); });
    QVERIFY2(msg.contains("missing.json"), qPrintable(msg));

    QVERIFY(m.plan() == before);
    QCOMPARE(m.undoStack()->count(), commands);
    QCOMPARE(changed.count(), 0);
    QCOMPARE(m.planPath(), QString());
    QVERIFY(consistent(m));
}

AllocBackend TestAllocEditor::engineBackend(std::shared_ptr<const ModelConfig> cfg,
                                            std::shared_ptr<const CalibStats> stats)
{
    AllocBackend b;
    b.strategies = allocStrategies();
    b.solve = [cfg, stats](const AllocOptions& o) { return allocate(*cfg, *stats, o); };
    b.toPlan = [](const AllocResult& r, const AllocOptions& o) { return planFromAllocation(r, o); };
    b.budgetBytes = [cfg](const AllocOptions& o) { return budgetBytesFor(*cfg, o); };
    return b;
}

void TestAllocEditor::itemModelTreeAndEdits()
{
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    AllocationItemModel m(&plan);
    using K = AllocationItemModel::NodeKind;
    QCOMPARE(m.rowCount(), 3);
    const QModelIndex l0 = m.index(0, 0), l1 = m.index(1, 0);
    QCOMPARE(l0.data().toString(), QStringLiteral("layer 0 (dense)"));
    QCOMPARE(m.rowCount(l0), 2); // attention, MLP
    QCOMPARE(m.index(1, 0, l0).data().toString(), QStringLiteral("MLP"));
    QCOMPARE(m.rowCount(l1), 2); // attention, MoE
    const QModelIndex moe = m.index(1, 0, l1);
    QCOMPARE(moe.data(AllocationItemModel::KindRole).toInt(), int(K::Moe));
    QCOMPARE(m.rowCount(moe), 5); // 4 experts + shared; the router is not shown
    QCOMPARE(m.index(4, 0, moe).data().toString(), QStringLiteral("shared expert"));
    const QModelIndex ex2 = m.index(2, 0, moe);
    QCOMPARE(ex2.data().toString(), QStringLiteral("expert 2"));
    QCOMPARE(m.rowCount(ex2), 3);
    QCOMPARE(m.index(2, 0, ex2).data().toString(), QStringLiteral("down_proj"));
    QCOMPARE(m.index(2, AllocationItemModel::ShapeColumn, ex2).data().toString(), QStringLiteral("32 × 16"));
    QCOMPARE(m.index(2, AllocationItemModel::BytesColumn, ex2).data(Qt::EditRole).toLongLong(), 400LL);
    QCOMPARE(ex2.siblingAtColumn(AllocationItemModel::BytesColumn).data(Qt::EditRole).toLongLong(), 1248LL);
    QCOMPARE(m.index(0, AllocationItemModel::BytesColumn).data(Qt::EditRole).toLongLong(), 4 * 720LL + 3984);
    QCOMPARE(m.indexForExpert(1, 2), ex2);
    QCOMPARE(m.indexFor(1, 2, QStringLiteral("model.layers.1.mlp.experts.2.down_proj")), m.index(2, 0, ex2));
    QCOMPARE(m.entriesOf(ex2).size(), size_t(3));
    QCOMPARE(plan.entries()[size_t(m.entriesOf(ex2)[0])].name, std::string("model.layers.1.mlp.experts.2.gate_proj"));

    // Editing an aggregated row = one bulk command on every linear below it.
    QSignalSpy changed(&m, &QAbstractItemModel::dataChanged);
    const QModelIndex bits = ex2.siblingAtColumn(AllocationItemModel::BitsColumn);
    QVERIFY(m.setData(bits, 8));
    QVERIFY(changed.count() >= 1 && changed.count() <= 4); // expert, MoE, layer, top level: one per parent
    QCOMPARE(plan.undoStack()->count(), 1);
    for (int i : m.entriesOf(ex2))
        QCOMPARE(plan.entries()[size_t(i)].bits, int64_t(8));
    QCOMPARE(bits.data().toString(), QStringLiteral("8"));
    QCOMPARE(bits.data(Qt::BackgroundRole).value<QColor>(), bitsColor(8));
    QCOMPARE(moe.siblingAtColumn(AllocationItemModel::BitsColumn).data().toString(), QStringLiteral("mixed"));
    QVERIFY(!moe.siblingAtColumn(AllocationItemModel::BitsColumn).data(Qt::EditRole).isValid());
    // Weighted average of the MoE group (15 linears of 512 weights): 12 at 4 bits, expert 2's 3 at 8.
    QCOMPARE(moe.data(AllocationItemModel::AverageBitsRole).toDouble(), (12 * 4.0 + 3 * 8.0) / 15);
    QCOMPARE(moe.siblingAtColumn(AllocationItemModel::BitsColumn).data(Qt::BackgroundRole).value<QColor>(),
             bitsColor((12 * 4.0 + 3 * 8.0) / 15));
    // The whole layer row to 3 bits: one command, every linear of layer 1.
    QVERIFY(m.setData(l1.siblingAtColumn(AllocationItemModel::BitsColumn), 3));
    QCOMPARE(plan.undoStack()->count(), 2);
    for (const PlanEntry& e : plan.entries())
        QCOMPARE(e.bits, int64_t(e.layer == 1 ? 3 : 4));
    QVERIFY(m.setData(ex2.siblingAtColumn(AllocationItemModel::SymColumn), false));
    QCOMPARE(ex2.siblingAtColumn(AllocationItemModel::SymColumn).data().toString(), QStringLiteral("asym"));
    QVERIFY(!m.setData(bits, 5)); // refused, message kept
    QVERIFY(m.lastError().contains("bits 5"));
    QCOMPARE(plan.undoStack()->count(), 3);

    // Trimming check boxes: expert, MoE layer, block.
    QCOMPARE(ex2.data(Qt::CheckStateRole).toInt(), int(Qt::Checked));
    QVERIFY(m.flags(ex2) & Qt::ItemIsUserCheckable);
    QVERIFY(!(m.flags(m.index(0, 0, ex2)) & Qt::ItemIsUserCheckable));
    QVERIFY(m.setData(ex2, Qt::Unchecked, Qt::CheckStateRole));
    QVERIFY(plan.isExpertDropped(1, 2));
    QCOMPARE(ex2.data(Qt::CheckStateRole).toInt(), int(Qt::Unchecked));
    QCOMPARE(ex2.siblingAtColumn(AllocationItemModel::BytesColumn).data().toString(), QStringLiteral("dropped"));
    QVERIFY(m.setData(moe, Qt::Unchecked, Qt::CheckStateRole));
    QVERIFY(plan.isLayerDropped(1));
    QVERIFY(!m.index(1, 0, l0).data(Qt::CheckStateRole).isValid()); // a dense MLP cannot be layer-dropped
    QVERIFY(m.setData(l0, Qt::Unchecked, Qt::CheckStateRole));
    QVERIFY(plan.isBlockDropped(0));
    QCOMPARE(plan.undoStack()->count(), 6);
    QVERIFY(consistent(plan));
    while (plan.undoStack()->canUndo())
        plan.undoStack()->undo();
    QCOMPARE(bits.data().toString(), QStringLiteral("4"));
    QCOMPARE(ex2.data(Qt::CheckStateRole).toInt(), int(Qt::Checked));

    // A new model rebuilds the tree.
    auto mixtral = std::make_shared<const ModelConfig>(loadConfig((moewb::test::sourceDir() + QStringLiteral("/datasets/models/moewb-mixtral-8e-v2")).toStdString()));
    plan.setModelConfig(mixtral);
    QCOMPARE(m.rowCount(), 2);
    QCOMPARE(m.rowCount(m.index(1, 0, m.index(0, 0))), 8);
    QCOMPARE(m.index(0, 0, m.index(0, 0, m.index(1, 0, m.index(0, 0)))).data().toString(), QStringLiteral("w1 (gate)"));
}

void TestAllocEditor::rulesTableEdits()
{
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    RulesTableModel t(&plan);
    QCOMPARE(t.rowCount(), 0);
    PlanRule r;
    r.match = R"(.*\.experts\.\d+\.down_proj)";
    r.set.bits = 3;
    plan.insertRule(-1, r);
    QCOMPARE(t.rowCount(), 1);
    QCOMPARE(t.index(0, RulesTableModel::CountColumn).data().toInt(), 8); // 2 layers x 4 experts
    QCOMPARE(t.index(0, RulesTableModel::BitsColumn).data().toInt(), 3);
    QCOMPARE(t.index(0, RulesTableModel::GroupSizeColumn).data().toString(), QString()); // inherited

    QVERIFY(!t.setData(t.index(0, RulesTableModel::MatchColumn), QStringLiteral("([")));
    QVERIFY2(t.lastError().contains("invalid regex"), qPrintable(t.lastError()));
    QCOMPARE(plan.plan().rules[0].match, r.match);
    QCOMPARE(plan.undoStack()->count(), 1);

    QVERIFY(t.setData(t.index(0, RulesTableModel::MatchColumn), QStringLiteral(R"(.*\.(shared_experts|experts\.\d+)\.down_proj)")));
    QCOMPARE(t.index(0, RulesTableModel::CountColumn).data().toInt(), 10);
    QVERIFY(t.setData(t.index(0, RulesTableModel::GroupSizeColumn), QStringLiteral("32")));
    QVERIFY(t.setData(t.index(0, RulesTableModel::SymColumn), QStringLiteral("asym")));
    QVERIFY(!t.setData(t.index(0, RulesTableModel::BitsColumn), QStringLiteral("7")));
    QVERIFY(!t.setData(t.index(0, RulesTableModel::MethodColumn), QStringLiteral("awq")));
    QCOMPARE(plan.undoStack()->count(), 4);
    const PlanEntry& down = plan.entries()[size_t(plan.entryIndex("model.layers.2.mlp.shared_experts.down_proj"))];
    QCOMPARE(down.bits, int64_t(3));
    QCOMPARE(down.groupSize, int64_t(32));
    QCOMPARE(down.sym, false);
    QVERIFY(t.setData(t.index(0, RulesTableModel::BitsColumn), QString())); // clear: inherit the default
    QCOMPARE(plan.entries()[size_t(plan.entryIndex("model.layers.2.mlp.shared_experts.down_proj"))].bits, int64_t(4));
    QVERIFY(consistent(plan));
}

// The gauge shows exactly planSize(expandPlan(plan, cfg)) and, against the engine's budget, the
// delta; after a real strategy solve it shows the allocator's own size.
void TestAllocEditor::gaugeMatchesEngine()
{
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    BudgetGauge g(&plan);
    auto check = [&] {
        const PlanSize ref = planSize(expandPlan(plan.plan(), *m_cfg), *m_cfg);
        QVERIFY(sameSize(g.shownSize(), ref));
        int64_t sum = g.shownBreakdown().fixedBytes;
        for (const KindTotals& k : g.shownBreakdown().kinds)
            sum += k.bytes;
        QCOMPARE(sum, ref.modelBytes);
    };
    check();
    QCOMPARE(g.summaryText(), QStringLiteral("4.000 bits avg · %1 effective · 34.26 kB")
                                  .arg(8.0 * 25104 / 33792, 0, 'f', 3));
    QVERIFY(g.deltaText().isEmpty());
    plan.setBits(indicesWhere(plan, [](const PlanEntry& e) { return e.expert == 1; }), 8);
    check();
    plan.setExpertsDropped({{2, 0}}, true);
    check();
    PlanRule r;
    r.match = ".*q_proj";
    r.set.bits = 2;
    plan.insertRule(0, r);
    check();

    AllocOptions opt;
    opt.targetBits = 3.0;
    const int64_t budget = budgetBytesFor(*m_cfg, opt);
    g.setTarget(3.0, budget);
    QCOMPARE(g.overTarget(), plan.size().modelBytes > budget);
    QVERIFY(g.overTarget());
    QVERIFY2(g.deltaText().startsWith(QStringLiteral("+") + sizeText(plan.size().modelBytes - budget) + " over"),
             qPrintable(g.deltaText()));

    // A real allocation: the gauge equals the allocator's achieved size.
    auto stats = std::make_shared<const CalibStats>(test::fixtureStats());
    opt.strategy = "frequency";
    const AllocResult res = allocate(*m_cfg, *stats, opt);
    plan.setPlan(planFromAllocation(res, opt), QStringLiteral("frequency"));
    check();
    QVERIFY(sameSize(g.shownSize(), res.size));
    QVERIFY(!g.overTarget());
    QVERIFY(g.deltaText().contains("within"));
}

void TestAllocEditor::heatmapMultiSelectionBulkSet()
{
    Document doc;
    doc.setModel(std::const_pointer_cast<const ModelConfig>(m_cfg), QStringLiteral("tiny"));
    doc.setStats(std::make_shared<const CalibStats>(test::fixtureStats()), QStringLiteral("fixture.stats.h5"));
    RoutingHeatmapView heat(&doc);
    PlanEditModel plan;
    AllocationEditor editor(&doc, &plan);
    QCOMPARE(plan.modelConfig()->numLayers, int64_t(3)); // followed the document's model
    heat.resize(800, 500);
    heat.show();
    QVERIFY(QTest::qWaitForWindowExposed(&heat));
    MatrixPlot* plot = heat.matrixPlot();
    plot->replot();

    // plain click: one expert; ctrl+click adds; ctrl+click again removes; shift+click: rectangle
    QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, heat.cellCenter(1, 0));
    QCOMPARE(doc.selection()->experts(), (QList<QPair<int, int>>{{1, 0}}));
    QTest::mouseClick(plot, Qt::LeftButton, Qt::ControlModifier, heat.cellCenter(2, 3));
    QTest::mouseClick(plot, Qt::LeftButton, Qt::ControlModifier, heat.cellCenter(1, 2));
    QCOMPARE(doc.selection()->experts(), (QList<QPair<int, int>>{{1, 0}, {1, 2}, {2, 3}}));
    QTest::mouseClick(plot, Qt::LeftButton, Qt::ControlModifier, heat.cellCenter(1, 2));
    QCOMPARE(doc.selection()->experts(), (QList<QPair<int, int>>{{1, 0}, {2, 3}}));
    QCOMPARE(doc.selection()->layer(), 1);
    QCOMPARE(doc.selection()->expert(), 2);

    // "give these experts 8 bits": exactly their linears, one command
    QVERIFY(editor.setBitsOnHeatmapSelection(8));
    QCOMPARE(plan.undoStack()->count(), 1);
    QCOMPARE(plan.undoStack()->undoText(), QStringLiteral("Set 8 bits on 2 experts of the heat map"));
    for (const PlanEntry& e : plan.entries()) {
        const bool chosen = (e.layer == 1 && e.expert == 0) || (e.layer == 2 && e.expert == 3);
        QCOMPARE(e.bits, int64_t(chosen ? 8 : 4));
    }

    // shift+click from the anchor (the last plain or ctrl click: layer 1, expert 2) to (layer 2,
    // expert 1): the rectangle layers 1-2 × experts 1-2
    QTest::mouseClick(plot, Qt::LeftButton, Qt::ShiftModifier, heat.cellCenter(2, 1));
    QCOMPARE(doc.selection()->experts(), (QList<QPair<int, int>>{{1, 1}, {1, 2}, {2, 1}, {2, 2}}));
    QVERIFY(editor.setBitsOnHeatmapSelection(2));
    for (const PlanEntry& e : plan.entries()) {
        const bool eight = (e.layer == 1 && e.expert == 0) || (e.layer == 2 && e.expert == 3);
        QCOMPARE(e.bits, int64_t(e.expert == 1 || e.expert == 2 ? 2 : eight ? 8 : 4));
    }
    // ctrl+shift adds a rectangle to the selection
    QTest::mouseClick(plot, Qt::LeftButton, Qt::ControlModifier | Qt::ShiftModifier, heat.cellCenter(1, 3));
    QCOMPARE(doc.selection()->experts(), (QList<QPair<int, int>>{{1, 1}, {1, 2}, {1, 3}, {2, 1}, {2, 2}}));
    QVERIFY(editor.setDroppedOnHeatmapSelection(true));
    QVERIFY(plan.isExpertDropped(2, 2) && plan.isExpertDropped(1, 3) && !plan.isExpertDropped(2, 0));
    QCOMPARE(plan.plan().droppedExperts.size(), size_t(5));

    // shift+drag: a rubber band from (layer 1, expert 0) to (layer 2, expert 1), no panning
    const QCPRange xRange = plot->xAxis->range();
    QTest::mousePress(plot, Qt::LeftButton, Qt::ShiftModifier, heat.cellCenter(1, 0));
    QTest::mouseMove(plot, heat.cellCenter(2, 1));
    QTest::mouseRelease(plot, Qt::LeftButton, Qt::ShiftModifier, heat.cellCenter(2, 1));
    QCOMPARE(doc.selection()->experts(), (QList<QPair<int, int>>{{1, 0}, {1, 1}, {2, 0}, {2, 1}}));
    QCOMPARE(plot->xAxis->range().lower, xRange.lower);
    QVERIFY(plot->interactions().testFlag(QCP::iRangeDrag)); // panning is back for plain drags
    QVERIFY(consistent(plan));

    // The tree follows the linked selection, and a tree click selects everywhere.
    doc.selection()->select(2, 1);
    QCOMPARE(editor.tree()->currentIndex().data().toString(), QStringLiteral("expert 1"));
    editor.tree()->setCurrentIndex(editor.itemModel()->indexForLayer(1));
    QCOMPARE(doc.selection()->layer(), 1);
    QCOMPARE(doc.selection()->expert(), -1);

    // Bulk edits on the selected tree rows: expert 3 of layer 2 and the attention of layer 0.
    QItemSelectionModel* sm = editor.tree()->selectionModel();
    sm->clearSelection();
    sm->select(editor.itemModel()->indexForExpert(2, 3), QItemSelectionModel::Select | QItemSelectionModel::Rows);
    sm->select(editor.itemModel()->index(0, 0, editor.itemModel()->indexForLayer(0)),
               QItemSelectionModel::Select | QItemSelectionModel::Rows);
    const int before = plan.undoStack()->count();
    QVERIFY(editor.setBitsOnSelectedRows(3));
    QuantSettings g64;
    g64.groupSize = 64;
    QVERIFY(editor.setSettingsOnSelectedRows(g64, QStringLiteral("Group size 64")));
    QCOMPARE(plan.undoStack()->count(), before + 2);
    QCOMPARE(plan.undoStack()->undoText(), QStringLiteral("Group size 64 on 7 linears"));
    for (const PlanEntry& e : plan.entries()) {
        const bool chosen = (e.layer == 2 && e.expert == 3) || (e.layer == 0 && linearKind(e.role) == LinearKind::Attention);
        QCOMPARE(e.groupSize, int64_t(chosen ? 64 : 128));
        if (chosen)
            QCOMPARE(e.bits, int64_t(3));
    }
    QVERIFY(editor.clearOverridesOnSelectedRows());
    QCOMPARE(plan.entries()[0].bits, int64_t(4));
    QVERIFY(consistent(plan));

    // With nothing selected in the heat map the bulk action says so and changes nothing.
    doc.selection()->setExperts({});
    const int n = plan.undoStack()->count();
    QVERIFY(!editor.setBitsOnHeatmapSelection(8));
    QVERIFY(editor.lastError().contains("heat map"));
    QCOMPARE(plan.undoStack()->count(), n);
}

void TestAllocEditor::strategyPanelLiveSolve()
{
    auto stats = std::make_shared<const CalibStats>(test::fixtureStats());
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    BudgetGauge gauge(&plan);
    StrategyPanel panel(&plan, engineBackend(m_cfg, stats));
    connect(&panel, &StrategyPanel::targetChanged, &gauge, &BudgetGauge::setTarget);
    // "budget" needs an error table: disabled without one
    QVERIFY(panel.strategyBox()->findText("budget") >= 0);
    QVERIFY(!panel.strategyBox()->itemData(panel.strategyBox()->findText("budget"), Qt::ToolTipRole)
                 .toString()
                 .isEmpty());
    panel.setLive(false);
    panel.setStrategy(QStringLiteral("frequency"));
    panel.setTargetBits(3.0);
    QCOMPARE(gauge.targetBits(), 3.0);
    AllocOptions opt = panel.options();
    QCOMPARE(opt.strategy, std::string("frequency"));
    QCOMPARE(gauge.targetBytes(), budgetBytesFor(*m_cfg, opt));
    QCOMPARE(plan.undoStack()->count(), 0); // live off: nothing solved yet

    QSignalSpy solved(&panel, &StrategyPanel::solved);
    panel.solve();
    QVERIFY(solved.wait(10000));
    const AllocResult ref = allocate(*m_cfg, *stats, opt);
    QVERIFY(plan.plan() == planFromAllocation(ref, opt));
    QVERIFY(sameEntries(plan.entries(), expandPlan(planFromAllocation(ref, opt), *m_cfg)));
    QVERIFY(sameSize(gauge.shownSize(), ref.size));
    QCOMPARE(plan.undoStack()->count(), 1);

    // Live: a slider drag re-solves (debounced) and stays one undo step.
    panel.setLive(true);
    plan.setExpertsDropped({{1, 3}}, true); // trimming survives a re-solve
    const int before = plan.undoStack()->count();
    emit panel.slider()->sliderPressed();
    panel.slider()->setValue(350);
    QVERIFY(solved.wait(10000));
    panel.slider()->setValue(250);
    QVERIFY(solved.wait(10000));
    while (panel.isSolving())
        QVERIFY(solved.wait(10000));
    QCOMPARE(plan.undoStack()->count(), before + 1);
    opt.targetBits = 2.5;
    Plan want = planFromAllocation(allocate(*m_cfg, *stats, opt), opt);
    want.droppedExperts = {{1, 3}};
    QVERIFY(plan.plan() == want);
    QVERIFY(consistent(plan));
    plan.undoStack()->undo(); // the whole drag at once
    QCOMPARE(plan.undoStack()->index(), before);
    QVERIFY(plan.isExpertDropped(1, 3));

    // A solve that fails: its one-line error is shown, the plan stays.
    panel.setLive(false);
    const Plan kept = plan.plan();
    AllocBackend failing = engineBackend(m_cfg, stats);
    failing.solve = [](const AllocOptions&) -> AllocResult { throw InputError("alloc", "budget below all-2-bit"); };
    panel.setBackend(failing);
    QSignalSpy failed(&panel, &StrategyPanel::failed);
    panel.solve();
    QVERIFY(failed.wait(10000));
    QCOMPARE(panel.message(), QStringLiteral("alloc: budget below all-2-bit"));
    QVERIFY(plan.plan() == kept);
}

void TestAllocEditor::editorOpenSaveMessages()
{
    Document doc;
    doc.setModel(std::const_pointer_cast<const ModelConfig>(m_cfg), QStringLiteral("tiny"));
    PlanEditModel plan;
    AllocationEditor editor(&doc, &plan);
    QSignalSpy messages(&editor, &AllocationEditor::message);
    const QString bad = m_dir.filePath("editor-bad.json");
    writeFile(bad, "[]");
    QVERIFY(!editor.openPlan(bad));
    QCOMPARE(messages.count(), 1);
    QVERIFY(editor.lastError().startsWith(bad));
    QVERIFY(plan.plan() == Plan{});
    plan.setBits({2}, 16);
    const QString good = m_dir.filePath("editor.json");
    QVERIFY(editor.savePlan(good));
    QVERIFY(loadPlan(good.toStdString()) == plan.plan());
    QVERIFY(editor.undoAction()->isEnabled());
    editor.undoAction()->trigger();
    QCOMPARE(plan.entries()[2].bits, int64_t(4));
    QVERIFY(editor.openPlan(good));
    QCOMPARE(plan.entries()[2].bits, int64_t(16));
    QCOMPARE(editor.undoAction()->text(), QStringLiteral("&Undo Load plan editor.json"));

    // A plan model set up by its owner (session restore) is not reset by a new editor; a model
    // opened later in the document is followed with a fresh default plan.
    AllocationEditor second(&doc, &plan);
    QCOMPARE(plan.entries()[2].bits, int64_t(16));
    auto mixtral = std::make_shared<const ModelConfig>(loadConfig((moewb::test::sourceDir() + QStringLiteral("/datasets/models/moewb-mixtral-8e-v2")).toStdString()));
    doc.setModel(mixtral, QStringLiteral("mixtral"));
    QCOMPARE(plan.modelConfig()->arch, Arch::Mixtral);
    QVERIFY(plan.plan() == Plan{});
    QCOMPARE(plan.undoStack()->count(), 0);
    QCOMPARE(editor.itemModel()->rowCount(), 2);
}

// Pruning (#14): the Pruning column's edits, N:M patterns from rules overridden per linear, undo,
// and the nonzero-weight count against the engine's planSize and by hand.
void TestAllocEditor::pruningEditsAndGauge()
{
    PlanEditModel m;
    m.setModelConfig(m_cfg);
    Plan p = m.plan();
    PlanRule r;
    r.match = ".*experts\\.[0-3]\\..*";
    r.set.sparsity = 0.3; // the rule's pattern fixes it to 0.5
    r.set.pattern = std::string("2:4");
    p.rules.push_back(r);
    m.setPlan(p, QStringLiteral("prune rule"));
    QVERIFY(consistent(m));
    const std::vector<int> routed = indicesWhere(m, [](const PlanEntry& e) { return e.expert >= 0; });
    QCOMPARE(routed.size(), size_t(2 * 4 * 3));
    for (int i : routed)
        QCOMPARE(m.entries()[size_t(i)].sparsity, 0.5);
    // By hand: routed experts hold 2 layers · 4 experts · 3 linears · 32·16 = 12288 weights, half pruned.
    QCOMPARE(m.size().quantParams - m.size().nonzeroParams, int64_t(12288 / 2));

    // One linear back to unstructured: the rule's raw 0.3 applies again (round(0.3·in) per row).
    const int one = routed.front();
    QuantSettings un;
    un.pattern = std::string("unstructured");
    m.setSettings({one}, un, QStringLiteral("unstructured"));
    QVERIFY(consistent(m));
    QCOMPARE(m.entries()[size_t(one)].sparsity, 0.3);

    // The Pruning column: 25% on two linears, 4:8 on a shared expert, 0 on another routed one.
    const std::vector<int> shared = indicesWhere(m, [](const PlanEntry& e) { return e.role == LinearRole::SharedUp; });
    QVERIFY(!shared.empty());
    m.setPruning({routed[1], routed[2]}, "25%");
    m.setPruning({shared[0]}, "4:8");
    m.setPruning({routed[3]}, "0");
    QVERIFY(consistent(m));
    QCOMPARE(m.entries()[size_t(routed[1])].sparsity, 0.25);
    QCOMPARE(m.entries()[size_t(shared[0])].sparsity, 0.5);
    QCOMPARE(m.entries()[size_t(routed[3])].sparsity, 0.0);
    const PlanSize engine = planSize(expandPlan(m.plan(), *m_cfg), *m_cfg);
    QCOMPARE(m.size().nonzeroParams, engine.nonzeroParams);
    QVERIFY(m.size().density < 1.0);
    QCOMPARE(errorOf([&] { m.setPruning({routed[4]}, "lots"); }).contains("not a sparsity"), true);
    QCOMPARE(errorOf([&] { m.setPruning({routed[4]}, "3:2"); }).isEmpty(), false);
    QCOMPARE(errorOf([&] { m.setPruning({routed[4]}, "1.5"); }).isEmpty(), false);

    // Undo back to the rule alone, redo again: always what a fresh expansion gives.
    for (int k = 0; k < 4; ++k) {
        m.undoStack()->undo();
        QVERIFY(consistent(m));
    }
    for (int i : routed)
        QCOMPARE(m.entries()[size_t(i)].sparsity, 0.5);
    for (int k = 0; k < 4; ++k) {
        m.undoStack()->redo();
        QVERIFY(consistent(m));
    }
    QCOMPARE(m.entries()[size_t(routed[3])].sparsity, 0.0);

    // The tree shows it: a routed expert row of mixed pruning, the linear's text.
    AllocationItemModel tree(&m);
    QCOMPARE(tree.headerData(AllocationItemModel::SparsityColumn, Qt::Horizontal).toString(), QStringLiteral("Pruning"));
}

// #24: a plan made for vLLM; editing one routed expert's width breaks "one width per MoE layer":
// the gauge says so in one line and every linear of that layer's experts is marked, the other
// layer's are not; undo clears both.
void TestAllocEditor::targetMarks()
{
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    Plan p = plan.plan();
    p.target = PlanTarget::Vllm;
    plan.setPlan(p, QStringLiteral("target"));
    BudgetGauge gauge(&plan);
    AllocationItemModel tree(&plan);
    QVERIFY(gauge.targetText().isEmpty());
    const int e10 = plan.entryIndex("model.layers.1.mlp.experts.0.gate_proj");
    const int e13 = plan.entryIndex("model.layers.1.mlp.experts.3.down_proj");
    const int e20 = plan.entryIndex("model.layers.2.mlp.experts.0.gate_proj");
    QVERIFY(e10 >= 0 && e13 >= 0 && e20 >= 0);
    auto marked = [&](int entry) { return tree.data(tree.indexForEntry(entry), AllocationItemModel::OffTargetRole).toBool(); };
    QVERIFY(!marked(e10) && !marked(e13));
    plan.setBits({e10}, 3);
    QCOMPARE(gauge.targetText(), QStringLiteral("1 group that vLLM stores at one width has mixed widths (e.g. layer 1, "
                                                "routed experts: 3, 4 bits)"));
    QVERIFY(marked(e10) && marked(e13) && !marked(e20));
    QVERIFY(tree.data(tree.indexForLayer(1), AllocationItemModel::OffTargetRole).toBool());
    QVERIFY(tree.data(tree.indexForEntry(e13), Qt::BackgroundRole).isValid());
    plan.setBits({e20}, 2);
    QVERIFY(gauge.targetText().startsWith(QStringLiteral("2 groups that vLLM stores at one width")));
    plan.undoStack()->undo();
    plan.undoStack()->undo();
    QVERIFY(gauge.targetText().isEmpty());
    QVERIFY(!marked(e10) && !marked(e13));
}

// #24: the panel's "Made for" box: a vLLM solve keeps every group vLLM stores at one width at one
// width (frequency raises single experts, so the same solve for GPTQ mixes widths inside a layer),
// the plan records the runtime, and the box follows the open plan (a loaded plan, an undo).
void TestAllocEditor::strategyPanelRuntime()
{
    auto stats = std::make_shared<const CalibStats>(test::fixtureStats());
    PlanEditModel plan;
    plan.setModelConfig(m_cfg);
    StrategyPanel panel(&plan, engineBackend(m_cfg, stats));
    panel.setLive(false);
    panel.setStrategy(QStringLiteral("frequency"));
    panel.setTargetBits(2.5);
    QCOMPARE(panel.planTarget(), PlanTarget::Gptq);
    QSignalSpy solved(&panel, &StrategyPanel::solved);
    panel.solve();
    QVERIFY(solved.wait(10000));
    QCOMPARE(plan.plan().target, PlanTarget::Gptq);
    QVERIFY(!checkTarget(plan.entries(), PlanTarget::Vllm).empty()); // per-linear widths mix inside a layer

    panel.setPlanTarget(PlanTarget::Vllm);
    const AllocOptions opt = panel.options();
    QCOMPARE(opt.target, PlanTarget::Vllm);
    panel.solve();
    QVERIFY(solved.wait(10000));
    QCOMPARE(plan.plan().target, PlanTarget::Vllm);
    QVERIFY(checkTarget(plan.entries(), PlanTarget::Vllm).empty());
    QVERIFY(plan.plan() == planFromAllocation(allocate(*m_cfg, *stats, opt), opt));

    plan.undoStack()->undo(); // back to the GPTQ plan: the box follows, nothing is solved
    QCOMPARE(panel.planTarget(), PlanTarget::Gptq);
    QVERIFY(!panel.isSolving());
    Plan gguf = plan.plan();
    gguf.target = PlanTarget::Gguf;
    plan.setPlan(gguf, QStringLiteral("open"));
    QCOMPARE(panel.planTarget(), PlanTarget::Gguf);
    QCOMPARE(panel.options().target, PlanTarget::Gguf);

    // A llama.cpp mix cannot be made for vLLM: one line, the plan stays.
    panel.setPlanTarget(PlanTarget::Vllm);
    panel.setStrategy(QStringLiteral("gguf-q4_k_m"));
    QCOMPARE(panel.options().strategy, std::string("gguf-q4_k_m"));
    const Plan kept = plan.plan();
    QSignalSpy failed(&panel, &StrategyPanel::failed);
    panel.solve();
    QVERIFY(failed.wait(10000));
    QVERIFY2(panel.message().contains(QStringLiteral("llama.cpp mix")), qPrintable(panel.message()));
    QVERIFY(plan.plan() == kept);
}

QTEST_MAIN(TestAllocEditor)
#include "tst_alloceditor.moc"
