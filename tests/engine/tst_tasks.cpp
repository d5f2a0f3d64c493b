// SPDX-License-Identifier: MIT
// Zero-shot tasks: layouts and prompt formatting (hand-written), metrics (hand-computed), per-choice
// log-likelihoods against the NumPy reference, activation fake-quantization, the CLI and the demo
// task files' determinism.
#include "model/streamer.h"
#include "moewb/core/error.h"
#include "moewb/eval/tasks.h"
#include "moewb/tokenizer/tokenizer.h"
#include "model/actquant.h"
#include "testutil.h"

#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace moewb;
using namespace moewb::test;

namespace {

// Items of every layout. Shared contexts (hs lines 2-3), an input that is a prefix of another
// (hs " mat." / " mat. The dog barked.", lambada lines 2 / 1) and an item the seed-3 random
// Mixtral predicts greedily (lambada "on to owner a", found by search with the reference).
const char* kHellaSwag =
    R"({"ctx_a": "A man is sitting on a roof.", "ctx_b": "he STARTS pulling up roofing", "activity_label": "Roof shingle removal", "endings": ["on a roof.", "and [title] then leaves.", "with a hammer  and nails.", "the end"], "label": "2", "domain": "a"})"
    "\n"
    R"({"ctx": "The cat sat on the", "endings": ["mat.", "dog.", "roof of the house."], "label": 0, "domain": "b"})"
    "\n\n"
    R"({"ctx": "The cat sat on the", "endings": ["mat. The dog barked.", "hat", "table"], "label": 1, "domain": "b"})"
    "\n";
const char* kPiqa =
    R"({"goal": "How do I open a jar?", "sol1": "Twist the lid.", "sol2": "Eat the jar.", "label": 0})"
    "\n"
    R"({"goal": "Boil water", "sol1": "put it in the fridge", "sol2": "heat it on the stove", "label": 1})"
    "\n";
const char* kArc =
    R"({"id": "x1", "question": "Which is a planet?", "choices": {"text": ["Sun", "Mars", "Moon"], "label": ["A", "B", "C"]}, "answerKey": "B"})"
    "\n"
    R"({"id": "x2", "question": "What is 2+2?", "choices": {"text": ["3", "4", "5", "22"], "label": ["1", "2", "3", "4"]}, "answerKey": "2"})"
    "\n";
const char* kWinoGrande =
    R"({"sentence": "Sarah gave Maria the book because _ had finished reading it.", "option1": "Sarah", "option2": "Maria", "answer": "1", "domain": "x"})"
    "\n"
    R"({"sentence": "The trophy did not fit in the suitcase because the _ was too big.", "option1": "trophy", "option2": "suitcase", "answer": "2", "domain": "y"})"
    "\n";
const char* kLambada =
    R"({"text": "the quick brown fox jumps over the lazy dog and the dog"})"
    "\n"
    R"({"text": "the quick brown fox jumps over the lazy dog"})"
    "\n"
    R"({"text": "on to owner a"})"
    "\n";
const char* kGeneric =
    R"({"context": "Colors: red, green,", "choices": ["blue", "table"], "label": 0})"
    "\n"
    R"({"context": "", "choices": ["hello world", "zzz"], "label": 1})"
    "\n";

QString writeTask(const QString& dir, const QString& name, const char* text)
{
    const QString path = dir + "/" + name + ".jsonl";
    writeAll(path, text);
    return path;
}

/// Raw float32 logits + OUT.json {"shape"} as reference_forward.py writes them.
at::Tensor readLogits(const QString& path)
{
    const QJsonArray shape = QJsonDocument::fromJson(readAll(path + ".json")).object()["shape"].toArray();
    std::vector<int64_t> dims;
    for (const auto& v : shape)
        dims.push_back(v.toInteger());
    const QByteArray raw = readAll(path);
    return at::from_blob(const_cast<char*>(raw.constData()), dims, at::kFloat).clone();
}

QString oneLine(const std::string& what)
{
    return QString::fromStdString(what);
}

} // namespace

