// SPDX-License-Identifier: MIT
// Training: the closed-form pieces by hand (load-balancing loss and its gradient, schedule, AdamW),
// autograd through the inference forward against finite differences, and an end-to-end run of
// `moewb train-demo` that must learn a repeated text, reproduce itself bit for bit and load back.
#include "model/forward.h"
#include "moewb/hfconfig/hf_config.h"
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
  "vocab_size": 6144, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
  "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "num_local_experts": 4, "num_experts_per_tok": 2,
  "tie_word_embeddings": false, "bos_token_id": 6143, "eos_token_id": 6143, "torch_dtype": "bfloat16"
})";

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
                                    sourcePath("datasets/tokenizer/tokenizer.json"), "--data", tmp.path() + "/train.txt",
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
        QCOMPARE(log["parameters"].toInt(), 6144 * 32 * 2 + 32 + 2 * (2 * 32 + 32 * 32 * 2 + 2 * 32 * 16 + 4 * 32 + 4 * 3 * 32 * 48));

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
};

QTEST_APPLESS_MAIN(TestTrain)
#include "tst_train.moc"
