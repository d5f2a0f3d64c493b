// SPDX-License-Identifier: MIT
// Training: the closed-form pieces by hand (load-balancing loss and its gradient, schedule, AdamW),
// autograd through the inference forward against finite differences, and an end-to-end run of
// `moewb train-demo` that must learn a repeated text, reproduce itself bit for bit and load back;
// two threads bit for bit; a run stopped and resumed from its snapshot equals an uninterrupted one;
// the prefetching batch stream equals the synchronous one; bf16 autocast trains.
#include "model/forward.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/model/runtime.h"
#include "train/batches.h"
#include "train/optim.h"
#include "testutil.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace moewb;
using namespace moewb::test;

namespace {

const char* kTinyMixtral = R"({
  "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
  "vocab_size": 4096, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
  "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "num_local_experts": 4, "num_experts_per_tok": 2,
  "tie_word_embeddings": false, "bos_token_id": 4095, "eos_token_id": 4095, "torch_dtype": "bfloat16"
})";

/// A text the tiny model learns within tens of steps, and the common train-demo arguments.
QStringList tinyRun(const QString& dir, int steps)
{
    writeAll(dir + "/config.json", kTinyMixtral);
    QByteArray text;
    for (int i = 0; i < 300; ++i)
        text += "the quick brown fox jumps over the lazy dog. pack my box with five dozen liquor jugs. ";
    writeAll(dir + "/train.txt", text);
    return {"train-demo", "--config", dir + "/config.json", "--tokenizer", sourcePath("datasets/tokenizer-v2/tokenizer.json"),
            "--data", dir + "/train.txt", "--steps", QString::number(steps), "--batch", "4", "--seq-len", "32",
            "--lr", "1e-2", "--warmup", "5", "--log-every", "5", "--seed", "11", "--eval-tokens", "0"};
}

QJsonObject trainingLog(const QString& modelDir)
{
    return QJsonDocument::fromJson(readAll(modelDir + "/training_log.json")).object();
}

QList<double> losses(const QJsonObject& log)
{
    QList<double> out;
    for (const QJsonValue& v : log["log"].toArray())
        out.push_back(v.toObject()["loss"].toDouble());
    return out;
}

} // namespace

class TestTrain : public QObject {
    Q_OBJECT
private slots:
    void balanceLossHandComputed()
    {
        // Row 0 probabilities (1/4, 3/4), row 1 (1/2, 1/2): mean P = (0.375, 0.625).
        const at::Tensor logits = at::tensor({0.0, std::log(3.0), 0.0, 0.0}, at::kFloat).view({2, 2}).requires_grad_();
        const at::Tensor balanced = at::tensor({1, 0}, at::kLong).view({2, 1});
        QVERIFY(std::abs(balanceLoss(logits, balanced, 2).item<double>() - 1.0) < 1e-6);
        const at::Tensor skewed = at::tensor({1, 1}, at::kLong).view({2, 1});
        const at::Tensor loss = balanceLoss(logits, skewed, 2); // 2 · (0 · 0.375 + 1 · 0.625)
        QVERIFY(std::abs(loss.item<double>() - 1.25) < 1e-6);
        // d/dz_nj = E/N · p_nj (s_j − Σ_e s_e p_ne) with s = (0, 1).
        loss.backward();
        const at::Tensor g = logits.grad();
        QVERIFY(std::abs(g[0][0].item<double>() - (-0.1875)) < 1e-6);
        QVERIFY(std::abs(g[0][1].item<double>() - 0.1875) < 1e-6);
        QVERIFY(std::abs(g[1][0].item<double>() - (-0.25)) < 1e-6);
        QVERIFY(std::abs(g[1][1].item<double>() - 0.25) < 1e-6);
    }

    void scheduleHandComputed()
    {
        QCOMPARE(scheduledLr(1.0, 0.1, 10, 110, 0), 0.1);
        QCOMPARE(scheduledLr(1.0, 0.1, 10, 110, 9), 1.0);
        QCOMPARE(scheduledLr(1.0, 0.1, 10, 110, 10), 1.0);
        QVERIFY(std::abs(scheduledLr(1.0, 0.1, 10, 110, 60) - 0.55) < 1e-12);
        QVERIFY(std::abs(scheduledLr(1.0, 0.1, 10, 110, 110) - 0.1) < 1e-12);
        QVERIFY(std::abs(scheduledLr(2.0, 0.0, 0, 100, 0) - 2.0) < 1e-12);
    }

