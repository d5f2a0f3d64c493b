// SPDX-License-Identifier: MIT
// moewb pipeline MODEL_DIR: calibrate → plan → quantize → evaluate, before and after, one table.
#include "cli_common.h"

#include "moewb/alloc/allocate.h"
#include "moewb/core/error.h"
#include "moewb/workflow/pipeline.h"
#include "moewb/model/runtime.h"

#include <QFileInfo>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>

namespace moewb::cli {
namespace {

int usage(const QCommandLineParser& p, const std::string& msg)
{
    std::fprintf(stderr, "moewb pipeline: usage error: %s\n\n%s", msg.c_str(), qPrintable(p.helpText()));
    return ExitUsage;
}

std::vector<std::string> splitList(const QStringList& values)
{
    std::vector<std::string> out;
    for (const QString& v : values)
        for (const QString& part : v.split(QLatin1Char(','), Qt::SkipEmptyParts))
            out.push_back(toStd(part.trimmed()));
    return out;
}

/// One line per budget: the strategy with the lowest mean KLD over the texts, and whether its
/// difference to uniform is outside the 95 % interval.
void printWinner(const PipelineResult& r)
{
    std::map<double, const PipelineRow*> best;
    auto meanKld = [](const PipelineRow& row) {
        double s = 0;
        for (double k : row.kld)
            s += k;
        return row.kld.empty() ? 0.0 : s / double(row.kld.size());
    };
    for (const PipelineRow& row : r.rows)
        if (!row.strategy.empty() && !row.kld.empty()
            && (!best.count(row.targetBits) || meanKld(row) < meanKld(*best[row.targetBits])))
            best[row.targetBits] = &row;
    if (best.empty())
        return;
    std::printf("\n* the 95 %% interval of the difference to uniform excludes 0 (paired bootstrap over windows)\n");
    for (const auto& [bits, row] : best) {
        std::string verdict = "lowest KLD";
        if (row->strategy != "uniform" && row->kldVsUniform)
            verdict += row->kldVsUniform->excludesZero() ? (row->kldVsUniform->hi < 0 ? ", better than uniform beyond noise"
                                                                                        : ", worse than uniform beyond noise")
                                                         : ", not distinguishable from uniform";
        if (!row->kldVsOthers.empty()) {
            std::string unresolved;
            for (const auto& [label, p] : row->kldVsOthers)
                if (p.hi >= 0)
                    unresolved += (unresolved.empty() ? "" : ", ") + label;
            verdict += unresolved.empty() ? "; better than every other strategy beyond noise"
                                          : "; not distinguishable from " + unresolved;
        }
        std::printf("at %g bits: %s (%s)\n", bits, row->label.c_str(), verdict.c_str());
    }
}

std::string textName(const std::string& file)
{
    return toStd(QFileInfo(QString::fromStdString(file)).completeBaseName());
}

/// "+0.0123 [+0.0101, +0.0145] *": the paired difference to uniform, '*' when the 95 % interval
/// excludes 0 (docs/evaluation.md).
std::string intervalText(const PairedInterval& p, const char* format)
{
    const std::string f = std::string(format) + " [" + format + ", " + format + "]";
    char buf[128];
    std::snprintf(buf, sizeof buf, f.c_str(), p.diff, p.lo, p.hi);
    return std::string(buf) + (p.excludesZero() ? " *" : "");
}

void printTable(const PipelineOptions& opt, const PipelineResult& r)
{
    std::string header = "| model | avg bits | size MB |";
    std::string rule = "|---|---:|---:|";
    for (const std::string& f : opt.pplFiles) {
        header += " ppl " + textName(f) + " | kld " + textName(f) + " | same top " + textName(f) + " |";
        rule += "---:|---:|---:|";
    }
    if (!opt.pplFiles.empty()) {
        header += " Δkld vs uniform [95 %] |";
        rule += "---|";
    }
    for (const std::string& t : r.taskNames) {
        header += " " + t + " acc | Δacc vs uniform [95 %] |";
        rule += "---:|---|";
    }
    header += " rel. error | fallback experts | s |";
    rule += "---:|---:|---:|";
    if (opt.target == PlanTarget::Gguf)
        std::printf("\ntarget gguf: every quantized row is a GGUF file; avg bits = the file's bits per parameter, "
                    "size = the file\n");
    else if (opt.target == PlanTarget::Vllm)
        std::printf("\ntarget vllm: one width per fused MoE, qkv and gate_up module\n");
    std::printf("\n%s\n%s\n", header.c_str(), rule.c_str());
    for (const PipelineRow& row : r.rows) {
        std::printf("| %s | %.3f | %.2f |", row.label.c_str(), row.achievedBits, double(row.modelBytes) / 1e6);
        for (size_t i = 0; i < row.ppl.size(); ++i)
            std::printf(" %.3f | %.5f | %.2f %% |", row.ppl[i], row.kld[i], 100.0 * row.sameTop[i]);
        if (!opt.pplFiles.empty())
            std::printf(" %s |", row.kldVsUniform ? intervalText(*row.kldVsUniform, "%+.5f").c_str() : "–");
        for (size_t t = 0; t < row.tasks.size(); ++t)
            std::printf(" %.3f ± %.3f | %s |", row.tasks[t].acc, row.tasks[t].accStderr,
                        t < row.accVsUniform.size() ? intervalText(row.accVsUniform[t], "%+.3f").c_str() : "–");
        if (row.meanRelError >= 0)
            std::printf(" %.4f | %lld |", row.meanRelError, (long long)row.fallbackExperts);
        else
            std::printf(" – | – |");
        std::printf(" %.0f |\n", row.seconds);
    }
    printWinner(r);
    for (const PipelineRow& row : r.rows)
        if (row.kldVsOff)
            std::printf("%s: Δkld vs %s %s; experts below %lld tokens after balancing: %lld\n", row.label.c_str(),
                        row.offLabel.c_str(), intervalText(*row.kldVsOff, "%+.5f").c_str(),
                        (long long)opt.minExpertTokens, (long long)row.expertsBelowMin);
    std::printf("\nstats: %s\nresults: %s (%.0f s in all)\n", r.statsPath.c_str(), r.resultsPath.c_str(), r.seconds);
}

void addPipelineOptions(QCommandLineParser& p)
{
    p.setApplicationDescription(QStringLiteral(
        "Calibrate, allocate bits with each --strategy at each --bits budget, quantize (fake-quant, GPTQ or RTN), "
        "and evaluate perplexity and zero-shot tasks before and after, in one command. Prints one comparison "
        "table and writes WORK/results.json; the stats, plans (and with --keep-models the quantized models) stay "
        "in WORK."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("calib"), QStringLiteral("Calibration data (text, JSONL with text[/domain], or token ids). Repeatable."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("domain"), QStringLiteral("Calibration data of one domain. Repeatable."), QStringLiteral("NAME=FILE")});
    p.addOption({QStringLiteral("strategy"), QStringLiteral("Allocation strategy; repeatable or comma-separated (default uniform)."), QStringLiteral("S")});
    p.addOption({QStringLiteral("bits"), QStringLiteral("Average bits budget; repeatable or comma-separated (default 4)."), QStringLiteral("B")});
    p.addOption({QStringLiteral("ppl"), QStringLiteral("Text to measure perplexity on. Repeatable."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("tasks"), QStringLiteral("Zero-shot task JSONL. Repeatable."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("task-limit"), QStringLiteral("Items per task (default all)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("work"), QStringLiteral("Work directory (default ./moewb-pipeline)."), QStringLiteral("DIR"), QStringLiteral("moewb-pipeline")});
    p.addOption({QStringLiteral("samples"), QStringLiteral("Calibration windows (default 64)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("seq-len"), QStringLiteral("Calibration window length (default 512)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("seed"), QStringLiteral("Seed of the calibration windows and random strategies (default 0)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("method"), QStringLiteral("gptq or rtn (default gptq)."), QStringLiteral("M"), QStringLiteral("gptq")});
    p.addOption({QStringLiteral("group-size"), QStringLiteral("Group size, -1 = per channel (default 128)."), QStringLiteral("G"), QStringLiteral("128")});
    p.addOption({QStringLiteral("asym"), QStringLiteral("Asymmetric quantization (default symmetric).")});
    p.addOption({QStringLiteral("act-bits"), QStringLiteral("Per-token activation fake-quantization bits for every evaluation (default 16 = off)."), QStringLiteral("B")});
    p.addOption({QStringLiteral("ctx"), QStringLiteral("Perplexity window (default the model's, at most 2048)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype: auto, bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("balance-experts"), QStringLiteral("Expert balancing of the quantize runs: off, next-choices, all-tokens, sampled; repeatable or comma-separated, one row per mode, each compared with off (default %1).").arg(QLatin1String(expertBalanceName(kDefaultExpertBalance))), QStringLiteral("MODE")});
    p.addOption({QStringLiteral("target"), QStringLiteral("The runtime the plans are for (docs/allocation.md, Targets): gptq (default; "
                                                          "per-linear widths), vllm (one width per fused MoE / qkv / gate_up "
                                                          "module) or gguf (one ggml type per stacked expert tensor; every row "
                                                          "is written and evaluated as a GGUF file, budget in file bytes; ggml types "
                                                          "have their own grids, so --method, --group-size and --asym do not apply)."),
                 QStringLiteral("T"), QStringLiteral("gptq")});
    p.addOption({QStringLiteral("keep-models"), QStringLiteral("Keep each quantized model directory (or GGUF file) in WORK.")});
}

/// Calibration data, strategies and budgets; 0 or ExitUsage (message printed).
int readSweep(const QCommandLineParser& p, PipelineOptions& opt)
{
    for (const QString& f : p.values(QStringLiteral("calib")))
        opt.calibData.push_back({toStd(f), ""});
    for (const QString& d : p.values(QStringLiteral("domain"))) {
        const int eq = d.indexOf(QLatin1Char('='));
        if (eq <= 0 || eq == d.size() - 1)
            return usage(p, "--domain expects NAME=FILE");
        opt.calibData.push_back({toStd(d.mid(eq + 1)), toStd(d.left(eq))});
    }
    if (opt.calibData.empty())
        return usage(p, "give calibration data with --calib FILE or --domain NAME=FILE");
    if (p.isSet(QStringLiteral("strategy")))
        opt.strategies = splitList(p.values(QStringLiteral("strategy")));
    for (const std::string& s : opt.strategies)
        if (!findStrategy(s))
            return usage(p, "unknown strategy '" + s + "'");
    if (p.isSet(QStringLiteral("bits"))) {
        opt.bits.clear();
        for (const std::string& b : splitList(p.values(QStringLiteral("bits")))) {
            bool ok = false;
            const double v = QString::fromStdString(b).toDouble(&ok);
            if (!ok || v < 2.0 || v > 16.0)
                return usage(p, "--bits must be numbers in [2, 16]");
            opt.bits.push_back(v);
        }
    }
    return 0;
}

/// Evaluation inputs, numbers and switches; 0 or ExitUsage (message printed).
int readSettings(const QCommandLineParser& p, PipelineOptions& opt)
{
    for (const QString& f : p.values(QStringLiteral("ppl")))
        opt.pplFiles.push_back(toStd(f));
    for (const QString& f : p.values(QStringLiteral("tasks")))
        opt.taskFiles.push_back(toStd(f));
    auto intOpt = [&](const char* name, int64_t& out, int64_t minValue) {
        if (!p.isSet(QLatin1String(name)))
            return true;
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        return ok && out >= minValue;
    };
    if (!intOpt("task-limit", opt.taskLimit, 0) || !intOpt("samples", opt.samples, 1)
        || !intOpt("seq-len", opt.seqLen, 2) || !intOpt("seed", opt.seed, 0) || !intOpt("ctx", opt.ctx, 2)
        || !intOpt("act-bits", opt.activationBits, 2))
        return usage(p, "--task-limit, --samples, --seq-len, --seed, --ctx and --act-bits take non-negative integers");
    if (opt.activationBits > 16)
        return usage(p, "--act-bits must be at most 16");
    opt.method = toStd(p.value(QStringLiteral("method")));
    if (!isValidQuantMethod(opt.method))
        return usage(p, "--method must be gptq or rtn");
    bool ok = false;
    opt.groupSize = p.value(QStringLiteral("group-size")).toLongLong(&ok);
    if (!ok || !isValidGroupSize(opt.groupSize))
        return usage(p, "--group-size must be -1 or a positive multiple of 16");
    opt.sym = !p.isSet(QStringLiteral("asym"));
    opt.dtype = toStd(p.value(QStringLiteral("dtype")));
    opt.keepModels = p.isSet(QStringLiteral("keep-models"));
    if (!parsePlanTarget(toStd(p.value(QStringLiteral("target"))), opt.target))
        return usage(p, "--target must be gptq, vllm or gguf");
    if (p.isSet(QStringLiteral("balance-experts"))) {
        opt.balanceExperts.clear();
        for (const std::string& m : splitList(p.values(QStringLiteral("balance-experts")))) {
            try {
                opt.balanceExperts.push_back(parseExpertBalance(m, "--balance-experts"));
            } catch (const InputError&) {
                return usage(p, "--balance-experts takes off, next-choices, all-tokens or sampled");
            }
        }
    }
    return 0;
}

int runPipelineCmd(const QStringList& args)
{
    QCommandLineParser p;
    addPipelineOptions(p);
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1)
        return usage(p, "expected one MODEL_DIR");

    PipelineOptions opt;
    opt.modelDir = toStd(p.positionalArguments()[0]);
    opt.workDir = toStd(p.value(QStringLiteral("work")));
    if (const int rc = readSweep(p, opt))
        return rc;
    if (const int rc = readSettings(p, opt))
        return rc;

    return guarded([&] {
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        const PipelineResult r = runPipeline(opt, terminalProgress());
        printTable(opt, r);
        return ExitOk;
    });
}

const CommandRegistrar reg({"pipeline", "calibrate, plan, quantize and evaluate before/after in one command", runPipelineCmd});

} // namespace
} // namespace moewb::cli
