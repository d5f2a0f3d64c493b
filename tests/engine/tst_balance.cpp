// SPDX-License-Identifier: MIT
// Expert-balanced calibration (#25, docs/calibration-coverage.md): each balanced Hessian (gate/up and
// down input of every routed expert, every MoE layer) equals tests/reference/reference_balance.py's
// float64 NumPy computation of the same weighting; the forward's output does not change; on a model
// with 128 experts (top-8) and few tokens, GPTQ with all-tokens balancing quantizes every expert with
// GPTQ (no fallbacks) where balancing off falls back, and the report's coverage says why.
#include "model/forward.h"
#include "model/weights.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan.h"
#include "moewb/quant/quantize.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/workflow/pipeline.h"
#include "quant/expert_balance.h"
#include "quant/input_collector.h"
#include "testutil.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <cstring>

using namespace moewb;
using namespace moewb::test;

namespace {

QString generate(const QString& root, const QString& name, const QStringList& extra)
{
    const QString out = root + "/" + name;
    runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), "mixtral", out, "--seed", "5", "--tiny"}
              + extra);
    return out;
}

/// Token ids [B][T] from a fixed generator.
std::vector<std::vector<int32_t>> randomIds(int64_t b, int64_t t, int64_t vocab, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const at::Tensor ids = at::randint(0, vocab, {b, t}, gen, at::TensorOptions().dtype(at::kInt));
    std::vector<std::vector<int32_t>> out(static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i)
        out[size_t(i)].assign(ids[i].data_ptr<int32_t>(), ids[i].data_ptr<int32_t>() + t);
    return out;
}

QString idsJson(const std::vector<std::vector<int32_t>>& ids)
{
    QJsonArray rows;
    for (const auto& r : ids) {
        QJsonArray row;
        for (int32_t v : r)
            row.append(v);
        rows.append(row);
    }
    return QString::fromUtf8(QJsonDocument(rows).toJson(QJsonDocument::Compact));
}

double relDiff(const at::Tensor& a, const at::Tensor& b)
{
    const double den = b.norm().item<double>();
    return (a.to(at::kDouble) - b).norm().item<double>() / (den > 0 ? den : 1.0);
}

struct Collected {
    std::map<std::pair<int64_t, int64_t>, ExpertCoverage> coverage;
    std::map<std::string, at::Tensor> hessians;
    std::map<std::string, std::pair<int64_t, double>> rowsWeight;
    double maxOutputDiff = 0; ///< |forward with the balancer − forward without observer|, every layer
    bool skippedExperts = false; ///< the balancer let the forward skip the routed experts
};

/// Runs the model layer by layer in float32 on `ids` in two batches, collecting every routed
/// expert's gate and down inputs through an ExpertBalancer.
Collected collect(const QString& dir, const std::vector<std::vector<int32_t>>& ids, ExpertBalance mode,
                  int64_t minTokens, double sampleThreshold = 0.0)
{
    at::NoGradGuard ng;
    const ModelConfig cfg = loadConfig(dir.toStdString());
    const Checkpoint ckpt = Checkpoint::open(dir.toStdString());
    const int64_t T = int64_t(ids[0].size());
    const RopeTables rope = ropeTables(cfg, T, at::kFloat);
    const at::Tensor embed = loadEmbedding(cfg, ckpt, at::kFloat);
    std::vector<at::Tensor> hidden; // two batches
    const size_t half = ids.size() / 2;
    for (auto [lo, hi] : {std::pair<size_t, size_t>{0, half}, {half, ids.size()}}) {
        std::vector<at::Tensor> rows;
        for (size_t i = lo; i < hi; ++i)
            rows.push_back(at::tensor(at::ArrayRef<int32_t>(ids[i])).to(at::kLong));
        hidden.push_back(embed.index_select(0, at::stack(rows).reshape({-1})).view({int64_t(hi - lo), T, -1}));
    }
    Collected out;
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        const LayerWeights w = loadLayerWeights(cfg, ckpt, l, at::kFloat);
        InputCollector col;
        for (int64_t e = 0; e < cfg.numExperts; ++e) {
            col.want(cfg.expertLinear(l, e, "gate"), cfg.hiddenSize);
            const std::string down = cfg.expertLinear(l, e, "down");
            col.want(down, w.get(down + ".weight").size(1));
        }
        ExpertBalancer bal(cfg, l, col, mode, minTokens, sampleThreshold);
        for (at::Tensor& h : hidden) {
            const at::Tensor plain = decoderLayer(cfg, w, h, rope, nullptr);
            const at::Tensor seen = decoderLayer(cfg, w, h, rope, &bal);
            // off / next-choices take the routed rows from the forward, which must stay unchanged;
            // all-tokens / sampled build them from the router's input, so the forward skips the
            // routed experts and its output is not used (the quantize pass carries a plain forward).
            if (bal.needsRoutedExperts())
                out.maxOutputDiff = std::max(out.maxOutputDiff, (seen - plain).abs().max().item<double>());
            else
                out.skippedExperts = true;
            h = plain;
        }
        bal.finishPass(nullptr, "test");
        for (const ExpertCoverage& c : bal.coverage())
            out.coverage[{c.layer, c.expert}] = c;
        for (int64_t e = 0; e < cfg.numExperts; ++e)
            for (const char* role : {"gate", "down"}) {
                const std::string key = cfg.expertLinear(l, e, role);
                out.hessians[key] = col.at(key).hessian();
                out.rowsWeight[key] = {col.at(key).rows(), col.at(key).weight()};
            }
    }
    return out;
}

} // namespace

