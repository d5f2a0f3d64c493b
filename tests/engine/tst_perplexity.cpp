// SPDX-License-Identifier: MIT
// Perplexity: the window rule (hand-computed), NLL against the NumPy reference, and the CLI.
#include "moewb/core/error.h"
#include "moewb/eval/perplexity.h"
#include "moewb/tokenizer/tokenizer.h"
#include "testutil.h"

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

QString makeModel(const QTemporaryDir& tmp, const QString& arch)
{
    const QString dir = tmp.path() + "/" + arch;
    runPython({sourcePath("tests/reference/gen_random_model.py"), arch, dir, "--seed", "3"});
    return dir;
}
} // namespace

class TestPerplexity : public QObject {
    Q_OBJECT
private slots:
    void windowsHandComputed()
    {
        // N=10, C=4, S=4: the effective stride is 3 so that windows share a token.
        auto w = perplexityWindows(10, 4, 4);
        QCOMPARE(int(w.size()), 3);
        QCOMPARE(w[0].begin, 0); QCOMPARE(w[0].end, 4); QCOMPARE(w[0].firstScored, 1);
        QCOMPARE(w[1].begin, 3); QCOMPARE(w[1].end, 7); QCOMPARE(w[1].firstScored, 4);
        QCOMPARE(w[2].begin, 6); QCOMPARE(w[2].end, 10); QCOMPARE(w[2].firstScored, 7);
        // N=10, C=4, S=2: [0,4) scores 1..3, [2,6) 4..5, [4,8) 6..7, [6,10) 8..9.
        w = perplexityWindows(10, 4, 2);
        QCOMPARE(int(w.size()), 4);
        QCOMPARE(w[1].begin, 2); QCOMPARE(w[1].firstScored, 4);
        QCOMPARE(w[3].begin, 6); QCOMPARE(w[3].end, 10); QCOMPARE(w[3].firstScored, 8);
        // Shorter than one window: one window over everything.
        w = perplexityWindows(3, 8, 8);
        QCOMPARE(int(w.size()), 1);
        QCOMPARE(w[0].end, 3);
        QVERIFY(perplexityWindows(1, 8, 8).empty());
        // llama-perplexity's chunks: N=10, C=4 → [0,4) scores 3, [4,8) scores 7; the rest is dropped.
        w = llamaChunkWindows(10, 4, 100);
        QCOMPARE(int(w.size()), 2);
        QCOMPARE(w[0].begin, 0); QCOMPARE(w[0].end, 4); QCOMPARE(w[0].firstScored, 3);
        QCOMPARE(w[1].begin, 4); QCOMPARE(w[1].end, 8); QCOMPARE(w[1].firstScored, 7);
        // C=256: tokens 129..255 of each chunk (127 per chunk), at most K chunks.
        w = llamaChunkWindows(1030, 256, 3);
        QCOMPARE(int(w.size()), 3);
        QCOMPARE(w[2].begin, 512); QCOMPARE(w[2].firstScored, 512 + 129); QCOMPARE(w[2].end, 768);
    }

    void everyTokenScoredOnce()
    {
        for (int n = 2; n < 40; ++n)
            for (int c = 2; c < 12; ++c)
                for (int s = 1; s < 14; ++s) {
                    std::vector<int> hits(size_t(n), 0);
                    int64_t lastEnd = 0;
                    for (const auto& w : perplexityWindows(n, c, s)) {
                        QVERIFY(w.end - w.begin <= c);
                        QVERIFY(w.firstScored > w.begin);
                        for (int64_t p = w.firstScored; p < w.end; ++p)
                            ++hits[size_t(p)];
                        lastEnd = w.end;
                    }
                    QCOMPARE(lastEnd, int64_t(n));
                    QCOMPARE(hits[0], 0);
                    for (int p = 1; p < n; ++p)
                        QCOMPARE(hits[size_t(p)], 1);
                }
    }

