// SPDX-License-Identifier: MIT
// Expert trimming (#10): selection from stats, the trimmed checkpoint's config and tensors, and
// forward equivalence on constructed models where the dropped part provably does nothing:
//  - an expert the router never picks (Mixtral: top-k then renormalize over the k, so it changes
//    nothing; Qwen2-MoE with norm_topk_prob false: softmax over ALL experts, so it changes nothing
//    only when its probability is exactly 0 — the construction gives it a logit of about -1e4);
//  - a MoE sub-layer whose expert down_proj are zero (Layer Drop);
//  - a block whose o_proj and down_proj are zero (Block Drop).
// Every trimmed checkpoint is also run through the NumPy reference forward (HF semantics, no
// moewb-specific keys), which must agree with moewb's forward on it.
#include "model/streamer.h"
#include "model/weights.h"
#include "moewb/plan/plan.h"
#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/model/runtime.h"
#include "moewb/trim/trim.h"
#include "testutil.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>

#include <cstring>
#include <functional>
#include <limits>
#include <set>

using namespace moewb;
using namespace moewb::test;

namespace {

constexpr double kTol = 2e-4; // fp32 forwards that differ only in summation order / reference in float64

QString generate(const QString& root, const QString& arch, const QString& name, const QStringList& extra = {})
{
    const QString out = root + "/" + name;
    runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "5", "--dtype",
                          "f32"}
              + extra);
    return out;
}

/// Copies a model directory, passing every tensor (as f32) through edit.
void rewriteModel(const QString& src, const QString& dst, const std::function<void(const std::string&, at::Tensor&)>& edit)
{
    QDir().mkpath(dst);
    for (const char* f : {"config.json", "tokenizer.json"})
        QFile::copy(src + "/" + f, dst + "/" + f);
    const Checkpoint ck = Checkpoint::open(src.toStdString());
    SafetensorsWriter w((dst + "/model.safetensors").toStdString());
    for (const std::string& n : ck.names())
        w.declare(n, ck.info(n).dtype, ck.info(n).shape);
    w.begin();
    for (const std::string& n : ck.names()) {
        at::Tensor t = loadTensor(ck, n, at::kFloat);
        edit(n, t);
        t = t.contiguous();
        w.write(n, t.data_ptr(), uint64_t(t.nbytes()));
    }
    w.commit();
}

bool contains(const std::string& s, const char* part)
{
    return s.find(part) != std::string::npos;
}

at::Tensor ids()
{
    at::Generator gen = at::detail::createCPUGenerator(11);
    return at::randint(0, 290, {2, 12}, gen, at::TensorOptions().dtype(at::kLong));
}

at::Tensor logitsOf(const QString& dir)
{
    StreamOptions opt;
    opt.dtype = at::kFloat;
    return Model(dir.toStdString()).logits(ids(), opt);
}

at::Tensor referenceLogits(const QString& dir, const QString& scratch)
{
    const at::Tensor x = ids();
    QJsonArray rows;
    for (int64_t b = 0; b < x.size(0); ++b) {
        QJsonArray row;
        for (int64_t t = 0; t < x.size(1); ++t)
            row.append(qint64(x[b][t].item<int64_t>()));
        rows.append(row);
    }
    const QString idsFile = scratch + "/ids.json", out = scratch + "/ref.f32";
    writeAll(idsFile, QJsonDocument(rows).toJson(QJsonDocument::Compact));
    runPython({sourcePath("tests/reference/reference_forward.py"), dir, idsFile, out});
    const QJsonArray shape = QJsonDocument::fromJson(readAll(out + ".json")).object()["shape"].toArray();
    std::vector<int64_t> dims;
    for (const auto& d : shape)
        dims.push_back(d.toInteger());
    at::Tensor t = at::empty(dims, at::kFloat);
    const QByteArray raw = readAll(out);
    if (int64_t(raw.size()) != int64_t(t.nbytes()))
        throw std::runtime_error("reference output has the wrong size");
    std::memcpy(t.data_ptr(), raw.constData(), size_t(raw.size()));
    return t;
}

double maxDiff(const at::Tensor& a, const at::Tensor& b)
{
    return (a - b).abs().max().item<double>();
}

QJsonObject readJson(const QString& path)
{
    return QJsonDocument::fromJson(readAll(path)).object();
}

