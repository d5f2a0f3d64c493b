// SPDX-License-Identifier: MIT
// GGUF export (#9): hand-computed Q8_0 / Q4_0 / Q4_1 blocks, the container writer and reader
// against an independent NumPy reader (tests/reference/gguf_reference.py), one-line errors for
// damaged files, and round trips: a tiny random Mixtral and Qwen2-MoE exported with RTN plans
// dequantize (in NumPy, q/k permutation and expert stacking undone) to exactly the fake-quant
// export's weights where the grid maps exactly, and the reference forward agrees.
#include "testutil.h"

#include "gguf/gguf_file.h"
#include "gguf/gguf_quants.h"
#include "moewb/plan/plan.h"
#include "moewb/core/error.h"
#include "moewb/export/gguf.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/quant/quantize.h"

#include <QCryptographicHash>
#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <fstream>

using namespace moewb;
using namespace moewb::test;
using moewb::gguf::GgmlType;

namespace {

QString generate(const QString& root, const QString& arch, const QString& name, const QStringList& extra = {})
{
    const QString out = root + "/" + name;
    runPython(QStringList{sourcePath("tests/reference/gen_random_model.py"), arch, out, "--seed", "5"} + extra);
    return out;
}

Plan planFrom(const std::string& defaults, const std::string& rules = "[]", const std::string& extra = "")
{
    return parsePlanJson(R"({"format": "moewb-plan", "version": 1, "defaults": )" + defaults + R"(, "rules": )"
                             + rules + extra + "}",
                         "test-plan");
}

QJsonObject parseJson(const QByteArray& b)
{
    return QJsonDocument::fromJson(b).object();
}

std::vector<uint8_t> bytesOf(std::initializer_list<int> v)
{
    std::vector<uint8_t> out;
    for (int x : v)
        out.push_back(uint8_t(x));
    return out;
}

/// The error message of f(), or "" if it did not throw moewb::Error.
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

QString sha256(const std::vector<float>& v)
{
    return QString::fromLatin1(QCryptographicHash::hash(QByteArray(reinterpret_cast<const char*>(v.data()),
                                                                   qsizetype(v.size() * 4)),
                                                        QCryptographicHash::Sha256)
                                   .toHex());
}

} // namespace

