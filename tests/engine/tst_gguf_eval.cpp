// SPDX-License-Identifier: MIT
// Evaluating GGUF files (#26): a tiny random model of each MoE architecture written as F32 GGUF by
// an independent writer in llama.cpp's naming (tests/reference/gguf_reference.py from-hf: q/k rows
// permuted for llama and deepseek, experts stacked) gives the Hugging Face model's logits; moewb's
// own F32 export does too, and its Q8_0 export gives the fake-quant export's logits (the same
// dequantized weights); damaged files fail with one line naming the file.
#include "model/streamer.h" // torch before Qt (its keyword macros)
#include "testutil.h"

#include "gguf/gguf_file.h"
#include "moewb/core/error.h"
#include "moewb/eval/perplexity.h"
#include "moewb/export/gguf.h"
#include "moewb/export/llama_bridge.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/model/model_source.h"
#include "moewb/plan/plan.h"
#include "moewb/quant/quantize.h"

#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <functional>

using namespace moewb;
using namespace moewb::test;
using moewb::gguf::GgmlType;

namespace {

QString generate(const QString& root, const QString& arch, const QString& name)
{
    const QString out = root + "/" + name;
    if (!QFile::exists(out + "/config.json"))
        runPython({sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "7"});
    return out;
}

Plan planFrom(const std::string& defaults)
{
    return parsePlanJson(R"({"format": "moewb-plan", "version": 1, "defaults": )" + defaults + R"(, "rules": []})",
                         "test-plan");
}

/// 2 sequences of 24 tokens, fixed ids.
at::Tensor tokenIds(int64_t vocab)
{
    return at::arange(48, at::kLong).mul(37).remainder(vocab).view({2, 24});
}

at::Tensor logitsOf(const QString& model)
{
    const Model m(model.toStdString());
    StreamOptions so;
    so.dtype = at::kFloat;
    return m.logits(tokenIds(m.config().vocabSize), so);
}

/// max |a − b| / max |b|
double relDiff(const at::Tensor& a, const at::Tensor& b)
{
    return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

template <typename F>
std::string errorOf(F&& f)
{
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return {};
}

/// Copies a GGUF file through gguf::Writer, letting `editKv` drop (return false) or change metadata
/// and `editType` change a tensor's declared type (its bytes are then zeros of the new size).
void rewrite(const QString& from, const QString& to, const std::function<bool(std::string&, gguf::Value&)>& editKv,
             const std::function<GgmlType(const std::string&, GgmlType)>& editType = {})
{
    const gguf::File f = gguf::read(from.toStdString());
    gguf::Writer w(to.toStdString());
    for (auto [key, v] : f.kv)
        if (editKv(key, v))
            w.addKv(key, v);
    for (const auto& t : f.tensors)
        w.addTensor(t.name, t.ne, editType ? editType(t.name, t.type) : t.type);
    w.begin();
    for (const auto& t : f.tensors) {
        const gguf::TensorEntry& out = w.tensor(t.name);
        std::vector<uint8_t> bytes = out.type == t.type ? gguf::readTensorBytes(f, t) : std::vector<uint8_t>(out.nbytes);
        w.write(t.name, 0, bytes.data(), bytes.size());
    }
    w.commit();
}

} // namespace

class TestGgufEval : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;

