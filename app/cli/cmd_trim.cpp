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

#include <cstdio>
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

int runTrim(const QStringList& args)
{
    QCommandLineParser p;
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
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb trim: usage error: %s\n", msg.c_str());
        return int(ExitUsage);
    };
    if (p.positionalArguments().size() != 1)
        return usage("expected exactly one MODEL_DIR");
    const bool dryRun = p.isSet(QStringLiteral("dry-run"));
    if (!dryRun && !p.isSet(QStringLiteral("out")))
        return usage("--out DIR is required (or --dry-run)");
    const bool select = p.isSet(QStringLiteral("keep-experts")) || p.isSet(QStringLiteral("drop-layers"))
        || p.isSet(QStringLiteral("drop-blocks"));
    const bool fromPlan = p.isSet(QStringLiteral("plan"));
    if (select == fromPlan)
        return usage(fromPlan ? "--plan cannot be combined with --keep-experts / --drop-layers / --drop-blocks"
                              : "give --keep-experts K, --drop-layers N or --drop-blocks N (with --stats), or --plan FILE");
    if (select && !p.isSet(QStringLiteral("stats")))
        return usage("--keep-experts / --drop-layers / --drop-blocks need --stats FILE");
    if (p.isSet(QStringLiteral("global")) && !p.isSet(QStringLiteral("keep-experts")))
        return usage("--global applies to --keep-experts only");
    auto intOpt = [&](const char* name, int64_t& out) {
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        if (!ok || out < 0) {
            usage(std::string("--") + name + " must be a non-negative integer");
            return false;
        }
        return true;
    };
    int64_t keep = -1, dropLayers = 0, dropBlocks = 0, ctx = 0;
    if ((p.isSet(QStringLiteral("keep-experts")) && !intOpt("keep-experts", keep))
        || (p.isSet(QStringLiteral("drop-layers")) && !intOpt("drop-layers", dropLayers))
        || (p.isSet(QStringLiteral("drop-blocks")) && !intOpt("drop-blocks", dropBlocks)) || !intOpt("ctx", ctx))
        return ExitUsage;

    const std::string model = toStd(p.positionalArguments()[0]);
    const std::string out = toStd(p.value(QStringLiteral("out")));
    return guarded([&] {
        const ModelConfig cfg = loadConfig(model);
        Plan plan;
        std::string where = "trim";
        if (fromPlan) {
            where = toStd(p.value(QStringLiteral("plan")));
            plan = loadPlan(where); // only the drops matter here; trimLayout checks them
        } else {
            const std::string statsPath = toStd(p.value(QStringLiteral("stats")));
            if (p.isSet(QStringLiteral("global")))
                where = "--global";
            const CalibStats stats = readStats(statsPath);
            if (keep >= 0)
                selectExpertDrop(plan, cfg, stats, keep, p.isSet(QStringLiteral("global")));
            if (p.isSet(QStringLiteral("drop-layers")))
                selectLayerDrop(plan, cfg, stats, dropLayers);
            if (p.isSet(QStringLiteral("drop-blocks")))
                selectBlockDrop(plan, cfg, stats, dropBlocks);
            PlanProvenance& pv = plan.provenance;
            pv.strategy = "trim";
            pv.modelPath = model;
            pv.statsPath = statsPath;
            pv.architecture = cfg.architecture;
            std::string params;
            if (keep >= 0)
                params += "keep_experts=" + std::to_string(keep) + (p.isSet(QStringLiteral("global")) ? " global" : "");
            if (p.isSet(QStringLiteral("drop-layers")))
                params += (params.empty() ? "" : " ") + std::string("drop_layers=") + std::to_string(dropLayers);
            if (p.isSet(QStringLiteral("drop-blocks")))
                params += (params.empty() ? "" : " ") + std::string("drop_blocks=") + std::to_string(dropBlocks);
            pv.params = params;
            pv.toolVersion = MOEWB_VERSION;
            pv.created = utcTimestamp();
        }
        std::printf("drop: %s\n", dropSummary(plan).c_str());
        const TrimLayout layout = trimLayout(cfg, plan, where); // every refusal before anything is written
        if (p.isSet(QStringLiteral("plan-out"))) {
            const std::string po = toStd(p.value(QStringLiteral("plan-out")));
            savePlan(plan, po);
            std::printf("wrote plan %s\n", po.c_str());
        }
        std::printf("layers %lld -> %zu, experts per MoE layer %lld -> %lld\n", (long long)cfg.numLayers,
                    layout.sourceLayer.size(), (long long)cfg.numExperts, (long long)layout.numExperts);
        if (dryRun)
            return ExitOk;

        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        const ProgressFn progress = terminalProgress();
        const TrimReport rep = trimCheckpoint(model, plan, out, p.isSet(QStringLiteral("force")), progress);
        for (const std::string& n : rep.notes)
            std::printf("note: %s\n", n.c_str());
        std::printf("wrote %s\n", out.c_str());
        std::printf("%-10s %8s %8s %14s %14s %12s", "model", "layers", "experts", "params", "active params", "bytes");
        const bool eval = p.isSet(QStringLiteral("eval"));
        PerplexityResult before, after;
        if (eval) {
            PerplexityOptions po;
            po.ctx = ctx;
            po.dtype = toStd(p.value(QStringLiteral("dtype")));
            const std::string text = toStd(p.value(QStringLiteral("eval")));
            before = evaluatePerplexityFile(model, text, po, progress);
            after = evaluatePerplexityFile(out, text, po, progress);
            std::printf(" %10s %10s", "ppl", "tokens/s");
        }
        std::printf("\n");
        auto row = [&](const char* name, int64_t layers, int64_t experts, int64_t params, int64_t active,
                       int64_t bytes, const PerplexityResult& r) {
            std::printf("%-10s %8lld %8lld %14lld %14lld %12lld", name, (long long)layers, (long long)experts,
                        (long long)params, (long long)active, (long long)bytes);
            if (eval)
                std::printf(" %10.4f %10.1f", r.perplexity, double(r.totalTokens) / std::max(r.seconds, 1e-9));
            std::printf("\n");
        };
        row("original", rep.layersBefore, rep.expertsBefore, rep.paramsBefore, rep.paramsBefore, rep.bytesBefore,
            before);
        row("trimmed", rep.layersAfter, rep.expertsAfter, rep.paramsAfter, rep.activeParamsAfter, rep.bytesAfter,
            after);
        return ExitOk;
    });
}

const CommandRegistrar reg({"trim", "drop experts, MoE layers or decoder blocks (Expert/Layer/Block Drop)", runTrim});

} // namespace
} // namespace moewb::cli
