// SPDX-License-Identifier: MIT
// safetensors reader, writer and sharded checkpoints against hand-computed bytes and the golden
// files written by tests/data/safetensors/make_golden.py (an independent Python writer).
#include "test_paths.h"
#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"

#include <QtTest>

#include <cstring>
#include <functional>
#include <thread>
#include <string>
#include <vector>

using namespace moewb;

namespace {

const QString kDataDir = moewb::test::sourceDir() + QStringLiteral("/tests/data/safetensors");

std::string golden(const char* name)
{
    return (kDataDir + QLatin1Char('/') + QLatin1String(name)).toStdString();
}

/// Copies an element out of a possibly unaligned mapping, as real consumers must.
template <typename T>
T at(const uint8_t* p, size_t i)
{
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    return v;
}

QByteArray le64(uint64_t n)
{
    QByteArray b(8, '\0');
    for (int i = 0; i < 8; ++i)
        b[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    return b;
}

/// A file as another writer might produce it: N, the header exactly as given, then data.
QByteArray fileBytes(const QByteArray& header, const QByteArray& data)
{
    return le64(static_cast<uint64_t>(header.size())) + header + data;
}

template <typename T>
QByteArray bytesOf(std::initializer_list<T> values)
{
    QByteArray b;
    for (T v : values)
        b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return b;
}

void writeFile(const QString& path, const QByteArray& bytes)
{
    QFile f(path);
    QVERIFY2(f.open(QIODevice::WriteOnly | QIODevice::Truncate), qPrintable(path));
    QCOMPARE(f.write(bytes), bytes.size());
}

QByteArray readFile(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return f.readAll();
}

/// Runs fn, which must throw E; returns its what() (empty and a test failure otherwise).
template <typename E>
std::string errorOf(const std::function<void()>& fn)
{
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("WRONG EXCEPTION TYPE: ") + e.what();
    }
    return "NO EXCEPTION";
}

bool contains(const std::string& hay, const std::string& needle)
{
    return hay.find(needle) != std::string::npos;
}

#define EXPECT_MSG(msg, needle)                                                                    \
    QVERIFY2(contains((msg), (needle)), qPrintable(QString::fromStdString("message \"" + (msg) + \
                                                                          "\" lacks \"" + (needle) + "\"")))

std::vector<std::string> fileNames(const QString& dir)
{
    std::vector<std::string> out;
    for (const QString& s : QDir(dir).entryList(QDir::Files | QDir::NoDotAndDotDot, QDir::Name))
        out.push_back(s.toStdString());
    return out;
}

} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT

private slots:
    void dtypeTable();
    void readHandBuilt();
    void readScalarEmptyAndNoTensors();
    void readGolden();
    void readGoldenUnaligned();
    void malformed_data();
    void malformed();
    void openMissingFileIsIoError();
    void writerExactBytes();
    void writerMatchesGolden();
    void writerRoundTripAllDtypes();
    void writerEmptyAndConcurrent();
    void writerErrors();
    void writerAbandonLeavesNoTrace();
    void checkpointSharded();
    void checkpointSingleFileAndGlob();
    void checkpointErrors();
};

void TestSafetensors::dtypeTable()
{
    const std::vector<std::pair<DType, std::pair<const char*, int>>> table = {
        {DType::BOOL, {"BOOL", 1}}, {DType::U8, {"U8", 1}},     {DType::I8, {"I8", 1}},
        {DType::I16, {"I16", 2}},   {DType::U16, {"U16", 2}},   {DType::F16, {"F16", 2}},
        {DType::BF16, {"BF16", 2}}, {DType::I32, {"I32", 4}},   {DType::U32, {"U32", 4}},
        {DType::F32, {"F32", 4}},   {DType::F64, {"F64", 8}},   {DType::I64, {"I64", 8}},
        {DType::U64, {"U64", 8}},
    };
    for (const auto& [d, nb] : table) {
        QCOMPARE(std::string(dtypeName(d)), std::string(nb.first));
        QCOMPARE(dtypeBytes(d), nb.second);
        QCOMPARE(dtypeFromName(nb.first), d);
    }
    const std::string unknown = errorOf<InputError>([] { dtypeFromName("F17"); });
    QCOMPARE(unknown, std::string("unknown dtype 'F17'"));
    const std::string lower = errorOf<InputError>([] { dtypeFromName("f32"); }); // case-sensitive
    EXPECT_MSG(lower, "unknown dtype 'f32'");
    for (const char* s : {"F8_E4M3", "F8_E5M2", "F8_E8M0", "C64", "F4", "F6_E2M3"}) {
        const std::string m = errorOf<InputError>([s] { dtypeFromName(s); });
        EXPECT_MSG(m, std::string("unsupported dtype '") + s + "'");
    }
}

