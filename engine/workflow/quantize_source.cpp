// SPDX-License-Identifier: MIT
#include "moewb/workflow/quantize_source.h"

#include "moewb/hfconfig/hf_config.h"
#include "moewb/quant/quantize.h"

#include <filesystem>
#include <system_error>

#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb {

namespace {
bool dropsSomething(const Plan& p)
{
    return !p.droppedExperts.empty() || !p.droppedLayers.empty() || !p.droppedBlocks.empty();
}
} // namespace

QuantizeSource::QuantizeSource(const std::string& modelDir, const Plan& plan, const std::string& planPath,
                               const ProgressFn& progress)
    : m_input(modelDir)
{
    const ModelConfig cfg = loadConfig(modelDir);
    if (!dropsSomething(plan)) {
        checkPlanForQuantize(plan, cfg, planPath);
        m_dir = modelDir;
        m_plan = plan;
        return;
    }
    validatePlan(plan, cfg, planPath);
    const TrimLayout layout = trimLayout(cfg, plan, planPath);
    m_scratch = (fs::temp_directory_path() / ("moewb-trim-" + std::to_string(::getpid()))).string();
    try {
        m_report = trimCheckpoint(modelDir, plan, m_scratch, true, progress);
        const ModelConfig trimmedCfg = loadConfig(m_scratch);
        m_plan = planForTrimmed(plan, cfg, layout, trimmedCfg);
        checkPlanForQuantize(m_plan, trimmedCfg, planPath);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(m_scratch, ec);
        throw;
    }
    m_dir = m_scratch;
}

QuantizeSource::~QuantizeSource()
{
    if (!m_scratch.empty()) {
        std::error_code ec;
        fs::remove_all(m_scratch, ec);
    }
}

} // namespace moewb