    void adamwHandComputed()
    {
        at::Tensor p = at::ones({1}, at::kDouble), m = at::zeros({1}, at::kDouble), v = at::zeros({1}, at::kDouble);
        const AdamWConfig c{0.9, 0.95, 1e-8, 0.1};
        adamwStep(p, at::full({1}, 0.5, at::kDouble), m, v, 1, 0.1, c, true);
        QVERIFY(std::abs(p.item<double>() - 0.890000002) < 1e-12);
        adamwStep(p, at::full({1}, -1.0, at::kDouble), m, v, 2, 0.1, c, true);
        QVERIFY(std::abs(p.item<double>() - 0.917437396571593) < 1e-12);
        at::Tensor q = at::ones({1}, at::kDouble), m2 = at::zeros({1}, at::kDouble), v2 = at::zeros({1}, at::kDouble);
        adamwStep(q, at::full({1}, 0.5, at::kDouble), m2, v2, 1, 0.1, c, false); // no decay: 1 − 0.1
        QVERIFY(std::abs(q.item<double>() - 0.900000002) < 1e-12);
    }

    void forwardGradientMatchesFiniteDifferences()
    {
        // Autograd through the inference forward (index_add_ into experts, sliced copies in
        // attention) against central differences of the loss, for parameters of every kind.
        const ModelConfig cfg = parseConfigJson(kTinyMixtral, "tiny");
        at::manual_seed(7);
        std::map<std::string, at::Tensor> t;
        for (const TensorSpec& s : expectedTensors(cfg)) {
            at::Tensor x = s.name.find("norm") != std::string::npos ? 1.0 + 0.1 * at::randn(s.shape)
                                                                     : 0.2 * at::randn(s.shape);
            t[s.name] = x.requires_grad_();
        }
        std::vector<LayerWeights> layers(size_t(cfg.numLayers));
        for (int64_t l = 0; l < cfg.numLayers; ++l) {
            layers[size_t(l)].layer = l;
            for (const TensorSpec& s : layerTensors(cfg, l))
                layers[size_t(l)].tensors[s.name] = t.at(s.name);
        }
        const HeadWeights head{t.at("model.norm.weight"), t.at("lm_head.weight")};
        const RopeTables rope = ropeTables(cfg, 9, at::kFloat);
        const at::Tensor ids = at::randint(0, cfg.vocabSize, {2, 9}, at::kLong);
        auto lossFn = [&] {
            at::Tensor x = at::embedding(t.at("model.embed_tokens.weight"), ids.narrow(1, 0, 8));
            for (const LayerWeights& w : layers)
                x = decoderLayer(cfg, w, x, rope, nullptr);
            const at::Tensor logits = finalLogits(cfg, head, x);
            return at::cross_entropy_loss(logits.reshape({-1, cfg.vocabSize}), ids.narrow(1, 1, 8).reshape({-1}));
        };
        lossFn().backward();
        const std::vector<std::string> probe = {
            "lm_head.weight", "model.norm.weight",
            "model.layers.1.block_sparse_moe.experts.0.w2.weight", "model.layers.1.block_sparse_moe.experts.3.w1.weight",
            "model.layers.1.block_sparse_moe.gate.weight", "model.layers.1.self_attn.q_proj.weight",
            "model.layers.1.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
            "model.layers.1.post_attention_layernorm.weight"};
        int checked = 0;
        for (const std::string& name : probe) {
            at::Tensor& w = t.at(name);
            QVERIFY2(w.grad().defined(), name.c_str());
            // The entry with the largest gradient: well above the finite-difference noise.
            const int64_t idx = w.grad().abs().reshape({-1}).argmax().item<int64_t>();
            const double analytic = w.grad().reshape({-1})[idx].item<double>();
            const double eps = 1e-2;
            double lp, lm;
            {
                at::NoGradGuard ng;
                float* p = w.data_ptr<float>() + idx;
                const float orig = *p;
                *p = orig + float(eps);
                lp = lossFn().item<double>();
                *p = orig - float(eps);
                lm = lossFn().item<double>();
                *p = orig;
            }
            const double numeric = (lp - lm) / (2 * eps);
            QVERIFY2(std::abs(numeric - analytic) <= 2e-3 + 0.03 * std::abs(analytic),
                     qPrintable(QString("%1: autograd %2 vs finite difference %3")
                                    .arg(QString::fromStdString(name)).arg(analytic).arg(numeric)));
            ++checked;
        }
        QCOMPARE(checked, int(probe.size()));
    }