void TestSafetensors::readHandBuilt()
{
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    // Header in non-writer order (b before a, metadata in the middle), no padding (N = odd).
    const QByteArray header = R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                              R"("__metadata__":{"format":"pt","k":"v"},)"
                              R"("a":{"dtype":"I16","shape":[2,1],"data_offsets":[0,4]}})";
    const QByteArray data = bytesOf<int16_t>({7, -3}) + bytesOf<float>({1.5f, -2.0f});
    const QString path = tmp.filePath("hand.safetensors");
    writeFile(path, fileBytes(header, data));

    auto f = SafetensorsFile::open(path.toStdString());
    QCOMPARE(f->path(), path.toStdString());
    QCOMPARE(f->fileSize(), uint64_t(8 + header.size() + 12));
    QCOMPARE(f->tensors().size(), size_t(2));
    QCOMPARE(f->tensors()[0].name, std::string("a")); // sorted by name
    QCOMPARE(f->tensors()[1].name, std::string("b"));
    QCOMPARE(f->metadata().size(), size_t(2));
    QCOMPARE(f->metadata().at("format"), std::string("pt"));
    QCOMPARE(f->metadata().at("k"), std::string("v"));

    const TensorInfo* a = f->find("a");
    QVERIFY(a);
    QCOMPARE(a->dtype, DType::I16);
    QCOMPARE(a->shape, (std::vector<int64_t> {2, 1}));
    QCOMPARE(a->begin, uint64_t(0));
    QCOMPARE(a->end, uint64_t(4));
    QCOMPARE(a->numel(), int64_t(2));
    QCOMPARE(a->nbytes(), uint64_t(4));
    QCOMPARE(at<int16_t>(f->data(*a), 0), int16_t(7));
    QCOMPARE(at<int16_t>(f->data(*a), 1), int16_t(-3));

    const TensorInfo* b = f->find("b");
    QVERIFY(b);
    QCOMPARE(b->dtype, DType::F32);
    QCOMPARE(b->begin, uint64_t(4));
    QCOMPARE(b->end, uint64_t(12));
    // File offset of b = 8 + N + BEGIN.
    QCOMPARE(f->data(*b) - f->data(*a), ptrdiff_t(4));
    QCOMPARE(at<float>(f->data(*b), 0), 1.5f);
    QCOMPARE(at<float>(f->data(*b), 1), -2.0f);

    QVERIFY(f->find("c") == nullptr);
}

void TestSafetensors::readScalarEmptyAndNoTensors()
{
    QTemporaryDir tmp;
    const QByteArray header = R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},)"
                              R"("e":{"dtype":"BF16","shape":[3,0,5],"data_offsets":[8,8]}}  )"; // padded
    const QString path = tmp.filePath("se.safetensors");
    writeFile(path, fileBytes(header, bytesOf<double>({-0.25})));
    auto f = SafetensorsFile::open(path.toStdString());
    QVERIFY(f->metadata().empty());
    const TensorInfo* s = f->find("s");
    QVERIFY(s);
    QVERIFY(s->shape.empty());
    QCOMPARE(s->numel(), int64_t(1));
    QCOMPARE(at<double>(f->data(*s), 0), -0.25);
    const TensorInfo* e = f->find("e");
    QVERIFY(e);
    QCOMPARE(e->numel(), int64_t(0));
    QCOMPARE(e->nbytes(), uint64_t(0));
    QCOMPARE(e->begin, uint64_t(8));

    // A header with no tensors and no data is a valid (empty) file.
    const QString emptyPath = tmp.filePath("none.safetensors");
    writeFile(emptyPath, fileBytes("{}      ", {}));
    auto g = SafetensorsFile::open(emptyPath.toStdString());
    QVERIFY(g->tensors().empty());
    QCOMPARE(g->fileSize(), uint64_t(16));

    // __metadata__: null is "absent" for the reference (an Option).
    const QString nullMeta = tmp.filePath("nullmeta.safetensors");
    writeFile(nullMeta, fileBytes(R"({"__metadata__":null})", {}));
    QVERIFY(SafetensorsFile::open(nullMeta.toStdString())->metadata().empty());
}

