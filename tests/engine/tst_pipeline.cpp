// SPDX-License-Identifier: MIT
// moewb pipeline: its numbers must equal those of running calibrate → plan → quantize → eval by
// hand with the same settings (the pipeline is only composition), plus its errors.
#include "moewb/eval/kld.h"
#include "testutil.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace moewb;
using namespace moewb::test;

namespace {

QByteArray sampleText(int words, uint32_t seed)
{
    static const char* vocab[] = {"the", "model", "expert", "router", "token", "layer", "quantize", "bits",
                                  "weight", "of", "and", "a", "to", "in", "is", "with", "for", "on", "that", "by"};
    QByteArray out;
    uint32_t s = seed;
    for (int i = 0; i < words; ++i) {
        s = s * 1664525u + 1013904223u;
        out += vocab[(s >> 10) % 20];
        out += (i % 13 == 12) ? ".\n" : " ";
    }
    return out;
}

double pplOf(const QByteArray& json)
{
    return QJsonDocument::fromJson(json).object()["perplexity"].toDouble();
}

} // namespace

class TestPipeline : public QObject {
    Q_OBJECT
private slots:
    void equalsTheStepsRunByHand()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString model = tmp.path() + "/model";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", model, "--seed", "3"});
        writeAll(tmp.path() + "/calib.txt", sampleText(3000, 1));
        writeAll(tmp.path() + "/eval.txt", sampleText(800, 2));
        const QString work = tmp.path() + "/work";
        const CliRun run = runCli(moewbCli(), {"pipeline", model, "--calib", tmp.path() + "/calib.txt", "--strategy",
                                               "uniform,frequency", "--bits", "3", "--method", "rtn", "--samples", "4",
                                               "--seq-len", "32", "--seed", "0", "--ppl", tmp.path() + "/eval.txt",
                                               "--dtype", "f32", "--work", work, "--keep-models"});
        QVERIFY2(run.exitCode == 0, run.err.constData());
        QVERIFY(run.out.contains("| baseline |"));
        QVERIFY(run.out.contains("| frequency@3 |"));

        const QJsonObject res = QJsonDocument::fromJson(readAll(work + "/results.json")).object();
        const QJsonArray rows = res["rows"].toArray();
        QCOMPARE(rows.size(), 3);
        QCOMPARE(rows[0].toObject()["label"].toString(), QStringLiteral("baseline"));
        QCOMPARE(rows[1].toObject()["label"].toString(), QStringLiteral("uniform@3"));
        QCOMPARE(rows[2].toObject()["label"].toString(), QStringLiteral("frequency@3"));
        QCOMPARE(rows[1].toObject()["average_bits"].toDouble(), 3.0);
        auto rowPpl = [&](int i) { return rows[i].toObject()["perplexity"].toObject()["eval.txt"].toDouble(); };

        // Baseline = moewb eval on the original model.
        const CliRun base = runCli(moewbCli(), {"eval", model, "--ppl", tmp.path() + "/eval.txt", "--dtype", "f32", "--json"});
        QVERIFY2(base.exitCode == 0, base.err.constData());
        QCOMPARE(rowPpl(0), pplOf(base.out));

        // frequency@3 = calibrate + plan + quantize + eval by hand.
        const QStringList calibArgs = {"--samples", "4", "--seq-len", "32", "--random-windows", "--seed", "0"};
        CliRun c = runCli(moewbCli(), QStringList{"calibrate", model, "--data", tmp.path() + "/calib.txt", "--dtype", "f32",
                                                  "--out", tmp.path() + "/s.h5"} + calibArgs);
        QVERIFY2(c.exitCode == 0, c.err.constData());
        c = runCli(moewbCli(), {"plan", model, "--stats", tmp.path() + "/s.h5", "--strategy", "frequency", "--bits", "3",
                                "--method", "rtn", "--out", tmp.path() + "/p.json"});
        QVERIFY2(c.exitCode == 0, c.err.constData());
        const QJsonObject mine = QJsonDocument::fromJson(readAll(tmp.path() + "/p.json")).object();
        const QJsonObject theirs = QJsonDocument::fromJson(readAll(work + "/plan-frequency-3.json")).object();
        QCOMPARE(theirs["defaults"], mine["defaults"]);
        QCOMPARE(theirs["overrides"], mine["overrides"]);
        c = runCli(moewbCli(), QStringList{"quantize", model, "--plan", tmp.path() + "/p.json", "--calib",
                                           tmp.path() + "/calib.txt", "--dtype", "f32", "--out", tmp.path() + "/q"} + calibArgs);
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QCOMPARE(readAll(tmp.path() + "/q/model.safetensors"), readAll(work + "/model-frequency-3/model.safetensors"));
        c = runCli(moewbCli(), {"eval", tmp.path() + "/q", "--ppl", tmp.path() + "/eval.txt", "--dtype", "f32", "--json"});
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QCOMPARE(rowPpl(2), pplOf(c.out));
        // 3-bit RTN of a random model must cost something.
        QVERIFY(rowPpl(1) != rowPpl(0));

