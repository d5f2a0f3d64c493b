// SPDX-License-Identifier: MIT
// moewb quantize MODEL --plan plan.json --out DIR [--format fake] [--calib FILE | --domain NAME=FILE ...] (#8).
#include "calib_options.h"
#include "cli_common.h"

#include "moewb/alloc/plan.h"
#include "moewb/calib/calibrate.h"
#include "moewb/model/runtime.h"
#include "moewb/quant/quantize.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <tuple>

namespace moewb::cli {
namespace {

void printSummary(const QuantizeReport& r)
{
    std::map<std::tuple<std::string, int64_t>, int64_t> byMethodBits;
    for (const LinearQuantResult& l : r.linears)
        byMethodBits[{l.method, l.bits}] += 1;
    std::printf("%-6s %5s %8s\n", "method", "bits", "linears");
    for (const auto& [k, n] : byMethodBits)
        std::printf("%-6s %5lld %8lld\n", std::get<0>(k).c_str(), (long long)std::get<1>(k), (long long)n);
    std::printf("experts that fell back to RTN (< %lld routed tokens): %zu\n", (long long)r.minExpertTokens,
                r.fallbackExperts.size());
    for (const FallbackExpert& f : r.fallbackExperts)
        std::printf("  layer %lld expert %lld: %lld tokens (%s)\n", (long long)f.layer, (long long)f.expert,
                    (long long)f.tokens, f.reason.c_str());
    if (r.meanRelError >= 0)
        std::printf("mean relative output error tr(dW H dW^T)/tr(W H W^T): %.6g\n", r.meanRelError);
    else
        std::printf("mean relative output error: n/a (no calibration data)\n");
    std::printf("calibration: %lld sequences, %lld tokens; time %.1f s\n", (long long)r.calibSequences,
                (long long)r.calibTokens, r.seconds);
}

int runQuantize(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Apply a quantization plan (docs/plan-format.md) to a model, layer by layer: GPTQ or RTN per linear as "
        "the plan says, GPTQ Hessians from calibration data run through the already-quantized layers, true-"
        "sequential inside each block, each routed expert's Hessian from the tokens routed to it. --format fake "
        "writes a Hugging Face model directory with the dequantized weights, the plan (moewb_plan.json) and a "
        "report (moewb_quant_report.json). Calibration inputs are read as by 'moewb calibrate'."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("plan"), QStringLiteral("Plan file (moewb plan)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output directory (must not exist unless --force)."), QStringLiteral("DIR")});
    p.addOption({QStringLiteral("format"), QStringLiteral("Output format: fake (dequantized weights in HF layout)."), QStringLiteral("F"), QStringLiteral("fake")});
    addCalibOptions(p, 128, 2048);
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype of the calibration forward: auto, bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("batch-tokens"), QStringLiteral("Tokens per forward batch (default 8192)."), QStringLiteral("N"), QStringLiteral("8192")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace DIR if it exists.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb quantize: usage error: %s\n", msg.c_str());
        return int(ExitUsage);
    };
    if (p.positionalArguments().size() != 1)
        return usage("expected exactly one MODEL_DIR");
    if (!p.isSet(QStringLiteral("plan")))
        return usage("--plan FILE is required");
    if (!p.isSet(QStringLiteral("out")))
        return usage("--out DIR is required");
    const std::string format = toStd(p.value(QStringLiteral("format")));
    if (format == "gptq" || format == "gguf") {
        std::fprintf(stderr, "moewb: error: --format %s: not implemented yet (packed GPTQ and GGUF exports come with "
                             "issue #9); use --format fake\n", format.c_str());
        return ExitError;
    }
    if (format != "fake")
        return usage("--format must be fake (gptq and gguf come with issue #9), got '" + format + "'");

    const std::optional<CalibCliOptions> calib = readCalibOptions(p, "quantize");
    if (!calib)
        return ExitUsage;
    QuantizeOptions opt;
    opt.damp = calib->damp;
    opt.minExpertTokens = calib->minExpertTokens;
    bool ok = false;
    opt.maxBatchTokens = p.value(QStringLiteral("batch-tokens")).toLongLong(&ok);
    if (!ok || opt.maxBatchTokens < 1)
        return usage("--batch-tokens must be a positive integer");
    opt.dtype = toStd(p.value(QStringLiteral("dtype")));
    const std::string model = toStd(p.positionalArguments()[0]);
    const std::string planPath = toStd(p.value(QStringLiteral("plan")));
    const std::string out = toStd(p.value(QStringLiteral("out")));
    opt.planPath = planPath;

    return guarded([&] {
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        const Plan plan = loadPlan(planPath);
        checkPlanForQuantize(plan, loadConfig(model), planPath); // fail before reading calibration data
        const CalibSequences cs = loadCalibSequences(*calib, model);
        const QuantizeReport r = quantizeToFakeDir(model, plan, cs.sequences, opt, out, p.isSet(QStringLiteral("force")),
                                                   cs.description, terminalProgress());
        printSummary(r);
        std::printf("wrote %s\n", out.c_str());
        return ExitOk;
    });
}

const CommandRegistrar reg({"quantize", "apply a plan (GPTQ/RTN) and write a fake-quantized model", runQuantize});

} // namespace
} // namespace moewb::cli
