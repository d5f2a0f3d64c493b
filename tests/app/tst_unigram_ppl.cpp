// SPDX-License-Identifier: MIT
// datasets/unigram_ppl.py (unigram add-one and bigram add-k baselines): its numbers against an
// independent C++ count over the same `moewb tokenize` ids, on a small corpus written here.
#include "../engine/testutil.h"

#include <QDir>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <map>

using namespace moewb::test;

namespace {

std::vector<int64_t> ids(const QByteArray& jsonArray)
{
    std::vector<int64_t> out;
    for (const QJsonValue& v : QJsonDocument::fromJson(jsonArray).array())
        out.push_back(v.toInteger());
    return out;
}

} // namespace

class TestUnigramPpl : public QObject {
    Q_OBJECT
private slots:
    void matchesIndependentCounts()
    {
        if (!QFileInfo(moewbCli()).isExecutable())
            QSKIP("moewb binary not built");
        QTemporaryDir tmp;
        const QString model = tmp.path() + "/m";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", model, "--seed", "1"});
        const QString train = tmp.path() + "/train.jsonl", tune = tmp.path() + "/tune.jsonl";
        writeAll(train, "{\"text\": \"the cat sat on the mat. the cat ate.\", \"domain\": \"a\"}\n"
                        "{\"text\": \"int main() { return 0; }\", \"domain\": \"b\"}\n"
                        "{\"text\": \"the dog sat on the log\", \"domain\": \"a\"}\n");
        writeAll(tune, "{\"text\": \"the cat sat on the log.\"}\n{\"text\": \"int f() { return 1; }\"}\n");
        QDir().mkpath(tmp.path() + "/eval");
        const QByteArray prose = "the mat sat on the cat; the dog ate the log.\n";
        const QByteArray code = "int main() { return 1; }\nzebra!\n"; // unseen tokens too
        writeAll(tmp.path() + "/eval/prose.txt", prose);
        writeAll(tmp.path() + "/eval/code.txt", code);

        // Independent reference: token ids from the CLI, counts and sums here.
        std::vector<std::vector<int64_t>> docs;
        {
            const CliRun r = runCli(moewbCli(), {"tokenize", model, "--jsonl", train});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            for (const QByteArray& line : r.out.split('\n'))
                if (!line.trimmed().isEmpty())
                    docs.push_back(ids(line));
        }
        QCOMPARE(docs.size(), size_t(3));
        const int64_t V = 300; // config.json vocab_size of the generated model (tokenizer uses ids < 297)
        std::map<int64_t, double> uni, ctx;
        std::map<std::pair<int64_t, int64_t>, double> bi;
        double n = 0;
        for (const auto& d : docs) {
            for (size_t i = 0; i < d.size(); ++i) {
                uni[d[i]] += 1;
                n += 1;
                if (i > 0) {
                    bi[{d[i - 1], d[i]}] += 1;
                    ctx[d[i - 1]] += 1;
                }
            }
        }
        const double k = 0.25;
        struct Ref {
            double tokens = 0, uniNll = 0, biNll = 0;
        };
        std::map<QString, Ref> ref;
        for (const QString name : {QStringLiteral("code"), QStringLiteral("prose")}) {
            const CliRun r = runCli(moewbCli(), {"tokenize", model, "--file", tmp.path() + "/eval/" + name + ".txt"});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            const std::vector<int64_t> t = ids(r.out);
            Ref& x = ref[name];
            for (size_t i = 1; i < t.size(); ++i) {
                x.tokens += 1;
                x.uniNll -= std::log((uni[t[i]] + 1) / (n + V));
                x.biNll -= std::log((bi[{t[i - 1], t[i]}] + k) / (ctx[t[i - 1]] + k * V));
            }
        }

        qputenv("MOEWB", moewbCli().toLocal8Bit());
        const QJsonObject j = QJsonDocument::fromJson(
                                  runPython({sourcePath("datasets/unigram_ppl.py"), "--tokenizer", model, "--train",
                                             train, "--eval-dir", tmp.path() + "/eval", "--bigram-k", "0.25",
                                             "--json"}))
                                  .object();
        QCOMPARE(j["vocab_size"].toInt(), int(V));
        QCOMPARE(j["train_tokens"].toInteger(), qint64(n));
        QCOMPARE(j["bigram_k"].toDouble(), k);
        const QJsonArray rows = j["rows"].toArray();
        QCOMPARE(rows.size(), 3); // code, prose, all
        auto close = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)); };
        Ref all;
        for (int i = 0; i < 2; ++i) {
            const QJsonObject row = rows[i].toObject();
            const Ref& x = ref[row["domain"].toString()];
            QCOMPARE(row["tokens"].toDouble(), x.tokens);
            QVERIFY2(close(row["unigram_nll"].toDouble(), x.uniNll), qPrintable(row["domain"].toString()));
            QVERIFY(close(row["bigram_nll"].toDouble(), x.biNll));
            QVERIFY(close(row["unigram_ppl"].toDouble(), std::exp(x.uniNll / x.tokens)));
            QVERIFY(close(row["bigram_ppl"].toDouble(), std::exp(x.biNll / x.tokens)));
            all.tokens += x.tokens;
            all.uniNll += x.uniNll;
            all.biNll += x.biNll;
        }
        const QJsonObject a = rows[2].toObject();
        QCOMPARE(a["domain"].toString(), QString("all"));
        QVERIFY(close(a["unigram_ppl"].toDouble(), std::exp(all.uniNll / all.tokens)));
        QVERIFY(close(a["bigram_ppl"].toDouble(), std::exp(all.biNll / all.tokens)));

        // Without --bigram-k, k is the grid value with the lowest perplexity on --tune.
        const QJsonObject tuned = QJsonDocument::fromJson(
                                      runPython({sourcePath("datasets/unigram_ppl.py"), "--tokenizer", model,
                                                 "--train", train, "--eval-dir", tmp.path() + "/eval", "--tune",
                                                 tune, "--json"}))
                                      .object();
        const QJsonObject grid = tuned["bigram_k_tuning"].toObject()["ppl"].toObject();
        QCOMPARE(grid.size(), 7);
        QString best;
        for (auto it = grid.begin(); it != grid.end(); ++it)
            if (best.isEmpty() || it.value().toDouble() < grid[best].toDouble())
                best = it.key();
        QCOMPARE(tuned["bigram_k"].toDouble(), best.toDouble());
    }
};

QTEST_APPLESS_MAIN(TestUnigramPpl)
#include "tst_unigram_ppl.moc"
