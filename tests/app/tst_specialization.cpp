// SPDX-License-Identifier: MIT
// Routing specialization (moewb/stats/specialization.h, `moewb stats specialization`): hand-computed
// cases (perfect specialization, identical routing, a 2 x 2 case with MI = 1 - H_b(1/4)), a stats
// file written from known counts and read back through the CLI, and a real calibration run of a
// random checkpoint checked against an independent NumPy computation (h5py).
#include "../engine/testutil.h"

#include "moewb/core/error.h"
#include "moewb/stats/specialization.h"
#include "moewb/stats/stats_h5.h"

#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace moewb;
using namespace moewb::test;

namespace {

constexpr double kTol = 1e-12;

/// Binary entropy in bits.
double hb(double p)
{
    return -p * std::log2(p) - (1 - p) * std::log2(1 - p);
}

Matrix<int64_t> matrix(int64_t rows, int64_t cols, std::vector<int64_t> values)
{
    Matrix<int64_t> m(rows, cols);
    m.data = std::move(values);
    return m;
}

/// A MoE layer whose statistics other than the per-domain counts are merely consistent in shape.
LayerStats moeLayer(int64_t index, int64_t topK, const Matrix<int64_t>& domainTokens, int64_t nextMoe,
                    int64_t nextExperts)
{
    LayerStats l;
    l.layer = index;
    l.cosine = {0.5, 0.5, 0.5, 10};
    l.isMoe = true;
    RouterStats& r = l.router;
    const int64_t E = domainTokens.cols;
    r.numExperts = E;
    r.topK = topK;
    r.domainTokens = domainTokens;
    r.expertTokens.assign(size_t(E), 0);
    for (int64_t d = 0; d < domainTokens.rows; ++d)
        for (int64_t e = 0; e < E; ++e) {
            r.expertTokens[size_t(e)] += domainTokens.at(d, e);
            r.tokens += domainTokens.at(d, e);
        }
    r.tokens /= topK;
    r.expertTop1.assign(size_t(E), 0);
    r.expertWeightMass.assign(size_t(E), 0.0);
    r.expertProbMass.assign(size_t(E), 0.0);
    r.coactivation = Matrix<int64_t>(E, E);
    r.nextMoeLayer = nextMoe;
    r.transitions = Matrix<int64_t>(E, nextMoe >= 0 ? nextExperts : 0);
    for (int64_t e = 0; e < E; ++e)
        if (r.expertTokens[size_t(e)] == 0)
            r.deadExperts.push_back(e);
    return l;
}

/// Layer 0 dense, layer 1 perfectly specialized (2 domains x 4 experts, top-2), layer 2 identical
/// routing for both domains (top-1).
CalibStats knownStats()
{
    CalibStats s;
    StatsProvenance& p = s.provenance;
    p.modelPath = "/models/known";
    p.architecture = "DeepseekForCausalLM";
    p.modelType = "deepseek";
    p.domains = {"prose", "code"};
    p.domainTokenCounts = {5, 3};
    p.numTokens = 8;
    p.numSamples = 1;
    p.seqLen = 8;
    p.created = "2025-01-31T12:00:00Z";
    p.toolVersion = "test";
    s.numLayers = 3;
    s.hiddenSize = 8;
    LayerStats dense;
    dense.layer = 0;
    dense.cosine = {0.5, 0.5, 0.5, 10};
    s.layers.push_back(dense);
    s.layers.push_back(moeLayer(1, 2, matrix(2, 4, {5, 5, 0, 0, 0, 0, 3, 3}), 2, 4));
    s.layers.push_back(moeLayer(2, 1, matrix(2, 4, {1, 2, 1, 1, 2, 4, 2, 2}), -1, 0));
    // layer 2: rows sum to 5 and 10 tokens; a different token total than layer 1 is fine for the math
    return s;
}

} // namespace

