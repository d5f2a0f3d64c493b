// SPDX-License-Identifier: MIT
// ggml quant types of the torch-free GGUF unit (#26): Q2_K … Q6_K, IQ4_NL, Q4_0 … Q8_0.
//   * layouts: bytes per block and bits per weight;
//   * hand-built blocks: a few fields set by hand in each layout, values computed by hand;
//   * golden values from an independent decoder, llama.cpp's gguf-py (tests/data/gguf/
//     quant_golden.json; live against gguf-py itself when MOEWB_GGUF_PY points at one);
//   * golden bytes from llama.cpp's own quantizer (tests/data/gguf/ggml_quant_golden.bin);
//   * quantize → dequantize round trips: error bounds, ordering by bits, importance weighting,
//     degenerate rows; the llama-quantize fallback map; non-finite scales.
#include "testutil.h"

#include "gguf/gguf_quants.h"
#include "moewb/core/error.h"

#include <QProcess>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace moewb;
using moewb::gguf::GgmlType;

namespace {

const GgmlType kQuantTypes[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,   GgmlType::Q5_K,
                                GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::Q4_0, GgmlType::Q4_1,
                                GgmlType::Q5_0, GgmlType::Q5_1,   GgmlType::Q8_0};

void half(std::vector<uint8_t>& b, size_t at, uint16_t h)
{
    b[at] = uint8_t(h & 0xFF);
    b[at + 1] = uint8_t(h >> 8);
}

std::vector<float> decode(GgmlType t, const std::vector<uint8_t>& bytes)
{
    const int64_t n = int64_t(bytes.size()) / gguf::ggmlTypeSize(t) * gguf::ggmlBlockSize(t);
    std::vector<float> out(size_t(n), -12345.0f);
    gguf::dequantizeRow(t, bytes.data(), out.data(), n);
    return out;
}

std::vector<uint8_t> encode(GgmlType t, const std::vector<float>& x, const float* imp = nullptr)
{
    std::vector<uint8_t> out(size_t(gguf::ggmlRowBytes(t, int64_t(x.size()))), 0xEE);
    gguf::quantizeRow(t, x.data(), out.data(), int64_t(x.size()), imp);
    return out;
}

std::vector<float> gaussianRow(std::mt19937& rng, int n, float sigma = 1.0f)
{
    std::normal_distribution<float> nd(0.0f, sigma);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x)
        v = nd(rng);
    return x;
}

/// sqrt(Σ w·(a − b)² / Σ w), w = 1 when weights is null.
double rmse(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>* weights = nullptr)
{
    double s = 0.0, ws = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double w = weights ? (*weights)[i] : 1.0;
        s += w * (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        ws += w;
    }
    return std::sqrt(s / ws);
}

std::vector<uint8_t> fromHex(const QString& hex)
{
    const QByteArray b = QByteArray::fromHex(hex.toLatin1());
    return std::vector<uint8_t>(b.begin(), b.end());
}

/// Round-trip error of `rows` Gaussian rows of width n (σ = 1), optionally importance-weighted.
struct TripError {
    double plain = 0.0;    ///< RMSE
    double weighted = 0.0; ///< RMSE weighted by the importance used for scoring
};

TripError tripError(GgmlType t, int rows, int n, bool useImportance, unsigned seed)
{
    std::mt19937 rng(seed);
    std::lognormal_distribution<float> ln(0.0f, 1.5f);
    std::vector<float> imp(static_cast<size_t>(n));
    for (float& v : imp)
        v = ln(rng);
    std::vector<float> all, back;
    for (int r = 0; r < rows; ++r) {
        const std::vector<float> x = gaussianRow(rng, n);
        const std::vector<float> y = decode(t, encode(t, x, useImportance ? imp.data() : nullptr));
        all.insert(all.end(), x.begin(), x.end());
        back.insert(back.end(), y.begin(), y.end());
    }
    std::vector<float> w;
    for (int r = 0; r < rows; ++r)
        w.insert(w.end(), imp.begin(), imp.end());
    return {rmse(all, back), rmse(all, back, &w)};
}

} // namespace

