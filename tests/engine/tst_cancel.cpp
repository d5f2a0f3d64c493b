// SPDX-License-Identifier: MIT
// Cancel at every stage (issue #13): every long operation that writes an output is run once to
// record its progress reports, then cancelled at the first and the last report of each stage and at
// eight evenly spaced reports (at every report when there are few). Each cancelled run must throw moewb::Cancelled, leave no
// output and no temporary file next to where the output would have gone. Perplexity (no output)
// must stop with Cancelled too.
#include "testutil.h"

#include "moewb/plan/plan.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/error.h"
#include "moewb/eval/perplexity.h"
#include "moewb/export/gguf.h"
#include "moewb/export/gptq.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/quant/quantize.h"
#include "moewb/trim/trim.h"

#include <QDir>
#include <QFileInfo>
#include <QTemporaryDir>

#include <functional>
#include <set>

using namespace moewb;

namespace {

const std::string kModel = test::sourcePath("datasets/models/moewb-mixtral-8e-v2").toStdString();

using Operation = std::function<void(const std::string& out, const ProgressFn& progress)>;

std::vector<std::vector<int32_t>> sequences()
{
    std::vector<std::vector<int32_t>> s(2, std::vector<int32_t>(32));
    for (size_t i = 0; i < s.size(); ++i)
        for (size_t t = 0; t < s[i].size(); ++t)
            s[i][t] = int32_t((i * 131 + t * 17 + 5) % 4000);
    return s;
}

Plan gptqPlan()
{
    Plan p;
    p.defaults.bits = 4;
    p.defaults.method = "gptq";
    p.rules.push_back(PlanRule{".*experts\\.[0-3]\\..*", QuantSettings{8, {}, {}, std::string("rtn"), {}, {}}});
    return p;
}

QuantizeOptions quantOptions()
{
    QuantizeOptions o;
    o.dtype = "f32";
    o.minExpertTokens = 4;
    return o;
}

QStringList entriesNextTo(const QString& out)
{
    const QFileInfo fi(out);
    QStringList l;
    for (const QString& e : QDir(fi.absolutePath()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot))
        if (e.startsWith(fi.fileName()))
            l << e;
    return l;
}

} // namespace

class TestCancel : public QObject {
    Q_OBJECT
private slots:
    void cancelEverywhere_data();
    void cancelEverywhere();
};

void TestCancel::cancelEverywhere_data()
{
    QTest::addColumn<QString>("name");
    for (const char* n : {"calibrate", "fake", "gptq", "gguf", "trim", "perplexity"})
        QTest::newRow(n) << QString(n);
}

void TestCancel::cancelEverywhere()
{
    QFETCH(QString, name);
    const auto seqs = sequences();
    Operation op;
    if (name == "calibrate") {
        op = [&](const std::string& out, const ProgressFn& pr) {
            CalibTokens tokens;
            for (const auto& s : seqs)
                tokens.ids.insert(tokens.ids.end(), s.begin(), s.end());
            CalibrateOptions o;
            o.samples = 2;
            o.seqLen = 32;
            o.dtype = "f32";
            o.probeTokens = 16;
            o.created = "2026-01-01T00:00:00Z";
            writeStats(calibrateTokens(kModel, tokens, o, pr), out, pr);
        };
    } else if (name == "fake") {
        op = [&](const std::string& out, const ProgressFn& pr) {
            quantizeToFakeDir(kModel, gptqPlan(), seqs, quantOptions(), out, false, "", pr);
        };
    } else if (name == "gptq") {
        op = [&](const std::string& out, const ProgressFn& pr) {
            quantizeToGptqDir(kModel, gptqPlan(), seqs, quantOptions(), out, false, "", pr);
        };
    } else if (name == "gguf") {
        op = [&](const std::string& out, const ProgressFn& pr) {
            quantizeToGguf(kModel, gptqPlan(), seqs, quantOptions(), out, false, "", pr);
        };
    } else if (name == "trim") {
        op = [&](const std::string& out, const ProgressFn& pr) {
            Plan p;
            p.droppedExperts = {{0, 1}, {1, 1}};
            trimCheckpoint(kModel, p, out, false, pr);
        };
    } else {
        op = [&](const std::string&, const ProgressFn& pr) {
            std::vector<int32_t> ids;
            for (const auto& s : seqs)
                ids.insert(ids.end(), s.begin(), s.end());
            PerplexityOptions o;
            o.ctx = 32;
            o.stride = 16;
            o.dtype = "f32";
            evaluatePerplexity(kModel, ids, o, pr);
        };
    }

    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    // 1. Record every report.
    std::vector<std::string> stages;
    {
        const std::string out = (tmp.path() + "/full").toStdString() + (name == "gguf" ? ".gguf" : "");
        op(out, [&](const Progress& p) {
            stages.push_back(p.stage);
            return true;
        });
        QVERIFY2(stages.size() >= 2, qPrintable(name + ": fewer than 2 progress reports"));
    }
    // 2. Cancel points: every report if few, else the first and last of each stage and eight
    //    evenly spaced ones (inside layers, between linears).
    std::set<size_t> points;
    if (stages.size() <= 24) {
        for (size_t i = 0; i < stages.size(); ++i)
            points.insert(i);
    } else {
        for (size_t i = 0; i < stages.size(); ++i)
            if (i == 0 || stages[i] != stages[i - 1] || i + 1 == stages.size() || stages[i + 1] != stages[i])
                points.insert(i);
        for (size_t j = 1; j < 8; ++j)
            points.insert(stages.size() * j / 8);
    }
    std::set<std::string> distinct(stages.begin(), stages.end());
    qInfo("%s: %zu reports, %zu stages, %zu cancel points", qPrintable(name), stages.size(), distinct.size(), points.size());
    for (size_t k : points) {
        const QString outQ = tmp.path() + "/cancel" + QString::number(k) + (name == "gguf" ? ".gguf" : "");
        size_t calls = 0;
        bool cancelled = false;
        try {
            op(outQ.toStdString(), [&](const Progress&) { return calls++ != k; });
        } catch (const Cancelled&) {
            cancelled = true;
        } catch (const std::exception& e) {
            QFAIL(qPrintable(QString("report %1 (%2): %3").arg(k).arg(QString::fromStdString(stages[k]), e.what())));
        }
        QVERIFY2(cancelled, qPrintable(QString("report %1 (%2): not cancelled").arg(k).arg(QString::fromStdString(stages[k]))));
        QCOMPARE(calls, k + 1); // stops at the report that asked, not later
        QCOMPARE(entriesNextTo(outQ), QStringList());
    }
}

QTEST_GUILESS_MAIN(TestCancel)
#include "tst_cancel.moc"