    void trainDemoLearnsAndReproduces()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        writeAll(tmp.path() + "/config.json", kTinyMixtral);
        QByteArray text;
        for (int i = 0; i < 400; ++i)
            text += "the quick brown fox jumps over the lazy dog. ";
        writeAll(tmp.path() + "/train.txt", text);
        const QStringList common = {"train-demo", "--config", tmp.path() + "/config.json", "--tokenizer",
                                    sourcePath("datasets/tokenizer-v2/tokenizer.json"), "--data", tmp.path() + "/train.txt",
                                    "--eval", tmp.path() + "/train.txt", "--eval-tokens", "2000", "--steps", "60",
                                    "--batch", "4", "--seq-len", "32", "--lr", "1e-2", "--warmup", "5",
                                    "--log-every", "10", "--seed", "5"};
        const CliRun a = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/a"});
        QVERIFY2(a.exitCode == 0, a.err.constData());
        const CliRun b = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/b"});
        QVERIFY2(b.exitCode == 0, b.err.constData());
        // Same seed → the same bytes.
        QCOMPARE(readAll(tmp.path() + "/a/model.safetensors"), readAll(tmp.path() + "/b/model.safetensors"));

        const QJsonObject log = QJsonDocument::fromJson(readAll(tmp.path() + "/a/training_log.json")).object();
        const QJsonArray steps = log["log"].toArray();
        QCOMPARE(steps.size(), 6);
        const double first = steps.first().toObject()["loss"].toDouble();
        const double last = steps.last().toObject()["loss"].toDouble();
        QVERIFY2(first > 4.0 && last < 0.5, qPrintable(QString("loss %1 → %2").arg(first).arg(last)));
        const double evalLoss = log["eval_loss"].toDouble();
        QVERIFY2(evalLoss < 0.5, qPrintable(QString::number(evalLoss)));
        QCOMPARE(log["parameters"].toInt(), 4096 * 32 * 2 + 32 + 2 * (2 * 32 + 32 * 32 * 2 + 2 * 32 * 16 + 4 * 32 + 4 * 3 * 32 * 48));

        // The written checkpoint loads in the inference path and scores the text like training did
        // (bf16 weights, windows of 33 tokens as the trainer's evaluation used).
        writeAll(tmp.path() + "/eval.txt", text.left(4000));
        const CliRun e = runCli(moewbCli(), {"eval", tmp.path() + "/a", "--ppl", tmp.path() + "/eval.txt", "--ctx", "33",
                                             "--dtype", "f32", "--json"});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        const double ppl = QJsonDocument::fromJson(e.out).object()["perplexity"].toDouble();
        QVERIFY2(std::abs(std::log(ppl) - evalLoss) < 0.1, qPrintable(QString("%1 vs %2").arg(std::log(ppl)).arg(evalLoss)));

