// SPDX-License-Identifier: MIT
// The loss-aware cost model (#24, docs/allocation.md): the layer-streamed Fisher diagonal against
// one autograd backward through the whole model, a hand-computed cost of one small linear, the
// Fisher's round trip through stats.h5 and the error table, and the calibrate/plan CLI.
#include "alloc/linear_cost.h"
#include "calib/calibrator.h"
#include "calib/fisher.h"
#include "model/forward.h"
#include "model/streamer.h"
#include "model/weights.h"
#include "moewb/alloc/allocate.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/error.h"
#include "moewb/stats/stats_h5.h"
#include "quant/rtn.h"
#include "testutil.h"

#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>

using namespace moewb;
using namespace moewb::test;

namespace {

// Both sides run the same fp32 kernels on the same values; only the grouping of the per-layer
// backward (and the order in which gradient contributions are summed) differs.
constexpr double kMaxFisherRelDiff = 1e-5;

QString generate(const QString& root, const QString& arch)
{
    const QString out = root + "/" + arch;
    if (!QFileInfo::exists(out + "/config.json"))
        runPython({sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "3", "--tiny"});
    return out;
}

std::vector<at::Tensor> sequences(int64_t count, int64_t len, int64_t vocab)
{
    at::Generator gen = at::detail::createCPUGenerator(11);
    std::vector<at::Tensor> out;
    for (int64_t i = 0; i < count; ++i)
        out.push_back(at::randint(0, vocab, {len}, gen, at::TensorOptions().dtype(at::kLong)));
    return out;
}

std::vector<LinearStats> emptyRows(const ModelConfig& cfg)
{
    std::vector<LinearStats> rows;
    for (const LinearInfo& li : listLinears(cfg)) {
        LinearStats s;
        s.name = li.name;
        s.layer = li.layer;
        s.expert = li.expert;
        s.outFeatures = li.outFeatures;
        s.inFeatures = li.inFeatures;
        rows.push_back(s);
    }
    return rows;
}

/// The test's own gradient collection: every linear output's hook adds Σ_t g² into a map.
class WholeModelHooks : public ForwardObserver {
public:
    std::map<std::string, at::Tensor> sums;
    bool wantsLinearOutputs() const override { return true; }
    void linearOutput(int64_t, int64_t, const std::string& name, const at::Tensor& y) override
    {
        y.register_hook([this, name](const at::Tensor& g) {
            const at::Tensor s = g.reshape({-1, g.size(-1)}).to(at::kDouble).pow(2).sum(0);
            auto it = sums.find(name);
            if (it == sums.end())
                sums.emplace(name, s);
            else
                it->second = it->second + s;
        });
    }
};

/// One backward through the whole model: all layers in memory, all sequences in one batch.
std::map<std::string, at::Tensor> wholeModelFisher(const std::string& dir, const std::vector<at::Tensor>& seqs,
                                                   int64_t seed)
{
    at::AutoGradMode grad(true);
    const ModelConfig cfg = loadConfig(dir);
    const Checkpoint ckpt = Checkpoint::open(dir);
    const at::Tensor ids = at::stack(seqs);
    const int64_t B = ids.size(0), T = ids.size(1);
    at::Tensor x = at::embedding(loadEmbedding(cfg, ckpt, at::kFloat), ids).requires_grad_(true);
    const RopeTables rope = ropeTables(cfg, T, at::kFloat);
    WholeModelHooks hooks;
    std::vector<LayerWeights> layers;
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        layers.push_back(loadLayerWeights(cfg, ckpt, l, at::kFloat));
    at::Tensor h = x;
    for (const LayerWeights& w : layers)
        h = decoderLayer(cfg, w, h, rope, &hooks);
    const at::Tensor logits = finalLogits(cfg, loadHeadWeights(cfg, ckpt, at::kFloat), h);
    at::Tensor loss = at::zeros({}, at::kDouble);
    for (int64_t b = 0; b < B; ++b) {
        const at::Tensor y = sampleModelLabels(logits[b], seed, size_t(b));
        const at::Tensor lp = at::log_softmax(logits[b], -1);
        loss = loss - lp.gather(1, y.unsqueeze(1)).sum().to(at::kDouble);
    }
    loss.backward();
    for (auto& [name, s] : hooks.sums)
        s = s / double(B * T);
    return hooks.sums;
}

} // namespace

