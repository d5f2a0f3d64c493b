// SPDX-License-Identifier: MIT
// The malformed-input corpus (tests/data/bad/, written by make_bad.py): one data row per file.
// Each file is opened the way moewb opens that kind of file; the contract is that it fails with a
// moewb::Error whose message is one line, names the file (or model directory), and says what is
// wrong (the words listed in MANIFEST.json). Nothing else may escape: no std::exception of another
// kind, no crash, no NaN silently carried into results.
// torch before Qt (Qt's `slots` macro breaks ATen headers)
#ifndef MOEWB_IO_ONLY
#include "model/streamer.h"

#include <ATen/ATen.h>
#endif

#include "testutil.h"

#include "gguf/gguf_file.h"
#include "moewb/plan/plan.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/tokenizer/tokenizer.h"

#include <QDir>
#include <QFileInfo>

using namespace moewb;

namespace {

void openAs(const QString& kind, const std::string& path)
{
    if (kind == "safetensors") {
        (void)SafetensorsFile::open(path);
    } else if (kind == "config") {
        (void)loadConfig(path);
    } else if (kind == "plan") {
        (void)loadPlan(path);
    } else if (kind == "tokenizer") {
        QFile f(QString::fromStdString(path));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray text = f.readAll();
        (void)Tokenizer::fromJson(text.toStdString(), path);
    } else if (kind == "stats") {
        (void)readStats(path);
    } else if (kind == "gguf") {
        const gguf::File g = gguf::read(path);
        for (const auto& t : g.tensors)
            (void)gguf::readTensorF32(g, t);
    } else if (kind == "model") {
#ifndef MOEWB_IO_ONLY
        Model m(path);
        StreamOptions opt;
        opt.dtype = at::kFloat;
        const at::Tensor ids = at::arange(0, 12, at::kLong).remainder(m.config().vocabSize).view({1, 12});
        const at::Tensor logits = m.logits(ids, opt);
        QVERIFY2(false, qPrintable("opened without error; logits finite: "
                                   + QString::number(int(at::isfinite(logits).all().item<bool>()))));
#endif
    } else {
        QFAIL(qPrintable("unknown kind " + kind));
    }
}

} // namespace

class TestBadInputs : public QObject {
    Q_OBJECT
private slots:
    void rejected_data();
    void rejected();
    void everyFileIsListed();
};

static QJsonObject manifest()
{
    const QByteArray text = test::readAll(test::sourcePath("tests/data/bad/MANIFEST.json"));
    return QJsonDocument::fromJson(text).object();
}

void TestBadInputs::rejected_data()
{
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QString>("path");
    QTest::addColumn<QStringList>("expect");
    const QJsonObject m = manifest();
    QVERIFY(!m.isEmpty());
    for (auto it = m.begin(); it != m.end(); ++it) {
        const QString rel = it.key();
        const QJsonObject e = it.value().toObject();
        QStringList expect;
        for (const auto& v : e.value("expect").toArray())
            expect << v.toString();
        QTest::newRow(qPrintable(rel)) << rel.section('/', 0, 0) << test::sourcePath("tests/data/bad/" + rel) << expect;
    }
}

void TestBadInputs::rejected()
{
    QFETCH(QString, kind);
    QFETCH(QString, path);
    QFETCH(QStringList, expect);
    QVERIFY2(QFileInfo::exists(path), qPrintable(path));
#ifdef MOEWB_IO_ONLY
    if (kind == "model")
        QSKIP("model directories need the engine (not in the torch-free build)");
#endif
    QString message;
    try {
        openAs(kind, path.toStdString());
        if (QTest::currentTestFailed())
            return;
        QFAIL("no error");
    } catch (const Cancelled&) {
        QFAIL("Cancelled escaped");
    } catch (const Error& e) {
        message = QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        QFAIL(qPrintable(QString("not a moewb::Error: ") + e.what()));
    }
    qInfo("%s", qPrintable(message));
    QVERIFY2(!message.isEmpty() && !message.contains('\n'), qPrintable("not one line: " + message));
    QVERIFY2(message.size() < 600, qPrintable("too long: " + message));
    const QString name = QFileInfo(path).fileName();
    QVERIFY2(message.contains(name), qPrintable("does not name " + name + ": " + message));
    for (const QString& word : expect)
        QVERIFY2(message.contains(word, Qt::CaseInsensitive), qPrintable("missing '" + word + "': " + message));
}

/// Every file or model directory of the corpus has a manifest row (a new file cannot be forgotten).
void TestBadInputs::everyFileIsListed()
{
    const QJsonObject m = manifest();
    const QDir root(test::sourcePath("tests/data/bad"));
    int n = 0;
    for (const QString& kind : root.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
        for (const QString& entry : QDir(root.filePath(kind)).entryList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot)) {
            QVERIFY2(m.contains(kind + "/" + entry), qPrintable(kind + "/" + entry + " is not in MANIFEST.json"));
            ++n;
        }
    }
    QCOMPARE(n, m.size());
}

QTEST_GUILESS_MAIN(TestBadInputs)
#include "tst_bad_inputs.moc"
