// SPDX-License-Identifier: MIT
// stats.h5 (#6): round trip, an independent h5py reader, clear errors for damaged files, atomic writes.
#include "moewb/stats/stats_h5.h"

#include "moewb/core/error.h"
#include "testutil.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <limits>
#include <random>

#include <unistd.h>

using namespace moewb;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Shape {
    int64_t layers = 4;
    int64_t experts = 8;
    int64_t topK = 2;
    int64_t hidden = 64;
    int64_t expertWidth = 32;
    int64_t qOut = 64;
    int64_t kvOut = 16;
    int64_t domains = 2;
    int64_t denseLayers = 1; ///< the first layers are dense (DeepSeek's first_k_dense_replace)
    bool withLinears = true;
};

// A synthetic stats object exercising every field: dense and MoE layers, a layer without the
// correlation probe, NaN ("not measured") values, a linear without activations, domains.
CalibStats makeStats(const Shape& sh, uint32_t seed = 1)
{
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> count(0, 100000);
    std::uniform_real_distribution<double> real(0.0, 1.0);
    CalibStats s;
    StatsProvenance& p = s.provenance;
    p.modelPath = "/models/tiny-moe";
    p.architecture = "Qwen3MoeForCausalLM";
    p.modelType = "qwen3_moe";
    p.dataDescription = "first 4 windows of 16 tokens of wiki.txt + code.jsonl — ünïcödé";
    p.numSamples = 4;
    p.seqLen = 16;
    p.seed = 42;
    p.randomWindows = true;
    p.numTokens = 64;
    for (int64_t d = 0; d < sh.domains; ++d) {
        p.domains.push_back("domain" + std::to_string(d));
        p.domainTokenCounts.push_back(count(rng));
        p.dataFiles.push_back({"data/d" + std::to_string(d) + ".txt", d ? "jsonl" : "text", p.domains.back(),
                               1000 + d, d ? "fnv1a64" : "sha256", d ? "cbf29ce484222325" : std::string(64, 'a')});
    }
    p.computeDtype = "bfloat16";
    p.device = "cpu";
    p.toolVersion = "0.1.0";
    p.created = "2025-01-31T12:00:00Z";
    p.optionsJson = R"({"samples":4,"seq_len":16})";
    s.numLayers = sh.layers;
    s.hiddenSize = sh.hidden;
    s.outlier.eps = 1e-12;

    for (int64_t i = 0; i < sh.layers; ++i) {
        LayerStats l;
        l.layer = i;
        l.cosine = {real(rng), real(rng), i == 1 ? kNaN : real(rng), count(rng)};
        l.isMoe = i >= sh.denseLayers;
        if (l.isMoe) {
            const int64_t e = sh.experts;
            RouterStats& r = l.router;
            r.numExperts = e;
            r.topK = sh.topK;
            r.tokens = count(rng);
            r.routerEntropy = real(rng) * 3;
            for (int64_t x = 0; x < e; ++x) {
                const bool dead = x % 5 == 3;
                r.expertTokens.push_back(dead ? 0 : count(rng));
                r.expertTop1.push_back(dead ? 0 : count(rng));
                r.expertWeightMass.push_back(dead ? 0.0 : real(rng) * 1000);
                r.expertProbMass.push_back(real(rng) * 1000);
                if (dead)
                    r.deadExperts.push_back(x);
            }
            r.domainTokens = Matrix<int64_t>(sh.domains, e);
            for (auto& v : r.domainTokens.data)
                v = count(rng);
            r.coactivation = Matrix<int64_t>(e, e);
            for (auto& v : r.coactivation.data)
                v = count(rng);
            if (i != 2) {
                r.correlation = Matrix<float>(e, e);
                for (auto& v : r.correlation.data)
                    v = float(real(rng) * 2 - 1);
                r.correlationTokens = 256;
                r.correlationMethod = "cosine";
            }
            r.nextMoeLayer = i + 1 < sh.layers ? i + 1 : -1;
            r.transitions = Matrix<int64_t>(e, r.nextMoeLayer >= 0 ? e : 0);
            for (auto& v : r.transitions.data)
                v = count(rng);
        }
        s.layers.push_back(std::move(l));
    }

    if (!sh.withLinears)
        return s;
    auto addLinear = [&](int64_t layer, int64_t expert, const std::string& name, const std::string& role,
                         int64_t in, int64_t out) {
        LinearStats r;
        r.name = name;
        r.layer = layer;
        r.expert = expert;
        r.role = role;
        r.inFeatures = in;
        r.outFeatures = out;
        r.tokens = count(rng);
        r.actAbsMax.resize(size_t(in));
        r.actSqMean.resize(size_t(in));
        for (int64_t c = 0; c < in; ++c) {
            r.actAbsMax[size_t(c)] = float(real(rng) * 10);
            r.actSqMean[size_t(c)] = float(real(rng));
        }
        r.outlierScore = float(1 + real(rng) * 50);
        r.outlierColumn = int64_t(rng() % uint64_t(in));
        s.linears.push_back(std::move(r));
    };
    for (int64_t i = 0; i < sh.layers; ++i) {
        const std::string pre = "model.layers." + std::to_string(i);
        addLinear(i, -1, pre + ".self_attn.q_proj", "q_proj", sh.hidden, sh.qOut);
        addLinear(i, -1, pre + ".self_attn.k_proj", "k_proj", sh.hidden, sh.kvOut);
        addLinear(i, -1, pre + ".self_attn.v_proj", "v_proj", sh.hidden, sh.kvOut);
        addLinear(i, -1, pre + ".self_attn.o_proj", "o_proj", sh.qOut, sh.hidden);
        if (i < sh.denseLayers) {
            addLinear(i, -1, pre + ".mlp.gate_proj", "dense.gate", sh.hidden, sh.expertWidth * 4);
            addLinear(i, -1, pre + ".mlp.up_proj", "dense.up", sh.hidden, sh.expertWidth * 4);
            addLinear(i, -1, pre + ".mlp.down_proj", "dense.down", sh.expertWidth * 4, sh.hidden);
            continue;
        }
        addLinear(i, -1, pre + ".mlp.gate", "router", sh.hidden, sh.experts);
        for (int64_t e = 0; e < sh.experts; ++e) {
            const std::string ex = pre + ".mlp.experts." + std::to_string(e);
            addLinear(i, e, ex + ".gate_proj", "expert.gate", sh.hidden, sh.expertWidth);
            addLinear(i, e, ex + ".up_proj", "expert.up", sh.hidden, sh.expertWidth);
            addLinear(i, e, ex + ".down_proj", "expert.down", sh.expertWidth, sh.hidden);
        }
    }
    // A linear that was never observed (e.g. a dead expert's): no channel statistics, no score.
    if (s.linears.size() > 10) {
        LinearStats& r = s.linears[s.linears.size() / 2];
        r.tokens = 0;
        r.actAbsMax.clear();
        r.actSqMean.clear();
        r.outlierScore = std::numeric_limits<float>::quiet_NaN();
        r.outlierColumn = -1;
    }
    return s;
}