    QString referenceGguf(const QString& arch)
    {
        const QString model = generate(m_tmp.path(), arch, arch);
        const QString file = m_tmp.path() + "/" + arch + "-ref.gguf";
        if (!QFile::exists(file))
            runPython({sourcePath("tests/reference/gguf_reference.py"), "from-hf", model, file});
        return file;
    }

private slots:
    void architectures_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("ggufArch");
        for (const char* a : {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek"})
            QTest::newRow(a) << a
                             << QString::fromLatin1(std::string(a) == "mixtral" ? "llama"
                                                        : std::string(a) == "qwen2_moe" ? "qwen2moe"
                                                        : std::string(a) == "qwen3_moe" ? "qwen3moe"
                                                                                        : a);
    }
    void architectures()
    {
        QFETCH(QString, arch);
        QFETCH(QString, ggufArch);
        const QString model = generate(m_tmp.path(), arch, arch);
        const QString file = referenceGguf(arch);
        QVERIFY(isGgufFile(file.toStdString()));
        QVERIFY(!isGgufFile(model.toStdString()));
        QCOMPARE(QString::fromStdString(gguf::read(file.toStdString()).find("general.architecture")->s), ggufArch);

        // The metadata maps back to the config.json the model was written from.
        const ModelConfig hf = loadConfig(model.toStdString());
        const ModelConfig g = loadModelConfig(file.toStdString());
        QCOMPARE(int(g.arch), int(hf.arch));
        QCOMPARE(g.hiddenSize, hf.hiddenSize);
        QCOMPARE(g.numLayers, hf.numLayers);
        QCOMPARE(g.numHeads, hf.numHeads);
        QCOMPARE(g.numKvHeads, hf.numKvHeads);
        QCOMPARE(g.headDim, hf.headDim);
        QCOMPARE(g.numExperts, hf.numExperts);
        QCOMPARE(g.topK, hf.topK);
        QCOMPARE(g.normTopkProb, hf.normTopkProb);
        QCOMPARE(g.moeIntermediateSize, hf.moeIntermediateSize);
        QCOMPARE(g.sharedIntermediateSize, hf.sharedIntermediateSize);
        QCOMPARE(g.sharedExpertGate, hf.sharedExpertGate);
        QCOMPARE(int(g.qkNorm), int(hf.qkNorm));
        QCOMPARE(g.attentionBias, hf.attentionBias);
        QCOMPARE(g.rmsNormEps, hf.rmsNormEps); // stored as float32, read back as the shortest decimal
        QCOMPARE(g.ropeTheta, hf.ropeTheta);
        QCOMPARE(g.clipQkv.has_value(), hf.clipQkv.has_value());
        QCOMPARE(g.vocabSize, hf.vocabSize);
        for (int64_t l = 0; l < hf.numLayers; ++l)
            QCOMPARE(g.isMoeLayer(l), hf.isMoeLayer(l));

        // F32: the same weights, the same forward: the logits agree to float32 rounding.
        const double d = relDiff(logitsOf(file), logitsOf(model));
        qInfo("%s: GGUF vs HF max relative logit difference %.3g", qPrintable(arch), d);
        QVERIFY2(d <= 1e-5, qPrintable(QString::number(d)));
    }

    /// moewb's own writer: F32 equals the HF model, Q8_0 equals the fake-quant export (the grid maps
    /// exactly onto Q8_0 blocks, tests/engine/tst_export_gguf.cpp), perplexity included.
    void moewbExports_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::newRow("mixtral") << "mixtral";
        QTest::newRow("qwen2_moe") << "qwen2_moe";
    }
    void moewbExports()
    {
        QFETCH(QString, arch);
        const QString model = generate(m_tmp.path(), arch, arch);
        GgufExportOptions go;
        go.unquantizedType = "f32";
        const QString f32 = m_tmp.path() + "/" + arch + "-f32.gguf";
        quantizeToGguf(model.toStdString(), planFrom(R"({"bits": 16})"), {}, {}, f32.toStdString(), true, {}, {}, go);
        QVERIFY(relDiff(logitsOf(f32), logitsOf(model)) <= 1e-5);

        const Plan q8 = planFrom(R"({"bits": 8, "group_size": 32, "method": "rtn"})");
        const QString file = m_tmp.path() + "/" + arch + "-q8.gguf", fake = m_tmp.path() + "/" + arch + "-q8-fake";
        quantizeToGguf(model.toStdString(), q8, {}, {}, file.toStdString(), true, {}, {}, go);
        quantizeToFakeDir(model.toStdString(), q8, {}, {}, fake.toStdString(), true);
        QCOMPARE(gguf::read(file.toStdString()).findTensor("blk.0.ffn_up_exps.weight")->type, GgmlType::Q8_0);
        QCOMPARE(relDiff(logitsOf(file), logitsOf(fake)), 0.0);

        std::vector<int32_t> ids;
        for (int i = 0; i < 80; ++i)
            ids.push_back(int32_t((i * 53 + 11) % 300));
        PerplexityOptions po;
        po.ctx = 32;
        po.dtype = "f32";
        const PerplexityResult a = evaluatePerplexity(file.toStdString(), ids, po);
        const PerplexityResult b = evaluatePerplexity(fake.toStdString(), ids, po);
        QCOMPARE(a.nllSum, b.nllSum);
        QCOMPARE(a.scoredTokens, int64_t(79));
    }

