// SPDX-License-Identifier: MIT
// What `quantize` and `eval --plan` quantize. A plan that drops experts, MoE layers or blocks is
// applied in two steps: the model is trimmed into a scratch directory under $TMPDIR exactly as
// `moewb trim --plan` would write it, then the plan, re-indexed for the trimmed model
// (planForTrimmed), is quantized from there. Without drops: the model and the plan as given.
#pragma once

#include "moewb/plan/plan.h"
#include "moewb/core/progress.h"
#include "moewb/trim/trim.h"

#include <string>

namespace moewb {

class QuantizeSource {
public:
    /// Validates the plan against the model (InputError naming planPath); trims when it drops something.
    QuantizeSource(const std::string& modelDir, const Plan& plan, const std::string& planPath,
                   const ProgressFn& progress);
    ~QuantizeSource(); ///< removes the scratch directory
    QuantizeSource(const QuantizeSource&) = delete;
    QuantizeSource& operator=(const QuantizeSource&) = delete;

    const std::string& inputDir() const { return m_input; } ///< the model directory given
    const std::string& modelDir() const { return m_dir; }   ///< what to quantize: inputDir() or the trimmed copy
    const Plan& plan() const { return m_plan; }
    bool trimmed() const { return !m_scratch.empty(); }
    const TrimReport& trimReport() const { return m_report; }

private:
    std::string m_input;
    std::string m_dir;
    std::string m_scratch;
    Plan m_plan;
    TrimReport m_report;
};

} // namespace moewb
