// SPDX-License-Identifier: MIT
// The allocation editor (#12): PlanEditModel edits, bulk edits and undo/redo give exactly the
// expected per-linear settings and always equal expandPlan(plan, cfg); the budget numbers equal
// planSize() and hand-computed bytes of a tiny DeepSeek-shaped config; plans round-trip through the
// plan JSON; invalid plan files leave the plan untouched; heat-map multi-selection → bulk set; the
// item model, the gauge and the strategy panel driven by the real engine allocator.
#include "alloc/planeditmodel.h"
#include "document.h"
#include "selection.h"
#include "statsfixture.h"
#include "views/routingheatmapview.h"

#include "moewb/alloc/allocate.h"
#include "moewb/core/error.h"

#include <QApplication>
#include <QFile>
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
            || x.inFeatures != y.inFeatures || x.outFeatures != y.outFeatures || x.bits != y.bits
            || x.groupSize != y.groupSize || x.sym != y.sym || x.method != y.method || x.actOrder != y.actOrder
            || x.staticGroups != y.staticGroups || x.dropped != y.dropped) {
            qWarning("entry %zu differs: %s", i, x.name.c_str());
            return false;
        }
    }
    return true;
}

bool sameSize(const PlanSize& a, const PlanSize& b)
{
    return a.linearBytes == b.linearBytes && a.modelBytes == b.modelBytes && a.quantParams == b.quantParams
        && a.averageBits == b.averageBits && a.effectiveBits == b.effectiveBits;
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

private:
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
// linear from FORMATS.md §3.3 by hand: qweight ceil(K*b/32)*N*4, qzeros ceil(K/G)*ceil(N*b/32)*4,
// scales ceil(K/G)*N*2, g_idx 4K.
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

QTEST_MAIN(TestAllocEditor)
#include "tst_alloceditor.moc"
