// SPDX-License-Identifier: MIT
// Calibration engine (#6): exact routing counts on a model whose routing is known by construction,
// activation statistics and expert correlation against NumPy, batching/streaming invariance,
// determinism, the weight outlier score, data loading and the calibrate CLI.
#include "calib/calibrator.h"
#include "model/streamer.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/stats/stats_h5.h"
#include "score/outlier.h"
#include "testutil.h"

#include <QDir>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <functional>
#include <map>

#include <csignal>
#include <sys/types.h>

using namespace moewb;
using namespace moewb::test;

namespace {

// Float statistics vs NumPy float64 on the same activations: fp32 inputs, double sums; the
// bound covers fp32 rounding of the stored mean (relative 2^-24) on O(1) values.
constexpr double kMaxActRelDiff = 1e-5;
// Expert outputs are recomputed by NumPy in float64 from the same fp32 inputs and weights; the
// C++ side runs them in fp32 (three GEMMs, relative error ~1e-6), then correlates in double.
constexpr double kMaxCorrelationDiff = 1e-4;
// Mixing weights and probabilities pass through fp32 softmax/top-k in the forward.
constexpr double kMaxMassDiff = 1e-4;

// ---------------------------------------------------------------------- routing-by-construction model
// Mixtral layout, hidden 16 = vocabulary 16, 4 experts, top-2, 3 layers. Token t embeds as the unit
// vector e_t; every o_proj and expert down projection is zero, so the residual stream stays e_t in
// every layer and the router input is s·e_t with s = 1/sqrt(1/16 + eps). Router row weights 3 for
// the first choice and 2 for the second (0 elsewhere) give logits 3s, 2s, 0, 0: margins of 4.
constexpr int64_t kH = 16, kE = 4, kL = 3, kI = 8;
constexpr double kEps = 1e-5;

std::pair<int64_t, int64_t> route(int64_t layer, int64_t t)
{
    switch (layer) {
    case 0:
        return {t % 4, (t + 1) % 4};
    case 1: // expert 3 is never chosen: dead
        return {(t / 4) % 3, (t / 4 + 1) % 3};
    default:
        return {(t * 3) % 4, (t * 3 + 2) % 4};
    }
}

void writeRoutedModel(const QString& dir)
{
    QDir().mkpath(dir);
    const QByteArray config = R"({
  "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 16,
  "intermediate_size": 8, "num_hidden_layers": 3, "num_attention_heads": 2, "num_key_value_heads": 2,
  "num_local_experts": 4, "num_experts_per_tok": 2, "vocab_size": 16, "max_position_embeddings": 256,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": null, "tie_word_embeddings": false,
  "torch_dtype": "float32", "hidden_act": "silu"
})";
    writeAll(dir + "/config.json", config);
    const ModelConfig cfg = loadConfig(dir.toStdString());
    std::map<std::string, at::Tensor> t;
    at::Generator gen = at::detail::createCPUGenerator(7);
    for (const TensorSpec& s : expectedTensors(cfg)) {
        const std::string& n = s.name;
        at::Tensor v;
        if (n == "model.embed_tokens.weight")
            v = at::eye(kH, at::kFloat);
        else if (n.find("norm") != std::string::npos)
            v = at::ones(s.shape, at::kFloat);
        else if (n.find("o_proj") != std::string::npos || n.find(".w2.") != std::string::npos)
            v = at::zeros(s.shape, at::kFloat);
        else if (n.find(".gate.weight") != std::string::npos) {
            const int64_t layer = std::stoll(n.substr(std::string("model.layers.").size()));
            v = at::zeros(s.shape, at::kFloat);
            for (int64_t tok = 0; tok < kH; ++tok) {
                const auto [a, b] = route(layer, tok);
                v[a][tok] = 3.0f;
                v[b][tok] = 2.0f;
            }
        } else
            v = at::randn(s.shape, gen, at::kFloat) * 0.3;
        t[n] = v.contiguous();
    }
    SafetensorsWriter w((dir + "/model.safetensors").toStdString());
    for (const auto& [n, v] : t)
        w.declare(n, DType::F32, v.sizes().vec());
    for (const auto& [n, v] : t)
        w.write(n, v.data_ptr(), uint64_t(v.nbytes()));
    w.commit();
}