void TestSafetensors::readGolden()
{
    // Values as written by make_golden.py.
    auto f = SafetensorsFile::open(golden("golden.safetensors"));
    QCOMPARE(f->fileSize(), uint64_t(1188));
    QCOMPARE(f->metadata().at("format"), std::string("pt"));
    QCOMPARE(f->metadata().at("generator"), std::string("tests/data/safetensors/make_golden.py"));
    QCOMPARE(f->tensors().size(), size_t(16));

    auto get = [&](const char* name, DType dt, std::vector<int64_t> shape, uint64_t begin) {
        const TensorInfo* t = f->find(name);
        if (!t)
            qFatal("golden lacks %s", name);
        if (t->dtype != dt || t->shape != shape || t->begin != begin)
            qFatal("golden %s: dtype/shape/offset differ", name);
        return f->data(*t);
    };
    // Offsets follow the reference order: U64, I64, F64, F32 (by name), U32, I32, BF16, F16, U16,
    // I16, I8, U8 (by name), BOOL.
    const uint8_t* p = get("t.u64", DType::U64, {1}, 0);
    QCOMPARE(at<uint64_t>(p, 0), (uint64_t(1) << 63) + 7);
    p = get("t.i64", DType::I64, {3}, 8);
    QCOMPARE(at<int64_t>(p, 0), int64_t(1));
    QCOMPARE(at<int64_t>(p, 1), int64_t(-2));
    QCOMPARE(at<int64_t>(p, 2), (int64_t(1) << 40) + 5);
    p = get("t.f64", DType::F64, {}, 32);
    QCOMPARE(at<double>(p, 0), 2.5);
    get("t.empty", DType::F32, {0, 4}, 40);
    QCOMPARE(f->find("t.empty")->nbytes(), uint64_t(0));
    p = get("t.f32", DType::F32, {2, 3}, 40);
    const float f32[] = {0.5f, -1.25f, 3.0f, 100.0f, -0.0f, 7.75f};
    for (int i = 0; i < 6; ++i)
        QCOMPARE(at<float>(p, i), f32[i]);
    QVERIFY(std::signbit(at<float>(p, 4)));
    p = get("unicod\xc3\xa9.w", DType::F32, {1}, 64);
    QCOMPARE(at<float>(p, 0), -3.5f);
    p = get("t.u32", DType::U32, {1}, 68);
    QCOMPARE(at<uint32_t>(p, 0), 4000000000u);
    p = get("t.i32", DType::I32, {2, 2}, 72);
    QCOMPARE(at<int32_t>(p, 0), 1);
    QCOMPARE(at<int32_t>(p, 1), -1);
    QCOMPARE(at<int32_t>(p, 2), 2147483647);
    QCOMPARE(at<int32_t>(p, 3), int32_t(-2147483647 - 1));
    p = get("t.bf16", DType::BF16, {3}, 88);
    QCOMPARE(at<uint16_t>(p, 0), uint16_t(0x3F80)); // 1.0
    QCOMPARE(at<uint16_t>(p, 1), uint16_t(0xBF00)); // -0.5
    QCOMPARE(at<uint16_t>(p, 2), uint16_t(0x4049)); // 3.140625
    p = get("t.f16", DType::F16, {2}, 94);
    QCOMPARE(at<uint16_t>(p, 0), uint16_t(0x3E00)); // 1.5
    QCOMPARE(at<uint16_t>(p, 1), uint16_t(0xC000)); // -2.0
    p = get("t.u16", DType::U16, {2}, 98);
    QCOMPARE(at<uint16_t>(p, 0), uint16_t(65535));
    QCOMPARE(at<uint16_t>(p, 1), uint16_t(1));
    p = get("t.i16", DType::I16, {2}, 102);
    QCOMPARE(at<int16_t>(p, 0), int16_t(-32768));
    QCOMPARE(at<int16_t>(p, 1), int16_t(12345));
    p = get("t.i8", DType::I8, {2}, 106);
    QCOMPARE(at<int8_t>(p, 0), int8_t(-128));
    QCOMPARE(at<int8_t>(p, 1), int8_t(127));
    p = get("a\"quoted\\name", DType::U8, {1}, 108);
    QCOMPARE(p[0], uint8_t(42));
    p = get("t.u8", DType::U8, {3}, 109);
    QCOMPARE(p[0], uint8_t(0));
    QCOMPARE(p[1], uint8_t(127));
    QCOMPARE(p[2], uint8_t(255));
    p = get("t.bool", DType::BOOL, {4}, 112);
    QCOMPARE(QByteArray(reinterpret_cast<const char*>(p), 4), QByteArray("\x01\x00\x00\x01", 4));
    // Header N = 1064: data starts at 1072, so t.u64 is the first data byte.
    QCOMPARE(at<uint64_t>(f->data(*f->find("t.u64")) - 1072, 0), uint64_t(1064));
}

void TestSafetensors::readGoldenUnaligned()
{
    auto f = SafetensorsFile::open(golden("golden_unaligned.safetensors"));
    QCOMPARE(f->fileSize(), uint64_t(8 + 242 + 23));
    QVERIFY(f->metadata().empty());
    const TensorInfo* b = f->find("x.bytes");
    const TensorInfo* h = f->find("x.half");
    const TensorInfo* fl = f->find("x.float");
    const TensorInfo* l = f->find("x.long");
    QVERIFY(b && h && fl && l);
    QCOMPARE(h->begin, uint64_t(3));
    QCOMPARE(fl->begin, uint64_t(7));
    QCOMPARE(l->begin, uint64_t(15));
    // The data is really misaligned in memory (mapping is page aligned, file offset 8+242+7).
    QCOMPARE(reinterpret_cast<uintptr_t>(f->data(*fl)) % 4, uintptr_t((8 + 242 + 7) % 4));
    QCOMPARE(f->data(*b)[0], uint8_t(9));
    QCOMPARE(f->data(*b)[2], uint8_t(7));
    QCOMPARE(at<uint16_t>(f->data(*h), 0), uint16_t(0x3400)); // 0.25
    QCOMPARE(at<uint16_t>(f->data(*h), 1), uint16_t(0xFBFF)); // -65504
    QCOMPARE(at<float>(f->data(*fl), 0), 1.0e-3f);
    QCOMPARE(at<float>(f->data(*fl), 1), -42.0f);
    QCOMPARE(at<int64_t>(f->data(*l), 0), int64_t(-9000000000));
}