class TstBalance : public QObject {
    Q_OBJECT
    QTemporaryDir m_tmp;

    /// Every expert's two Hessians, rows, weight and routed count against the NumPy reference.
    /// refMode: the reference's weighting (default `mode`); sampleThreshold: Sampled's τ.
    void compareWithReference(const QString& model, ExpertBalance mode, int64_t minTokens,
                              std::optional<ExpertBalance> refMode = {}, double sampleThreshold = 0.0)
    {
        const auto ids = randomIds(4, 24, 290, 11);
        const QString idsPath = m_tmp.path() + "/ids.json";
        writeAll(idsPath, idsJson(ids).toUtf8());
        const ExpertBalance ref = refMode.value_or(mode);
        const QString prefix = m_tmp.path() + "/ref-" + expertBalanceName(ref);
        runPython({sourcePath("tests/reference/reference_balance.py"), model, idsPath, prefix, "--mode",
                   expertBalanceName(ref), "--min-tokens", QString::number(minTokens)});
        const QJsonObject index = QJsonDocument::fromJson(readAll(prefix + ".json")).object();
        const QByteArray bin = readAll(prefix + ".bin");
        const Collected got = collect(model, ids, mode, minTokens, sampleThreshold);
        QCOMPARE(got.maxOutputDiff, 0.0); // the balancer only observes: the forward is unchanged
        QCOMPARE(got.skippedExperts, mode == ExpertBalance::AllTokens || mode == ExpertBalance::Sampled);
        const ModelConfig cfg = loadConfig(model.toStdString());
        const QJsonArray experts = index["experts"].toArray();
        QCOMPARE(int64_t(experts.size()), cfg.numExperts * cfg.numLayers);
        double worst = 0;
        int64_t balancedExtra = 0;
        for (const auto& v : experts) {
            const QJsonObject e = v.toObject();
            const int64_t layer = e["layer"].toInteger(), expert = e["expert"].toInteger();
            const ExpertCoverage& c = got.coverage.at({layer, expert});
            QCOMPARE(c.routed, e["routed"].toInteger());
            QCOMPARE(c.tokens, e["tokens"].toInteger());
            QVERIFY2(std::abs(c.weight - e["weight"].toDouble()) <= 1e-5 * std::max(1.0, e["weight"].toDouble()),
                     qPrintable(QString("layer %1 expert %2: weight %3 vs %4").arg(layer).arg(expert).arg(c.weight)
                                    .arg(e["weight"].toDouble())));
            balancedExtra += c.tokens - c.routed;
            for (const char* role : {"gate", "down"}) {
                const QJsonArray at = e[role].toArray();
                const int64_t off = at[0].toInteger(), n = at[1].toInteger();
                at::Tensor ref = at::empty({n, n}, at::kDouble);
                std::memcpy(ref.data_ptr<double>(), bin.constData() + off * 8, size_t(n * n * 8));
                const std::string key = cfg.expertLinear(layer, expert, role);
                const at::Tensor& h = got.hessians.at(key);
                QCOMPARE(got.rowsWeight.at(key).first, c.tokens);
                if (c.tokens == 0) {
                    QCOMPARE(ref.abs().max().item<double>(), 0.0);
                    QCOMPARE(h.abs().max().item<float>(), 0.0f);
                    continue;
                }
                worst = std::max(worst, relDiff(h, ref));
            }
        }
        qInfo("%s: worst relative Frobenius difference %.3g over %lld experts, %lld extra tokens",
              expertBalanceName(mode), worst, (long long)experts.size(), (long long)balancedExtra);
        QVERIFY2(worst < 1e-4, qPrintable(QString("worst relative difference %1").arg(worst)));
        if (mode != ExpertBalance::Off)
            QVERIFY(balancedExtra > 0);
    }

private slots:
    void initTestCase() { QVERIFY(m_tmp.isValid()); }

