// SPDX-License-Identifier: MIT
// moewb gguf-info FILE: a GGUF file's header, metadata and tensor table, after the reader's checks.
#include "cli_common.h"

#include "moewb/export/gguf.h"

#include <cstdio>

namespace moewb::cli {
namespace {

int runGgufInfo(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Read a GGUF v3 file (as 'moewb quantize --format gguf' writes it, or any llama.cpp model), check its "
        "header, metadata and tensor offsets, and print the metadata and the tensor table. A damaged file gives a "
        "one-line error and exit code 1."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("FILE"), QStringLiteral("GGUF file"));
    p.addOption({QStringLiteral("items"), QStringLiteral("Array values shown per metadata entry (default 8)."),
                 QStringLiteral("N"), QStringLiteral("8")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1) {
        std::fprintf(stderr, "moewb gguf-info: usage error: expected exactly one FILE\n");
        return ExitUsage;
    }
    bool ok = false;
    const int items = p.value(QStringLiteral("items")).toInt(&ok);
    if (!ok || items < 0) {
        std::fprintf(stderr, "moewb gguf-info: usage error: --items must be a non-negative integer\n");
        return ExitUsage;
    }
    const std::string file = toStd(p.positionalArguments()[0]);
    return guarded([&] {
        std::fputs(ggufInfoText(file, size_t(items)).c_str(), stdout);
        return ExitOk;
    });
}

const CommandRegistrar reg({"gguf-info", "print and check a GGUF file's metadata and tensors", runGgufInfo});

} // namespace
} // namespace moewb::cli