void TestSafetensors::malformed_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("problem");

    auto t = [](const char* name, const char* dtype, const char* shape, const char* offsets) {
        return QByteArray("\"") + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" +
               offsets + "}";
    };
    auto hdr = [](const QByteArray& body) { return "{" + body + "}"; };
    const QByteArray d8(8, '\x11');

    QTest::newRow("empty file") << QByteArray() << "file is 0 bytes, too small";
    QTest::newRow("shorter than 8 bytes") << QByteArray("\x02\0\0\0{}", 6) << "file is 6 bytes, too small";
    QTest::newRow("header too large") << le64(100000001) + QByteArray(64, ' ')
                                      << "header length 100000001 exceeds the 100000000-byte limit";
    QTest::newRow("header past EOF") << le64(100) + QByteArray("{}") << "header length 100 runs past the end of the 10-byte file";
    QTest::newRow("header length 2^64-1") << le64(~uint64_t(0)) << "header length 18446744073709551615 exceeds";
    QTest::newRow("invalid UTF-8") << fileBytes(hdr(t("a\xff", "U8", "[0]", "[0,0]")), {})
                                   << "header is not valid UTF-8 (bad byte at header offset 3)";
    QTest::newRow("overlong UTF-8") << fileBytes(hdr(t("a\xc0\xaf", "U8", "[0]", "[0,0]")), {})
                                    << "header is not valid UTF-8";
    QTest::newRow("UTF-16 surrogate") << fileBytes(hdr(t("\xed\xa0\x80", "U8", "[0]", "[0,0]")), {})
                                      << "header is not valid UTF-8";
    QTest::newRow("bad JSON") << fileBytes(R"({"a":{"dtype":"U8",)", {}) << "header is not valid JSON";
    QTest::newRow("NUL padding") << fileBytes(QByteArray("{}\0\0\0\0\0\0", 8), {}) << "header is not valid JSON";
    QTest::newRow("header not object") << fileBytes("[1,2]", {}) << "header is a JSON array, expected an object";
    QTest::newRow("entry not object") << fileBytes(R"({"a":5})", {}) << "tensor 'a': header entry is a JSON number";
    QTest::newRow("unknown dtype") << fileBytes(hdr(t("a", "F17", "[2]", "[0,8]")), d8)
                                   << "tensor 'a': unknown dtype 'F17'";
    QTest::newRow("unsupported dtype") << fileBytes(hdr(t("a", "F8_E4M3", "[8]", "[0,8]")), d8)
                                       << "tensor 'a': unsupported dtype 'F8_E4M3'";
    QTest::newRow("dtype not string") << fileBytes(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", QByteArray(4, 0))
                                      << "tensor 'a': 'dtype' is a number, expected a string";
    QTest::newRow("metadata non-string") << fileBytes(R"({"__metadata__":{"format":"pt","n":1}})", {})
                                         << "__metadata__ value for key 'n' is a number, expected a string";
    QTest::newRow("metadata not object") << fileBytes(R"({"__metadata__":["pt"]})", {})
                                         << "__metadata__ is a JSON array";
    QTest::newRow("missing dtype") << fileBytes(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", QByteArray(4, 0))
                                   << "tensor 'a': missing field 'dtype'";
    QTest::newRow("missing shape") << fileBytes(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", QByteArray(4, 0))
                                   << "tensor 'a': missing field 'shape'";
    QTest::newRow("missing data_offsets") << fileBytes(R"({"a":{"dtype":"F32","shape":[1]}})", {})
                                          << "tensor 'a': missing field 'data_offsets'";
    QTest::newRow("data_offsets one value") << fileBytes(hdr(t("a", "U8", "[0]", "[0]")), {})
                                            << "tensor 'a': 'data_offsets' must be an array of two integers";
    QTest::newRow("negative offset") << fileBytes(hdr(t("a", "U8", "[0]", "[-1,0]")), {})
                                     << "tensor 'a': 'data_offsets' must hold non-negative integers";
    QTest::newRow("negative dim") << fileBytes(hdr(t("a", "U8", "[-1]", "[0,0]")), {})
                                  << "tensor 'a': shape[0] is a negative number -1";
    QTest::newRow("fractional dim") << fileBytes(hdr(t("a", "U8", "[2,1.5]", "[0,3]")), QByteArray(3, 0))
                                    << "tensor 'a': shape[1] is a non-integer number";
    QTest::newRow("duplicate tensor name") << fileBytes(hdr(t("a", "U8", "[4]", "[0,4]") + "," + t("a", "U8", "[4]", "[4,8]")), d8)
                                           << "duplicate tensor name 'a'";
    QTest::newRow("duplicate field") << fileBytes(R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", QByteArray(1, 0))
                                     << "tensor 'a': duplicate JSON key 'dtype'";
    QTest::newRow("duplicate metadata key") << fileBytes(R"({"__metadata__":{"format":"pt","format":"tf"}})", {})
                                            << "__metadata__: duplicate JSON key 'format'";
    QTest::newRow("gap") << fileBytes(hdr(t("a", "F32", "[1]", "[0,4]") + "," + t("b", "F32", "[1]", "[8,12]")), QByteArray(12, 0))
                         << "tensor 'b': data_offsets [8, 12] leave a gap after tensor 'a', which ends at 4";
    QTest::newRow("first not at 0") << fileBytes(hdr(t("a", "F32", "[1]", "[4,8]")), d8)
                                    << "tensor 'a': data_offsets [4, 8] leave a gap: the first tensor must start at 0";
    QTest::newRow("overlap") << fileBytes(hdr(t("a", "F32", "[2]", "[0,8]") + "," + t("b", "F32", "[1]", "[4,8]")), d8)
                             << "tensor 'b': data_offsets [4, 8] overlap tensor 'a', which ends at 8";
    QTest::newRow("END < BEGIN") << fileBytes(hdr(t("a", "F32", "[1]", "[0,4]") + "," + t("b", "U8", "[0]", "[8,4]")), QByteArray(4, 0))
                                 << "tensor 'b': data_offsets [8, 4] end before they begin";
    QTest::newRow("size overflow") << fileBytes(hdr(t("a", "F32", "[4294967296,4294967296,2]", "[0,8]")), d8)
                                   << "tensor 'a': shape [4294967296, 4294967296, 2] of F32 overflows";
    QTest::newRow("bytes != numel*size")
        << fileBytes(hdr(t("a.weight", "F32", "[2,3]", "[0,10]")), QByteArray(10, 0))
        << "tensor 'a.weight': data_offsets [0, 10] hold 10 bytes but shape [2, 3] of F32 needs 24";
    QTest::newRow("trailing bytes") << fileBytes(hdr(t("a", "F32", "[2]", "[0,8]")), d8 + "xy")
                                    << "2 trailing bytes after the last tensor";
    QTest::newRow("data after empty header") << fileBytes("{}", QByteArray(4, 0)) << "4 trailing bytes";
    QTest::newRow("incomplete buffer") << fileBytes(hdr(t("a", "F32", "[2]", "[0,8]")), QByteArray(5, 0))
                                       << "file is truncated: tensors need 8 data bytes but only 5 follow the header";
}

void TestSafetensors::malformed()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, problem);
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("bad.safetensors").toStdString();
    writeFile(QString::fromStdString(path), bytes);
    const std::string msg = errorOf<InputError>([&] { SafetensorsFile::open(path); });
    // "<path>: <problem>", one line.
    QVERIFY2(msg.rfind(path + ": ", 0) == 0, msg.c_str());
    EXPECT_MSG(msg, problem.toStdString());
    QVERIFY2(msg.find('\n') == std::string::npos, msg.c_str());
}

void TestSafetensors::openMissingFileIsIoError()
{
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("nope.safetensors").toStdString();
    const std::string msg = errorOf<IoError>([&] { SafetensorsFile::open(path); });
    QCOMPARE(msg, path + ": cannot open: No such file or directory");
    const std::string dirMsg = errorOf<InputError>([&] { SafetensorsFile::open(tmp.path().toStdString()); });
    QCOMPARE(dirMsg, tmp.path().toStdString() + ": not a regular file");
}

void TestSafetensors::writerExactBytes()
{
    QTemporaryDir tmp;
    const QString path = tmp.filePath("w.safetensors");
    {
        SafetensorsWriter w(path.toStdString());
        // Declared out of order; the file must come out F32 before U8, names ascending within F32.
        w.declare("z.small", DType::U8, {3});
        w.declare("b.big", DType::F32, {1});
        w.declare("a.big", DType::F32, {2});
        const uint8_t small[] = {1, 2, 3};
        const float big[] = {1.0f, -2.0f};
        const float one = 0.5f;
        w.write("z.small", small, 3);
        w.write("a.big", big, 8);
        w.write("b.big", &one, 4);
        w.commit();
    }
    // 207 bytes of compact JSON + 1 space = N 208 (0xD0); data 8 + 4 + 3 bytes.
    const QByteArray json = R"({"__metadata__":{"format":"pt"},)"
                            R"("a.big":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b.big":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                            R"("z.small":{"dtype":"U8","shape":[3],"data_offsets":[12,15]}})";
    QCOMPARE(json.size(), 207);
    QByteArray expected("\xD0\0\0\0\0\0\0\0", 8);
    expected += json + " ";
    expected += QByteArray("\x00\x00\x80\x3F\x00\x00\x00\xC0", 8); // 1.0f, -2.0f
    expected += QByteArray("\x00\x00\x00\x3F", 4);                 // 0.5f
    expected += QByteArray("\x01\x02\x03", 3);
    QCOMPARE(expected.size(), 231);
    QCOMPARE(readFile(path), expected);
    QCOMPARE(fileNames(tmp.path()), std::vector<std::string> {"w.safetensors"}); // temp file renamed away
}

void TestSafetensors::writerMatchesGolden()
{
    // Re-write the Python writer's file with our writer: it must be byte-identical, which checks the
    // order, offsets, JSON escaping (quote, backslash, raw UTF-8), metadata and padding at once.
    auto src = SafetensorsFile::open(golden("golden.safetensors"));
    QTemporaryDir tmp;
    const QString path = tmp.filePath("again.safetensors");
    {
        SafetensorsWriter w(path.toStdString(), src->metadata());
        const auto& ts = src->tensors();
        for (auto it = ts.rbegin(); it != ts.rend(); ++it)
            w.declare(it->name, it->dtype, it->shape);
        for (size_t i = 0; i < ts.size(); ++i) { // an order unrelated to the layout
            const TensorInfo& t = ts[(i * 7) % ts.size()];
            w.write(t.name, src->data(t), t.nbytes());
        }
        w.commit();
    }
    QCOMPARE(readFile(path), readFile(QString::fromStdString(golden("golden.safetensors"))));
}

void TestSafetensors::writerRoundTripAllDtypes()
{
    const std::vector<DType> all = {DType::BOOL, DType::U8,  DType::I8,   DType::I16, DType::U16,
                                    DType::F16,  DType::BF16, DType::I32, DType::U32, DType::F32,
                                    DType::F64,  DType::I64, DType::U64};
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("all.safetensors").toStdString();
    auto pattern = [](DType d, size_t n, int salt) {
        std::vector<uint8_t> b(n);
        for (size_t i = 0; i < n; ++i)
            b[i] = static_cast<uint8_t>(d == DType::BOOL ? (i + salt) % 2 : i * 31 + salt * 7 + 1);
        return b;
    };
    {
        SafetensorsWriter w(path, {{"format", "pt"}, {"quantizer", "moewb \"test\"\n"}});
        for (DType d : all) {
            w.declare(std::string("w.") + dtypeName(d), d, {2, 3});
            w.declare(std::string("s.") + dtypeName(d), d, {});
            w.declare(std::string("e.") + dtypeName(d), d, {4, 0});
        }
        for (DType d : all) {
            const auto wb = pattern(d, 6 * dtypeBytes(d), static_cast<int>(d));
            const auto sb = pattern(d, dtypeBytes(d), 100 + static_cast<int>(d));
            w.write(std::string("w.") + dtypeName(d), wb.data(), wb.size());
            w.write(std::string("s.") + dtypeName(d), sb.data(), sb.size());
            w.write(std::string("e.") + dtypeName(d), nullptr, 0);
        }
        w.commit();
    }
    auto f = SafetensorsFile::open(path);
    QCOMPARE(f->metadata().at("quantizer"), std::string("moewb \"test\"\n"));
    QCOMPARE(f->tensors().size(), all.size() * 3);
    for (DType d : all) {
        const TensorInfo* w = f->find(std::string("w.") + dtypeName(d));
        const TensorInfo* s = f->find(std::string("s.") + dtypeName(d));
        const TensorInfo* e = f->find(std::string("e.") + dtypeName(d));
        QVERIFY(w && s && e);
        QCOMPARE(w->dtype, d);
        QCOMPARE(w->shape, (std::vector<int64_t> {2, 3}));
        QVERIFY(s->shape.empty());
        QCOMPARE(e->shape, (std::vector<int64_t> {4, 0}));
        QCOMPARE(e->nbytes(), uint64_t(0));
        const auto wb = pattern(d, 6 * dtypeBytes(d), static_cast<int>(d));
        const auto sb = pattern(d, dtypeBytes(d), 100 + static_cast<int>(d));
        QCOMPARE(std::vector<uint8_t>(f->data(*w), f->data(*w) + w->nbytes()), wb);
        QCOMPARE(std::vector<uint8_t>(f->data(*s), f->data(*s) + s->nbytes()), sb);
        // Dtype-descending layout keeps every tensor naturally aligned (the buffer starts 8-aligned).
        QCOMPARE(w->begin % dtypeBytes(d), uint64_t(0));
        QCOMPARE(s->begin % dtypeBytes(d), uint64_t(0));
    }
    // Exact layout: blocks from U64 down to BOOL, each block e. (empty), s. (scalar), w. by name.
    uint64_t offset = 0;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        const int nb = dtypeBytes(*it);
        QCOMPARE(f->find(std::string("e.") + dtypeName(*it))->begin, offset);
        QCOMPARE(f->find(std::string("s.") + dtypeName(*it))->begin, offset);
        QCOMPARE(f->find(std::string("w.") + dtypeName(*it))->begin, offset + nb);
        offset += 7 * nb;
    }
    // ... and nothing after the BOOL block: file = 8 + N + data.
    const QByteArray head = readFile(QString::fromStdString(path)).left(8);
    QCOMPARE(f->fileSize(), 8 + at<uint64_t>(reinterpret_cast<const uint8_t*>(head.constData()), 0) + offset);
}