/// Stats with chosen scores: expert mass = given per layer, cosines given per layer.
CalibStats fakeStats(const ModelConfig& cfg, const std::vector<std::vector<double>>& mass,
                     const std::vector<double>& cosMlp, const std::vector<double>& cosBlock)
{
    CalibStats s;
    s.numLayers = cfg.numLayers;
    s.hiddenSize = cfg.hiddenSize;
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        LayerStats ls;
        ls.layer = l;
        ls.cosine.mlp = cosMlp[size_t(l)];
        ls.cosine.block = cosBlock[size_t(l)];
        ls.cosine.tokens = 100;
        ls.isMoe = cfg.isMoeLayer(l);
        if (ls.isMoe) {
            ls.router.numExperts = cfg.numExperts;
            ls.router.topK = cfg.topK;
            ls.router.tokens = 100;
            ls.router.expertProbMass = mass[size_t(l)];
            ls.router.expertWeightMass = mass[size_t(l)];
        }
        s.layers.push_back(ls);
    }
    return s;
}

/// The error message of f (which must throw moewb::Error).
QString errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const Error& e) {
        return QString::fromStdString(e.what());
    }
    return QStringLiteral("<no error>");
}

} // namespace

class TestTrim : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        initRuntime(false);
    }

    void selection()
    {
        const QString dir = generate(m_tmp.path(), "mixtral", "sel"); // 3 layers, 8 experts, top-2
        const ModelConfig cfg = loadConfig(dir.toStdString());
        std::vector<std::vector<double>> mass = {
            {8, 7, 6, 5, 4, 3, 2, 1}, {1, 2, 3, 4, 5, 6, 7, 8}, {50, 50, 50, 50, 0.5, 50, 50, 0.25}};
        const CalibStats st = fakeStats(cfg, mass, {0.5, 0.9, 0.7}, {0.2, 0.8, 0.95});

        Plan per;
        selectExpertDrop(per, cfg, st, 6, false);
        const std::vector<DroppedExpert> wantPer = {{0, 6}, {0, 7}, {1, 0}, {1, 1}, {2, 4}, {2, 7}};
        QVERIFY(per.droppedExperts == wantPer);
        // Global: 6 lowest over all layers: 0.25, 0.5, then 1,1 (L0e7, L1e0), 2,2 (L0e6, L1e1).
        Plan glob;
        selectExpertDrop(glob, cfg, st, 6, true);
        QCOMPARE(glob.droppedExperts.size(), size_t(6));
        QVERIFY(trimLayout(cfg, glob, "t").numExperts == 6); // happens to be uniform: 2 per layer
        // Ties drop the higher index first; non-uniform counts are refused with a clear message.
        mass[2] = {50, 50, 50, 50, 0.5, 50, 50, 0.25};
        mass[0] = {0.1, 0.1, 0.1, 0.1, 9, 9, 9, 9};
        Plan glob2;
        selectExpertDrop(glob2, cfg, fakeStats(cfg, mass, {0.5, 0.9, 0.7}, {0.2, 0.8, 0.95}), 6, true);
        const QString e = errorOf([&] { trimLayout(cfg, glob2, "t"); });
        QVERIFY2(e.contains("different numbers of experts") && e.contains("4 in layer 0"), qPrintable(e));

        Plan lay;
        selectLayerDrop(lay, cfg, st, 2);
        QVERIFY((lay.droppedLayers == std::vector<int64_t>{1, 2}));
        Plan blk;
        selectBlockDrop(blk, cfg, st, 1);
        QVERIFY((blk.droppedBlocks == std::vector<int64_t>{2}));

        // Bad requests: one clear line each.
        Plan x;
        QVERIFY(errorOf([&] { selectExpertDrop(x, cfg, st, 9, false); }).contains("only 8 per layer"));
        QVERIFY(errorOf([&] { selectExpertDrop(x, cfg, st, 1, false); }).contains("routed to 2"));
        QVERIFY(errorOf([&] { selectLayerDrop(x, cfg, st, 4); }).contains("the model has 3"));
        QVERIFY(errorOf([&] { selectBlockDrop(x, cfg, st, 3); }).contains("at least one must stay"));
        CalibStats wrong = st;
        wrong.numLayers = 5;
        QVERIFY(errorOf([&] { selectBlockDrop(x, cfg, wrong, 1); }).contains("another model"));

        // A plan's overrides follow the re-indexing (for quantizing the trimmed model).
        Plan q;
        q.droppedBlocks = {0};
        for (int64_t l = 0; l < 3; ++l)
            q.droppedExperts.push_back({l, 6});
        QuantSettings three;
        three.bits = 3;
        q.overrides["model.layers.2.block_sparse_moe.experts.7.w2"] = three;
        q.overrides["model.layers.1.block_sparse_moe.experts.6.w1"] = three; // dropped expert
        q.overrides["model.layers.0.self_attn.q_proj"] = three;              // dropped block
        q.overrides["model.layers.1.self_attn.o_proj"] = three;
        const TrimLayout lay2 = trimLayout(cfg, q, "q");
        const ModelConfig tc = parseConfigJson(
            trimmedConfigJson(QString::fromUtf8(readAll(dir + "/config.json")).toStdString(), cfg, lay2, "c"), "c");
        QCOMPARE(tc.numLayers, int64_t(2));
        QCOMPARE(tc.numExperts, int64_t(7));
        const Plan qt = planForTrimmed(q, cfg, lay2, tc);
        QVERIFY(qt.droppedExperts.empty() && qt.droppedBlocks.empty());
        QCOMPARE(qt.overrides.size(), size_t(2));
        QVERIFY(qt.overrides.count("model.layers.1.block_sparse_moe.experts.6.w2"));
        QVERIFY(qt.overrides.count("model.layers.0.self_attn.o_proj"));
        validatePlan(qt, tc, "qt");
    }

    void badPlans()
    {
        const QString dir = generate(m_tmp.path(), "qwen2_moe", "badq"); // layer 1 dense, 12 experts, top-4
        const ModelConfig cfg = loadConfig(dir.toStdString());
        auto err = [&](const std::string& json) {
            return errorOf([&] { trimLayout(cfg, parsePlanJson(json, "p.json"), "p.json"); });
        };
        const std::string head = R"({"format": "moewb-plan", "version": 1, )";
        QVERIFY(err(head + R"("drop": {"layers": [7]}})").contains("layer 7 does not exist"));
        QVERIFY(err(head + R"("drop": {"layers": [1]}})").contains("dense layer"));
        QVERIFY(err(head + R"("drop": {"experts": [[0, 12]]}})").contains("expert 12 does not exist"));
        QVERIFY(err(head + R"("drop": {"blocks": [0, 1, 2]}})").contains("at least one must stay"));
        QVERIFY(err(head + R"("drop": {"experts": [[0,0],[0,1],[0,2],[0,3],[0,4],[0,5],[0,6],[0,7],[0,8)"
                           R"(],[2,0],[2,1],[2,2],[2,3],[2,4],[2,5],[2,6],[2,7],[2,8]]}})")
                    .contains("fewer than the 4"));
        QVERIFY(err(head + R"("drop": {"experts": [[0, 1]]}})").contains("different numbers of experts"));
        // Dropping the non-uniform layer's block makes the rest uniform again.
        QCOMPARE(err(head + R"("drop": {"experts": [[0, 1]], "blocks": [2]}})"), QStringLiteral("<no error>"));

        // The CLI: exit 1 and a single "moewb: error:" line; nothing written.
        writeAll(m_tmp.path() + "/bad.json", QByteArray::fromStdString(head + R"("drop": {"layers": [9]}})"));
        const QString out = m_tmp.path() + "/bad-out";
        const CliRun r = runCli(moewbCli(), {"trim", dir, "--plan", m_tmp.path() + "/bad.json", "--out", out});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.trimmed().count('\n') == 0 && r.err.contains("layer 9 does not exist"), r.err.constData());
        QVERIFY(!QFileInfo::exists(out));
        const CliRun u = runCli(moewbCli(), {"trim", dir, "--out", out});
        QCOMPARE(u.exitCode, 2);
    }

    void neverPickedExpert_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QStringList>("extra");
        QTest::newRow("mixtral") << "mixtral" << QStringList{};
        QTest::newRow("qwen2_moe norm_topk_prob=false") << "qwen2_moe" << QStringList{};
        QTest::newRow("qwen3_moe") << "qwen3_moe" << QStringList{};
    }

    /// Hidden dimension 0 is the constant 1 in every residual stream (embedding column 0 = 1, every
    /// o_proj / down_proj row 0 = 0), so a router row (-1e4, 0, ...) gives that expert a logit of
    /// about -1e4 for every token: never in the top-k, and softmax probability exactly 0 in fp32.
    /// Dropping it must leave the logits unchanged for top-k-then-renormalize (Mixtral, Qwen3) and
    /// for softmax-over-all (Qwen2-MoE, norm_topk_prob false) alike.
    void neverPickedExpert()
    {
        QFETCH(QString, arch);
        QFETCH(QStringList, extra);
        const QString name = "np-" + arch;
        const QString gen = generate(m_tmp.path(), arch, name + "-gen", extra);
        const QString dir = m_tmp.path() + "/" + name;
        const ModelConfig cfg = loadConfig(gen.toStdString());
        const int64_t victim = 2;
        std::set<std::string> routers;
        for (int64_t l = 0; l < cfg.numLayers; ++l)
            if (cfg.isMoeLayer(l))
                routers.insert(cfg.routerName(l) + ".weight");
        rewriteModel(gen, dir, [&](const std::string& n, at::Tensor& t) {
            if (n == "model.embed_tokens.weight")
                t.select(1, 0).fill_(1.0);
            else if (contains(n, "o_proj.weight") || contains(n, "down_proj.weight") || contains(n, ".w2.weight"))
                t.select(0, 0).zero_();
            else if (contains(n, "o_proj.bias"))
                t[0] = 0.0;
            else if (contains(n, "layernorm.weight"))
                t[0] = 1.0;
            else if (routers.count(n)) {
                t[victim].zero_();
                t[victim][0] = -1e4;
            }
        });
        Plan plan;
        for (int64_t l = 0; l < cfg.numLayers; ++l)
            if (cfg.isMoeLayer(l))
                plan.droppedExperts.push_back({l, victim});
        const QString out = dir + "-trim";
        const TrimReport rep = trimCheckpoint(dir.toStdString(), plan, out.toStdString(), false);
        QCOMPARE(rep.expertsAfter, cfg.numExperts - 1);
        QVERIFY(rep.paramsAfter < rep.paramsBefore);

        const ModelConfig tc = loadConfig(out.toStdString());
        QCOMPARE(tc.numExperts, cfg.numExperts - 1);
        const at::Tensor before = logitsOf(dir), after = logitsOf(out);
        const double d = maxDiff(before, after);
        qInfo("%s: max |logit diff| after dropping a never-picked expert = %.3g", qPrintable(arch), d);
        QVERIFY2(d < kTol, qPrintable(QString::number(d)));
        // The trimmed checkpoint as a HF loader sees it.
        const double r = maxDiff(after, referenceLogits(out, m_tmp.path()));
        QVERIFY2(r < kTol, qPrintable(QString::number(r)));
    }

    /// Dropping experts that ARE used: Mixtral renormalizes over the survivors' top-k; Qwen2-MoE
    /// with norm_topk_prob false soft-maxes over the survivors (their weights grow). Either way the
    /// checkpoint must mean the same to moewb and to the HF-semantics reference, and the router rows
    /// must be the kept experts' in ascending order.
    void usedExpertsDropped_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::newRow("mixtral") << "mixtral";
        QTest::newRow("qwen2_moe") << "qwen2_moe";
    }
    void usedExpertsDropped()
    {
        QFETCH(QString, arch);
        const QString dir = generate(m_tmp.path(), arch, "used-" + arch);
        const ModelConfig cfg = loadConfig(dir.toStdString());
        Plan plan;
        for (int64_t l = 0; l < cfg.numLayers; ++l)
            if (cfg.isMoeLayer(l))
                for (int64_t e : {int64_t(0), cfg.numExperts - 2 - l})
                    plan.droppedExperts.push_back({l, e});
        const QString out = dir + "-trim";
        trimCheckpoint(dir.toStdString(), plan, out.toStdString(), false);
        const QJsonObject c = readJson(out + "/config.json");
        QCOMPARE(c[arch == "mixtral" ? "num_local_experts" : "num_experts"].toInt(), int(cfg.numExperts - 2));
        // Router rows: kept experts in ascending order; expert j of the output = j-th kept.
        const Checkpoint a = Checkpoint::open(dir.toStdString()), b = Checkpoint::open(out.toStdString());
        const int64_t l = 0, dropped2 = cfg.numExperts - 2;
        const at::Tensor ra = loadTensor(a, cfg.routerName(l) + ".weight"), rb = loadTensor(b, cfg.routerName(l) + ".weight");
        QCOMPARE(rb.size(0), cfg.numExperts - 2);
        QVERIFY(at::equal(rb[0], ra[1]));
        QVERIFY(at::equal(rb[rb.size(0) - 1], ra[cfg.numExperts - 1]));
        const ModelConfig tc = loadConfig(out.toStdString());
        QVERIFY(at::equal(loadTensor(b, tc.expertLinear(l, dropped2 - 2, "down") + ".weight"),
                          loadTensor(a, cfg.expertLinear(l, dropped2 - 1, "down") + ".weight")));
        const at::Tensor got = logitsOf(out);
        const double r = maxDiff(got, referenceLogits(out, m_tmp.path()));
        QVERIFY2(r < kTol, qPrintable(QString::number(r)));
        QVERIFY(maxDiff(got, logitsOf(dir)) > 1e-3); // used experts: the model did change
        const Plan rec = loadPlan((out + "/moewb_plan.json").toStdString());
        QVERIFY(rec.droppedExperts == plan.droppedExperts);
    }

    void blockDrop_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("block");
        QTest::newRow("mixtral block 1") << "mixtral" << 1;
        QTest::newRow("qwen2_moe block 0 (dense layer 1 becomes 0)") << "qwen2_moe" << 0;
        QTest::newRow("qwen2_moe dense block 1") << "qwen2_moe" << 1;
    }
    /// A block with o_proj and every down_proj zero is the identity: dropping it (re-indexing the
    /// rest) must leave the logits unchanged, and the re-indexed config must load in the reference.
    void blockDrop()
    {
        QFETCH(QString, arch);
        QFETCH(int, block);
        const QString name = QString("blk-%1-%2").arg(arch).arg(block);
        const QString gen = generate(m_tmp.path(), arch, name + "-gen");
        const QString dir = m_tmp.path() + "/" + name;
        const std::string prefix = "model.layers." + std::to_string(block) + ".";
        rewriteModel(gen, dir, [&](const std::string& n, at::Tensor& t) {
            if (n.rfind(prefix, 0) == 0
                && (contains(n, "o_proj.") || contains(n, "down_proj.weight") || contains(n, ".w2.weight")))
                t.zero_();
        });
        const ModelConfig cfg = loadConfig(dir.toStdString());
        Plan plan;
        plan.droppedBlocks = {block};
        const QString out = dir + "-trim";
        const TrimReport rep = trimCheckpoint(dir.toStdString(), plan, out.toStdString(), false);
        QCOMPARE(rep.layersAfter, cfg.numLayers - 1);
        const ModelConfig tc = loadConfig(out.toStdString());
        QCOMPARE(tc.numLayers, cfg.numLayers - 1);
        int64_t i = 0;
        for (int64_t l = 0; l < cfg.numLayers; ++l)
            if (l != block)
                QCOMPARE(tc.isMoeLayer(i++), cfg.isMoeLayer(l));
        const at::Tensor after = logitsOf(out);
        const double d = maxDiff(logitsOf(dir), after);
        qInfo("%s: max |logit diff| after dropping identity block %d = %.3g", qPrintable(arch), block, d);
        QVERIFY2(d < kTol, qPrintable(QString::number(d)));
        const double r = maxDiff(after, referenceLogits(out, m_tmp.path()));
        QVERIFY2(r < kTol, qPrintable(QString::number(r)));
    }

    /// Layer Drop: the MoE sub-layer is encoded as zero down_proj (+ moewb_dropped_moe_layers so
    /// moewb skips it). On a model whose layer already outputs zero, nothing changes; on any model,
    /// moewb's skip and the reference's h + 0 agree.
    void layerDrop_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::newRow("mixtral") << "mixtral";
        QTest::newRow("qwen2_moe") << "qwen2_moe";
    }
    void layerDrop()
    {
        QFETCH(QString, arch);
        const QString dir = generate(m_tmp.path(), arch, "ld-" + arch);
        const ModelConfig cfg = loadConfig(dir.toStdString());
        Plan plan;
        plan.droppedLayers = {2};
        const QString out = dir + "-trim";
        const TrimReport rep = trimCheckpoint(dir.toStdString(), plan, out.toStdString(), false);
        QVERIFY(rep.activeParamsAfter < rep.paramsAfter);
        QCOMPARE(rep.paramsAfter, rep.paramsBefore);
        QVERIFY(!rep.notes.empty());
        const QJsonObject c = readJson(out + "/config.json");
        QCOMPARE(c["moewb_dropped_moe_layers"].toArray(), QJsonArray({2}));
        const ModelConfig tc = loadConfig(out.toStdString());
        QVERIFY(tc.isMoeDropped(2) && !tc.isMoeDropped(0));
        const at::Tensor got = logitsOf(out);
        const double r = maxDiff(got, referenceLogits(out, m_tmp.path()));
        QVERIFY2(r < kTol, qPrintable(QString::number(r)));

        // The same drop on a model whose layer-2 MoE already adds zero: logits unchanged.
        const QString zdir = m_tmp.path() + "/ldz-" + arch;
        rewriteModel(dir, zdir, [&](const std::string& n, at::Tensor& t) {
            if (n.rfind("model.layers.2.", 0) == 0 && (contains(n, "down_proj.weight") || contains(n, ".w2.weight")))
                t.zero_();
        });
        const QString zout = zdir + "-trim";
        trimCheckpoint(zdir.toStdString(), plan, zout.toStdString(), false);
        const double d = maxDiff(logitsOf(zdir), logitsOf(zout));
        QVERIFY2(d < kTol, qPrintable(QString::number(d)));

        // Trimming the trimmed model again (a block drop) keeps the MoE sub-layer dropped, re-indexed.
        Plan again;
        again.droppedBlocks = {0};
        const QString out2 = dir + "-trim2";
        trimCheckpoint(out.toStdString(), again, out2.toStdString(), false);
        QCOMPARE(readJson(out2 + "/config.json")["moewb_dropped_moe_layers"].toArray(), QJsonArray({1}));
    }

    /// The command line, from calibration statistics.
    void cli()
    {
        const QString dir = generate(m_tmp.path(), "mixtral", "cli");
        QString text;
        for (int i = 0; i < 200; ++i)
            text += QString("the quick brown fox %1 jumps over the lazy dog; ").arg(i * 7919 % 1000);
        writeAll(m_tmp.path() + "/text.txt", text.toUtf8());
        const QString stats = m_tmp.path() + "/cli.h5";
        CliRun r = runCli(moewbCli(), {"calibrate", dir, "--data", m_tmp.path() + "/text.txt", "--samples", "4",
                                       "--seq-len", "32", "--out", stats});
        QVERIFY2(r.exitCode == 0, r.err.constData());

        const QString out = m_tmp.path() + "/cli-k6";
        r = runCli(moewbCli(), {"trim", dir, "--stats", stats, "--keep-experts", "6", "--out", out, "--plan-out",
                                m_tmp.path() + "/k6.json", "--eval", m_tmp.path() + "/text.txt", "--ctx", "64"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        qInfo("%s", r.out.constData());
        QVERIFY(r.out.contains("trimmed") && r.out.contains("tokens/s"));
        QCOMPARE(readJson(out + "/config.json")["num_local_experts"].toInt(), 6);
        const Plan p = loadPlan((m_tmp.path() + "/k6.json").toStdString());
        QCOMPARE(p.droppedExperts.size(), size_t(2 * 3));
        QVERIFY(loadPlan((out + "/moewb_plan.json").toStdString()).droppedExperts == p.droppedExperts);
        // The recorded plan reproduces the same model.
        r = runCli(moewbCli(), {"trim", dir, "--plan", m_tmp.path() + "/k6.json", "--out", out + "-again"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(readAll(out + "-again/model.safetensors"), readAll(out + "/model.safetensors"));

        r = runCli(moewbCli(), {"trim", dir, "--stats", stats, "--drop-layers", "1", "--drop-blocks", "1", "--out",
                                m_tmp.path() + "/cli-lb"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(readJson(m_tmp.path() + "/cli-lb/config.json")["num_hidden_layers"].toInt(), 2);
        // Existing output without --force; too many experts kept.
        r = runCli(moewbCli(), {"trim", dir, "--stats", stats, "--keep-experts", "6", "--out", out});
        QCOMPARE(r.exitCode, 1);
        r = runCli(moewbCli(), {"trim", dir, "--stats", stats, "--keep-experts", "1", "--dry-run"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("routed to 2") && r.err.trimmed().count('\n') == 0, r.err.constData());
    }

    // NaN/Inf in a weight is reported with the tensor's name, not carried into statistics (#13).
    void nonFiniteWeightIsNamed()
    {
        const QString gen = generate(m_tmp.path(), "mixtral", "nan-gen");
        const QString dir = m_tmp.path() + "/nan";
        const std::string bad = "model.layers.1.block_sparse_moe.experts.2.w3.weight";
        rewriteModel(gen, dir, [&](const std::string& n, at::Tensor& t) {
            if (n == bad) {
                t.view({-1})[3] = std::numeric_limits<float>::quiet_NaN();
                t.view({-1})[7] = std::numeric_limits<float>::infinity();
            }
        });
        writeAll(m_tmp.path() + "/nan.txt", QByteArray("the quick brown fox jumps over the lazy dog. ").repeated(20));
        const CliRun r = runCli(moewbCli(), {"eval", dir, "--ppl", m_tmp.path() + "/nan.txt", "--ctx", "32"});
        QCOMPARE(r.exitCode, 1);
        // the last stderr line (after the progress lines) is the whole error
        QVERIFY2(r.err.trimmed().split('\n').last().startsWith("moewb: error: ")
                     && r.err.trimmed().split('\n').last().endsWith(
                         QByteArray::fromStdString("tensor '" + bad + "' contains 1 NaN and 1 Inf values")),
                 r.err.constData());
        const CliRun c = runCli(moewbCli(), {"calibrate", dir, "--data", m_tmp.path() + "/nan.txt", "--samples", "2",
                                             "--seq-len", "16", "--out", m_tmp.path() + "/nan.h5"});
        QCOMPARE(c.exitCode, 1);
        QVERIFY2(c.err.contains(QByteArray::fromStdString(bad)), c.err.constData());
        QVERIFY(!QFileInfo::exists(m_tmp.path() + "/nan.h5"));
    }

    // One plan that trims and quantizes: `quantize` (and `eval --plan`) trim into a scratch dir and
    // quantize the trimmed model with the re-indexed plan. Same bytes as trimming, then quantizing
    // the trimmed model with the same settings; the scratch dir is gone afterwards.
    void quantizeWithDrops()
    {
        const QString dir = generate(m_tmp.path(), "mixtral", "qd");
        const std::string settings = R"("defaults": {"bits": 4, "group_size": 16, "method": "rtn"}, )"
                                     R"("rules": [{"match": ".*self_attn.*", "bits": 8}])";
        const QString plan = m_tmp.path() + "/qd-plan.json", plain = m_tmp.path() + "/qd-plain.json";
        writeAll(plan, QByteArray::fromStdString(R"({"format": "moewb-plan", "version": 1, )" + settings
                                                 + R"(, "drop": {"experts": [[0, 1], [1, 1], [2, 1]], "blocks": [1]}})"));
        writeAll(plain, QByteArray::fromStdString(R"({"format": "moewb-plan", "version": 1, )" + settings + "}"));
        const QString scratchRoot = m_tmp.path() + "/qd-scratch";
        QVERIFY(QDir().mkpath(scratchRoot));
        const QByteArray oldTmp = qgetenv("TMPDIR");
        qputenv("TMPDIR", scratchRoot.toUtf8());
        const CliRun q = runCli(moewbCli(), {"quantize", dir, "--plan", plan, "--out", m_tmp.path() + "/qd-a"});
        qputenv("TMPDIR", oldTmp);
        QVERIFY2(q.exitCode == 0, q.err.constData());
        QVERIFY(q.err.contains("trimmed first"));
        QCOMPARE(QDir(scratchRoot).entryList(QDir::NoDotAndDotDot | QDir::AllEntries).size(), 0);

        CliRun r = runCli(moewbCli(), {"trim", dir, "--plan", plan, "--out", m_tmp.path() + "/qd-t"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        r = runCli(moewbCli(), {"quantize", m_tmp.path() + "/qd-t", "--plan", plain, "--out", m_tmp.path() + "/qd-b"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(readAll(m_tmp.path() + "/qd-a/model.safetensors"), readAll(m_tmp.path() + "/qd-b/model.safetensors"));
        QCOMPARE(readJson(m_tmp.path() + "/qd-a/config.json"), readJson(m_tmp.path() + "/qd-b/config.json"));
        QCOMPARE(readJson(m_tmp.path() + "/qd-a/config.json")["num_local_experts"].toInt(), 7);
        QCOMPARE(readJson(m_tmp.path() + "/qd-a/config.json")["num_hidden_layers"].toInt(), 2);
        // --out may not be the input model, even with --force
        r = runCli(moewbCli(), {"quantize", dir, "--plan", plan, "--out", dir, "--force"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY(QFileInfo::exists(dir + "/model.safetensors"));
    }
};

QTEST_APPLESS_MAIN(TestTrim)
#include "tst_trim.moc"
