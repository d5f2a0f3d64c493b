// SPDX-License-Identifier: MIT
// The functional forward against the independent NumPy reference (tests/reference/), for every
// supported architecture, on random checkpoints written by tests/reference/gen_random_model.py.
#include "model/streamer.h"
#include "moewb/model/runtime.h"
#include "testutil.h"

#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

using namespace moewb;
using namespace moewb::test;

namespace {
// fp32 forward vs float64 reference on O(1)-scaled random weights: measured max abs diff is
// ~1e-5; the bound leaves room for BLAS summation order.
constexpr double kMaxAbsDiffF32 = 2e-4;
// bf16 compute (weights stored in bf16) vs the float64 reference on the same bf16 weights:
// bf16 keeps 8 mantissa bits (relative rounding 2^-9 ≈ 0.2%) at every op of 3 layers; measured
// mean |diff| ≈ 0.07 on logits of scale ~8, and the next-token argmax must mostly agree.
constexpr double kMaxMeanAbsDiffBf16 = 0.15;
constexpr double kMinArgmaxAgreementBf16 = 0.9;

at::Tensor randomIds(int64_t b, int64_t t, int64_t vocab, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    return at::randint(0, vocab, {b, t}, gen, at::TensorOptions().dtype(at::kLong));
}

QByteArray idsJson(const at::Tensor& ids)
{
    QJsonArray rows;
    for (int64_t b = 0; b < ids.size(0); ++b) {
        QJsonArray row;
        for (int64_t t = 0; t < ids.size(1); ++t)
            row.append(qint64(ids[b][t].item<int64_t>()));
        rows.append(row);
    }
    return QJsonDocument(rows).toJson(QJsonDocument::Compact);
}

/// Runs the NumPy reference on ids and returns its logits [B, T, V].
at::Tensor referenceLogits(const QString& modelDir, const at::Tensor& ids, const QString& scratch)
{
    const QString idsFile = scratch + "/ids.json", out = scratch + "/ref.f32";
    writeAll(idsFile, idsJson(ids));
    runPython({sourcePath("tests/reference/reference_forward.py"), modelDir, idsFile, out});
    const QJsonArray shape = QJsonDocument::fromJson(readAll(out + ".json")).object()["shape"].toArray();
    const QByteArray raw = readAll(out);
    std::vector<int64_t> dims;
    for (const auto& d : shape)
        dims.push_back(d.toInteger());
    at::Tensor t = at::empty(dims, at::kFloat);
    if (int64_t(raw.size()) != int64_t(t.nbytes()))
        throw std::runtime_error("reference output has the wrong size");
    std::memcpy(t.data_ptr(), raw.constData(), size_t(raw.size()));
    return t;
}

QString generate(const QTemporaryDir& dir, const QString& arch, const QStringList& extra = {})
{
    const QString out = dir.path() + "/" + arch;
    QStringList args{sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "11"};
    args += extra;
    runPython(args);
    return out;
}
} // namespace