        // Errors: existing output dir; bad config.
        const CliRun again = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/a"});
        QCOMPARE(again.exitCode, 1);
        QVERIFY(again.err.contains("exists"));
        writeAll(tmp.path() + "/bad.json", "{\"architectures\": [\"NopeForCausalLM\"]}");
        QStringList bad = common;
        bad[2] = tmp.path() + "/bad.json";
        const CliRun c = runCli(moewbCli(), bad + QStringList{"--out", tmp.path() + "/c"});
        QCOMPARE(c.exitCode, 1);
        QVERIFY(c.err.contains("bad.json"));
        QVERIFY(!QFile::exists(tmp.path() + "/c"));
    }

    void batchStreamPrefetchAndResume()
    {
        std::vector<int32_t> stream(5000);
        for (size_t i = 0; i < stream.size(); ++i)
            stream[i] = int32_t((i * 7919) % 6143);
        // Synchronous, prefetched and resumed-at-step-9 streams give the same 20 batches.
        BatchStream sync(stream, 3, 16, 42, "", 0, 20, 0);
        BatchStream ahead(stream, 3, 16, 42, "", 0, 20, 2);
        std::vector<at::Tensor> want;
        std::string stateAt9;
        for (int64_t s = 0; s < 20; ++s) {
            const BatchStream::Batch a = sync.next(), b = ahead.next();
            QCOMPARE(a.step, s);
            QCOMPARE(b.step, s);
            QVERIFY(at::equal(a.ids, b.ids));
            QCOMPARE(BatchStream::rngToString(a.rng), BatchStream::rngToString(b.rng));
            want.push_back(a.ids);
            if (s == 8)
                stateAt9 = BatchStream::rngToString(a.rng);
        }
        BatchStream resumed(stream, 3, 16, 42, stateAt9, 9, 20, 2);
        for (int64_t s = 9; s < 20; ++s) {
            const BatchStream::Batch r = resumed.next();
            QCOMPARE(r.step, s);
            QVERIFY(at::equal(r.ids, want[size_t(s)]));
        }
        // The first window of the legacy sampler: mt19937_64(42) through uniform_int_distribution.
        std::mt19937_64 rng(42);
        std::uniform_int_distribution<int64_t> dist(0, int64_t(stream.size()) - 16 - 2);
        const int64_t start = dist(rng);
        for (int64_t t = 0; t <= 16; ++t)
            QCOMPARE(want[0][0][t].item<int64_t>(), int64_t(stream[size_t(start + t)]));
        bool threw = false;
        try {
            BatchStream bad(stream, 3, 16, 42, "", 5, 20, 0); // resuming needs the sampler state
        } catch (const InputError&) {
            threw = true;
        }
        QVERIFY(threw);
    }

    void twoThreadsAndWorkersDeterministic()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QStringList common = tinyRun(tmp.path(), 30);
        const QStringList threads2 = common + QStringList{"--threads", "2"};
        const CliRun a = runCli(moewbCli(), threads2 + QStringList{"--out", tmp.path() + "/a"});
        QVERIFY2(a.exitCode == 0, a.err.constData());
        const CliRun b = runCli(moewbCli(), threads2 + QStringList{"--out", tmp.path() + "/b", "--prefetch", "0"});
        QVERIFY2(b.exitCode == 0, b.err.constData());
        QCOMPARE(readAll(tmp.path() + "/a/model.safetensors"), readAll(tmp.path() + "/b/model.safetensors"));
        const QJsonObject log = trainingLog(tmp.path() + "/a");
        QCOMPARE(log["threads"].toInt(), 2);
        // Two data-parallel workers: deterministic too, and a different (equally good) run.
        const QStringList workers2 = common + QStringList{"--workers", "2"};
        const CliRun w1 = runCli(moewbCli(), workers2 + QStringList{"--out", tmp.path() + "/w1"});
        QVERIFY2(w1.exitCode == 0, w1.err.constData());
        const CliRun w2 = runCli(moewbCli(), workers2 + QStringList{"--out", tmp.path() + "/w2"});
        QVERIFY2(w2.exitCode == 0, w2.err.constData());
        QCOMPARE(readAll(tmp.path() + "/w1/model.safetensors"), readAll(tmp.path() + "/w2/model.safetensors"));
        QVERIFY(readAll(tmp.path() + "/w1/model.safetensors") != readAll(tmp.path() + "/a/model.safetensors"));
        const QJsonObject wlog = trainingLog(tmp.path() + "/w1");
        QCOMPARE(wlog["workers"].toInt(), 2);
        QCOMPARE(wlog["threads"].toInt(), 1);
        const QList<double> wl = losses(wlog);
        QVERIFY2(wl.first() > 6.0 && wl.last() < 2.0, qPrintable(QString("loss %1 -> %2").arg(wl.first()).arg(wl.last())));
        const CliRun odd = runCli(moewbCli(), common + QStringList{"--workers", "3", "--out", tmp.path() + "/odd"});
        QCOMPARE(odd.exitCode, 1);
        QVERIFY2(odd.err.contains("batch 4 is not a multiple of workers 3"), odd.err.constData());
        QCOMPARE(log["compute_dtype"].toString(), QString(cpuHasFastBf16() ? "bf16" : "f32"));
        const QList<double> l = losses(log);
        QCOMPARE(l.size(), 6);
        QVERIFY2(l.first() > 6.0 && l.last() < 2.0, qPrintable(QString("loss %1 -> %2").arg(l.first()).arg(l.last())));
    }

    void resumeEqualsUninterrupted()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        // Snapshots every 10 steps; 40 steps in one go, or stopped at 17 and resumed (twice: the
        // second session stops at 29, between two snapshots and between two log entries).
        const QStringList common = tinyRun(tmp.path(), 40) + QStringList{"--threads", "1", "--snapshot-every", "10"};
        const CliRun whole = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/whole"});
        QVERIFY2(whole.exitCode == 0, whole.err.constData());

        const QString out = tmp.path() + "/split", state = tmp.path() + "/split.state";
        const CliRun s1 = runCli(moewbCli(), common + QStringList{"--out", out, "--stop-at-step", "17"});
        QVERIFY2(s1.exitCode == 0, s1.err.constData());
        QVERIFY2(s1.out.contains("stopped after step 17 of 40"), s1.out.constData());
        QVERIFY(QFile::exists(state + "/step-00000017/state.json"));
        QVERIFY(QFile::exists(state + "/step-00000010/state.json"));
        QCOMPARE(trainingLog(out)["steps_done"].toInt(), 17); // a usable snapshot model meanwhile
        const CliRun s2 = runCli(moewbCli(), common + QStringList{"--out", out, "--resume", state, "--stop-at-step", "29"});
        QVERIFY2(s2.exitCode == 0, s2.err.constData());
        QVERIFY2(s2.out.contains("stopped after step 29 of 40"), s2.out.constData());
        // only the newest two snapshots are kept
        QVERIFY(!QFile::exists(state + "/step-00000010"));
        QVERIFY(QFile::exists(state + "/step-00000020/state.json"));
        const CliRun s3 = runCli(moewbCli(), common + QStringList{"--out", out, "--resume", state});
        QVERIFY2(s3.exitCode == 0, s3.err.constData());
        QVERIFY(QFile::exists(state + "/step-00000030/state.json")); // the last periodic snapshot stays

        QCOMPARE(readAll(out + "/model.safetensors"), readAll(tmp.path() + "/whole/model.safetensors"));
        const QJsonObject a = trainingLog(tmp.path() + "/whole"), b = trainingLog(out);
        QCOMPARE(losses(b), losses(a));
        QCOMPARE(b["steps_done"].toInt(), 40);
        QCOMPARE(b["start_step"].toInt(), 29);

        // A resumed run must match the snapshot's options and data.
        QStringList changed = common;
        changed[changed.indexOf("--lr") + 1] = "2e-2";
        const CliRun bad = runCli(moewbCli(), changed + QStringList{"--out", out, "--resume", state + "/step-00000030"});
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.contains("step-00000030/state.json: resumed run differs in lr"), bad.err.constData());
        // A fresh run does not silently mix with an earlier run's snapshots.
        const CliRun fresh = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/fresh", "--state", state});
        QCOMPARE(fresh.exitCode, 1);
        QVERIFY2(fresh.err.contains("holds training-state snapshots of an earlier run"), fresh.err.constData());
        const CliRun none = runCli(moewbCli(), common + QStringList{"--out", out, "--resume", tmp.path()});
        QCOMPARE(none.exitCode, 1);
        QVERIFY2(none.err.contains("no training-state snapshot"), none.err.constData());
    }

    void bf16AutocastTrains()
    {
        // Forced bf16 matmuls (emulated on CPUs without native bf16, hence only a few steps):
        // the run must learn like the fp32 one and record its compute dtype.
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QStringList common = tinyRun(tmp.path(), 30);
        const CliRun b = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/b", "--precision", "bf16"});
        QVERIFY2(b.exitCode == 0, b.err.constData());
        const CliRun f = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/f", "--precision", "f32"});
        QVERIFY2(f.exitCode == 0, f.err.constData());
        const QJsonObject lb = trainingLog(tmp.path() + "/b"), lf = trainingLog(tmp.path() + "/f");
        QCOMPARE(lb["compute_dtype"].toString(), QString("bf16"));
        QCOMPARE(lf["compute_dtype"].toString(), QString("f32"));
        const QList<double> xb = losses(lb), xf = losses(lf);
        // bf16 rounding slows this tiny model down (8.36 -> 2.23 against 8.33 -> 1.52 in fp32), not more
        QVERIFY2(xb.first() > 6.0 && xb.last() < 3.0 && xf.last() < 2.0,
                 qPrintable(QString("bf16 %1 -> %2, f32 -> %3").arg(xb.first()).arg(xb.last()).arg(xf.last())));
        QVERIFY(readAll(tmp.path() + "/b/model.safetensors") != readAll(tmp.path() + "/f/model.safetensors"));
        const CliRun bad = runCli(moewbCli(), common + QStringList{"--out", tmp.path() + "/x", "--precision", "fp8"});
        QCOMPARE(bad.exitCode, 2);
    }
};

QTEST_APPLESS_MAIN(TestTrain)
#include "tst_train.moc"