void TestSafetensors::writerEmptyAndConcurrent()
{
    QTemporaryDir tmp;
    // No tensors at all: commit() writes the header alone, padded to 8.
    const QString emptyPath = tmp.filePath("empty.safetensors");
    {
        SafetensorsWriter w(emptyPath.toStdString());
        w.commit();
    }
    const QByteArray json = R"({"__metadata__":{"format":"pt"}})"; // 32 bytes: no padding needed
    QCOMPARE(json.size(), 32);
    QCOMPARE(readFile(emptyPath), le64(32) + json);
    QVERIFY(SafetensorsFile::open(emptyPath.toStdString())->tensors().empty());

    // Empty metadata map: no __metadata__ key at all, like the reference with metadata=None.
    const QString bare = tmp.filePath("bare.safetensors");
    {
        SafetensorsWriter w(bare.toStdString(), {});
        w.declare("t", DType::I8, {1});
        const int8_t v = -5;
        w.write("t", &v, 1);
        w.commit();
    }
    QCOMPARE(readFile(bare), le64(56) + R"({"t":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}})" + "   " + "\xfb");

    // Worker threads write different tensors at the same time (quantizers finish experts out of order).
    const QString par = tmp.filePath("par.safetensors");
    constexpr int kTensors = 32, kElems = 1000;
    {
        SafetensorsWriter w(par.toStdString());
        for (int i = 0; i < kTensors; ++i)
            w.declare("expert." + std::to_string(i), DType::F32, {kElems});
        w.begin();
        std::vector<std::thread> workers;
        for (int t = 0; t < 4; ++t) {
            workers.emplace_back([&w, t] {
                std::vector<float> v(kElems);
                for (int i = t; i < kTensors; i += 4) {
                    for (int k = 0; k < kElems; ++k)
                        v[k] = float(i * kElems + k);
                    w.write("expert." + std::to_string(i), v.data(), v.size() * sizeof(float));
                }
            });
        }
        for (auto& th : workers)
            th.join();
        w.commit();
    }
    auto f = SafetensorsFile::open(par.toStdString());
    for (int i = 0; i < kTensors; ++i) {
        const TensorInfo* t = f->find("expert." + std::to_string(i));
        QVERIFY(t);
        QCOMPARE(at<float>(f->data(*t), 0), float(i * kElems));
        QCOMPARE(at<float>(f->data(*t), kElems - 1), float(i * kElems + kElems - 1));
    }
}

