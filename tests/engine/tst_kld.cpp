// SPDX-License-Identifier: MIT
// KL divergence against a reference model (#23): every architecture against a float64 NumPy
// computation (tests/reference/reference_kld.py), a model against itself, the percentile rule and
// the paired bootstrap on hand-computed cases.
#include "moewb/core/error.h"
#include "moewb/eval/kld.h"
#include "moewb/eval/paired.h"
#include "testutil.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace moewb;
using namespace moewb::test;

namespace {

std::vector<int32_t> pseudoRandomIds(int n, int vocab, uint32_t seed)
{
    std::vector<int32_t> ids;
    uint32_t s = seed;
    for (int i = 0; i < n; ++i) {
        s = s * 1664525u + 1013904223u;
        ids.push_back(int32_t((s >> 8) % uint32_t(vocab)));
    }
    return ids;
}

QByteArray toJson(const std::vector<int32_t>& ids)
{
    QJsonArray a;
    for (int32_t v : ids)
        a.append(v);
    return QJsonDocument(a).toJson(QJsonDocument::Compact);
}

bool near(double a, double b, double rel, double abs = 1e-7)
{
    return std::abs(a - b) <= abs + rel * std::max(std::abs(a), std::abs(b));
}

} // namespace

class TestKld : public QObject {
    Q_OBJECT
private slots:
    void percentileLikeNumpy()
    {
        // numpy.percentile([1, 2, 3, 4], 99) = 3.97; ([5], 99) = 5; ([0, 10], 50) = 5.
        QCOMPARE(percentileLinear({4, 1, 3, 2}, 0.99), 3.97);
        QCOMPARE(percentileLinear({5}, 0.99), 5.0);
        QCOMPARE(percentileLinear({10, 0}, 0.5), 5.0);
        QCOMPARE(percentileLinear({}, 0.99), 0.0);
    }

    void pairedBootstrapHandComputed()
    {
        // Windows with KLD sums a, b over w tokens: diff = (6 - 3) / 6 = 0.5.
        const std::vector<double> a{1, 2, 3}, b{0.5, 1, 1.5}, w{1, 2, 3};
        PairedInterval p = pairedBootstrap(a, b, w, 500, 1);
        QCOMPARE(p.diff, 0.5);
        // Every window's difference a - b is exactly half its tokens: every resample gives 0.5.
        QVERIFY(near(p.lo, 0.5, 1e-12) && near(p.hi, 0.5, 1e-12));
        QVERIFY(p.excludesZero());
        // Identical runs: zero, and an interval that does not exclude it.
        p = pairedBootstrap(a, a, w);
        QCOMPARE(p.diff, 0.0);
        QVERIFY(!p.excludesZero());
        // Differences of both signs: the interval straddles the mean difference.
        p = pairedBootstrap({1, 0, 1, 0, 1, 0}, {0, 1, 0, 1, 0, 0}, {1, 1, 1, 1, 1, 1}, 2000, 7);
        QCOMPARE(p.diff, 1.0 / 6.0);
        QVERIFY(p.lo < p.diff && p.diff < p.hi);
        QVERIFY(p.lo < 0.0);
        // Same seed, same interval; mismatched units are an error.
        const PairedInterval q = pairedBootstrap({1, 0, 1, 0, 1, 0}, {0, 1, 0, 1, 0, 0}, {1, 1, 1, 1, 1, 1}, 2000, 7);
        QCOMPARE(q.lo, p.lo);
        QCOMPARE(q.hi, p.hi);
        QVERIFY_THROWS_EXCEPTION(InputError, pairedBootstrap({1}, {1, 2}, {1}));
    }

