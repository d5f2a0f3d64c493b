// SPDX-License-Identifier: MIT
// Pruning (#14): hand-computed magnitude/Wanda/N:M masks; exact N:M structure and the requested
// sparsity on every row for every method; SparseGPT ≤ Wanda ≤ magnitude in layer reconstruction
// error on the same weights and inputs; SparseGPT (with and without joint quantization) against an
// independent float64 NumPy implementation; bad requests; plan keys, expansion and size; the CLI
// end to end on a tiny model (output loadable, report numbers equal to the zeros in the file).
#include "moewb/plan/plan.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/plan/prune_spec.h"
#include "quant/sparse.h"
#include "testutil.h"

#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <map>

using namespace moewb;
using namespace moewb::test;

namespace {

PruneSpec unstructured(double s, const std::string& method = "magnitude")
{
    return PruneSpec{method, s, {}};
}

PruneSpec nm(int64_t n, int64_t m, const std::string& method = "magnitude")
{
    return PruneSpec{method, double(m - n) / double(m), {n, m}};
}

at::Tensor maskOf(const std::vector<std::vector<int>>& rows)
{
    std::vector<uint8_t> flat;
    for (const auto& r : rows)
        for (int v : r)
            flat.push_back(uint8_t(v));
    return at::tensor(at::ArrayRef<uint8_t>(flat)).view({int64_t(rows.size()), -1}).to(at::kBool);
}

/// Correlated inputs with channel scales spanning two orders of magnitude (as LLM activations).
at::Tensor calibInputs(int64_t tokens, int64_t in, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const at::Tensor z = at::randn({tokens, in}, gen, at::kDouble);
    const at::Tensor mix = at::eye(in, at::kDouble) + 1.0 * at::randn({in, in}, gen, at::kDouble) / std::sqrt(double(in));
    const at::Tensor scale = at::exp(1.2 * at::randn({in}, gen, at::kDouble));
    return z.mm(mix) * scale.unsqueeze(0);
}

at::Tensor hessianOf(const at::Tensor& x)
{
    return x.t().mm(x) * (2.0 / double(x.size(0)));
}

/// ||W Xᵀ − Ŵ Xᵀ||² (the layer reconstruction error over the calibration tokens).
double reconError(const at::Tensor& w, const at::Tensor& wh, const at::Tensor& x)
{
    const at::Tensor d = (w.to(at::kDouble) - wh.to(at::kDouble)).mm(x.t());
    return (d * d).sum().item<double>();
}

void expectStructure(const at::Tensor& mask, const at::Tensor& weight, const PruneSpec& spec, const char* what)
{
    const int64_t n = mask.size(0), k = mask.size(1);
    QVERIFY2(weight.masked_select(mask).eq(0).all().item<bool>(), what);
    if (spec.pattern.structured()) {
        const int64_t m = spec.pattern.m;
        const at::Tensor perGroup = mask.view({n, k / m, m}).sum(2);
        QVERIFY2(perGroup.eq(m - spec.pattern.n).all().item<bool>(), what);
    } else {
        QVERIFY2(mask.sum(1).eq(prunedPerRow(spec, k)).all().item<bool>(), what);
    }
}

std::string planJson(const std::string& defaults, const std::string& rules = "[]", const std::string& overrides = "{}")
{
    return R"({"format": "moewb-plan", "version": 1, "defaults": )" + defaults + R"(, "rules": )" + rules
        + R"(, "overrides": )" + overrides + "}";
}

template <typename F>
QString errorOf(F&& f)
{
    try {
        f();
    } catch (const Error& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

} // namespace

class TstPrune : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;

private slots:
    void initTestCase() { QVERIFY(m_tmp.isValid()); }

    // Hand-computed masks: magnitude prunes the smallest |w| of each row; Wanda weighs them with
    // sqrt(E[x²]) per input column; 2:4 prunes two per group of four; ties go to the lower column.
    void handMasks()
    {
        const at::Tensor w = at::tensor({0.5, -2.0, 0.1, 1.0, -0.3, 0.2, 3.0, -0.05}, at::kDouble).view({2, 4});
        QVERIFY(magnitudeMask(w, unstructured(0.5)).equal(maskOf({{1, 0, 1, 0}, {0, 1, 0, 1}})));
        QVERIFY(magnitudeMask(w, unstructured(0.25)).equal(maskOf({{0, 0, 1, 0}, {0, 0, 0, 1}})));
        // E[x²] = (16, 0.01, 100, 1): scores row 0 = (2, 0.2, 1, 1), row 1 = (1.2, 0.02, 30, 0.05)
        const at::Tensor a = at::tensor({16.0, 0.01, 100.0, 1.0}, at::kDouble);
        QVERIFY(wandaMask(w, a, unstructured(0.5)).equal(maskOf({{0, 1, 1, 0}, {0, 1, 0, 1}})));
        // row 0 ties at 1 (columns 2 and 3): the lower column goes first
        QVERIFY(wandaMask(w, a, unstructured(0.75)).equal(maskOf({{0, 1, 1, 1}, {1, 1, 0, 1}})));
        const at::Tensor w8 = at::tensor({1.0, -4.0, 3.0, 0.5, 2.0, -0.1, 0.3, 5.0}, at::kDouble).view({1, 8});
        QVERIFY(magnitudeMask(w8, nm(2, 4)).equal(maskOf({{1, 0, 0, 1, 0, 1, 1, 0}})));
        QVERIFY(magnitudeMask(w8, nm(1, 4)).equal(maskOf({{1, 0, 1, 1, 1, 1, 1, 0}})));
        QVERIFY(magnitudeMask(w8, nm(4, 8)).equal(maskOf({{1, 0, 0, 1, 0, 1, 1, 0}})));
        QVERIFY(magnitudeMask(w8, nm(2, 8)).equal(maskOf({{1, 0, 1, 1, 1, 1, 1, 0}})));
    }

    // Every method and pattern: exact N:M on every row and group, exactly round(s·in) per row.
    void structureAndSparsity_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("m");
        QTest::addColumn<double>("sparsity");
        QTest::addColumn<int>("bits");
        for (const char* method : {"magnitude", "wanda", "sparsegpt"}) {
            QTest::addRow("%s-2:4", method) << method << 2 << 4 << 0.0 << 16;
            QTest::addRow("%s-4:8", method) << method << 4 << 8 << 0.0 << 16;
            QTest::addRow("%s-0.5", method) << method << 0 << 0 << 0.5 << 16;
            QTest::addRow("%s-0.3", method) << method << 0 << 0 << 0.3 << 16;
            QTest::addRow("%s-0.7", method) << method << 0 << 0 << 0.7 << 16;
        }
        QTest::addRow("sparsegpt-2:4-4bit") << "sparsegpt" << 2 << 4 << 0.0 << 4;
        QTest::addRow("sparsegpt-0.5-3bit") << "sparsegpt" << 0 << 0 << 0.5 << 3;
    }
    void structureAndSparsity()
    {
        QFETCH(QString, method);
        QFETCH(int, n);
        QFETCH(int, m);
        QFETCH(double, sparsity);
        QFETCH(int, bits);
        const int64_t out = 48, in = 200; // 200: not a multiple of the block, 0.3·200 = 60
        at::Generator gen = at::detail::createCPUGenerator(11);
        const at::Tensor w = at::randn({out, in}, gen, at::kFloat);
        const at::Tensor x = calibInputs(600, in, 5);
        const at::Tensor h = hessianOf(x);
        PruneSpec spec = m > 0 ? nm(n, m) : unstructured(sparsity);
        spec.method = method.toStdString();
        at::Tensor mask, weight;
        if (method == "sparsegpt") {
            SparseGptOptions o;
            o.spec = spec;
            o.bits = bits;
            o.groupSize = 64;
            o.blockSize = 48;
            const SparseGptResult r = sparseGpt(w, h, o);
            mask = r.mask;
            weight = r.weight;
            if (bits < 16) {
                // pruned codes are the zero point, so the dequantized value is exactly 0
                const at::Tensor z = r.zeros.index_select(1, r.gIdx.to(at::kLong));
                QVERIFY(r.q.to(at::kFloat).masked_select(mask).equal(z.masked_select(mask)));
            }
        } else {
            mask = method == "wanda" ? wandaMask(w, h.diagonal() / 2, spec) : magnitudeMask(w, spec);
            weight = w.masked_fill(mask, 0);
        }
        expectStructure(mask, weight, spec, qPrintable(method));
        QCOMPARE(mask.sum().item<int64_t>(), out * prunedPerRow(spec, in));
        if (m == 0 && sparsity == 0.3)
            QCOMPARE(prunedPerRow(spec, in), int64_t(60));
    }

