// SPDX-License-Identifier: MIT
// The moewb subcommand table. Each cmd_*.cpp registers itself with a static CommandRegistrar.
#pragma once

#include <QStringList>

#include <functional>
#include <string>
#include <vector>

namespace moewb::cli {

/// Exit codes: 0 success, 1 runtime error (bad input, I/O), 2 usage error, 130 cancelled.
enum ExitCode { ExitOk = 0, ExitError = 1, ExitUsage = 2, ExitCancelled = 130 };

struct Command {
    const char* name;
    const char* summary;
    /// args[0] is "moewb <name>"; the rest are the subcommand's arguments.
    std::function<int(const QStringList& args)> run;
};

std::vector<Command>& commandTable();

struct CommandRegistrar {
    explicit CommandRegistrar(Command c) { commandTable().push_back(std::move(c)); }
};

} // namespace moewb::cli