// Points at the first differing field, so a failing round trip says where.
QString firstDifference(const CalibStats& a, const CalibStats& b)
{
    if (!(a.provenance == b.provenance))
        return QStringLiteral("provenance");
    if (a.numLayers != b.numLayers || a.hiddenSize != b.hiddenSize)
        return QStringLiteral("numLayers/hiddenSize");
    if (a.layers.size() != b.layers.size())
        return QStringLiteral("layer count");
    for (size_t i = 0; i < a.layers.size(); ++i) {
        const LayerStats &x = a.layers[i], &y = b.layers[i];
        if (!(x.cosine == y.cosine))
            return QStringLiteral("layer %1 cosine").arg(i);
        if (x.isMoe != y.isMoe)
            return QStringLiteral("layer %1 isMoe").arg(i);
        if (!x.isMoe)
            continue;
        const RouterStats &r = x.router, &q = y.router;
        if (r.expertTokens != q.expertTokens || r.expertTop1 != q.expertTop1)
            return QStringLiteral("layer %1 expert counts").arg(i);
        if (!(r.coactivation == q.coactivation))
            return QStringLiteral("layer %1 coactivation").arg(i);
        if (!(r.correlation == q.correlation))
            return QStringLiteral("layer %1 correlation").arg(i);
        if (!(r.transitions == q.transitions))
            return QStringLiteral("layer %1 transitions").arg(i);
        if (!(r.domainTokens == q.domainTokens))
            return QStringLiteral("layer %1 domain_tokens").arg(i);
        if (!(r == q))
            return QStringLiteral("layer %1 router scalars/masses/dead").arg(i);
    }
    if (!(a.outlier == b.outlier))
        return QStringLiteral("outlier params");
    if (a.linears.size() != b.linears.size())
        return QStringLiteral("linear count");
    for (size_t i = 0; i < a.linears.size(); ++i)
        if (!(a.linears[i] == b.linears[i]))
            return QStringLiteral("linear %1 (%2)").arg(i).arg(QString::fromStdString(a.linears[i].name));
    return {};
}