class TestGgufKQuants : public QObject {
    Q_OBJECT
private slots:
    void layouts_data();
    void layouts();
    void handBuiltBlocks_data();
    void handBuiltBlocks();
    void goldenGgufPy();
    void liveGgufPy();
    void goldenGgmlBytes();
    void roundTrip_data();
    void roundTrip();
    void errorFallsWithBits();
    void importanceLowersWeightedError();
    void degenerateRows_data();
    void degenerateRows();
    void fallbackAndNames();
    void nonFiniteScales();
    void nonFiniteInputs();
};

void TestGgufKQuants::layouts_data()
{
    QTest::addColumn<int>("type");
    QTest::addColumn<int>("block");
    QTest::addColumn<int>("bytes");
    QTest::addColumn<double>("bpw");
    QTest::newRow("Q2_K") << int(GgmlType::Q2_K) << 256 << 84 << 2.625;
    QTest::newRow("Q3_K") << int(GgmlType::Q3_K) << 256 << 110 << 3.4375;
    QTest::newRow("Q4_K") << int(GgmlType::Q4_K) << 256 << 144 << 4.5;
    QTest::newRow("Q5_K") << int(GgmlType::Q5_K) << 256 << 176 << 5.5;
    QTest::newRow("Q6_K") << int(GgmlType::Q6_K) << 256 << 210 << 6.5625;
    QTest::newRow("IQ4_NL") << int(GgmlType::IQ4_NL) << 32 << 18 << 4.5;
    QTest::newRow("Q4_0") << int(GgmlType::Q4_0) << 32 << 18 << 4.5;
    QTest::newRow("Q4_1") << int(GgmlType::Q4_1) << 32 << 20 << 5.0;
    QTest::newRow("Q5_0") << int(GgmlType::Q5_0) << 32 << 22 << 5.5;
    QTest::newRow("Q5_1") << int(GgmlType::Q5_1) << 32 << 24 << 6.0;
    QTest::newRow("Q8_0") << int(GgmlType::Q8_0) << 32 << 34 << 8.5;
}

void TestGgufKQuants::layouts()
{
    QFETCH(int, type);
    QFETCH(int, block);
    QFETCH(int, bytes);
    QFETCH(double, bpw);
    const GgmlType t = GgmlType(type);
    QVERIFY(gguf::ggmlTypeKnown(uint32_t(type)));
    QVERIFY(gguf::ggmlCanQuantize(t));
    QVERIFY(gguf::ggmlCanDequantize(t));
    QCOMPARE(gguf::ggmlBlockSize(t), int64_t(block));
    QCOMPARE(gguf::ggmlTypeSize(t), int64_t(bytes));
    QCOMPARE(gguf::ggmlRowBytes(t, 1024), int64_t(1024 / block * bytes));
    QCOMPARE(gguf::ggmlBitsPerWeight(t), bpw);
    QCOMPARE(QString(gguf::ggmlTypeName(t)), QString(QTest::currentDataTag()));
    // every encoder fills exactly its bytes
    std::mt19937 rng(3);
    QCOMPARE(encode(t, gaussianRow(rng, 512)).size(), size_t(512 / block * bytes));
}