/// Test tokenizer: letter 'a' + i → id i (mod 16), everything else ignored.
std::vector<int32_t> letterTokens(const std::string& s)
{
    std::vector<int32_t> out;
    for (char c : s)
        if (c >= 'a' && c <= 'z')
            out.push_back(int32_t((c - 'a') % 16));
    return out;
}

QString generate(const QString& root, const QString& arch, const QStringList& extra = {}, const QString& name = {})
{
    const QString out = root + "/" + (name.isEmpty() ? arch : name);
    runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "5"} + extra);
    return out;
}

std::vector<at::Tensor> randomSequences(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    std::vector<at::Tensor> out;
    for (int64_t len : lengths)
        out.push_back(at::randint(0, vocab, {len}, gen, at::TensorOptions().dtype(at::kLong)));
    return out;
}

void normalize(CalibStats& s)
{
    s.provenance.created.clear();
    s.provenance.optionsJson.clear();
}

// Exact counts, floats within kMaxBatchRelDiff: what an fp32 forward that is not bitwise
// batch-invariant still guarantees.
constexpr double kMaxBatchRelDiff = 1e-5;
bool close(double a, double b)
{
    return (std::isnan(a) && std::isnan(b)) || std::abs(a - b) <= kMaxBatchRelDiff * std::max(1.0, std::abs(b));
}
template <typename V>
bool closeAll(const V& a, const V& b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!close(double(a[i]), double(b[i])))
            return false;
    return true;
}
bool sameCountsCloseFloats(const CalibStats& a, const CalibStats& b)
{
    bool ok = a.layers.size() == b.layers.size() && a.linears.size() == b.linears.size();
    for (size_t l = 0; ok && l < a.layers.size(); ++l) {
        const LayerStats &x = a.layers[l], &y = b.layers[l];
        ok = close(x.cosine.attn, y.cosine.attn) && close(x.cosine.mlp, y.cosine.mlp)
            && close(x.cosine.block, y.cosine.block) && x.cosine.tokens == y.cosine.tokens && x.isMoe == y.isMoe;
        if (ok && x.isMoe) {
            const RouterStats &r = x.router, &s = y.router;
            ok = r.tokens == s.tokens && r.expertTokens == s.expertTokens && r.expertTop1 == s.expertTop1
                && r.domainTokens == s.domainTokens && r.coactivation == s.coactivation
                && r.transitions == s.transitions && r.deadExperts == s.deadExperts
                && r.correlationTokens == s.correlationTokens && closeAll(r.expertWeightMass, s.expertWeightMass)
                && closeAll(r.expertProbMass, s.expertProbMass) && close(r.routerEntropy, s.routerEntropy)
                && closeAll(r.correlation.data, s.correlation.data);
        }
    }
    for (size_t i = 0; ok && i < a.linears.size(); ++i) {
        const LinearStats &x = a.linears[i], &y = b.linears[i];
        ok = x.tokens == y.tokens && closeAll(x.actAbsMax, y.actAbsMax) && closeAll(x.actSqMean, y.actSqMean)
            && x.outlierScore == y.outlierScore && x.outlierColumn == y.outlierColumn;
        if (!ok)
            qWarning("differs: %s", x.name.c_str());
    }
    return ok;
}

/// Collects every hook's tensors for the NumPy comparison.
class DumpObserver : public ForwardObserver {
public:
    bool wantsLinearInputs() const override { return true; }
    void linearInput(int64_t, int64_t, const std::string& name, const at::Tensor& x) override
    {
        linears[name].push_back(x.to(at::kFloat).clone());
    }
    void block(int64_t layer, BlockPart part, const at::Tensor& in, const at::Tensor& out) override
    {
        const std::string k = std::to_string(layer) + "." + std::to_string(int(part));
        blocks[k + ".in"].push_back(in.to(at::kFloat).clone());
        blocks[k + ".out"].push_back(out.to(at::kFloat).clone());
    }
    void routing(int64_t layer, const at::Tensor& logits, const at::Tensor&, const at::Tensor&) override
    {
        blocks["logits." + std::to_string(layer)].push_back(logits.to(at::kFloat).clone());
    }
    void moeInput(const LayerWeights& w, const at::Tensor& h) override
    {
        blocks["moe." + std::to_string(w.layer)].push_back(h.to(at::kFloat).clone());
    }
    std::map<std::string, std::vector<at::Tensor>> linears, blocks;

