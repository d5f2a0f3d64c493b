// SPDX-License-Identifier: MIT
// Session files and plan autosave: a session written and read back is equal (plan, results,
// layout, paths), relative paths resolve against the session's directory, malformed files give
// one line naming the file and the problem, and an autosave left behind by a workbench that did
// not close cleanly (its marker without a live process) is offered for recovery — and nothing is
// offered after a clean close.
#include "session/autosave.h"
#include "session/session.h"

#include "moewb/plan/plan.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>

using namespace moewb;

namespace {
Plan samplePlan()
{
    Plan p;
    p.defaults.bits = 3;
    p.defaults.groupSize = 64;
    PlanRule rule;
    rule.match = R"(model\.layers\.0\..*)";
    rule.set.bits = 4;
    p.rules.push_back(rule);
    QuantSettings o;
    o.bits = 8;
    o.method = "rtn";
    p.overrides["model.layers.1.self_attn.q_proj"] = o;
    p.provenance.strategy = "frequency";
    p.provenance.targetBits = 3.25;
    return p;
}

Session sampleSession()
{
    Session s;
    s.modelDir = QStringLiteral("/data/models/m");
    s.statsPath = QStringLiteral("/data/stats/m.h5");
    s.planJson = QString::fromStdString(planToJson(samplePlan()));
    s.planPath = QStringLiteral("/data/plans/p.json");
    RunResult base;
    base.label = QStringLiteral("baseline");
    base.modelBytes = 26'000'000;
    base.perplexity = 7.123456789012345;
    base.pplFile = QStringLiteral("/data/eval.txt");
    base.taskAccuracy = {{QStringLiteral("hellaswag"), 0.31}, {QStringLiteral("lambada"), 0.125}};
    RunResult q = base;
    q.label = QStringLiteral("frequency@3");
    q.planJson = s.planJson;
    q.averageBits = 3.0625;
    q.modelBytes = 9'123'457;
    q.perplexity = 7.9;
    s.results = {base, q};
    RunResult noPpl;
    noPpl.label = QStringLiteral("tasks only");
    noPpl.taskAccuracy = {{QStringLiteral("piqa"), 0.6}};
    s.results.push_back(noPpl);
    s.windowGeometry = QByteArray("\x01\x02geometry\xff", 11);
    s.windowState = QByteArray("state\x00\x7f", 7);
    return s;
}

QString readError(const QString& path)
{
    try {
        readSession(path);
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what());
    }
    return {};
}

void writeText(const QString& path, const QByteArray& text)
{
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(text);
}
} // namespace

class TestSession : public QObject {
    Q_OBJECT
private slots:
    void roundTrip();
    void relativePaths();
    void malformedFiles_data();
    void malformedFiles();
    void autosaveWritesDebounced();
    void recoveryAfterUncleanExit();
    void nothingAfterCleanClose();
};

void TestSession::roundTrip()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("s.moewb"));
    const Session s = sampleSession();
    writeSession(s, path);
    const Session back = readSession(path);
    QCOMPARE(back.modelDir, s.modelDir);
    QCOMPARE(back.planJson, s.planJson);
    QCOMPARE(back.results.size(), size_t(3));
    QCOMPARE(back.results[0].perplexity, 7.123456789012345); // doubles survive exactly
    QVERIFY(std::isnan(back.results[2].perplexity));
    QCOMPARE(back.windowState, s.windowState);
    QVERIFY(back == s);
    QVERIFY(parsePlanJson(back.planJson.toStdString(), "back") == samplePlan());
    // No temporary file is left next to it.
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files), QStringList{QStringLiteral("s.moewb")});
    // Writing the read session again gives the same bytes.
    QCOMPARE(sessionToJson(back), sessionToJson(s));
}

void TestSession::relativePaths()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("rel.moewb"));
    writeText(path, R"({"format": "moewb-session", "version": 1, "model": "models/m", "stats": "../s.h5", "plan": null})");
    const Session s = readSession(path);
    QCOMPARE(s.modelDir, QDir(dir.path()).filePath(QStringLiteral("models/m")));
    QCOMPARE(s.statsPath, QDir::cleanPath(dir.path() + QStringLiteral("/../s.h5")));
    QVERIFY(s.planJson.isEmpty());
    QVERIFY(s.results.empty());
}

void TestSession::malformedFiles_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("message");
    QTest::newRow("not json") << QByteArray("{\"format\": ") << QStringLiteral("not a session file: invalid JSON at byte 11");
    QTest::newRow("array") << QByteArray("[1, 2]") << QStringLiteral("not a session file: the JSON is not an object");
    QTest::newRow("a plan file") << QByteArray(R"({"version": 1, "defaults": {"bits": 4}})")
                                 << QStringLiteral("not a session file: $.format is not \"moewb-session\"");
    QTest::newRow("future version") << QByteArray(R"({"format": "moewb-session", "version": 2})")
                                    << QStringLiteral("$.version must be 1");
    QTest::newRow("model not a string") << QByteArray(R"({"format": "moewb-session", "version": 1, "model": 3})")
                                        << QStringLiteral("$.model must be a string");
    QTest::newRow("bad plan") << QByteArray(R"({"format": "moewb-session", "version": 1, "plan": {"format": "moewb-plan", "version": 1, "defualts": {}}})")
                              << QStringLiteral("$.plan: $.defualts: unknown key");
    QTest::newRow("results not an array") << QByteArray(R"({"format": "moewb-session", "version": 1, "results": {}})")
                                          << QStringLiteral("$.results must be an array");
    QTest::newRow("run without label") << QByteArray(R"({"format": "moewb-session", "version": 1, "results": [{"perplexity": 3}]})")
                                       << QStringLiteral("$.results[0]: label must be a non-empty string");
}