    void malformed()
    {
        const QString good = referenceGguf("mixtral");
        const std::string dir = m_tmp.path().toStdString();
        // Truncated tensor data.
        const QString cut = m_tmp.path() + "/cut.gguf";
        QByteArray bytes = readAll(good);
        writeAll(cut, bytes.left(bytes.size() - 100));
        std::string err = errorOf([&] { Model m(cut.toStdString()); });
        QVERIFY2(err.rfind(cut.toStdString() + ": ", 0) == 0 && err.find('\n') == std::string::npos, err.c_str());
        // Unknown architecture.
        const QString unknown = m_tmp.path() + "/unknown.gguf";
        rewrite(good, unknown, [](std::string& k, gguf::Value& v) {
            if (k == "general.architecture")
                v.s = "gpt9";
            return true;
        });
        err = errorOf([&] { loadModelConfig(unknown.toStdString()); });
        QCOMPARE(err, unknown.toStdString() + ": architecture 'gpt9' is not supported for evaluation (supported: "
                                              "llama, qwen2moe, qwen3moe, olmoe, deepseek, qwen2)");
        // A missing key.
        const QString missing = m_tmp.path() + "/missing.gguf";
        rewrite(good, missing, [](std::string& k, gguf::Value&) { return k != "llama.block_count"; });
        err = errorOf([&] { Model m(missing.toStdString()); });
        QCOMPARE(err, missing.toStdString() + ": missing key 'llama.block_count'");
        // A missing tensor.
        const QString noTensor = m_tmp.path() + "/no-tensor.gguf";
        {
            const gguf::File f = gguf::read(good.toStdString());
            gguf::Writer w(noTensor.toStdString());
            for (const auto& [k, v] : f.kv)
                w.addKv(k, v);
            for (const auto& t : f.tensors)
                if (t.name != "blk.1.ffn_down_exps.weight")
                    w.addTensor(t.name, t.ne, t.type);
            w.begin();
            for (const auto& t : f.tensors)
                if (t.name != "blk.1.ffn_down_exps.weight") {
                    const std::vector<uint8_t> b = gguf::readTensorBytes(f, t);
                    w.write(t.name, 0, b.data(), b.size());
                }
            w.commit();
        }
        err = errorOf([&] { loadModelConfig(noTensor.toStdString()); });
        QVERIFY2(err.rfind(noTensor.toStdString() + ": missing tensor 'blk.1.ffn_down_exps.weight'", 0) == 0, err.c_str());
        // A type moewb does not decode (Q8_1: a known size, no decoder).
        const QString q81 = m_tmp.path() + "/q8_1.gguf";
        rewrite(
            good, q81, [](std::string&, gguf::Value&) { return true; },
            [](const std::string& n, GgmlType t) { return n == "blk.0.attn_v.weight" ? GgmlType::Q8_1 : t; });
        err = errorOf([&] { loadModelConfig(q81.toStdString()); });
        QVERIFY2(err.rfind(q81.toStdString() + ": tensor 'blk.0.attn_v.weight' has type Q8_1, which moewb cannot decode", 0)
                     == 0,
                 err.c_str());
        // Calibration needs the safetensors checkpoint.
        err = errorOf([&] { Model(good.toStdString()).checkpoint(); });
        QVERIFY2(err.find("a GGUF file can be evaluated, not calibrated or quantized") != std::string::npos, err.c_str());
        QVERIFY(std::filesystem::exists(dir));
    }

