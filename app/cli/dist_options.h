// SPDX-License-Identifier: MIT
// --distributed and its rendezvous flags (#15), shared by calibrate and quantize:
// --rank R --world-size N --master-addr HOST --master-port P, each falling back to the
// environment variables torchrun sets (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
#pragma once

#include "moewb/dist/dist.h"

#include <QCommandLineParser>

#include <memory>
#include <optional>

namespace moewb::cli {

void addDistOptions(QCommandLineParser& p);

struct DistCli {
    bool enabled = false; ///< --distributed given
    DistOptions options;  ///< flags as given (unset: -1 / ""), resolved at connect time
};

/// Reads the flags; on a malformed number prints "moewb COMMAND: usage error: ..." and returns
/// nullopt. Rank flags without --distributed are a usage error too.
std::optional<DistCli> readDistOptions(const QCommandLineParser& p, const char* command);

/// Null when not distributed; else resolves the options (env fallbacks) and joins the group.
/// Prints "moewb: rank R of N joined HOST:PORT" on stderr.
std::unique_ptr<DistContext> connectDist(const DistCli& d);

/// "moewb: rank R of N: B bytes handed to collectives" on stderr (the benchmark reads it).
void printCommunication(const DistContext& d);

} // namespace moewb::cli