// Each row: a block of zeros with a few fields set by hand (layouts in ggml-common.h), and some
// values worked out by hand from the format's formula. "h:" lines give fp16 bit patterns:
// 0x3C00 = 1, 0x3800 = 0.5, 0x3400 = 0.25, 0x3000 = 0.125, 0x4000 = 2, 0xBC00 = −1.
void TestGgufKQuants::handBuiltBlocks_data()
{
    QTest::addColumn<int>("type");
    QTest::addColumn<QVector<int>>("setBytes"); // pairs: offset, value
    QTest::addColumn<QVector<int>>("at");       // element indices
    QTest::addColumn<QVector<double>>("want");  // their values
    using VI = QVector<int>;
    using VD = QVector<double>;
    // Q4_0: d = 0.5; code 12 − 8 = 4 → 2; code 3 − 8 → −2.5; codes 8 → 0; untouched code 0 → −4.
    QTest::newRow("Q4_0") << int(GgmlType::Q4_0) << VI{0, 0x00, 1, 0x38, 2, 0x3C, 3, 0x88}
                          << VI{0, 16, 1, 17, 5} << VD{2.0, -2.5, 0.0, 0.0, -4.0};
    // Q4_1: d = 0.25, m = −1; code 0 → −1; code 15 → 2.75; code 0 elsewhere → −1.
    QTest::newRow("Q4_1") << int(GgmlType::Q4_1) << VI{1, 0x34, 3, 0xBC, 5, 0xF0} << VI{1, 17, 0, 31}
                          << VD{-1.0, 2.75, -1.0, -1.0};
    // Q5_0: d = 1, qh bits 0 and 17; code 2|16 = 18 → 2; 0 → −16; 15|16 = 31 → 15; 0 → −16.
    QTest::newRow("Q5_0") << int(GgmlType::Q5_0) << VI{1, 0x3C, 2, 0x01, 4, 0x02, 6, 0x02, 7, 0xF0}
                          << VI{0, 16, 17, 1} << VD{2.0, -16.0, 15.0, -16.0};
    // Q5_1: d = 0.5, m = 1, qh bit 31; code 0 → 1; code 7|16 = 23 → 12.5.
    QTest::newRow("Q5_1") << int(GgmlType::Q5_1) << VI{1, 0x38, 3, 0x3C, 7, 0x80, 8 + 15, 0x70} << VI{15, 31, 30}
                          << VD{1.0, 12.5, 1.0};
    // Q8_0: d = 0.125; int8 −127 → −15.875; 16 → 2.
    QTest::newRow("Q8_0") << int(GgmlType::Q8_0) << VI{1, 0x30, 2, 0x81, 33, 0x10} << VI{0, 31, 7}
                          << VD{-15.875, 2.0, 0.0};
    // IQ4_NL: d = 2; index 0 → −127·2, index 15 → 113·2, index 8 → 1·2, index 0 → −254.
    QTest::newRow("IQ4_NL") << int(GgmlType::IQ4_NL) << VI{1, 0x40, 2, 0xF0, 7, 0x88} << VI{0, 16, 5, 21, 1}
                            << VD{-254.0, 226.0, 2.0, 2.0, -254.0};
    // Q2_K: d = 1, dmin = 0.5; sub-block 0 scale 3 min 2, sub-block 15 scale 1 min 15.
    // value 0: code 3 → 3·3 − 0.5·2 = 8; value 1: code 0 → −1; value 32 (sub-block 2, all 0) → 0;
    // value 255: byte 16 + 32 + 31, bits 6–7 = 2 → 1·2 − 0.5·15 = −5.5.
    QTest::newRow("Q2_K") << int(GgmlType::Q2_K) << VI{0, 0x23, 15, 0xF1, 16, 0x03, 79, 0x80, 81, 0x3C, 83, 0x38}
                          << VI{0, 1, 32, 255} << VD{8.0, -1.0, 0.0, -5.5};
    // Q3_K: d = 0.5. Scale 0 stored 33 (low 1 in byte 96, high 2 in byte 104) → 1; scale 9 stored 63
    // (low 15 in byte 97's high nibble, high 3 in byte 105 bits 4–5) → 31; others stored 0 → −32.
    // value 0: low 2 + hmask[0] bit 0 → code 6 → 0.5·1·2 = 1; value 1: code 1 → 0.5·1·(−3) = −1.5;
    // value 144: low 3 (byte 80) + hmask[16] bit 4 → code 7 → 0.5·31·3 = 46.5;
    // value 17: code 0 in sub-block 1 → 0.5·(−32)·(−4) = 64.
    QTest::newRow("Q3_K") << int(GgmlType::Q3_K)
                          << VI{0, 0x01, 16, 0x10, 32, 0x02, 33, 0x01, 80, 0x03, 96, 0x01, 97, 0xF0,
                                104, 0x02, 105, 0x30, 109, 0x38}
                          << VI{0, 1, 144, 17} << VD{1.0, -1.5, 46.5, 64.0};
    // Q4_K: d = 1, dmin = 0.25. Sub-block 0: scale 5 (byte 4), min 4 (byte 8). Sub-block 5: scale
    // 37 = 5 + 2·16, min 50 = 2 + 3·16: byte 13 = 0x25, top bits in byte 5 (0x80) and byte 9 (0xC0).
    // value 0: code 9 → 5·9 − 0.25·4 = 44; value 160: high nibble of byte 80 = 7 → 37·7 − 12.5 =
    // 246.5; value 32 (sub-block 1: the top bits must not leak into scale 1 / min 1) → 0.
    QTest::newRow("Q4_K") << int(GgmlType::Q4_K)
                          << VI{1, 0x3C, 3, 0x34, 4, 5, 8, 4, 13, 0x25, 5, 0x80, 9, 0xC0, 16, 0x09, 80, 0x70}
                          << VI{0, 160, 32} << VD{44.0, 246.5, 0.0};
    // Q5_K: d = 0.5, dmin = 1. Sub-block 0: scale 2, min 1; sub-block 7: scale 63 (byte 15 = 0x0F,
    // top bits 0xC0 in byte 7), min 0. value 0: low 3 + qh[0] bit 0 → 19 → 0.5·2·19 − 1 = 18;
    // value 255: byte 175 high nibble 10 + qh[31] bit 7 → 26 → 0.5·63·26 = 819; value 32 → 0.
    QTest::newRow("Q5_K") << int(GgmlType::Q5_K)
                          << VI{1, 0x38, 3, 0x3C, 4, 2, 8, 1, 15, 0x0F, 7, 0xC0, 16, 0x01, 47, 0x80, 48, 0x03, 175, 0xA0}
                          << VI{0, 255, 32} << VD{18.0, 819.0, 0.0};
    // Q6_K: d = 0.25, scale 0 = −3, scale 13 = 100. value 0: ql[0] low 5, qh[0] bits 0–1 = 2 → 37 −
    // 32 = 5 → 0.25·(−3)·5 = −3.75; value 1: code 0 → 0.25·(−3)·(−32) = 24; value 208: ql[80]
    // high nibble 15, qh byte 176 bits 4–5 = 3 → 63 − 32 = 31 → 0.25·100·31 = 775.
    QTest::newRow("Q6_K") << int(GgmlType::Q6_K)
                          << VI{0, 0x05, 128, 0x02, 80, 0xF0, 176, 0x30, 192, 0xFD, 205, 100, 209, 0x34}
                          << VI{0, 1, 208} << VD{-3.75, 24.0, 775.0};
}

