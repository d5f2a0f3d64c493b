// SPDX-License-Identifier: MIT
// `plan --strategy budget --target gguf` on the ggml encoders' errors (#26): the error table of a
// small random Mixtral against the same errors computed here by hand (encode → decode each row with
// engine/gguf's encoder, importance-weighted squared error summed in a plain loop, times the
// expert's routing share), the cache file's round trip and malformed files, the planned file size
// = the written file's size under the target, the token_embd / output types among the choices, the
// solver's choice in a hand-built two-tensor case, and the solve time for a 47k-linear table.
#include "testutil.h"

#include "gguf/gguf_file.h"
#include "gguf/gguf_quants.h"
#include "moewb/alloc/allocate.h"
#include "moewb/alloc/ggml_errors.h"
#include "moewb/core/error.h"
#include "moewb/export/gguf.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/workflow/gguf_budget.h"

#include <QTemporaryDir>
#include <QtTest>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

using namespace moewb;
using namespace moewb::test;

namespace {

QString generate(const QString& root, const QString& name, const QStringList& extra)
{
    const QString out = root + "/" + name;
    if (!QFile::exists(out + "/config.json"))
        runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), "mixtral", out, "--seed", "5"} + extra);
    return out;
}

std::vector<float> f32Tensor(const Checkpoint& c, const std::string& name)
{
    const TensorInfo& info = c.info(name);
    std::vector<float> v(size_t(info.numel()));
    std::memcpy(v.data(), c.data(name), v.size() * 4);
    return v;
}

/// Σ_r Σ_j w_j (x − decode(encode(x)))², one row at a time, written without the library's loop.
double byHand(const std::vector<float>& x, int64_t cols, const std::string& typeName, const float* importance,
              const float* weight)
{
    gguf::GgmlType t;
    if (!gguf::ggmlTypeFromName(typeName, t))
        return -1;
    t = gguf::rowFallbackType(t, cols);
    std::vector<uint8_t> enc(static_cast<size_t>(gguf::ggmlRowBytes(t, cols)));
    std::vector<float> dec(static_cast<size_t>(cols));
    double sum = 0;
    for (size_t r = 0; r < x.size() / size_t(cols); ++r) {
        gguf::quantizeRow(t, x.data() + r * size_t(cols), enc.data(), cols, importance);
        gguf::dequantizeRow(t, enc.data(), dec.data(), cols);
        for (int64_t j = 0; j < cols; ++j) {
            const double d = double(x[r * size_t(cols) + size_t(j)]) - double(dec[size_t(j)]);
            sum += (weight ? double(weight[j]) : 1.0) * d * d;
        }
    }
    return sum;
}

/// Statistics for layer 0's router (expert e routed 10·(e+1) of 400 tokens) and act_sq_mean for two linears.
CalibStats handStats(const ModelConfig& cfg, const std::vector<LinearInfo>& withImportance)
{
    CalibStats s;
    s.numLayers = cfg.numLayers;
    s.layers.resize(size_t(cfg.numLayers));
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        s.layers[size_t(l)].layer = l;
    s.layers[0].isMoe = true;
    RouterStats& r = s.layers[0].router;
    r.numExperts = cfg.numExperts;
    r.topK = cfg.topK;
    r.tokens = 400;
    for (int64_t e = 0; e < cfg.numExperts; ++e) {
        r.expertTokens.push_back(10 * (e + 1));
        r.expertTop1.push_back(5 * (e + 1));
        r.expertWeightMass.push_back(5.0 * double(e + 1));
        r.expertProbMass.push_back(5.0 * double(e + 1));
    }
    r.domainTokens = Matrix<int64_t>(0, cfg.numExperts);
    r.coactivation = Matrix<int64_t>(cfg.numExperts, cfg.numExperts);
    r.transitions = Matrix<int64_t>(cfg.numExperts, 0);
    std::mt19937 rng(7);
    std::gamma_distribution<float> g(0.5f, 2.0f);
    for (const LinearInfo& li : withImportance) {
        LinearStats ls;
        ls.name = li.name;
        ls.layer = li.layer;
        ls.expert = li.expert;
        ls.inFeatures = li.inFeatures;
        ls.outFeatures = li.outFeatures;
        for (int64_t j = 0; j < li.inFeatures; ++j)
            ls.actSqMean.push_back(g(rng));
        s.linears.push_back(ls);
    }
    return s;
}

} // namespace

