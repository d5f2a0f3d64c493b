// SPDX-License-Identifier: MIT
// GGUF export with ggml types (#26): the five architectures' tensor names and metadata keys against
// hand-written lists of what llama.cpp's converter writes (convert_hf_to_gguf.py, llama-arch.cpp at
// the commit docs/export-gguf.md names), every encodable type round-tripped (the file read back and
// dequantized by our reader = the fake export of the same plan = our encoder's own decode of the
// checkpoint row), importance changing the bytes, width fallbacks, one type per stacked tensor with
// its byte cost, and the llama.cpp presets assigned tensor by tensor.
#include "testutil.h"

#include "gguf/gguf_file.h"
#include "gguf/gguf_quants.h"
#include "moewb/alloc/allocate.h"
#include "moewb/core/error.h"
#include "moewb/export/gguf.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan.h"
#include "moewb/quant/quantize.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/workflow/gguf_budget.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cstring>
#include <regex>
#include <stdexcept>

using namespace moewb;
using namespace moewb::test;
using moewb::gguf::GgmlType;

namespace {

QString generate(const QString& root, const QString& arch, const QString& name, const QStringList& extra = {})
{
    const QString out = root + "/" + name;
    if (!QFile::exists(out + "/config.json"))
        runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "5"} + extra);
    return out;
}

Plan planFrom(const std::string& defaults, const std::string& rules = "[]")
{
    return parsePlanJson(R"({"format": "moewb-plan", "version": 1, "defaults": )" + defaults + R"(, "rules": )" + rules
                             + "}",
                         "test-plan");
}

/// Where an HF linear lies in the GGUF file: tensor name, slice (expert) and RoPE heads to undo.
struct Place {
    std::string tensor;
    int64_t part = 0;
    int64_t heads = 0;
};

Place placeOf(const std::string& hf, const ModelConfig& cfg, bool permuted)
{
    static const std::regex attn(R"(model\.layers\.(\d+)\.self_attn\.(q|k|v|o)_proj)");
    static const std::regex expert(R"(model\.layers\.(\d+)\.(?:block_sparse_moe|mlp)\.experts\.(\d+)\.(\w+))");
    static const std::regex shared(R"(model\.layers\.(\d+)\.mlp\.shared_experts?\.(gate|up|down)_proj)");
    static const std::regex dense(R"(model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj)");
    const std::map<std::string, std::string> proj = {{"q", "attn_q"}, {"k", "attn_k"}, {"v", "attn_v"},
                                                     {"o", "attn_output"}, {"w1", "gate"}, {"w3", "up"},
                                                     {"w2", "down"}, {"gate_proj", "gate"}, {"up_proj", "up"},
                                                     {"down_proj", "down"}, {"gate", "gate"}, {"up", "up"},
                                                     {"down", "down"}};
    std::smatch m;
    if (std::regex_match(hf, m, attn)) {
        const int64_t heads = !permuted ? 0 : m[2] == "q" ? cfg.numHeads : m[2] == "k" ? cfg.numKvHeads : 0;
        return {"blk." + m[1].str() + "." + proj.at(m[2]) + ".weight", 0, heads};
    }
    if (std::regex_match(hf, m, expert))
        return {"blk." + m[1].str() + ".ffn_" + proj.at(m[3]) + "_exps.weight", std::stoll(m[2]), 0};
    if (std::regex_match(hf, m, shared))
        return {"blk." + m[1].str() + ".ffn_" + proj.at(m[2]) + "_shexp.weight", 0, 0};
    if (std::regex_match(hf, m, dense))
        return {"blk." + m[1].str() + ".ffn_" + proj.at(m[2]) + ".weight", 0, 0};
    return {};
}

