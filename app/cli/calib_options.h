// SPDX-License-Identifier: MIT
// The calibration-data options shared by the commands that quantize (quantize, eval --plan):
// --calib FILE / --domain NAME=FILE (repeatable), --samples, --seq-len, --random-windows, --seed,
// and the GPTQ knobs --damp, --min-expert-tokens, --balance-experts. One definition, one parser; the windows and their
// description come from the engine (loadCalibSequences, moewb/workflow/calib_sequences.h).
#pragma once

#include "moewb/quant/quantize.h"
#include "moewb/workflow/calib_sequences.h"

#include <QCommandLineParser>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moewb::cli {

/// The windows (CalibSelection: data, samples, seq-len, random windows, seed) and the GPTQ knobs.
struct CalibCliOptions : CalibSelection {
    double damp = 0.01;
    int64_t minExpertTokens = kDefaultMinExpertTokens;
    ExpertBalance balanceExperts = kDefaultExpertBalance; ///< --balance-experts
};

/// Adds the options with these defaults for --samples and --seq-len.
void addCalibOptions(QCommandLineParser& p, int64_t defaultSamples, int64_t defaultSeqLen);

/// Reads them back; on a bad value prints "moewb COMMAND: usage error: ..." and returns nullopt.
std::optional<CalibCliOptions> readCalibOptions(const QCommandLineParser& p, const char* command);

} // namespace moewb::cli
