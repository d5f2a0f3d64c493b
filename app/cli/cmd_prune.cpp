// SPDX-License-Identifier: MIT
// moewb prune MODEL_DIR --method magnitude|wanda|sparsegpt (--sparsity S | --pattern N:M)
//   [--exclude REGEX ...] [--exclude-shared] [--exclude-attention] [--bits B ...] [--stats stats.h5]
//   [--calib FILE ...] --out DIR                                                            (#14)
// Builds the plan (docs/plan-format.md, pruning keys) and runs the quantize layer loop with it:
// a dense Hugging Face directory with zeros, moewb_plan.json and moewb_quant_report.json.
#include "calib_options.h"
#include "cli_common.h"

#include "moewb/plan/plan.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/model/runtime.h"
#include "moewb/plan/prune_spec.h"
#include "moewb/quant/quantize.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <string>

namespace moewb::cli {
namespace {

void printPruneSummary(const QuantizeReport& r)
{
    std::map<std::string, std::pair<int64_t, int64_t>> byRole; // role → (pruned, numel)
    std::map<std::string, int64_t> byMethod;
    int64_t pruned = 0, numel = 0, untouched = 0;
    for (const LinearQuantResult& l : r.linears) {
        if (l.plan.sparsity <= 0) {
            ++untouched;
            continue;
        }
        byRole[l.role].first += l.pruned;
        byRole[l.role].second += l.numel;
        byMethod[l.pruneMethod + (l.plan.bits < 16 ? " + " + l.method + " " + std::to_string(l.plan.bits) + "-bit" : "")] += 1;
        pruned += l.pruned;
        numel += l.numel;
    }
    std::printf("%-16s %14s %14s %9s\n", "role", "weights", "pruned", "sparsity");
    for (const auto& [role, pn] : byRole)
        std::printf("%-16s %14lld %14lld %9.4f\n", role.c_str(), (long long)pn.second, (long long)pn.first,
                    pn.second ? double(pn.first) / double(pn.second) : 0.0);
    std::printf("%-16s %14lld %14lld %9.4f\n", "all pruned", (long long)numel, (long long)pruned,
                numel ? double(pruned) / double(numel) : 0.0);
    std::printf("linears left dense: %lld\n", (long long)untouched);
    for (const auto& [m, c] : byMethod)
        std::printf("method %s: %lld linears\n", m.c_str(), (long long)c);
    int64_t fallbacks = 0;
    for (const LinearQuantResult& l : r.linears)
        fallbacks += (l.plan.sparsity > 0 && !l.fallback.empty()) ? 1 : 0;
    if (fallbacks)
        std::printf("linears with a fallback (see moewb_quant_report.json): %lld\n", (long long)fallbacks);
    if (r.meanRelError >= 0)
        std::printf("mean relative output error tr(dW H dW^T)/tr(W H W^T): %.6g\n", r.meanRelError);
    std::printf("calibration: %lld sequences, %lld tokens; time %.1f s\n", (long long)r.calibSequences,
                (long long)r.calibTokens, r.seconds);
}

void addPruneOptions(QCommandLineParser& p)
{
    p.setApplicationDescription(QStringLiteral(
        "Prune the linears of a model (docs/pruning.md): magnitude (|W|), Wanda (|W| x input-channel norm) or "
        "SparseGPT (OBS updates from the calibration Hessian), unstructured per-row sparsity or N:M along the "
        "input dimension, layer by layer with each layer's inputs taken from the already-pruned layers before it. "
        "With --bits the survivors are quantized in the same pass. Writes a dense Hugging Face model directory "
        "(pruned weights stored as zeros), the plan (moewb_plan.json) and the per-linear report with the "
        "achieved sparsity (moewb_quant_report.json). Routers and shared-expert gates are never pruned."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("method"), QStringLiteral("magnitude, wanda or sparsegpt (default sparsegpt)."),
                 QStringLiteral("M"), QStringLiteral("sparsegpt")});
    p.addOption({QStringLiteral("sparsity"), QStringLiteral("Unstructured: fraction of every row's weights to prune, in [0, 1)."),
                 QStringLiteral("S")});
    p.addOption({QStringLiteral("pattern"), QStringLiteral("N:M: keep N weights in every M consecutive inputs (e.g. 2:4, 4:8)."),
                 QStringLiteral("N:M")});
    p.addOption({QStringLiteral("exclude"), QStringLiteral("Leave linears whose whole name matches REGEX (ECMAScript) dense; repeatable."),
                 QStringLiteral("REGEX")});
    p.addOption({QStringLiteral("exclude-shared"), QStringLiteral("Leave shared experts dense.")});
    p.addOption({QStringLiteral("exclude-attention"), QStringLiteral("Leave attention projections dense.")});
    p.addOption({QStringLiteral("bits"), QStringLiteral("Also quantize the survivors to B bits (2, 3, 4, 8; default 16 = no)."),
                 QStringLiteral("B"), QStringLiteral("16")});
    p.addOption({QStringLiteral("group-size"), QStringLiteral("With --bits: group size (default 128)."), QStringLiteral("G"),
                 QStringLiteral("128")});
    p.addOption({QStringLiteral("quant-method"), QStringLiteral("With --bits: gptq (default; joint with the pruning sweep) or rtn."),
                 QStringLiteral("M"), QStringLiteral("gptq")});
    p.addOption({QStringLiteral("stats"), QStringLiteral("Stats file (moewb calibrate): Wanda's input norms when no --calib is given."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output directory (must not exist unless --force)."), QStringLiteral("DIR")});
    addCalibOptions(p, 128, 2048);
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype of the calibration forward: auto, bf16 or f32."),
                 QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace DIR if it exists.")});
}

/// --sparsity S or --pattern N:M into the plan's defaults.
void readSparsity(const QCommandLineParser& p, Plan& plan)
{
    if (p.isSet(QStringLiteral("sparsity"))) {
        bool ok = false;
        plan.defaults.sparsity = p.value(QStringLiteral("sparsity")).toDouble(&ok);
        if (!ok)
            throw InputError("--sparsity", "expected a number, got '" + toStd(p.value(QStringLiteral("sparsity"))) + "'");
        checkSparsity(plan.defaults.sparsity, "--sparsity");
        if (plan.defaults.sparsity == 0)
            throw InputError("--sparsity", "0 prunes nothing");
    } else {
        plan.defaults.pattern = toStd(p.value(QStringLiteral("pattern")));
        const PrunePattern pat = parsePrunePattern(plan.defaults.pattern, "--pattern");
        plan.defaults.sparsity = patternSparsity(pat, 0);
    }
}

/// --bits, --group-size and --quant-method into the plan's defaults.
void readQuantization(const QCommandLineParser& p, Plan& plan)
{
    bool ok = false;
    plan.defaults.bits = p.value(QStringLiteral("bits")).toLongLong(&ok);
    if (!ok || !isValidBits(plan.defaults.bits))
        throw InputError("--bits", "expected 2, 3, 4, 8 or 16, got '" + toStd(p.value(QStringLiteral("bits"))) + "'");
    plan.defaults.groupSize = p.value(QStringLiteral("group-size")).toLongLong(&ok);
    if (!ok || !isValidGroupSize(plan.defaults.groupSize))
        throw InputError("--group-size", "expected -1 or a positive multiple of 16");
    plan.defaults.method = toStd(p.value(QStringLiteral("quant-method")));
    if (!isValidQuantMethod(plan.defaults.method))
        throw InputError("--quant-method", "expected gptq or rtn, got '" + plan.defaults.method + "'");
}

/// One dense rule per --exclude REGEX, --exclude-shared and --exclude-attention.
void addExcludeRules(const QCommandLineParser& p, Plan& plan)
{
    QuantSettings dense;
    dense.sparsity = 0.0;
    std::vector<std::string> excludes;
    for (const QString& x : p.values(QStringLiteral("exclude")))
        excludes.push_back(toStd(x));
    if (p.isSet(QStringLiteral("exclude-shared")))
        excludes.push_back(R"(.*\.mlp\.shared_experts?\..*)");
    if (p.isSet(QStringLiteral("exclude-attention")))
        excludes.push_back(R"(.*\.self_attn\..*)");
    for (const std::string& x : excludes) {
        try {
            std::regex re(x, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            throw InputError("--exclude", "invalid regex '" + x + "': " + e.what());
        }
        plan.rules.push_back({x, dense});
    }
}

/// The plan the options describe: every linear pruned (and with --bits quantized) but the excluded ones.
Plan prunePlan(const QCommandLineParser& p, const std::string& model)
{
    Plan plan;
    plan.defaults.bits = 16;
    plan.defaults.pruneMethod = toStd(p.value(QStringLiteral("method")));
    if (!isValidPruneMethod(plan.defaults.pruneMethod))
        throw InputError("--method", pruneMethodProblem(plan.defaults.pruneMethod));
    readSparsity(p, plan);
    readQuantization(p, plan);
    addExcludeRules(p, plan);
    plan.provenance.strategy = "prune";
    plan.provenance.modelPath = model;
    plan.provenance.params = "method=" + plan.defaults.pruneMethod + " " + (p.isSet(QStringLiteral("pattern"))
                                 ? "pattern=" + plan.defaults.pattern : "sparsity=" + toStd(p.value(QStringLiteral("sparsity"))));
    return plan;
}

/// The quantizer's options; with --stats, Wanda's input norms (recorded in the plan's provenance).
QuantizeOptions pruneOptions(const QCommandLineParser& p, const CalibCliOptions& calib, Plan& plan)
{
    QuantizeOptions opt;
    opt.planPath = "prune options";
    opt.damp = calib.damp;
    opt.minExpertTokens = calib.minExpertTokens;
    opt.balanceExperts = calib.balanceExperts;
    opt.dtype = toStd(p.value(QStringLiteral("dtype")));
    if (p.isSet(QStringLiteral("stats"))) {
        const std::string statsPath = toStd(p.value(QStringLiteral("stats")));
        plan.provenance.statsPath = statsPath;
        const CalibStats stats = readStats(statsPath);
        for (const LinearStats& l : stats.linears)
            if (!l.actSqMean.empty())
                opt.actSqMean[l.name] = l.actSqMean;
    }
    return opt;
}

int prune(const QCommandLineParser& p, const CalibCliOptions& calib)
{
    const std::string model = toStd(p.positionalArguments()[0]);
    const std::string out = toStd(p.value(QStringLiteral("out")));
    Plan plan = prunePlan(p, model);
    {
        std::error_code ec;
        if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(out, model, ec))
            throw InputError(out, "is the input model directory; choose another --out");
    }
    const RuntimeInfo rt = initRuntime(true);
    if (rt.slowBlas)
        std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
    const ModelConfig cfg = loadConfig(model);
    validatePlan(plan, cfg, "--pattern/--exclude");
    const QuantizeOptions opt = pruneOptions(p, calib, plan);
    const CalibSequences cs = loadCalibSequences(calib, model);
    const QuantizeReport r = quantizeToFakeDir(model, plan, cs.sequences, opt, out, p.isSet(QStringLiteral("force")),
                                               cs.description, terminalProgress());
    printPruneSummary(r);
    std::printf("wrote %s (dense safetensors with zeros; per-linear sparsity in moewb_quant_report.json)\n",
                out.c_str());
    return ExitOk;
}

int runPrune(const QStringList& args)
{
    QCommandLineParser p;
    addPruneOptions(p);
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb prune: usage error: %s\n", msg.c_str());
        return int(ExitUsage);
    };
    if (p.positionalArguments().size() != 1)
        return usage("expected exactly one MODEL_DIR");
    if (!p.isSet(QStringLiteral("out")))
        return usage("--out DIR is required");
    if (p.isSet(QStringLiteral("sparsity")) == p.isSet(QStringLiteral("pattern")))
        return usage("give exactly one of --sparsity S and --pattern N:M");
    const std::optional<CalibCliOptions> calib = readCalibOptions(p, "prune");
    if (!calib)
        return ExitUsage;
    return guarded([&] { return prune(p, *calib); });
}

const CommandRegistrar reg({"prune", "prune linears (magnitude/Wanda/SparseGPT, unstructured or N:M), optionally quantize the rest",
                            runPrune});

} // namespace
} // namespace moewb::cli