/// The [out, in] HF weight of `li` as the GGUF file holds it: decoded, unstacked, rows unpermuted.
std::vector<float> weightFromGguf(const gguf::File& f, const LinearInfo& li, const ModelConfig& cfg, bool permuted)
{
    const Place p = placeOf(li.name, cfg, permuted);
    const gguf::TensorEntry* t = f.findTensor(p.tensor);
    if (!t)
        return {};
    const std::vector<float> all = gguf::readTensorF32(f, *t);
    const int64_t n = li.outFeatures * li.inFeatures;
    std::vector<float> w(all.begin() + p.part * n, all.begin() + (p.part + 1) * n);
    // The same rows read on their own (how the forward loads one expert of a stack) are the same values.
    std::vector<float> rows(static_cast<size_t>(n));
    gguf::readRowsF32(f, *t, p.part * li.outFeatures, li.outFeatures, rows.data());
    if (rows != w)
        throw std::runtime_error(p.tensor + ": readRowsF32 of part " + std::to_string(p.part) + " differs from its slice");
    if (p.heads == 0)
        return w;
    std::vector<float> hfw(w.size());
    const int64_t hd = li.outFeatures / p.heads, half = hd / 2;
    for (int64_t h = 0; h < p.heads; ++h)
        for (int64_t j = 0; j < half; ++j)
            for (int64_t s = 0; s < 2; ++s)
                std::memcpy(&hfw[size_t((h * hd + s * half + j) * li.inFeatures)],
                            &w[size_t((h * hd + 2 * j + s) * li.inFeatures)], size_t(li.inFeatures) * 4);
    return hfw;
}

std::vector<float> f32Tensor(const Checkpoint& c, const std::string& name)
{
    const TensorInfo& info = c.info(name);
    std::vector<float> v(size_t(info.numel()));
    std::memcpy(v.data(), c.data(name), v.size() * 4);
    return v;
}

/// Names of the file's "<arch>." keys without the prefix, in file order.
QStringList archKeys(const gguf::File& f, const std::string& arch)
{
    QStringList keys;
    for (const auto& [k, v] : f.kv)
        if (k.rfind(arch + ".", 0) == 0)
            keys << QString::fromStdString(k.substr(arch.size() + 1));
    return keys;
}

QStringList layerTensors(const gguf::File& f, int layer)
{
    QStringList names;
    const std::string prefix = "blk." + std::to_string(layer) + ".";
    for (const gguf::TensorEntry& t : f.tensors)
        if (t.name.rfind(prefix, 0) == 0)
            names << QString::fromStdString(t.name.substr(prefix.size()));
    return names;
}

/// Synthetic importance per input column (1 + (c mod 7) · (1 + linear index mod 3)): enough to change
/// the weighted encoders' choices.
std::map<std::string, std::vector<float>> syntheticImportance(const ModelConfig& cfg)
{
    std::map<std::string, std::vector<float>> imp;
    int k = 0;
    for (const LinearInfo& li : listLinears(cfg)) {
        std::vector<float> v(size_t(li.inFeatures));
        for (int64_t c = 0; c < li.inFeatures; ++c)
            v[size_t(c)] = 1.0f + float(c % 7) * float(1 + k % 3);
        imp[li.name] = std::move(v);
        ++k;
    }
    return imp;
}

} // namespace

class TestExportGgufTypes : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;

    /// Every quantizable linear of the GGUF equals the fake export's (f32 checkpoint: exactly).
    void assertMatchesFake(const QString& file, const QString& fake, const ModelConfig& cfg, bool permuted)
    {
        const gguf::File f = gguf::read(file.toStdString());
        const Checkpoint fk = Checkpoint::open(fake.toStdString());
        int compared = 0;
        for (const LinearInfo& li : listLinears(cfg)) {
            if (!isQuantizableRole(li.role))
                continue;
            const std::vector<float> g = weightFromGguf(f, li, cfg, permuted);
            QVERIFY2(!g.empty(), li.name.c_str());
            QVERIFY2(g == f32Tensor(fk, li.name + ".weight"), li.name.c_str());
            ++compared;
        }
        QVERIFY(compared > 10);
    }

