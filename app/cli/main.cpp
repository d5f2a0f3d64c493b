// SPDX-License-Identifier: MIT
// moewb: the command-line front end. Dispatches to the subcommands registered in cmd_*.cpp.
#include "cli_common.h"
#include "command.h"
#include "moewb/model/runtime.h"

#include <QCoreApplication>

#include <algorithm>
#include <cstdio>
#include <cstring>

using namespace moewb::cli;

static void printUsage()
{
    auto cmds = commandTable();
    std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return std::strcmp(a.name, b.name) < 0; });
    std::printf("moewb %s: a workbench for compressing Mixture-of-Experts language models\n\n"
                "usage: moewb <command> [options]   (moewb <command> --help for its options)\n\ncommands:\n",
                MOEWB_VERSION);
    for (const auto& c : cmds)
        std::printf("  %-12s %s\n", c.name, c.summary);
}

int main(int argc, char** argv)
{
    moewb::restartWithFastBlas(argv); // returns unless OpenBLAS needs its fast kernels chosen at load
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("moewb"));
    QCoreApplication::setApplicationVersion(QStringLiteral(MOEWB_VERSION));
    installInterruptHandler();
    const QStringList args = QCoreApplication::arguments();
    if (args.size() < 2 || args[1] == QLatin1String("--help") || args[1] == QLatin1String("-h")
        || args[1] == QLatin1String("help")) {
        printUsage();
        return args.size() < 2 ? ExitUsage : ExitOk;
    }
    if (args[1] == QLatin1String("--version")) {
        std::printf("moewb %s\n", MOEWB_VERSION);
        return ExitOk;
    }
    for (const auto& c : commandTable()) {
        if (args[1] == QLatin1String(c.name)) {
            QStringList sub = args.mid(2);
            sub.prepend(QStringLiteral("moewb ") + QLatin1String(c.name));
            return c.run(sub);
        }
    }
    std::fprintf(stderr, "moewb: unknown command '%s' (see moewb --help)\n", qPrintable(args[1]));
    return ExitUsage;
}