void TestGgufKQuants::handBuiltBlocks()
{
    QFETCH(int, type);
    QFETCH(QVector<int>, setBytes);
    QFETCH(QVector<int>, at);
    QFETCH(QVector<double>, want);
    const GgmlType t = GgmlType(type);
    std::vector<uint8_t> b(size_t(gguf::ggmlTypeSize(t)), 0);
    for (int k = 0; k + 1 < setBytes.size(); k += 2)
        b[size_t(setBytes[k])] = uint8_t(setBytes[k + 1]);
    const std::vector<float> v = decode(t, b);
    QCOMPARE(v.size(), size_t(gguf::ggmlBlockSize(t)));
    for (int k = 0; k < at.size(); ++k)
        QVERIFY2(v[size_t(at[k])] == float(want[k]),
                 qPrintable(QString("value %1 = %2, want %3").arg(at[k]).arg(double(v[size_t(at[k])])).arg(want[k])));
}

void TestGgufKQuants::goldenGgufPy()
{
    const QJsonObject golden =
        QJsonDocument::fromJson(test::readAll(test::sourcePath("tests/data/gguf/quant_golden.json"))).object();
    const QJsonObject types = golden["types"].toObject();
    QCOMPARE(types.size(), int(std::size(kQuantTypes)));
    for (GgmlType t : kQuantTypes) {
        const QJsonObject g = types[gguf::ggmlTypeName(t)].toObject();
        const std::vector<uint8_t> blocks = fromHex(g["blocks"].toString());
        const std::vector<uint8_t> want = fromHex(g["values_f32"].toString());
        QVERIFY(!blocks.empty());
        const std::vector<float> got = decode(t, blocks);
        QCOMPARE(got.size() * 4, want.size());
        for (size_t i = 0; i < got.size(); ++i) {
            float w;
            std::memcpy(&w, want.data() + 4 * i, 4);
            QVERIFY2(got[i] == w, qPrintable(QString("%1 value %2: %3, gguf-py %4")
                                                  .arg(gguf::ggmlTypeName(t)).arg(i).arg(double(got[i])).arg(double(w))));
        }
    }
}

