// SPDX-License-Identifier: MIT
// Results of `moewb pipeline` (WORK/results.json) as runs of the Results view: label, average bits,
// model bytes, the first perplexity, task accuracies, each row's plan (read from the plan file
// the pipeline wrote, so selecting the run loads it) and, when present (#23), the KL divergence
// (`kld` {text: nats}) and same-top-token share (`same_top` {text: 0..1}) of the same text as the
// perplexity, and the paired interval `kld_vs_uniform` {diff, lo, hi}.
#pragma once

#include "results/runresult.h"

#include <QString>

#include <vector>

namespace moewb {

/// InputError "PATH: problem" for a file that is not a pipeline results file; IoError when
/// unreadable. A row's plan file that no longer exists leaves its planJson empty.
std::vector<RunResult> importPipelineResults(const QString& path);

} // namespace moewb
