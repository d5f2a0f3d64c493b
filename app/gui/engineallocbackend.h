// SPDX-License-Identifier: MIT
// The allocation editor's AllocBackend (widgets/alloc/allocbackend.h) filled with the engine: the
// heuristic strategies on the open stats, "budget" on the predicted-cost table (#27) when one was
// measured. The main window and the standalone editor (app/alloc_editor_demo) both use it.
#pragma once

#include "alloc/allocbackend.h"

#include <memory>
#include <string>

namespace moewb::gui {

/// Empty (invalid) without a model or stats. The solve runs on the editor's worker thread on these
/// shared copies. "budget" without a table, or at another group size than the table's, fails with
/// a one-line InputError saying what to do. A solve for GGUF (AllocOptions::target) becomes a plan
/// of ggml types as `moewb plan --target gguf --bits` writes it (ggufPlanFromAllocation on modelDir).
AllocBackend engineAllocBackend(std::shared_ptr<const ModelConfig> cfg, std::shared_ptr<const CalibStats> stats,
                                std::shared_ptr<const ErrorTable> costTable, const std::string& modelDir);

} // namespace moewb::gui