void TestGgufKQuants::liveGgufPy()
{
    const QString script = test::sourcePath("tests/reference/gguf_quant_golden.py");
    QProcess probe;
    probe.start(QString::fromLatin1(test::pythonPath()), {script, "available"});
    probe.waitForFinished(60000);
    if (probe.exitStatus() != QProcess::NormalExit || probe.exitCode() != 0)
        QSKIP("llama.cpp's gguf-py not available (set MOEWB_GGUF_PY to a checkout's gguf-py/ to run this)");
    std::mt19937 rng(11);
    std::lognormal_distribution<float> ln(0.0f, 1.0f);
    for (GgmlType t : kQuantTypes) {
        for (int useImp = 0; useImp < 2; ++useImp) {
            std::vector<uint8_t> blocks;
            std::vector<float> ours;
            for (int r = 0; r < 4; ++r) {
                const std::vector<float> x = gaussianRow(rng, 512, 0.02f);
                std::vector<float> imp(x.size());
                for (float& v : imp)
                    v = ln(rng);
                const std::vector<uint8_t> q = encode(t, x, useImp ? imp.data() : nullptr);
                const std::vector<float> y = decode(t, q);
                blocks.insert(blocks.end(), q.begin(), q.end());
                ours.insert(ours.end(), y.begin(), y.end());
            }
            QProcess p;
            p.start(QString::fromLatin1(test::pythonPath()), {script, "dequant", gguf::ggmlTypeName(t)});
            p.write(reinterpret_cast<const char*>(blocks.data()), qint64(blocks.size()));
            p.closeWriteChannel();
            QVERIFY(p.waitForFinished(120000));
            QCOMPARE(p.exitCode(), 0);
            const QByteArray out = p.readAllStandardOutput();
            QCOMPARE(size_t(out.size()), ours.size() * 4);
            for (size_t i = 0; i < ours.size(); ++i) {
                float w;
                std::memcpy(&w, out.constData() + 4 * i, 4);
                QVERIFY2(ours[i] == w, qPrintable(QString("%1 value %2").arg(gguf::ggmlTypeName(t)).arg(i)));
            }
        }
    }
}

// tests/data/gguf/ggml_quant_golden.bin (tests/reference/ggml_quant_golden.c): real and synthetic
// rows quantized by llama.cpp's ggml_quantize_chunk, without and with the row's importance.
void TestGgufKQuants::goldenGgmlBytes()
{
    const QByteArray file = test::readAll(test::sourcePath("tests/data/gguf/ggml_quant_golden.bin"));
    const char* p = file.constData();
    const char* const end = p + file.size();
    auto take = [&](void* out, size_t n) {
        QVERIFY2(p + n <= end, "golden file truncated");
        std::memcpy(out, p, n);
        p += n;
    };
    uint32_t magic = 0, version = 0, rows = 0;
    take(&magic, 4);
    take(&version, 4);
    take(&rows, 4);
    QCOMPARE(std::string(reinterpret_cast<const char*>(&magic), 4), std::string("MWQG"));
    QCOMPARE(version, 1u);
    QVERIFY(rows >= 8);
    int compared = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        uint32_t n = 0, types = 0;
        take(&n, 4);
        std::vector<float> x(n), imp(n);
        take(x.data(), 4 * n);
        take(imp.data(), 4 * n);
        take(&types, 4);
        for (uint32_t k = 0; k < types; ++k) {
            uint32_t id = 0;
            take(&id, 4);
            const GgmlType t = GgmlType(id);
            for (int withImp = 0; withImp < 2; ++withImp) {
                uint32_t bytes = 0;
                take(&bytes, 4);
                std::vector<uint8_t> want(bytes);
                take(want.data(), bytes);
                const std::vector<uint8_t> got = encode(t, x, withImp ? imp.data() : nullptr);
                QVERIFY2(got == want, qPrintable(QString("row %1 (%2 wide), %3%4: bytes differ from llama.cpp's")
                                                     .arg(r).arg(n).arg(gguf::ggmlTypeName(t))
                                                     .arg(withImp ? " with importance" : "")));
                ++compared;
            }
        }
    }
    QCOMPARE(p, end);
    qInfo("%d rows x types x importance: identical to llama.cpp's quantizer", compared);
}

