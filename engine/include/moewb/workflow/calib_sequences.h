// SPDX-License-Identifier: MIT
// The calibration windows a quantize run feeds GPTQ (`moewb quantize`, `eval --plan`, `prune`, the
// GUI's quantize and export jobs), cut from the data as `moewb calibrate` cuts them, with the
// description recorded as their provenance (calibDataDescription, moewb/calib/calibrate.h).
#pragma once

#include "moewb/calib/calibrate.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// Which windows of which data.
struct CalibSelection {
    std::vector<CalibDataSpec> data; ///< empty: no calibration data
    int64_t samples = 128;
    int64_t seqLen = 2048;
    bool randomWindows = false;
    int64_t seed = 0;
};

/// The windows' token ids and one human line saying what they are, e.g. "first 128 windows of
/// 2048 tokens of wiki.txt". No data: no sequences and "none".
struct CalibSequences {
    std::vector<std::vector<int32_t>> sequences;
    std::string description = "none";
};

/// Reads and tokenizes the data with the model's tokenizer and cuts the windows. InputError for
/// unreadable data or too few tokens.
CalibSequences loadCalibSequences(const CalibSelection& selection, const std::string& modelDir);

} // namespace moewb