class TestForward : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() { at::set_num_threads(2); }

    void matchesReference_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QStringList>("extra");
        for (const char* a : {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek", "olmoe", "llama", "mistral", "qwen2"})
            QTest::newRow(a) << QString(a) << QStringList();
        QTest::newRow("llama-tied") << QStringLiteral("llama") << QStringList{"--tied"};
        QTest::newRow("mixtral-tied") << QStringLiteral("mixtral") << QStringList{"--tied"};
    }

    void matchesReference()
    {
        QFETCH(QString, arch);
        QFETCH(QStringList, extra);
        QTemporaryDir tmp;
        const QString dir = generate(tmp, arch, extra);
        const Model model(dir.toStdString());
        const at::Tensor ids = randomIds(2, 13, model.config().vocabSize, 5);
        const at::Tensor ref = referenceLogits(dir, ids, tmp.path());

        StreamOptions opt;
        opt.dtype = at::kFloat;
        const at::Tensor got = model.logits(ids, opt);
        QCOMPARE(got.sizes().vec(), ref.sizes().vec());
        const double maxDiff = (got - ref).abs().max().item<double>();
        qInfo("%s: max |logit diff| vs NumPy = %.3g (logit scale %.3g)", qPrintable(arch), maxDiff,
              ref.abs().max().item<double>());
        QVERIFY2(maxDiff < kMaxAbsDiffF32, qPrintable(QString::number(maxDiff)));
    }

    void streamingEqualsResident_data() { matchesReference_data(); }

    void streamingEqualsResident()
    {
        QFETCH(QString, arch);
        QFETCH(QStringList, extra);
        QTemporaryDir tmp;
        const QString dir = generate(tmp, arch, extra);
        const Model model(dir.toStdString());
        const at::Tensor ids = randomIds(3, 9, model.config().vocabSize, 9);
        StreamOptions streaming, resident;
        streaming.dtype = resident.dtype = at::kFloat;
        resident.streaming = false;
        QVERIFY(at::equal(model.logits(ids, streaming), model.logits(ids, resident)));
    }

    // Under autograd (the Fisher pass's kept graph) the routed experts are gathered and scattered
    // in one go and the attention chunks joined by a cat: the same additions in the same order,
    // so the logits equal inference's bit for bit.
    void recordGraphEqualsInference_data() { matchesReference_data(); }

    void recordGraphEqualsInference()
    {
        QFETCH(QString, arch);
        QFETCH(QStringList, extra);
        QTemporaryDir tmp;
        const QString dir = generate(tmp, arch, extra);
        const Model model(dir.toStdString());
        const at::Tensor ids = randomIds(3, 9, model.config().vocabSize, 9);
        for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
            StreamOptions plain, graph;
            plain.dtype = graph.dtype = dtype;
            graph.recordGraph = true;
            const at::Tensor withGraph = model.logits(ids, graph);
            QVERIFY(withGraph.requires_grad());
            QVERIFY(at::equal(model.logits(ids, plain), withGraph.detach()));
        }
    }

    void bf16CheckpointMatchesReference()
    {
        QTemporaryDir tmp;
        const QString dir = generate(tmp, "mixtral", {"--dtype", "bf16"});
        const Model model(dir.toStdString());
        // "auto" computes a bf16 checkpoint in bf16 only where the CPU multiplies bf16 natively.
        QCOMPARE(int(computeDtype(model.config(), "auto")), int(cpuHasFastBf16() ? at::kBFloat16 : at::kFloat));
        QCOMPARE(int(computeDtype(model.config(), "bf16")), int(at::kBFloat16));
        const at::Tensor ids = randomIds(2, 11, model.config().vocabSize, 3);
        const at::Tensor ref = referenceLogits(dir, ids, tmp.path());
        StreamOptions f32;
        f32.dtype = at::kFloat;
        // bf16 weights upcast exactly to fp32: only fp32 rounding separates us from the reference.
        QVERIFY((model.logits(ids, f32) - ref).abs().max().item<double>() < kMaxAbsDiffF32);
        StreamOptions bf16;
        bf16.dtype = at::kBFloat16;
        const at::Tensor got = model.logits(ids, bf16);
        const double meanDiff = (got - ref).abs().mean().item<double>();
        const double agree = got.argmax(-1).eq(ref.argmax(-1)).to(at::kDouble).mean().item<double>();
        qInfo("bf16 compute: mean |logit diff| = %.3g, argmax agreement %.2f", meanDiff, agree);
        QVERIFY(meanDiff < kMaxMeanAbsDiffBf16);
        QVERIFY(agree >= kMinArgmaxAgreementBf16);
    }

    void slidingWindowMatchesReference()
    {
        QTemporaryDir tmp;
        const QString dir = generate(tmp, "mistral");
        runPython({"-c",
                   "import json, sys; p = sys.argv[1]; c = json.load(open(p)); c['sliding_window'] = 4; "
                   "json.dump(c, open(p, 'w'))",
                   dir + "/config.json"});
        const Model model(dir.toStdString());
        QCOMPARE(model.config().slidingWindow.value_or(-1), int64_t(4));
        const at::Tensor ids = randomIds(2, 13, model.config().vocabSize, 8);
        const at::Tensor ref = referenceLogits(dir, ids, tmp.path());
        StreamOptions opt;
        const at::Tensor got = model.logits(ids, opt);
        QVERIFY((got - ref).abs().max().item<double>() < kMaxAbsDiffF32);
        // The window matters: positions past it differ from full attention.
        runPython({"-c",
                   "import json, sys; p = sys.argv[1]; c = json.load(open(p)); c['sliding_window'] = None; "
                   "json.dump(c, open(p, 'w'))",
                   dir + "/config.json"});
        const at::Tensor full = Model(dir.toStdString()).logits(ids, opt);
        QVERIFY(at::equal(full.narrow(1, 0, 4), got.narrow(1, 0, 4)));
        QVERIFY((full.narrow(1, 4, 9) - got.narrow(1, 4, 9)).abs().max().item<double>() > 1e-3);
    }

    void missingTensorIsNamed()
    {
        QTemporaryDir tmp;
        const QString dir = generate(tmp, "llama");
        // Rewrite the checkpoint without one tensor using the reference's own writer.
        runPython({"-c",
                   "import sys; sys.path.insert(0, sys.argv[1]); import safetensors_np as s; "
                   "t, d, m = s.load(sys.argv[2]); del t['model.layers.1.self_attn.k_proj.weight']; "
                   "s.save(sys.argv[2], t, d, m)",
                   sourcePath("tests/reference"), dir + "/model.safetensors"});
        const Model model(dir.toStdString());
        StreamOptions opt;
        try {
            model.logits(randomIds(1, 4, model.config().vocabSize, 1), opt);
            QFAIL("expected an error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("model.layers.1.self_attn.k_proj.weight"), e.what());
        }
    }

    void ropeIsIdentityAtPositionZero()
    {
        ModelConfig cfg;
        cfg.headDim = 8;
        cfg.ropeTheta = 10000;
        const RopeTables r = ropeTables(cfg, 3, at::kFloat);
        const at::Tensor x = at::randn({1, 2, 3, 8});
        const at::Tensor y = applyRope(x, r);
        QVERIFY(at::allclose(y.select(2, 0), x.select(2, 0)));
        // Position 1, pair (0, 4) rotates by angle 1 rad: hand-computed.
        const float a = x[0][0][1][0].item<float>(), b = x[0][0][1][4].item<float>();
        QVERIFY(std::abs(y[0][0][1][0].item<float>() - (a * std::cos(1.f) - b * std::sin(1.f))) < 1e-5);
        QVERIFY(std::abs(y[0][0][1][4].item<float>() - (b * std::cos(1.f) + a * std::sin(1.f))) < 1e-5);
    }

    void rmsNormHandComputed()
    {
        const at::Tensor x = at::tensor({3.f, 4.f}).view({1, 2});
        const at::Tensor w = at::tensor({1.f, 2.f});
        // rms = sqrt((9 + 16) / 2) = sqrt(12.5)
        const at::Tensor y = rmsNorm(x, w, 0.0);
        QVERIFY(std::abs(y[0][0].item<float>() - 3.f / std::sqrt(12.5f)) < 1e-6);
        QVERIFY(std::abs(y[0][1].item<float>() - 8.f / std::sqrt(12.5f)) < 1e-6);
    }
};

QTEST_APPLESS_MAIN(TestForward)
#include "tst_forward.moc"