    void hessiansMatchNumpy_data()
    {
        QTest::addColumn<int>("mode");
        QTest::newRow("off") << int(ExpertBalance::Off);
        QTest::newRow("next-choices") << int(ExpertBalance::NextChoices);
        QTest::newRow("all-tokens") << int(ExpertBalance::AllTokens);
    }

    void hessiansMatchNumpy()
    {
        QFETCH(int, mode);
        const QString model = m_tmp.path() + "/m16";
        if (!QFileInfo::exists(model + "/config.json"))
            generate(m_tmp.path(), "m16", {"--experts", "16", "--top-k", "4"});
        compareWithReference(model, ExpertBalance(mode), 20);
    }

    /// Sampled with τ below every probability takes every token with weight p: all-tokens exactly.
    void sampledWithTinyThresholdIsAllTokens()
    {
        const QString model = m_tmp.path() + "/m16";
        if (!QFileInfo::exists(model + "/config.json"))
            generate(m_tmp.path(), "m16", {"--experts", "16", "--top-k", "4"});
        compareWithReference(model, ExpertBalance::Sampled, 20, ExpertBalance::AllTokens, 1e-300);
    }

    /// Sampled at its τ = 1 / (2k) = 1/8 (16 experts, top-4) against all-tokens on 2,048 tokens: per
    /// expert, Σ w estimates Σ p without bias — the Horvitz-Thompson variance Σ_{p<τ} p (τ − p) is at
    /// most τ Σ p, so |Σ w − Σ p| ≤ 5 √(τ Σ p) (5 sigma) —, at most Σ min(1, p / τ) ≤ 8N rows are
    /// expected over the 16 experts (all-tokens: 16N), and the draw follows the tokens, not their
    /// batch: the same sequences in another order (other batches) give the same rows and Hessians
    /// but for rare rows (33 of 27,160 here; ≤ 1 in 200 asserted) whose logits round differently.
    void sampledEstimatesAllTokens()
    {
        const QString model = m_tmp.path() + "/m16";
        if (!QFileInfo::exists(model + "/config.json"))
            generate(m_tmp.path(), "m16", {"--experts", "16", "--top-k", "4"});
        const auto ids = randomIds(32, 64, 290, 21);
        const Collected all = collect(model, ids, ExpertBalance::AllTokens, 0);
        const Collected sampled = collect(model, ids, ExpertBalance::Sampled, 0);
        const double tau = 1.0 / 8;
        int64_t rowsAll = 0, rowsSampled = 0;
        for (const auto& [key, c] : all.coverage) {
            const ExpertCoverage& s = sampled.coverage.at(key);
            QCOMPARE(s.routed, c.routed);
            QCOMPARE(c.tokens, int64_t(32 * 64));
            QVERIFY(s.tokens <= c.tokens);
            QVERIFY2(std::abs(s.weight - c.weight) <= 5 * std::sqrt(tau * c.weight),
                     qPrintable(QString("layer %1 expert %2: sampled weight %3, all-tokens %4")
                                    .arg(key.first).arg(key.second).arg(s.weight).arg(c.weight)));
            rowsAll += c.tokens;
            rowsSampled += s.tokens;
        }
        qInfo("sampled rows %lld of %lld (%.2f)", (long long)rowsSampled, (long long)rowsAll,
              double(rowsSampled) / double(rowsAll));
        QVERIFY(rowsSampled <= rowsAll / 2);
        // The same sequences in another order: other batches, other GEMM row positions, so a token's
        // logits may differ in their last bits; bf16 rounding absorbs that but for rare ties.
        std::vector<std::vector<int32_t>> reversed(ids.rbegin(), ids.rend());
        const Collected again = collect(model, reversed, ExpertBalance::Sampled, 0);
        int64_t moved = 0;
        double weight = 0, weightMoved = 0;
        for (const auto& [key, s] : sampled.coverage) {
            moved += std::abs(again.coverage.at(key).tokens - s.tokens);
            weight += s.weight;
            weightMoved += std::abs(again.coverage.at(key).weight - s.weight);
        }
        qInfo("after reordering: %lld of %lld rows, %.3g of %.3g weight differ", (long long)moved,
              (long long)rowsSampled, weightMoved, weight);
        QVERIFY(moved <= rowsSampled / 200);
        QVERIFY(weightMoved <= weight / 200);
    }