void TestSafetensors::writerErrors()
{
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("err.safetensors").toStdString();
    const uint8_t buf[64] = {};
    {
        SafetensorsWriter w(path);
        w.declare("a", DType::F32, {2});
        w.declare("b", DType::I8, {3});
        EXPECT_MSG(errorOf<InputError>([&] { w.declare("a", DType::U8, {1}); }), path + ": tensor 'a' declared twice");
        EXPECT_MSG(errorOf<InputError>([&] { w.declare("n", DType::U8, {2, -1}); }),
                   path + ": tensor 'n': negative dimension in shape [2, -1]");
        EXPECT_MSG(errorOf<InputError>([&] { w.declare("__metadata__", DType::U8, {1}); }), "reserved");
        EXPECT_MSG(errorOf<InputError>([&] { w.write("zz", buf, 4); }), path + ": write of undeclared tensor 'zz'");
        EXPECT_MSG(errorOf<InputError>([&] { w.write("a", buf, 4); }),
                   path + ": tensor 'a': got 4 bytes but shape [2] of F32 needs 8");
        w.write("a", buf, 8);
        EXPECT_MSG(errorOf<InputError>([&] { w.write("a", buf, 8); }), path + ": tensor 'a' written twice");
        EXPECT_MSG(errorOf<InputError>([&] { w.declare("late", DType::U8, {1}); }),
                   "cannot declare tensor 'late' after writing has begun");
        EXPECT_MSG(errorOf<InputError>([&] { w.commit(); }),
                   path + ": commit with 1 of 2 tensors never written: 'b'");
        // The target never appears and the temp file is gone once the writer is destroyed.
        QVERIFY(!QFile::exists(QString::fromStdString(path)));
    }
    QVERIFY(fileNames(tmp.path()).empty());

    // Committing twice is a bug in the caller, not a silent no-op.
    SafetensorsWriter w2(path);
    w2.declare("x", DType::U8, {1});
    w2.write("x", buf, 1);
    w2.commit();
    EXPECT_MSG(errorOf<InputError>([&] { w2.commit(); }), "commit() called twice");
    EXPECT_MSG(errorOf<InputError>([&] { w2.write("x", buf, 1); }), "after commit()");

    // The OS refusing is an IoError with its reason.
    SafetensorsWriter w3(tmp.filePath("no/such/dir/x.safetensors").toStdString());
    w3.declare("x", DType::U8, {1});
    const std::string io = errorOf<IoError>([&] { w3.begin(); });
    EXPECT_MSG(io, "no/such/dir/x.safetensors.tmp.");
    EXPECT_MSG(io, "cannot create: No such file or directory");
}