    void matchesNumpy_data()
    {
        QTest::addColumn<QString>("arch");
        for (const char* a : {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek", "olmoe"})
            QTest::newRow(a) << QString(a);
    }

    void matchesNumpy()
    {
        // The reference in f32 and the same weights rounded to bf16: a small, realistic divergence.
        QFETCH(QString, arch);
        QTemporaryDir tmp;
        const QString ref = tmp.path() + "/ref", q = tmp.path() + "/bf16";
        runPython({sourcePath("tests/reference/gen_random_model.py"), arch, ref, "--seed", "4"});
        runPython({sourcePath("tests/reference/gen_random_model.py"), arch, q, "--seed", "4", "--dtype", "bf16"});
        const std::vector<int32_t> ids = pseudoRandomIds(53, 250, 9);
        writeAll(tmp.path() + "/ids.json", toJson(ids));
        const QJsonObject np = QJsonDocument::fromJson(runPython({sourcePath("tests/reference/reference_kld.py"), ref, q,
                                                                   tmp.path() + "/ids.json", "--ctx", "24", "--stride",
                                                                   "10"}))
                                   .object();
        PerplexityOptions opt;
        opt.ctx = 24;
        opt.stride = 10;
        opt.dtype = "f32";
        const KldReference reference(ref.toStdString(), ids, opt);
        const KldResult r = evaluateKld(q.toStdString(), reference, opt);
        qInfo("%s: kld %.8g (numpy %.8g), p99 %.8g (%.8g), same top %.4f (%.4f)", qPrintable(arch), r.meanKld,
              np["kld"].toDouble(), r.p99Kld, np["kld_p99"].toDouble(), r.sameTop, np["same_top"].toDouble());
        QCOMPARE(r.tokens, int64_t(np["tokens"].toInteger()));
        QCOMPARE(r.tokens, int64_t(ids.size() - 1));
        QVERIFY(r.meanKld > 0.0);
        QVERIFY(near(r.meanKld, np["kld"].toDouble(), 2e-3, 1e-8));
        QVERIFY(near(r.p99Kld, np["kld_p99"].toDouble(), 2e-3, 1e-8));
        // Top tokens: float32 vs float64 may flip a near tie at most once in 52 positions.
        QVERIFY(std::abs(r.sameTop - np["same_top"].toDouble()) * double(r.tokens) <= 1.0 + 1e-9);
        const QJsonArray wk = np["window_kld"].toArray();
        QCOMPARE(qsizetype(r.windowKld.size()), wk.size());
        for (int i = 0; i < wk.size(); ++i)
            QVERIFY(near(r.windowKld[size_t(i)], wk[i].toDouble(), 2e-3, 1e-8));
        QVERIFY(near(r.perplexity.perplexity, np["ppl"].toDouble(), 1e-4));
    }

    void cliPrintsAndWrites()
    {
        QTemporaryDir tmp;
        const QString ref = tmp.path() + "/ref", q = tmp.path() + "/bf16";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", ref, "--seed", "6"});
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", q, "--seed", "6", "--dtype", "bf16"});
        const QString text = tmp.path() + "/text.txt";
        writeAll(text, "The router sends every token to two experts; the experts are small MLPs.\n"
                       "int main(void) { return 0; }\n");
        const CliRun r = runCli(moewbCli(), {"eval", q, "--kld-ref", ref, "--ppl", text, "--ctx", "16", "--stride", "8",
                                             "--dtype", "f32", "--out", tmp.path() + "/out.json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QStringList lines = QString::fromUtf8(r.out).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 5);
        QVERIFY(lines[1].startsWith("perplexity: "));
        QVERIFY(lines[2].startsWith("kld: "));
        QVERIFY(lines[3].startsWith("kld p99: "));
        QVERIFY(lines[4].startsWith("same top token: ") && lines[4].endsWith(" %"));
        // The same numbers through the engine API.
        PerplexityOptions opt;
        opt.ctx = 16;
        opt.stride = 8;
        opt.dtype = "f32";
        const auto reference = kldReferenceForFile(ref.toStdString(), text.toStdString(), opt);
        const KldResult k = evaluateKldFile(q.toStdString(), *reference, text.toStdString(), opt);
        QCOMPARE(lines[2].mid(5), QString::asprintf("%.6f", k.meanKld));
        QCOMPARE(lines[3].mid(9), QString::asprintf("%.6f", k.p99Kld));
        QCOMPARE(lines[4], QString::asprintf("same top token: %.2f %%", 100.0 * k.sameTop));
        const QJsonObject out = QJsonDocument::fromJson(readAll(tmp.path() + "/out.json")).object();
        const QJsonObject p0 = out["perplexity"].toArray()[0].toObject();
        QCOMPARE(p0["kld"].toDouble(), k.meanKld);
        QCOMPARE(p0["kld_p99"].toDouble(), k.p99Kld);
        QCOMPARE(p0["same_top"].toDouble(), k.sameTop);
        QCOMPARE(p0["ref_perplexity"].toDouble(), reference->perplexity().perplexity);
        QCOMPARE(p0["perplexity"].toDouble(), k.perplexity.perplexity);
        // Per-window sums for paired comparisons: the engine's, in window order, pooling to the mean.
        const QJsonArray wk = p0["window_kld"].toArray(), wt = p0["window_tokens"].toArray(),
                         ws = p0["window_same_top"].toArray();
        QCOMPARE(wk.size(), qsizetype(k.windowKld.size()));
        QCOMPARE(wt.size(), wk.size());
        QCOMPARE(ws.size(), wk.size());
        double kldSum = 0, tokSum = 0;
        for (qsizetype w = 0; w < wk.size(); ++w) {
            QCOMPARE(wk[w].toDouble(), k.windowKld[size_t(w)]);
            QCOMPARE(wt[w].toInteger(), k.windowTokens[size_t(w)]);
            QCOMPARE(ws[w].toInteger(), k.windowSameTop[size_t(w)]);
            kldSum += wk[w].toDouble();
            tokSum += wt[w].toDouble();
        }
        QCOMPARE(qint64(tokSum), k.tokens);
        QVERIFY(std::abs(kldSum / tokSum - k.meanKld) <= 1e-12 * std::max(1.0, k.meanKld));

        // Another tokenizer: refused, naming both models, nothing printed.
        QDir().mkpath(tmp.path() + "/other");
        for (const QString& f : QDir(q).entryList(QDir::Files))
            QFile::copy(q + "/" + f, tmp.path() + "/other/" + f);
        QFile::remove(tmp.path() + "/other/tokenizer.json");
        QVERIFY(QFile::copy(sourcePath("datasets/tokenizer-v2/tokenizer.json"), tmp.path() + "/other/tokenizer.json"));
        const CliRun bad = runCli(moewbCli(), {"eval", tmp.path() + "/other", "--kld-ref", ref, "--ppl", text, "--dtype", "f32"});
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.contains("same tokenizer") && bad.err.contains(ref.toUtf8()), bad.err.constData());
        QVERIFY(bad.out.isEmpty());
        // --kld-ref without a text is a usage error.
        QCOMPARE(runCli(moewbCli(), {"eval", q, "--kld-ref", ref, "--tasks", text}).exitCode, 2);
    }

    void referenceWithItself()
    {
        QTemporaryDir tmp;
        const QString ref = tmp.path() + "/ref";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "qwen3_moe", ref, "--seed", "5"});
        const std::vector<int32_t> ids = pseudoRandomIds(40, 250, 3);
        PerplexityOptions opt;
        opt.ctx = 16;
        opt.stride = 8;
        opt.dtype = "f32";
        const KldReference reference(ref.toStdString(), ids, opt);
        const KldResult r = evaluateKld(ref.toStdString(), reference, opt);
        QCOMPARE(r.meanKld, 0.0);
        QCOMPARE(r.p99Kld, 0.0);
        QCOMPARE(r.sameTop, 1.0);
        QCOMPARE(r.tokens, int64_t(39));
        QCOMPARE(r.perplexity.perplexity, reference.perplexity().perplexity);
        // The scratch file is unlinked at once: nothing is left in the temporary directory.
        QVERIFY(QDir(QDir::tempPath()).entryList({"moewb-kldref-*"}).isEmpty());
    }
};

QTEST_GUILESS_MAIN(TestKld)
#include "tst_kld.moc"