private slots:
    void initTestCase() { QVERIFY(m_tmp.isValid()); }

    void architectures_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("name");
        QTest::addColumn<QStringList>("keys");
        QTest::addColumn<QStringList>("layer0");
        QTest::addColumn<QStringList>("layer1");
        QTest::addColumn<bool>("permuted");
        const QStringList exps = {"ffn_gate_inp.weight", "ffn_gate_exps.weight", "ffn_up_exps.weight",
                                  "ffn_down_exps.weight"};
        const QStringList attn = {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                                  "attn_output.weight"};
        const QStringList qk = {"attn_q_norm.weight", "attn_k_norm.weight"};
        const QStringList shexp = {"ffn_gate_shexp.weight", "ffn_up_shexp.weight", "ffn_down_shexp.weight"};
        const QStringList dense = {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
        const QStringList common = {"vocab_size", "context_length", "embedding_length", "block_count",
                                    "feed_forward_length", "attention.head_count", "attention.head_count_kv"};
        QTest::newRow("mixtral") << "mixtral" << "llama"
                                 << common + QStringList{"attention.layer_norm_rms_epsilon", "rope.freq_base",
                                                         "rope.dimension_count", "expert_count", "expert_used_count"}
                                 << attn + QStringList{"ffn_norm.weight"} + exps
                                 << attn + QStringList{"ffn_norm.weight"} + exps << true;
        const QStringList qwen2Attn = {"attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight",
                                       "attn_k.bias", "attn_v.weight", "attn_v.bias", "attn_output.weight"};
        QTest::newRow("qwen2_moe")
            << "qwen2_moe" << "qwen2moe"
            << common + QStringList{"attention.layer_norm_rms_epsilon", "rope.freq_base", "expert_count",
                                    "expert_used_count", "expert_feed_forward_length",
                                    "expert_shared_feed_forward_length"}
            << qwen2Attn + QStringList{"ffn_norm.weight"} + exps + QStringList{"ffn_gate_inp_shexp.weight"} + shexp
            << qwen2Attn + QStringList{"ffn_norm.weight"} + dense << false;
        QTest::newRow("qwen3_moe")
            << "qwen3_moe" << "qwen3moe"
            << common + QStringList{"attention.layer_norm_rms_epsilon", "rope.freq_base", "expert_count",
                                    "expert_used_count", "attention.key_length", "attention.value_length",
                                    "expert_feed_forward_length"}
            << attn + qk + QStringList{"ffn_norm.weight"} + exps << attn + qk + QStringList{"ffn_norm.weight"} + exps
            << false;
        QTest::newRow("olmoe") << "olmoe" << "olmoe"
                               << common + QStringList{"rope.freq_base", "attention.layer_norm_rms_epsilon",
                                                       "expert_count", "expert_used_count"}
                               << attn + qk + QStringList{"ffn_norm.weight"} + exps
                               << attn + qk + QStringList{"ffn_norm.weight"} + exps << false;
        QTest::newRow("deepseek")
            << "deepseek" << "deepseek"
            << QStringList{"context_length", "embedding_length", "block_count", "feed_forward_length",
                           "attention.head_count", "attention.head_count_kv", "rope.freq_base",
                           "attention.layer_norm_rms_epsilon", "expert_used_count", "rope.dimension_count",
                           "rope.scaling.type", "leading_dense_block_count", "vocab_size",
                           "expert_feed_forward_length", "expert_weights_scale", "expert_count", "expert_shared_count"}
            << attn + QStringList{"ffn_norm.weight"} + dense << attn + QStringList{"ffn_norm.weight"} + exps + shexp
            << true;
    }
    void architectures()
    {
        QFETCH(QString, arch);
        QFETCH(QString, name);
        QFETCH(QStringList, keys);
        QFETCH(QStringList, layer0);
        QFETCH(QStringList, layer1);
        QFETCH(bool, permuted);
        const QString model = generate(m_tmp.path(), arch, arch + "-256", {"--hidden", "256"});
        const ModelConfig cfg = loadConfig(model.toStdString());
        const Plan plan = planFrom(R"({"bits": 4, "method": "rtn", "ggml_type": "q4_k"})");
        const QString file = m_tmp.path() + "/" + arch + ".gguf";
        GgufExportOptions go;
        go.unquantizedType = "f32";
        const GgufExportResult res = quantizeToGguf(model.toStdString(), plan, {}, {}, file.toStdString(), true, {},
                                                    {}, go);
        const gguf::File f = gguf::read(file.toStdString());
        QCOMPARE(QString::fromStdString(f.find("general.architecture")->s), name);
        QCOMPARE(archKeys(f, name.toStdString()), keys);
        QCOMPARE(layerTensors(f, 0), layer0);
        QCOMPARE(layerTensors(f, 1), layer1);
        QCOMPARE(qint64(res.fileBytes), QFileInfo(file).size());
        QVERIFY(res.encodedBlocks > 0 && res.gridBlocks == 0 && res.requantBlocks == 0);
        // 256-wide inputs are Q4_K; llama-quantize's fallback for the narrower ones.
        QCOMPARE(f.findTensor("blk.0.attn_q.weight")->type, GgmlType::Q4_K);
        const gguf::TensorEntry* down = f.findTensor(arch == "deepseek" ? "blk.1.ffn_down_exps.weight"
                                                                        : "blk.0.ffn_down_exps.weight");
        QCOMPARE(down->type, gguf::rowFallbackType(GgmlType::Q4_K, down->ne[0]));
        QVERIFY(down->type != GgmlType::Q4_K);
        if (arch == "qwen3_moe") {
            QCOMPARE(f.findTensor("blk.0.attn_q_norm.weight")->ne, std::vector<int64_t>{24});
            QCOMPARE(f.find("qwen3moe.attention.key_length")->asInt(), int64_t(24));
        }
        if (arch == "olmoe") {
            QCOMPARE(f.findTensor("blk.0.attn_q_norm.weight")->ne, std::vector<int64_t>{256});
            QCOMPARE(f.findTensor("blk.0.attn_k_norm.weight")->ne, std::vector<int64_t>{128});
        }
        if (arch == "deepseek") {
            QCOMPARE(f.find("deepseek.leading_dense_block_count")->asInt(), int64_t(1));
            QCOMPARE(f.find("deepseek.expert_shared_count")->asInt(), int64_t(2));
            QCOMPARE(f.find("deepseek.expert_feed_forward_length")->asInt(), int64_t(32));
            QCOMPARE(f.find("deepseek.rope.scaling.type")->s, std::string("none"));
            QCOMPARE(f.findTensor("blk.1.ffn_gate_shexp.weight")->ne, (std::vector<int64_t>{256, 64}));
        }
        const QString fake = m_tmp.path() + "/" + arch + "-fake";
        quantizeToFakeDir(model.toStdString(), plan, {}, {}, fake.toStdString(), true);
        assertMatchesFake(file, fake, cfg, permuted);
    }

    void everyType_data()
    {
        QTest::addColumn<QString>("type");
        for (const char* t : {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"})
            QTest::newRow(t) << t;
    }
    void everyType()
    {
        QFETCH(QString, type);
        const QString model = generate(m_tmp.path(), "mixtral", "mixtral-256", {"--hidden", "256"});
        const ModelConfig cfg = loadConfig(model.toStdString());
        const Plan plan = planFrom(R"({"bits": 4, "method": "rtn", "ggml_type": ")" + type.toStdString() + R"("})");
        GgmlType t;
        QVERIFY(gguf::ggmlTypeFromName(type.toStdString(), t));
        QuantizeOptions opt;
        opt.actSqMean = syntheticImportance(cfg);
        const QString file = m_tmp.path() + "/t-" + type + ".gguf", plain = m_tmp.path() + "/p-" + type + ".gguf";
        quantizeToGguf(model.toStdString(), plan, {}, opt, file.toStdString(), true);
        quantizeToGguf(model.toStdString(), plan, {}, {}, plain.toStdString(), true);
        const gguf::File f = gguf::read(file.toStdString()), fp = gguf::read(plain.toStdString());
        const gguf::TensorEntry& q = *f.findTensor("blk.0.attn_q.weight");
        QCOMPARE(q.type, t);
        QCOMPARE(f.findTensor("blk.0.ffn_down_exps.weight")->type, gguf::rowFallbackType(t, 96));
        // Row 0 of attn_q is HF row 0 (the permutation keeps it): our encoder on the checkpoint's row
        // with the importance given, decoded.
        const Checkpoint ck = Checkpoint::open(model.toStdString());
        const std::vector<float> w = f32Tensor(ck, "model.layers.0.self_attn.q_proj.weight");
        std::vector<uint8_t> enc(size_t(gguf::ggmlRowBytes(t, 256)));
        gguf::quantizeRow(t, w.data(), enc.data(), 256, opt.actSqMean.at("model.layers.0.self_attn.q_proj").data());
        const std::vector<uint8_t> bytes = gguf::readTensorBytes(f, q);
        QVERIFY(std::equal(enc.begin(), enc.end(), bytes.begin()));
        // Importance changes the weighted types' bytes (Q8_0 ignores it, as ggml does).
        const bool same = gguf::readTensorBytes(fp, *fp.findTensor("blk.0.attn_q.weight")) == bytes;
        QCOMPARE(same, t == GgmlType::Q8_0);
        // The whole file decodes to the fake export of the same plan and importance.
        const QString fake = m_tmp.path() + "/fake-" + type;
        quantizeToFakeDir(model.toStdString(), plan, {}, opt, fake.toStdString(), true);
        assertMatchesFake(file, fake, cfg, true);
    }

    void oneTypePerStack()
    {
        const QString model = generate(m_tmp.path(), "mixtral", "mixtral-256", {"--hidden", "256"});
        const Plan plan = planFrom(R"({"bits": 4, "method": "rtn", "ggml_type": "q4_k"})",
                                   R"([{"match": "model\\.layers\\.0\\.block_sparse_moe\\.experts\\.1\\.w[13]",
                                        "bits": 8, "ggml_type": "q6_k"}])");
        const QString file = m_tmp.path() + "/stack.gguf";
        const GgufExportResult r = quantizeToGguf(model.toStdString(), plan, {}, {}, file.toStdString(), true);
        const gguf::File f = gguf::read(file.toStdString());
        QCOMPARE(f.findTensor("blk.0.ffn_gate_exps.weight")->type, GgmlType::Q6_K);
        QCOMPARE(f.findTensor("blk.0.ffn_up_exps.weight")->type, GgmlType::Q6_K);
        QCOMPARE(f.findTensor("blk.1.ffn_gate_exps.weight")->type, GgmlType::Q4_K);
        // 7 experts × 96 rows × (210 − 144) bytes per 256-wide row, for each of the two stacks.
        QCOMPARE(r.stackExtraBytes, int64_t(2 * 7 * 96 * 66));
        int notes = 0;
        for (const std::string& n : r.notes)
            notes += n.find("experts asked for Q4_K, Q6_K; stored as Q6_K (one type per stacked tensor): +44352 bytes")
                != std::string::npos;
        QCOMPARE(notes, 2);
        // The 96-wide down projections take llama-quantize's fallback, said once per tensor.
        QVERIFY(std::find(r.notes.begin(), r.notes.end(),
                          "blk.0.ffn_down_exps.weight: Q4_K asked, rows of 96 are not whole blocks of it: written as "
                          "Q5_0 (llama-quantize's fallback)")
                != r.notes.end());
    }

    void targetGgufBytes()
    {
        const QString model = generate(m_tmp.path(), "mixtral", "mixtral-256", {"--hidden", "256"});
        const ModelConfig cfg = loadConfig(model.toStdString());
        // Synthetic errors: halving with each wider candidate, larger for attention.
        GgmlErrorTable table;
        table.types = defaultGgufCandidateTypes();
        auto halving = [&](const std::string& name, double base) {
            GgmlTensorErrors e{name, {}};
            for (size_t c = 0; c < table.types.size(); ++c)
                e.error.push_back(base / double(1 << c));
            return e;
        };
        for (const LinearInfo& li : quantizableLinears(cfg))
            table.linears.push_back(halving(li.name, li.expert < 0 ? 8.0 : 1.0));
        table.tokenEmbd = halving("model.embed_tokens.weight", 0.5);
        table.output = halving("lm_head.weight", 4.0);
        AllocOptions opt;
        opt.strategy = "budget";
        Plan smallest;
        smallest.defaults.ggmlType = "q2_k";
        smallest.ggufTokenEmbd = "q2_k";
        smallest.ggufOutput = "q2_k";
        const int64_t low = int64_t(ggufPlannedBytes(model.toStdString(), smallest));
        PlanProvenance source; // in the embedded plan, so part of the measured size
        source.modelPath = model.toStdString();
        source.architecture = cfg.architecture;
        source.created = "2026-01-01T00:00:00Z";
        for (const int64_t target : {low + 150000, low + 400000}) {
            const GgufBudgetResult g = ggufBudgetPlan(model.toStdString(), cfg, table, opt, target, "auto", "auto", source);
            QCOMPARE(g.plan.provenance.modelPath, source.modelPath);
            QCOMPARE(g.plan.provenance.created, source.created);
            QVERIFY(int64_t(g.fileBytes) <= target);
            QVERIFY(int64_t(g.fileBytes) > target - 60000); // the budget is used
            const QString file = m_tmp.path() + "/target-" + QString::number(target) + ".gguf";
            const GgufExportResult r = quantizeToGguf(model.toStdString(), g.plan, {}, {}, file.toStdString(), true);
            QCOMPARE(qint64(QFileInfo(file).size()), qint64(g.fileBytes));
            QCOMPARE(r.fileBytes, g.fileBytes);
            QCOMPARE(g.plan.provenance.achievedBytes, int64_t(g.fileBytes));
            QCOMPARE(r.stackExtraBytes, int64_t(0));
        }
        QVERIFY_THROWS_EXCEPTION(InputError, ggufBudgetPlan(model.toStdString(), cfg, table, opt, low - 1, "auto", "auto"));
    }

    void presets_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("preset");
        QTest::addColumn<QStringList>("expected"); // "tensor=TYPE"
        QTest::addColumn<int>("fileType");
        // Mixtral, 3 layers, 8 experts (the 8-expert rules), gqa 2; ffn_down is 96 wide: Q4_K → Q5_0,
        // Q6_K → Q8_0, Q3_K → IQ4_NL. use_more_bits(i, 3) holds for layer 2 only.
        QTest::newRow("mixtral-q4_k_m")
            << "mixtral" << "gguf-q4_k_m"
            << QStringList{"token_embd.weight=Q4_K", "output.weight=Q6_K", "blk.0.attn_q.weight=Q4_K",
                           "blk.0.attn_k.weight=Q8_0", "blk.0.attn_v.weight=Q8_0", "blk.2.attn_v.weight=Q8_0",
                           "blk.0.attn_output.weight=Q5_K", "blk.0.ffn_gate_exps.weight=Q4_K",
                           "blk.0.ffn_up_exps.weight=Q4_K", "blk.0.ffn_down_exps.weight=Q5_0",
                           "blk.1.ffn_down_exps.weight=Q5_0", "blk.2.ffn_down_exps.weight=Q8_0"}
            << 15;
        QTest::newRow("mixtral-q2_k")
            << "mixtral" << "gguf-q2_k"
            << QStringList{"token_embd.weight=Q2_K", "output.weight=Q6_K", "blk.0.attn_q.weight=Q2_K",
                           "blk.0.attn_k.weight=Q8_0", "blk.1.attn_v.weight=Q8_0", "blk.0.attn_output.weight=Q5_K",
                           "blk.0.ffn_gate_exps.weight=Q2_K", "blk.2.ffn_down_exps.weight=IQ4_NL"}
            << 10;
        // Qwen3-MoE --tiny: 2 layers, 4 experts, gqa 2, attn_output 48 wide and expert down 24 wide
        // (neither a multiple of 32: F16); use_more_bits(i, 2) holds for layer 1.
        QTest::newRow("qwen3-q4_k_m")
            << "qwen3_moe" << "gguf-q4_k_m"
            << QStringList{"token_embd.weight=Q4_K", "output.weight=Q6_K", "blk.0.attn_q.weight=Q4_K",
                           "blk.0.attn_k.weight=Q4_K", "blk.0.attn_v.weight=Q4_K", "blk.1.attn_v.weight=Q6_K",
                           "blk.0.attn_output.weight=F16", "blk.0.ffn_gate_exps.weight=Q4_K",
                           "blk.0.ffn_down_exps.weight=F16", "blk.1.ffn_up_exps.weight=Q4_K"}
            << 15;
        QTest::newRow("qwen3-q3_k_m")
            << "qwen3_moe" << "gguf-q3_k_m"
            << QStringList{"token_embd.weight=Q3_K", "output.weight=Q6_K", "blk.0.attn_q.weight=Q3_K",
                           "blk.0.attn_k.weight=Q3_K", "blk.0.attn_v.weight=Q5_K", "blk.1.attn_v.weight=Q5_K",
                           "blk.1.ffn_gate_exps.weight=Q3_K"}
            << 12;
        QTest::newRow("qwen3-q6_k") << "qwen3_moe" << "gguf-q6_k"
                                    << QStringList{"token_embd.weight=Q6_K", "output.weight=Q6_K",
                                                   "blk.0.attn_v.weight=Q6_K", "blk.1.ffn_gate_exps.weight=Q6_K"}
                                    << 18;
    }
    void presets()
    {
        QFETCH(QString, arch);
        QFETCH(QString, preset);
        QFETCH(QStringList, expected);
        QFETCH(int, fileType);
        const QStringList extra = arch == "mixtral" ? QStringList{"--hidden", "256"}
                                                    : QStringList{"--hidden", "256", "--tiny"};
        const QString model = generate(m_tmp.path(), arch, arch + "-preset", extra);
        const ModelConfig cfg = loadConfig(model.toStdString());
        AllocOptions ao;
        ao.strategy = preset.toStdString();
        const Plan plan = planFromAllocation(allocate(cfg, {}, ao), ao);
        const QString file = m_tmp.path() + "/" + QString::fromLatin1(QTest::currentDataTag()) + ".gguf";
        quantizeToGguf(model.toStdString(), plan, {}, {}, file.toStdString(), true);
        const gguf::File f = gguf::read(file.toStdString());
        for (const QString& e : expected) {
            const QStringList kv = e.split('=');
            const gguf::TensorEntry* t = f.findTensor(kv[0].toStdString());
            QVERIFY2(t, qPrintable(e));
            QCOMPARE(QString::fromLatin1(gguf::ggmlTypeName(t->type)) + " " + kv[0], kv[1] + " " + kv[0]);
        }
        QCOMPARE(f.find("general.file_type")->asInt(), int64_t(fileType));
        QCOMPARE(qint64(ggufPlannedBytes(model.toStdString(), plan)), QFileInfo(file).size());
        QCOMPARE(f.findTensor("blk.0.ffn_gate_inp.weight")->type, GgmlType::F32);
    }
};

QTEST_GUILESS_MAIN(TestExportGgufTypes)
#include "tst_export_gguf_types.moc"