void TestGgufKQuants::roundTrip_data()
{
    QTest::addColumn<int>("type");
    QTest::addColumn<bool>("importance");
    QTest::addColumn<double>("maxRmse"); // for σ = 1 Gaussian rows
    const struct {
        GgmlType t;
        double bound;
    } rows[] = {// about 1.25 × what ggml's methods give (σ = 1: Q4_K ≈ 0.072, Q6_K ≈ 0.018)
                {GgmlType::Q2_K, 0.38}, {GgmlType::Q3_K, 0.20}, {GgmlType::Q4_K, 0.10}, {GgmlType::Q5_K, 0.05},
                {GgmlType::Q6_K, 0.025}, {GgmlType::IQ4_NL, 0.10}, {GgmlType::Q4_0, 0.11}, {GgmlType::Q4_1, 0.10},
                {GgmlType::Q5_0, 0.055}, {GgmlType::Q5_1, 0.05}, {GgmlType::Q8_0, 0.007}};
    for (const auto& r : rows)
        for (bool imp : {false, true})
            QTest::newRow(qPrintable(QString("%1%2").arg(gguf::ggmlTypeName(r.t)).arg(imp ? " imp" : "")))
                << int(r.t) << imp << r.bound;
}

void TestGgufKQuants::roundTrip()
{
    QFETCH(int, type);
    QFETCH(bool, importance);
    QFETCH(double, maxRmse);
    const TripError e = tripError(GgmlType(type), 16, 1024, importance, 7);
    qInfo("%s%s: RMSE %.5f, importance-weighted %.5f", gguf::ggmlTypeName(GgmlType(type)), importance ? " imp" : "",
          e.plain, e.weighted);
    QVERIFY2(e.plain < maxRmse, qPrintable(QString("RMSE %1 ≥ %2").arg(e.plain).arg(maxRmse)));
    QVERIFY(e.plain > 0.0);
}

void TestGgufKQuants::errorFallsWithBits()
{
    double last = 1e9;
    for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
        const double e = tripError(t, 8, 1024, false, 9).plain;
        QVERIFY2(e < last, gguf::ggmlTypeName(t));
        last = e;
    }
    // the same bits: the non-linear levels beat the uniform ones; a min beats none
    QVERIFY(tripError(GgmlType::IQ4_NL, 8, 1024, false, 9).plain < tripError(GgmlType::Q4_0, 8, 1024, false, 9).plain);
    QVERIFY(tripError(GgmlType::Q5_1, 8, 1024, false, 9).plain < tripError(GgmlType::Q5_0, 8, 1024, false, 9).plain);
}

void TestGgufKQuants::importanceLowersWeightedError()
{
    for (GgmlType t : kQuantTypes) {
        if (t == GgmlType::Q8_0)
            continue; // ggml's Q8_0 has no weighted variant
        const double without = tripError(t, 16, 1024, false, 5).weighted;
        const double with = tripError(t, 16, 1024, true, 5).weighted;
        qInfo("%s: importance-weighted RMSE %.5f without importance, %.5f with", gguf::ggmlTypeName(t), without, with);
        QVERIFY2(with < without, gguf::ggmlTypeName(t));
    }
}

void TestGgufKQuants::degenerateRows_data()
{
    QTest::addColumn<QString>("kind");
    for (const char* k : {"zeros", "negative zeros", "constant", "negative constant", "one outlier", "tiny", "ramp"})
        QTest::newRow(k) << QString(k);
}