void TestSafetensors::writerAbandonLeavesNoTrace()
{
    QTemporaryDir tmp;
    const QString path = tmp.filePath("model.safetensors");
    writeFile(path, "previous");
    {
        SafetensorsWriter w(path.toStdString());
        w.declare("a", DType::U8, {4});
        w.declare("b", DType::U8, {4});
        w.write("a", "abcd", 4);
        // The temp file exists next to the target while writing.
        QCOMPARE(fileNames(tmp.path()).size(), size_t(2));
        QVERIFY(QFile::exists(path + ".tmp." + QString::number(QCoreApplication::applicationPid())));
    } // no commit: e.g. the user cancelled
    QCOMPARE(fileNames(tmp.path()), std::vector<std::string> {"model.safetensors"});
    QCOMPARE(readFile(path), QByteArray("previous")); // the old file is untouched
}

void TestSafetensors::checkpointSharded()
{
    const std::string dir = golden("sharded");
    const Checkpoint c = Checkpoint::open(dir);
    QCOMPARE(c.dir(), dir);
    QCOMPARE(c.names(), (std::vector<std::string> {"extra.bias", "lm_head.weight", "model.embed_tokens.weight",
                                                   "model.layers.0.mlp.gate.weight"}));
    QVERIFY(c.has("extra.bias")); // in a shard but not in the index: still reachable
    QVERIFY(!c.has("model.norm.weight"));

    const TensorInfo& emb = c.info("model.embed_tokens.weight");
    QCOMPARE(emb.dtype, DType::BF16);
    QCOMPARE(emb.shape, (std::vector<int64_t> {2, 2}));
    const uint8_t* p = c.data("model.embed_tokens.weight");
    QCOMPARE(at<uint16_t>(p, 0), uint16_t(0x3F80)); // 1.0
    QCOMPARE(at<uint16_t>(p, 1), uint16_t(0x4000)); // 2.0
    QCOMPARE(at<uint16_t>(p, 2), uint16_t(0xBF80)); // -1.0
    QCOMPARE(at<uint16_t>(p, 3), uint16_t(0x3F00)); // 0.5
    QCOMPARE(at<float>(c.data("model.layers.0.mlp.gate.weight"), 1), -8.0f);
    QCOMPARE(at<uint16_t>(c.data("lm_head.weight"), 3), uint16_t(0x4400)); // 4.0
    QCOMPARE(at<int32_t>(c.data("extra.bias"), 0), 77);
    QVERIFY(contains(c.fileOf("lm_head.weight").path(), "model-00002-of-00002.safetensors"));
    QVERIFY(contains(c.fileOf("model.embed_tokens.weight").path(), "model-00001-of-00002.safetensors"));

    const std::string msg = errorOf<InputError>([&] { c.info("model.norm.weight"); });
    QCOMPARE(msg, dir + ": missing tensor 'model.norm.weight'");
    EXPECT_MSG(errorOf<InputError>([&] { c.data("nope"); }), "missing tensor 'nope'");
    EXPECT_MSG(errorOf<InputError>([&] { c.fileOf("nope"); }), "missing tensor 'nope'");
}

