// SPDX-License-Identifier: MIT
// Results of `moewb pipeline` (WORK/results.json) as runs of the Results view: label, average bits,
// model bytes, the first perplexity, task accuracies, and each row's plan (read from the plan file
// the pipeline wrote, so selecting the run loads it).
#pragma once

#include "results/runresult.h"

#include <QString>

#include <vector>

namespace moewb {

/// InputError "PATH: problem" for a file that is not a pipeline results file; IoError when
/// unreadable. A row's plan file that no longer exists leaves its planJson empty.
std::vector<RunResult> importPipelineResults(const QString& path);

} // namespace moewb
