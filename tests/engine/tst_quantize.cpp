// SPDX-License-Identifier: MIT
// moewb quantize (#8): 16-bit plans are the identity, RTN plans give exactly rtnQuantize of the
// stored weights, per-expert token counts match the NumPy reference's routing, unrouted experts fall
// back to RTN and are reported, GPTQ matches gptqQuantize on independently computed inputs (layer 0
// from the embeddings, layer 1 from the quantized output model), GPTQ beats RTN, the output loads in
// `moewb eval` and in the NumPy reference, and errors / cancellation leave nothing behind.
#include "model/streamer.h"
#include "model/weights.h"
#include "moewb/plan/plan.h"
#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/quant/quantize.h"
#include "quant/gptq.h"
#include "quant/quant_linear.h"
#include "quant/rtn.h"
#include "testutil.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>

using namespace moewb;
using namespace moewb::test;

namespace {

QString generate(const QString& root, const QString& arch, const QStringList& extra = {}, const QString& name = {})
{
    const QString out = root + "/" + (name.isEmpty() ? arch : name);
    runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "3"} + extra);
    return out;
}

Plan planFrom(const std::string& json)
{
    return parsePlanJson(json, "test-plan");
}

std::string planJson(const std::string& defaults, const std::string& rules = "[]", const std::string& extra = "")
{
    return R"({"format": "moewb-plan", "version": 1, "defaults": )" + defaults + R"(, "rules": )" + rules + extra
        + "}";
}

std::vector<std::vector<int32_t>> randomSeqs(int64_t n, int64_t len, int64_t vocab, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const at::Tensor t = at::randint(0, vocab, {n, len}, gen, at::TensorOptions().dtype(at::kInt));
    std::vector<std::vector<int32_t>> out;
    out.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i)
        out[size_t(i)].assign(t[i].data_ptr<int32_t>(), t[i].data_ptr<int32_t>() + len);
    return out;
}

QJsonObject readJson(const QString& path)
{
    return QJsonDocument::fromJson(readAll(path)).object();
}

std::map<QString, QJsonObject> reportLinears(const QString& dir)
{
    std::map<QString, QJsonObject> out;
    for (const auto& v : readJson(dir + "/moewb_quant_report.json")["linears"].toArray())
        out[v.toObject()["name"].toString()] = v.toObject();
    return out;
}

bool sameBytes(const Checkpoint& a, const Checkpoint& b, const std::string& name)
{
    const TensorInfo &ia = a.info(name), &ib = b.info(name);
    return ia.dtype == ib.dtype && ia.shape == ib.shape && ia.nbytes() == ib.nbytes()
        && std::memcmp(a.data(name), b.data(name), ia.nbytes()) == 0;
}

void writeIds(const QString& path, const std::vector<std::vector<int32_t>>& seqs)
{
    QJsonArray all;
    for (const auto& s : seqs) {
        QJsonArray row;
        for (int32_t v : s)
            row.append(int(v));
        all.append(row);
    }
    writeAll(path, QJsonDocument(all).toJson(QJsonDocument::Compact));
}

/// H = (2/n) Σ x xᵀ in float64 over the rows of x [n, in].
at::Tensor hessianOf(const at::Tensor& x)
{
    const at::Tensor xd = x.to(at::kDouble);
    return (xd.t().mm(xd) * (2.0 / double(x.size(0)))).to(at::kFloat);
}

/// Collects the input rows of one linear during Model::run.
class CaptureInput : public ForwardObserver {
public:
    explicit CaptureInput(std::string name)
        : m_name(std::move(name))
    {
    }
    bool wantsLinearInputs() const override { return true; }
    void linearInput(int64_t, int64_t, const std::string& name, const at::Tensor& x) override
    {
        if (name == m_name)
            rows.push_back(x.to(at::kFloat).clone());
    }
    at::Tensor all() const { return at::cat(rows); }
    std::vector<at::Tensor> rows;

private:
    std::string m_name;
};

std::vector<at::Tensor> toTensors(const std::vector<std::vector<int32_t>>& seqs)
{
    std::vector<at::Tensor> out;
    for (const auto& s : seqs)
        out.push_back(at::tensor(at::ArrayRef<int32_t>(s)).to(at::kLong));
    return out;
}

at::Tensor allLogits(const std::string& dir, const std::vector<std::vector<int32_t>>& seqs)
{
    const Model m(dir);
    StreamOptions so;
    so.dtype = at::kFloat;
    const std::vector<at::Tensor> in = toTensors(seqs);
    std::vector<at::Tensor> out(in.size());
    m.run(in, so, [&](size_t i, const at::Tensor& l) { out[i] = l; });
    return at::stack(out);
}

