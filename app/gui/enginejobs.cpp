// SPDX-License-Identifier: MIT
#include "enginejobs.h"

#include "moewb/workflow/calib_sequences.h"
#include "moewb/workflow/gguf_budget.h"
#include "moewb/workflow/quantize_export.h"

#include "moewb/alloc/allocate.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/error.h"
#include "moewb/core/timestamp.h"
#include "moewb/eval/perplexity.h"
#include "moewb/eval/tasks.h"
#include "moewb/export/gguf.h"
#include "moewb/export/gptq.h"
#include "moewb/plan/gptq_dynamic.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/model/runtime.h"
#include "moewb/quant/quantize.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace moewb::gui {

namespace {

std::string toStd(const QString& s)
{
    return s.toStdString();
}

QString fromStd(const std::string& s)
{
    return QString::fromStdString(s);
}

QString fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return QString::fromLatin1(buf);
}

/// "3", "2.5": the bits of a label as the pipeline writes them.
QString bitsLabel(double bits)
{
    return QString::number(bits, 'g', 6);
}

QString planLabel(const Plan& plan, const QString& fallback)
{
    const PlanProvenance& pv = plan.provenance;
    if (!pv.strategy.empty() && pv.targetBits > 0)
        return fromStd(pv.strategy) + QLatin1Char('@') + bitsLabel(pv.targetBits);
    if (!pv.strategy.empty())
        return fromStd(pv.strategy);
    return fallback;
}