void TestGgufKQuants::degenerateRows()
{
    QFETCH(QString, kind);
    std::vector<float> x(512, 0.0f);
    for (size_t i = 0; i < x.size(); ++i) {
        if (kind == "negative zeros")
            x[i] = -0.0f;
        else if (kind == "constant")
            x[i] = 0.75f;
        else if (kind == "negative constant")
            x[i] = -0.75f;
        else if (kind == "one outlier")
            x[i] = i == 77 ? 1000.0f : 0.01f * float(int(i % 7) - 3);
        else if (kind == "tiny")
            x[i] = 1e-20f * float(int(i % 5) - 2);
        else if (kind == "ramp")
            x[i] = float(i) / 512.0f - 0.5f;
    }
    const std::vector<float> imp(x.size(), 1.0f);
    for (GgmlType t : kQuantTypes) {
        for (const float* w : {static_cast<const float*>(nullptr), imp.data()}) {
            const std::vector<float> y = decode(t, encode(t, x, w));
            const QString what = QString("%1%2").arg(gguf::ggmlTypeName(t)).arg(w ? " imp" : "");
            double maxAbs = 0.0;
            for (float v : x)
                maxAbs = std::max(maxAbs, double(std::fabs(v)));
            for (size_t i = 0; i < y.size(); ++i) {
                QVERIFY2(std::isfinite(y[i]), qPrintable(what));
                // never further from the value than the row's largest magnitude (+1 ulp of fp16)
                QVERIFY2(std::fabs(double(y[i]) - x[i]) <= maxAbs * 1.001 + 1e-7, qPrintable(what + " " + kind));
            }
            if (kind.endsWith("zeros"))
                for (float v : y)
                    QVERIFY2(v == 0.0f, qPrintable(what));
            if (kind.endsWith("constant")) // every type represents a constant row within 2 %
                QVERIFY2(rmse(x, y) < 0.02 * 0.75, qPrintable(what + QString(": %1").arg(rmse(x, y))));
            if (kind == "one outlier") // the outlier itself survives within 2 %
                QVERIFY2(std::fabs(y[77] - 1000.0f) < 20.0f, qPrintable(what + QString(": %1").arg(double(y[77]))));
        }
    }
}

void TestGgufKQuants::fallbackAndNames()
{
    using gguf::rowFallbackType;
    // 1408: Qwen1.5-MoE / DeepSeek-MoE expert width, a multiple of 32 but not of 256
    QCOMPARE(rowFallbackType(GgmlType::Q2_K, 1408), GgmlType::IQ4_NL);
    QCOMPARE(rowFallbackType(GgmlType::Q3_K, 1408), GgmlType::IQ4_NL);
    QCOMPARE(rowFallbackType(GgmlType::Q4_K, 1408), GgmlType::Q5_0);
    QCOMPARE(rowFallbackType(GgmlType::Q5_K, 1408), GgmlType::Q5_1);
    QCOMPARE(rowFallbackType(GgmlType::Q6_K, 1408), GgmlType::Q8_0);
    QCOMPARE(rowFallbackType(GgmlType::Q4_K, 2048), GgmlType::Q4_K);
    QCOMPARE(rowFallbackType(GgmlType::Q4_K, 100), GgmlType::F16);
    QCOMPARE(rowFallbackType(GgmlType::Q8_0, 100), GgmlType::F16);
    QCOMPARE(rowFallbackType(GgmlType::F32, 100), GgmlType::F32);
    GgmlType t = GgmlType::F32;
    QVERIFY(gguf::ggmlTypeFromName("q4_k", t));
    QCOMPARE(t, GgmlType::Q4_K);
    QVERIFY(gguf::ggmlTypeFromName("IQ4_NL", t));
    QCOMPARE(t, GgmlType::IQ4_NL);
    QVERIFY(gguf::ggmlTypeFromName("bf16", t));
    QCOMPARE(t, GgmlType::BF16);
    QVERIFY(!gguf::ggmlTypeFromName("q8_k", t)); // known to the reader, not encoded
    QVERIFY(!gguf::ggmlTypeFromName("q4_k_m", t));
}

