// SPDX-License-Identifier: MIT
// Distributed calibration and quantization (#15): 2 ranks of the moewb CLI on 127.0.0.1 give the
// same statistics as one process (counts bitwise, float statistics within summation tolerance)
// and the same quantized weights; a rank that dies makes the other fail with a clear message and
// no output; a missing peer fails the rendezvous within the timeout. Plus the pieces on their own:
// sharding, owner assignment, the byte form of quantized linears, the c10d reductions in-process.
#include "moewb/core/error.h"
#include "moewb/dist/dist.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/stats/stats_h5.h"
#include "quant/quant_dist.h"
#include "testutil.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QtTest>

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <map>
#include <thread>

#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace moewb;
using namespace moewb::test;

namespace {

// Float statistics of a 2-rank run vs one process: the per-rank partial sums are added in another
// grouping, and each rank's forward runs in smaller batches (fp32 GEMM blocking differs by the
// last bits); 1e-5 relative covers both on O(1) values.
constexpr double kMaxStatRelDiff = 1e-5;
// Correlations in [-1, 1] from reduced double sums.
constexpr double kMaxCorrelationDiff = 1e-5;

/// A TCP port that was free a moment ago (bind to 0, read it back, close).
int freePort()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
        || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("no free port");
    const int port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

/// Starts `world` ranks of `moewb args --distributed --rank r --world-size N --master-port P`.
std::vector<std::unique_ptr<QProcess>> startRanks(const QStringList& args, int world, int port,
                                                  const QProcessEnvironment& env = QProcessEnvironment::systemEnvironment())
{
    std::vector<std::unique_ptr<QProcess>> ps;
    for (int r = 0; r < world; ++r) {
        auto p = std::make_unique<QProcess>();
        p->setProcessEnvironment(env);
        p->start(moewbCli(), args + QStringList{"--distributed", "--rank", QString::number(r), "--world-size",
                                               QString::number(world), "--master-addr", "127.0.0.1",
                                               "--master-port", QString::number(port)});
        ps.push_back(std::move(p));
    }
    return ps;
}

std::vector<CliRun> finish(std::vector<std::unique_ptr<QProcess>>& ps, int timeoutMs = 120000)
{
    std::vector<CliRun> out;
    for (auto& p : ps) {
        CliRun r;
        if (p->waitForFinished(timeoutMs))
            r.exitCode = p->exitStatus() == QProcess::NormalExit ? p->exitCode() : -1;
        else
            p->kill();
        r.out = p->readAllStandardOutput();
        r.err = p->readAllStandardError();
        out.push_back(r);
    }
    return out;
}

bool close(double a, double b, double rel)
{
    if (std::isnan(a) || std::isnan(b))
        return std::isnan(a) && std::isnan(b);
    return std::fabs(a - b) <= rel * std::max(1.0, std::max(std::fabs(a), std::fabs(b)));
}

/// Token counts of 2 ranks vs 1. Layer 0 sees identical inputs: equal. Later layers see the outputs
/// of slightly differently quantized layers (the Hessians are summed in another order), which can
/// move a token across a near-tie of router probabilities (measured with balancing off: 217/218,
/// 180/177, 228/230 tokens on layer 1), and next-choices (#25) adds the boundaries between the next
/// choices to the top-k one: within max(4, 4 %).
bool tokensMatch(int64_t layer, int64_t a, int64_t b)
{
    if (layer == 0)
        return a == b;
    return std::abs(a - b) <= std::max<int64_t>(4, b / 25);
}

/// |a − b| <= rel · max(|a|, |b|).
bool relClose(double a, double b, double rel)
{
    return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b));
}

