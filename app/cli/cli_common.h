// SPDX-License-Identifier: MIT
// Shared CLI plumbing: the progress line on stderr, Ctrl-C as cancellation, and the one place
// that turns engine exceptions into a one-line message and an exit code.
#pragma once

#include "command.h"
#include "moewb/core/progress.h"

#include <QCommandLineParser>
#include <QString>

#include <functional>

namespace moewb::cli {

/// A ProgressFn that draws "stage [####    ] done/total message ETA" on stderr (only when stderr is
/// a terminal, otherwise one line per stage change) and returns false after SIGINT/SIGTERM/SIGHUP.
ProgressFn terminalProgress();

/// Installs the SIGINT/SIGTERM/SIGHUP handler used by terminalProgress(); a second signal exits at once.
void installInterruptHandler();

/// Runs body, mapping moewb::Cancelled → 130, moewb::Error / std::exception → "moewb: error: ..." and 1.
int guarded(const std::function<int()>& body);

/// Parses args with the parser; on error prints it with the usage and returns false (exit 2).
bool parseOrUsage(QCommandLineParser& parser, const QStringList& args);

std::string toStd(const QString& s);

} // namespace moewb::cli