void TestSafetensors::checkpointSingleFileAndGlob()
{
    QTemporaryDir tmp;
    auto writeOne = [&](const QString& file, const std::string& name, float v) {
        SafetensorsWriter w(tmp.filePath(file).toStdString());
        w.declare(name, DType::F32, {1});
        w.write(name, &v, 4);
        w.commit();
    };
    // Without model.safetensors or an index, every *.safetensors is a shard, in name order.
    writeOne("b.safetensors", "y", 2.0f);
    writeOne("a.safetensors", "x", 1.0f);
    writeFile(tmp.filePath("notes.txt"), "ignored");
    Checkpoint glob = Checkpoint::open(tmp.path().toStdString());
    QCOMPARE(glob.names(), (std::vector<std::string> {"x", "y"}));
    QCOMPARE(at<float>(glob.data("y"), 0), 2.0f);
    QVERIFY(contains(glob.fileOf("x").path(), "a.safetensors"));

    // model.safetensors wins over the other files.
    writeOne("model.safetensors", "m", 3.0f);
    Checkpoint single = Checkpoint::open(tmp.path().toStdString());
    QCOMPARE(single.names(), std::vector<std::string> {"m"});
    QCOMPARE(at<float>(single.data("m"), 0), 3.0f);

    // A Checkpoint is a value: copies stay valid after the original is gone.
    Checkpoint copy = [&] { return Checkpoint::open(tmp.path().toStdString()); }();
    QCOMPARE(at<float>(copy.data("m"), 0), 3.0f);
}

void TestSafetensors::checkpointErrors()
{
    QTemporaryDir tmp;
    const QString root = tmp.path();
    auto mk = [&](const char* sub) {
        QDir(root).mkpath(sub);
        return root + "/" + sub;
    };
    auto writeOne = [](const QString& path, const std::vector<std::string>& names) {
        SafetensorsWriter w(path.toStdString());
        for (const auto& n : names)
            w.declare(n, DType::U8, {1});
        for (const auto& n : names)
            w.write(n, "x", 1);
        w.commit();
    };
    auto openErr = [](const QString& dir) {
        return errorOf<InputError>([&] { Checkpoint::open(dir.toStdString()); });
    };

    const QString missing = root + "/absent";
    QCOMPARE(openErr(missing), missing.toStdString() + ": no such directory");

    const QString empty = mk("empty");
    writeFile(empty + "/config.json", "{}");
    const std::string emptyMsg = openErr(empty);
    EXPECT_MSG(emptyMsg, empty.toStdString() + ": no model.safetensors.index.json, model.safetensors or *.safetensors");

    const QString badJson = mk("badjson");
    writeFile(badJson + "/model.safetensors.index.json", R"({"weight_map": {"a": )");
    const std::string bj = openErr(badJson);
    EXPECT_MSG(bj, badJson.toStdString() + "/model.safetensors.index.json: not valid JSON");
    QVERIFY(bj.find('\n') == std::string::npos);

    const QString noMap = mk("nomap");
    writeFile(noMap + "/model.safetensors.index.json", R"({"metadata": {}})");
    EXPECT_MSG(openErr(noMap), "model.safetensors.index.json: missing 'weight_map'");

    const QString badValue = mk("badvalue");
    writeFile(badValue + "/model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
    EXPECT_MSG(openErr(badValue), "model.safetensors.index.json: weight_map entry for tensor 'a' is a JSON number");

    const QString escape = mk("escape");
    writeFile(escape + "/model.safetensors.index.json", R"({"weight_map": {"a": "../x.safetensors"}})");
    EXPECT_MSG(openErr(escape), "names shard '../x.safetensors' outside the model directory");

    const QString noShard = mk("noshard");
    writeFile(noShard + "/model.safetensors.index.json",
              R"({"weight_map": {"a": "model-00001-of-00002.safetensors"}})");
    EXPECT_MSG(openErr(noShard), "model.safetensors.index.json: shard 'model-00001-of-00002.safetensors' "
                                 "(listed for tensor 'a') does not exist");

    // Index says "b" is in shard 1 but shard 1 does not hold it.
    const QString lacks = mk("lacks");
    writeOne(lacks + "/model-00001-of-00001.safetensors", {"a"});
    writeFile(lacks + "/model.safetensors.index.json",
              R"({"weight_map": {"a": "model-00001-of-00001.safetensors", "b": "model-00001-of-00001.safetensors"}})");
    const std::string lm = openErr(lacks);
    QCOMPARE(lm, lacks.toStdString() + "/model.safetensors.index.json: weight_map puts tensor 'b' in shard "
                                       "'model-00001-of-00001.safetensors' but that shard does not contain it");

    // The same tensor stored in two shards is ambiguous.
    const QString twice = mk("twice");
    writeOne(twice + "/model-00001-of-00002.safetensors", {"a", "dup"});
    writeOne(twice + "/model-00002-of-00002.safetensors", {"b", "dup"});
    writeFile(twice + "/model.safetensors.index.json",
              R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
    QCOMPARE(openErr(twice), twice.toStdString() + ": tensor 'dup' is in two shards: "
                                                   "'model-00001-of-00002.safetensors' and 'model-00002-of-00002.safetensors'");

    // A corrupt shard reports the shard's own path.
    const QString corrupt = mk("corrupt");
    writeFile(corrupt + "/model.safetensors", "abc");
    QCOMPARE(openErr(corrupt), (corrupt + "/model.safetensors").toStdString() +
                                   ": file is 3 bytes, too small to hold the 8-byte header length (not a safetensors file?)");
}

QTEST_APPLESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