QString errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

QStringList tempLeftovers(const QString& dir)
{
    return QDir(dir).entryList({QStringLiteral("*.tmp.*")}, QDir::Files | QDir::Hidden);
}

double jsonNumber(const QJsonValue& v)
{
    return v.isNull() ? kNaN : v.toDouble();
}

bool sameNumber(double a, double b)
{
    return a == b || (std::isnan(a) && std::isnan(b));
}

} // namespace

class TestStatsH5 : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;

    QString path(const QString& name) const { return m_dir.filePath(name); }
    static std::string s(const QString& q) { return q.toStdString(); }

    QString script() const { return test::sourcePath(QStringLiteral("tests/engine/read_stats.py")); }

private Q_SLOTS:
    void initTestCase() { QVERIFY(m_dir.isValid()); }

    void roundTrip_data()
    {
        QTest::addColumn<int>("layers");
        QTest::addColumn<int>("experts");
        QTest::addColumn<int>("domains");
        QTest::addColumn<bool>("linears");
        QTest::newRow("small") << 4 << 8 << 2 << true;
        QTest::newRow("256 experts") << 3 << 256 << 3 << true;
        QTest::newRow("no domains, no linears") << 3 << 4 << 0 << false;
        QTest::newRow("dense only") << 2 << 4 << 1 << true;
    }
    void roundTrip()
    {
        QFETCH(int, layers);
        QFETCH(int, experts);
        QFETCH(int, domains);
        QFETCH(bool, linears);
        Shape sh;
        sh.layers = layers;
        sh.experts = experts;
        sh.domains = domains;
        sh.withLinears = linears;
        if (QTest::currentDataTag() == QLatin1String("dense only"))
            sh.denseLayers = layers;
        const CalibStats a = makeStats(sh);
        const QString file = path(QStringLiteral("rt.h5"));
        writeStats(a, s(file));
        QVERIFY(tempLeftovers(m_dir.path()).isEmpty());
        const CalibStats b = readStats(s(file));
        QCOMPARE(firstDifference(a, b), QString());
        QVERIFY(a == b);
        // Spot checks that equality is not vacuous.
        QCOMPARE(b.provenance.dataDescription, a.provenance.dataDescription);
        if (sh.denseLayers < layers) {
            QCOMPARE(b.router(1)->coactivation.rows, int64_t(experts));
            QVERIFY(std::isnan(b.layers[1].cosine.block));
            QCOMPARE(b.totalDeadExperts(), a.totalDeadExperts());
            QVERIFY(b.totalDeadExperts() > 0);
        }
        if (linears) {
            const LinearStats& mid = b.linears[b.linears.size() / 2];
            QVERIFY(mid.actAbsMax.empty());
            QVERIFY(std::isnan(mid.outlierScore));
        }
    }

    void overwriteKeepsOneFile()
    {
        const QString file = path(QStringLiteral("over.h5"));
        Shape sh;
        writeStats(makeStats(sh, 1), s(file));
        const CalibStats second = makeStats(sh, 2);
        writeStats(second, s(file));
        QVERIFY(readStats(s(file)) == second);
        QVERIFY(tempLeftovers(m_dir.path()).isEmpty());
    }

    // Same statistics, same bytes (determinism, docs/architecture.md Conventions): no timestamps in
    // HDF5 object headers.
    void deterministicBytes()
    {
        const CalibStats a = makeStats(Shape{});
        const QString f1 = path(QStringLiteral("det1.h5")), f2 = path(QStringLiteral("det2.h5"));
        writeStats(a, s(f1));
        QTest::qSleep(1100); // HDF5's object times have one-second resolution
        writeStats(a, s(f2));
        QCOMPARE(test::readAll(f1), test::readAll(f2));
    }

    // The documented layout, read by h5py without moewb in the loop.
    void h5pyReadsValues()
    {
        Shape sh;
        const CalibStats a = makeStats(sh);
        const QString file = path(QStringLiteral("py.h5"));
        writeStats(a, s(file));
        const QByteArray out = test::runPython({script(), QStringLiteral("read"), file});
        QJsonParseError perr;
        const QJsonObject j = QJsonDocument::fromJson(out, &perr).object();
        QVERIFY2(perr.error == QJsonParseError::NoError, qPrintable(perr.errorString()));

        const QJsonObject attrs = j[QStringLiteral("attrs")].toObject();
        QCOMPARE(attrs[QLatin1String(h5::kFormatVersion)].toInteger(), kStatsFormatVersion);
        QCOMPARE(attrs[QLatin1String(h5::kFormat)].toString(), QStringLiteral("moewb-stats"));
        QCOMPARE(attrs[QLatin1String(h5::kModelPath)].toString().toStdString(), a.provenance.modelPath);
        QCOMPARE(attrs[QLatin1String(h5::kArchitecture)].toString().toStdString(), a.provenance.architecture);
        QCOMPARE(attrs[QLatin1String(h5::kDataDescription)].toString().toStdString(), a.provenance.dataDescription);
        QCOMPARE(attrs[QLatin1String(h5::kSeed)].toInteger(), a.provenance.seed);
        QCOMPARE(attrs[QLatin1String(h5::kNumTokens)].toInteger(), a.provenance.numTokens);
        QCOMPARE(attrs[QLatin1String(h5::kRandomWindows)].toInteger(), int64_t(1));
        QCOMPARE(attrs[QLatin1String(h5::kNumLayers)].toInteger(), a.numLayers);

        const QJsonObject data = j[QStringLiteral("data")].toObject();
        QCOMPARE(data[QLatin1String(h5::kDomains)].toArray().at(1).toString(), QStringLiteral("domain1"));
        QCOMPARE(data[QLatin1String(h5::kFileHash)].toArray().at(0).toString().toStdString(),
                 a.provenance.dataFiles[0].hash);
        QCOMPARE(data[QLatin1String(h5::kFileHashAlgo)].toArray().at(1).toString(), QStringLiteral("fnv1a64"));
        QCOMPARE(data[QLatin1String(h5::kFileBytes)].toArray().at(1).toInteger(), int64_t(1001));
        QCOMPARE(data[QLatin1String(h5::kDomainTokenCounts)].toArray().at(0).toInteger(),
                 a.provenance.domainTokenCounts[0]);

        const QJsonArray layers = j[QStringLiteral("layers")].toArray();
        QCOMPARE(layers.size(), qsizetype(a.numLayers));
        for (int i = 0; i < layers.size(); ++i) {
            const QJsonObject l = layers[i].toObject();
            const QJsonObject la = l[QStringLiteral("attrs")].toObject();
            const LayerStats& ref = a.layers[size_t(i)];
            QCOMPARE(la[QLatin1String(h5::kIsMoe)].toInteger(), int64_t(ref.isMoe));
            QVERIFY(sameNumber(jsonNumber(la[QLatin1String(h5::kBlockCosWhole)]), ref.cosine.block));
            QCOMPARE(jsonNumber(la[QLatin1String(h5::kBlockCosAttn)]), ref.cosine.attn);
            QCOMPARE(la[QLatin1String(h5::kBlockCosTokens)].toInteger(), ref.cosine.tokens);
            if (!ref.isMoe) {
                QVERIFY(!l.contains(QLatin1String(h5::kExpertTokens)));
                continue;
            }
            const RouterStats& r = ref.router;
            QCOMPARE(jsonNumber(la[QLatin1String(h5::kRouterEntropy)]), r.routerEntropy);
            QCOMPARE(la[QLatin1String(h5::kNextMoeLayer)].toInteger(), r.nextMoeLayer);
            auto ds = [&](const char* name) { return l[QLatin1String(name)].toObject(); };
            const QJsonArray tokens = ds(h5::kExpertTokens)[QStringLiteral("data")].toArray();
            for (int64_t e = 0; e < r.numExperts; ++e) {
                QCOMPARE(tokens[e].toInteger(), r.expertTokens[size_t(e)]);
                QCOMPARE(ds(h5::kExpertWeightMass)[QStringLiteral("data")].toArray()[e].toDouble(),
                         r.expertWeightMass[size_t(e)]);
            }
            const QJsonArray coact = ds(h5::kCoactivation)[QStringLiteral("data")].toArray();
            QCOMPARE(coact[2].toArray()[3].toInteger(), r.coactivation.at(2, 3));
            QCOMPARE(coact[7].toArray()[0].toInteger(), r.coactivation.at(7, 0));
            const QJsonArray shapeT = ds(h5::kTransitions)[QStringLiteral("shape")].toArray();
            QCOMPARE(shapeT[1].toInteger(), r.transitions.cols);
            if (r.transitions.cols > 0)
                QCOMPARE(ds(h5::kTransitions)[QStringLiteral("data")].toArray()[5].toArray()[6].toInteger(),
                         r.transitions.at(5, 6));
            const QJsonArray shapeC = ds(h5::kCorrelation)[QStringLiteral("shape")].toArray();
            QCOMPARE(shapeC[0].toInteger(), r.correlation.rows);
            if (!r.correlation.empty())
                QCOMPARE(ds(h5::kCorrelation)[QStringLiteral("data")].toArray()[1].toArray()[4].toDouble(),
                         double(r.correlation.at(1, 4)));
            QCOMPARE(ds(h5::kDomainTokens)[QStringLiteral("data")].toArray()[1].toArray()[3].toInteger(),
                     r.domainTokens.at(1, 3));
            const QJsonArray dead = ds(h5::kDeadExperts)[QStringLiteral("data")].toArray();
            QCOMPARE(dead.size(), qsizetype(r.deadExperts.size()));
            QCOMPARE(dead[0].toInteger(), r.deadExperts[0]);
        }

        QCOMPARE(j[QStringLiteral("linears_attrs")].toObject()[QLatin1String(h5::kOutlierMetric)].toString(),
                 QStringLiteral("col_peak_to_mean_max"));
        const QJsonArray lins = j[QStringLiteral("linears")].toArray();
        QCOMPARE(lins.size(), qsizetype(a.linears.size()));
        for (int i = 0; i < lins.size(); ++i) {
            const QJsonObject o = lins[i].toObject();
            const LinearStats& ref = a.linears[size_t(i)];
            QCOMPARE(o[QStringLiteral("name")].toString().toStdString(), ref.name);
            QCOMPARE(o[QStringLiteral("role")].toString().toStdString(), ref.role);
            QCOMPARE(o[QStringLiteral("expert")].toInteger(), ref.expert);
            QCOMPARE(o[QStringLiteral("tokens")].toInteger(), ref.tokens);
            QCOMPARE(o[QStringLiteral("in_features")].toInteger(), ref.inFeatures);
            QVERIFY(sameNumber(jsonNumber(o[QStringLiteral("outlier_score")]), double(ref.outlierScore)));
            QCOMPARE(o[QStringLiteral("outlier_column")].toInteger(), ref.outlierColumn);
            const QJsonArray am = o[QStringLiteral("act_absmax")].toArray();
            const QJsonArray sq = o[QStringLiteral("act_sqmean")].toArray();
            QCOMPARE(am.size(), qsizetype(ref.actAbsMax.size()));
            for (int c = 0; c < am.size(); ++c) {
                QCOMPARE(am[c].toDouble(), double(ref.actAbsMax[size_t(c)]));
                QCOMPARE(sq[c].toDouble(), double(ref.actSqMean[size_t(c)]));
            }
        }
    }

    void notHdf5()
    {
        const QString file = path(QStringLiteral("text.h5"));
        test::writeAll(file, "this is not HDF5\n");
        QCOMPARE(errorOf([&] { readStats(s(file)); }), file + QStringLiteral(": not an HDF5 file"));
        test::writeAll(file, QByteArray());
        QCOMPARE(errorOf([&] { readStats(s(file)); }), file + QStringLiteral(": not an HDF5 file"));
        const QString missing = path(QStringLiteral("nope.h5"));
        QVERIFY(errorOf([&] { readStats(s(missing)); }).startsWith(missing + QStringLiteral(": cannot open")));
    }

    void truncated()
    {
        const QString file = path(QStringLiteral("full.h5"));
        writeStats(makeStats(Shape{}), s(file));
        const QByteArray bytes = test::readAll(file);
        const QString cut = path(QStringLiteral("cut.h5"));
        test::writeAll(cut, bytes.left(bytes.size() / 2));
        const QString err = errorOf([&] { readStats(s(cut)); });
        QVERIFY2(err.startsWith(cut + QStringLiteral(": truncated file")), qPrintable(err));
        QVERIFY2(err.contains(QStringLiteral("%1 of %2 bytes").arg(bytes.size() / 2).arg(bytes.size())),
                 qPrintable(err));
    }

    void damaged_data()
    {
        QTest::addColumn<QString>("action");
        QTest::addColumn<QString>("message");
        QTest::newRow("newer version") << "version3" << "format_version 3 is newer than this moewb (2)";
        QTest::newRow("version 99") << "version99" << "format_version 99 is newer than this moewb (2)";
        QTest::newRow("version 0") << "version0" << "format_version 0 is not supported by this moewb (2)";
        QTest::newRow("version 1") << "asv1" << "format_version 1 is no longer read";
        QTest::newRow("variable-length strings in version 2") << "vlenstrings"
                                                               << "dataset /linears/name holds variable-length strings";
        QTest::newRow("no version") << "noversion" << "not a moewb stats file (no format_version attribute)";
        QTest::newRow("dataset deleted") << "deldataset" << "missing dataset /layers/1/coactivation";
        QTest::newRow("group deleted") << "delgroup" << "missing group /layers/2";
        QTest::newRow("attribute deleted") << "delattr" << "missing attribute 'num_experts' on /layers/1";
        QTest::newRow("wrong shape") << "badshape" << "dataset /layers/1/expert_tokens has shape [7], expected [8]";
        QTest::newRow("wrong type") << "badtype" << "dataset /linears/tokens is string, expected int64";
        QTest::newRow("bad offset") << "badoffset" << "is past the end of act_absmax";
    }
    void damaged()
    {
        QFETCH(QString, action);
        QFETCH(QString, message);
        const QString file = path(QStringLiteral("damaged-%1.h5").arg(action));
        writeStats(makeStats(Shape{}), s(file));
        test::runPython({script(), QStringLiteral("mutate"), file, action});
        const QString err = errorOf([&] { readStats(s(file)); });
        QVERIFY2(err.startsWith(file + QStringLiteral(": ")), qPrintable(err));
        QVERIFY2(err.contains(message), qPrintable(err));
        QVERIFY2(!err.contains(QLatin1Char('\n')), qPrintable(err));
    }

    void inconsistentStructRefused()
    {
        CalibStats st = makeStats(Shape{});
        st.layers[1].router.coactivation.data.pop_back();
        const QString file = path(QStringLiteral("bad-struct.h5"));
        const QString err = errorOf([&] { writeStats(st, s(file)); });
        QVERIFY2(err.contains(QStringLiteral("layer 1 coactivation")), qPrintable(err));
        QVERIFY(!QFileInfo::exists(file));
        QVERIFY(tempLeftovers(m_dir.path()).isEmpty());
    }

    void atomicUnwritableDir()
    {
        const CalibStats st = makeStats(Shape{});
        // A path under a regular file fails for every user, root included.
        const QString parentFile = path(QStringLiteral("plainfile"));
        test::writeAll(parentFile, "x");
        const QString under = parentFile + QStringLiteral("/stats.h5");
        QString err = errorOf([&] { writeStats(st, s(under)); });
        QVERIFY2(err.startsWith(under + QStringLiteral(": cannot create")), qPrintable(err));

        QTemporaryDir ro;
        QVERIFY(QFile::setPermissions(ro.path(), QFileDevice::ReadOwner | QFileDevice::ExeOwner));
        const QString roFile = ro.filePath(QStringLiteral("stats.h5"));
        err = errorOf([&] { writeStats(st, s(roFile)); });
        QFile::setPermissions(ro.path(), QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
        if (::geteuid() == 0) {
            QVERIFY(err.isEmpty()); // root ignores directory permissions; the case above covered the failure
        } else {
            QVERIFY2(err.contains(QStringLiteral("Permission denied")), qPrintable(err));
            QVERIFY(!QFileInfo::exists(roFile));
        }
        QVERIFY(tempLeftovers(ro.path()).isEmpty());
    }

    void atomicRenameFails()
    {
        // The target is a directory: everything is written, then the rename fails.
        const QString target = path(QStringLiteral("adir.h5"));
        QVERIFY(QDir().mkpath(target));
        const QString err = errorOf([&] { writeStats(makeStats(Shape{}), s(target)); });
        QVERIFY2(err.contains(QStringLiteral("cannot rename")), qPrintable(err));
        QVERIFY(QFileInfo(target).isDir());
        QVERIFY(tempLeftovers(m_dir.path()).isEmpty());
    }

    void atomicCancelMidway()
    {
        const QString file = path(QStringLiteral("cancel.h5"));
        const CalibStats first = makeStats(Shape{}, 1);
        writeStats(first, s(file));
        const QByteArray before = test::readAll(file);
        int calls = 0;
        const ProgressFn stopAfterTwoLayers = [&](const Progress& p) {
            ++calls;
            return p.done < 3;
        };
        bool cancelled = false;
        try {
            writeStats(makeStats(Shape{}, 2), s(file), stopAfterTwoLayers);
        } catch (const Cancelled&) {
            cancelled = true;
        }
        QVERIFY(cancelled);
        QCOMPARE(calls, 3);
        QCOMPARE(test::readAll(file), before);
        QVERIFY(tempLeftovers(m_dir.path()).isEmpty());
        // And without a previous file, a cancelled write leaves nothing.
        const QString fresh = path(QStringLiteral("cancel-fresh.h5"));
        QVERIFY_THROWS_EXCEPTION(Cancelled, writeStats(first, s(fresh), [](const Progress&) { return false; }));
        QVERIFY(!QFileInfo::exists(fresh));
        QVERIFY(tempLeftovers(m_dir.path()).isEmpty());
    }

    // Qwen3-30B-A3B-sized: 48 MoE layers x 128 experts (top-8), hidden 2048, expert width 768,
    // q 4096 / kv 512. 18.7k linears, 30.5M channel values per statistic, a ~250 MiB file and
    // ~0.8 GB of RAM for two copies. Opt-in: MOEWB_BIG_TESTS=1.
    void bigSynthetic()
    {
        if (qEnvironmentVariableIsEmpty("MOEWB_BIG_TESTS"))
            QSKIP("set MOEWB_BIG_TESTS=1 to time a Qwen3-30B-sized stats file");
        Shape sh;
        sh.layers = 48;
        sh.experts = 128;
        sh.topK = 8;
        sh.hidden = 2048;
        sh.expertWidth = 768;
        sh.qOut = 4096;
        sh.kvOut = 512;
        sh.domains = 2;
        sh.denseLayers = 0;
        const CalibStats a = makeStats(sh);
        const QString dir = qEnvironmentVariable("MOEWB_BIG_DIR", m_dir.path());
        const QString file = QDir(dir).filePath(QStringLiteral("big.h5"));
        QElapsedTimer t;
        t.start();
        writeStats(a, s(file));
        const qint64 writeMs = t.elapsed();
        t.restart();
        const CalibStats b = readStats(s(file));
        const qint64 readMs = t.elapsed();
        size_t channels = 0;
        for (const LinearStats& l : a.linears)
            channels += l.actAbsMax.size();
        qInfo("big stats: %zu linears, %zu channel values per statistic, file %.1f MiB, write %lld ms, read %lld ms",
              a.linears.size(), channels, double(QFileInfo(file).size()) / (1 << 20), writeMs, readMs);
        QVERIFY(a == b);
        QFile::remove(file);
    }
};

QTEST_APPLESS_MAIN(TestStatsH5)
#include "tst_stats_h5.moc"