// ------------------------------------------------------------- routing-by-construction model
// Mixtral layout, hidden 16 = vocabulary 16, 4 experts of width 16, top-2, 2 layers. Token t embeds
// as e_t; o_proj and the expert down projections are zero (they stay zero under GPTQ and RTN), so
// the residual stream is e_t in every layer and the router sees s·e_t. Router columns give the
// first choice logit 3s and the second 2s. Layer 0: token 15 → (2, 0), every other token → (0, 1)
// or (1, 0): expert 2 gets exactly the token-15 occurrences and expert 3 nothing. Layer 1: every
// token → (0, 1): experts 2 and 3 get nothing.
std::pair<int64_t, int64_t> route(int64_t layer, int64_t t)
{
    if (layer == 0)
        return t == 15 ? std::pair<int64_t, int64_t>{2, 0} : (t % 2 == 0 ? std::pair<int64_t, int64_t>{0, 1}
                                                                            : std::pair<int64_t, int64_t>{1, 0});
    return {0, 1};
}

void writeRoutedModel(const QString& dir)
{
    QDir().mkpath(dir);
    writeAll(dir + "/config.json", R"({
  "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 16,
  "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
  "num_local_experts": 4, "num_experts_per_tok": 2, "vocab_size": 16, "max_position_embeddings": 256,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": null, "tie_word_embeddings": false,
  "torch_dtype": "float32", "hidden_act": "silu"
})");
    const ModelConfig cfg = loadConfig(dir.toStdString());
    std::map<std::string, at::Tensor> t;
    at::Generator gen = at::detail::createCPUGenerator(11);
    for (const TensorSpec& s : expectedTensors(cfg)) {
        const std::string& n = s.name;
        at::Tensor v;
        if (n == "model.embed_tokens.weight")
            v = at::eye(16, at::kFloat);
        else if (n.find("norm") != std::string::npos)
            v = at::ones(s.shape, at::kFloat);
        else if (n.find("o_proj") != std::string::npos || n.find(".w2.") != std::string::npos)
            v = at::zeros(s.shape, at::kFloat);
        else if (n.find(".gate.weight") != std::string::npos) {
            const int64_t layer = std::stoll(n.substr(std::string("model.layers.").size()));
            v = at::zeros(s.shape, at::kFloat);
            for (int64_t tok = 0; tok < 16; ++tok) {
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

/// What `quantize` stores for an RTN linear: the RTN grid with fp16 scales, as a GPTQ kernel computes it.
at::Tensor rtnStored(const at::Tensor& w, int64_t bits, int64_t groupSize, bool sym)
{
    const RtnResult r = rtnQuantize(w, bits, groupSize, sym);
    return dequantHalfScales(r.q, r.scales, r.zeros, naturalGroupIndex(w.size(1), groupSize));
}

} // namespace

class TestQuantize : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;
    QString m_mixtral, m_mixtralBf16, m_qwen;
    int m_outCount = 0;
    QString freshOut() { return m_tmp.path() + "/out" + QString::number(m_outCount++); }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_mixtral = generate(m_tmp.path(), "mixtral", {"--tiny"}, "mixtral");
        m_mixtralBf16 = generate(m_tmp.path(), "mixtral", {"--tiny", "--dtype", "bf16"}, "mixtral-bf16");
        m_qwen = generate(m_tmp.path(), "qwen2_moe", {"--tiny", "--dtype", "bf16"}, "qwen2_moe");
    }

    // The stored weight is float(fp16(scale)) · (q − zero): hand-computed values.
    void dequantUsesHalfScales()
    {
        // fp16(0.1) = 0.0999755859375 (1638/16384), fp16(1/3) = 0.333251953125 (1365/4096).
        const at::Tensor q = at::tensor({3, 0, 7, 1}, at::kInt).reshape({2, 2});
        const at::Tensor scales = at::tensor({0.1f, 1.0f / 3.0f}, at::kFloat).reshape({2, 1});
        const at::Tensor zeros = at::tensor({1.0f, 4.0f}, at::kFloat).reshape({2, 1});
        const at::Tensor w = dequantHalfScales(q, scales, zeros, naturalGroupIndex(2, -1));
        const float s0 = 1638.0f / 16384.0f, s1 = 1365.0f / 4096.0f;
        const std::vector<float> expect = {2 * s0, -1 * s0, 3 * s1, -3 * s1};
        for (int i = 0; i < 4; ++i)
            QCOMPARE(w.reshape({4})[i].item<float>(), expect[size_t(i)]);
        // g_idx picks the group of each column
        const at::Tensor g = naturalGroupIndex(5, 2);
        QCOMPARE(g.sizes().vec(), std::vector<int64_t>{5});
        const std::vector<int32_t> gi(g.data_ptr<int32_t>(), g.data_ptr<int32_t>() + 5);
        QCOMPARE(gi, (std::vector<int32_t>{0, 0, 1, 1, 2}));
    }

    // (a) every linear at 16 bits: the output is the input, tensor for tensor.
    void sixteenBitsIsIdentity_data()
    {
        QTest::addColumn<QString>("model");
        QTest::newRow("mixtral-bf16") << m_mixtralBf16;
        QTest::newRow("qwen2_moe-bf16") << m_qwen;
        QTest::newRow("mixtral-f32") << m_mixtral;
    }
    void sixteenBitsIsIdentity()
    {
        QFETCH(QString, model);
        const QString out = freshOut();
        const Plan plan = planFrom(planJson(R"({"bits": 16})"));
        const QuantizeReport r = quantizeToFakeDir(model.toStdString(), plan, randomSeqs(2, 8, 290, 1), {},
                                                   out.toStdString(), false);
        for (const LinearQuantResult& l : r.linears)
            QCOMPARE(QString::fromStdString(l.method), QStringLiteral("none"));
        const Checkpoint a = Checkpoint::open(model.toStdString()), b = Checkpoint::open(out.toStdString());
        QCOMPARE(a.names(), b.names());
        for (const std::string& n : a.names())
            QVERIFY2(sameBytes(a, b, n), n.c_str());
        QCOMPARE(readAll(out + "/config.json"), readAll(model + "/config.json"));
        QCOMPARE(readAll(out + "/tokenizer.json"), readAll(model + "/tokenizer.json"));
        QVERIFY(loadPlan((out + "/moewb_plan.json").toStdString()) == plan);
        QVERIFY(!QFileInfo::exists(out + ".tmp." + QString::number(QCoreApplication::applicationPid())));
    }

    // (b) RTN: each stored weight is exactly rtnQuantize(original) in the stored dtype; the rest is
    // untouched; without calibration data the weights are the same (RTN does not look at data).
    void rtnIsExact_data()
    {
        QTest::addColumn<QString>("model");
        QTest::newRow("mixtral-bf16") << m_mixtralBf16;
        QTest::newRow("qwen2_moe-bf16") << m_qwen;
        QTest::newRow("mixtral-f32") << m_mixtral;
    }
    void rtnIsExact()
    {
        QFETCH(QString, model);
        const Plan plan = planFrom(planJson(R"({"bits": 4, "group_size": 16, "method": "rtn"})", R"P([
            {"match": ".*experts\\.\\d+\\..*", "bits": 3, "sym": false},
            {"match": ".*(down_proj|w2)", "bits": 2, "group_size": -1},
            {"match": ".*shared_expert\\..*", "bits": 8},
            {"match": ".*\\.v_proj", "bits": 16}])P"));
        const std::string src = model.toStdString();
        const ModelConfig cfg = loadConfig(src);
        const std::vector<PlanEntry> entries = expandPlan(plan, cfg);
        const QString withData = freshOut(), noData = freshOut();
        const auto seqs = randomSeqs(3, 12, 290, 2);
        const QuantizeReport r = quantizeToFakeDir(src, plan, seqs, {}, withData.toStdString(), false);
        quantizeToFakeDir(src, plan, {}, {}, noData.toStdString(), false);
        const Checkpoint in = Checkpoint::open(src), a = Checkpoint::open(withData.toStdString()),
                         b = Checkpoint::open(noData.toStdString());
        std::set<std::string> linearNames;
        int quantized = 0;
        for (const PlanEntry& e : entries) {
            const std::string n = e.name + ".weight";
            linearNames.insert(n);
            QVERIFY2(sameBytes(a, b, n), n.c_str());
            if (e.bits == 16) {
                QVERIFY2(sameBytes(in, a, n), n.c_str());
                continue;
            }
            const at::Tensor orig = loadTensor(in, n, at::kFloat);
            const at::Tensor expect = rtnStored(orig, e.bits, e.groupSize, e.sym).to(toScalarType(in.info(n).dtype));
            const at::Tensor got = loadTensor(a, n);
            QVERIFY2(at::equal(got, expect), n.c_str());
            QVERIFY2(!at::equal(got, loadTensor(in, n)), n.c_str()); // quantization changed something
            ++quantized;
        }
        QVERIFY(quantized > 10);
        for (const std::string& n : in.names())
            if (!linearNames.count(n))
                QVERIFY2(sameBytes(in, a, n), n.c_str());
        // Report: methods, and q_proj of layer 0 saw every calibration token.
        const auto lin = reportLinears(withData);
        const QJsonObject q0 = lin.at(QString::fromStdString(cfg.attnLinear(0, "q_proj")));
        QCOMPARE(q0["method"].toString(), QStringLiteral("rtn"));
        QCOMPARE(q0["tokens"].toInt(), 36);
        QVERIFY(q0["rel_error"].toDouble() > 0 && q0["rel_error"].toDouble() < 0.2);
        QCOMPARE(lin.at(QString::fromStdString(cfg.attnLinear(0, "v_proj")))["method"].toString(), QStringLiteral("none"));
        QVERIFY(reportLinears(noData).at(QString::fromStdString(cfg.attnLinear(0, "q_proj")))["rel_error"].isNull());
        QVERIFY(r.meanRelError > 0);
    }

    // (c) per-expert Hessians: the token count of every layer-0 expert equals the routing of the
    // NumPy reference forward on the same windows (layer 0's router input does not depend on any
    // quantized expert, and attention is left at 16 bits).
    void expertTokenCountsMatchReference_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::newRow("mixtral") << "mixtral";
        QTest::newRow("qwen2_moe") << "qwen2_moe";
    }
    void expertTokenCountsMatchReference()
    {
        QFETCH(QString, arch);
        const QString model = generate(m_tmp.path(), arch, {}, arch + "-f32-full");
        const std::string src = model.toStdString();
        const ModelConfig cfg = loadConfig(src);
        const auto seqs = randomSeqs(4, 16, 290, 3);
        const QString ids = m_tmp.path() + "/" + arch + "-ids.json";
        writeIds(ids, seqs);
        const QString routing = m_tmp.path() + "/" + arch + "-routing.json";
        runPython({sourcePath("tests/reference/reference_forward.py"), model, ids, m_tmp.path() + "/" + arch + ".logits",
                   "--dump-routing", routing});
        std::vector<int64_t> expect(size_t(cfg.numExperts), 0);
        for (const auto& layer : readJson(routing)["layers"].toArray()) {
            if (layer.toObject()["layer"].toInt() != 0)
                continue;
            for (const auto& seq : layer.toObject()["experts"].toArray())
                for (const auto& tok : seq.toArray())
                    for (const auto& e : tok.toArray())
                        expect[size_t(e.toInt())] += 1;
        }
        int64_t sum = 0;
        for (int64_t c : expect)
            sum += c;
        QCOMPARE(sum, int64_t(4 * 16 * cfg.topK));

        const QString out = freshOut();
        const Plan plan = planFrom(planJson(R"({"bits": 16})", R"([{"match": ".*experts\\.\\d+\\..*", "bits": 4, "method": "rtn"}])"));
        QuantizeOptions routedOnly; // the routed counts themselves (the default all-tokens adds every token)
        routedOnly.balanceExperts = ExpertBalance::Off;
        quantizeToFakeDir(src, plan, seqs, routedOnly, out.toStdString(), false);
        const auto lin = reportLinears(out);
        for (int64_t e = 0; e < cfg.numExperts; ++e)
            for (const char* role : {"gate", "up", "down"}) {
                const QJsonObject o = lin.at(QString::fromStdString(cfg.expertLinear(0, e, role)));
                QCOMPARE(int64_t(o["tokens"].toInt()), expect[size_t(e)]);
            }
        // The shared expert (qwen2_moe) sees every token.
        if (cfg.hasSharedExpert())
            QVERIFY(lin.at(QString::fromStdString(cfg.sharedLinear(0, "gate")))["tokens"].isNull()); // 16 bits: not collected
    }

    // (c) an expert never routed and one routed 5 times (< --min-expert-tokens 8) fall back to RTN,
    // are listed with their counts; the others use GPTQ.
    void unroutedExpertsFallBack()
    {
        const QString model = m_tmp.path() + "/routed";
        writeRoutedModel(model);
        const std::string src = model.toStdString();
        const ModelConfig cfg = loadConfig(src);
        // Two windows of 20 tokens; token 15 occurs 5 times in total.
        std::vector<std::vector<int32_t>> seqs = {
            {0, 1, 2, 3, 15, 4, 5, 6, 7, 8, 15, 9, 10, 11, 12, 13, 14, 0, 1, 2},
            {15, 3, 4, 5, 6, 7, 15, 8, 9, 10, 11, 12, 13, 15, 14, 0, 1, 2, 3, 4}};
        QuantizeOptions opt;
        opt.minExpertTokens = 8;
        opt.balanceExperts = ExpertBalance::Off; // the fallback rule on routed tokens only
        const QString out = freshOut();
        const Plan plan = planFrom(planJson(R"({"bits": 4, "group_size": 16, "method": "gptq"})"));
        const QuantizeReport r = quantizeToFakeDir(src, plan, seqs, opt, out.toStdString(), false);

        std::map<std::pair<int64_t, int64_t>, int64_t> fell;
        for (const FallbackExpert& f : r.fallbackExperts)
            fell[{f.layer, f.expert}] = f.tokens;
        const std::map<std::pair<int64_t, int64_t>, int64_t> expectFell = {
            {{0, 2}, 5}, {{0, 3}, 0}, {{1, 2}, 0}, {{1, 3}, 0}};
        // Expert 0 of layer 0 gets every token, expert 1 all but the token-15 occurrences.
        const std::map<std::pair<int64_t, int64_t>, int64_t> counts = {
            {{0, 0}, 40}, {{0, 1}, 35}, {{0, 2}, 5}, {{0, 3}, 0}, {{1, 0}, 40}, {{1, 1}, 40}, {{1, 2}, 0}, {{1, 3}, 0}};
        QCOMPARE(fell, expectFell);
        const auto lin = reportLinears(out);
        const Checkpoint in = Checkpoint::open(src), q = Checkpoint::open(out.toStdString());
        for (int64_t l = 0; l < 2; ++l)
            for (int64_t e = 0; e < 4; ++e)
                for (const char* role : {"gate", "up", "down"}) {
                    const std::string n = cfg.expertLinear(l, e, role);
                    const QJsonObject o = lin.at(QString::fromStdString(n));
                    const bool fallback = expectFell.count({l, e}) > 0;
                    QCOMPARE(o["method"].toString(), fallback ? QStringLiteral("rtn") : QStringLiteral("gptq"));
                    QCOMPARE(o["fallback"].isNull(), !fallback);
                    QCOMPARE(int64_t(o["tokens"].toInt()), counts.at({l, e}));
                    if (fallback) {
                        const at::Tensor orig = loadTensor(in, n + ".weight", at::kFloat);
                        QVERIFY(at::equal(loadTensor(q, n + ".weight"), rtnStored(orig, 4, 16, true)));
                    }
                }
        QVERIFY(QString::fromStdString(r.fallbackExperts[0].reason).contains("min-expert-tokens 8"));
        const QJsonArray listed = readJson(out + "/moewb_quant_report.json")["totals"].toObject()["fallback_experts"].toArray();
        QCOMPARE(listed.size(), 4);
    }

    // (d) GPTQ, layer 0: q_proj equals gptqQuantize on the Hessian of its inputs computed here from
    // the embeddings (RMSNorm written out); layer 1: equals gptqQuantize on the inputs that Model::run
    // feeds layer 1 of the *quantized* output model (GPTQ's sequential calibration), which differ
    // from those of the original model. GPTQ's error feedback makes one flipped code change the
    // columns after it, so the check is exact where the inputs are bit-identical (same fp32 ops,
    // same accumulation) and otherwise compares the objective.
    void gptqMatchesIndependentInputs_data()
    {
        QTest::addColumn<bool>("actOrder");
        QTest::addColumn<bool>("staticGroups");
        QTest::newRow("plain") << false << false;
        QTest::newRow("act_order") << true << false;
        QTest::newRow("act_order+static_groups") << true << true;
    }
    void gptqMatchesIndependentInputs()
    {
        QFETCH(bool, actOrder);
        QFETCH(bool, staticGroups);
        const std::string src = m_mixtral.toStdString();
        const ModelConfig cfg = loadConfig(src);
        const auto seqs = randomSeqs(4, 16, 290, 4);
        const QString out = freshOut();
        const Plan plan = planFrom(planJson(std::string(R"({"bits": 3, "group_size": 16, "method": "gptq", "act_order": )")
                                            + (actOrder ? "true" : "false") + ", \"static_groups\": "
                                            + (staticGroups ? "true" : "false") + "}"));
        quantizeToFakeDir(src, plan, seqs, {}, out.toStdString(), false);
        const Checkpoint in = Checkpoint::open(src), q = Checkpoint::open(out.toStdString());

        GptqOptions g;
        g.bits = 3;
        g.groupSize = 16;
        g.actOrder = actOrder;
        g.staticGroups = staticGroups;
        g.dampPercent = 0.01;
        at::Tensor h;
        auto check = [&](const std::string& name, const std::vector<at::Tensor>& batches) {
            HessianAccumulator acc(cfg.hiddenSize);
            for (const at::Tensor& b : batches)
                acc.add(b);
            h = acc.hessian();
            const at::Tensor w = loadTensor(in, name + ".weight", at::kFloat);
            const GptqResult res = gptqQuantize(w, h, g);
            const at::Tensor expect = dequantHalfScales(res.q, res.scales, res.zeros, res.gIdx);
            const at::Tensor got = loadTensor(q, name + ".weight", at::kFloat);
            const double mismatch = (got != expect).to(at::kDouble).mean().item<double>();
            qInfo("%s: %.4f of the entries differ", name.c_str(), mismatch);
            QVERIFY2(mismatch == 0, name.c_str());
            // and it is GPTQ, not RTN: lower error on these inputs.
            const at::Tensor r = rtnQuantize(w, 3, 16, true).dequant;
            auto err = [&](const at::Tensor& x) { return ((x - w).mm(h) * (x - w)).sum().item<double>(); };
            QVERIFY(err(got) < err(r));
        };

        // Layer 0: q_proj input = RMSNorm(embedding) · input_layernorm (fp32, as HF computes it).
        const at::Tensor emb = loadTensor(in, "model.embed_tokens.weight", at::kFloat);
        const at::Tensor ln = loadTensor(in, "model.layers.0.input_layernorm.weight", at::kFloat);
        const at::Tensor x = emb.index_select(0, at::stack(toTensors(seqs)).reshape({-1}));
        check(cfg.attnLinear(0, "q_proj"), {ln * (x * at::rsqrt(x.pow(2).mean(-1, true) + cfg.rmsNormEps))});

        // Layer 1: inputs as the quantized output model computes them.
        CaptureInput capQ(cfg.attnLinear(1, "q_proj")), capOrig(cfg.attnLinear(1, "q_proj"));
        StreamOptions so;
        so.dtype = at::kFloat;
        Model(out.toStdString()).run(toTensors(seqs), so, LogitsSink(), &capQ);
        Model(src).run(toTensors(seqs), so, LogitsSink(), &capOrig);
        check(cfg.attnLinear(1, "q_proj"), capQ.rows);
        QVERIFY((h - hessianOf(capOrig.all())).abs().max().item<double>() > 1e-3);
    }

    // (d) GPTQ vs RTN at 3 bits, same plan: lower layer-wise error and lower logit error.
    void gptqBeatsRtn()
    {
        const std::string src = m_mixtral.toStdString();
        const auto seqs = randomSeqs(16, 32, 290, 5);
        const auto heldOut = randomSeqs(4, 24, 290, 6);
        const QString g = freshOut(), r = freshOut();
        const QuantizeReport rg = quantizeToFakeDir(
            src, planFrom(planJson(R"({"bits": 3, "group_size": 16, "method": "gptq"})")), seqs, {}, g.toStdString(), false);
        const QuantizeReport rr = quantizeToFakeDir(
            src, planFrom(planJson(R"({"bits": 3, "group_size": 16, "method": "rtn"})")), seqs, {}, r.toStdString(), false);
        QVERIFY(rg.meanRelError > 0 && rr.meanRelError > 0);
        QVERIFY2(rg.meanRelError < rr.meanRelError,
                 (std::to_string(rg.meanRelError) + " vs " + std::to_string(rr.meanRelError)).c_str());
        // Layer 0 sees identical inputs in both runs: per linear GPTQ error ≤ RTN error.
        for (size_t i = 0; i < rg.linears.size(); ++i)
            if (rg.linears[i].layer == 0 && (rg.linears[i].role == "q_proj" || rg.linears[i].role == "k_proj" || rg.linears[i].role == "v_proj"))
                QVERIFY2(rg.linears[i].relError <= rr.linears[i].relError, rg.linears[i].name.c_str());
        for (const auto* set : {&seqs, &heldOut}) {
            const at::Tensor ref = allLogits(src, *set);
            const double eg = (allLogits(g.toStdString(), *set) - ref).pow(2).mean().item<double>();
            const double er = (allLogits(r.toStdString(), *set) - ref).pow(2).mean().item<double>();
            qInfo("logit MSE gptq %.5g rtn %.5g (%s)", eg, er, set == &seqs ? "calibration" : "held out");
            QVERIFY(eg < er);
        }
    }

    // (e) CLI end to end on text calibration; the output loads in `moewb eval` and in the NumPy reference.
    void outputLoadsEverywhere()
    {
        const QString text = m_tmp.path() + "/calib.txt";
        QByteArray body;
        for (int i = 0; i < 40; ++i)
            body += "the cat sat on the mat and then it went to the store to buy some bread. ";
        writeAll(text, body);
        const QString plan = m_tmp.path() + "/plan-e.json";
        writeAll(plan, QByteArray::fromStdString(planJson(R"({"bits": 4, "group_size": 16, "method": "gptq"})",
                                                          R"([{"match": ".*self_attn.*", "method": "rtn", "bits": 8}])")));
        const QString out = freshOut();
        const CliRun q = runCli(moewbCli(), {"quantize", m_qwen, "--plan", plan, "--out", out, "--calib", text,
                                             "--samples", "4", "--seq-len", "32", "--min-expert-tokens", "4"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        QVERIFY(q.out.contains("gptq"));
        QVERIFY(q.out.contains("wrote"));
        const QJsonObject rep = readJson(out + "/moewb_quant_report.json");
        QCOMPARE(rep["calibration"].toObject()["tokens"].toInt(), 128);

        const CliRun ev = runCli(moewbCli(), {"eval", out, "--ppl", text, "--ctx", "32"});
        QVERIFY2(ev.exitCode == 0, ev.err.constData());
        QVERIFY(ev.out.contains("perplexity:"));

        // `eval --plan` quantizes on the fly with the same settings: the same perplexity to the last
        // digit, and its scratch model under $TMPDIR is gone afterwards.
        const QString scratchRoot = m_tmp.path() + "/scratch";
        QVERIFY(QDir().mkpath(scratchRoot));
        const QByteArray oldTmp = qgetenv("TMPDIR");
        qputenv("TMPDIR", scratchRoot.toUtf8());
        const CliRun evp = runCli(moewbCli(), {"eval", m_qwen, "--plan", plan, "--calib", text, "--samples", "4",
                                               "--seq-len", "32", "--min-expert-tokens", "4", "--ppl", text, "--ctx", "32"});
        qputenv("TMPDIR", oldTmp);
        QVERIFY2(evp.exitCode == 0, evp.err.constData());
        auto pplLine = [](const QByteArray& o) {
            for (const QByteArray& l : o.split('\n'))
                if (l.startsWith("perplexity:"))
                    return l;
            return QByteArray();
        };
        QVERIFY(!pplLine(ev.out).isEmpty());
        QCOMPARE(pplLine(evp.out), pplLine(ev.out));
        QCOMPARE(QDir(scratchRoot).entryList(QDir::NoDotAndDotDot | QDir::AllEntries).size(), 0);
        // --calib without --plan is a usage error
        QCOMPARE(runCli(moewbCli(), {"eval", m_qwen, "--calib", text, "--ppl", text}).exitCode, 2);

        const auto seqs = randomSeqs(2, 10, 290, 7);
        const QString ids = m_tmp.path() + "/e-ids.json";
        writeIds(ids, seqs);
        const QString logits = m_tmp.path() + "/e.logits";
        runPython({sourcePath("tests/reference/reference_forward.py"), out, ids, logits});
        const QByteArray raw = readAll(logits);
        const at::Tensor ours = allLogits(out.toStdString(), seqs);
        QCOMPARE(qsizetype(ours.numel() * 4), raw.size());
        const at::Tensor ref = at::from_blob(const_cast<char*>(raw.constData()), ours.sizes(), at::kFloat).clone();
        // bf16 checkpoint: our forward runs in f32 here (--dtype f32 semantics), the reference in f64.
        const double maxDiff = (ours - ref).abs().max().item<double>();
        QVERIFY2(maxDiff < 1e-3, std::to_string(maxDiff).c_str());
    }

    // (f) errors: one line naming the file, nothing written. The CLI is exercised for its exit codes;
    // the engine checks directly (each moewb start costs about a second of library loading).
    void errors()
    {
        auto expectError = [&](const Plan& plan, const std::vector<std::vector<int32_t>>& seqs, const QString& out,
                                bool force, const QString& needle) {
            QuantizeOptions opt;
            opt.planPath = "plan.json";
            try {
                quantizeToFakeDir(m_mixtral.toStdString(), plan, seqs, opt, out.toStdString(), force);
                QFAIL(qPrintable("no error, expected " + needle));
            } catch (const InputError& e) {
                QVERIFY2(QString(e.what()).contains(needle), e.what());
                QVERIFY2(!QString(e.what()).contains('\n'), e.what());
            }
        };
        const auto seqs = randomSeqs(1, 8, 290, 10);
        const Plan rtn = planFrom(planJson(R"({"bits": 4, "method": "rtn", "group_size": 16})"));
        const QString out = freshOut();
        // Bad plan: a module the model does not have.
        expectError(planFrom(planJson(R"({"bits": 4})", "[]", R"(, "overrides": {"model.layers.9.self_attn.q_proj": {"bits": 8}})")),
                    seqs, out, false, "plan.json: $.overrides[\"model.layers.9.self_attn.q_proj\"]: unknown module");
        // Drops: refused, pointing to issue #10.
        expectError(planFrom(planJson(R"({"bits": 4})", "[]", R"(, "drop": {"experts": [[0, 1]], "layers": [], "blocks": []})")),
                    seqs, out, false, "issue #10");
        // GPTQ without calibration data.
        expectError(planFrom(planJson(R"({"bits": 4, "group_size": 16})")), {}, out, false, "needs calibration data");
        QVERIFY(!QFileInfo::exists(out));
        // Existing output directory: refused and untouched; replaced with force; never the input model.
        QDir().mkpath(out);
        writeAll(out + "/keep.txt", "x");
        expectError(rtn, seqs, out, false, "already exists");
        QVERIFY(QFileInfo::exists(out + "/keep.txt"));
        quantizeToFakeDir(m_mixtral.toStdString(), rtn, seqs, {}, out.toStdString(), true);
        QVERIFY(!QFileInfo::exists(out + "/keep.txt"));
        QVERIFY(QFileInfo::exists(out + "/model.safetensors"));
        expectError(rtn, seqs, m_mixtral, true, "is the input model directory");
        QVERIFY(QFileInfo::exists(m_mixtral + "/model.safetensors"));
        QCOMPARE(QDir(m_tmp.path()).entryList({"*.tmp.*", "*.old.*"}), QStringList());

        // CLI exit codes: 1 for a plan that names a linear the model lacks, 2 for usage (unknown format,
        // missing --plan).
        const QString plan = m_tmp.path() + "/plan-f.json";
        writeAll(plan, QByteArray::fromStdString(planJson(R"({"bits": 4, "method": "rtn", "group_size": 16})")));
        const QString badPlan = m_tmp.path() + "/plan-f-bad.json";
        writeAll(badPlan, QByteArray::fromStdString(planJson(R"({"bits": 4, "method": "rtn", "group_size": 16})", "[]",
                                                             R"(, "overrides": {"model.layers.99.self_attn.q_proj": {"bits": 8}})")));
        const QString out2 = freshOut();
        CliRun r = runCli(moewbCli(), {"quantize", m_mixtral, "--plan", plan, "--out", out2, "--format", "bogus"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(!QFileInfo::exists(out2));
        r = runCli(moewbCli(), {"quantize", m_mixtral, "--plan", badPlan, "--out", out2});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("plan-f-bad.json") && r.err.trimmed().count('\n') == 0, r.err.constData());
        QVERIFY(!QFileInfo::exists(out2));
        r = runCli(moewbCli(), {"quantize", m_mixtral, "--out", out2});
        QCOMPARE(r.exitCode, 2);
    }

    // (f) cancellation at any point leaves neither the output nor the temporary directory.
    void cancelLeavesNothing()
    {
        const Plan plan = planFrom(planJson(R"({"bits": 4, "group_size": 16, "method": "gptq"})"));
        const auto seqs = randomSeqs(2, 16, 290, 8);
        for (int stopAt : {1, 10, 40}) {
            const QString out = freshOut();
            int calls = 0;
            bool threw = false;
            try {
                quantizeToFakeDir(m_mixtral.toStdString(), plan, seqs, {}, out.toStdString(), false, {},
                                  [&](const Progress&) { return ++calls < stopAt; });
            } catch (const Cancelled&) {
                threw = true;
            }
            QVERIFY(threw);
            QVERIFY(!QFileInfo::exists(out));
            const QStringList left = QDir(m_tmp.path()).entryList({QFileInfo(out).fileName() + ".*"});
            QVERIFY2(left.isEmpty(), qPrintable(left.join(' ')));
        }
    }

    // Hessians collected in several passes (a tiny memory budget) give the same model.
    void hessianBudgetDoesNotChangeResult()
    {
        const Plan plan = planFrom(planJson(R"({"bits": 3, "group_size": 16, "method": "gptq"})"));
        const auto seqs = randomSeqs(2, 16, 290, 9);
        QuantizeOptions small;
        small.maxHessianBytes = 1;
        const QString a = freshOut(), b = freshOut();
        quantizeToFakeDir(m_qwen.toStdString(), plan, seqs, {}, a.toStdString(), false);
        quantizeToFakeDir(m_qwen.toStdString(), plan, seqs, small, b.toStdString(), false);
        const Checkpoint ca = Checkpoint::open(a.toStdString()), cb = Checkpoint::open(b.toStdString());
        for (const std::string& n : ca.names())
            QVERIFY2(sameBytes(ca, cb, n), n.c_str());
    }
};

QTEST_GUILESS_MAIN(TestQuantize)
#include "tst_quantize.moc"