class TestSpecialization : public QObject {
    Q_OBJECT
private slots:
    // 2 domains x 2 experts, top-1, counts [[3,1],[1,3]]: P(d) = P(e) = 1/2, and knowing the
    // domain leaves a 3:1 split, so MI = H(E) - H(E|D) = 1 - H_b(1/4) = 0.188722... bits.
    void twoByTwoByHand()
    {
        const LayerSpecialization l = layerSpecialization(matrix(2, 2, {3, 1, 1, 3}), 1);
        QCOMPARE(l.tokens, int64_t(8));
        QVERIFY(std::abs(l.domainEntropyBits - 1.0) < kTol);
        QVERIFY(std::abs(l.expertEntropyBits - 1.0) < kTol);
        QVERIFY(std::abs(l.uniformEntropyBits - 1.0) < kTol);
        QVERIFY(std::abs(l.mutualInfoBits - (1.0 - hb(0.25))) < kTol);
        QVERIFY(std::abs(l.mutualInfoBits - 0.18872187554086717) < kTol);
        QVERIFY(std::abs(l.normalizedMI - 0.18872187554086717) < kTol);
        for (int d = 0; d < 2; ++d) {
            const DomainSpecialization& s = l.domains[size_t(d)];
            QCOMPARE(s.tokens, int64_t(4));
            QVERIFY(std::abs(s.share - 0.5) < kTol);
            QVERIFY(std::abs(s.entropyBits - hb(0.25)) < kTol);
            QVERIFY(std::abs(s.topKShare - 0.75) < kTol);
            QCOMPARE(s.topExpert, int64_t(d)); // domain d prefers expert d
            QVERIFY(std::abs(s.topExpertLift - 1.5) < kTol); // 0.75 / 0.5
            QVERIFY(std::abs(s.topExpertShare - 0.75) < kTol);
        }
    }

    // Domains choose disjoint expert pairs (top-2): the domain is known from the expert, MI = H(D).
    void perfectSpecializationGivesHofDomain()
    {
        const LayerSpecialization l = layerSpecialization(matrix(2, 4, {5, 5, 0, 0, 0, 0, 3, 3}), 2);
        QCOMPARE(l.tokens, int64_t(8));
        QVERIFY(std::abs(l.domainEntropyBits - hb(5.0 / 8)) < kTol);
        QVERIFY(std::abs(l.mutualInfoBits - hb(5.0 / 8)) < kTol);
        QVERIFY(std::abs(l.normalizedMI - 1.0) < kTol);
        QVERIFY(std::abs(l.uniformEntropyBits - 2.0) < kTol);
        // H(E) = H(D) + H(E|D) = H_b(5/8) + 1 (each domain splits evenly over its two experts).
        QVERIFY(std::abs(l.expertEntropyBits - (hb(5.0 / 8) + 1.0)) < kTol);
        QCOMPARE(l.domains[0].tokens, int64_t(5));
        QCOMPARE(l.domains[1].tokens, int64_t(3));
        for (const DomainSpecialization& s : l.domains) {
            QVERIFY(std::abs(s.entropyBits - 1.0) < kTol); // log2 k: the floor for top-2
            QVERIFY(std::abs(s.topKShare - 1.0) < kTol);
            QVERIFY(std::abs(s.topExpertShare - 0.5) < kTol);
        }
        QCOMPARE(l.domains[0].topExpert, int64_t(0));
        QVERIFY(std::abs(l.domains[0].topExpertLift - 0.5 / (5.0 / 16)) < kTol); // 1.6
        QCOMPARE(l.domains[1].topExpert, int64_t(2));
        QVERIFY(std::abs(l.domains[1].topExpertLift - 0.5 / (3.0 / 16)) < kTol); // 8/3
    }

    // Every domain routes alike (uniformly): MI = 0, H(E|d) = log2 E, top-1 share = 1/E, lift 1.
    void identicalRoutingGivesZero()
    {
        const LayerSpecialization l = layerSpecialization(matrix(2, 4, {2, 2, 2, 2, 4, 4, 4, 4}), 1);
        QCOMPARE(l.mutualInfoBits, 0.0);
        QCOMPARE(l.normalizedMI, 0.0);
        QVERIFY(std::abs(l.domainEntropyBits - hb(1.0 / 3)) < kTol);
        for (const DomainSpecialization& s : l.domains) {
            QVERIFY(std::abs(s.entropyBits - 2.0) < kTol);
            QVERIFY(std::abs(s.topKShare - 0.25) < kTol);
            QCOMPARE(s.topExpert, int64_t(0)); // all lifts are 1: lowest index
            QVERIFY(std::abs(s.topExpertLift - 1.0) < kTol);
        }
        // Non-uniform but identical distributions are still MI = 0.
        const LayerSpecialization same = layerSpecialization(matrix(2, 3, {6, 3, 1, 12, 6, 2}), 1);
        QVERIFY(std::abs(same.mutualInfoBits) < 1e-15);
        QVERIFY(std::abs(same.domains[0].entropyBits - same.domains[1].entropyBits) < kTol);
    }