std::string readTextFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError(path, "cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

std::vector<CalibDataSpec> calibSpecs(const QStringList& files)
{
    std::vector<CalibDataSpec> specs;
    for (const QString& f : files) {
        const int eq = f.indexOf(QLatin1Char('='));
        // NAME=FILE unless the '=' belongs to an existing path
        if (eq > 0 && eq < f.size() - 1 && !QFileInfo::exists(f))
            specs.push_back({toStd(f.mid(eq + 1)), toStd(f.left(eq))});
        else
            specs.push_back({toStd(f), ""});
    }
    return specs;
}

int64_t bf16ModelBytes(const ModelConfig& cfg)
{
    return 2 * parameterCount(cfg);
}

Job calibrateJob(const CalibrateSettings& s)
{
    Job job;
    job.name = QObject::tr("Calibrate %1").arg(QFileInfo(s.modelDir).fileName());
    job.kind = QStringLiteral("calibrate");
    job.outputPath = s.outPath;
    job.work = [s](const ProgressFn& progress) {
        if (s.outPath.isEmpty())
            throw InputError("calibrate", "no output file given");
        if (s.data.isEmpty())
            throw InputError("calibrate", "no calibration data given");
        CalibrateOptions opt;
        opt.data = calibSpecs(s.data);
        opt.samples = s.samples;
        opt.seqLen = s.seqLen;
        opt.seed = s.seed;
        opt.randomWindows = s.randomWindows;
        opt.probeTokens = s.probeTokens;
        opt.dtype = toStd(s.dtype);
        opt.fisher = s.fisher;
        const std::string model = toStd(s.modelDir);
        loadConfig(model); // a wrong directory fails before the runtime probe
        initRuntime(false);
        auto stats = std::make_shared<const CalibStats>(calibrate(model, opt, modelTokenizer(model), progress));
        // Only after the whole run succeeded, atomically: a cancel leaves nothing behind.
        writeStats(*stats, toStd(s.outPath), progress);
        const StatsProvenance& pv = stats->provenance;
        JobResult r;
        r.summary = QObject::tr("wrote %1: %2 windows, %3 tokens")
                        .arg(s.outPath)
                        .arg(pv.numSamples)
                        .arg(pv.numTokens);
        r.details << QObject::tr("experts without calibration tokens: %1").arg(stats->totalDeadExperts());
        if (stats->hasFisher())
            r.details << QObject::tr("loss sensitivity (Fisher) measured over %1 tokens").arg(stats->fisher.tokens);
        r.outputPath = s.outPath;
        r.value = stats;
        return r;
    };
    return job;
}

Job strategyJob(std::shared_ptr<const ModelConfig> cfg, const QString& modelDir, std::shared_ptr<const CalibStats> stats,
                const QString& statsPath, const StrategySettings& s, std::shared_ptr<const ErrorTable> costTable)
{
    Job job;
    job.name = QObject::tr("Strategy %1 @ %2 bits").arg(s.strategy, bitsLabel(s.bits));
    job.kind = QStringLiteral("strategy");
    job.work = [cfg, modelDir, stats, statsPath, s, costTable](const ProgressFn& progress) {
        if (!cfg)
            throw InputError("strategy", "open a model first");
        AllocOptions opt;
        opt.strategy = toStd(s.strategy);
        opt.targetBits = s.bits;
        opt.groupSize = s.groupSize;
        opt.sym = s.sym;
        opt.method = toStd(s.method);
        opt.seed = uint64_t(s.seed);
        opt.k = s.k;
        opt.topP = s.topP;
        opt.perLayer = s.perLayer;
        if (!parsePlanTarget(toStd(s.target), opt.target))
            throw InputError("strategy", "unknown runtime '" + toStd(s.target) + "' (gptq, vllm or gguf)");
        const CalibStats empty;
        const CalibStats& st = stats ? *stats : empty;
        const StrategyInfo* info = findStrategy(opt.strategy);
        if (info && info->needsStats && !stats)
            throw InputError("strategy", "'" + opt.strategy + "' needs calibration statistics: calibrate or open stats first");
        report(progress, "allocate", 0, 1);
        AllocResult a;
        if (info && info->needsErrorTable) {
            if (costTable && costTable->groupSize == opt.groupSize && costTable->candidates == opt.candidates) {
                a = allocateBudget(*cfg, *costTable, opt);
            } else {
                initRuntime(false);
                a = allocateBudget(*cfg, measureErrors(toStd(modelDir), *cfg, st, opt.groupSize, opt.candidates, progress),
                                   opt);
            }
        } else {
            a = allocate(*cfg, st, opt);
        }
        PlanProvenance source;
        source.modelPath = toStd(modelDir);
        source.statsPath = stats ? toStd(statsPath) : std::string();
        source.architecture = cfg->architecture;
        source.created = utcTimestamp();
        JobResult r;
        Plan plan;
        if (opt.target == PlanTarget::Gguf) { // as `moewb plan --target gguf --bits`
            const GgufBudgetResult g = ggufPlanFromAllocation(toStd(modelDir), a, opt, source);
            plan = g.plan;
            r.details << QObject::tr("GGUF file: %1 MB").arg(fmt("%.2f", double(g.fileBytes) / 1e6));
        } else {
            plan = planFromAllocation(a, opt);
            plan.provenance.modelPath = source.modelPath;
            plan.provenance.statsPath = source.statsPath;
            plan.provenance.architecture = source.architecture;
            plan.provenance.created = source.created;
        }
        report(progress, "allocate", 1, 1);
        r.summary = QObject::tr("%1: %2 average bits, %3 MB (budget %4 MB)")
                        .arg(planLabel(plan, s.strategy), fmt("%.3f", a.size.averageBits),
                             fmt("%.2f", double(a.size.modelBytes) / 1e6), fmt("%.2f", double(a.budgetBytes) / 1e6));
        for (const std::string& n : a.notes)
            r.details << fromStd(n);
        r.value = plan;
        return r;
    };
    return job;
}

Job costTableJob(std::shared_ptr<const ModelConfig> cfg, const QString& modelDir, std::shared_ptr<const CalibStats> stats)
{
    Job job;
    job.name = QObject::tr("Predicted cost %1").arg(QFileInfo(modelDir).fileName());
    job.kind = QStringLiteral("cost");
    job.work = [cfg, modelDir, stats](const ProgressFn& progress) {
        if (!cfg)
            throw InputError("predicted cost", "open a model first");
        if (!stats || !stats->hasFisher())
            throw InputError("predicted cost", "the statistics have no loss sensitivity: calibrate with "
                                               "\"Measure loss sensitivity (Fisher)\" (moewb calibrate --fisher)");
        initRuntime(false);
        const AllocOptions defaults;
        auto table = std::make_shared<const ErrorTable>(measureErrors(toStd(modelDir), *cfg, *stats, defaults.groupSize,
                                                                      defaults.candidates, progress, CostModel::Fisher));
        JobResult r;
        QStringList widths;
        for (int64_t b : table->candidates)
            widths << QString::number(b);
        r.summary = QObject::tr("predicted cost of %1 linears at %2 bits (group size %3)")
                        .arg(table->linears.size())
                        .arg(widths.join(QStringLiteral(", ")))
                        .arg(table->groupSize);
        r.value = table;
        return r;
    };
    return job;
}

namespace {

ExportTarget exportTarget(const QuantizeSettings& s)
{
    ExportTarget t;
    t.format = toStd(s.format);
    t.path = toStd(s.outPath);
    t.force = s.force;
    t.gptq.checkpointFormat = toStd(s.checkpointFormat);
    t.gptq.maxShardBytes = s.maxShardBytes;
    t.gguf.unquantizedType = toStd(s.ggufType);
    return t;
}

CalibSelection calibSelection(const QuantizeSettings& s)
{
    CalibSelection c;
    c.data = calibSpecs(s.calib);
    c.samples = s.samples;
    c.seqLen = s.seqLen;
    c.randomWindows = s.randomWindows;
    c.seed = s.seed;
    return c;
}

/// The job's result: what was written (the format's own line), the calibration, the error.
JobResult quantizeResult(const QuantizeExportResult& e, const QuantizeOutcome& o, const std::string& calibDescription)
{
    JobResult r;
    const QuantizeReport& rep = e.report;
    if (e.format == "gguf") {
        r.summary = QObject::tr("wrote %1 (GGUF v3, %2, %3 MB)")
                        .arg(o.outPath, fromStd(e.gguf.fileType), fmt("%.2f", double(e.gguf.fileBytes) / 1e6));
        for (const std::string& n : e.gguf.notes)
            r.details << fromStd(n);
    } else if (e.format == "gptq") {
        r.summary = QObject::tr("wrote %1 (GPTQ %2, %3 quantized linears, %4 MB)")
                        .arg(o.outPath, fromStd(e.gptq.checkpointFormat))
                        .arg(e.gptq.quantizedLinears)
                        .arg(fmt("%.2f", double(e.gptq.bytesOnDisk) / 1e6));
    } else {
        r.summary = QObject::tr("wrote %1 (%2, %3 average bits, %4 MB as GPTQ)")
                        .arg(o.outPath, o.label, fmt("%.3f", o.averageBits), fmt("%.2f", double(o.modelBytes) / 1e6));
    }
    r.details << QObject::tr("calibration: %1")
                     .arg(fromStd(rep.calibDescription.empty() ? calibDescription : rep.calibDescription));
    r.details << (rep.meanRelError >= 0 ? QObject::tr("mean relative output error: %1").arg(fmt("%.6g", rep.meanRelError))
                                        : QObject::tr("mean relative output error: n/a (no calibration data)"));
    if (!rep.experts.empty())
        r.details << QObject::tr("expert coverage (balancing %1): %2 routed experts, %3 below %4 routed tokens, "
                                 "%5 below after balancing")
                         .arg(QString::fromUtf8(expertBalanceName(rep.balanceExperts)))
                         .arg(rep.experts.size())
                         .arg(expertsBelowMinimum(rep, false))
                         .arg(rep.minExpertTokens)
                         .arg(expertsBelowMinimum(rep, true));
    r.details << QObject::tr("experts that fell back to RTN: %1").arg(rep.fallbackExperts.size());
    r.outputPath = o.outPath;
    r.value = o;
    return r;
}

} // namespace

Job quantizeJob(const Plan& plan, const QuantizeSettings& s)
{
    Job job;
    const bool exportJob = s.format != QLatin1String("fake");
    job.name = exportJob ? QObject::tr("Export %1 (%2)").arg(planLabel(plan, QObject::tr("plan")), s.format)
                         : QObject::tr("Quantize %1").arg(planLabel(plan, QObject::tr("plan")));
    job.kind = exportJob ? QStringLiteral("export") : QStringLiteral("quantize");
    job.outputPath = s.outPath;
    job.work = [plan, s](const ProgressFn& progress) {
        const std::string model = toStd(s.modelDir);
        const ExportTarget target = exportTarget(s);
        checkExportTarget(target, model);
        const ModelConfig cfg = loadConfig(model);
        const PlanSize size = planSize(expandPlan(plan, cfg), cfg);
        initRuntime(false);
        const QuantizeSource source(model, plan, "plan", progress);
        const CalibSequences calib = loadCalibSequences(calibSelection(s), model);
        QuantizeOptions opt;
        opt.planPath = "plan";
        opt.damp = s.damp;
        opt.minExpertTokens = s.minExpertTokens;
        opt.balanceExperts = parseExpertBalance(toStd(s.balanceExperts), "expert balancing");
        opt.dtype = toStd(s.dtype);
        const QuantizeExportResult e = quantizeAndExport(source, calib, opt, target, progress);
        QuantizeOutcome o;
        o.outPath = s.outPath;
        o.format = s.format;
        o.reportPath = s.format == QLatin1String("gguf") ? s.outPath + QStringLiteral(".moewb_report.json")
                                                         : QDir(s.outPath).filePath(QStringLiteral("moewb_quant_report.json"));
        o.label = planLabel(plan, QFileInfo(s.outPath).fileName());
        o.planJson = fromStd(planToJson(plan));
        o.averageBits = size.averageBits;
        o.modelBytes = size.modelBytes;
        o.meanRelError = e.report.meanRelError;
        return quantizeResult(e, o, calib.description);
    };
    return job;
}

Job evaluateJob(const EvaluateSettings& s)
{
    Job job;
    job.name = QObject::tr("Evaluate %1").arg(s.label.isEmpty() ? QFileInfo(s.modelDir).fileName() : s.label);
    job.kind = QStringLiteral("evaluate");
    job.work = [s](const ProgressFn& progress) {
        if (s.pplFiles.isEmpty() && s.taskFiles.isEmpty())
            throw InputError("evaluate", "give a text file for perplexity or a task file");
        const std::string model = toStd(s.modelDir);
        const ModelConfig cfg = loadConfig(model);
        RunResult run;
        run.modelPath = s.modelDir;
        run.created = QDateTime::currentDateTimeUtc().toString(Qt::ISODate);
        // The plan a quantize job stored next to the weights says how big the model is as GPTQ.
        const std::string planFile = model + "/moewb_plan.json";
        int64_t actBits = 16;
        if (std::filesystem::exists(planFile)) {
            const Plan plan = parsePlanJson(readTextFile(planFile), planFile);
            const PlanSize size = planSize(expandPlan(plan, cfg), cfg);
            run.planJson = fromStd(planToJson(plan));
            run.averageBits = size.averageBits;
            run.modelBytes = size.modelBytes;
            run.label = planLabel(plan, QFileInfo(s.modelDir).fileName());
            actBits = plan.activationBits;
        } else {
            run.averageBits = 16.0;
            run.modelBytes = bf16ModelBytes(cfg);
            run.label = QStringLiteral("baseline");
        }
        if (!s.label.isEmpty())
            run.label = s.label;
        std::vector<TaskSet> sets;
        for (const QString& f : s.taskFiles)
            sets.push_back(loadTaskFile(toStd(f), s.taskLimit));
        for (const QString& f : s.pplFiles)
            if (!QFileInfo(f).isFile())
                throw InputError(toStd(f), "no such file");
        initRuntime(false);
        JobResult r;
        PerplexityOptions popt;
        popt.ctx = s.ctx;
        popt.stride = s.stride;
        popt.dtype = toStd(s.dtype);
        popt.activationBits = actBits;
        for (int i = 0; i < s.pplFiles.size(); ++i) {
            const PerplexityResult p = evaluatePerplexityFile(model, toStd(s.pplFiles[i]), popt, progress);
            if (i == 0) {
                run.perplexity = p.perplexity;
                run.pplFile = s.pplFiles[i];
            }
            r.details << QObject::tr("perplexity %1 on %2 (%3 tokens scored, %4 windows of %5)")
                             .arg(fmt("%.4f", p.perplexity), s.pplFiles[i])
                             .arg(p.scoredTokens)
                             .arg(p.windows)
                             .arg(p.ctx);
        }
        if (!sets.empty()) {
            TaskEvalOptions topt;
            topt.dtype = popt.dtype;
            topt.activationBits = actBits;
            const TaskEvalResult tr = evaluateTasks(model, sets, topt, progress);
            for (const TaskResult& t : tr.tasks) {
                run.taskAccuracy.insert(fromStd(t.name), t.overall.acc);
                r.details << QObject::tr("%1: acc %2 (n = %3)").arg(fromStd(t.name), fmt("%.4f", t.overall.acc)).arg(t.overall.n);
            }
        }
        r.summary = QObject::tr("%1: %2 average bits, %3 MB, perplexity %4")
                        .arg(run.label, fmt("%.3f", run.averageBits), fmt("%.2f", double(run.modelBytes) / 1e6),
                             run.hasPerplexity() ? fmt("%.4f", run.perplexity) : QStringLiteral("–"));
        r.value = run;
        return r;
    };
    return job;
}

} // namespace moewb::gui