    /// The CLI: a GGUF on either side of --kld-ref; the tokenizer comes from the HF side or
    /// --tokenizer, and without one the refusal is one line.
    void cli()
    {
        const QString model = generate(m_tmp.path(), "mixtral", "mixtral");
        const QString file = referenceGguf("mixtral");
        const QString text = m_tmp.path() + "/text.txt";
        writeAll(text, QByteArray("the cat sat on the mat and the dog ran after the quick brown fox ").repeated(12));
        CliRun r = runCli(moewbCli(), {"eval", file, "--ppl", text, "--ctx", "64"});
        QCOMPARE(r.exitCode, 1);
        QCOMPARE(r.err.count("error:"), qsizetype(1));
        QVERIFY2(r.err.contains("GGUF file's own vocabulary is not used"), r.err.constData());
        r = runCli(moewbCli(), {"eval", model, "--ppl", text, "--ctx", "64", "--json"});
        QCOMPARE(r.exitCode, 0);
        const double ppl = QJsonDocument::fromJson(r.out).object()["perplexity"].toDouble();
        for (const QStringList& args : {QStringList{"eval", file, "--ppl", text, "--ctx", "64", "--json", "--tokenizer", model},
                                        QStringList{"eval", file, "--ppl", text, "--ctx", "64", "--json", "--kld-ref", model},
                                        QStringList{"eval", model, "--ppl", text, "--ctx", "64", "--json", "--kld-ref", file}}) {
            r = runCli(moewbCli(), args);
            QVERIFY2(r.exitCode == 0, r.err.constData());
            const QJsonObject o = QJsonDocument::fromJson(r.out).object();
            QVERIFY2(std::abs(o["perplexity"].toDouble() / ppl - 1.0) < 1e-5, r.out.constData());
            if (o.contains("kld"))
                QVERIFY2(std::abs(o["kld"].toDouble()) < 1e-6, r.out.constData());
        }
        r = runCli(moewbCli(), {"eval", file, "--ppl", text, "--plan", text});
        QCOMPARE(r.exitCode, 2);
    }

    /// llama.cpp's imatrix.dat, byte by byte: per entry name, ncall, values (act_sq_mean · ncall,
    /// expert-major for stacked experts); then ncall and the dataset. A stacked tensor with an
    /// expert that saw no tokens is left out.
    void llamaImatrix()
    {
        CalibStats st;
        st.provenance.numSamples = 4;
        st.numLayers = 1;
        st.layers.resize(1);
        st.layers[0].isMoe = true;
        st.layers[0].router.numExperts = 2;
        auto lin = [](const char* name, const char* role, int64_t expert, std::vector<float> sq, int64_t tokens) {
            LinearStats l;
            l.name = name;
            l.layer = 0;
            l.expert = expert;
            l.role = role;
            l.inFeatures = 2;
            l.tokens = tokens;
            l.actSqMean = std::move(sq);
            return l;
        };
        st.linears = {lin("q", "q_proj", -1, {1.5f, 0.25f}, 10), lin("e0.up", "expert.up", 0, {1, 2}, 6),
                      lin("e1.up", "expert.up", 1, {3, 4}, 4), lin("e0.down", "expert.down", 0, {1, 1}, 6),
                      lin("e1.down", "expert.down", 1, {}, 0)};
        LlamaImatrixResult r;
        const std::string bytes = llamaImatrixBytes(st, "wiki", r, "test");
        auto i32 = [](int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
        auto f32s = [](std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); };
        const std::string expect = i32(2) + i32(19) + "blk.0.attn_q.weight" + i32(4) + i32(2) + f32s({6, 1}) + i32(24)
            + "blk.0.ffn_up_exps.weight" + i32(4) + i32(4) + f32s({4, 8, 12, 16}) + i32(4) + i32(4) + "wiki";
        QCOMPARE(QByteArray::fromStdString(bytes).toHex(), QByteArray::fromStdString(expect).toHex());
        QCOMPARE(r.entries, int64_t(2));
        QCOMPARE(r.skipped, std::vector<std::string>{"blk.0.ffn_down_exps.weight: e1.down saw no tokens"});

        // llama-imatrix's GGUF format: Σx² = act_sq_mean · tokens and the token count per expert,
        // tensors sorted by weight name; the partial down_exps entry is kept with count 0.
        st.provenance.seqLen = 256;
        st.provenance.dataDescription = "wiki";
        const std::string file = (m_tmp.path() + "/imatrix.gguf").toStdString();
        QVERIFY(imatrixFormatForPath(file) == ImatrixFormat::Gguf);
        QVERIFY(imatrixFormatForPath("imatrix.dat") == ImatrixFormat::Dat);
        const LlamaImatrixResult g = writeLlamaImatrix(st, file, false, "test", ImatrixFormat::Gguf);
        QCOMPARE(g.entries, int64_t(3));
        QVERIFY(g.skipped.empty());
        const gguf::File f = gguf::read(file);
        QCOMPARE(f.find("general.type")->s, std::string("imatrix"));
        QCOMPARE(f.find("imatrix.datasets")->items.size(), size_t(1));
        QCOMPARE(f.find("imatrix.datasets")->items[0].s, std::string("wiki"));
        QCOMPARE(f.find("imatrix.chunk_count")->u, uint64_t(4));
        QCOMPARE(f.find("imatrix.chunk_size")->u, uint64_t(256));
        const std::vector<std::pair<std::string, std::vector<float>>> expectTensors = {
            {"blk.0.attn_q.weight.in_sum2", {15, 2.5}}, {"blk.0.attn_q.weight.counts", {10}},
            {"blk.0.ffn_down_exps.weight.in_sum2", {6, 6, 0, 0}}, {"blk.0.ffn_down_exps.weight.counts", {6, 0}},
            {"blk.0.ffn_up_exps.weight.in_sum2", {6, 12, 12, 16}}, {"blk.0.ffn_up_exps.weight.counts", {6, 4}}};
        QCOMPARE(f.tensors.size(), expectTensors.size());
        for (size_t i = 0; i < expectTensors.size(); ++i) {
            QCOMPARE(f.tensors[i].name, expectTensors[i].first);
            QCOMPARE(gguf::readTensorF32(f, f.tensors[i]), expectTensors[i].second);
        }
        QCOMPARE(f.tensors[4].ne, (std::vector<int64_t>{2, 2})); // [in, experts]
        QCOMPARE(f.tensors[5].ne, (std::vector<int64_t>{1, 2}));
        QCOMPARE(errorOf([&] { writeLlamaImatrix(st, file, false, "test", ImatrixFormat::Gguf); }),
                 file + ": already exists");

        st.linears.resize(0);
        QCOMPARE(errorOf([&] { llamaImatrixBytes(st, "", r, "s.h5"); }),
                 std::string("s.h5: no linear has activation statistics (act_sq_mean) to write"));
    }