    /// Writes every group as one raw f32 file (rows concatenated in arrival order) + manifest.json.
    void write(const QString& dir) const
    {
        QJsonObject manifest;
        int n = 0;
        auto put = [&](const std::string& key, const std::vector<at::Tensor>& parts, const char* kind) {
            const at::Tensor all = at::cat(parts).contiguous();
            const QString file = QString("t%1.f32").arg(n++);
            writeAll(dir + "/" + file, QByteArray(static_cast<const char*>(all.data_ptr()), qsizetype(all.nbytes())));
            manifest[QString::fromStdString(key)] = QJsonObject{
                {"file", file}, {"rows", qint64(all.size(0))}, {"cols", qint64(all.size(1))}, {"kind", kind}};
        };
        for (const auto& [k, v] : linears)
            put(k, v, "linear");
        for (const auto& [k, v] : blocks)
            put(k, v, "other");
        writeAll(dir + "/manifest.json", QJsonDocument(manifest).toJson());
    }
};

} // namespace

class TestCalibrate : public QObject {
    Q_OBJECT
private slots:
    void initTestCase()
    {
        at::set_num_threads(2);
        at::manual_seed(0);
        QVERIFY(m_tmp.isValid());
        m_routed = m_tmp.path() + "/routed";
        writeRoutedModel(m_routed);
    }