class TestExportGguf : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;

    /// Python's reader must agree with ours on every header field and every dequantized tensor.
    void compareWithReference(const QString& file)
    {
        const gguf::File f = gguf::read(file.toStdString());
        const QJsonObject ref = parseJson(runPython({sourcePath("tests/reference/gguf_reference.py"), "info", file}));
        QCOMPARE(ref["version"].toInt(), int(f.version));
        QCOMPARE(ref["alignment"].toInt(), int(f.alignment));
        QCOMPARE(qint64(ref["data_offset"].toDouble()), qint64(f.dataOffset));
        const QJsonObject kv = ref["kv"].toObject();
        QCOMPARE(kv.size(), qsizetype(f.kv.size()));
        for (const auto& [key, v] : f.kv) {
            const QJsonObject r = kv[QString::fromStdString(key)].toObject();
            QVERIFY2(!r.isEmpty(), key.c_str());
            QCOMPARE(r["type"].toString(), QString::fromLatin1(gguf::valueTypeName(v.type)));
            const QJsonValue rv = r["value"];
            if (v.type == gguf::ValueType::STRING) {
                QCOMPARE(rv.toString().toStdString(), v.s);
            } else if (v.type == gguf::ValueType::ARRAY) {
                const QJsonArray items = rv.toObject()["items"].toArray();
                QCOMPARE(items.size(), qsizetype(v.items.size()));
                QCOMPARE(rv.toObject()["type"].toString(), QString::fromLatin1(gguf::valueTypeName(v.arrayType)));
                for (size_t k = 0; k < v.items.size(); ++k) {
                    if (v.arrayType == gguf::ValueType::STRING)
                        QCOMPARE(items[qsizetype(k)].toString().toStdString(), v.items[k].s);
                    else if (v.items[k].isInteger())
                        QCOMPARE(qint64(items[qsizetype(k)].toDouble()), qint64(v.items[k].asInt()));
                }
            } else if (v.type == gguf::ValueType::BOOL) {
                QCOMPARE(rv.toBool(), v.b);
            } else if (v.isInteger()) {
                QCOMPARE(qint64(rv.toDouble()), qint64(v.asInt()));
            } else {
                QCOMPARE(rv.toDouble(), v.f);
            }
        }
        const QJsonArray ts = ref["tensors"].toArray();
        QCOMPARE(ts.size(), qsizetype(f.tensors.size()));
        for (size_t k = 0; k < f.tensors.size(); ++k) {
            const gguf::TensorEntry& t = f.tensors[k];
            const QJsonObject r = ts[qsizetype(k)].toObject();
            QCOMPARE(r["name"].toString().toStdString(), t.name);
            QCOMPARE(r["type"].toString(), QString::fromLatin1(gguf::ggmlTypeName(t.type)));
            QCOMPARE(qint64(r["offset"].toDouble()), qint64(t.offset));
            QCOMPARE(qint64(r["nbytes"].toDouble()), qint64(t.nbytes));
            const QJsonArray ne = r["ne"].toArray();
            QCOMPARE(ne.size(), qsizetype(t.ne.size()));
            for (size_t j = 0; j < t.ne.size(); ++j)
                QCOMPARE(qint64(ne[qsizetype(j)].toDouble()), qint64(t.ne[j]));
            QVERIFY2(r["sha256"].toString() == sha256(gguf::readTensorF32(f, t)), t.name.c_str());
        }
    }

    /// NumPy: GGUF → HF directory, then per-tensor comparison with another HF directory.
    QJsonObject compareDirs(const QString& file, const QString& model, const QString& other, const QString& hfOut)
    {
        runPython({sourcePath("tests/reference/gguf_reference.py"), "to-hf", file, model, hfOut});
        return parseJson(runPython({sourcePath("tests/reference/gguf_reference.py"), "compare", hfOut, other}));
    }

    /// Reference forward on both directories: max |logit difference|.
    double logitDiff(const QString& a, const QString& b, const QString& tag)
    {
        const QString ids = m_tmp.path() + "/" + tag + "-ids.json";
        writeAll(ids, "[[1, 5, 9, 200, 17, 33, 64, 128, 250, 3, 7, 11], [2, 4, 8, 16, 32, 64, 100, 150, 201, 202, 5, 6]]");
        runPython({sourcePath("tests/reference/reference_forward.py"), a, ids, m_tmp.path() + "/" + tag + "-a.logits"});
        runPython({sourcePath("tests/reference/reference_forward.py"), b, ids, m_tmp.path() + "/" + tag + "-b.logits"});
        const QByteArray out = runPython(
            {"-c", "import numpy as np,sys; a=np.fromfile(sys.argv[1],np.float32); b=np.fromfile(sys.argv[2],np.float32);"
                   "assert a.size==b.size and a.size>0; print(float(np.max(np.abs(a-b))))",
             m_tmp.path() + "/" + tag + "-a.logits", m_tmp.path() + "/" + tag + "-b.logits"});
        return out.trimmed().toDouble();
    }