    void degenerateInputs()
    {
        // One domain: H(D) = 0, MI = 0, NMI undefined.
        const LayerSpecialization one = layerSpecialization(matrix(1, 2, {3, 1}), 1);
        QCOMPARE(one.mutualInfoBits, 0.0);
        QVERIFY(std::isnan(one.normalizedMI));
        // A domain without tokens: NaN metrics, no specific expert; the rest as if it were absent.
        const LayerSpecialization empty = layerSpecialization(matrix(3, 2, {0, 0, 3, 1, 1, 3}), 1);
        QCOMPARE(empty.domains[0].tokens, int64_t(0));
        QCOMPARE(empty.domains[0].share, 0.0);
        QVERIFY(std::isnan(empty.domains[0].entropyBits) && std::isnan(empty.domains[0].topKShare));
        QCOMPARE(empty.domains[0].topExpert, int64_t(-1));
        QVERIFY(std::abs(empty.mutualInfoBits - (1.0 - hb(0.25))) < kTol);
        // Inconsistent counts are input errors naming the place.
        try {
            layerSpecialization(matrix(2, 2, {3, 0, 1, 1}), 2, "s.h5: layer 4");
            QFAIL("expected InputError");
        } catch (const InputError& e) {
            QCOMPARE(QString(e.what()), QString("s.h5: layer 4: domain 0 has 3 expert choices, not a multiple of top_k 2"));
        }
        QVERIFY_THROWS_EXCEPTION(InputError, layerSpecialization(matrix(1, 2, {-1, 1}), 1));
        QVERIFY_THROWS_EXCEPTION(InputError, layerSpecialization(matrix(1, 2, {1, 1}), 0));
    }