    // (a) Every count against a direct computation from route() on the token stream.
    void routingCountsAreExact()
    {
        const QString a = m_tmp.path() + "/a.ids.json", b = m_tmp.path() + "/b.jsonl";
        std::vector<int32_t> stream, domain;
        QJsonArray ida;
        for (int i = 0; i < 40; ++i) {
            ida.append((i * 7 + 3) % 16);
            stream.push_back((i * 7 + 3) % 16);
            domain.push_back(0);
        }
        writeAll(a, QJsonDocument(ida).toJson());
        writeAll(b, "{\"text\": \"abcdefghij\", \"domain\": \"math\"}\n"
                    "{\"text\": \"ponmlkjihgfedcba\"}\n\n"
                    "[1, 2, 3, 4]\n");
        for (int32_t v : letterTokens("abcdefghij")) {
            stream.push_back(v);
            domain.push_back(1);
        }
        for (int32_t v : letterTokens("ponmlkjihgfedcba")) {
            stream.push_back(v);
            domain.push_back(2);
        }
        for (int32_t v : {1, 2, 3, 4}) {
            stream.push_back(v);
            domain.push_back(2);
        }
        QCOMPARE(stream.size(), size_t(70));

        CalibrateOptions opt;
        opt.data = {{a.toStdString(), "code"}, {b.toStdString(), ""}};
        opt.samples = 5; // 4 windows of 16 and a tail of 6: all 70 tokens
        opt.seqLen = 16;
        opt.maxBatchTokens = 32;
        opt.probeTokens = 20;
        const CalibStats st = calibrate(m_routed.toStdString(), opt, letterTokens);

        const StatsProvenance& p = st.provenance;
        QCOMPARE(p.numTokens, int64_t(70));
        QCOMPARE(p.numSamples, int64_t(5));
        QCOMPARE(p.domains, (std::vector<std::string>{"code", "math", "(unlabeled)"}));
        QCOMPARE(p.domainTokenCounts, (std::vector<int64_t>{40, 10, 20}));
        QCOMPARE(p.dataFiles.size(), size_t(2));
        QCOMPARE(p.dataFiles[0].format, std::string("ids"));
        QCOMPARE(p.dataFiles[1].format, std::string("jsonl"));
        QCOMPARE(p.dataFiles[0].hash, sha256File(a.toStdString()));

        const double s = 1.0 / std::sqrt(1.0 / 16 + kEps);
        for (int64_t l = 0; l < kL; ++l) {
            std::vector<int64_t> count(kE, 0), top1(kE, 0), dom(3 * kE, 0), coact(kE * kE, 0), trans(kE * kE, 0);
            std::vector<double> wmass(kE, 0), pmass(kE, 0);
            double entropy = 0;
            for (size_t i = 0; i < stream.size(); ++i) {
                const auto [x, y] = route(l, stream[i]);
                count[x]++, count[y]++, top1[x]++;
                dom[domain[i] * kE + x]++, dom[domain[i] * kE + y]++;
                for (int64_t u : {x, y})
                    for (int64_t v : {x, y})
                        coact[u * kE + v]++;
                if (l + 1 < kL) {
                    const auto [x2, y2] = route(l + 1, stream[i]);
                    for (int64_t u : {x, y})
                        for (int64_t v : {x2, y2})
                            trans[u * kE + v]++;
                }
                // logits 3s, 2s, 0, 0: softmax over all four; Mixtral renormalizes the top two.
                const double z = std::exp(3 * s) + std::exp(2 * s) + 2.0;
                const double px = std::exp(3 * s) / z, py = std::exp(2 * s) / z, p0 = 1.0 / z;
                wmass[x] += px / (px + py);
                wmass[y] += py / (px + py);
                for (int64_t e = 0; e < kE; ++e)
                    pmass[e] += (e == x) ? px : (e == y) ? py : p0;
                entropy += -(px * std::log(px) + py * std::log(py) + 2 * p0 * std::log(p0));
            }
            const RouterStats* r = st.router(l);
            QVERIFY(r);
            QCOMPARE(r->tokens, int64_t(70));
            QCOMPARE(r->expertTokens, count);
            QCOMPARE(r->expertTop1, top1);
            QCOMPARE(r->domainTokens.rows, int64_t(3));
            QCOMPARE(r->domainTokens.data, dom);
            QCOMPARE(r->coactivation.data, coact);
            QCOMPARE(r->nextMoeLayer, l + 1 < kL ? l + 1 : int64_t(-1));
            if (l + 1 < kL)
                QCOMPARE(r->transitions.data, trans);
            else
                QCOMPARE(r->transitions.cols, int64_t(0));
            for (int64_t e = 0; e < kE; ++e) {
                QVERIFY(std::abs(r->expertWeightMass[e] - wmass[e]) < kMaxMassDiff);
                QVERIFY(std::abs(r->expertProbMass[e] - pmass[e]) < kMaxMassDiff);
            }
            QVERIFY(std::abs(r->routerEntropy - entropy / 70) < kMaxMassDiff);
            QCOMPARE(r->correlationTokens, int64_t(20));
            // Attention and MoE add exactly zero: every cosine is 1.
            const BlockCosine& c = st.layers[l].cosine;
            QCOMPARE(c.tokens, int64_t(70));
            QVERIFY(std::abs(c.attn - 1) < 1e-12 && std::abs(c.mlp - 1) < 1e-12 && std::abs(c.block - 1) < 1e-12);
        }
        // Hand-checked literals: layer 1 never picks expert 3; every token hits two experts.
        QCOMPARE(st.router(1)->deadExperts, (std::vector<int64_t>{3}));
        QVERIFY(st.router(0)->deadExperts.empty());
        QCOMPARE(st.totalDeadExperts(), int64_t(1));
        QCOMPARE(deadExpertNames(m_routed.toStdString(), st),
                 (std::vector<std::string>{"model.layers.1.block_sparse_moe.experts.3"}));

        // Router inputs are s·e_t: abs-max s on channels of tokens that occur, mean square s²·n_t/70.
        std::vector<int64_t> perToken(16, 0);
        for (int32_t v : stream)
            perToken[v]++;
        for (const LinearStats& ls : st.linears) {
            if (ls.role == "router") {
                QCOMPARE(ls.tokens, int64_t(70));
                for (int64_t c = 0; c < kH; ++c) {
                    QVERIFY(std::abs(ls.actAbsMax[c] - (perToken[c] ? s : 0.0)) < 1e-5);
                    QVERIFY(std::abs(ls.actSqMean[c] - s * s * double(perToken[c]) / 70) < 1e-4);
                }
                // Columns {3, 2, 0, 0}: max 3 over mean 5/4 = 2.4 everywhere; the first column wins.
                QVERIFY(std::abs(ls.outlierScore - 2.4f) < 1e-6);
                QCOMPARE(ls.outlierColumn, int64_t(0));
            }
            if (ls.role == "expert.gate")
                QCOMPARE(ls.tokens, st.router(ls.layer)->expertTokens[ls.expert]);
            if (ls.role == "expert.down" && ls.tokens == 0)
                QVERIFY(ls.actAbsMax.empty()); // dead expert: not observed
            if (ls.role == "o_proj") // all-zero weight: every column skipped
                QVERIFY(std::isnan(ls.outlierScore) && ls.outlierColumn == -1);
        }
        validateStats(st);
    }

