// SPDX-License-Identifier: MIT
// moewb tokenize TOKENIZER_JSON_OR_MODEL_DIR (--text STRING | --file FILE | --jsonl FILE) [--no-special]:
// token ids of text as JSON arrays, with the model's own tokenizer.json.
#include "cli_common.h"

#include "moewb/core/error.h"
#include "moewb/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace moewb::cli {
namespace {

void printIds(const std::vector<int32_t>& ids)
{
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i)
            line += ',';
        line += std::to_string(ids[i]);
    }
    line += "]\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
}

std::ifstream openInput(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError(path, std::string("cannot open: ") + std::strerror(errno));
    return in;
}

int runTokenize(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Tokenize text with a Hugging Face tokenizer.json (or MODEL_DIR/tokenizer.json) and print the token ids "
        "as a JSON array. Exactly one of --text, --file, --jsonl. Text that is not valid UTF-8 is read with "
        "U+FFFD in place of each invalid sequence. A tokenizer.json component moewb does not implement is an "
        "error (exit 1), never a different tokenization."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("TOKENIZER_JSON_OR_MODEL_DIR"),
                            QStringLiteral("tokenizer.json, or a model directory that holds one"));
    p.addOption({QStringLiteral("text"), QStringLiteral("Tokenize STRING; print one JSON array."), QStringLiteral("STRING")});
    p.addOption({QStringLiteral("file"), QStringLiteral("Tokenize the whole of FILE as one text; print one JSON array."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("jsonl"),
                 QStringLiteral("Each line of FILE is a JSON object with a \"text\" field; print one JSON array per line."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("no-special"),
                 QStringLiteral("Do not add the post-processor's special tokens such as BOS/EOS "
                                "(Hugging Face add_special_tokens=False).")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    const int sources = int(p.isSet(QStringLiteral("text"))) + int(p.isSet(QStringLiteral("file")))
        + int(p.isSet(QStringLiteral("jsonl")));
    if (p.positionalArguments().size() != 1 || sources != 1) {
        std::fprintf(stderr, "moewb tokenize: usage error: expected one TOKENIZER_JSON_OR_MODEL_DIR and exactly one of "
                             "--text, --file, --jsonl\n\n%s",
                     qPrintable(p.helpText()));
        return ExitUsage;
    }
    const bool special = !p.isSet(QStringLiteral("no-special"));

    return guarded([&] {
        const auto tok = Tokenizer::load(toStd(p.positionalArguments()[0]));
        if (p.isSet(QStringLiteral("text"))) {
            printIds(tok->encode(toStd(p.value(QStringLiteral("text"))), special));
        } else if (p.isSet(QStringLiteral("file"))) {
            const std::string path = toStd(p.value(QStringLiteral("file")));
            std::ifstream in = openInput(path);
            std::ostringstream ss;
            ss << in.rdbuf();
            printIds(tok->encode(ss.str(), special));
        } else {
            const std::string path = toStd(p.value(QStringLiteral("jsonl")));
            std::ifstream in = openInput(path);
            std::string line;
            for (int64_t n = 1; std::getline(in, line); ++n) {
                if (!line.empty() && line.back() == '\r')
                    line.pop_back();
                const std::string where = path + ":" + std::to_string(n);
                nlohmann::json j;
                try {
                    j = nlohmann::json::parse(line);
                } catch (const nlohmann::json::exception& e) {
                    throw InputError(where, std::string("not JSON: ") + e.what());
                }
                if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
                    throw InputError(where, "expected a JSON object with a string field \"text\"");
                printIds(tok->encode(j["text"].get<std::string>(), special));
            }
        }
        std::fflush(stdout);
        return ExitOk;
    });
}

const CommandRegistrar reg({"tokenize", "print the token ids of text (tokenizer.json)", runTokenize});

} // namespace
} // namespace moewb::cli
