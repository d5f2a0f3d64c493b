// SPDX-License-Identifier: MIT
#include "moewb/workflow/calib_sequences.h"

#include "moewb/quant/quantize.h"

namespace moewb {

CalibSequences loadCalibSequences(const CalibSelection& s, const std::string& modelDir)
{
    CalibSequences r;
    if (s.data.empty())
        return r;
    const CalibTokens tokens = loadCalibData(s.data, modelTokenizer(modelDir));
    r.sequences = calibSequences(tokens, s.samples, s.seqLen, s.randomWindows, s.seed);
    r.description = calibDataDescription(tokens.files, int64_t(r.sequences.size()), s.seqLen, s.randomWindows, s.seed);
    return r;
}

} // namespace moewb
