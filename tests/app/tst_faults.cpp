// SPDX-License-Identifier: MIT
// Faults while writing outputs (issue #13), on the real CLI and the demo model:
//  - disk full: the file-size limit (ulimit -f, SIGXFSZ ignored) makes write() fail with EFBIG in
//    the middle of a GPTQ export, a GGUF export and a stats write, exactly as a full disk would;
//  - kill -9 in the middle of an export that replaces a previous output;
//  - an output directory the user may not write to.
// Every time: a non-zero exit, one error line naming the path and the reason, the previous output
// byte-identical, and nothing half-written left behind (after a kill, the next run removes the
// dead run's temporary directory).
#include "../engine/testutil.h"

#include <QCryptographicHash>
#include <QDir>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QThread>
#include <QtTest>

#include <sys/stat.h>
#include <unistd.h>

using namespace moewb::test;

namespace {

const QString kModel = sourcePath("datasets/models/moewb-mixtral-8e-v2");

QString writePlan(const QString& dir, int bits)
{
    const QString p = dir + "/plan" + QString::number(bits) + ".json";
    QFile f(p);
    if (!f.open(QIODevice::WriteOnly))
        return {};
    f.write(QByteArray("{\"format\": \"moewb-plan\", \"version\": 1, \"defaults\": {\"bits\": ") + QByteArray::number(bits)
            + ", \"group_size\": 128, \"sym\": true, \"method\": \"rtn\"}}\n");
    return p;
}

/// A small calibration file (the quantize pass runs a forward even for RTN plans).
QString writeCalib(const QString& dir)
{
    const QString p = dir + "/calib.txt";
    QFile f(p);
    if (!f.open(QIODevice::WriteOnly))
        return {};
    for (int i = 0; i < 40; ++i)
        f.write("The quick brown fox jumps over the lazy dog while the router picks two experts. ");
    return p;
}

QStringList quantizeArgs(const QString& plan, const QString& out, const QString& format, const QString& calib,
                         const QString& model = kModel)
{
    return {"quantize", model, "--plan", plan, "--out", out, "--format", format, "--calib", calib,
            "--samples", "2", "--seq-len", "32", "--dtype", "f32"};
}

/// Relative path → SHA-256 of every file under path (a file or a directory).
QMap<QString, QByteArray> snapshot(const QString& path)
{
    QMap<QString, QByteArray> m;
    const QFileInfo fi(path);
    const auto hash = [](const QString& file) {
        QFile f(file);
        QCryptographicHash h(QCryptographicHash::Sha256);
        if (f.open(QIODevice::ReadOnly))
            h.addData(&f);
        return h.result().toHex();
    };
    if (fi.isFile()) {
        m[fi.fileName()] = hash(path);
        return m;
    }
    QDirIterator it(path, QDir::Files | QDir::Hidden, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        const QString f = it.next();
        m[QDir(path).relativeFilePath(f)] = hash(f);
    }
    return m;
}

/// Entries next to `path` whose names start with its file name followed by '.' (temporaries).
QStringList leftovers(const QString& path)
{
    const QFileInfo fi(path);
    QStringList l;
    for (const QString& e : QDir(fi.absolutePath()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot))
        if (e.startsWith(fi.fileName() + ".") && !e.endsWith(".moewb_report.json"))
            l << e;
    return l;
}

/// The CLI under a file-size limit of `kib` KiB with SIGXFSZ ignored: writes past it fail (EFBIG).
CliRun runLimited(int kib, const QStringList& args)
{
    return runCli("/bin/bash", QStringList{"-c", "trap '' XFSZ; ulimit -f " + QString::number(kib) + "; exec \"$0\" \"$@\"",
                                           moewbCli()} + args);
}

/// Exit 1 and exactly one error line ("moewb: error: ..."), the last line on stderr (progress
/// lines may come before it), containing mustContain.
void checkOneLineError(const CliRun& r, const QString& mustContain)
{
    QVERIFY2(r.exitCode == 1, r.err.constData());
    const QList<QByteArray> lines = r.err.trimmed().split('\n');
    int errors = 0;
    for (const QByteArray& l : lines)
        errors += l.startsWith("moewb: error:") ? 1 : 0;
    QVERIFY2(errors == 1 && lines.last().startsWith("moewb: error:"), r.err.constData());
    QVERIFY2(lines.last().contains(mustContain.toUtf8()), qPrintable("expected '" + mustContain + "' in: " + r.err));
}

} // namespace