    // (a) continued: consecutive windows, tail, random windows by seed.
    void windows()
    {
        auto w = calibWindows(70, 5, 16, false, 0);
        QCOMPARE(w.size(), size_t(5));
        QCOMPARE(w[4].begin, int64_t(64));
        QCOMPARE(w[4].end, int64_t(70));
        QCOMPARE(calibWindows(70, 100, 16, false, 0).size(), size_t(5));
        QCOMPARE(calibWindows(70, 2, 16, false, 0).back().end, int64_t(32));
        const auto r1 = calibWindows(1000, 50, 16, true, 3), r2 = calibWindows(1000, 50, 16, true, 3);
        const auto r3 = calibWindows(1000, 50, 16, true, 4);
        bool same = true, differ = false;
        for (size_t i = 0; i < r1.size(); ++i) {
            same = same && r1[i].begin == r2[i].begin;
            differ = differ || r1[i].begin != r3[i].begin;
            QVERIFY(r1[i].begin >= 0 && r1[i].begin <= 1000 - 16 - 1 && r1[i].end - r1[i].begin == 16);
        }
        QVERIFY(same && differ);
        QVERIFY_THROWS_EXCEPTION(InputError, calibWindows(16, 1, 16, true, 0));
        QVERIFY_THROWS_EXCEPTION(InputError, calibWindows(16, 0, 16, false, 0));
    }

