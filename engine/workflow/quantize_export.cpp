// SPDX-License-Identifier: MIT
#include "moewb/workflow/quantize_export.h"

#include "moewb/core/error.h"
#include "moewb/dist/dist.h"
#include "moewb/hfconfig/hf_config.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace moewb {

const std::vector<std::string>& exportFormats()
{
    static const std::vector<std::string> formats{"fake", "gptq", "gguf"};
    return formats;
}

bool isExportFormat(const std::string& name)
{
    const std::vector<std::string>& f = exportFormats();
    return std::find(f.begin(), f.end(), name) != f.end();
}

void checkExportTarget(const ExportTarget& target, const std::string& modelDir)
{
    MOEWB_CHECK(!target.path.empty(), "quantize", "no output path given");
    if (!isExportFormat(target.format)) {
        std::string names;
        for (const std::string& f : exportFormats())
            names += (names.empty() ? "" : f == exportFormats().back() ? " or " : ", ") + f;
        throw InputError("quantize", "format must be " + names + ", got '" + target.format + "'");
    }
    std::error_code ec;
    if (std::filesystem::exists(target.path, ec) && std::filesystem::equivalent(target.path, modelDir, ec))
        throw InputError(target.path, "is the input model directory; choose another output");
}

void checkPlanForFormat(const Plan& plan, const ModelConfig& cfg, const std::string& format,
                        const std::string& planPath)
{
    if (format == "fake")
        return;
    for (const PlanEntry& e : expandPlan(plan, cfg))
        if (e.sparsity > 0 && e.bits >= 16 && !e.dropped)
            throw InputError(planPath, e.name + " is pruned but left at 16 bits, which the " + format
                                           + " format cannot store; quantize it too or write the fake format");
}

namespace {

QuantizeExportResult writeTarget(const QuantizeSource& source, const CalibSequences& calib,
                                 const QuantizeOptions& opt, const ExportTarget& t, const ProgressFn& progress)
{
    QuantizeExportResult r;
    r.format = t.format;
    r.wrote = true;
    const std::string& model = source.modelDir();
    if (t.format == "gguf") {
        r.gguf = quantizeToGguf(model, source.plan(), calib.sequences, opt, t.path, t.force, calib.description,
                                progress, t.gguf);
        r.report = std::move(r.gguf.quant);
    } else if (t.format == "gptq") {
        r.gptq = quantizeToGptqDir(model, source.plan(), calib.sequences, opt, t.path, t.force, calib.description,
                                   progress, t.gptq);
        r.report = std::move(r.gptq.report);
    } else {
        r.report = quantizeToFakeDir(model, source.plan(), calib.sequences, opt, t.path, t.force, calib.description,
                                     progress);
    }
    return r;
}

} // namespace

QuantizeExportResult quantizeAndExport(const QuantizeSource& source, const CalibSequences& calib,
                                       const QuantizeOptions& opt, const ExportTarget& target,
                                       const ProgressFn& progress)
{
    checkExportTarget(target, source.inputDir());
    checkPlanForFormat(source.plan(), loadConfig(source.modelDir()), target.format, opt.planPath);
    DistContext* dist = opt.dist;
    if (dist && dist->rank() != 0) {
        // The same layer loop and collectives as rank 0, with a sink that discards.
        QuantizeExportResult r;
        r.format = target.format;
        r.report = quantizeModel(source.modelDir(), source.plan(), calib.sequences, opt,
                                 [](const QuantizedWeight&) {}, progress);
        dist->barrier("output written by rank 0");
        return r;
    }
    QuantizeExportResult r = writeTarget(source, calib, opt, target, progress);
    if (dist)
        dist->barrier("output written by rank 0");
    return r;
}

} // namespace moewb