template <typename T>
QString firstMismatch(const std::vector<T>& a, const std::vector<T>& b, double rel, const char* what)
{
    if (a.size() != b.size())
        return QString("%1: sizes %2 vs %3").arg(what).arg(a.size()).arg(b.size());
    for (size_t i = 0; i < a.size(); ++i)
        if (!close(double(a[i]), double(b[i]), rel))
            return QString("%1[%2]: %3 vs %4").arg(what).arg(i).arg(double(a[i]), 0, 'g', 17).arg(double(b[i]), 0, 'g', 17);
    return {};
}

void writeIdsFile(const QString& path, int64_t n, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const at::Tensor t = at::randint(0, 290, {n}, gen, at::TensorOptions().dtype(at::kInt));
    QJsonArray a;
    for (int64_t i = 0; i < n; ++i)
        a.append(t[i].item<int>());
    writeAll(path, QJsonDocument(a).toJson(QJsonDocument::Compact));
}

QJsonObject readJson(const QString& path)
{
    return QJsonDocument::fromJson(readAll(path)).object();
}

QStringList leftovers(const QString& dir, const QString& prefix)
{
    return QDir(dir).entryList({prefix + "*"}, QDir::AllEntries | QDir::NoDotAndDotDot);
}

} // namespace

class TestDistributed : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_tmp;
    QString m_model, m_domainA, m_domainB;

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_model = m_tmp.path() + "/mixtral";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", m_model, "--seed", "3", "--tiny"});
        m_domainA = m_tmp.path() + "/a.json";
        m_domainB = m_tmp.path() + "/b.json";
        writeIdsFile(m_domainA, 200, 1);
        writeIdsFile(m_domainB, 200, 2);
    }

    void shardsAreContiguousAndCover()
    {
        // 10 items on 3 ranks: 4, 3, 3 in rank order.
        QCOMPARE(shardOf(10, 0, 3).begin, 0);
        QCOMPARE(shardOf(10, 0, 3).end, 4);
        QCOMPARE(shardOf(10, 1, 3).begin, 4);
        QCOMPARE(shardOf(10, 1, 3).end, 7);
        QCOMPARE(shardOf(10, 2, 3).begin, 7);
        QCOMPARE(shardOf(10, 2, 3).end, 10);
        QCOMPARE(shardOf(5, 0, 1).end, 5);
        for (int64_t n : {1, 2, 7, 128})
            for (int w : {1, 2, 3, 5}) {
                int64_t next = 0;
                for (int r = 0; r < w; ++r) {
                    const ShardRange s = shardOf(n, r, w);
                    QCOMPARE(s.begin, next);
                    QVERIFY(s.end - s.begin == n / w || s.end - s.begin == n / w + 1);
                    next = s.end;
                }
                QCOMPARE(next, n);
            }
    }

    void ownersBalanceCost()
    {
        // Decreasing cost to the least loaded rank: 8→0, 7→1, 6→1 (load 7 < 8), 5→0 (8 < 13), 1→0 (13 = 13, lowest).
        const std::vector<int> o = assignOwners({5, 8, 1, 7, 6}, 2);
        QCOMPARE(o, (std::vector<int>{0, 0, 0, 1, 1}));
        QCOMPARE(assignOwners({3, 3, 3}, 1), (std::vector<int>{0, 0, 0}));
        QCOMPARE(assignOwners({1, 1, 1}, 4), (std::vector<int>{0, 1, 2}));
        QCOMPARE(quantizeCost(2, 3), 4.0 * 5.0);
    }

    void quantizedLinearsRoundTrip()
    {
        QuantizedLinear a;
        a.q = at::tensor(std::vector<int32_t>{0, 15, 7, 3, 9, 1}, at::kInt).view({2, 3});
        a.scales = at::tensor(std::vector<float>{0.5f, 0.25f}).view({2, 1});
        a.zeros = at::tensor(std::vector<float>{8.0f, 7.0f}).view({2, 1});
        a.gIdx = at::zeros({3}, at::kInt);
        a.result.name = "model.layers.0.mlp.x";
        a.result.method = "gptq";
        a.result.fallback = "";
        a.result.plan.bits = 4;
        a.result.expert = 3;
        a.result.tokens = 77;
        a.result.plan.sym = false;
        a.result.plan.actOrder = true;
        a.result.relError = 0.125;
        QuantizedLinear b = a;
        b.q = at::full({2, 3}, 300, at::kInt); // > 8 bits travels as int16
        b.result.plan.bits = 10;
        b.result.fallback = "12 routed tokens < min-expert-tokens 32";
        const auto back = unpackQuantized(packQuantized({a, b}), {at::kBFloat16, at::kFloat});
        QCOMPARE(back.size(), size_t(2));
        QVERIFY(back[0].q.equal(a.q));
        QCOMPARE(back[0].q.scalar_type(), at::kInt);
        QVERIFY(back[1].q.equal(b.q));
        QVERIFY(back[0].scales.equal(a.scales) && back[0].zeros.equal(a.zeros) && back[0].gIdx.equal(a.gIdx));
        QCOMPARE(back[0].result.name, a.result.name);
        QCOMPARE(back[0].result.tokens, int64_t(77));
        QCOMPARE(back[0].result.expert, int64_t(3));
        QCOMPARE(back[0].result.plan.sym, false);
        QCOMPARE(back[0].result.plan.actOrder, true);
        QCOMPARE(back[0].result.relError, 0.125);
        QCOMPARE(back[1].result.fallback, b.result.fallback);
        // stored = scale · (q − zero) in the checkpoint dtype: row 0 = 0.5·(0−8, 15−8, 7−8).
        QCOMPARE(back[0].stored.scalar_type(), at::kBFloat16);
        const at::Tensor s = back[0].stored.to(at::kFloat);
        QCOMPARE(s[0][0].item<float>(), -4.0f);
        QCOMPARE(s[0][1].item<float>(), 3.5f);
        QCOMPARE(s[1][0].item<float>(), 0.25f * (3 - 7));
    }

    // Two ranks as threads of this process: the c10d reductions themselves.
    void reductionsInProcess()
    {
        const int port = freePort();
        std::vector<std::vector<int64_t>> ints(2);
        std::vector<std::vector<double>> dbls(2);
        std::vector<std::vector<float>> maxs(2);
        std::vector<std::vector<std::string>> gathered(2);
        std::vector<std::string> bcast(2);
        std::vector<std::string> errors(2);
        std::vector<uint64_t> bytes(2);
        auto rank = [&](int r) {
            try {
                DistOptions o;
                o.rank = r;
                o.worldSize = 2;
                o.masterAddr = "127.0.0.1";
                o.masterPort = port;
                o.timeoutSeconds = 30;
                auto d = DistContext::connect(resolveDistOptions(o));
                ints[size_t(r)] = {int64_t(1) << 40, r + 1, -r};
                dbls[size_t(r)] = {0.5 * (r + 1), 1e-300};
                maxs[size_t(r)] = {float(r), -1.0f, r == 0 ? 7.0f : 3.0f};
                ReduceList rl;
                rl.sum(ints[size_t(r)].data(), 3);
                rl.sum(dbls[size_t(r)].data(), 2);
                rl.max(maxs[size_t(r)].data(), 3);
                rl.run(*d, "test");
                gathered[size_t(r)] = d->allGather(std::string(size_t(r * 5 + 1), char('a' + r)), "test gather");
                bcast[size_t(r)] = r == 1 ? std::string("from one\0x", 10) : std::string("zz");
                d->broadcast(bcast[size_t(r)], 1, "test broadcast");
                d->barrier("test barrier");
                bytes[size_t(r)] = d->bytesCommunicated();
            } catch (const std::exception& e) {
                errors[size_t(r)] = e.what();
            }
        };
        std::thread t1(rank, 1);
        rank(0);
        t1.join();
        QVERIFY2(errors[0].empty() && errors[1].empty(), (errors[0] + " | " + errors[1]).c_str());
        for (int r = 0; r < 2; ++r) {
            QCOMPARE(ints[size_t(r)], (std::vector<int64_t>{int64_t(1) << 41, 3, -1}));
            QCOMPARE(dbls[size_t(r)], (std::vector<double>{1.5, 2e-300}));
            QCOMPARE(maxs[size_t(r)], (std::vector<float>{1.0f, -1.0f, 7.0f}));
            QCOMPARE(gathered[size_t(r)], (std::vector<std::string>{"a", "bbbbbb"}));
            QCOMPARE(bcast[size_t(r)], std::string("from one\0x", 10));
        }
        // Payload handed over: 3 int64 + 2 double + 3 float reduced, 2 int64 gather sizes, the
        // gather padded to the longest string (6), and on the broadcast root its size + 10 bytes.
        QCOMPARE(bytes[0], uint64_t(3 * 8 + 2 * 8 + 3 * 4 + 2 * 8 + 6));
        QCOMPARE(bytes[1], uint64_t(3 * 8 + 2 * 8 + 3 * 4 + 2 * 8 + 6 + 8 + 10));
    }

    void badOptionsAreUsageErrors()
    {
        DistOptions o;
        o.rank = 2;
        o.worldSize = 2;
        QVERIFY_THROWS_EXCEPTION(InputError, resolveDistOptions(o));
        const CliRun r = runCli(moewbCli(), {"calibrate", m_model, "--data", m_domainA, "--out", m_tmp.path() + "/x.h5",
                                             "--rank", "1"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("--rank needs --distributed"));
    }

    // calibrate: 2 ranks (through scripts/launch-local.sh) and 3 ranks (uneven blocks of 4, 3 and 3
    // windows) vs one process on two domains; the probe (160 tokens = 5 windows) spans two ranks'
    // windows.
    void calibrateEqualsSingleProcess_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::newRow("2 ranks, launch-local.sh") << 2;
        QTest::newRow("3 ranks, uneven") << 3;
    }

    void calibrateEqualsSingleProcess()
    {
        QFETCH(int, ranks);
        const QStringList common{"calibrate", m_model, "--domain", "a=" + m_domainA, "--domain", "b=" + m_domainB,
                                 "--samples", "10", "--seq-len", "32", "--probe-tokens", "160"};
        const QString one = m_tmp.path() + "/one.h5", two = m_tmp.path() + QString("/ranks%1.h5").arg(ranks);
        if (!QFileInfo::exists(one)) {
            const CliRun s = runCli(moewbCli(), common + QStringList{"--out", one});
            QVERIFY2(s.exitCode == 0, s.err.constData());
        }
        if (ranks == 2) {
            QProcess launch;
            launch.start("bash", QStringList{sourcePath("scripts/launch-local.sh"), "2", moewbCli()} + common
                                     + QStringList{"--out", two, "--distributed"});
            QVERIFY(launch.waitForFinished(120000));
            const QByteArray err = launch.readAllStandardError();
            QVERIFY2(launch.exitCode() == 0, err.constData());
            QVERIFY(err.contains("rank 1 of 2 joined"));
        } else {
            auto ps = startRanks(common + QStringList{"--out", two}, ranks, freePort());
            for (const CliRun& r : finish(ps))
                QVERIFY2(r.exitCode == 0, r.err.constData());
        }

        const CalibStats a = readStats(one.toStdString()), b = readStats(two.toStdString());
        QCOMPARE(b.provenance.numTokens, a.provenance.numTokens);
        QCOMPARE(b.provenance.numTokens, int64_t(320));
        QCOMPARE(b.provenance.numSamples, a.provenance.numSamples);
        QCOMPARE(b.provenance.domainTokenCounts, a.provenance.domainTokenCounts);
        QCOMPARE(b.provenance.optionsJson, a.provenance.optionsJson);
        QCOMPARE(b.layers.size(), a.layers.size());
        int routers = 0;
        for (size_t l = 0; l < a.layers.size(); ++l) {
            const LayerStats &la = a.layers[l], &lb = b.layers[l];
            QCOMPARE(lb.cosine.tokens, la.cosine.tokens);
            QVERIFY(close(lb.cosine.attn, la.cosine.attn, kMaxStatRelDiff));
            QVERIFY(close(lb.cosine.mlp, la.cosine.mlp, kMaxStatRelDiff));
            QVERIFY(close(lb.cosine.block, la.cosine.block, kMaxStatRelDiff));
            if (!la.isMoe)
                continue;
            ++routers;
            const RouterStats &ra = la.router, &rb = lb.router;
            // Counts: bitwise.
            QCOMPARE(rb.tokens, ra.tokens);
            QCOMPARE(rb.expertTokens, ra.expertTokens);
            QCOMPARE(rb.expertTop1, ra.expertTop1);
            QVERIFY(rb.domainTokens == ra.domainTokens);
            QCOMPARE(rb.domainTokens.rows, int64_t(2));
            QVERIFY(rb.coactivation == ra.coactivation);
            QVERIFY(rb.transitions == ra.transitions);
            QCOMPARE(rb.deadExperts, ra.deadExperts);
            QCOMPARE(rb.correlationTokens, int64_t(160));
            QCOMPARE(rb.correlationTokens, ra.correlationTokens);
            // Sums: within summation tolerance; the correlation comes from the reduced sums.
            QString m = firstMismatch(rb.expertWeightMass, ra.expertWeightMass, kMaxStatRelDiff, "weight mass");
            QVERIFY2(m.isEmpty(), qPrintable(m));
            m = firstMismatch(rb.expertProbMass, ra.expertProbMass, kMaxStatRelDiff, "prob mass");
            QVERIFY2(m.isEmpty(), qPrintable(m));
            QVERIFY(close(rb.routerEntropy, ra.routerEntropy, kMaxStatRelDiff));
            m = firstMismatch(rb.correlation.data, ra.correlation.data, kMaxCorrelationDiff, "correlation");
            QVERIFY2(m.isEmpty(), qPrintable(m));
        }
        QCOMPARE(routers, 2);
        QCOMPARE(b.linears.size(), a.linears.size());
        for (size_t i = 0; i < a.linears.size(); ++i) {
            const LinearStats &x = a.linears[i], &y = b.linears[i];
            QCOMPARE(y.tokens, x.tokens);
            QString m = firstMismatch(y.actAbsMax, x.actAbsMax, kMaxStatRelDiff, "abs max");
            QVERIFY2(m.isEmpty(), qPrintable(QString::fromStdString(x.name) + ": " + m));
            m = firstMismatch(y.actSqMean, x.actSqMean, kMaxStatRelDiff, "mean square");
            QVERIFY2(m.isEmpty(), qPrintable(QString::fromStdString(x.name) + ": " + m));
            QCOMPARE(y.outlierScore, x.outlierScore);
        }
    }

    // quantize, RTN: the quantizer does not depend on the data, so every weight must be bitwise the
    // single-process one (this exercises the split across ranks, the byte form, the gather and the
    // sink order); token counts come from the reduced Hessian row counts.
    void quantizeRtnIsBitwiseSingleProcess()
    {
        const QString plan = m_tmp.path() + "/plan-rtn.json";
        writeAll(plan, R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 3, "group_size": 16, "method": "rtn", "sym": false}, "rules": []})");
        const QStringList common{"quantize", m_model, "--plan", plan, "--calib", m_domainA, "--calib", m_domainB,
                                 "--samples", "12", "--seq-len", "32"};
        const QString one = m_tmp.path() + "/r-one", two = m_tmp.path() + "/r-two";
        const CliRun s = runCli(moewbCli(), common + QStringList{"--out", one});
        QVERIFY2(s.exitCode == 0, s.err.constData());
        auto ps = startRanks(common + QStringList{"--out", two}, 2, freePort());
        const std::vector<CliRun> r = finish(ps);
        QVERIFY2(r[0].exitCode == 0, r[0].err.constData());
        QVERIFY2(r[1].exitCode == 0, r[1].err.constData());
        QVERIFY(r[1].out.contains("rank 0 writes"));
        const Checkpoint a = Checkpoint::open(one.toStdString()), b = Checkpoint::open(two.toStdString());
        QCOMPARE(b.names(), a.names());
        for (const std::string& name : a.names()) {
            const TensorInfo &ia = a.info(name), &ib = b.info(name);
            QVERIFY(ia.dtype == ib.dtype && ia.shape == ib.shape);
            QVERIFY2(std::memcmp(a.data(name), b.data(name), ia.nbytes()) == 0, name.c_str());
        }
        const QJsonArray la = readJson(one + "/moewb_quant_report.json")["linears"].toArray();
        const QJsonArray lb = readJson(two + "/moewb_quant_report.json")["linears"].toArray();
        QCOMPARE(lb.size(), la.size());
        for (qsizetype i = 0; i < la.size(); ++i) {
            const QJsonObject x = la[i].toObject(), y = lb[i].toObject();
            QCOMPARE(y["name"], x["name"]);
            QCOMPARE(y["method"].toString(), QString("rtn"));
            QCOMPARE(y["tokens"], x["tokens"]);
            QVERIFY(relClose(y["rel_error"].toDouble(), x["rel_error"].toDouble(), 1e-4));
        }
    }

    // quantize, GPTQ 4-bit on every linear: the all-reduced Hessians equal one process's up to
    // summation order. Layer 0's attention sees the embeddings, so its weights must be bitwise equal;
    // later, a code that sits at a rounding tie may flip, and GPTQ's error feedback carries the flip
    // along its row and into later layers' inputs (one process with another --batch-tokens differs
    // from itself the same way), so there the check is that the quantization is as good: the
    // same methods, each linear's relative output error within 5 %, and the same token counts in
    // layer 0 — after it, a flipped code can change a router's top-k for a token near a tie, so a
    // later expert may see a few tokens more or less (measured on this test's model: three experts
    // of layer 1 at 217/218, 180/177 and 228/230 tokens); the routed assignments still add up alike.
    void quantizeGptqMatchesSingleProcess_data()
    {
        // Expert balancing (#25) included: next-choices with a minimum that leaves experts short,
        // so that the per-rank counts must be all-reduced before the ranks are chosen.
        QTest::addColumn<QString>("balance");
        QTest::addColumn<QString>("minTokens");
        QTest::newRow("off") << "off" << "8";
        QTest::newRow("next-choices") << "next-choices" << "200";
        QTest::newRow("all-tokens") << "all-tokens" << "8";
    }

    void quantizeGptqMatchesSingleProcess()
    {
        QFETCH(QString, balance);
        QFETCH(QString, minTokens);
        const QString plan = m_tmp.path() + "/plan.json";
        writeAll(plan, R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 16, "method": "gptq"}, "rules": []})");
        // One sequence per forward batch in both runs: BLAS kernels may round a row of a product
        // differently depending on how many rows it has (AVX-512 kernels do), and a rank's batch
        // would otherwise have half the rows of the single process's.
        const QStringList common{"quantize", m_model, "--plan", plan, "--calib", m_domainA, "--calib", m_domainB,
                                 "--samples", "12", "--seq-len", "32", "--min-expert-tokens", minTokens,
                                 "--balance-experts", balance, "--batch-tokens", "32", "--force"};
        const QString one = m_tmp.path() + "/q-one", two = m_tmp.path() + "/q-two";
        const CliRun s = runCli(moewbCli(), common + QStringList{"--out", one});
        QVERIFY2(s.exitCode == 0, s.err.constData());
        auto ps = startRanks(common + QStringList{"--out", two}, 2, freePort());
        const std::vector<CliRun> r = finish(ps);
        QVERIFY2(r[0].exitCode == 0, r[0].err.constData());
        QVERIFY2(r[1].exitCode == 0, r[1].err.constData());

        const Checkpoint a = Checkpoint::open(one.toStdString()), b = Checkpoint::open(two.toStdString());
        QCOMPARE(b.names(), a.names());
        uint64_t bytes = 0, same = 0;
        int layer0Attention = 0;
        for (const std::string& name : a.names()) {
            const TensorInfo& ia = a.info(name);
            QVERIFY(ia.dtype == b.info(name).dtype && ia.shape == b.info(name).shape);
            const auto* pa = static_cast<const uint8_t*>(a.data(name));
            const auto* pb = static_cast<const uint8_t*>(b.data(name));
            for (uint64_t i = 0; i < ia.nbytes(); ++i)
                same += pa[i] == pb[i] ? 1 : 0;
            bytes += ia.nbytes();
            if (name.rfind("model.layers.0.self_attn.", 0) == 0) {
                QVERIFY2(std::memcmp(pa, pb, ia.nbytes()) == 0, name.c_str());
                ++layer0Attention;
            }
        }
        QCOMPARE(layer0Attention, 4);
        qInfo("GPTQ, 2 ranks vs 1: %.2f %% of the checkpoint's bytes identical", 100.0 * double(same) / double(bytes));

        const QJsonObject ra = readJson(one + "/moewb_quant_report.json"), rb = readJson(two + "/moewb_quant_report.json");
        const QJsonArray la = ra["linears"].toArray(), lb = rb["linears"].toArray();
        QCOMPARE(lb.size(), la.size());
        int gptq = 0;
        int64_t routedOne = 0, routedTwo = 0;
        for (qsizetype i = 0; i < la.size(); ++i) {
            const QJsonObject x = la[i].toObject(), y = lb[i].toObject();
            QCOMPARE(y["name"], x["name"]);
            QCOMPARE(y["method"], x["method"]);
            QVERIFY2(tokensMatch(x["layer"].toInteger(), y["tokens"].toInteger(), x["tokens"].toInteger()),
                     qPrintable(x["name"].toString() + QString(": %1 vs %2 tokens").arg(y["tokens"].toInteger())
                                                           .arg(x["tokens"].toInteger())));
            if (x["name"].toString().endsWith(".w1")) // one per expert: the routed assignments add up alike
                routedOne += x["tokens"].toInteger(), routedTwo += y["tokens"].toInteger();
            QCOMPARE(y["fallback"], x["fallback"]);
            gptq += x["method"].toString() == "gptq" ? 1 : 0;
            const double ex = x["rel_error"].toDouble(), ey = y["rel_error"].toDouble();
            QVERIFY2(std::fabs(ey - ex) <= 0.05 * ex,
                     qPrintable(x["name"].toString() + QString(": %1 vs %2").arg(ey).arg(ex)));
        }
        if (balance != "next-choices")
            QCOMPARE(gptq, int(la.size()));
        if (balance == "off")
            QCOMPARE(routedTwo, routedOne);
        const QJsonArray ea = ra["experts"].toArray(), eb = rb["experts"].toArray();
        QVERIFY(ea.size() > 0);
        QCOMPARE(eb.size(), ea.size());
        int64_t extra = 0;
        for (qsizetype i = 0; i < ea.size(); ++i) {
            const QJsonObject x = ea[i].toObject(), y = eb[i].toObject();
            const int64_t layer = x["layer"].toInteger();
            QVERIFY(tokensMatch(layer, y["routed_tokens"].toInteger(), x["routed_tokens"].toInteger()));
            QVERIFY(tokensMatch(layer, y["hessian_tokens"].toInteger(), x["hessian_tokens"].toInteger()));
            QVERIFY(relClose(y["hessian_weight"].toDouble(), x["hessian_weight"].toDouble(), layer == 0 ? 1e-4 : 0.05));
            extra += x["hessian_tokens"].toInteger() - x["routed_tokens"].toInteger();
        }
        QCOMPARE(extra > 0, balance != "off");
        QCOMPARE(rb["calibration"].toObject()["tokens"].toInt(), 12 * 32);
        QVERIFY(relClose(rb["mean_rel_error"].toDouble(), ra["mean_rel_error"].toDouble(), 0.01));
    }

    // A rank killed mid-run: the other exits 1 within the timeout with a message naming itself and
    // the failed operation, and leaves no output (not even its temporary directory).
    void deadRankFailsTheOthers()
    {
        const QString model = sourcePath("datasets/models/moewb-mixtral-8e-v2");
        const QString corpus = m_tmp.path() + "/big.json";
        writeIdsFile(corpus, 64 * 128, 5);
        const QString plan = m_tmp.path() + "/plan-dead.json";
        writeAll(plan, R"({"format": "moewb-plan", "version": 1, "defaults": {"bits": 4, "group_size": 32, "method": "gptq"}, "rules": []})");
        const QString outParent = m_tmp.path() + "/dead";
        QVERIFY(QDir().mkpath(outParent));
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("MOEWB_DIST_TIMEOUT", "30");
        auto ps = startRanks({"quantize", model, "--plan", plan, "--calib", corpus, "--samples", "64", "--seq-len",
                              "128", "--dtype", "f32", "--out", outParent + "/out"},
                             2, freePort(), env);
        // Kill rank 1 as soon as it has joined: rank 0 is then inside the layer loop (it needs
        // rank 1's Hessians for the first group of layer 0).
        QElapsedTimer t;
        t.start();
        QByteArray err1;
        while (!err1.contains("joined") && t.elapsed() < 60000) {
            ps[1]->waitForReadyRead(100);
            err1 += ps[1]->readAllStandardError();
        }
        QVERIFY2(err1.contains("joined"), err1.constData());
        ::kill(pid_t(ps[1]->processId()), SIGKILL);
        t.restart();
        const std::vector<CliRun> r = finish(ps, 60000);
        qInfo("rank 0 exited %.1f s after rank 1 was killed", double(t.elapsed()) / 1000.0);
        QCOMPARE(r[0].exitCode, 1);
        QVERIFY2(r[0].err.contains("moewb: error: rank 0 of 2: "), r[0].err.constData());
        QVERIFY2(r[0].err.contains(" failed"), r[0].err.constData());
        for (const QByteArray& line : r[0].err.split('\n'))
            if (line.startsWith("moewb: error:"))
                QVERIFY2(line.contains(" failed"), line.constData()); // the whole message on one line
        QVERIFY(t.elapsed() < 30000);
        QCOMPARE(leftovers(outParent, "out"), QStringList());
    }

    // Nobody else comes: the rendezvous fails after MOEWB_DIST_TIMEOUT with a message saying where.
    void missingPeerTimesOut()
    {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("MOEWB_DIST_TIMEOUT", "2");
        const QString out = m_tmp.path() + "/lonely.h5";
        auto ps = startRanks({"calibrate", m_model, "--data", m_domainA, "--samples", "2", "--seq-len", "16", "--out", out},
                             2, freePort(), env);
        ps[1]->kill(); // rank 1 never joins
        QElapsedTimer t;
        t.start();
        const std::vector<CliRun> r = finish(ps, 60000);
        QCOMPARE(r[0].exitCode, 1);
        QVERIFY2(r[0].err.contains("rank 0 of 2: rendezvous at 127.0.0.1:"), r[0].err.constData());
        QVERIFY(t.elapsed() < 30000);
        QVERIFY(!QFileInfo::exists(out));
    }
};

QTEST_APPLESS_MAIN(TestDistributed)
#include "tst_distributed.moc"