void TestSession::malformedFiles()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, message);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("bad.moewb"));
    writeText(path, text);
    const QString error = readError(path);
    QVERIFY2(error.startsWith(path + QStringLiteral(": ")), qPrintable(error));
    QVERIFY2(error.contains(message), qPrintable(error));
    QVERIFY2(!error.contains(QLatin1Char('\n')), qPrintable(error));
    QVERIFY(readError(dir.filePath(QStringLiteral("missing.moewb"))).startsWith(dir.filePath(QStringLiteral("missing.moewb: cannot open"))));
}

void TestSession::autosaveWritesDebounced()
{
    QTemporaryDir dir;
    PlanAutosave autosave(dir.path());
    autosave.setDelay(50);
    autosave.begin();
    QVERIFY(QFile::exists(autosave.markerFile()));
    const QString plan = QString::fromStdString(planToJson(samplePlan()));
    autosave.schedule(QStringLiteral("{\"version\": 1}"), QStringLiteral("/m"));
    autosave.schedule(plan, QStringLiteral("/m")); // the later change wins
    QVERIFY(!QFile::exists(autosave.planFile()));
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(autosave.planFile()), 5000);
    QFile f(autosave.planFile());
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
    QCOMPARE(o.value(QStringLiteral("model")).toString(), QStringLiteral("/m"));
    const std::string saved = QJsonDocument(o.value(QStringLiteral("plan")).toObject()).toJson().toStdString();
    QVERIFY(parsePlanJson(saved, "autosave") == samplePlan());
    // Our own marker is not a crash.
    QVERIFY(!autosave.pendingRecovery());
    autosave.finish();
    QVERIFY(!QFile::exists(autosave.planFile()));
    QVERIFY(!QFile::exists(autosave.markerFile()));
}

void TestSession::recoveryAfterUncleanExit()
{
    QTemporaryDir dir;
    const QString plan = QString::fromStdString(planToJson(samplePlan()));
    {
        // A workbench that autosaved and then died: its marker and plan stay behind. Simulated by
        // renaming our files to a process id that does not exist (above Linux's pid_max).
        PlanAutosave crashed(dir.path());
        crashed.begin();
        crashed.schedule(plan, QStringLiteral("/models/m"));
        crashed.flush();
        QVERIFY(QFile::rename(crashed.markerFile(), dir.filePath(QStringLiteral("running-999999999"))));
        QVERIFY(QFile::rename(crashed.planFile(), dir.filePath(QStringLiteral("plan-999999999.json"))));
    }
    // A marker of a crash before any plan change: nothing to offer from it.
    writeText(dir.filePath(QStringLiteral("running-999999998")), "x\n");
    // A live process's autosave (pid 1 always exists) is not offered either.
    writeText(dir.filePath(QStringLiteral("running-1")), "x\n");
    writeText(dir.filePath(QStringLiteral("plan-1.json")), "{\"plan\": {\"version\": 1}}");

    PlanAutosave next(dir.path());
    const std::optional<AutosaveRecovery> r = next.pendingRecovery();
    QVERIFY(r.has_value());
    QCOMPARE(r->file, dir.filePath(QStringLiteral("plan-999999999.json")));
    QCOMPARE(r->modelDir, QStringLiteral("/models/m"));
    QVERIFY(r->saved.isValid());
    QVERIFY(parsePlanJson(r->planJson.toStdString(), "recovered") == samplePlan());
    next.discardRecovery();
    QVERIFY(!next.pendingRecovery());
    QVERIFY(!QFile::exists(dir.filePath(QStringLiteral("running-999999999"))));
    QVERIFY(!QFile::exists(dir.filePath(QStringLiteral("running-999999998"))));
    QVERIFY(QFile::exists(dir.filePath(QStringLiteral("plan-1.json")))); // not ours to remove
}

void TestSession::nothingAfterCleanClose()
{
    QTemporaryDir dir;
    {
        PlanAutosave first(dir.path());
        first.begin();
        first.schedule(QString::fromStdString(planToJson(samplePlan())), QStringLiteral("/m"));
        first.flush();
        first.finish();
    }
    PlanAutosave second(dir.path());
    QVERIFY(!second.pendingRecovery());
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files), QStringList{});
}

QTEST_GUILESS_MAIN(TestSession)
#include "tst_session.moc"