        // KLD against the baseline (#23): 0 / 100 % for the baseline itself; a strategy row's
        // values are those of the engine's KLD on the kept model; the paired difference to uniform
        // of the same budget is the difference of the two rows' means (one text) inside its interval.
        auto rowValue = [&](int i, const char* key) { return rows[i].toObject()[key].toObject()["eval.txt"].toDouble(); };
        QCOMPARE(rowValue(0, "kld"), 0.0);
        QCOMPARE(rowValue(0, "same_top"), 1.0);
        PerplexityOptions po;
        po.dtype = "f32";
        const auto ref = kldReferenceForFile(model.toStdString(), (tmp.path() + "/eval.txt").toStdString(), po);
        const KldResult k = evaluateKldFile((work + "/model-frequency-3").toStdString(), *ref,
                                            (tmp.path() + "/eval.txt").toStdString(), po);
        QCOMPARE(rowValue(2, "kld"), k.meanKld);
        QCOMPARE(rowValue(2, "kld_p99"), k.p99Kld);
        QCOMPARE(rowValue(2, "same_top"), k.sameTop);
        QCOMPARE(rowPpl(2), k.perplexity.perplexity);
        QVERIFY(rowValue(1, "kld") > 0.0);
        QVERIFY(!rows[1].toObject().contains("kld_vs_uniform"));
        const QJsonObject vs = rows[2].toObject()["kld_vs_uniform"].toObject();
        QCOMPARE(vs["against"].toString(), QStringLiteral("uniform@3"));
        QVERIFY(std::abs(vs["diff"].toDouble() - (rowValue(2, "kld") - rowValue(1, "kld"))) < 1e-12);
        QVERIFY(vs["lo"].toDouble() <= vs["diff"].toDouble() && vs["diff"].toDouble() <= vs["hi"].toDouble());
        QVERIFY(run.out.contains("Δkld vs uniform"));
        QVERIFY(run.out.contains("at 3 bits: "));
        // The lower-KLD row of the budget carries its paired difference to the other one.
        const int win = rowValue(1, "kld") <= rowValue(2, "kld") ? 1 : 2, lose = 3 - win;
        QVERIFY(!rows[lose].toObject().contains("kld_vs_others"));
        const QJsonArray others = rows[win].toObject()["kld_vs_others"].toArray();
        QCOMPARE(others.size(), 1);
        QCOMPARE(others[0].toObject()["against"].toString(), rows[lose].toObject()["label"].toString());
        QVERIFY(std::abs(others[0].toObject()["diff"].toDouble() - (rowValue(win, "kld") - rowValue(lose, "kld"))) < 1e-12);
    }

    // --target gguf: every row is a GGUF file whose perplexity equals plan --target gguf + quantize
    // --format gguf + eval of the file by hand; budget's file is no larger than uniform's at the same
    // integer width. --target vllm: the plans record their target and mix no widths in a group.
    void targets()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString model = tmp.path() + "/model";
        // 256 wide: the K-quants apply to gate/up, so budget has types to trade under uniform's size.
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", model, "--seed", "3", "--hidden", "256"});
        writeAll(tmp.path() + "/calib.txt", sampleText(3000, 1));
        writeAll(tmp.path() + "/eval.txt", sampleText(800, 2));
        const QStringList common = {"--calib", tmp.path() + "/calib.txt", "--bits", "3", "--samples", "4", "--seq-len", "32",
                                    "--seed", "0", "--ppl", tmp.path() + "/eval.txt", "--dtype", "f32", "--keep-models"};
        const QString work = tmp.path() + "/gguf";
        CliRun run = runCli(moewbCli(), QStringList{"pipeline", model, "--target", "gguf", "--strategy", "uniform,budget",
                                                    "--work", work} + common);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        QVERIFY(run.out.contains("target gguf"));
        const QJsonObject res = QJsonDocument::fromJson(readAll(work + "/results.json")).object();
        QCOMPARE(res["target"].toString(), QStringLiteral("gguf"));
        const QJsonArray rows = res["rows"].toArray();
        QCOMPARE(rows.size(), 3);
        auto row = [&](int i) { return rows[i].toObject(); };
        const QString uniformFile = work + "/model-uniform-3.gguf";
        QCOMPARE(row(1)["model_bytes"].toDouble(), double(QFileInfo(uniformFile).size()));
        QCOMPARE(row(2)["model_bytes"].toDouble(), double(QFileInfo(work + "/model-budget-3.gguf").size()));
        QVERIFY(row(2)["model_bytes"].toDouble() <= row(1)["model_bytes"].toDouble());
        const QJsonObject budgetPlan = QJsonDocument::fromJson(readAll(work + "/plan-budget-3.json")).object();
        QCOMPARE(budgetPlan["target"].toString(), QStringLiteral("gguf"));
        // budget's plan is plan --target gguf --bytes (its target) on the pipeline's statistics, whose
        // Fisher (calibrated for budget) makes the cost the predicted KL as there.
        CliRun h = runCli(moewbCli(), {"plan", model, "--stats", work + "/stats.h5", "--strategy", "budget", "--target",
                                       "gguf", "--bytes",
                                       QString::number(budgetPlan["provenance"].toObject()["target_bytes"].toInteger()),
                                       "--out", tmp.path() + "/hand-budget.json"});
        QVERIFY2(h.exitCode == 0, h.err.constData());
        QVERIFY(h.out.contains("cost model: fisher"));
        const QJsonObject hand = QJsonDocument::fromJson(readAll(tmp.path() + "/hand-budget.json")).object();
        for (const char* key : {"defaults", "rules", "overrides", "gguf"})
            QVERIFY2(hand[key] == budgetPlan[key], key);

        const QStringList calibArgs = {"--samples", "4", "--seq-len", "32", "--random-windows", "--seed", "0"};
        CliRun c = runCli(moewbCli(), QStringList{"calibrate", model, "--data", tmp.path() + "/calib.txt", "--dtype", "f32",
                                                  "--out", tmp.path() + "/s.h5"} + calibArgs);
        QVERIFY2(c.exitCode == 0, c.err.constData());
        c = runCli(moewbCli(), {"plan", model, "--stats", tmp.path() + "/s.h5", "--strategy", "uniform", "--bits", "3",
                                "--target", "gguf", "--out", tmp.path() + "/p.json"});
        QVERIFY2(c.exitCode == 0, c.err.constData());
        c = runCli(moewbCli(), QStringList{"quantize", model, "--plan", tmp.path() + "/p.json", "--format", "gguf", "--stats",
                                           tmp.path() + "/s.h5", "--calib", tmp.path() + "/calib.txt", "--dtype", "f32",
                                           "--out", tmp.path() + "/q.gguf"} + calibArgs);
        QVERIFY2(c.exitCode == 0, c.err.constData());
        c = runCli(moewbCli(), {"eval", tmp.path() + "/q.gguf", "--tokenizer", model, "--ppl", tmp.path() + "/eval.txt",
                                "--dtype", "f32", "--json"});
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QCOMPARE(row(1)["perplexity"].toObject()["eval.txt"].toDouble(), pplOf(c.out));
        QVERIFY(row(1)["kld"].toObject()["eval.txt"].toDouble() > 0.0);

        const QString vwork = tmp.path() + "/vllm";
        run = runCli(moewbCli(), QStringList{"pipeline", model, "--target", "vllm", "--strategy", "frequency", "--method",
                                             "rtn", "--work", vwork} + common);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        QCOMPARE(QJsonDocument::fromJson(readAll(vwork + "/plan-frequency-3.json")).object()["target"].toString(),
                 QStringLiteral("vllm"));
        c = runCli(moewbCli(), {"plan", "show", vwork + "/plan-frequency-3.json", "--model", model});
        QVERIFY2(c.exitCode == 0, c.err.constData());
        QVERIFY2(c.out.contains(", 0 of them mix widths"), c.out.constData());
    }

    void errors()
    {
        QTemporaryDir tmp;
        const QString model = tmp.path() + "/model";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", model, "--seed", "3"});
        writeAll(tmp.path() + "/calib.txt", sampleText(500, 1));
        CliRun r = runCli(moewbCli(), {"pipeline", model, "--calib", tmp.path() + "/calib.txt", "--strategy", "nope"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("unknown strategy 'nope'"));
        r = runCli(moewbCli(), {"pipeline", model, "--calib", tmp.path() + "/calib.txt", "--target", "tensorrt"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("--target must be gptq, vllm or gguf"));
        r = runCli(moewbCli(), {"pipeline", model});
        QCOMPARE(r.exitCode, 2);
        r = runCli(moewbCli(), {"pipeline", model, "--calib", tmp.path() + "/calib.txt", "--ppl", tmp.path() + "/missing.txt",
                                "--work", tmp.path() + "/w"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY(r.err.contains("missing.txt"));
        QVERIFY(!QFile::exists(tmp.path() + "/w/results.json"));
    }
};

QTEST_APPLESS_MAIN(TestPipeline)
#include "tst_pipeline.moc"