class TestFaults : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void gptqExportDiskFull();
    void ggufExportDiskFull();
    void statsWriteDiskFull();
    void killDuringExport();
    void unwritableOutputDirectory();

private:
    QTemporaryDir m_tmp;
    QString m_calib, m_plan4, m_plan8;
};

void TestFaults::initTestCase()
{
    QVERIFY(m_tmp.isValid());
    m_calib = writeCalib(m_tmp.path());
    m_plan4 = writePlan(m_tmp.path(), 4);
    m_plan8 = writePlan(m_tmp.path(), 8);
    QVERIFY(!m_calib.isEmpty() && !m_plan4.isEmpty() && !m_plan8.isEmpty());
}

void TestFaults::gptqExportDiskFull()
{
    const QString out = m_tmp.path() + "/gptq";
    const CliRun ok = runCli(moewbCli(), quantizeArgs(m_plan4, out, "gptq", m_calib));
    QVERIFY2(ok.exitCode == 0, ok.err.constData());
    const auto before = snapshot(out);
    QVERIFY(before.contains("model.safetensors") && before.contains("config.json"));
    QVERIFY(QFileInfo(out + "/model.safetensors").size() > 4 * 1024 * 1024);

    // The 8-bit export's weights do not fit under 2 MiB per file.
    const CliRun full = runLimited(2048, quantizeArgs(m_plan8, out, "gptq", m_calib) << "--force");
    checkOneLineError(full, "File too large");
    QVERIFY2(full.err.contains(QFileInfo(out).fileName().toUtf8()), full.err.constData());
    QCOMPARE(snapshot(out), before);
    QCOMPARE(leftovers(out), QStringList());
}

void TestFaults::ggufExportDiskFull()
{
    const QString out = m_tmp.path() + "/model.gguf";
    const CliRun ok = runCli(moewbCli(), quantizeArgs(m_plan4, out, "gguf", m_calib));
    QVERIFY2(ok.exitCode == 0, ok.err.constData());
    const auto before = snapshot(out);
    const auto reportBefore = snapshot(out + ".moewb_report.json");
    QVERIFY(QFileInfo(out).size() > 4 * 1024 * 1024);

    const CliRun full = runLimited(2048, quantizeArgs(m_plan8, out, "gguf", m_calib) << "--force");
    checkOneLineError(full, "File too large");
    QVERIFY2(full.err.contains("model.gguf"), full.err.constData());
    QCOMPARE(snapshot(out), before);
    QCOMPARE(snapshot(out + ".moewb_report.json"), reportBefore);
    QCOMPARE(leftovers(out), QStringList());
}

void TestFaults::statsWriteDiskFull()
{
    const QString out = m_tmp.path() + "/stats.h5";
    const QStringList args{"calibrate", kModel, "--data", m_calib, "--samples", "2", "--seq-len", "32",
                           "--dtype", "f32", "--out", out};
    const CliRun ok = runCli(moewbCli(), args);
    QVERIFY2(ok.exitCode == 0, ok.err.constData());
    const auto before = snapshot(out);
    const qint64 size = QFileInfo(out).size();
    QVERIFY(size > 64 * 1024);

    const CliRun full = runLimited(int(size / 1024 / 2), args); // calibrate replaces its output
    checkOneLineError(full, "stats.h5");
    QCOMPARE(snapshot(out), before);
    QCOMPARE(leftovers(out), QStringList());
}

void TestFaults::killDuringExport()
{
    const QString out = m_tmp.path() + "/killed";
    const CliRun ok = runCli(moewbCli(), quantizeArgs(m_plan4, out, "gptq", m_calib));
    QVERIFY2(ok.exitCode == 0, ok.err.constData());
    const auto before = snapshot(out);

    // Start replacing it and kill -9 once the new output is being written.
    QProcess p;
    p.start(moewbCli(), quantizeArgs(m_plan8, out, "gptq", m_calib) << "--force");
    QVERIFY(p.waitForStarted());
    const QString tmp = out + ".tmp." + QString::number(p.processId());
    QElapsedTimer t;
    t.start();
    bool writing = false;
    while (!writing && p.state() == QProcess::Running && t.elapsed() < 120000) {
        writing = QFileInfo(tmp + "/config.json").exists() || QFileInfo(tmp + "/model.safetensors").size() > 0;
        if (!writing)
            QThread::msleep(5);
    }
    QVERIFY2(writing, "the export finished or failed before it could be killed");
    p.kill(); // SIGKILL
    QVERIFY(p.waitForFinished());
    QCOMPARE(p.exitStatus(), QProcess::CrashExit);

    QCOMPARE(snapshot(out), before);            // the previous output is intact
    QCOMPARE(leftovers(out), QStringList{QFileInfo(tmp).fileName()}); // only the dead run's temp dir

    // The next run removes the dead run's temporary directory and replaces the output.
    const CliRun again = runCli(moewbCli(), quantizeArgs(m_plan8, out, "gptq", m_calib) << "--force");
    QVERIFY2(again.exitCode == 0, again.err.constData());
    QCOMPARE(leftovers(out), QStringList());
    QVERIFY(snapshot(out) != before);
    QVERIFY(QFileInfo(out + "/model.safetensors").size() > QFileInfo(m_tmp.path() + "/gptq/model.safetensors").size());
}