class TestFisher : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
    }

    // (a) Layer-streamed Fisher (one sequence per batch, so the batch bookkeeping is exercised)
    //     equals one whole-model backward, linear by linear.
    //     Both ways: recomputing each layer from its stored input, and through the graph the
    //     forward kept (StreamOptions::recordGraph).
    void streamedMatchesWholeModel_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<bool>("keepGraph");
        for (const bool keep : {false, true}) {
            const char* how = keep ? ", kept graph" : ", recompute";
            QTest::newRow(qPrintable(QString("qwen2_moe (shared expert, dense layer, q/k/v bias)") + how))
                << "qwen2_moe" << keep;
            QTest::newRow(qPrintable(QString("qwen3_moe (q/k norm)") + how)) << "qwen3_moe" << keep;
            QTest::newRow(qPrintable(QString("mixtral") + how)) << "mixtral" << keep;
        }
    }
    void streamedMatchesWholeModel()
    {
        QFETCH(QString, arch);
        QFETCH(bool, keepGraph);
        const std::string dir = generate(m_tmp.path(), arch).toStdString();
        const Model model(dir);
        const ModelConfig& cfg = model.config();
        const std::vector<at::Tensor> seqs = sequences(3, 16, cfg.vocabSize);
        LayerInputRecorder rec(cfg, keepGraph);
        StreamOptions so;
        so.maxBatchTokens = 16; // one sequence per batch
        so.recordGraph = keepGraph;
        model.run(seqs, so, LogitsSink(), &rec);
        QCOMPARE(rec.batches[0].output.requires_grad(), keepGraph);
        QCOMPARE(rec.batches.size(), size_t(3));
        std::vector<LinearStats> rows = emptyRows(cfg);
        QCOMPARE(fisherBackward(model, rec, 5, rows), int64_t(3 * 16));

        const std::map<std::string, at::Tensor> ref = wholeModelFisher(dir, seqs, 5);
        int64_t compared = 0, quantizable = 0;
        for (const LinearStats& r : rows) {
            QCOMPARE(int64_t(r.fisher.size()), r.outFeatures);
            const auto it = ref.find(r.name);
            const at::Tensor got = at::tensor(at::ArrayRef<float>(r.fisher)).to(at::kDouble);
            if (it == ref.end()) { // no token reached it (an expert nobody chose): F = 0
                QVERIFY2(got.abs().max().item<double>() == 0.0, r.name.c_str());
                continue;
            }
            const double scale = it->second.abs().max().item<double>();
            const double diff = (got - it->second).abs().max().item<double>();
            QVERIFY2(scale > 0.0, r.name.c_str());
            QVERIFY2(diff <= kMaxFisherRelDiff * scale,
                     qPrintable(QString::fromStdString(r.name) + ": " + QString::number(diff / scale)));
            ++compared;
        }
        for (const LinearInfo& li : listLinears(cfg))
            quantizable += isQuantizableRole(li.role) ? 1 : 0;
        QVERIFY2(compared >= quantizable / 2, "too few linears saw a gradient");
    }

    // (b) The labels come from the model's softmax, per (seed, sequence), independent of batching.
    void labelsFollowTheModel()
    {
        const at::Tensor logits = at::log(at::tensor({0.0f, 0.0f, 1.0f, 0.0f})).unsqueeze(0).repeat({50, 1});
        const at::Tensor y = sampleModelLabels(logits, 1, 0);
        QVERIFY(at::equal(y, at::full({50}, 2, at::kLong)));
        const at::Tensor flat = at::zeros({4000, 2});
        const at::Tensor a = sampleModelLabels(flat, 1, 3), b = sampleModelLabels(flat, 1, 3);
        QVERIFY(at::equal(a, b));
        const double mean = a.to(at::kDouble).mean().item<double>();
        QVERIFY2(std::abs(mean - 0.5) < 0.05, qPrintable(QString::number(mean))); // 7 sigma
        QVERIFY(!at::equal(a, sampleModelLabels(flat, 1, 4)));

        // The row scan draws what inverting the fp64 cumulative sum at the same uniforms draws
        // (generator seeded as in fisher.cpp: seed·0x9E37… + sequence·0xBF58… + 1).
        const at::Tensor rnd = at::randn({300, 97}, at::detail::createCPUGenerator(11)) * 3;
        const at::Tensor probs = at::softmax(rnd, -1);
        const uint64_t s = uint64_t(5) * 0x9E3779B97F4A7C15ull + uint64_t(2) * 0xBF58476D1CE4E5B9ull + 1;
        const at::Tensor cdf = probs.to(at::kDouble).cumsum(-1);
        const at::Tensor u = at::rand({300, 1}, at::detail::createCPUGenerator(s), at::kDouble) * cdf.narrow(-1, 96, 1);
        const at::Tensor want = at::searchsorted(cdf, u, false, true).squeeze(1).clamp_max(96);
        QVERIFY(at::equal(sampleModelLabels(rnd, 5, 2), want));
    }

    // (c) One linear by hand. W rows [0, 1, 2, 4] and [-3, 0, 0, 3], one group, 2-bit asymmetric RTN:
    //     row 0: scale 4/3, zero 0 → [0, 4/3, 8/3, 4], ΔW = [0, -1/3, -2/3, 0];
    //     row 1: scale 2, zero round(1.5) = 2 → codes [0, 2, 2, 3] → [-4, 0, 0, 2], ΔW = [1, 0, 0, 1].
    //     E[x²] = [1, 3, 0.5, 2]: Σ_j ΔW² E[x²] = 1/9·3 + 4/9·0.5 = 5/9 (row 0) and 1 + 2 = 3 (row 1).
    //     F = [2, 0.5]: cost = ½ (2 · 5/9 + 0.5 · 3) = 47/36; proxy (no F) = 5/9 + 3 = 32/9.
    void handComputedCost()
    {
        const at::Tensor w = at::tensor({0.0f, 1.0f, 2.0f, 4.0f, -3.0f, 0.0f, 0.0f, 3.0f}).view({2, 4});
        const at::Tensor ex2 = at::tensor({1.0, 3.0, 0.5, 2.0});
        const at::Tensor f = at::tensor({2.0, 0.5});
        // RTN runs in fp32 (4/3 is rounded): relative 1e-6 is far below any wrong term (≥ 1/36).
        const double fisher = weightedRtnError(w, 2, -1, 0.5 * f, ex2), proxy = weightedRtnError(w, 2, -1, {}, ex2);
        QVERIFY2(std::abs(fisher - 47.0 / 36.0) < 1e-6, qPrintable(QString::number(fisher, 'g', 12)));
        QVERIFY2(std::abs(proxy - 32.0 / 9.0) < 1e-6, qPrintable(QString::number(proxy, 'g', 12)));
        QCOMPARE(weightedRtnError(w, 16, -1, f, ex2), 0.0);
    }

    // (d) calibrate --fisher: the Fisher lands in stats.h5 and comes back unchanged; the budget error
    //     table then predicts ½ Σ F Σ ΔW² E[x²] per linear and keeps its cost model through JSON.
    void statsRoundTripAndCostTable()
    {
        const std::string dir = generate(m_tmp.path(), "qwen3_moe").toStdString();
        CalibTokens tokens;
        for (int i = 0; i < 200; ++i)
            tokens.ids.push_back(int32_t((i * 37) % 290));
        CalibrateOptions opt;
        opt.samples = 4;
        opt.seqLen = 32;
        opt.fisher = true;
        opt.seed = 9;
        opt.created = "2026-01-01T00:00:00Z";
        const CalibStats st = calibrateTokens(dir, tokens, opt);
        QVERIFY(st.hasFisher());
        QCOMPARE(st.fisher.tokens, int64_t(4 * 32));
        QCOMPARE(st.fisher.seed, int64_t(9));
        const QString path = m_tmp.path() + "/fisher.h5";
        writeStats(st, path.toStdString());
        const CalibStats back = readStats(path.toStdString());
        QVERIFY(back == st);
        QVERIFY(back.hasFisher());

        CalibrateOptions plain = opt;
        plain.fisher = false;
        const CalibStats noFisher = calibrateTokens(dir, tokens, plain);
        writeStats(noFisher, (m_tmp.path() + "/plain.h5").toStdString());
        const CalibStats plainBack = readStats((m_tmp.path() + "/plain.h5").toStdString());
        QVERIFY(!plainBack.hasFisher());
        QVERIFY(plainBack.linears.front().fisher.empty());

        const ModelConfig cfg = loadConfig(dir);
        const ErrorTable t = measureErrors(dir, cfg, st, 128, {2, 3, 4, 8});
        QVERIFY(t.costModel == CostModel::Fisher);
        QVERIFY(measureErrors(dir, cfg, noFisher, 128, {2, 4}).costModel == CostModel::Proxy);
        QVERIFY_EXCEPTION_THROWN(measureErrors(dir, cfg, noFisher, 128, {2}, {}, CostModel::Fisher), InputError);
        // One routed expert's down projection recomputed here from its pieces.
        const std::string name = cfg.expertLinear(1, 2, "down");
        const LinearStats* ls = nullptr;
        for (const LinearStats& r : st.linears)
            ls = r.name == name ? &r : ls;
        QVERIFY(ls);
        const at::Tensor w = loadTensor(Checkpoint::open(dir), name + ".weight", at::kFloat);
        const at::Tensor d = (w - rtnQuantize(w, 2, 128, false).dequant).to(at::kDouble);
        const at::Tensor F = at::tensor(at::ArrayRef<float>(ls->fisher)).to(at::kDouble);
        const at::Tensor ex2 = at::tensor(at::ArrayRef<float>(ls->actSqMean)).to(at::kDouble);
        const double want = 0.5 * (F.unsqueeze(1) * d.pow(2) * ex2.unsqueeze(0)).sum().item<double>();
        bool found = false;
        for (const LinearErrors& e : t.linears)
            if (e.name == name) {
                found = true;
                QVERIFY2(want > 0 && std::abs(e.error[0] - want) <= 1e-9 * want,
                         qPrintable(QString::number(e.error[0]) + " vs " + QString::number(want)));
                QVERIFY(e.error[0] >= e.error[1] && e.error[1] >= e.error[3]);
            }
        QVERIFY(found);

        const std::string tp = (m_tmp.path() + "/errors.json").toStdString();
        saveErrorTable(t, tp);
        const ErrorTable tb = loadErrorTable(tp);
        QVERIFY(tb.costModel == CostModel::Fisher);
        QCOMPARE(tb.linears.size(), t.linears.size());
    }

    // (e) The CLI: calibrate --fisher, then plan --strategy budget says which cost model it used;
    //     without the Fisher it warns and uses the proxy.
    void cli()
    {
        if (!QFileInfo(moewbCli()).isExecutable())
            QSKIP("moewb binary not built");
        const QString dir = generate(m_tmp.path(), "mixtral");
        QByteArray ids = "[";
        for (int i = 0; i < 256; ++i)
            ids += QByteArray::number((i * 53) % 290) + (i + 1 < 256 ? "," : "]");
        const QString data = m_tmp.path() + "/cli.ids.json";
        writeAll(data, ids);
        const QString withF = m_tmp.path() + "/cli-f.h5", without = m_tmp.path() + "/cli.h5";
        CliRun r = runCli(moewbCli(), {"calibrate", dir, "--data", data, "--samples", "4", "--seq-len", "32",
                                       "--fisher", "--out", withF});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.out.contains("Fisher diagonal over 128 tokens"), r.out.constData());
        r = runCli(moewbCli(), {"calibrate", dir, "--data", data, "--samples", "4", "--seq-len", "32", "--out", without});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QString plan = m_tmp.path() + "/plan.json";
        r = runCli(moewbCli(), {"plan", dir, "--stats", withF, "--strategy", "budget", "--bits", "3", "--out", plan});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.out.contains("cost model: fisher"), r.out.constData());
        QVERIFY(!r.err.contains("warning"));
        r = runCli(moewbCli(), {"plan", dir, "--stats", without, "--strategy", "budget", "--bits", "3", "--out", plan});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.err.contains("warning") && r.err.contains("proxy"), r.err.constData());
        r = runCli(moewbCli(), {"plan", dir, "--stats", without, "--strategy", "budget", "--bits", "3",
                                "--cost-model", "fisher", "--out", plan});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("calibrate --fisher"), r.err.constData());
    }

private:
    QTemporaryDir m_tmp;
};

QTEST_APPLESS_MAIN(TestFisher)
#include "tst_fisher.moc"
