// SPDX-License-Identifier: MIT
// moewb trim MODEL_DIR --stats stats.h5 (--keep-experts K [--global] | --drop-layers N | --drop-blocks N) --out DIR
// moewb trim MODEL_DIR --plan plan.json --out DIR                                               (#10)
#include "cli_common.h"

#include "moewb/core/timestamp.h"

#include "moewb/plan/plan.h"
#include "moewb/eval/perplexity.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/model/runtime.h"
#include "moewb/trim/trim.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

namespace moewb::cli {
namespace {

std::string dropSummary(const Plan& plan)
{
    std::string s;
    if (!plan.droppedExperts.empty()) {
        s += std::to_string(plan.droppedExperts.size()) + " experts (";
        int64_t last = -1;
        for (const DroppedExpert& d : plan.droppedExperts) {
            if (d.layer != last)
                s += (last >= 0 ? "; L" : "L") + std::to_string(d.layer) + ":";
            else
                s += ",";
            s += std::to_string(d.expert);
            last = d.layer;
        }
        s += ")";
    }
    auto list = [&](const char* what, const std::vector<int64_t>& v) {
        if (v.empty())
            return;
        s += (s.empty() ? "" : ", ") + std::to_string(v.size()) + " " + what + " (";
        for (size_t i = 0; i < v.size(); ++i)
            s += (i ? "," : "") + std::to_string(v[i]);
        s += ")";
    };
    list("MoE layers", plan.droppedLayers);
    list("blocks", plan.droppedBlocks);
    return s.empty() ? "nothing" : s;
}

void addTrimOptions(QCommandLineParser& p)
{
    p.setApplicationDescription(QStringLiteral(
        "Remove structure from a MoE model (docs/trimming.md): Expert Drop keeps the K experts per layer with "
        "the most routing probability (--keep-experts), Layer Drop removes the N MoE sub-layers whose output is "
        "most similar to their input (--drop-layers), Block Drop removes the N most redundant decoder blocks "
        "(--drop-blocks); scores come from a stats file (moewb calibrate). Several selections combine; indices "
        "always refer to the input model. Or apply the drops of a plan (--plan). Writes a Hugging Face model "
        "directory with a consistent config.json and moewb_plan.json recording the drops."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory (unquantized)"));
    p.addOption({QStringLiteral("stats"), QStringLiteral("Stats file of this model (moewb calibrate)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("keep-experts"), QStringLiteral("Expert Drop: keep K experts per MoE layer."), QStringLiteral("K")});
    p.addOption({QStringLiteral("global"), QStringLiteral("Expert Drop over all layers at once (layers may keep different counts; refused when they do, since HF configs have one count).")});
    p.addOption({QStringLiteral("drop-layers"), QStringLiteral("Layer Drop: remove N MoE sub-layers."), QStringLiteral("N")});
    p.addOption({QStringLiteral("drop-blocks"), QStringLiteral("Block Drop: remove N decoder blocks."), QStringLiteral("N")});
    p.addOption({QStringLiteral("plan"), QStringLiteral("Apply the drops of this plan instead of selecting from stats."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output model directory."), QStringLiteral("DIR")});
    p.addOption({QStringLiteral("plan-out"), QStringLiteral("Also write the plan with the drops to FILE."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace an existing output directory.")});
    p.addOption({QStringLiteral("dry-run"), QStringLiteral("Print what would be dropped (and write --plan-out); write no model.")});
    p.addOption({QStringLiteral("eval"), QStringLiteral("After trimming, measure perplexity and forward speed of the input and the trimmed model on this UTF-8 text file."), QStringLiteral("TEXT")});
    p.addOption({QStringLiteral("ctx"), QStringLiteral("--eval window length (default: min(max_position_embeddings, 2048))."), QStringLiteral("N"), QStringLiteral("0")});
    p.addOption({QStringLiteral("dtype"), QStringLiteral("--eval compute dtype: auto, bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
}

/// What `moewb trim` was asked to do.
struct TrimRequest {
    std::string model, out;
    std::optional<std::string> planFile; ///< --plan: apply its drops (none: select from --stats)
    std::string statsPath;               ///< --stats
    std::optional<std::string> planOut;  ///< --plan-out
    std::optional<std::string> evalText; ///< --eval
    std::string dtype;                   ///< --dtype of --eval
    int64_t keep = -1, dropLayers = 0, dropBlocks = 0, ctx = 0;
    bool global = false, dropLayersSet = false, dropBlocksSet = false, force = false, dryRun = false;
};

/// The selection options' consistency; false (after a usage error on stderr) otherwise.
bool checkSelection(const QCommandLineParser& p, bool dryRun, const std::function<int(const std::string&)>& usage)
{
    if (!dryRun && !p.isSet(QStringLiteral("out")))
        return usage("--out DIR is required (or --dry-run)"), false;
    const bool select = p.isSet(QStringLiteral("keep-experts")) || p.isSet(QStringLiteral("drop-layers"))
        || p.isSet(QStringLiteral("drop-blocks"));
    const bool fromPlan = p.isSet(QStringLiteral("plan"));
    if (select == fromPlan)
        return usage(fromPlan ? "--plan cannot be combined with --keep-experts / --drop-layers / --drop-blocks"
                              : "give --keep-experts K, --drop-layers N or --drop-blocks N (with --stats), or --plan FILE"),
               false;
    if (select && !p.isSet(QStringLiteral("stats")))
        return usage("--keep-experts / --drop-layers / --drop-blocks need --stats FILE"), false;
    if (p.isSet(QStringLiteral("global")) && !p.isSet(QStringLiteral("keep-experts")))
        return usage("--global applies to --keep-experts only"), false;
    return true;
}

std::optional<std::string> optionalValue(const QCommandLineParser& p, const char* name)
{
    if (!p.isSet(QLatin1String(name)))
        return std::nullopt;
    return toStd(p.value(QLatin1String(name)));
}

/// Parses the command line into r; false with the exit code (help: 0, usage error: 2) otherwise.
bool parseTrimArgs(const QStringList& args, TrimRequest& r, int& exitCode)
{
    QCommandLineParser p;
    addTrimOptions(p);
    exitCode = ExitUsage;
    if (!parseOrUsage(p, args)) {
        exitCode = p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
        return false;
    }
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb trim: usage error: %s\n", msg.c_str());
        return int(ExitUsage);
    };
    if (p.positionalArguments().size() != 1)
        return usage("expected exactly one MODEL_DIR"), false;
    r.dryRun = p.isSet(QStringLiteral("dry-run"));
    if (!checkSelection(p, r.dryRun, usage))
        return false;
    auto intOpt = [&](const char* name, int64_t& out) {
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        if (!ok || out < 0) {
            usage(std::string("--") + name + " must be a non-negative integer");
            return false;
        }
        return true;
    };
    r.dropLayersSet = p.isSet(QStringLiteral("drop-layers"));
    r.dropBlocksSet = p.isSet(QStringLiteral("drop-blocks"));
    if ((p.isSet(QStringLiteral("keep-experts")) && !intOpt("keep-experts", r.keep))
        || (r.dropLayersSet && !intOpt("drop-layers", r.dropLayers))
        || (r.dropBlocksSet && !intOpt("drop-blocks", r.dropBlocks)) || !intOpt("ctx", r.ctx))
        return false;
    r.model = toStd(p.positionalArguments()[0]);
    r.out = toStd(p.value(QStringLiteral("out")));
    r.planFile = optionalValue(p, "plan");
    r.statsPath = toStd(p.value(QStringLiteral("stats")));
    r.planOut = optionalValue(p, "plan-out");
    r.evalText = optionalValue(p, "eval");
    r.dtype = toStd(p.value(QStringLiteral("dtype")));
    r.global = p.isSet(QStringLiteral("global"));
    r.force = p.isSet(QStringLiteral("force"));
    return true;
}

/// "keep_experts=6 global drop_layers=1": the selection as the plan's provenance records it.
std::string selectionParams(const TrimRequest& r)
{
    std::string params;
    if (r.keep >= 0)
        params += "keep_experts=" + std::to_string(r.keep) + (r.global ? " global" : "");
    if (r.dropLayersSet)
        params += (params.empty() ? "" : " ") + std::string("drop_layers=") + std::to_string(r.dropLayers);
    if (r.dropBlocksSet)
        params += (params.empty() ? "" : " ") + std::string("drop_blocks=") + std::to_string(r.dropBlocks);
    return params;
}

/// The drops chosen from the stats file, with their provenance.
Plan selectFromStats(const TrimRequest& r, const ModelConfig& cfg)
{
    Plan plan;
    const CalibStats stats = readStats(r.statsPath);
    if (r.keep >= 0)
        selectExpertDrop(plan, cfg, stats, r.keep, r.global);
    if (r.dropLayersSet)
        selectLayerDrop(plan, cfg, stats, r.dropLayers);
    if (r.dropBlocksSet)
        selectBlockDrop(plan, cfg, stats, r.dropBlocks);
    PlanProvenance& pv = plan.provenance;
    pv.strategy = "trim";
    pv.modelPath = r.model;
    pv.statsPath = r.statsPath;
    pv.architecture = cfg.architecture;
    pv.params = selectionParams(r);
    pv.toolVersion = MOEWB_VERSION;
    pv.created = utcTimestamp();
    return plan;
}

/// Sizes of the original and the trimmed model (and, with --eval, perplexity and speed).
void printComparison(const TrimReport& rep, const TrimRequest& r, const ProgressFn& progress)
{
    std::printf("%-10s %8s %8s %14s %14s %12s", "model", "layers", "experts", "params", "active params", "bytes");
    const bool eval = r.evalText.has_value();
    PerplexityResult before, after;
    if (eval) {
        PerplexityOptions po;
        po.ctx = r.ctx;
        po.dtype = r.dtype;
        before = evaluatePerplexityFile(r.model, *r.evalText, po, progress);
        after = evaluatePerplexityFile(r.out, *r.evalText, po, progress);
        std::printf(" %10s %10s", "ppl", "tokens/s");
    }
    std::printf("\n");
    auto row = [&](const char* name, int64_t layers, int64_t experts, int64_t params, int64_t active, int64_t bytes,
                   const PerplexityResult& pr) {
        std::printf("%-10s %8lld %8lld %14lld %14lld %12lld", name, (long long)layers, (long long)experts,
                    (long long)params, (long long)active, (long long)bytes);
        if (eval)
            std::printf(" %10.4f %10.1f", pr.perplexity, double(pr.forwardTokens) / std::max(pr.seconds, 1e-9));
        std::printf("\n");
    };
    row("original", rep.layersBefore, rep.expertsBefore, rep.paramsBefore, rep.paramsBefore, rep.bytesBefore, before);
    row("trimmed", rep.layersAfter, rep.expertsAfter, rep.paramsAfter, rep.activeParamsAfter, rep.bytesAfter, after);
}

int trim(const TrimRequest& r)
{
    const ModelConfig cfg = loadConfig(r.model);
    // only the drops of a --plan matter here; trimLayout checks them
    const Plan plan = r.planFile ? loadPlan(*r.planFile) : selectFromStats(r, cfg);
    const std::string where = r.planFile ? *r.planFile : r.global ? "--global" : "trim";
    std::printf("drop: %s\n", dropSummary(plan).c_str());
    const TrimLayout layout = trimLayout(cfg, plan, where); // every refusal before anything is written
    if (r.planOut) {
        savePlan(plan, *r.planOut);
        std::printf("wrote plan %s\n", r.planOut->c_str());
    }
    std::printf("layers %lld -> %zu, experts per MoE layer %lld -> %lld\n", (long long)cfg.numLayers,
                layout.sourceLayer.size(), (long long)cfg.numExperts, (long long)layout.numExperts);
    if (r.dryRun)
        return ExitOk;

    const RuntimeInfo rt = initRuntime(true);
    if (rt.slowBlas)
        std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
    const ProgressFn progress = terminalProgress();
    const TrimReport rep = trimCheckpoint(r.model, plan, r.out, r.force, progress);
    for (const std::string& n : rep.notes)
        std::printf("note: %s\n", n.c_str());
    std::printf("wrote %s\n", r.out.c_str());
    printComparison(rep, r, progress);
    return ExitOk;
}

int runTrim(const QStringList& args)
{
    TrimRequest r;
    int exitCode = ExitOk;
    if (!parseTrimArgs(args, r, exitCode))
        return exitCode;
    return guarded([&] { return trim(r); });
}

const CommandRegistrar reg({"trim", "drop experts, MoE layers or decoder blocks (Expert/Layer/Block Drop)", runTrim});

} // namespace
} // namespace moewb::cli