void TestFaults::unwritableOutputDirectory()
{
    // root may write anywhere: run the CLI as 'nobody' through setpriv (util-linux) then. The
    // checkout may live where nobody cannot read (root's home directory is mode 700), so the CLI,
    // the model and the inputs are copied to a world-readable temporary directory first.
    QTemporaryDir base(QDir::tempPath() + "/moewb-faults-XXXXXX");
    QVERIFY(base.isValid());
    ::chmod(base.path().toLocal8Bit().constData(), 0755);
    const QString cli = base.path() + "/moewb";
    const QString model = base.path() + "/model";
    QVERIFY(QFile::copy(moewbCli(), cli));
    QVERIFY(::chmod(cli.toLocal8Bit().constData(), 0755) == 0);
    QVERIFY(QDir().mkdir(model));
    ::chmod(model.toLocal8Bit().constData(), 0755);
    for (const QString& name : QDir(kModel).entryList(QDir::Files)) {
        QVERIFY(QFile::copy(kModel + "/" + name, model + "/" + name));
        ::chmod((model + "/" + name).toLocal8Bit().constData(), 0644);
    }
    QStringList prefix;
    if (::geteuid() == 0) {
        if (!QFileInfo::exists("/usr/bin/setpriv"))
            QSKIP("running as root without setpriv");
        prefix = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
        const CliRun probe = runCli(prefix[0], QStringList(prefix.mid(1)) << cli << "--version");
        if (probe.exitCode != 0)
            QSKIP(qPrintable("cannot run the CLI as nobody: " + probe.err));
    }
    const QString ro = base.path() + "/readonly";
    QVERIFY(QDir().mkdir(ro));
    QVERIFY(::chmod(ro.toLocal8Bit().constData(), 0555) == 0);
    QFile::copy(m_calib, base.path() + "/calib.txt");
    QFile::copy(m_plan4, base.path() + "/plan.json");
    ::chmod((base.path() + "/calib.txt").toLocal8Bit().constData(), 0644);
    ::chmod((base.path() + "/plan.json").toLocal8Bit().constData(), 0644);

    const auto run = [&](const QStringList& args) {
        return prefix.isEmpty() ? runCli(cli, args) : runCli(prefix[0], QStringList(prefix.mid(1)) << cli << args);
    };
    const QString out = ro + "/gptq";
    const CliRun r = run(quantizeArgs(base.path() + "/plan.json", out, "gptq", base.path() + "/calib.txt", model));
    checkOneLineError(r, "Permission denied");
    QVERIFY2(r.err.contains("readonly/gptq"), r.err.constData());
    const CliRun s = run({"calibrate", model, "--data", base.path() + "/calib.txt", "--samples", "2", "--seq-len", "32",
                          "--dtype", "f32", "--out", ro + "/stats.h5"});
    checkOneLineError(s, "readonly/stats.h5");
    QCOMPARE(QDir(ro).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot), QStringList());
    ::chmod(ro.toLocal8Bit().constData(), 0755);

    // A model behind a directory the user may not enter: the OS reason, not "no such file".
    if (!prefix.isEmpty()) {
        const QString priv = base.path() + "/private";
        QVERIFY(QDir().mkdir(priv));
        QVERIFY(::chmod(priv.toLocal8Bit().constData(), 0700) == 0);
        const CliRun p = run({"info", priv + "/model"});
        checkOneLineError(p, "Permission denied");
        QVERIFY2(!p.err.contains("no such"), p.err.constData());
    }
}

QTEST_GUILESS_MAIN(TestFaults)
#include "tst_faults.moc"