class TestTasks : public QObject {
    Q_OBJECT
    QTemporaryDir m_tmp;
    QString m_model;
    QStringList m_files;

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_model = m_tmp.path() + "/mixtral";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", m_model, "--seed", "3"});
        m_files = {writeTask(m_tmp.path(), "hs", kHellaSwag), writeTask(m_tmp.path(), "piqa", kPiqa),
                   writeTask(m_tmp.path(), "arc", kArc), writeTask(m_tmp.path(), "wg", kWinoGrande),
                   writeTask(m_tmp.path(), "lambada", kLambada), writeTask(m_tmp.path(), "generic", kGeneric)};
    }

    // ------------------------------------------------------------------ layouts and formatting
    void parsesHellaSwag()
    {
        const TaskSet s = parseTaskText(kHellaSwag, "hs.jsonl");
        QCOMPARE(s.layout, TaskLayout::HellaSwag);
        QCOMPARE(s.name, std::string("hs"));
        QCOMPARE(int(s.items.size()), 3);
        const TaskItem& a = s.items[0];
        QCOMPARE(a.line, int64_t(1));
        QCOMPARE(a.domain, std::string("a"));
        QCOMPARE(a.label, int64_t(2));
        // activity_label: ctx_a ctx_b.capitalize(), then preprocess ("[title]" → ". ", "  " → " ").
        QCOMPARE(a.choices[0].context,
                 std::string("Roof shingle removal: A man is sitting on a roof. He starts pulling up roofing"));
        QCOMPARE(a.choices[0].continuation, std::string(" on a roof."));
        QCOMPARE(a.choices[1].continuation, std::string(" and. then leaves."));
        QCOMPARE(a.choices[2].continuation, std::string(" with a hammer and nails."));
        QCOMPARE(a.choices[2].normLength, int64_t(24));
        QCOMPARE(s.items[2].line, int64_t(4)); // the blank line 3 is skipped
        QCOMPARE(s.items[2].choices[0].context, std::string("The cat sat on the"));
        QCOMPARE(parseTaskText(kHellaSwag, "hs.jsonl", 2).items.size(), size_t(2)); // --limit
    }

    void parsesOtherLayouts()
    {
        const TaskSet p = parseTaskText(kPiqa, "p.jsonl");
        QCOMPARE(p.layout, TaskLayout::Piqa);
        QCOMPARE(p.items[0].choices[0].context, std::string("Question: How do I open a jar?\nAnswer:"));
        QCOMPARE(p.items[0].choices[1].continuation, std::string(" Eat the jar."));
        QCOMPARE(p.items[1].label, int64_t(1));

        const TaskSet a = parseTaskText(kArc, "a.jsonl");
        QCOMPARE(a.layout, TaskLayout::Arc);
        QCOMPARE(a.items[0].choices[0].context, std::string("Question: Which is a planet?\nAnswer:"));
        QCOMPARE(a.items[0].label, int64_t(1));
        QCOMPARE(a.items[1].label, int64_t(1)); // answerKey "2" among labels "1".."4"
        QCOMPARE(a.items[1].choices[3].continuation, std::string(" 22"));
        QCOMPARE(a.items[1].choices[3].normLength, int64_t(2));

        const TaskSet w = parseTaskText(kWinoGrande, "w.jsonl");
        QCOMPARE(w.layout, TaskLayout::WinoGrande);
        QCOMPARE(w.items[0].choices[0].context, std::string("Sarah gave Maria the book because Sarah"));
        QCOMPARE(w.items[0].choices[1].context, std::string("Sarah gave Maria the book because Maria"));
        QCOMPARE(w.items[0].choices[0].continuation, std::string(" had finished reading it."));
        QCOMPARE(w.items[0].choices[1].continuation, w.items[0].choices[0].continuation);
        QCOMPARE(w.items[0].label, int64_t(0));
        QCOMPARE(w.items[1].label, int64_t(1));

        const TaskSet l = parseTaskText(kLambada, "l.jsonl");
        QCOMPARE(l.layout, TaskLayout::Lambada);
        QCOMPARE(int(l.items[0].choices.size()), 1);
        QCOMPARE(l.items[0].choices[0].context, std::string("the quick brown fox jumps over the lazy dog and the"));
        QCOMPARE(l.items[0].choices[0].continuation, std::string(" dog"));

        const TaskSet g = parseTaskText(kGeneric, "g.jsonl");
        QCOMPARE(g.layout, TaskLayout::Generic);
        QCOMPARE(g.items[0].choices[1].continuation, std::string(" table"));
        QCOMPARE(g.items[1].choices[0].context, std::string(""));
    }

    void malformedLinesNameFileAndLine_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("expected");
        QTest::newRow("bad json") << "{\"ctx\": \"a\", \"endings\": [\"b\",\"c\"], \"label\": 0}\n{oops\n"
                                  << "t.jsonl:2: invalid JSON";
        QTest::newRow("not an object") << "[1, 2]\n" << "t.jsonl:1: expected a JSON object";
        QTest::newRow("unknown layout") << "{\"foo\": 1}\n" << "t.jsonl:1: unknown task layout (keys: foo)";
        QTest::newRow("label range") << "{\"ctx\": \"a\", \"endings\": [\"b\", \"c\"], \"label\": 2}\n"
                                     << "t.jsonl:1: 'label' 2 is out of range for 2 choices";
        QTest::newRow("label type") << "{\"goal\": \"a\", \"sol1\": \"b\", \"sol2\": \"c\", \"label\": \"x\"}\n"
                                    << "t.jsonl:1: 'label' must be an integer";
        QTest::newRow("missing key") << "{\"goal\": \"a\", \"sol1\": \"b\", \"label\": 0}\n"
                                     << "t.jsonl:1: missing key 'sol2'";
        QTest::newRow("no blank") << "{\"sentence\": \"no blank\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"1\"}\n"
                                  << "t.jsonl:1: 'sentence' has no '_' blank";
        QTest::newRow("bad answer") << "{\"sentence\": \"a _ b\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"3\"}\n"
                                    << "t.jsonl:1: 'answer' must be \"1\" or \"2\"";
        QTest::newRow("arc key") << "{\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\", \"B\"]}, \"answerKey\": \"C\"}\n"
                                 << "t.jsonl:1: answerKey 'C' is not one of choices.label";
        QTest::newRow("lambada one word") << "{\"text\": \"word\"}\n"
                                          << "t.jsonl:1: 'text' needs a context, a space and a last word";
        QTest::newRow("mixed layouts") << "{\"text\": \"a b\"}\n{\"goal\": \"a\", \"sol1\": \"b\", \"sol2\": \"c\", \"label\": 0}\n"
                                       << "t.jsonl:2: item has the piqa layout, earlier items the lambada layout";
        QTest::newRow("empty") << "\n\n" << "t.jsonl: no task items";
    }

    void malformedLinesNameFileAndLine()
    {
        QFETCH(QString, text);
        QFETCH(QString, expected);
        try {
            parseTaskText(text.toStdString(), "t.jsonl");
            QFAIL("no error");
        } catch (const InputError& e) {
            const QString msg = oneLine(e.what());
            QVERIFY2(msg.startsWith(expected), qPrintable(msg));
            QVERIFY2(!msg.contains('\n'), qPrintable(msg));
        }
        QVERIFY_THROWS_EXCEPTION(IoError, loadTaskFile(m_tmp.path().toStdString() + "/none.jsonl"));
    }

    // ------------------------------------------------------------------ metrics
    void scoreHandComputed()
    {
        // Item 1: "a" (1 char) ll -2 vs "bbbb" (4 chars) ll -4: acc picks 0, acc_norm -2 < -1 picks 1.
        // Item 2: ties pick the first (numpy.argmax): both metrics pick 0.
        // Item 3: -3/3 = -1 vs -1/1 = -1 tie for acc_norm → 0; acc picks 1.
        const TaskSet s = parseTaskText(
            R"({"context": "x", "choices": ["a", "bbbb"], "label": 1, "domain": "d1"})"
            "\n"
            R"({"context": "x", "choices": ["cc", "dd"], "label": 0, "domain": "d2"})"
            "\n"
            R"({"context": "x", "choices": ["eee", "f"], "label": 1, "domain": "d2"})"
            "\n",
            "h.jsonl");
        const std::vector<std::vector<ChoiceScore>> sc = {{{-2, false, 1}, {-4, false, 2}},
                                                          {{-5, false, 1}, {-5, false, 1}},
                                                          {{-3, false, 1}, {-1, false, 1}}};
        const TaskResult r = scoreTask(s, sc);
        QCOMPARE(r.pred, (std::vector<int64_t>{0, 0, 1}));
        QCOMPARE(r.predNorm, (std::vector<int64_t>{1, 0, 0}));
        QCOMPARE(r.correct, (std::vector<uint8_t>{0, 1, 1})); // what the pipeline's paired Δacc pairs
        // acc: [0, 1, 1] → 2/3, stderr = sqrt(var_ddof1 / n) = sqrt((1/3) / 3) = 1/3.
        QCOMPARE(r.overall.n, int64_t(3));
        QVERIFY(std::abs(r.overall.acc - 2.0 / 3.0) < 1e-12);
        QVERIFY(std::abs(r.overall.accStderr - 1.0 / 3.0) < 1e-12);
        // acc_norm: [1, 1, 0] → 2/3.
        QVERIFY(r.overall.hasAccNorm);
        QVERIFY(std::abs(r.overall.accNorm - 2.0 / 3.0) < 1e-12);
        QCOMPARE(int(r.domains.size()), 2);
        QCOMPARE(r.domains[0].domain, std::string("d1"));
        QCOMPARE(r.domains[0].acc, 0.0);
        QCOMPARE(r.domains[0].accNorm, 1.0);
        QCOMPARE(r.domains[0].accStderr, 0.0); // n = 1
        QCOMPARE(r.domains[1].acc, 1.0);
        QCOMPARE(r.domains[1].accNorm, 0.5);

        // LAMBADA: acc = greedy, ppl = exp(-mean loglik) = exp(2).
        const TaskSet l = parseTaskText("{\"text\": \"a b\"}\n{\"text\": \"c d\"}\n", "l.jsonl");
        const TaskResult lr = scoreTask(l, {{{-1, true, 1}}, {{-3, false, 2}}});
        QCOMPARE(lr.overall.acc, 0.5);
        QCOMPARE(lr.correct, (std::vector<uint8_t>{1, 0})); // greedy match, not pred == label (both 0)
        QVERIFY(lr.overall.hasPpl && !lr.overall.hasAccNorm);
        QVERIFY(std::abs(lr.overall.ppl - std::exp(2.0)) < 1e-9);
    }

    void encodeRequestMovesTrailingSpace()
    {
        const auto tok = Tokenizer::load(m_model.toStdString());
        // "Hello " + "world" is scored as "Hello" + " world".
        const TokenPair a = encodeRequest(*tok, "Hello ", "world", 296);
        const TokenPair b = encodeRequest(*tok, "Hello", " world", 296);
        QCOMPARE(a.context, b.context);
        QCOMPARE(a.continuation, b.continuation);
        QCOMPARE(a.context, tok->encode("Hello", false));
        std::vector<int32_t> whole = a.context;
        whole.insert(whole.end(), a.continuation.begin(), a.continuation.end());
        QCOMPARE(whole, tok->encode("Hello world", false));
        const TokenPair e = encodeRequest(*tok, "", "hi", 296);
        QCOMPARE(e.context, std::vector<int32_t>{296});
        QCOMPARE(e.continuation, tok->encode("hi", false));
    }

    // ------------------------------------------------------------------ against the reference
    void matchesReference()
    {
        std::vector<TaskSet> sets;
        QStringList args = {sourcePath("tests/reference/reference_tasks.py"), "tasks", m_model};
        for (const QString& f : m_files) {
            sets.push_back(loadTaskFile(f.toStdString()));
            args << f;
        }
        const QJsonArray ref = QJsonDocument::fromJson(runPython(args)).object()["tasks"].toArray();
        TaskEvalOptions opt;
        opt.dtype = "f32";
        int64_t progressCalls = 0;
        const TaskEvalResult res = evaluateTasks(m_model.toStdString(), sets, opt, [&](const Progress&) {
            ++progressCalls;
            return true;
        });
        QVERIFY(progressCalls > 0);
        QCOMPARE(int(res.tasks.size()), int(ref.size()));
        // Duplicate and prefix inputs ran once.
        QCOMPARE(res.requests, int64_t(10 + 4 + 7 + 4 + 3 + 4));
        QVERIFY2(res.sequences < res.requests - 3, qPrintable(QString::number(res.sequences)));
        double maxDiff = 0.0;
        int greedyTrue = 0;
        for (int t = 0; t < ref.size(); ++t) {
            const QJsonObject rt = ref[t].toObject();
            const TaskResult& et = res.tasks[size_t(t)];
            QCOMPARE(QString::fromStdString(et.name), rt["name"].toString());
            QCOMPARE(QString(taskLayoutName(et.layout)), rt["layout"].toString());
            const QJsonArray ll = rt["loglik"].toArray(), greedy = rt["greedy"].toArray(), tokens = rt["tokens"].toArray();
            for (int i = 0; i < ll.size(); ++i)
                for (int c = 0; c < ll[i].toArray().size(); ++c) {
                    const ChoiceScore& s = et.scores[size_t(i)][size_t(c)];
                    const double r = ll[i].toArray()[c].toDouble();
                    maxDiff = std::max(maxDiff, std::abs(s.loglik - r));
                    QVERIFY2(std::abs(s.loglik - r) < 1e-4 * std::max(1.0, std::abs(r)),
                             qPrintable(QString("%1 item %2 choice %3: %4 vs %5").arg(rt["name"].toString()).arg(i).arg(c)
                                            .arg(s.loglik, 0, 'g', 10).arg(r, 0, 'g', 10)));
                    QCOMPARE(s.greedy, greedy[i].toArray()[c].toBool());
                    QCOMPARE(s.tokens, int64_t(tokens[i].toArray()[c].toInteger()));
                    greedyTrue += s.greedy;
                }
            for (int i = 0; i < ll.size(); ++i) {
                QCOMPARE(et.pred[size_t(i)], int64_t(rt["pred"].toArray()[i].toInteger()));
                QCOMPARE(et.predNorm[size_t(i)], int64_t(rt["pred_norm"].toArray()[i].toInteger()));
            }
            QVERIFY(std::abs(et.overall.acc - rt["acc"].toDouble()) < 1e-12);
            QVERIFY(std::abs(et.overall.accStderr - rt["acc_stderr"].toDouble()) < 1e-12);
            QCOMPARE(et.overall.hasAccNorm, !rt["acc_norm"].isNull());
            if (et.overall.hasAccNorm)
                QVERIFY(std::abs(et.overall.accNorm - rt["acc_norm"].toDouble()) < 1e-12);
            QCOMPARE(et.overall.hasPpl, !rt["ppl"].isNull());
            if (et.overall.hasPpl)
                QVERIFY(std::abs(et.overall.ppl - rt["ppl"].toDouble()) < 1e-4 * et.overall.ppl);
        }
        QCOMPARE(greedyTrue, 1); // lambada "on to owner a"
        QCOMPARE(res.tasks[4].overall.acc, 1.0 / 3.0);
        qInfo("max |loglik - reference| = %.3g over %lld requests in %lld sequences", maxDiff,
              (long long)res.requests, (long long)res.sequences);

        // Truncation to --max-length keeps the continuation and the most recent context.
        opt.maxLength = 20;
        const TaskEvalResult cut = evaluateTasks(m_model.toStdString(), {sets[0]}, opt);
        const QJsonObject refCut = QJsonDocument::fromJson(
                                       runPython({sourcePath("tests/reference/reference_tasks.py"), "tasks", m_model,
                                                  m_files[0], "--max-length", "20"}))
                                       .object()["tasks"]
                                       .toArray()[0]
                                       .toObject();
        for (int i = 0; i < 3; ++i)
            for (int c = 0; c < int(sets[0].items[size_t(i)].choices.size()); ++c) {
                const double r = refCut["loglik"].toArray()[i].toArray()[c].toDouble();
                QVERIFY(std::abs(cut.tasks[0].scores[size_t(i)][size_t(c)].loglik - r) < 1e-4 * std::max(1.0, std::abs(r)));
            }
    }

    void cancels()
    {
        const std::vector<TaskSet> sets = {loadTaskFile(m_files[0].toStdString())};
        TaskEvalOptions opt;
        opt.dtype = "f32";
        QVERIFY_THROWS_EXCEPTION(Cancelled, evaluateTasks(m_model.toStdString(), sets, opt, [](const Progress& p) {
                                     return p.stage != "forward";
                                 }));
    }

    // ------------------------------------------------------------------ activation fake-quant
    void actQuantHandComputed()
    {
        // bits 3: qmax 3, row 0 scale 1.5 / 3 = 0.5: x / scale = 3, -1.5, 0.5, 2, -2.5 → 3, -2, 0, 2, -2
        // (round half to even); the zero row stays zero.
        const at::Tensor x = at::tensor({1.5f, -0.75f, 0.25f, 1.0f, -1.25f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 5});
        QVERIFY(at::equal(fakeQuantActivations(x, 3),
                          at::tensor({1.5f, -1.0f, 0.0f, 1.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 5})));
        // bits 4: qmax 7, scale 4 / 7: 1 / scale = 1.75 → 2, 0.5 / scale = 0.875 → 1, 4 → 7.
        const at::Tensor y = fakeQuantActivations(at::tensor({1.0f, 0.5f, 4.0f}), 4);
        const float s = 4.0f / 7.0f;
        QVERIFY(std::abs(y[0].item<float>() - 2 * s) < 1e-6 && std::abs(y[1].item<float>() - s) < 1e-6
                && std::abs(y[2].item<float>() - 4.0f) < 1e-6);
        // bits 8: qmax 127, scale 127/127 = 1 → integers are kept, 0.5 → 0, 2.5 → 2, -1.5 → -2.
        const at::Tensor z = fakeQuantActivations(at::tensor({127.0f, 0.5f, 2.5f, -1.5f, 3.0f}), 8);
        QVERIFY(at::equal(z, at::tensor({127.0f, 0.0f, 2.0f, -2.0f, 3.0f})));
        // 16 bits: the same tensor, untouched; bf16 stays bf16.
        QVERIFY(fakeQuantActivations(x, 16).is_same(x));
        QCOMPARE(fakeQuantActivations(x.to(at::kBFloat16), 8).scalar_type(), at::kBFloat16);
        QVERIFY_THROWS_EXCEPTION(InputError, fakeQuantActivations(x, 1));
    }

    void actQuantForwardMatchesReference_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("bits");
        QTest::newRow("mixtral a8") << "mixtral" << 8;
        QTest::newRow("qwen2_moe a8 (shared expert + gate, dense layer)") << "qwen2_moe" << 8;
        QTest::newRow("deepseek a4") << "deepseek" << 4;
    }

    void actQuantForwardMatchesReference()
    {
        QFETCH(QString, arch);
        QFETCH(int, bits);
        const QString dir = m_tmp.path() + "/aq_" + arch;
        if (!QDir(dir).exists())
            runPython({sourcePath("tests/reference/gen_random_model.py"), arch, dir, "--seed", "5"});
        const QString idsPath = m_tmp.path() + "/aq_ids.json";
        std::vector<int64_t> ids;
        for (int i = 0; i < 24; ++i)
            ids.push_back((i * 37 + 11) % 290);
        QJsonArray row;
        for (int64_t v : ids)
            row.append(qint64(v));
        writeAll(idsPath, QJsonDocument(QJsonArray{row}).toJson(QJsonDocument::Compact));
        runPython({sourcePath("tests/reference/reference_tasks.py"), "forward", dir, idsPath, m_tmp.path() + "/aq.bin",
                   "--act-bits", QString::number(bits)});
        const at::Tensor ref = readLogits(m_tmp.path() + "/aq.bin");
        runPython({sourcePath("tests/reference/reference_forward.py"), dir, idsPath, m_tmp.path() + "/fp.bin"});
        const at::Tensor refFull = readLogits(m_tmp.path() + "/fp.bin");

        const Model model(dir.toStdString());
        StreamOptions opt;
        opt.activationBits = bits;
        const at::Tensor got = model.logits(at::tensor(ids).view({1, -1}), opt);
        const double diff = (got - ref).abs().max().item<double>();
        const double median = (got - ref).abs().median().item<double>();
        const double effect = (ref - refFull).abs().max().item<double>();
        qInfo("%s a%d: max |engine - reference| %.3g (median %.3g); quantization moves logits by up to %.3g",
              qPrintable(arch), bits, diff, median, effect);
        // A value within float32 rounding of a grid midpoint may land on the other grid point in
        // one of the two implementations, so the max gets a looser bound than the median.
        QVERIFY(median < 1e-5);
        QVERIFY(diff < 1e-3);
        QVERIFY(effect > 50 * std::max(diff, 1e-4));

        // The default (16) path is bitwise the unquantized forward.
        StreamOptions off;
        StreamOptions same;
        same.activationBits = 16;
        QVERIFY(at::equal(model.logits(at::tensor(ids).view({1, -1}), off),
                          model.logits(at::tensor(ids).view({1, -1}), same)));
    }

    // ------------------------------------------------------------------ CLI
    void cliWritesResults()
    {
        const QString out = m_tmp.path() + "/results.json";
        const QString text = m_tmp.path() + "/ppl.txt";
        writeAll(text, "the quick brown fox jumps over the lazy dog. the dog sleeps.\n");
        const CliRun r = runCli(moewbCli(), {"eval", m_model, "--tasks", m_files[0], "--tasks", m_files[4], "--ppl",
                                             text, "--dtype", "f32", "--limit", "2", "--out", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.out.contains("hs") && r.out.contains("acc_norm"), r.out.constData());
        const QJsonObject j = QJsonDocument::fromJson(readAll(out)).object();
        for (const char* key : {"model", "activation_bits", "dtype", "tasks", "perplexity", "seconds"})
            QVERIFY2(j.contains(key), key);
        QCOMPARE(j["activation_bits"].toInt(), 16);
        const QJsonArray tasks = j["tasks"].toArray();
        QCOMPARE(tasks.size(), 2);
        const QJsonObject hs = tasks[0].toObject();
        for (const char* key : {"name", "file", "layout", "n", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "domains"})
            QVERIFY2(hs.contains(key), key);
        QCOMPARE(hs["n"].toInt(), 2); // --limit 2
        QCOMPARE(hs["layout"].toString(), QString("hellaswag"));
        QCOMPARE(hs["domains"].toArray().size(), 2);
        const QJsonObject lb = tasks[1].toObject();
        QVERIFY(lb.contains("ppl") && lb["acc_norm"].isNull());
        QCOMPARE(j["perplexity"].toArray().size(), 1);
        QVERIFY(j["perplexity"].toArray()[0].toObject()["perplexity"].toDouble() > 1.0);

        // Same numbers as the engine API.
        TaskEvalOptions opt;
        opt.dtype = "f32";
        const TaskEvalResult api = evaluateTasks(m_model.toStdString(), {loadTaskFile(m_files[0].toStdString(), 2)}, opt);
        QVERIFY(std::abs(hs["acc"].toDouble() - api.tasks[0].overall.acc) < 1e-12);
        QVERIFY(std::abs(hs["acc_norm"].toDouble() - api.tasks[0].overall.accNorm) < 1e-12);
    }

    void cliUsesPlanActivationBits()
    {
        // A fake-quantized model dir carries moewb_plan.json; its activation_bits apply unless --act-bits.
        const QString dir = m_tmp.path() + "/planned";
        QVERIFY(QDir().mkpath(dir));
        for (const QString& f : {"config.json", "model.safetensors", "tokenizer.json"})
            QVERIFY(QFile::copy(m_model + "/" + f, dir + "/" + f));
        writeAll(dir + "/moewb_plan.json", R"({"format": "moewb-plan", "version": 1, "activation_bits": 4})");
        const QString out = m_tmp.path() + "/planned.json";
        CliRun r = runCli(moewbCli(), {"eval", dir, "--tasks", m_files[3], "--dtype", "f32", "--out", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject a4 = QJsonDocument::fromJson(readAll(out)).object();
        QCOMPARE(a4["activation_bits"].toInt(), 4);
        r = runCli(moewbCli(), {"eval", dir, "--tasks", m_files[3], "--dtype", "f32", "--act-bits", "16", "--out", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject a16 = QJsonDocument::fromJson(readAll(out)).object();
        QCOMPARE(a16["activation_bits"].toInt(), 16);
        const double ll4 = a4["tasks"].toArray()[0].toObject()["loglik_sum"].toDouble();
        const double ll16 = a16["tasks"].toArray()[0].toObject()["loglik_sum"].toDouble();
        QVERIFY2(std::abs(ll4 - ll16) > 1e-3, qPrintable(QString("%1 %2").arg(ll4).arg(ll16)));
    }

    void cliErrors()
    {
        const CliRun usage = runCli(moewbCli(), {"eval", m_model});
        QCOMPARE(usage.exitCode, 2);
        const CliRun badBits = runCli(moewbCli(), {"eval", m_model, "--tasks", m_files[0], "--act-bits", "1"});
        QCOMPARE(badBits.exitCode, 2);
        const CliRun missing = runCli(moewbCli(), {"eval", m_model, "--tasks", m_tmp.path() + "/none.jsonl"});
        QCOMPARE(missing.exitCode, 1);
        QVERIFY2(missing.err.startsWith("moewb: error: ") && missing.err.count('\n') == 1 && missing.err.contains("none.jsonl"),
                 missing.err.constData());
        writeAll(m_tmp.path() + "/bad.jsonl", "{\"text\": \"a b\"}\n{\"text\": 3}\n");
        const CliRun bad = runCli(moewbCli(), {"eval", m_model, "--tasks", m_tmp.path() + "/bad.jsonl"});
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.contains("bad.jsonl:2: 'text' must be a string") && bad.err.count('\n') == 1, bad.err.constData());
    }

    // ------------------------------------------------------------------ demo data
    void demoTasksAreDeterministic()
    {
        // Rebuilds datasets/tasks-v2 into a temp dir, compares bytes, checks every continuation tokenizes.
        const QByteArray out = runPython({sourcePath("datasets/build_tasks.py"), "--check"});
        QVERIFY2(out.count("identical to the committed file") == 3, out.constData());
        for (const char* f : {"demo_hellaswag", "demo_lambada", "demo_winogrande"}) {
            const TaskSet s = loadTaskFile(sourcePath(QString("datasets/tasks-v2/%1.jsonl").arg(f)).toStdString());
            QVERIFY(s.items.size() >= 500);
            // The C++ tokenizer (the one `moewb eval` uses) leaves no continuation empty either.
            const auto tok = Tokenizer::load(sourcePath("datasets/tokenizer-v2/tokenizer.json").toStdString());
            for (const TaskItem& it : s.items)
                for (const TaskChoice& c : it.choices)
                    QVERIFY2(!encodeRequest(*tok, c.context, c.continuation, 4095).continuation.empty(),
                             qPrintable(QString("%1:%2").arg(f).arg(it.line)));
        }
    }
};

QTEST_APPLESS_MAIN(TestTasks)
#include "tst_tasks.moc"