void TestGgufKQuants::nonFiniteScales()
{
    for (GgmlType t : kQuantTypes) {
        std::mt19937 rng(1);
        const std::vector<float> x = gaussianRow(rng, 512);
        std::vector<uint8_t> q = encode(t, x);
        QCOMPARE(gguf::firstNonFiniteScaleBlock(t, q.data(), 512), int64_t(-1));
        // overwrite the last fp16 field of the second block with NaN, then +inf
        const size_t bytes = size_t(gguf::ggmlTypeSize(t));
        const size_t field = t == GgmlType::Q2_K ? 82
                           : t == GgmlType::Q3_K ? 108
                           : t == GgmlType::Q6_K ? 208
                           : (t == GgmlType::Q4_1 || t == GgmlType::Q5_1 || t == GgmlType::Q4_K || t == GgmlType::Q5_K) ? 2
                                                                                                                      : 0;
        half(q, bytes + field, 0x7E00);
        QCOMPARE(gguf::firstNonFiniteScaleBlock(t, q.data(), 512), int64_t(1));
        half(q, bytes + field, 0x7C00);
        QCOMPARE(gguf::firstNonFiniteScaleBlock(t, q.data(), 512), int64_t(1));
        half(q, bytes + field, 0x7BFF); // 65504: finite
        QCOMPARE(gguf::firstNonFiniteScaleBlock(t, q.data(), 512), int64_t(-1));
    }
    std::vector<uint8_t> f(64, 0xFF);
    QCOMPARE(gguf::firstNonFiniteScaleBlock(GgmlType::F16, f.data(), 32), int64_t(-1));
}

void TestGgufKQuants::nonFiniteInputs()
{
    std::mt19937 rng(2);
    std::vector<float> x = gaussianRow(rng, 256);
    std::vector<float> imp(256, 1.0f);
    int refusedHuge = 0, refusedImportance = 0;
    for (GgmlType t : kQuantTypes) {
        auto message = [&](const std::vector<float>& row, const float* w) -> std::string {
            try {
                (void)encode(t, row, w);
            } catch (const InputError& e) {
                return e.what();
            }
            return {};
        };
        std::vector<float> bad = x;
        bad[17] = std::nanf("");
        QVERIFY2(QString::fromStdString(message(bad, nullptr)).contains("value 17 of the row is nan"), gguf::ggmlTypeName(t));
        bad[17] = -INFINITY;
        QVERIFY(QString::fromStdString(message(bad, imp.data())).contains(gguf::ggmlTypeName(t)));
        std::vector<float> badImp = imp;
        badImp[3] = -1.0f;
        QVERIFY(QString::fromStdString(message(x, badImp.data())).contains("importance 3"));
        QVERIFY(message(x, nullptr).empty());
        // Finite, but beyond what an fp16 scale holds: refused, naming the block (found by fuzz_ggml_quant).
        std::vector<float> huge = gaussianRow(rng, 512);
        huge[300] = 1e30f;
        const std::string m = message(huge, nullptr);
        const int64_t block = 300 / gguf::ggmlBlockSize(t);
        // (Q3_K and Q6_K scale sub-blocks so that 1e30 gives finite scales and finite, if useless, values.)
        if (m.empty()) {
            for (float v : decode(t, encode(t, huge)))
                QVERIFY(std::isfinite(v));
        } else {
            ++refusedHuge;
            QVERIFY2(QString::fromStdString(m).contains(QString("block %1 of the row gets a non-finite scale").arg(block))
                         && QString::fromStdString(m).contains("1e+30"),
                     m.c_str());
        }
        // A finite importance so large that the weighted sums overflow: refused, or finite values.
        std::vector<float> hugeImp(256, 1.0f);
        hugeImp[25] = 1.7e38f;
        const std::string mi = message(x, hugeImp.data());
        if (mi.empty()) {
            for (float v : decode(t, encode(t, x, hugeImp.data())))
                QVERIFY(std::isfinite(v));
        } else {
            ++refusedImportance;
            QVERIFY2(QString::fromStdString(mi).contains("non-finite scale") && QString::fromStdString(mi).contains("1.7e+38"),
                     mi.c_str());
        }
    }
    QCOMPARE(refusedHuge, 9);       // all but Q3_K and Q6_K
    QCOMPARE(refusedImportance, 5); // Q2_K, Q3_K, Q4_K, Q5_K, IQ4_NL: their weighted scale searches overflow
    // the float types store any value
    x[0] = std::nanf("");
    QVERIFY(std::isnan(decode(GgmlType::F32, encode(GgmlType::F32, x))[0]));
}

QTEST_APPLESS_MAIN(TestGgufKQuants)
#include "tst_gguf_kquants.moc"
