// SPDX-License-Identifier: MIT
// The llama.cpp bridge (docs/export-gguf.md, "The llama.cpp bridge"):
//   moewb imatrix STATS.h5 --out imatrix.gguf|.dat  calibration statistics as llama-quantize's --imatrix
//   moewb plan export-llama PLAN --out types.txt    a plan as llama-quantize's per-tensor types
#include "cli_common.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/export/llama_bridge.h"
#include "moewb/model/model_source.h"
#include "moewb/stats/stats_h5.h"

#include <cstdio>
#include <filesystem>

namespace moewb::cli {

namespace {

int usage(const char* cmd, const std::string& what)
{
    std::fprintf(stderr, "moewb %s: usage error: %s\n", cmd, what.c_str());
    return ExitUsage;
}

int runImatrix(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Write calibration statistics (moewb calibrate's stats.h5) as an importance matrix for llama.cpp's "
        "llama-quantize --imatrix, one entry per GGUF weight (blk.N.attn_q.weight, blk.N.ffn_up_exps.weight with "
        "every routed expert) from the mean of x^2 over the tokens the linear saw (act_sq_mean). An output name "
        "ending in .gguf gets llama-imatrix's GGUF format (sums of x^2 and token counts per expert; an expert that "
        "saw no tokens gets count 0, which llama-quantize treats as no data), any other name the legacy "
        "imatrix.dat format (read by every llama.cpp version; a stacked expert tensor with an expert that saw no "
        "tokens is left out, as the old llama-imatrix did, and named on stderr)."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("STATS"), QStringLiteral("stats.h5 from moewb calibrate"));
    p.addOption({QStringLiteral("out"), QStringLiteral("Output imatrix file."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace an existing output.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1)
        return usage("imatrix", "expected exactly one STATS file");
    if (!p.isSet(QStringLiteral("out")))
        return usage("imatrix", "--out FILE is required");
    const std::string stats = toStd(p.positionalArguments()[0]), out = toStd(p.value(QStringLiteral("out")));
    const bool force = p.isSet(QStringLiteral("force"));
    return guarded([&] {
        const LlamaImatrixResult r = writeLlamaImatrix(readStats(stats), out, force, stats, imatrixFormatForPath(out));
        for (const std::string& s : r.skipped)
            std::fprintf(stderr, "moewb: left out %s\n", s.c_str());
        std::printf("wrote %s: %lld tensors, %lld chunks (llama-quantize --imatrix %s)\n", out.c_str(),
                    (long long)r.entries, (long long)r.chunks, out.c_str());
        return ExitOk;
    });
}

const CommandRegistrar reg({"imatrix", "write calibration statistics as llama.cpp's importance matrix (GGUF or imatrix.dat)",
                            runImatrix});

} // namespace

int runPlanExportLlama(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Write a plan as per-tensor types for llama.cpp's llama-quantize: one line 'REGEX=TYPE' per GGUF tensor "
        "role and type (e.g. ^blk\\.(0|2)\\.attn_q\\.weight$=q4_0), the types moewb's GGUF export writes for the "
        "plan, for --tensor-type-file FILE (or one --tensor-type per line) of llama-quantize versions that have it."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("PLAN"), QStringLiteral("plan.json"));
    p.addOption({QStringLiteral("model"), QStringLiteral("The model the plan is for (HF directory or GGUF file). "
                                                         "Default: the plan's provenance model_path."),
                 QStringLiteral("PATH")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output file (default: stdout)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace an existing output.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1)
        return usage("plan export-llama", "expected exactly one PLAN");
    const std::string planPath = toStd(p.positionalArguments()[0]);
    const std::string out = toStd(p.value(QStringLiteral("out")));
    const bool force = p.isSet(QStringLiteral("force"));
    std::string model = toStd(p.value(QStringLiteral("model")));
    return guarded([&] {
        const Plan plan = loadPlan(planPath);
        if (model.empty())
            model = plan.provenance.modelPath;
        MOEWB_CHECK(!model.empty(), planPath, "the plan names no model: give --model PATH");
        const ModelConfig cfg = loadModelConfig(model);
        validatePlan(plan, cfg, planPath);
        const std::string text = llamaTensorTypes(plan, cfg);
        if (out.empty()) {
            std::fputs(text.c_str(), stdout);
            return ExitOk;
        }
        std::error_code ec;
        if (!force && std::filesystem::exists(out, ec))
            throw OutputExistsError(out);
        writeFileAtomically(out, text);
        return ExitOk;
    });
}

} // namespace moewb::cli