    void modelMeansOverMoeLayers()
    {
        const ModelSpecialization m = modelSpecialization(knownStats(), "known.h5");
        QCOMPARE(m.layers.size(), size_t(2)); // the dense layer 0 is skipped
        QCOMPARE(m.layers[0].layer, int64_t(1));
        QCOMPARE(m.layers[1].layer, int64_t(2));
        // layer 2: rows [1,2,1,1] and [2,4,2,2] are proportional -> MI 0.
        QVERIFY(std::abs(m.layers[1].mutualInfoBits) < 1e-15);
        QVERIFY(std::abs(m.meanMutualInfoBits - hb(5.0 / 8) / 2) < kTol);
        QVERIFY(std::abs(m.meanNormalizedMI - 0.5) < kTol);
        // H(E|d) of layer 2 for both domains: distribution (1/5, 2/5, 1/5, 1/5).
        const double h2 = -3 * 0.2 * std::log2(0.2) - 0.4 * std::log2(0.4);
        QVERIFY(std::abs(m.meanEntropyBits[0] - (1.0 + h2) / 2) < kTol);
        QVERIFY(std::abs(m.meanTopKShare[1] - (1.0 + 0.4) / 2) < kTol);

        CalibStats none = knownStats();
        none.provenance.domains.clear();
        try {
            modelSpecialization(none, "none.h5");
            QFAIL("expected InputError");
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).startsWith("none.h5: has no per-domain routing counts"), e.what());
        }
    }

    // The CLI on a file written from known counts: JSON numbers, the table, and the error path.
    void cliOnKnownFile()
    {
        if (!QFileInfo(moewbCli()).isExecutable())
            QSKIP("moewb binary not built");
        QTemporaryDir tmp;
        const QString file = tmp.path() + "/known.h5";
        writeStats(knownStats(), file.toStdString());
        const CliRun r = runCli(moewbCli(), {"stats", "specialization", file, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        const QJsonArray layers = j["layers"].toArray();
        QCOMPARE(layers.size(), 2);
        const QJsonObject l1 = layers[0].toObject();
        QCOMPARE(l1["layer"].toInt(), 1);
        QCOMPARE(l1["top_k"].toInt(), 2);
        QCOMPARE(l1["tokens"].toInt(), 8);
        QVERIFY(std::abs(l1["mutual_info_bits"].toDouble() - hb(5.0 / 8)) < kTol);
        QVERIFY(std::abs(l1["normalized_mi"].toDouble() - 1.0) < kTol);
        const QJsonObject code = l1["domains"].toArray()[1].toObject();
        QCOMPARE(code["domain"].toString(), QString("code"));
        QCOMPARE(code["top_expert"].toInt(), 2);
        QVERIFY(std::abs(code["top_expert_lift"].toDouble() - 8.0 / 3) < kTol);
        QVERIFY(std::abs(j["mean"].toObject()["normalized_mi"].toDouble() - 0.5) < kTol);

        const CliRun t = runCli(moewbCli(), {"stats", "specialization", file});
        QVERIFY2(t.exitCode == 0, t.err.constData());
        QVERIFY2(t.out.contains("E2 (50.0%, x2.67)"), t.out.constData());
        QVERIFY2(t.out.contains(" mean ") && t.out.contains("1.0000"), t.out.constData());

        CalibStats none = knownStats();
        none.provenance.domains.clear();
        none.provenance.domainTokenCounts.clear();
        for (LayerStats& l : none.layers)
            if (l.isMoe)
                l.router.domainTokens = Matrix<int64_t>(0, l.router.numExperts);
        const QString noDomains = tmp.path() + "/nodomains.h5";
        writeStats(none, noDomains.toStdString());
        const CliRun bad = runCli(moewbCli(), {"stats", "specialization", noDomains});
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.startsWith("moewb: error: " + noDomains.toUtf8() + ": has no per-domain")
                     && bad.err.count('\n') == 1,
                 bad.err.constData());
        QCOMPARE(runCli(moewbCli(), {"stats", "specialization"}).exitCode, 2);
    }

    // A real calibration with three domains on a random Mixtral checkpoint, against NumPy (h5py).
    void matchesNumpyOnCalibratedFile()
    {
        if (!QFileInfo(moewbCli()).isExecutable())
            QSKIP("moewb binary not built");
        QTemporaryDir tmp;
        const QString dir = tmp.path() + "/m";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", dir, "--seed", "3"});
        QByteArray prose, digits, code;
        for (int i = 0; i < 40; ++i) {
            prose += "the quick brown fox jumps over the lazy dog and runs away. ";
            digits += QByteArray::number(i * 7919 % 100003) + " ";
            code += "int f" + QByteArray::number(i) + "(int x) { return x * " + QByteArray::number(i) + "; }\n";
        }
        writeAll(tmp.path() + "/prose.txt", prose);
        writeAll(tmp.path() + "/digits.txt", digits);
        writeAll(tmp.path() + "/code.txt", code);
        const QString out = tmp.path() + "/s.h5";
        const CliRun c = runCli(moewbCli(), {"calibrate", dir, "--domain", "prose=" + tmp.path() + "/prose.txt",
                                             "--domain", "digits=" + tmp.path() + "/digits.txt", "--domain",
                                             "code=" + tmp.path() + "/code.txt", "--samples", "12", "--seq-len", "64",
                                             "--random-windows", "--seed", "5", "--probe-tokens", "0",
                                             "--no-activations", "--out", out});
        QVERIFY2(c.exitCode == 0, c.err.constData());

        const QJsonObject ref = QJsonDocument::fromJson(
                                    runPython({sourcePath("tests/reference/specialization_reference.py"), out}))
                                    .object();
        const CliRun r = runCli(moewbCli(), {"stats", "specialization", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject got = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(got["domains"].toArray(), ref["domains"].toArray());
        const QJsonArray gl = got["layers"].toArray(), rl = ref["layers"].toArray();
        QCOMPARE(gl.size(), 3); // the random Mixtral has 3 MoE layers
        QCOMPARE(gl.size(), rl.size());
        auto close = [](const QJsonValue& a, const QJsonValue& b) {
            return std::abs(a.toDouble() - b.toDouble()) <= 1e-12 * std::max(1.0, std::abs(b.toDouble()));
        };
        bool anyMi = false;
        for (int i = 0; i < gl.size(); ++i) {
            const QJsonObject g = gl[i].toObject(), e = rl[i].toObject();
            QCOMPARE(g["layer"].toInt(), e["layer"].toInt());
            QCOMPARE(g["tokens"].toInt(), 12 * 64);
            QCOMPARE(g["tokens"].toInt(), e["tokens"].toInt());
            for (const char* k : {"mutual_info_bits", "normalized_mi", "domain_entropy_bits", "expert_entropy_bits"})
                QVERIFY2(close(g[k], e[k]), k);
            anyMi = anyMi || g["mutual_info_bits"].toDouble() > 1e-3;
            const QJsonArray gd = g["domains"].toArray(), ed = e["domains"].toArray();
            QCOMPARE(gd.size(), 3);
            for (int d = 0; d < gd.size(); ++d) {
                const QJsonObject a = gd[d].toObject(), b = ed[d].toObject();
                QCOMPARE(a["tokens"].toInt(), b["tokens"].toInt());
                QCOMPARE(a["top_expert"].toInt(), b["top_expert"].toInt());
                for (const char* k : {"share", "entropy_bits", "topk_share", "top_expert_lift"})
                    QVERIFY2(close(a[k], b[k]), k);
            }
        }
        QVERIFY(anyMi); // three very different texts do route differently, even through random weights
        QVERIFY(close(got["mean"].toObject()["mutual_info_bits"], ref["mean"].toObject()["mutual_info_bits"]));
    }
};

QTEST_APPLESS_MAIN(TestSpecialization)
#include "tst_specialization.moc"
