// SPDX-License-Identifier: MIT
// quantize --format gptq (#9): packing of qweight / qzeros / scales / g_idx against an independent
// NumPy implementation of docs/export-gptq.md ("Packing in detail") and hand-computed words; a
// mixed-bit plan exported as GPTQ reads back (model/weights.cpp dequantizes on load) bit for bit as
// the fake export's weights, with identical perplexity; the config's `dynamic` describes the plan
// for every linear; sharding, v2 zeros, and errors (existing output, corrupted tensors, cancel)
// leave nothing half-written.
#include "gptq/gptq_pack.h"
#include "model/weights.h"
#include "moewb/plan/plan.h"
#include "moewb/plan/gptq_dynamic.h"
#include "moewb/core/error.h"
#include "moewb/export/gptq.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/quant/quantize.h"
#include "testutil.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>

#include <cstring>
#include <map>
#include <set>

using namespace moewb;
using namespace moewb::test;

namespace {

QString generate(const QString& root, const QString& arch, const QStringList& extra, const QString& name)
{
    const QString out = root + "/" + name;
    runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "5"} + extra);
    return out;
}

std::vector<std::vector<int32_t>> randomSeqs(int64_t n, int64_t len, int64_t vocab, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const at::Tensor t = at::randint(0, vocab, {n, len}, gen, at::TensorOptions().dtype(at::kInt));
    std::vector<std::vector<int32_t>> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        out[size_t(i)].assign(t[i].data_ptr<int32_t>(), t[i].data_ptr<int32_t>() + len);
    return out;
}

template <typename T>
std::vector<T> tensorData(const SafetensorsFile& f, const std::string& name)
{
    const TensorInfo* t = f.find(name);
    if (!t)
        throw std::runtime_error("golden file lacks " + name);
    std::vector<T> v(t->nbytes() / sizeof(T));
    std::memcpy(v.data(), f.data(*t), t->nbytes());
    return v;
}

bool sameBytes(const Checkpoint& a, const Checkpoint& b, const std::string& name)
{
    const TensorInfo &ia = a.info(name), &ib = b.info(name);
    return ia.dtype == ib.dtype && ia.shape == ib.shape && ia.nbytes() == ib.nbytes()
        && std::memcmp(a.data(name), b.data(name), ia.nbytes()) == 0;
}

bool sameTensor(const at::Tensor& a, const at::Tensor& b)
{
    return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && a.nbytes() == b.nbytes()
        && std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.nbytes()) == 0;
}

// A mixed plan for the tiny models: 4-bit sym g16 RTN by default; expert 0 3-bit asym, expert 1
// 2-bit asym per-channel, expert 2 8-bit g32, v_proj left at 16 bits, layer 1's q_proj GPTQ with
// act order, every o_proj GPTQ.
const char* kMixedPlan = R"({"format": "moewb-plan", "version": 1,
  "defaults": {"bits": 4, "group_size": 16, "method": "rtn"},
  "rules": [
    {"match": ".*experts\\.0\\..*", "bits": 3, "sym": false},
    {"match": ".*experts\\.1\\..*", "bits": 2, "group_size": -1, "sym": false},
    {"match": ".*experts\\.2\\..*", "bits": 8, "group_size": 32},
    {"match": ".*\\.v_proj", "bits": 16},
    {"match": ".*\\.o_proj", "method": "gptq"},
    {"match": "model\\.layers\\.1\\.self_attn\\.q_proj", "method": "gptq", "act_order": true}]})";

QString pplLine(const QByteArray& out)
{
    for (const QByteArray& l : out.split('\n'))
        if (l.startsWith("perplexity:"))
            return QString::fromUtf8(l);
    return {};
}

} // namespace