private slots:
    void initTestCase() { QVERIFY(m_tmp.isValid()); }

    void halfConversion()
    {
        QCOMPARE(gguf::fp32ToFp16(1.0f), uint16_t(0x3C00));
        QCOMPARE(gguf::fp32ToFp16(-0.75f), uint16_t(0xBA00));
        QCOMPARE(gguf::fp32ToFp16(65504.0f), uint16_t(0x7BFF));
        QCOMPARE(gguf::fp32ToFp16(65520.0f), uint16_t(0x7C00));                  // rounds to inf
        QCOMPARE(gguf::fp32ToFp16(1.0f + 0x1.0p-11f), uint16_t(0x3C00));          // tie → even
        QCOMPARE(gguf::fp32ToFp16(1.0f + 3 * 0x1.0p-11f), uint16_t(0x3C02));      // tie → even (up)
        QCOMPARE(gguf::fp32ToFp16(0x1.0p-24f), uint16_t(0x0001));                 // smallest subnormal
        QCOMPARE(gguf::fp16ToFp32(0x0001), 0x1.0p-24f);
        QCOMPARE(gguf::fp16ToFp32(0xBA00), -0.75f);
        QCOMPARE(gguf::fp32ToBf16(1.0f + 0x1.0p-8f), uint16_t(0x3F80));           // tie → even
        QCOMPARE(gguf::bf16ToFp32(0x3F81), 1.0f + 0x1.0p-7f);
    }

    // Every expected byte below is computed by hand in the comment next to it.
    void q8_0Blocks()
    {
        // Grid (sym 8-bit): scale 0.5 (fp16 0x3800), zero 128, q = 128 + k for k = -16..15 → code k.
        std::vector<int32_t> q(32), g(32, 0);
        for (int j = 0; j < 32; ++j)
            q[size_t(j)] = 128 + j - 16;
        const float scale = 0.5f, zero = 128.0f;
        std::vector<uint8_t> out(34);
        gguf::PackStats st;
        gguf::packGridRow(GgmlType::Q8_0, {q.data(), &scale, &zero, g.data()}, out.data(), 32, st);
        std::vector<uint8_t> expect = bytesOf({0x00, 0x38});
        for (int j = 0; j < 32; ++j)
            expect.push_back(uint8_t(int8_t(j - 16))); // 0xF0 .. 0x0F
        QCOMPARE(out, expect);
        QCOMPARE(st.gridBlocks, int64_t(1));
        std::vector<float> y(32);
        gguf::dequantizeRow(GgmlType::Q8_0, out.data(), y.data(), 32);
        for (int j = 0; j < 32; ++j)
            QCOMPARE(y[size_t(j)], 0.5f * float(j - 16));

        // Reference rule from floats: x0 = -31.75, xj = 0.75 j → amax 31.75, d = 31.75/127 = 0.25
        // (fp16 0x3400), id = 4, codes round(x·4) = -127 and 3j.
        std::vector<float> x(32);
        x[0] = -31.75f;
        for (int j = 1; j < 32; ++j)
            x[size_t(j)] = 0.75f * float(j);
        gguf::quantizeRow(GgmlType::Q8_0, x.data(), out.data(), 32);
        expect = bytesOf({0x00, 0x34, 0x81});
        for (int j = 1; j < 32; ++j)
            expect.push_back(uint8_t(3 * j));
        QCOMPARE(out, expect);
        gguf::dequantizeRow(GgmlType::Q8_0, out.data(), y.data(), 32);
        QCOMPARE(y, x); // every x is a multiple of d
    }

    void q4_0Blocks()
    {
        // Grid (sym 4-bit): scale 0.125 (fp16 0x3000), zero 8, q_j = j mod 16 → code q − 8 + 8 = q;
        // qs[j] = q_j | q_{j+16} << 4 = 0x11·j.
        std::vector<int32_t> q(32), g(32, 0);
        for (int j = 0; j < 32; ++j)
            q[size_t(j)] = j % 16;
        const float scale = 0.125f, zero = 8.0f;
        std::vector<uint8_t> out(18);
        gguf::PackStats st;
        gguf::packGridRow(GgmlType::Q4_0, {q.data(), &scale, &zero, g.data()}, out.data(), 32, st);
        std::vector<uint8_t> expect = bytesOf({0x00, 0x30});
        for (int j = 0; j < 16; ++j)
            expect.push_back(uint8_t(0x11 * j));
        QCOMPARE(out, expect);
        std::vector<float> y(32);
        gguf::dequantizeRow(GgmlType::Q4_0, out.data(), y.data(), 32);
        for (int j = 0; j < 32; ++j)
            QCOMPARE(y[size_t(j)], 0.125f * float(j % 16 - 8));

        // Reference rule: x_j = j − 8 (j < 16), x_{16+j} = (j − 8)/2. Signed max |x| is −8 → d = −8/−8 = 1
        // (0x3C00), id = 1, nibble = min(15, trunc(x + 8.5)): low = j, high = trunc(4.5 + j/2).
        std::vector<float> x(32);
        for (int j = 0; j < 16; ++j) {
            x[size_t(j)] = float(j - 8);
            x[size_t(16 + j)] = 0.5f * float(j - 8);
        }
        gguf::quantizeRow(GgmlType::Q4_0, x.data(), out.data(), 32);
        const int high[16] = {4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12};
        expect = bytesOf({0x00, 0x3C});
        for (int j = 0; j < 16; ++j)
            expect.push_back(uint8_t(j | (high[j] << 4)));
        QCOMPARE(out, expect);
        gguf::dequantizeRow(GgmlType::Q4_0, out.data(), y.data(), 32);
        for (int j = 0; j < 16; ++j) {
            QCOMPARE(y[size_t(j)], float(j - 8));
            QCOMPARE(y[size_t(16 + j)], float(high[j] - 8)); // −4, −3, −3, −2, … (x.5 rounds up)
        }
    }

    void q4_1Blocks()
    {
        // Grid (asym 4-bit): scale 0.25 (0x3400), zero 3 → m = −0.75 (0xBA00); code = q = j mod 16.
        std::vector<int32_t> q(32), g(32, 0);
        for (int j = 0; j < 32; ++j)
            q[size_t(j)] = j % 16;
        const float scale = 0.25f, zero = 3.0f;
        std::vector<uint8_t> out(20);
        gguf::PackStats st;
        gguf::packGridRow(GgmlType::Q4_1, {q.data(), &scale, &zero, g.data()}, out.data(), 32, st);
        std::vector<uint8_t> expect = bytesOf({0x00, 0x34, 0x00, 0xBA});
        for (int j = 0; j < 16; ++j)
            expect.push_back(uint8_t(0x11 * j));
        QCOMPARE(out, expect);
        std::vector<float> y(32);
        gguf::dequantizeRow(GgmlType::Q4_1, out.data(), y.data(), 32);
        for (int j = 0; j < 32; ++j)
            QCOMPARE(y[size_t(j)], 0.25f * float(j % 16 - 3));

        // Reference rule: x_j = j − 4, x_{16+j} = 11 − j → min −4 (m = 0xC400), max 11, d = 15/15 = 1
        // (0x3C00); code = trunc(x + 4 + 0.5): low j, high 15 − j.
        std::vector<float> x(32);
        for (int j = 0; j < 16; ++j) {
            x[size_t(j)] = float(j - 4);
            x[size_t(16 + j)] = float(11 - j);
        }
        gguf::quantizeRow(GgmlType::Q4_1, x.data(), out.data(), 32);
        expect = bytesOf({0x00, 0x3C, 0x00, 0xC4});
        for (int j = 0; j < 16; ++j)
            expect.push_back(uint8_t(j | ((15 - j) << 4)));
        QCOMPARE(out, expect);
        gguf::dequantizeRow(GgmlType::Q4_1, out.data(), y.data(), 32);
        QCOMPARE(y, x);
    }

    void gridFallsBackWhenNotExact()
    {
        // Group size 16: a block spans two groups → re-quantized with the reference rule.
        std::vector<int32_t> q(64), g(64);
        for (int j = 0; j < 64; ++j) {
            q[size_t(j)] = (j * 5) % 16;
            g[size_t(j)] = j / 16;
        }
        const float scales[4] = {0.5f, 0.25f, 0.125f, 1.0f}, zeros[4] = {8, 8, 8, 8};
        std::vector<uint8_t> out(2 * 18);
        gguf::PackStats st;
        gguf::packGridRow(GgmlType::Q4_0, {q.data(), scales, zeros, g.data()}, out.data(), 64, st);
        QCOMPARE(st.gridBlocks, int64_t(0));
        QCOMPARE(st.requantBlocks, int64_t(2));
        std::vector<float> w(64), ref(2 * 18);
        for (int j = 0; j < 64; ++j)
            w[size_t(j)] = scales[j / 16] * float(q[size_t(j)] - 8);
        std::vector<uint8_t> expect(2 * 18);
        gguf::quantizeRow(GgmlType::Q4_0, w.data(), expect.data(), 64);
        QCOMPARE(out, expect);
        // Asymmetric 8-bit codes outside int8 (q − zero = 200) cannot be Q8_0 codes.
        std::vector<int32_t> q8(32, 255), g8(32, 0);
        const float s8 = 0.01f, z8 = 55.0f;
        std::vector<uint8_t> o8(34);
        gguf::PackStats st8;
        gguf::packGridRow(GgmlType::Q8_0, {q8.data(), &s8, &z8, g8.data()}, o8.data(), 32, st8);
        QCOMPARE(st8.requantBlocks, int64_t(1));
    }

    void writerReaderAndReference_data()
    {
        QTest::addColumn<int>("alignment");
        QTest::newRow("align32") << 32;
        QTest::newRow("align64") << 64;
    }
    void writerReaderAndReference()
    {
        QFETCH(int, alignment);
        const QString path = m_tmp.path() + QString("/small-%1.gguf").arg(alignment);
        {
            gguf::Writer w(path.toStdString(), uint32_t(alignment));
            w.addKv("general.architecture", gguf::Value::str("llama"));
            w.addKv("test.u32", gguf::Value::u32(7));
            w.addKv("test.i32", gguf::Value::i32(-3));
            w.addKv("test.f32", gguf::Value::f32(0.5f));
            w.addKv("test.bool", gguf::Value::boolean(true));
            w.addKv("test.u64", gguf::Value::u64(uint64_t(1) << 40));
            w.addKv("test.strings", gguf::Value::strings({"a", "Ġb c", ""}));
            w.addKv("test.ints", gguf::Value::i32s({1, -2, 3}));
            w.addKv("test.floats", gguf::Value::f32s({1.5f, -2.0f}));
            w.addTensor("norm", {3}, GgmlType::F32);
            w.addTensor("q8", {64, 2}, GgmlType::Q8_0);
            w.addTensor("q4", {32, 3}, GgmlType::Q4_0);
            w.addTensor("q41", {32, 1, 2}, GgmlType::Q4_1);
            w.addTensor("h", {5}, GgmlType::F16);
            w.addTensor("b", {2, 2}, GgmlType::BF16);
            w.begin();
            const float norm[3] = {1, 2, 3};
            w.write("norm", 0, norm, 12);
            std::vector<float> x(128);
            for (int i = 0; i < 128; ++i)
                x[size_t(i)] = std::sin(float(i)) * 3.0f;
            std::vector<uint8_t> b(200);
            gguf::quantizeRow(GgmlType::Q8_0, x.data(), b.data(), 128);
            w.write("q8", 0, b.data(), 4 * 34);
            gguf::quantizeRow(GgmlType::Q4_0, x.data(), b.data(), 96);
            w.write("q4", 0, b.data(), 3 * 18);
            gguf::quantizeRow(GgmlType::Q4_1, x.data(), b.data(), 64);
            w.write("q41", 0, b.data(), 20); // in two slices
            w.write("q41", 20, b.data() + 20, 20);
            gguf::quantizeRow(GgmlType::F16, x.data(), b.data(), 5);
            w.write("h", 0, b.data(), 10);
            gguf::quantizeRow(GgmlType::BF16, x.data(), b.data(), 4);
            w.write("b", 0, b.data(), 8);
            w.commit();
        }
        const gguf::File f = gguf::read(path.toStdString());
        QCOMPARE(f.alignment, uint32_t(alignment));
        QCOMPARE(f.dataOffset % uint64_t(alignment), uint64_t(0));
        QCOMPARE(f.find("test.i32")->asInt(), int64_t(-3));
        QCOMPARE(f.find("test.strings")->items[1].s, std::string("Ġb c"));
        for (const auto& t : f.tensors)
            QCOMPARE(t.offset % uint64_t(alignment), uint64_t(0));
        QCOMPARE(gguf::readTensorF32(f, *f.findTensor("norm")), (std::vector<float>{1, 2, 3}));
        QVERIFY(!QFile::exists(path + ".tmp." + QString::number(QCoreApplication::applicationPid())));
        compareWithReference(path);
    }

    void readerErrors()
    {
        const QString good = m_tmp.path() + "/small-32.gguf";
        QVERIFY(QFile::exists(good));
        const QByteArray bytes = readAll(good);
        auto expect = [&](const QByteArray& content, const char* name, const std::string& fragment) {
            const QString p = m_tmp.path() + "/" + name;
            writeAll(p, content);
            const std::string err = errorOf([&] { gguf::read(p.toStdString()); });
            QVERIFY2(err.rfind(p.toStdString() + ": ", 0) == 0, (std::string(name) + ": '" + err + "'").c_str());
            QVERIFY2(err.find(fragment) != std::string::npos, err.c_str());
            QVERIFY2(err.find('\n') == std::string::npos, err.c_str());
            // The CLI prints the same one line and exits 1.
            const CliRun r = runCli(moewbCli(), {"gguf-info", p});
            QCOMPARE(r.exitCode, 1);
            QCOMPARE(r.err.count('\n'), qsizetype(1));
            QVERIFY2(r.err.contains(QByteArray::fromStdString(fragment)), r.err.constData());
        };
        QByteArray bad = bytes;
        bad[0] = 'X';
        expect(bad, "badmagic.gguf", "bad magic");
        bad = bytes;
        bad[4] = 9;
        expect(bad, "badversion.gguf", "unsupported GGUF version 9");
        // The data section ends with the last tensor's padding (ggml reads it): cut into tensor 'b'.
        expect(bytes.left(bytes.size() - 40), "truncated-data.gguf", "truncated file: tensor 'b'");
        expect(bytes.left(100), "truncated-header.gguf", "truncated");
        expect(bytes.left(2), "tiny.gguf", "not a GGUF file");
        // The first tensor's offset (u64 right after its type) moved by one alignment unit.
        const gguf::File f = gguf::read(good.toStdString());
        const int at = int(bytes.indexOf(QByteArray("norm"))) + 4 + 4 + 8 + 4;
        bad = bytes;
        bad[at] = 32;
        expect(bad, "badoffset.gguf", "tensor 'norm' has offset 32, expected 0");
        bad = bytes;
        bad[at - 4] = 77; // ggml type 77
        expect(bad, "badtype.gguf", "unknown ggml type 77");

        const CliRun ok = runCli(moewbCli(), {"gguf-info", good});
        QCOMPARE(ok.exitCode, 0);
        QVERIFY(ok.out.contains("test.strings (arr) = [str x 3]"));
        QVERIFY(ok.out.contains("q41"));
    }

    // Round trips. f32 checkpoints and --gguf-type f32 make every unquantized tensor exact, so the
    // whole dequantized model must equal the fake export bit for bit where the grid maps exactly.
    void roundTrip_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("defaults");
        QTest::addColumn<QString>("rules");
        QTest::addColumn<bool>("allExact");
        QTest::addColumn<int>("q4_1Stacks");
        // Mixed: attention 8-bit (Q8_0), experts 4-bit sym (Q4_0), expert 1 of layer 0 asym
        // (its stacks become Q4_1), one expert at 16 bits (its stack becomes f32).
        QTest::newRow("mixtral-mixed")
            << "mixtral" << R"({"bits": 4, "group_size": 32, "method": "rtn"})"
            << R"([{"match": ".*self_attn.*", "bits": 8, "group_size": 64},
                   {"match": "model\\.layers\\.0\\.block_sparse_moe\\.experts\\.1\\..*", "sym": false},
                   {"match": "model\\.layers\\.1\\.block_sparse_moe\\.experts\\.2\\.w2", "bits": 16}])"
            << false << 3;
        QTest::newRow("mixtral-q4") << "mixtral" << R"({"bits": 4, "group_size": -1, "method": "rtn"})"
                                    << "[]" << true << 0;
        QTest::newRow("qwen2_moe-mixed")
            << "qwen2_moe" << R"({"bits": 4, "group_size": 32, "method": "rtn"})"
            << R"([{"match": ".*shared_expert\\..*", "bits": 8, "group_size": 32}, {"match": ".*mlp\\.(gate|up|down)_proj", "bits": 3}])"
            << true << 0;
        // Group size 16: every block spans two groups → re-quantized from the grid (close, not exact).
        QTest::newRow("mixtral-g16") << "mixtral" << R"({"bits": 4, "group_size": 16, "method": "rtn"})"
                                     << "[]" << false << 0;
    }
    void roundTrip()
    {
        QFETCH(QString, arch);
        QFETCH(QString, defaults);
        QFETCH(QString, rules);
        QFETCH(bool, allExact);
        QFETCH(int, q4_1Stacks);
        const QString tag = QString::fromLatin1(QTest::currentDataTag());
        const QString model = generate(m_tmp.path(), arch, arch + "-f32");
        const Plan plan = planFrom(defaults.toStdString(), rules.toStdString());
        const QString fake = m_tmp.path() + "/" + tag + "-fake";
        quantizeToFakeDir(model.toStdString(), plan, {}, {}, fake.toStdString(), true);
        const QString file = m_tmp.path() + "/" + tag + ".gguf";
        GgufExportOptions go;
        go.unquantizedType = "f32";
        const GgufExportResult res = quantizeToGguf(model.toStdString(), plan, {}, {}, file.toStdString(), true, {},
                                                    {}, go);
        QVERIFY(QFile::exists(file + ".moewb_report.json"));
        QCOMPARE(qint64(res.fileBytes), QFileInfo(file).size());
        compareWithReference(file);

        const gguf::File f = gguf::read(file.toStdString());
        QCOMPARE(f.find("general.architecture")->s, std::string(arch == "mixtral" ? "llama" : "qwen2moe"));
        QVERIFY(parsePlanJson(f.find("moewb.plan")->s, "moewb.plan") == plan);
        int q41 = 0;
        for (const auto& t : f.tensors)
            if (t.name.find("_exps") != std::string::npos && t.type == GgmlType::Q4_1)
                ++q41;
        QCOMPARE(q41, q4_1Stacks);
        if (tag == "mixtral-mixed") {
            QCOMPARE(f.findTensor("blk.0.attn_q.weight")->type, GgmlType::Q8_0);
            QCOMPARE(f.findTensor("blk.1.ffn_down_exps.weight")->type, GgmlType::F32);
            QCOMPARE(f.findTensor("blk.1.ffn_up_exps.weight")->type, GgmlType::Q4_0);
            QCOMPARE(f.findTensor("blk.0.ffn_gate_inp.weight")->type, GgmlType::F32);
            QVERIFY(res.requantBlocks == 0 && res.gridBlocks > 0);
        }
        if (tag == "mixtral-g16")
            QVERIFY(res.requantBlocks > 0 && res.gridBlocks == 0);
        if (arch == "qwen2_moe") {
            QCOMPARE(f.findTensor("blk.0.ffn_down_shexp.weight")->type, GgmlType::Q8_0);
            QCOMPARE(f.findTensor("blk.1.ffn_down.weight")->type, GgmlType::Q4_0); // 3 bits → Q4_0 (dense layer 1)
            QVERIFY(f.findTensor("blk.0.attn_q.bias"));
        }

        const QJsonObject cmp = compareDirs(file, model, fake, m_tmp.path() + "/" + tag + "-hf");
        QVERIFY2(cmp["missing_in_a"].toArray().isEmpty() && cmp["missing_in_b"].toArray().isEmpty(),
                 QJsonDocument(cmp).toJson().constData());
        const QJsonObject ts = cmp["tensors"].toObject();
        QVERIFY(!ts.isEmpty());
        int inexact = 0;
        for (auto it = ts.begin(); it != ts.end(); ++it) {
            const QJsonObject t = it.value().toObject();
            QVERIFY2(t["shape_equal"].toBool(), qPrintable(it.key()));
            if (t["equal"].toBool())
                continue;
            ++inexact;
            QVERIFY2(!allExact, qPrintable(it.key() + " differs: " + QString::number(t["max_abs"].toDouble())));
            if (tag == "mixtral-mixed") // only the asymmetric expert: m = −scale·zero rounded to fp16
                QVERIFY2(it.key().contains("layers.0.block_sparse_moe.experts.1."), qPrintable(it.key()));
            QVERIFY2(t["max_abs"].toDouble() <= 0.25 * t["max_ref"].toDouble(), qPrintable(it.key()));
        }
        if (!allExact)
            QVERIFY(inexact > 0);
        const double d = logitDiff(m_tmp.path() + "/" + tag + "-hf", fake, tag);
        if (allExact) {
            QCOMPARE(d, 0.0);
        } else {
            // Not exact: the GGUF's distance from the fake export stays well below the fake export's
            // own distance from the unquantized model (Q4_1: m rounded to fp16 only).
            const double q = logitDiff(model, fake, tag + "-orig");
            qInfo("%s: max |logit| difference GGUF vs fake %.4g, fake vs original %.4g", qPrintable(tag), d, q);
            QVERIFY2(d < (tag == "mixtral-mixed" ? 0.05 : 1.5) * q, qPrintable(QString::number(d)));
        }
    }

    void defaultsAndRefusals()
    {
        const QString model = generate(m_tmp.path(), "mixtral", "mixtral-bf16", {"--dtype", "bf16"});
        const Plan plan = planFrom(R"({"bits": 4, "group_size": 32, "method": "rtn"})");
        const QString file = m_tmp.path() + "/default.gguf";
        const GgufExportResult r = quantizeToGguf(model.toStdString(), plan, {}, {}, file.toStdString(), false);
        const gguf::File f = gguf::read(file.toStdString());
        QCOMPARE(f.findTensor("token_embd.weight")->type, GgmlType::F16);
        QCOMPARE(f.findTensor("output.weight")->type, GgmlType::F16);
        QCOMPARE(f.findTensor("blk.0.attn_norm.weight")->type, GgmlType::F32);
        QCOMPARE(f.find("general.file_type")->asInt(), int64_t(2));
        QCOMPARE(r.fileType, std::string("MOSTLY_Q4_0"));
        QCOMPARE(f.find("tokenizer.ggml.model")->s, std::string("gpt2"));
        QCOMPARE(f.find("tokenizer.ggml.pre")->s, std::string("gpt-2"));
        QCOMPARE(qint64(f.find("tokenizer.ggml.tokens")->items.size()), qint64(loadConfig(model.toStdString()).vocabSize));
        // bf16 checkpoint: the dequantized GGUF equals the fake export after rounding to bf16.
        const QString fake = m_tmp.path() + "/default-fake";
        quantizeToFakeDir(model.toStdString(), plan, {}, {}, fake.toStdString(), false);
        const QJsonObject ts = compareDirs(file, model, fake, m_tmp.path() + "/default-hf")["tensors"].toObject();
        for (auto it = ts.begin(); it != ts.end(); ++it)
            QVERIFY2(it.value().toObject()["equal_bf16"].toBool() || it.key().contains("embed")
                         || it.key().contains("lm_head"),
                     qPrintable(it.key()));

        // Overwrite refused without force; the file is untouched.
        const QByteArray before = readAll(file);
        std::string err = errorOf([&] { quantizeToGguf(model.toStdString(), plan, {}, {}, file.toStdString(), false); });
        QCOMPARE(err, file.toStdString() + ": already exists");
        QCOMPARE(readAll(file), before);
        // Unsupported architecture.
        const QString dense = generate(m_tmp.path(), "llama", "llama");
        err = errorOf([&] { quantizeToGguf(dense.toStdString(), plan, {}, {}, (m_tmp.path() + "/o.gguf").toStdString(), false); });
        QVERIFY2(err.find("GGUF export supports MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, "
                          "OlmoeForCausalLM and DeepseekForCausalLM, not LlamaForCausalLM") != std::string::npos,
                 err.c_str());
        QVERIFY(!QFile::exists(m_tmp.path() + "/o.gguf"));
        QVERIFY(QDir(m_tmp.path()).entryList({"*.tmp.*"}).isEmpty());

        // CLI: --format gguf writes the file and its report; gguf-info reads it.
        const QString planFile = m_tmp.path() + "/plan.json";
        savePlan(plan, planFile.toStdString());
        const QString out = m_tmp.path() + "/cli.gguf";
        CliRun q = runCli(moewbCli(), {"quantize", model, "--plan", planFile, "--out", out, "--format", "gguf",
                                       "--gguf-type", "bf16"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        QVERIFY(QFile::exists(out + ".moewb_report.json"));
        QCOMPARE(gguf::read(out.toStdString()).findTensor("token_embd.weight")->type, GgmlType::BF16);
        q = runCli(moewbCli(), {"quantize", model, "--plan", planFile, "--out", out, "--format", "gguf"});
        QCOMPARE(q.exitCode, 1);
        QVERIFY2(q.err.contains("already exists"), q.err.constData());
        const CliRun info = runCli(moewbCli(), {"gguf-info", out});
        QCOMPARE(info.exitCode, 0);
        QVERIFY(info.out.contains("general.architecture (str) = \"llama\""));
        QVERIFY(info.out.contains("blk.0.ffn_gate_exps.weight"));
    }
};

QTEST_GUILESS_MAIN(TestExportGguf)
#include "tst_export_gguf.moc"