    void everyExpertGptqWithBalancing()
    {
        const QString model = generate(m_tmp.path(), "m128", {"--experts", "128", "--top-k", "8"});
        const Plan plan = parsePlanJson(R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 16, "method": "gptq"}, "rules": []})",
                                        "test-plan");
        const auto seqs = randomIds(4, 32, 290, 7); // 128 tokens × 8 choices over 128 experts
        auto run = [&](ExpertBalance mode) {
            QuantizeOptions opt;
            opt.balanceExperts = mode;
            opt.maxBatchTokens = 64; // two batches
            return quantizeModel(model.toStdString(), plan, seqs, opt, [](const QuantizedWeight&) {});
        };
        const QuantizeReport off = run(ExpertBalance::Off);
        const QuantizeReport all = run(ExpertBalance::AllTokens);
        const QuantizeReport next = run(ExpertBalance::NextChoices);
        const int64_t experts = 2 * 128;
        QCOMPARE(int64_t(off.experts.size()), experts);
        QCOMPARE(int64_t(all.experts.size()), experts);
        // Off: most experts below 32 routed tokens, some never routed, all of those fall back to RTN.
        int64_t never = 0;
        for (const ExpertCoverage& c : off.experts) {
            QCOMPARE(c.tokens, c.routed);
            never += c.routed == 0 ? 1 : 0;
        }
        QVERIFY(never > 0);
        QCOMPARE(int64_t(off.fallbackExperts.size()), expertsBelowMinimum(off, false));
        QVERIFY(expertsBelowMinimum(off, false) > experts / 2);
        // All tokens: every expert sees all 128 tokens, none falls back, every expert linear ran GPTQ.
        QCOMPARE(all.fallbackExperts.size(), size_t(0));
        QCOMPARE(expertsBelowMinimum(all, true), int64_t(0));
        for (size_t i = 0; i < all.experts.size(); ++i) {
            if (all.experts[i].layer == 0) // later layers' inputs come from differently quantized layers
                QCOMPARE(all.experts[i].routed, off.experts[i].routed); // routing unchanged
            QCOMPARE(all.experts[i].tokens, int64_t(128));
        }
        for (const LinearQuantResult& r : all.linears)
            if (r.expert >= 0)
                QCOMPARE(QString::fromStdString(r.method), QStringLiteral("gptq"));
        // Next choices: more tokens for the short experts, fewer fallbacks than off, and the report
        // lists exactly the experts still below the minimum as fallbacks.
        QVERIFY(expertsBelowMinimum(next, true) < expertsBelowMinimum(next, false));
        QCOMPARE(int64_t(next.fallbackExperts.size()), expertsBelowMinimum(next, true));
        const std::string json = reportToJson(all);
        const QJsonObject j = QJsonDocument::fromJson(QByteArray::fromStdString(json)).object();
        QCOMPARE(j["options"].toObject()["balance_experts"].toString(), QStringLiteral("all-tokens"));
        QCOMPARE(j["experts"].toArray().size(), int(experts));
        QCOMPARE(j["totals"].toObject()["experts_below_min"].toObject()["after_balancing"].toInt(), 0);
    }

    /// A stop request during a balanced pass takes effect inside it (the balancer polls per expert).
    void cancelsInsideBalancedPass()
    {
        const QString model = m_tmp.path() + "/m16";
        if (!QFileInfo::exists(model + "/config.json"))
            generate(m_tmp.path(), "m16", {"--experts", "16", "--top-k", "4"});
        const Plan plan = parsePlanJson(R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 16, "method": "gptq"}, "rules": []})",
                                        "test-plan");
        for (ExpertBalance mode : {ExpertBalance::NextChoices, ExpertBalance::AllTokens}) {
            QuantizeOptions opt;
            opt.balanceExperts = mode;
            opt.minExpertTokens = 40;
            bool sawGate = false;
            int after = 0;
            auto progress = [&](const Progress& p) {
                sawGate = sawGate || p.message.find("inputs of gate,up") != std::string::npos;
                return !(sawGate && ++after > 3);
            };
            QVERIFY_THROWS_EXCEPTION(Cancelled, quantizeModel(model.toStdString(), plan, randomIds(4, 24, 290, 3), opt,
                                                              [](const QuantizedWeight&) {}, progress));
            QVERIFY(sawGate);
        }
    }

    /// pipeline --balance-experts: a balanced row is paired with the off row of its strategy and
    /// budget only; strategy rows compare with the uniform row of their own mode.
    void pipelineComparesWithOff()
    {
        PipelineResult r;
        r.rows.push_back(PipelineRow{});
        r.rows[0].label = "baseline";
        auto row = [](const char* strategy, double bits, ExpertBalance b, std::vector<double> kld) {
            PipelineRow x;
            x.strategy = strategy;
            x.targetBits = bits;
            x.balance = b;
            x.label = std::string(strategy) + "@" + std::to_string(int(bits)) + (b == ExpertBalance::Off ? "" : "/b");
            x.windowKld = std::move(kld);
            x.windowTokens = {10, 10, 10, 10};
            return x;
        };
        r.rows.push_back(row("uniform", 3, ExpertBalance::Off, {1, 2, 3, 4}));
        r.rows.push_back(row("uniform", 3, ExpertBalance::AllTokens, {0.5, 1.5, 2.5, 3.5}));
        r.rows.push_back(row("uniform", 4, ExpertBalance::Off, {9, 9, 9, 9}));
        r.rows.push_back(row("budget", 3, ExpertBalance::AllTokens, {1, 1, 1, 1}));
        compareWithUniform(r);
        compareWithOff(r);
        QVERIFY(!r.rows[1].kldVsOff);
        QVERIFY(r.rows[2].kldVsOff);
        QCOMPARE(r.rows[2].offLabel, std::string("uniform@3"));
        QVERIFY(std::abs(r.rows[2].kldVsOff->diff - (8.0 / 40 - 10.0 / 40)) < 1e-12);
        QVERIFY(r.rows[2].kldVsOff->excludesZero());
        QVERIFY(!r.rows[4].kldVsOff); // no budget@3 row with balancing off
        QCOMPARE(r.rows[4].uniformLabel, std::string("uniform@3/b")); // uniform of the same mode
    }

    void parsesModes()
    {
        QCOMPARE(parseExpertBalance("next-choices", "x"), ExpertBalance::NextChoices);
        QCOMPARE(parseExpertBalance("sampled", "x"), ExpertBalance::Sampled);
        QCOMPARE(std::string(expertBalanceName(ExpertBalance::Sampled)), std::string("sampled"));
        QVERIFY_THROWS_EXCEPTION(InputError, parseExpertBalance("all", "--balance-experts"));
        QCOMPARE(balanceRanks(8, 128), int64_t(8));
        QCOMPARE(balanceRanks(2, 3), int64_t(1));
    }
};

QTEST_GUILESS_MAIN(TstBalance)
#include "tst_balance.moc"