class TestExportGptq : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_mixtral, m_qwen;
    int m_outCount = 0;
    QString freshOut() { return m_tmp.path() + "/out" + QString::number(m_outCount++); }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        at::manual_seed(0);
        m_mixtral = generate(m_tmp.path(), "mixtral", {"--tiny", "--dtype", "bf16"}, "mixtral");
        m_qwen = generate(m_tmp.path(), "qwen2_moe", {"--tiny", "--dtype", "bf16"}, "qwen2_moe");
    }

    // (a) Packing, unpacking and dequantization equal the NumPy implementation of docs/export-gptq.md for
    // 2/3/4/8 bits, sym/asym, act-order g_idx, K and N that are not multiples of 32/b (or 32).
    void packingMatchesReference()
    {
        const QString golden = m_tmp.path() + "/gptq_pack.safetensors";
        runPython({sourcePath("tests/reference/reference_gptq_pack.py"), golden});
        const auto f = SafetensorsFile::open(golden.toStdString());
        int cases = 0;
        std::set<int64_t> bitsSeen;
        for (int i = 0;; ++i) {
            const std::string c = "c" + std::to_string(i);
            auto it = f->metadata().find(c);
            if (it == f->metadata().end())
                break;
            int b = 0, K = 0, N = 0, G = 0, sym = 0, act = 0;
            QCOMPARE(std::sscanf(it->second.c_str(), "bits=%d,K=%d,N=%d,G=%d,sym=%d,act=%d", &b, &K, &N, &G, &sym,
                                 &act),
                     6);
            const std::vector<int32_t> q = tensorData<int32_t>(*f, c + ".q"), gi = tensorData<int32_t>(*f, c + ".g_idx");
            const std::vector<float> z = tensorData<float>(*f, c + ".zeros"), s = tensorData<float>(*f, c + ".scales");
            const int64_t groups = gptq::groupCount(K, G);
            QCOMPARE(int64_t(s.size()), N * groups);
            for (gptq::ZeroFormat fmt : {gptq::ZeroFormat::V1, gptq::ZeroFormat::V2}) {
                const bool v1 = fmt == gptq::ZeroFormat::V1;
                const QByteArray what = QByteArray::fromStdString(it->second) + (v1 ? " v1" : " v2");
                const gptq::PackedLinear p = gptq::packLinear(q.data(), s.data(), z.data(), gi.data(), N, K, groups, b,
                                                              fmt, c);
                QVERIFY2(p.qweight == tensorData<int32_t>(*f, c + ".qweight"), what);
                QVERIFY2(p.qzeros == tensorData<int32_t>(*f, c + (v1 ? ".qzeros_v1" : ".qzeros_v2")), what);
                QVERIFY2(p.scales == tensorData<uint16_t>(*f, c + ".scales16"), what);
                QCOMPARE(int64_t(p.qweight.size()), gptq::packedWords(K, b) * N);
                QCOMPARE(int64_t(p.qzeros.size()), groups * gptq::packedWords(N, b));
                QVERIFY2(gptq::unpackQweight(p.qweight.data(), N, K, b) == q, what);
                const std::vector<int32_t> zr = gptq::unpackQzeros(p.qzeros.data(), N, groups, b, fmt);
                for (size_t j = 0; j < zr.size(); ++j)
                    QCOMPARE(float(zr[j]), z[j]);
                const gptq::PackedView v{p.qweight.data(), p.qzeros.data(), p.scales.data(), p.gIdx.data(),
                                         K, N, groups, b};
                std::vector<float> w(size_t(N * K));
                gptq::dequantize(v, fmt, w.data(), c);
                QVERIFY2(w == tensorData<float>(*f, c + ".deq"), what);
                QCOMPARE(gptq::bitsFromShapes(gptq::packedWords(K, b), gptq::packedWords(N, b), K, N).front() <= b,
                         true);
            }
            bitsSeen.insert(b);
            ++cases;
        }
        QVERIFY(cases >= 8);
        QCOMPARE(bitsSeen, (std::set<int64_t>{2, 3, 4, 8}));
    }

    // (b) Hand-computed words (docs/export-gptq.md, "Packing in detail") and fp16 conversions.
    void handComputedWords()
    {
        // 4-bit: values 0..7 down one column → 0x76543210.
        {
            std::vector<int32_t> q(8);
            for (int i = 0; i < 8; ++i)
                q[size_t(i)] = i;
            QCOMPARE(uint32_t(gptq::packQweight(q.data(), 1, 8, 4)[0]), 0x76543210u);
        }
        // 3-bit, 32 values in 3 words: value 10 straddles w0/w1, value 21 straddles w1/w2.
        auto pack3 = [](std::map<int, int32_t> set) {
            std::vector<int32_t> q(32, 0);
            for (auto [k, v] : set)
                q[size_t(k)] = v;
            const std::vector<int32_t> w = gptq::packQweight(q.data(), 1, 32, 3);
            return std::vector<uint32_t>{uint32_t(w[0]), uint32_t(w[1]), uint32_t(w[2])};
        };
        QCOMPARE(pack3({{10, 5}}), (std::vector<uint32_t>{0x40000000u, 0x1u, 0x0u}));   // 101: bit 0 → w0.30, bit 2 → w1.0
        QCOMPARE(pack3({{21, 3}}), (std::vector<uint32_t>{0x0u, 0x80000000u, 0x1u}));   // 011: bit 0 → w1.31, bit 1 → w2.0
        QCOMPARE(pack3({{0, 7}, {31, 4}}), (std::vector<uint32_t>{0x7u, 0x0u, 0x80000000u}));
        QCOMPARE(pack3({{9, 7}, {11, 7}, {22, 7}}), (std::vector<uint32_t>{0x38000000u, 0xEu, 0x1Cu}));
        {
            std::vector<int32_t> all7(32, 7);
            const std::vector<int32_t> w = gptq::packQweight(all7.data(), 1, 32, 3);
            QCOMPARE(w, (std::vector<int32_t>{-1, -1, -1}));
        }
        // Symmetric zero points in v1 (stored 2^(b-1) − 1): 0x77777777, 0x7F7F7F7F, 0x55555555, and
        // for 3 bits the 011 pattern over 96 bits.
        auto symZeros = [](int64_t bits, int64_t n) {
            std::vector<float> z(size_t(n), float(int64_t(1) << (bits - 1)));
            std::vector<uint32_t> out;
            for (int32_t w : gptq::packQzeros(z.data(), n, 1, bits, gptq::ZeroFormat::V1))
                out.push_back(uint32_t(w));
            return out;
        };
        QCOMPARE(symZeros(4, 8), std::vector<uint32_t>{0x77777777u});
        QCOMPARE(symZeros(8, 4), std::vector<uint32_t>{0x7F7F7F7Fu});
        QCOMPARE(symZeros(2, 16), std::vector<uint32_t>{0x55555555u});
        QCOMPARE(symZeros(3, 32), (std::vector<uint32_t>{0xDB6DB6DBu, 0xB6DB6DB6u, 0x6DB6DB6Du}));
        // v1 asym zero 0 wraps to 2^b − 1 (and reads back as 0); v2 stores it as is.
        {
            const std::vector<float> z = {0.f, 3.f};
            int64_t wrapped = 0;
            const std::vector<int32_t> v1 = gptq::packQzeros(z.data(), 2, 1, 4, gptq::ZeroFormat::V1, &wrapped);
            QCOMPARE(uint32_t(v1[0]), 0x2Fu);
            QCOMPARE(wrapped, int64_t(1));
            QCOMPARE(uint32_t(gptq::packQzeros(z.data(), 2, 1, 4, gptq::ZeroFormat::V2)[0]), 0x30u);
            QCOMPARE(gptq::unpackQzeros(v1.data(), 2, 1, 4, gptq::ZeroFormat::V1), (std::vector<int32_t>{0, 3}));
        }
        // fp16
        QCOMPARE(gptq::floatToHalf(0.1f), uint16_t(0x2E66));
        QCOMPARE(gptq::floatToHalf(1.0f), uint16_t(0x3C00));
        QCOMPARE(gptq::floatToHalf(-2.0f), uint16_t(0xC000));
        QCOMPARE(gptq::floatToHalf(65504.0f), uint16_t(0x7BFF));
        QCOMPARE(gptq::floatToHalf(65520.0f), uint16_t(0x7C00));
        QCOMPARE(gptq::floatToHalf(5.9604644775390625e-08f), uint16_t(0x0001));
        QCOMPARE(gptq::halfToFloat(0x2E66), 1638.0f / 16384.0f);
        QCOMPARE(gptq::halfToFloat(0x0001), 5.9604644775390625e-08f);
        QCOMPARE(gptq::halfToFloat(0x8000), -0.0f);
        for (uint32_t h = 0; h < 0x7C00; ++h) // every finite positive half survives the round trip
            QCOMPARE(gptq::floatToHalf(gptq::halfToFloat(uint16_t(h))), uint16_t(h));
        // Dequantization by hand: 4 bits, one group, scale fp16(0.1), zero 8, codes 0, 8, 15.
        {
            const std::vector<int32_t> q = {0, 8, 15};
            const std::vector<float> s = {gptq::halfToFloat(0x2E66)}, z = {8.f};
            const std::vector<int32_t> gi = {0, 0, 0};
            const gptq::PackedLinear p = gptq::packLinear(q.data(), s.data(), z.data(), gi.data(), 1, 3, 1, 4,
                                                          gptq::ZeroFormat::V1, "t");
            QCOMPARE(uint32_t(p.qweight[0]), 0xF80u);
            QCOMPARE(uint32_t(p.qzeros[0]), 0x7u);
            std::vector<float> w(3);
            gptq::dequantize({p.qweight.data(), p.qzeros.data(), p.scales.data(), p.gIdx.data(), 3, 1, 1, 4},
                             gptq::ZeroFormat::V1, w.data(), "t");
            const float s0 = 1638.0f / 16384.0f;
            QCOMPARE(w, (std::vector<float>{-8 * s0, 0.f, 7 * s0}));
        }
    }

    // (c) A mixed plan exported as GPTQ and as fake: the reader's weights equal the fake export's
    // bit for bit, everything else is copied, `dynamic` gives every linear its planned settings,
    // and `moewb eval --ppl` prints the same perplexity.
    void roundTripEqualsFake_data()
    {
        QTest::addColumn<QString>("model");
        QTest::newRow("mixtral-bf16") << m_mixtral;
        QTest::newRow("qwen2_moe-bf16") << m_qwen; // q/k/v biases, shared expert, shared_expert_gate
    }
    void roundTripEqualsFake()
    {
        QFETCH(QString, model);
        const std::string src = model.toStdString();
        const Plan plan = parsePlanJson(kMixedPlan, "plan.json");
        const auto seqs = randomSeqs(3, 16, 290, 4);
        const QString fake = freshOut(), gq = freshOut();
        quantizeToFakeDir(src, plan, seqs, {}, fake.toStdString(), false);
        const GptqExportResult r = quantizeToGptqDir(src, plan, seqs, {}, gq.toStdString(), false);
        QCOMPARE(r.checkpointFormat, std::string("gptq"));
        QCOMPARE(r.shards, int64_t(1));
        QVERIFY(QFileInfo::exists(gq + "/model.safetensors"));
        QVERIFY(!QFileInfo::exists(gq + "/model.safetensors.index.json"));

        const ModelConfig cfg = loadConfig(src);
        const std::vector<PlanEntry> entries = expandPlan(plan, cfg);
        std::map<std::string, const PlanEntry*> byName;
        for (const PlanEntry& e : entries)
            byName[e.name] = &e;
        const Checkpoint in = Checkpoint::open(src), f = Checkpoint::open(fake.toStdString()),
                         g = Checkpoint::open(gq.toStdString());
        int64_t quantized = 0, copied = 0;
        std::set<std::string> expectNames;
        for (const std::string& n : f.names()) {
            const std::string base = n.size() > 7 ? n.substr(0, n.size() - 7) : n;
            auto it = byName.find(base);
            if (it != byName.end() && it->second->bits < 16 && n == base + ".weight") {
                const PlanEntry& e = *it->second;
                QVERIFY2(!g.has(n), n.c_str());
                for (const char* s : {".qweight", ".qzeros", ".scales", ".g_idx"})
                    expectNames.insert(base + s);
                const int64_t groups = gptq::groupCount(e.inFeatures, e.groupSize);
                QCOMPARE(g.info(base + ".qweight").shape, gptq::qweightShape(e.inFeatures, e.outFeatures, e.bits));
                QCOMPARE(g.info(base + ".qzeros").shape, gptq::qzerosShape(e.outFeatures, groups, e.bits));
                QCOMPARE(g.info(base + ".scales").shape, (std::vector<int64_t>{groups, e.outFeatures}));
                QCOMPARE(g.info(base + ".scales").dtype, DType::F16);
                QCOMPARE(g.info(base + ".g_idx").shape, (std::vector<int64_t>{e.inFeatures}));
                const at::Tensor a = loadTensor(f, n), b = loadTensor(g, n);
                QVERIFY2(sameTensor(a, b), n.c_str());
                const at::Tensor b32 = loadTensorShaped(g, n, {e.outFeatures, e.inFeatures}, at::kFloat);
                QVERIFY2(sameTensor(a.to(at::kFloat), b32), n.c_str());
                if (e.actOrder) { // act order without static groups: a permuted g_idx
                    const at::Tensor gi = loadTensor(g, base + ".g_idx");
                    QVERIFY(!sameTensor(gi, at::arange(e.inFeatures, at::kInt).div(e.groupSize, "floor").to(at::kInt)));
                }
                ++quantized;
            } else {
                expectNames.insert(n);
                QVERIFY2(sameBytes(in, g, n), n.c_str());
                ++copied;
            }
        }
        QCOMPARE(r.quantizedLinears, quantized);
        const std::vector<std::string> gNames = g.names();
        QCOMPARE(std::set<std::string>(gNames.begin(), gNames.end()), expectNames);
        QVERIFY(quantized > 20 && copied > 10);

        // config.json = the model's + quantization_config (also quantize_config.json); dynamic matches the plan.
        QJsonObject c0 = QJsonDocument::fromJson(readAll(model + "/config.json")).object();
        QJsonObject c1 = QJsonDocument::fromJson(readAll(gq + "/config.json")).object();
        const QJsonObject qc = c1.take("quantization_config").toObject();
        QCOMPARE(c1, c0);
        QCOMPARE(QJsonDocument::fromJson(readAll(gq + "/quantize_config.json")).object(), qc);
        QCOMPARE(qc["quant_method"].toString(), QStringLiteral("gptq"));
        QCOMPARE(qc["checkpoint_format"].toString(), QStringLiteral("gptq"));
        QCOMPARE(qc["pack_dtype"].toString(), QStringLiteral("int32"));
        QCOMPARE(qc["lm_head"].toBool(), false);
        QVERIFY(qc["meta"].toObject()["quantizer"].toArray()[0].toString().startsWith("moewb:"));
        const std::optional<GptqCheckpointConfig> rc = readGptqConfig(gq.toStdString());
        QVERIFY(rc);
        int64_t checked = 0;
        for (const LinearInfo& li : listLinears(cfg)) {
            const std::optional<PlanEntry> d = dynamicLookup(rc->settings, li.name);
            auto it = byName.find(li.name);
            const bool quant = it != byName.end() && it->second->bits < 16;
            QVERIFY2(d.has_value() == quant, li.name.c_str());
            if (quant) {
                const PlanEntry& e = *it->second;
                QVERIFY2(d->bits == e.bits && d->groupSize == e.groupSize && d->sym == e.sym
                             && d->actOrder == e.actOrder,
                         li.name.c_str());
            }
            ++checked;
        }
        QCOMPARE(checked, int64_t(listLinears(cfg).size()));
        QVERIFY(loadPlan((gq + "/moewb_plan.json").toStdString()) == plan);
        QVERIFY(QFileInfo::exists(gq + "/moewb_quant_report.json"));
        QCOMPARE(readAll(gq + "/tokenizer.json"), readAll(model + "/tokenizer.json"));

        // Same perplexity from `moewb eval` on both directories.
        const QString text = m_tmp.path() + "/ppl.txt";
        QByteArray body;
        for (int i = 0; i < 12; ++i)
            body += "the cat sat on the mat and then it went to the store to buy some bread. ";
        writeAll(text, body);
        const CliRun ef = runCli(moewbCli(), {"eval", fake, "--ppl", text, "--ctx", "32"});
        const CliRun eg = runCli(moewbCli(), {"eval", gq, "--ppl", text, "--ctx", "32"});
        QVERIFY2(ef.exitCode == 0, ef.err.constData());
        QVERIFY2(eg.exitCode == 0, eg.err.constData());
        QVERIFY(!pplLine(ef.out).isEmpty());
        QCOMPARE(pplLine(eg.out), pplLine(ef.out));
    }

    // Sharding (tiny --max-shard-size, via the CLI), and v2 zeros: same weights as one v1 file.
    void shardsAndV2()
    {
        const Plan plan = parsePlanJson(kMixedPlan, "plan.json");
        const auto seqs = randomSeqs(3, 16, 290, 4);
        const QString one = freshOut(), v2 = freshOut(), sharded = freshOut();
        quantizeToGptqDir(m_mixtral.toStdString(), plan, seqs, {}, one.toStdString(), false);
        GptqExportOptions o2;
        o2.checkpointFormat = "gptq_v2";
        const GptqExportResult r2 = quantizeToGptqDir(m_mixtral.toStdString(), plan, seqs, {}, v2.toStdString(), false,
                                                      {}, {}, o2);
        QCOMPARE(r2.checkpointFormat, std::string("gptq_v2"));
        QCOMPARE(readGptqConfig(v2.toStdString())->checkpointFormat, std::string("gptq_v2"));

        // CLI: RTN-only plan needs no calibration data.
        const QString planFile = m_tmp.path() + "/plan-rtn.json";
        writeAll(planFile, R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 16, "method": "rtn"},
            "rules": [{"match": ".*experts\\.1\\..*", "bits": 3, "sym": false}]})");
        const CliRun q = runCli(moewbCli(), {"quantize", m_mixtral, "--plan", planFile, "--out", sharded, "--format",
                                             "gptq", "--max-shard-size", "20KB"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        QVERIFY2(q.out.contains("shards"), q.out.constData());
        const QJsonObject index = QJsonDocument::fromJson(readAll(sharded + "/model.safetensors.index.json")).object();
        const QJsonObject wm = index["weight_map"].toObject();
        std::set<QString> files;
        for (const QString& k : wm.keys())
            files.insert(wm[k].toString());
        QVERIFY(files.size() > 2);
        for (const QString& fn : files) {
            QVERIFY(fn.startsWith("model-0000") && fn.endsWith(QString("-of-%1.safetensors").arg(files.size(), 5, 10, QChar('0'))));
            uint64_t bytes = 0;
            for (const TensorInfo& t : SafetensorsFile::open((sharded + "/" + fn).toStdString())->tensors())
                bytes += t.nbytes();
            QVERIFY(bytes <= 20000); // --max-shard-size counts tensor bytes (20KB = 20000)
        }
        QVERIFY(!QFileInfo::exists(sharded + "/model.safetensors"));
        const QString rtnOne = freshOut();
        const Plan rtnPlan = loadPlan(planFile.toStdString());
        const GptqExportResult r1 = quantizeToGptqDir(m_mixtral.toStdString(), rtnPlan, {}, {}, rtnOne.toStdString(), false);
        const Checkpoint a = Checkpoint::open(rtnOne.toStdString()), b = Checkpoint::open(sharded.toStdString());
        QCOMPARE(a.names(), b.names());
        QCOMPARE(int64_t(wm.size()), int64_t(b.names().size()));
        uint64_t total = 0;
        for (const std::string& n : a.names()) {
            QVERIFY2(sameBytes(a, b, n), n.c_str());
            total += a.info(n).nbytes();
        }
        QCOMPARE(uint64_t(index["metadata"].toObject()["total_size"].toDouble()), total);
        QCOMPARE(r1.tensorBytes, total);
        QVERIFY(r1.bytesOnDisk > total);

        // v1 and v2 checkpoints dequantize to the same weights; their qzeros differ by exactly 1 per field.
        const Checkpoint c1 = Checkpoint::open(one.toStdString()), c2 = Checkpoint::open(v2.toStdString());
        const ModelConfig cfg = loadConfig(m_mixtral.toStdString());
        int64_t n = 0;
        for (const PlanEntry& e : expandPlan(plan, cfg)) {
            if (e.bits >= 16)
                continue;
            const std::string w = e.name + ".weight";
            QVERIFY2(sameTensor(loadTensor(c1, w), loadTensor(c2, w)), w.c_str());
            const int64_t groups = gptq::groupCount(e.inFeatures, e.groupSize);
            const at::Tensor z1 = loadTensor(c1, e.name + ".qzeros"), z2 = loadTensor(c2, e.name + ".qzeros");
            const std::vector<int32_t> u1 = gptq::unpackQzeros(z1.data_ptr<int32_t>(), e.outFeatures, groups, e.bits,
                                                               gptq::ZeroFormat::V1);
            const std::vector<int32_t> u2 = gptq::unpackQzeros(z2.data_ptr<int32_t>(), e.outFeatures, groups, e.bits,
                                                               gptq::ZeroFormat::V2);
            QVERIFY2(u1 == u2, w.c_str());
            ++n;
        }
        QVERIFY(n > 20);
    }

    // (d) Errors: one line naming the file and the tensor; no partial output.
    void errors()
    {
        const Plan plan = parsePlanJson(kMixedPlan, "plan.json");
        const Plan rtn = parsePlanJson(R"({"format": "moewb-plan", "version": 1,
            "defaults": {"bits": 4, "group_size": 16, "method": "rtn"}, "rules": []})", "plan.json");
        const auto seqs = randomSeqs(2, 16, 290, 6);
        const std::string src = m_mixtral.toStdString();
        auto expectError = [&](const std::function<void()>& fn, const QString& needle) {
            try {
                fn();
                QFAIL(qPrintable("no error, expected " + needle));
            } catch (const Error& e) {
                QVERIFY2(QString(e.what()).contains(needle), e.what());
                QVERIFY2(!QString(e.what()).contains('\n'), e.what());
            }
        };
        // Existing output: refused and untouched.
        const QString out = freshOut();
        QDir().mkpath(out);
        writeAll(out + "/keep.txt", "x");
        expectError([&] { quantizeToGptqDir(src, rtn, {}, {}, out.toStdString(), false); }, "already exists");
        QVERIFY(QFileInfo::exists(out + "/keep.txt"));
        quantizeToGptqDir(src, rtn, {}, {}, out.toStdString(), true);
        QVERIFY(!QFileInfo::exists(out + "/keep.txt"));
        QVERIFY(QFileInfo::exists(out + "/quantize_config.json"));
        // Nothing to quantize; GPTQ input; GPTQ without calibration data; bad format name.
        const QString none = freshOut();
        expectError([&] {
            quantizeToGptqDir(src, parsePlanJson(R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 16}, "rules": []})",
                                                 "plan.json"), {}, {}, none.toStdString(), false);
        }, "nothing to store as GPTQ");
        expectError([&] { quantizeToGptqDir(out.toStdString(), rtn, {}, {}, none.toStdString(), false); },
                    "holds GPTQ tensors");
        expectError([&] { quantizeToGptqDir(src, plan, {}, {}, none.toStdString(), false); }, "calibration data");
        GptqExportOptions bad;
        bad.checkpointFormat = "marlin";
        expectError([&] { quantizeToGptqDir(src, rtn, {}, {}, none.toStdString(), false, {}, {}, bad); }, "marlin");
        QVERIFY(!QFileInfo::exists(none));
        // Cancel during the write: nothing left.
        int calls = 0;
        try {
            quantizeToGptqDir(src, rtn, {}, {}, none.toStdString(), false, {},
                              [&](const Progress& p) { return !(p.stage == "write" && ++calls > 5); });
            QFAIL("not cancelled");
        } catch (const Cancelled&) {
        }
        QVERIFY(!QFileInfo::exists(none));
        QCOMPARE(QDir(m_tmp.path()).entryList({"*.tmp.*", "*.old.*"}), QStringList());

        // Corrupted qweight shape (one row short): a one-line error naming the file and the tensor,
        // from the engine's loader and from `moewb eval`.
        const QString broken = freshOut();
        QVERIFY(QDir().mkpath(broken));
        for (const QString& fn : QDir(out).entryList(QDir::Files))
            if (fn != "model.safetensors")
                QVERIFY(QFile::copy(out + "/" + fn, broken + "/" + fn));
        const std::string victim = "model.layers.0.block_sparse_moe.experts.1.w2.qweight";
        {
            const Checkpoint c = Checkpoint::open(out.toStdString());
            SafetensorsWriter w((broken + "/model.safetensors").toStdString());
            for (const std::string& n : c.names()) {
                std::vector<int64_t> shape = c.info(n).shape;
                if (n == victim)
                    shape[0] -= 1;
                w.declare(n, c.info(n).dtype, shape);
            }
            for (const std::string& n : c.names()) {
                uint64_t bytes = c.info(n).nbytes();
                if (n == victim)
                    bytes -= uint64_t(c.info(n).shape[1]) * 4;
                w.write(n, c.data(n), bytes);
            }
            w.commit();
        }
        const Checkpoint c = Checkpoint::open(broken.toStdString());
        const ModelConfig cfg = loadConfig(broken.toStdString());
        const QString file = broken + "/model.safetensors";
        expectError([&] { loadTensorShaped(c, "model.layers.0.block_sparse_moe.experts.1.w2.weight", {32, 48}, at::kFloat); },
                    file + ": tensor '" + QString::fromStdString(victim) + "' has shape");
        expectError([&] { loadLayerWeights(cfg, c, 0, at::kFloat); }, QString::fromStdString(victim));
        // A weight of the wrong size for config.json; g_idx out of range.
        expectError([&] { loadTensorShaped(c, "model.layers.0.block_sparse_moe.experts.0.w2.weight", {32, 40}, at::kFloat); },
                    "expected [32, 40] from config.json");
        const QString text = m_tmp.path() + "/err.txt";
        writeAll(text, "the cat sat on the mat and then it went to the store. the cat sat on the mat again.");
        const CliRun ev = runCli(moewbCli(), {"eval", broken, "--ppl", text, "--ctx", "16"});
        QCOMPARE(ev.exitCode, 1);
        bool named = false;
        for (const QByteArray& line : ev.err.split('\n'))
            named = named || (line.contains(victim.c_str()) && line.contains("/model.safetensors"));
        QVERIFY2(named, ev.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestExportGptq)
#include "tst_export_gptq.moc"