class TestGgufBudget : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;

    QString model() { return generate(m_tmp.path(), "mixtral-256", {"--hidden", "256"}); }

private slots:
    void initTestCase() { QVERIFY(m_tmp.isValid()); }

    void errorTableByHand()
    {
        const std::string dir = model().toStdString();
        const ModelConfig cfg = loadConfig(dir);
        const std::vector<LinearInfo> lin = quantizableLinears(cfg);
        const LinearInfo* expert = nullptr; // layer 0, expert 2, 256-wide rows (K-quants)
        const LinearInfo* down = nullptr;   // layer 0, expert 2, the narrow down projection (fallbacks)
        const LinearInfo* attn = nullptr;   // layer 1 q_proj, no statistics: importance 1
        for (const LinearInfo& li : lin) {
            if (li.layer == 0 && li.expert == 2 && li.inFeatures % 256 == 0 && !expert)
                expert = &li;
            if (li.layer == 0 && li.expert == 2 && li.inFeatures % 256 != 0)
                down = &li;
            if (li.layer == 1 && li.role == LinearRole::Q)
                attn = &li;
        }
        QVERIFY(expert && down && attn);
        const CalibStats stats = handStats(cfg, {*expert, *down});
        const std::vector<std::string>& types = defaultGgufCandidateTypes();
        const GgmlErrorTable t = measureGgmlErrors(dir, cfg, stats, types);
        QCOMPARE(t.linears.size(), lin.size());
        QCOMPARE(t.types, types);
        const Checkpoint ckpt = Checkpoint::open(dir);
        auto rowOf = [&](const LinearInfo* li) {
            return t.linears[size_t(li - lin.data())];
        };
        for (size_t c = 0; c < types.size(); ++c) {
            for (const LinearInfo* li : {expert, down}) {
                const float* imp = stats.linears[li == expert ? 0 : 1].actSqMean.data();
                const double want = 30.0 / 400.0 * byHand(f32Tensor(ckpt, li->name + ".weight"), li->inFeatures,
                                                          types[c], imp, imp);
                QVERIFY(want > 0);
                QVERIFY2(std::abs(rowOf(li).error[c] - want) <= 1e-9 * want, (li->name + " " + types[c]).c_str());
            }
            const double q = byHand(f32Tensor(ckpt, attn->name + ".weight"), attn->inFeatures, types[c], nullptr,
                                    nullptr);
            QVERIFY(std::abs(rowOf(attn).error[c] - q) <= 1e-9 * q);
            const std::vector<float> emb = f32Tensor(ckpt, "model.embed_tokens.weight");
            const double e = byHand(emb, cfg.hiddenSize, types[c], nullptr, nullptr) / double(cfg.vocabSize);
            QVERIFY(std::abs(t.tokenEmbd.error[c] - e) <= 1e-9 * e);
            std::vector<float> g2 = f32Tensor(ckpt, "model.norm.weight");
            for (float& v : g2)
                v *= v;
            const double o = byHand(f32Tensor(ckpt, "lm_head.weight"), cfg.hiddenSize, types[c], nullptr, g2.data());
            QVERIFY(std::abs(t.output.error[c] - o) <= 1e-9 * o);
        }
        // Wider types lose less (the fallbacks of the narrow rows may tie: Q2_K and Q3_K both → IQ4_NL).
        for (const GgmlTensorErrors& r : t.linears)
            for (size_t c = 1; c < types.size(); ++c)
                QVERIFY2(r.error[c] <= r.error[c - 1] * 1.0000001 || r.error[c - 1] == 0, r.name.c_str());
        QCOMPARE(rowOf(down).error[0], rowOf(down).error[1]);
        // Experts of layer 1 (no router statistics): uniform routing, top_k / experts.
        for (const LinearInfo& li : lin)
            if (li.layer == 1 && li.expert == 0 && li.inFeatures % 256 == 0) {
                const double want = double(cfg.topK) / double(cfg.numExperts)
                    * byHand(f32Tensor(ckpt, li.name + ".weight"), li.inFeatures, "q4_k", nullptr, nullptr);
                QVERIFY(std::abs(t.linears[size_t(&li - lin.data())].error[2] - want) <= 1e-9 * want);
                break;
            }

        // The cache file: the same table back; malformed files refused with the file named.
        const std::string path = (m_tmp.path() + "/errors.json").toStdString();
        saveGgmlErrorTable(t, path);
        const GgmlErrorTable back = loadGgmlErrorTable(path);
        QCOMPARE(back.costModel, CostModel::Proxy); // no Fisher in these statistics
        QCOMPARE(back.types, t.types);
        QCOMPARE(back.linears.size(), t.linears.size());
        QCOMPARE(back.linears[5].error, t.linears[5].error);
        QCOMPARE(back.output.error, t.output.error);
        const QString bad = m_tmp.path() + "/bad.json";
        for (const QByteArray& text :
             {QByteArray(R"({"format": "moewb-alloc-errors", "version": 1})"), QByteArray("{\"format\""),
              QByteArray(R"({"format": "moewb-ggml-errors", "version": 1, "types": ["q4_k"],
                  "token_embd": {"name": "e", "error": [1]}, "output": {"name": "o", "error": [1, 2]}, "linears": []})"),
              QByteArray(R"({"format": "moewb-ggml-errors", "version": 1, "types": ["q4_k"],
                  "token_embd": {"name": "e", "error": [-1]}, "output": {"name": "o", "error": [1]}, "linears": []})"),
              QByteArray(R"({"format": "moewb-ggml-errors", "version": 1, "types": ["q4_k"], "cost_model": "auto",
                  "token_embd": {"name": "e", "error": [1]}, "output": {"name": "o", "error": [1]}, "linears": []})")}) {
            writeAll(bad, text);
            try {
                loadGgmlErrorTable(bad.toStdString());
                QFAIL("accepted a malformed table");
            } catch (const InputError& e) {
                QVERIFY2(std::string(e.what()).find(bad.toStdString()) != std::string::npos, e.what());
            }
        }
        // A table from before the Fisher cost model (no cost_model): the proxy.
        writeAll(bad, R"({"format": "moewb-ggml-errors", "version": 1, "types": ["q4_k"],
                  "token_embd": {"name": "e", "error": [1]}, "output": {"name": "o", "error": [1]}, "linears": []})");
        QCOMPARE(loadGgmlErrorTable(bad.toStdString()).costModel, CostModel::Proxy);
        QVERIFY_THROWS_EXCEPTION(Error, loadGgmlErrorTable((m_tmp.path() + "/missing.json").toStdString()));
        QVERIFY_THROWS_EXCEPTION(InputError, measureGgmlErrors(dir, cfg, stats, {"q4_k", "q9_x"}));
    }

    /// The Fisher cost model: a linear's error is ½ Σ_r F_r Σ_j a_j (W − Ŵ)²_rj, computed here row by
    /// row (no routing share: the Fisher has it); the embeddings' errors as under the proxy but
    /// counting 0 in the plan; the cost model kept by the cache file; "auto" embeddings refused.
    void fisherTable()
    {
        const std::string dir = model().toStdString();
        const ModelConfig cfg = loadConfig(dir);
        const std::vector<LinearInfo> lin = quantizableLinears(cfg);
        CalibStats stats = handStats(cfg, lin);
        QVERIFY_THROWS_EXCEPTION(InputError,
                                 measureGgmlErrors(dir, cfg, stats, defaultGgufCandidateTypes(), {}, CostModel::Fisher));
        std::mt19937 rng(11);
        std::exponential_distribution<float> f(1.0f);
        for (LinearStats& ls : stats.linears)
            for (int64_t i = 0; i < ls.outFeatures; ++i)
                ls.fisher.push_back(f(rng));
        stats.fisher.tokens = 400;
        const std::vector<std::string>& types = defaultGgufCandidateTypes();
        const GgmlErrorTable t = measureGgmlErrors(dir, cfg, stats, types, {}, CostModel::Auto);
        QCOMPARE(t.costModel, CostModel::Fisher);
        const GgmlErrorTable proxy = measureGgmlErrors(dir, cfg, stats, types, {}, CostModel::Proxy);
        QCOMPARE(proxy.costModel, CostModel::Proxy);
        const Checkpoint ckpt = Checkpoint::open(dir);
        int checked = 0;
        for (size_t i = 0; i < lin.size(); ++i) {
            const LinearInfo& li = lin[i];
            // layer 0's expert 2 (router statistics: usage ≠ 1), both widths, and layer 1's q_proj
            if (!((li.layer == 0 && li.expert == 2) || (li.layer == 1 && li.role == LinearRole::Q)))
                continue;
            const std::vector<float> w = f32Tensor(ckpt, li.name + ".weight");
            const float* a = stats.linears[i].actSqMean.data();
            for (size_t c = 0; c < types.size(); ++c) {
                double want = 0;
                for (int64_t r = 0; r < li.outFeatures; ++r) {
                    const std::vector<float> row(w.begin() + r * li.inFeatures, w.begin() + (r + 1) * li.inFeatures);
                    want += 0.5 * double(stats.linears[i].fisher[size_t(r)])
                        * byHand(row, li.inFeatures, types[c], a, a);
                }
                QVERIFY(want > 0);
                QVERIFY2(std::abs(t.linears[i].error[c] - want) <= 1e-9 * want, (li.name + " " + types[c]).c_str());
            }
            ++checked;
        }
        QCOMPARE(checked, 4);
        QCOMPARE(t.tokenEmbd.error, proxy.tokenEmbd.error);
        QCOMPARE(t.output.error, proxy.output.error);

        const std::string path = (m_tmp.path() + "/fisher-errors.json").toStdString();
        saveGgmlErrorTable(t, path);
        QCOMPARE(loadGgmlErrorTable(path).costModel, CostModel::Fisher);
        QCOMPARE(loadGgmlErrorTable(path).linears[3].error, t.linears[3].error);

        Plan smallest;
        smallest.defaults.ggmlType = "q2_k";
        smallest.ggufTokenEmbd = "q2_k";
        smallest.ggufOutput = "q2_k";
        const int64_t target = int64_t(ggufPlannedBytes(dir, smallest)) + 900000;
        AllocOptions opt;
        opt.strategy = "budget";
        QVERIFY_THROWS_EXCEPTION(InputError, ggufBudgetPlan(dir, cfg, t, opt, target, "auto", "q6_k"));
        QVERIFY_THROWS_EXCEPTION(InputError, ggufBudgetPlan(dir, cfg, t, opt, target, "q4_k", "auto"));
        const GgufBudgetResult g = ggufBudgetPlan(dir, cfg, t, opt, target);
        QVERIFY(int64_t(g.fileBytes) <= target);
        // The plan's cost: the chosen types' linear errors only (predicted KL).
        std::map<std::string, size_t> col;
        for (size_t c = 0; c < types.size(); ++c)
            col[types[c]] = c;
        const std::vector<PlanEntry> entries = expandPlan(g.plan, cfg);
        double sum = 0;
        for (size_t i = 0; i < lin.size(); ++i)
            sum += t.linears[i].error[col.at(entries[i].ggmlType)];
        QVERIFY2(std::abs(g.error - sum) <= 1e-9 * sum, QByteArray::number(g.error) + " vs " + QByteArray::number(sum));
    }

    /// The measured table solved under two targets: the written file is the planned size, under the
    /// target; more bytes → less table error; token_embd / output among the choices.
    void fileSizeIsThePlan()
    {
        const std::string dir = model().toStdString();
        const ModelConfig cfg = loadConfig(dir);
        const GgmlErrorTable t = measureGgmlErrors(dir, cfg, CalibStats{}, defaultGgufCandidateTypes());
        Plan smallest;
        smallest.defaults.ggmlType = "q2_k";
        smallest.ggufTokenEmbd = "q2_k";
        smallest.ggufOutput = "q2_k";
        const int64_t low = int64_t(ggufPlannedBytes(dir, smallest));
        AllocOptions opt;
        opt.strategy = "budget";
        double lastError = 1e300;
        for (const int64_t target : {low + 200000, low + 900000}) {
            const GgufBudgetResult g = ggufBudgetPlan(dir, cfg, t, opt, target, "auto", "auto");
            QVERIFY(int64_t(g.fileBytes) <= target);
            QVERIFY(int64_t(g.fileBytes) > target - 40000);
            QVERIFY(g.error < lastError);
            lastError = g.error;
            const QString file = m_tmp.path() + "/b-" + QString::number(target) + ".gguf";
            const GgufExportResult r = quantizeToGguf(dir, g.plan, {}, {}, file.toStdString(), true);
            QCOMPARE(qint64(QFileInfo(file).size()), qint64(g.fileBytes));
            QCOMPARE(r.stackExtraBytes, int64_t(0));
            const gguf::File f = gguf::read(file.toStdString());
            gguf::GgmlType te, out;
            QVERIFY(gguf::ggmlTypeFromName(g.plan.ggufTokenEmbd, te));
            QVERIFY(gguf::ggmlTypeFromName(g.plan.ggufOutput, out));
            QCOMPARE(f.findTensor("token_embd.weight")->type, te);
            QCOMPARE(f.findTensor("output.weight")->type, out);
        }
        QVERIFY_THROWS_EXCEPTION(InputError, ggufBudgetPlan(dir, cfg, t, opt, low - 1, "auto", "auto"));
        // The default: token_embd Q4_K and output Q6_K, fixed.
        const GgufBudgetResult d = ggufBudgetPlan(dir, cfg, t, opt, low + 900000);
        QCOMPARE(d.plan.ggufTokenEmbd, std::string("q4_k"));
        QCOMPARE(d.plan.ggufOutput, std::string("q6_k"));
        QVERIFY(int64_t(d.fileBytes) <= low + 900000);
        QVERIFY_THROWS_EXCEPTION(InputError, ggufBudgetItems(cfg, t, "q4_k", "iq4_nl"));
    }

    /// The CLI: measured and cached, the cache read back for another size, a --target gptq table and a bad
    /// --token-embd-type refused.
    void cli()
    {
        const QString dir = model();
        if (!QFile::exists(moewbCli()))
            QSKIP("moewb CLI not built");
        const QString cache = m_tmp.path() + "/cli-errors.json", plan = m_tmp.path() + "/cli-plan.json";
        const QString statsFile = m_tmp.path() + "/cli.stats.h5";
        try {
            writeStats(handStats(loadConfig(dir.toStdString()), {}), statsFile.toStdString());
        } catch (const Error& e) {
            QSKIP(e.what()); // hand statistics the writer's validation wants more of
        }
        const QStringList base{"plan", dir, "--strategy", "budget", "--target", "gguf", "--errors", cache,
                               "--stats", statsFile, "--out", plan};
        CliRun r = runCli(moewbCli(), base + QStringList{"--bytes", "3000000"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.out.contains("measured ggml quantization errors"));
        QVERIFY(r.out.contains("token_embd q4_k, output q6_k"));
        r = runCli(moewbCli(), base + QStringList{"--bytes", "2500000", "--token-embd-type", "auto"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.out.contains("read ggml quantization errors from"));
        r = runCli(moewbCli(), base + QStringList{"--bytes", "2500000", "--output-type", "q9_k"});
        QVERIFY(r.exitCode != 0);
        QVERIFY(r.err.contains("--output-type"));
        // The cached table holds the proxy (these statistics have no Fisher): a Fisher run refuses it.
        r = runCli(moewbCli(), base + QStringList{"--bytes", "2500000", "--cost-model", "fisher"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains(cache.toUtf8()) && r.err.contains("holds the proxy cost model")
                     && r.err.count('\n') == 1,
                 r.err.constData());
        writeAll(cache, R"({"format": "moewb-alloc-errors", "version": 1})");
        r = runCli(moewbCli(), base + QStringList{"--bytes", "2500000"});
        QVERIFY(r.exitCode != 0);
        QVERIFY2(r.err.contains(cache.toUtf8()) && r.err.contains("not a moewb ggml error table"), r.err.constData());
    }

    /// Two 8 × 256 tensors, one with ten times the other's values (100× its error at every type), and
    /// bytes for one Q4_K → Q6_K upgrade: the solver upgrades the larger one.
    void twoTensors()
    {
        std::mt19937 rng(3);
        std::normal_distribution<float> n(0.0f, 1.0f);
        std::vector<float> small(8 * 256), large(8 * 256);
        for (size_t i = 0; i < small.size(); ++i) {
            small[i] = n(rng);
            large[i] = 10.0f * n(rng);
        }
        const std::vector<std::string> types{"q4_k", "q6_k"};
        std::vector<KnapsackItem> items(2);
        for (const std::string& type : types) {
            gguf::GgmlType t;
            QVERIFY(gguf::ggmlTypeFromName(type, t));
            for (KnapsackItem& it : items)
                it.bytes.push_back(gguf::ggmlRowBytes(t, 256) * 8);
            items[0].error.push_back(ggmlSquaredError(small.data(), 8, 256, type, nullptr, nullptr));
            items[1].error.push_back(ggmlSquaredError(large.data(), 8, 256, type, nullptr, nullptr));
            QCOMPARE(items[0].error.back(), byHand(small, 256, type, nullptr, nullptr));
        }
        QCOMPARE(items[0].bytes, (std::vector<int64_t>{8 * 144, 8 * 210}));
        QVERIFY(items[1].error[0] - items[1].error[1] > 50 * (items[0].error[0] - items[0].error[1]));
        const int64_t budget = 8 * 144 + 8 * 210;
        QCOMPARE(solveKnapsack(items, budget), (std::vector<int>{0, 1}));
        QCOMPARE(solveKnapsack(items, budget - 1), (std::vector<int>{0, 0}));
        QCOMPARE(solveKnapsack(items, 2 * 8 * 210), (std::vector<int>{1, 1}));
    }

    /// A DeepSeek-V3-sized table (58 MoE layers × 256 experts × 3 + the rest: ~45k linears): the
    /// solve in well under 100 ms (the items, i.e. listLinears and the
    /// grouping, take longer).
    void solveTime()
    {
        // DeepSeek-MoE's layout at DeepSeek-V3's scale (moewb reads no MLA config).
        ModelConfig cfg = loadConfig(sourcePath("tests/data/configs/deepseek-moe-16b-base").toStdString());
        cfg.numLayers = 61;
        cfg.numExperts = 256;
        cfg.topK = 8;
        cfg.firstKDenseReplace = 3;
        const std::vector<LinearInfo> lin = quantizableLinears(cfg);
        QVERIFY(lin.size() > 40000);
        GgmlErrorTable t;
        t.types = defaultGgufCandidateTypes();
        std::mt19937 rng(1);
        std::uniform_real_distribution<double> u(0.5, 2.0);
        for (const LinearInfo& li : lin) {
            GgmlTensorErrors e{li.name, {}};
            const double base = u(rng) * double(li.inFeatures * li.outFeatures);
            for (size_t c = 0; c < t.types.size(); ++c)
                e.error.push_back(base / double(1 << (2 * c)));
            t.linears.push_back(e);
        }
        t.tokenEmbd = {"e", {6, 5, 4, 3, 2, 1}};
        t.output = {"o", {6e9, 5e9, 4e9, 3e9, 2e9, 1e9}};
        const auto t0 = std::chrono::steady_clock::now();
        const GgufBudgetItems b = ggufBudgetItems(cfg, t, "auto", "auto");
        int64_t q4 = 0;
        for (const KnapsackItem& it : b.items)
            q4 += it.bytes[2];
        const auto t1 = std::chrono::steady_clock::now();
        const std::vector<int> pick = solveKnapsack(b.items, q4);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
        qInfo("%zu linears, %zu knapsack items: items %.1f ms, solve %.1f ms", lin.size(), b.items.size(),
              std::chrono::duration<double, std::milli>(t1 - t0).count(), ms);
        QCOMPARE(pick.size(), b.items.size());
        QVERIFY(ms < 100.0);
        QVERIFY(std::chrono::duration<double>(t1 - t0).count() < 5.0); // listLinears' names dominate

    }
};

QTEST_GUILESS_MAIN(TestGgufBudget)
#include "tst_gguf_budget.moc"