    void matchesReference_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("ctx");
        QTest::addColumn<int>("stride");
        QTest::newRow("mixtral ctx16 stride8") << "mixtral" << 16 << 8;
        QTest::newRow("mixtral ctx16 stride5") << "mixtral" << 16 << 5;
        QTest::newRow("deepseek ctx12 stride6") << "deepseek" << 12 << 6;
        QTest::newRow("qwen2_moe ctx200 (one window)") << "qwen2_moe" << 200 << 200;
    }

    void matchesReference()
    {
        QFETCH(QString, arch);
        QFETCH(int, ctx);
        QFETCH(int, stride);
        QTemporaryDir tmp;
        const QString dir = makeModel(tmp, arch);
        const std::vector<int32_t> ids = pseudoRandomIds(61, 250, 42);
        writeAll(tmp.path() + "/ids.json", toJson(ids));
        const QJsonObject ref = QJsonDocument::fromJson(
                                    runPython({sourcePath("tests/reference/reference_ppl.py"), dir,
                                               tmp.path() + "/ids.json", "--ctx", QString::number(ctx),
                                               "--stride", QString::number(stride)}))
                                    .object();
        PerplexityOptions opt;
        opt.ctx = ctx;
        opt.stride = stride;
        opt.dtype = "f32";
        const PerplexityResult r = evaluatePerplexity(dir.toStdString(), ids, opt);
        QCOMPARE(r.scoredTokens, int64_t(ids.size() - 1));
        QCOMPARE(r.scoredTokens, int64_t(ref["tokens"].toInteger()));
        int64_t pushed = 0;
        for (const PplWindow& w : perplexityWindows(int64_t(ids.size()), ctx, stride))
            pushed += w.end - w.begin;
        QCOMPARE(r.forwardTokens, pushed);
        if (ctx >= int(ids.size()))
            QCOMPARE(r.forwardTokens, int64_t(ids.size())); // one window: every token once
        const double refNll = ref["nll_sum"].toDouble();
        qInfo("nll %.6f vs reference %.6f, ppl %.4f", r.nllSum, refNll, r.perplexity);
        QVERIFY(std::abs(r.nllSum - refNll) < 1e-3 * std::max(1.0, std::abs(refNll)));
        QVERIFY(std::abs(r.perplexity - ref["ppl"].toDouble()) < 1e-3 * r.perplexity);
    }

    void cliPrintsPerplexity()
    {
        QTemporaryDir tmp;
        const QString dir = makeModel(tmp, "mixtral");
        const QString text = tmp.path() + "/text.txt";
        const QByteArray content = "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs on.\n"
                                   "int main(void) { return 0; }\n";
        writeAll(text, content);
        const CliRun r = runCli(moewbCli(), {"eval", dir, "--ppl", text, "--ctx", "16", "--stride", "8",
                                             "--dtype", "f32"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QStringList lines = QString::fromUtf8(r.out).split('\n', Qt::SkipEmptyParts);
        QVERIFY(!lines.isEmpty() && lines.last().startsWith("perplexity: "));
        const double ppl = lines.last().mid(12).toDouble();
        // Same text through the tokenizer and the engine API: the CLI adds nothing of its own.
        const auto ids = Tokenizer::load(dir.toStdString())->encode(content.toStdString());
        PerplexityOptions opt;
        opt.ctx = 16;
        opt.stride = 8;
        opt.dtype = "f32";
        const PerplexityResult api = evaluatePerplexity(dir.toStdString(), ids, opt);
        QVERIFY2(std::abs(ppl - api.perplexity) < 1e-3 * api.perplexity, qPrintable(lines.last()));
        // A random model is confidently wrong: far worse than uniform over its 297 tokens.
        QVERIFY(ppl > 297);
    }

    void cliErrorsAreOneLine()
    {
        QTemporaryDir tmp;
        const CliRun missing = runCli(moewbCli(), {"eval", tmp.path() + "/nope", "--ppl", "/dev/null"});
        QCOMPARE(missing.exitCode, 1);
        QVERIFY2(missing.err.startsWith("moewb: error: ") && missing.err.count('\n') == 1, missing.err.constData());
        const CliRun noText = runCli(moewbCli(), {"eval", makeModel(tmp, "llama"), "--ppl", tmp.path() + "/none.txt"});
        QCOMPARE(noText.exitCode, 1);
        QVERIFY2(noText.err.contains("moewb: error: ") && noText.err.contains("none.txt"), noText.err.constData());
        QVERIFY(missing.err.contains("nope"));
        const CliRun usage = runCli(moewbCli(), {"eval"});
        QCOMPARE(usage.exitCode, 2);
    }
};

QTEST_APPLESS_MAIN(TestPerplexity)
#include "tst_perplexity.moc"
