// SPDX-License-Identifier: MIT
// The calibration-data options shared by the commands that quantize (quantize, eval --plan):
// --calib FILE / --domain NAME=FILE (repeatable), --samples, --seq-len, --random-windows, --seed,
// and the GPTQ knobs --damp, --min-expert-tokens. One definition, one parser, one description.
#pragma once

#include "moewb/calib/calibrate.h"
#include "moewb/quant/quantize.h"

#include <QCommandLineParser>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moewb::cli {

struct CalibCliOptions {
    std::vector<CalibDataSpec> data;
    int64_t samples = 128;
    int64_t seqLen = 2048;
    bool randomWindows = false;
    int64_t seed = 0;
    double damp = 0.01;
    int64_t minExpertTokens = kDefaultMinExpertTokens;
};

/// Adds the options with these defaults for --samples and --seq-len.
void addCalibOptions(QCommandLineParser& p, int64_t defaultSamples, int64_t defaultSeqLen);

/// Reads them back; on a bad value prints "moewb COMMAND: usage error: ..." and returns nullopt.
std::optional<CalibCliOptions> readCalibOptions(const QCommandLineParser& p, const char* command);

/// Calibration sequences of the model's tokenizer, and one human line saying what they are, e.g.
/// "first 128 windows of 2048 tokens of wiki.txt". No data: empty sequences and "none".
struct CalibSequences {
    std::vector<std::vector<int32_t>> sequences;
    std::string description = "none";
};
CalibSequences loadCalibSequences(const CalibCliOptions& o, const std::string& modelDir);

} // namespace moewb::cli