    /// The plan's types as llama-quantize patterns, grouped by role and type over layers.
    void llamaTensorTypeFile()
    {
        const ModelConfig cfg = loadConfig(generate(m_tmp.path(), "mixtral", "mixtral").toStdString());
        const Plan plan = parsePlanJson(
            R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 32, "method": "rtn"},)"
            R"( "rules": [{"match": ".*self_attn.*", "bits": 8}, {"match": "model.layers.2.*", "bits": 16}]})",
            "plan");
        QCOMPARE(QString::fromStdString(llamaTensorTypes(plan, cfg)),
                 QString("^blk\\.(0|1)\\.attn_k\\.weight$=q8_0\n"
                         "^blk\\.(2)\\.attn_k\\.weight$=f16\n"
                         "^blk\\.(0|1)\\.attn_output\\.weight$=q8_0\n"
                         "^blk\\.(2)\\.attn_output\\.weight$=f16\n"
                         "^blk\\.(0|1)\\.attn_q\\.weight$=q8_0\n"
                         "^blk\\.(2)\\.attn_q\\.weight$=f16\n"
                         "^blk\\.(0|1)\\.attn_v\\.weight$=q8_0\n"
                         "^blk\\.(2)\\.attn_v\\.weight$=f16\n"
                         "^blk\\.(0|1)\\.ffn_down_exps\\.weight$=q4_0\n"
                         "^blk\\.(2)\\.ffn_down_exps\\.weight$=f16\n"
                         "^blk\\.(0|1)\\.ffn_gate_exps\\.weight$=q4_0\n"
                         "^blk\\.(2)\\.ffn_gate_exps\\.weight$=f16\n"
                         "^blk\\.(0|1)\\.ffn_up_exps\\.weight$=q4_0\n"
                         "^blk\\.(2)\\.ffn_up_exps\\.weight$=f16\n"));
    }
};

QTEST_GUILESS_MAIN(TestGgufEval)
#include "tst_gguf_eval.moc"