    void sha256KnownAnswers()
    {
        QCOMPARE(sha256Hex(""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        QCOMPARE(sha256Hex("abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        const std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        QCOMPARE(sha256Hex(two), std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
        QCOMPARE(sha256Hex(std::string(1000000, 'a')),
                 std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    }

    // (b) Activation statistics, block cosines, entropy and the expert correlation against NumPy
    // on the very activations the forward produced.
    void statisticsMatchNumpy_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::newRow("mixtral") << "mixtral";
        QTest::newRow("qwen2_moe") << "qwen2_moe"; // dense layer 1, shared expert + its gate
        QTest::newRow("deepseek") << "deepseek";   // dense layer 0, shared experts
    }

    void statisticsMatchNumpy()
    {
        QFETCH(QString, arch);
        const QString dir = generate(m_tmp.path(), arch);
        const Model model(dir.toStdString());
        const auto seqs = randomSequences({12, 12, 12, 7}, model.config().vocabSize, 21);
        TokenLayout layout = layoutOf(seqs);
        CalibrateOptions opt;
        opt.dtype = "f32";
        opt.maxBatchTokens = 24;
        opt.probeTokens = 1000; // every token, so NumPy can use all dumped MoE inputs
        DumpObserver dump;
        const CalibStats st = runCalibration(model, seqs, layout, opt, &dump);
        const QString out = m_tmp.path() + "/dump-" + arch;
        QDir().mkpath(out);
        dump.write(out);
        const QJsonObject ref = QJsonDocument::fromJson(
                                    runPython({sourcePath("tests/engine/calib_reference.py"), dir, out}))
                                    .object();

        int checkedLinears = 0;
        for (const LinearStats& ls : st.linears) {
            const QJsonObject r = ref["linears"].toObject()[QString::fromStdString(ls.name)].toObject();
            if (r.isEmpty()) {
                QCOMPARE(ls.tokens, int64_t(0));
                continue;
            }
            QCOMPARE(ls.tokens, r["tokens"].toInteger());
            const QJsonArray am = r["absmax"].toArray(), sq = r["sqmean"].toArray();
            QCOMPARE(int64_t(am.size()), int64_t(ls.actAbsMax.size()));
            for (int c = 0; c < am.size(); ++c) {
                QVERIFY(std::abs(ls.actAbsMax[c] - am[c].toDouble()) <= kMaxActRelDiff * std::abs(am[c].toDouble()));
                QVERIFY2(std::abs(ls.actSqMean[c] - sq[c].toDouble()) <= kMaxActRelDiff * std::abs(sq[c].toDouble()) + 1e-30,
                         qPrintable(QString::fromStdString(ls.name)));
            }
            QVERIFY(std::abs(ls.outlierScore - r["outlier"].toDouble()) <= 1e-5 * r["outlier"].toDouble());
            QCOMPARE(ls.outlierColumn, r["outlier_column"].toInteger());
            ++checkedLinears;
        }
        QVERIFY(checkedLinears > 10);
        for (const LayerStats& l : st.layers) {
            const QJsonObject r = ref["layers"].toObject()[QString::number(l.layer)].toObject();
            QVERIFY(std::abs(l.cosine.attn - r["cos_attn"].toDouble()) < 1e-6);
            QVERIFY(std::abs(l.cosine.mlp - r["cos_mlp"].toDouble()) < 1e-6);
            QVERIFY(std::abs(l.cosine.block - r["cos_whole"].toDouble()) < 1e-6);
            QCOMPARE(l.isMoe, r.contains("correlation"));
            if (!l.isMoe)
                continue;
            QVERIFY(std::abs(l.router.routerEntropy - r["entropy"].toDouble()) < 1e-6);
            const QJsonArray pm = r["prob_mass"].toArray();
            for (int e = 0; e < pm.size(); ++e)
                QVERIFY(std::abs(l.router.expertProbMass[e] - pm[e].toDouble()) < 1e-5);
            const QJsonArray corr = r["correlation"].toArray();
            QCOMPARE(l.router.correlationTokens, int64_t(43));
            QCOMPARE(l.router.correlationMethod, std::string("pearson"));
            double maxDiff = 0;
            for (int i = 0; i < corr.size(); ++i)
                for (int j = 0; j < corr.size(); ++j)
                    maxDiff = std::max(maxDiff, std::abs(l.router.correlation.at(i, j)
                                                         - corr[i].toArray()[j].toDouble()));
            QVERIFY2(maxDiff < kMaxCorrelationDiff, qPrintable(QString::number(maxDiff)));
            QVERIFY(std::abs(l.router.correlation.at(0, 0) - 1.0f) < 1e-6);
        }
    }

    // (c) Streaming or not, any batch size: identical statistics; and two runs are identical.
    void invariantToBatchingAndStreaming_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("dtype");
        QTest::newRow("mixtral-f32") << "mixtral" << "f32";
        QTest::newRow("qwen2_moe-f32") << "qwen2_moe" << "f32";
        QTest::newRow("deepseek-bf16") << "deepseek" << "bf16";
    }

    void invariantToBatchingAndStreaming()
    {
        QFETCH(QString, arch);
        QFETCH(QString, dtype);
        const QString dir = generate(m_tmp.path(), arch, {"--dtype", dtype}, arch + "-" + dtype);
        const Model model(dir.toStdString());
        const auto seqs = randomSequences({16, 16, 16, 16, 9, 9, 5}, model.config().vocabSize, 4);
        TokenLayout layout = layoutOf(seqs);
        layout.numDomains = 2;
        for (int64_t t = 0; t < layout.offset.back() + layout.length.back(); ++t)
            layout.domain.push_back(t % 3 == 0 ? 0 : 1);
        CalibrateOptions opt;
        opt.dtype = dtype.toStdString();
        opt.probeTokens = 40;
        const CalibStats base = runCalibration(model, seqs, layout, opt);
        QVERIFY(base.router(base.numLayers - 1));
        QCOMPARE(base.router(base.numLayers - 1)->correlationTokens, int64_t(40));
        struct Variant {
            bool streaming;
            int64_t batch;
        };
        for (const Variant v : {Variant{true, 8192}, Variant{false, 8192}, Variant{true, 16}, Variant{true, 1},
                                Variant{false, 33}, Variant{true, 50}}) {
            CalibrateOptions o = opt;
            o.streaming = v.streaming;
            o.maxBatchTokens = v.batch;
            const CalibStats got = runCalibration(model, seqs, layout, o);
            if (dtype == "bf16" || v.batch == opt.maxBatchTokens) {
                for (int64_t l = 0; l < base.numLayers; ++l)
                    QVERIFY2(got.layers[l] == base.layers[l], qPrintable(QString("layer %1, streaming %2, batch %3")
                                                                             .arg(l).arg(v.streaming).arg(v.batch)));
                for (size_t i = 0; i < base.linears.size(); ++i)
                    QVERIFY2(got.linears[i] == base.linears[i], base.linears[i].name.c_str());
                QVERIFY(got == base);
            } else {
                // fp32 forward: BLAS rounds the [b·T, H] projections differently for another b, so
                // only the counts are bitwise equal here (Note [Batch-invariant accumulation]).
                QVERIFY(sameCountsCloseFloats(got, base));
            }
        }
    }

    // (d) The outlier score on a hand-computed weight.
    void outlierScoreByHand()
    {
        // Columns: |1|,|3| → 3 / 2 = 1.5; |-4|,|0| → 4 / 2 = 2; zeros → skipped.
        const at::Tensor w = at::tensor({1.0f, -4.0f, 0.0f, 3.0f, 0.0f, 0.0f}).view({2, 3});
        OutlierScore s = weightOutlierScore(w);
        QCOMPARE(s.score, 2.0f);
        QCOMPARE(s.column, int64_t(1));
        // eps = 1: 3/3, 4/3, 0/1.
        s = weightOutlierScore(w, 1.0);
        QVERIFY(std::abs(s.score - 4.0f / 3.0f) < 1e-7);
        QCOMPARE(s.column, int64_t(1));
        // Ties go to the first column; bf16 input is upcast exactly.
        s = weightOutlierScore(at::tensor({2.0f, 2.0f, 1.0f, 1.0f}).view({2, 2}).to(at::kBFloat16));
        QVERIFY(std::abs(s.score - 4.0f / 3.0f) < 1e-7);
        QCOMPARE(s.column, int64_t(0));
        QVERIFY(std::isnan(weightOutlierScore(at::zeros({3, 3})).score));
    }

    void dataErrors()
    {
        QVERIFY_THROWS_EXCEPTION(InputError, loadCalibData({{m_tmp.path().toStdString() + "/missing.txt", ""}}, letterTokens));
        const QString txt = m_tmp.path() + "/plain.txt";
        writeAll(txt, "hello");
        QVERIFY_THROWS_EXCEPTION(InputError, loadCalibData({{txt.toStdString(), ""}}, {})); // text needs a tokenizer
        const CalibTokens t = loadCalibData({{txt.toStdString(), ""}}, letterTokens);
        QCOMPARE(t.ids.size(), size_t(5));
        QVERIFY(t.domains.empty());
        const QString bad = m_tmp.path() + "/bad.jsonl";
        writeAll(bad, "{\"text\": \"ok\"}\n{\"txt\": 1}\n");
        try {
            loadCalibData({{bad.toStdString(), ""}}, letterTokens);
            QFAIL("expected an error");
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).contains("bad.jsonl:2"), e.what());
        }
        const QString ids = m_tmp.path() + "/nested.ids.json";
        writeAll(ids, "[[1,2,3],[4,5]]");
        QCOMPARE(loadCalibData({{ids.toStdString(), ""}}, {}).ids, (std::vector<int32_t>{1, 2, 3, 4, 5}));
    }

    // (e) The CLI writes a readable file; bad inputs give one line, exit 1/2 and no file.
    void cli()
    {
        if (!QFileInfo(moewbCli()).isExecutable())
            QSKIP("moewb binary not built");
        const QString dir = generate(m_tmp.path(), "qwen3_moe", {}, "cli-model");
        const QString text = m_tmp.path() + "/cli.txt", jsonl = m_tmp.path() + "/cli.jsonl";
        QByteArray words;
        for (int i = 0; i < 200; ++i)
            words += "the quick brown fox " + QByteArray::number(i) + " jumps over the lazy dog. ";
        writeAll(text, words);
        writeAll(jsonl, "{\"text\": \"def f(x): return x * 2\", \"domain\": \"code\"}\n"
                        "{\"text\": \"Bonjour tout le monde, ceci est un test.\", \"domain\": \"fr\"}\n");
        const QString out = m_tmp.path() + "/cli.h5";
        const CliRun r = runCli(moewbCli(), {"calibrate", dir, "--data", text, "--domain", "misc=" + jsonl, "--samples",
                                             "6", "--seq-len", "32", "--out", out, "--probe-tokens", "16"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.out.contains("experts without calibration tokens:"));
        const CalibStats st = readStats(out.toStdString());
        QCOMPARE(st.provenance.numSamples, int64_t(6));
        QCOMPARE(st.provenance.numTokens, int64_t(6 * 32));
        QCOMPARE(st.provenance.architecture, std::string("Qwen3MoeForCausalLM"));
        QCOMPARE(st.provenance.domains.size(), size_t(2)); // "(unlabeled)" text, then misc
        QCOMPARE(st.provenance.toolVersion, std::string(MOEWB_VERSION));
        QVERIFY(st.provenance.optionsJson.find("\"samples\":6") != std::string::npos);
        QCOMPARE(st.router(0)->tokens, int64_t(6 * 32));
        QCOMPARE(st.router(0)->correlationTokens, int64_t(16));
        const CliRun show = runCli(moewbCli(), {"stats", "show", out});
        QVERIFY2(show.exitCode == 0, show.err.constData());

        // Bad inputs: one line on stderr, exit 1 (runtime) or 2 (usage), and no output file.
        const QString none = m_tmp.path() + "/never.h5";
        struct Bad {
            QStringList args;
            int code;
        };
        const QList<Bad> bad = {
            {{"calibrate", dir, "--data", m_tmp.path() + "/missing.txt", "--out", none}, 1},
            {{"calibrate", dir, "--data", text, "--samples", "0", "--out", none}, 2},
            {{"calibrate", m_tmp.path() + "/no-such-model", "--data", text, "--out", none}, 1},
            {{"calibrate", dir, "--data", text}, 2},
        };
        for (const Bad& b : bad) {
            const CliRun e = runCli(moewbCli(), b.args);
            QVERIFY2(e.exitCode == b.code, qPrintable(b.args.join(' ') + ": " + e.err));
            if (b.code == 1)
                QCOMPARE(e.err.trimmed().count('\n'), 0);
            QVERIFY(!QFileInfo::exists(none));
        }
    }

    // (e) Ctrl-C (or kill / a closed terminal) during the forward: exit 130 and no stats file (nor a
    // temporary one).
    void cliInterrupt_data()
    {
        QTest::addColumn<int>("sig");
        QTest::newRow("SIGINT") << int(SIGINT);
        QTest::newRow("SIGTERM") << int(SIGTERM);
        QTest::newRow("SIGHUP") << int(SIGHUP);
    }
    void cliInterrupt()
    {
        QFETCH(int, sig);
        if (!QFileInfo(moewbCli()).isExecutable())
            QSKIP("moewb binary not built");
        const QString dir = generate(m_tmp.path(), "mixtral", {}, "cli-interrupt-" + QString::number(sig));
        QJsonArray ids;
        for (int i = 0; i < 400000; ++i)
            ids.append((i * 37 + 11) % 290);
        const QString data = m_tmp.path() + "/many.ids.json", out = m_tmp.path() + "/interrupted.h5";
        writeAll(data, QJsonDocument(ids).toJson(QJsonDocument::Compact));
        QProcess p;
        p.start(moewbCli(), {"calibrate", dir, "--data", data, "--samples", "1600", "--seq-len", "250", "--batch-tokens",
                             "2000", "--out", out});
        QVERIFY(p.waitForStarted());
        QByteArray err;
        while (!err.contains("forward") && p.state() == QProcess::Running) {
            p.waitForReadyRead(100);
            err += p.readAllStandardError();
        }
        QVERIFY2(p.state() == QProcess::Running, "finished before it could be interrupted");
        ::kill(pid_t(p.processId()), sig);
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 130);
        QVERIFY(!QFileInfo::exists(out));
        QCOMPARE(QDir(m_tmp.path()).entryList({"interrupted.h5*"}).size(), 0);
    }

private:
    QTemporaryDir m_tmp;
    QString m_routed;
};

QTEST_APPLESS_MAIN(TestCalibrate)
#include "tst_calibrate.moc"