    // ||WXᵀ − ŴXᵀ||²: SparseGPT ≤ Wanda ≤ magnitude on the same weights and calibration inputs.
    void errorOrdering_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("m");
        QTest::addColumn<double>("sparsity");
        QTest::addColumn<int>("seed");
        QTest::addRow("0.5") << 0 << 0 << 0.5 << 1;
        QTest::addRow("0.5-b") << 0 << 0 << 0.5 << 2;
        QTest::addRow("2:4") << 2 << 4 << 0.0 << 3;
        QTest::addRow("4:8") << 4 << 8 << 0.0 << 4;
    }
    void errorOrdering()
    {
        QFETCH(int, n);
        QFETCH(int, m);
        QFETCH(double, sparsity);
        QFETCH(int, seed);
        const int64_t out = 64, in = 128;
        at::Generator gen = at::detail::createCPUGenerator(uint64_t(100 + seed));
        const at::Tensor w = at::randn({out, in}, gen, at::kDouble);
        const at::Tensor x = calibInputs(1024, in, uint64_t(seed));
        const at::Tensor h = hessianOf(x);
        const PruneSpec spec = m > 0 ? nm(n, m) : unstructured(sparsity);
        const double eMag = reconError(w, w.masked_fill(magnitudeMask(w, spec), 0), x);
        const double eWanda = reconError(w, w.masked_fill(wandaMask(w, h.diagonal() / 2, spec), 0), x);
        SparseGptOptions o;
        o.spec = spec;
        o.float64 = true;
        const double eSgpt = reconError(w, sparseGpt(w, h, o).weight, x);
        qInfo("reconstruction error: magnitude %.4g, wanda %.4g, sparsegpt %.4g", eMag, eWanda, eSgpt);
        QVERIFY(eSgpt <= eWanda);
        QVERIFY(eWanda <= eMag);
        QVERIFY(eSgpt < 0.9 * eWanda); // the OBS update is worth something (here 15-30 %)
    }

    // SparseGPT against the independent NumPy implementation (no lazy batching, explicit H⁻¹).
    void matchesNumpy_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("m");
        QTest::addColumn<double>("sparsity");
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("sym");
        QTest::addRow("0.5") << 0 << 0 << 0.5 << 16 << true;
        QTest::addRow("0.3") << 0 << 0 << 0.3 << 16 << true;
        QTest::addRow("2:4") << 2 << 4 << 0.0 << 16 << true;
        QTest::addRow("1:4") << 1 << 4 << 0.0 << 16 << true;
        QTest::addRow("0.5-4bit-asym") << 0 << 0 << 0.5 << 4 << false;
        QTest::addRow("2:4-3bit-sym") << 2 << 4 << 0.0 << 3 << true;
    }
    void matchesNumpy()
    {
        QFETCH(int, n);
        QFETCH(int, m);
        QFETCH(double, sparsity);
        QFETCH(int, bits);
        QFETCH(bool, sym);
        const int64_t out = 12, in = 32, block = 8, group = 8;
        at::Generator gen = at::detail::createCPUGenerator(77);
        const at::Tensor w = at::randn({out, in}, gen, at::kDouble);
        at::Tensor x = calibInputs(256, in, 9);
        x.select(1, 5).zero_(); // one dead input
        const at::Tensor h = hessianOf(x);
        SparseGptOptions o;
        o.spec = m > 0 ? nm(n, m) : unstructured(sparsity);
        o.blockSize = block;
        o.bits = bits;
        o.groupSize = group;
        o.sym = sym;
        o.float64 = true;
        const SparseGptResult ours = sparseGpt(w, h, o);

        auto rows = [](const at::Tensor& t) {
            QJsonArray a;
            const at::Tensor c = t.contiguous();
            for (int64_t i = 0; i < c.size(0); ++i) {
                QJsonArray r;
                for (int64_t j = 0; j < c.size(1); ++j)
                    r.append(c[i][j].item<double>());
                a.append(r);
            }
            return a;
        };
        QJsonObject spec{{"w", rows(w)}, {"h", rows(h)}, {"sparsity", sparsity}, {"n", n}, {"m", m},
                         {"block", int(block)}, {"bits", bits}, {"group", int(group)}, {"sym", sym}, {"damp", 0.01}};
        const QString inPath = m_tmp.path() + "/sgpt.json", outPath = m_tmp.path() + "/sgpt.bin";
        writeAll(inPath, QJsonDocument(spec).toJson(QJsonDocument::Compact));
        runPython({sourcePath("tests/reference/reference_sparsegpt.py"), inPath, outPath});
        const QByteArray raw = readAll(outPath);
        QCOMPARE(qsizetype(raw.size()), qsizetype(out * in * 8));
        const at::Tensor ref = at::from_blob(const_cast<char*>(raw.constData()), {out, in}, at::kDouble).clone();
        QVERIFY(ref.masked_select(ours.mask).eq(0).all().item<bool>());
        QVERIFY(ours.mask.equal(ref.eq(0)) || bits < 16); // without quantization the zeros are exactly the mask
        const double diff = (ours.weight - ref).abs().max().item<double>();
        QVERIFY2(diff < 1e-9, std::to_string(diff).c_str());
    }

    // Bad requests: one clear error each.
    void badRequests()
    {
        QVERIFY(errorOf([] { checkSparsity(1.0, "--sparsity"); }).contains("outside [0, 1)"));
        QVERIFY(errorOf([] { checkSparsity(-0.1, "--sparsity"); }).contains("outside [0, 1)"));
        QVERIFY(errorOf([] { checkSparsity(std::nan(""), "--sparsity"); }).contains("outside [0, 1)"));
        QVERIFY(errorOf([] { checkSparsity(0.0, "x"); }).isEmpty());
        QVERIFY(errorOf([] { parsePrunePattern("4:4", "--pattern"); }).contains("N must be smaller than M"));
        QVERIFY(errorOf([] { parsePrunePattern("5:4", "--pattern"); }).contains("N must be smaller than M"));
        QVERIFY(errorOf([] { parsePrunePattern("0:4", "--pattern"); }).contains("at least 1"));
        QVERIFY(errorOf([] { parsePrunePattern("2-4", "--pattern"); }).contains("is not 'unstructured' or N:M"));
        QCOMPARE(parsePrunePattern("4:8", "x").n, int64_t(4));
        QVERIFY(errorOf([] { checkPruneSpec(nm(2, 3), 64, "lin"); }).contains("M = 3 does not divide in_features 64"));
        QVERIFY(errorOf([] { checkPruneSpec(PruneSpec{"obs", 0.5, {}}, 64, "lin"); }).contains("not magnitude, wanda or sparsegpt"));
        const at::Tensor w = at::ones({2, 6});
        QVERIFY(errorOf([&] { magnitudeMask(w, nm(2, 4)); }).contains("does not divide in_features 6"));
        QVERIFY(errorOf([&] { magnitudeMask(w, unstructured(1.0)); }).contains("outside [0, 1)"));
        QVERIFY(errorOf([&] { wandaMask(w, at::ones({5}), unstructured(0.5)); }).contains("input norms"));
        SparseGptOptions o;
        o.spec = unstructured(0.5);
        QVERIFY(errorOf([&] { sparseGpt(w, at::eye(5), o); }).contains("Hessian shape"));
        // plans: errors name the JSON path
        QVERIFY(errorOf([] { parsePlanJson(planJson(R"({"sparsity": 1.5})"), "p.json"); })
                    .contains("p.json: $.defaults.sparsity: sparsity 1.5 is outside [0, 1)"));
        QVERIFY(errorOf([] { parsePlanJson(planJson("{}", R"([{"match": ".*", "pattern": "4:2"}])"), "p.json"); })
                    .contains("$.rules[0].pattern: pattern 4:2: N must be smaller than M"));
        QVERIFY(errorOf([] { parsePlanJson(planJson(R"({"prune_method": "obc"})"), "p.json"); })
                    .contains("$.defaults.prune_method: prune method 'obc'"));
        // M must divide every pruned linear's in_features: named with the linear
        ModelConfig cfg = parseConfigJson(R"({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
            "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": 100, "num_local_experts": 2, "num_experts_per_tok": 1})",
                                                "config.json");
        const Plan p = parsePlanJson(planJson(R"({"sparsity": 0.5, "pattern": "2:64"})"), "p.json");
        const QString err = errorOf([&] { validatePlan(p, cfg, "p.json"); });
        QVERIFY2(err.contains("p.json: model.layers.0.block_sparse_moe.experts.0.w2: pattern 2:64: M = 64 does not divide "
                              "in_features 96"), qPrintable(err));
    }

    // Plan keys: written only when set (old plans byte-identical), round trip, expansion, size.
    void planKeys()
    {
        const Plan plain = parsePlanJson(planJson(R"({"bits": 4})"), "p");
        const std::string text = planToJson(plain);
        QVERIFY(text.find("sparsity") == std::string::npos && text.find("pattern") == std::string::npos
                && text.find("prune_method") == std::string::npos);
        const Plan p = parsePlanJson(planJson(R"({"bits": 16, "sparsity": 0.5, "prune_method": "wanda"})",
                                              R"([{"match": ".*experts.*", "pattern": "2:4"},
                                                  {"match": ".*self_attn.*", "sparsity": 0}])",
                                              R"({"model.layers.0.block_sparse_moe.experts.1.w1": {"pattern": "4:8", "prune_method": "sparsegpt"}})"),
                                     "p");
        QVERIFY(parsePlanJson(planToJson(p), "again") == p);
        QCOMPARE(planToJson(parsePlanJson(planToJson(p), "again")), planToJson(p));
        ModelConfig cfg = parseConfigJson(R"({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
            "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": 100, "num_local_experts": 2, "num_experts_per_tok": 1})",
                                                "config.json");
        validatePlan(p, cfg, "p");
        const std::vector<PlanEntry> es = expandPlan(p, cfg);
        std::map<std::string, const PlanEntry*> by;
        for (const PlanEntry& e : es)
            by[e.name] = &e;
        const PlanEntry& q = *by.at("model.layers.0.self_attn.q_proj");
        QCOMPARE(q.sparsity, 0.0);
        const PlanEntry& w2 = *by.at("model.layers.0.block_sparse_moe.experts.0.w2");
        QCOMPARE(w2.sparsity, 0.5);
        QCOMPARE(w2.pattern.m, int64_t(4));
        QCOMPARE(w2.pruneMethod, std::string("wanda"));
        const PlanEntry& w1 = *by.at("model.layers.0.block_sparse_moe.experts.1.w1");
        QCOMPARE(w1.pattern.n, int64_t(4));
        QCOMPARE(w1.pattern.m, int64_t(8));
        QCOMPARE(w1.pruneMethod, std::string("sparsegpt"));
        // size: every expert linear half pruned, attention dense
        const PlanSize s = planSize(es, cfg);
        int64_t attn = 0, experts = 0;
        for (const PlanEntry& e : es)
            (e.expert >= 0 ? experts : attn) += e.inFeatures * e.outFeatures;
        QCOMPARE(s.quantParams, attn + experts);
        QCOMPARE(s.nonzeroParams, attn + experts / 2);
        QCOMPARE(s.density, double(attn + experts / 2) / double(attn + experts));
        QCOMPARE(s.linearBytes, 2 * (attn + experts)); // the dense export stores the zeros
    }

    // moewb prune end to end on a tiny model: loadable output, report numbers equal to the zeros.
    void cliEndToEnd()
    {
        const QString model = m_tmp.path() + "/qwen";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "qwen2_moe", model, "--seed", "3", "--tiny"});
        const QString text = m_tmp.path() + "/calib.txt";
        QByteArray body;
        for (int i = 0; i < 40; ++i)
            body += "the cat sat on the mat and then it went to the store to buy some bread. ";
        writeAll(text, body);
        const Checkpoint in = Checkpoint::open(model.toStdString());
        struct Case {
            QStringList args;
            bool nm;
            bool sharedDense;
        };
        const std::vector<Case> cases = {
            {{"--method", "wanda", "--sparsity", "0.5"}, false, false},
            {{"--method", "sparsegpt", "--pattern", "2:4", "--exclude-shared", "--bits", "4", "--group-size", "16",
              "--min-expert-tokens", "4"},
             true, true},
        };
        int idx = 0;
        for (const Case& c : cases) {
            const QString out = m_tmp.path() + "/pruned" + QString::number(idx++);
            const CliRun r = runCli(moewbCli(), QStringList{"prune", model, "--calib", text, "--samples", "4", "--seq-len",
                                                            "32", "--out", out} + c.args);
            QVERIFY2(r.exitCode == 0, r.err.constData());
            QVERIFY(r.out.contains("all pruned"));
            const Checkpoint ck = Checkpoint::open(out.toStdString());
            const QJsonObject rep = QJsonDocument::fromJson(readAll(out + "/moewb_quant_report.json")).object();
            int64_t prunedTotal = 0, numelTotal = 0, prunedLinears = 0;
            for (const auto& v : rep["linears"].toArray()) {
                const QJsonObject l = v.toObject();
                const std::string name = l["name"].toString().toStdString() + ".weight";
                const TensorInfo& info = ck.info(name);
                const int64_t outF = info.shape[0], inF = info.shape[1];
                at::Tensor t = at::from_blob(const_cast<uint8_t*>(ck.data(name)), {outF, inF},
                                             info.dtype == DType::BF16 ? at::kBFloat16 : at::kFloat)
                                   .to(at::kFloat);
                const bool shared = l["role"].toString().startsWith("shared");
                if (c.sharedDense && shared) {
                    QVERIFY(!l.contains("sparsity"));
                    continue;
                }
                QVERIFY2(l.contains("sparsity"), qPrintable(l["name"].toString()));
                ++prunedLinears;
                const at::Tensor zeros = t.eq(0);
                QCOMPARE(int64_t(l["zeros"].toDouble()), zeros.sum().item<int64_t>());
                QCOMPARE(int64_t(l["numel"].toDouble()), outF * inF);
                if (c.nm) {
                    // every group of 4 has at least 2 zeros, and the report's pruned count is exactly half
                    QVERIFY(zeros.view({outF, inF / 4, 4}).sum(2).ge(2).all().item<bool>());
                    QCOMPARE(int64_t(l["pruned"].toDouble()), outF * inF / 2);
                    QCOMPARE(l["pattern"].toString(), QStringLiteral("2:4"));
                } else {
                    // 16-bit Wanda: the zeros are exactly the pruned weights, half of every row
                    QVERIFY(zeros.sum(1).eq(inF / 2).all().item<bool>());
                    QCOMPARE(int64_t(l["pruned"].toDouble()), zeros.sum().item<int64_t>());
                }
                QCOMPARE(l["achieved_sparsity"].toDouble(), 0.5);
                prunedTotal += int64_t(l["pruned"].toDouble());
                numelTotal += outF * inF;
            }
            QVERIFY(prunedLinears > 0);
            const QJsonObject tot = rep["totals"].toObject()["pruning"].toObject();
            QCOMPARE(int64_t(tot["pruned"].toDouble()), prunedTotal);
            QCOMPARE(int64_t(tot["weights"].toDouble()), numelTotal);
            // routers are never pruned: bit-identical
            for (const std::string& n : in.names())
                if (n.find("mlp.gate.weight") != std::string::npos || n.find("shared_expert_gate") != std::string::npos)
                    QVERIFY(std::memcmp(in.data(n), ck.data(n), in.info(n).nbytes()) == 0);
            // loadable by moewb eval
            const CliRun ev = runCli(moewbCli(), {"eval", out, "--ppl", text, "--ctx", "32"});
            QVERIFY2(ev.exitCode == 0, ev.err.constData());
            QVERIFY(ev.out.contains("perplexity:"));
            if (idx == 1) {
                // the written plan through `eval --plan` (prunes on the fly): the same perplexity
                const CliRun evp = runCli(moewbCli(), {"eval", model, "--plan", out + "/moewb_plan.json", "--calib", text,
                                                       "--samples", "4", "--seq-len", "32", "--ppl", text, "--ctx", "32"});
                QVERIFY2(evp.exitCode == 0, evp.err.constData());
                auto pplLine = [](const QByteArray& o) {
                    for (const QByteArray& l : o.split('\n'))
                        if (l.startsWith("perplexity:"))
                            return l;
                    return QByteArray();
                };
                QVERIFY(!pplLine(ev.out).isEmpty());
                QCOMPARE(pplLine(evp.out), pplLine(ev.out));
            }
        }
        // Wanda from a stats file's act_sq_mean, no calibration pass; attention excluded.
        {
            const QString stats = m_tmp.path() + "/stats.h5";
            const CliRun cal = runCli(moewbCli(), {"calibrate", model, "--data", text, "--samples", "4", "--seq-len", "32",
                                                   "--out", stats});
            QVERIFY2(cal.exitCode == 0, cal.err.constData());
            const QString out = m_tmp.path() + "/pruned-stats";
            const CliRun r = runCli(moewbCli(), {"prune", model, "--method", "wanda", "--sparsity", "0.25", "--stats", stats,
                                                 "--exclude-attention", "--out", out});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            const Checkpoint ck = Checkpoint::open(out.toStdString());
            const QJsonObject rep = QJsonDocument::fromJson(readAll(out + "/moewb_quant_report.json")).object();
            QCOMPARE(rep["calibration"].toObject()["tokens"].toInt(), 0);
            for (const auto& v : rep["linears"].toArray()) {
                const QJsonObject l = v.toObject();
                const std::string name = l["name"].toString().toStdString() + ".weight";
                if (l["name"].toString().contains("self_attn")) {
                    QVERIFY(!l.contains("sparsity"));
                    QVERIFY(std::memcmp(in.data(name), ck.data(name), in.info(name).nbytes()) == 0);
                    continue;
                }
                QCOMPARE(l["prune_method"].toString(), QStringLiteral("wanda"));
                const TensorInfo& info = ck.info(name);
                const at::Tensor t = at::from_blob(const_cast<uint8_t*>(ck.data(name)), {info.shape[0], info.shape[1]},
                                                   info.dtype == DType::BF16 ? at::kBFloat16 : at::kFloat)
                                     .to(at::kFloat);
                const int64_t perRow = std::llround(0.25 * double(info.shape[1]));
                QVERIFY(t.eq(0).sum(1).eq(perRow).all().item<bool>());
            }
        }
        // A pruned + 4-bit plan through `quantize --format gptq`: pruned weights are stored as zero points, the
        // GPTQ checkpoint evaluates exactly as the fake one; a pruned 16-bit linear is refused there.
        {
            const QString plan4 = m_tmp.path() + "/plan-p4.json";
            writeAll(plan4, QByteArray::fromStdString(planJson(R"({"bits": 4, "group_size": 16, "method": "rtn",
                "sparsity": 0.5, "pattern": "2:4", "prune_method": "magnitude"})")));
            const QString fake = m_tmp.path() + "/p4-fake", gptq = m_tmp.path() + "/p4-gptq";
            QCOMPARE(runCli(moewbCli(), {"quantize", model, "--plan", plan4, "--out", fake}).exitCode, 0);
            QCOMPARE(runCli(moewbCli(), {"quantize", model, "--plan", plan4, "--format", "gptq", "--out", gptq}).exitCode, 0);
            const CliRun a = runCli(moewbCli(), {"eval", fake, "--ppl", text, "--ctx", "32"});
            const CliRun b = runCli(moewbCli(), {"eval", gptq, "--ppl", text, "--ctx", "32"});
            QVERIFY2(a.exitCode == 0 && b.exitCode == 0, b.err.constData());
            QVERIFY(a.out.contains("perplexity:"));
            QCOMPARE(a.out.mid(a.out.indexOf("perplexity:"), 30), b.out.mid(b.out.indexOf("perplexity:"), 30));
            const QString plan16 = m_tmp.path() + "/plan-p16.json";
            writeAll(plan16, QByteArray::fromStdString(planJson(R"({"bits": 16, "sparsity": 0.5, "prune_method": "magnitude"})")));
            const CliRun r = runCli(moewbCli(), {"quantize", model, "--plan", plan16, "--format", "gptq", "--out",
                                                 m_tmp.path() + "/p16-gptq"});
            QCOMPARE(r.exitCode, 1);
            QVERIFY2(r.err.contains("is pruned but left at 16 bits"), r.err.constData());
        }
        // bad requests at the CLI: usage errors and clear messages, nothing written
        const QString bad = m_tmp.path() + "/bad";
        CliRun r = runCli(moewbCli(), {"prune", model, "--sparsity", "1.2", "--method", "magnitude", "--out", bad});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("outside [0, 1)"), r.err.constData());
        r = runCli(moewbCli(), {"prune", model, "--pattern", "4:4", "--method", "magnitude", "--out", bad});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("N must be smaller than M"), r.err.constData());
        r = runCli(moewbCli(), {"prune", model, "--pattern", "2:4", "--sparsity", "0.5", "--out", bad});
        QCOMPARE(r.exitCode, 2);
        r = runCli(moewbCli(), {"prune", model, "--sparsity", "0.5", "--method", "sparsegpt", "--out", bad});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("need calibration data"), r.err.constData());
        QVERIFY(!QDir(bad).exists());
    }
};

QTEST_GUILESS_MAIN(TstPrune)
#include "tst_prune.moc"
