// SPDX-License-Identifier: MIT
// runPipeline: calibrate → plan → quantize (fake) → evaluate, baseline first.
#include "moewb/workflow/pipeline.h"

#include "moewb/alloc/allocate.h"
#include "moewb/plan/plan.h"
#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"
#include "moewb/core/version.h"
#include "moewb/eval/kld.h"
#include "moewb/eval/perplexity.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/quant/quantize.h"
#include "moewb/workflow/calib_sequences.h"
#include "moewb/workflow/gguf_budget.h"
#include "moewb/export/gguf.h"
#include "moewb/alloc/ggml_errors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb {

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string bitsLabel(double b)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", b);
    return buf;
}

/// Progress of one step, reported as "<step>: <stage>" so a single bar can show where we are.
ProgressFn stepProgress(const ProgressFn& outer, const std::string& step)
{
    if (!outer)
        return {};
    return [outer, step](const Progress& p) { return outer(Progress{step + ": " + p.stage, p.done, p.total, p.message}); };
}

struct Evaluator {
    const PipelineOptions& opt;
    std::vector<TaskSet> tasks;
    /// One per pplFiles entry, made by the baseline row: the unquantized model's log-probabilities.
    std::vector<std::unique_ptr<KldReference>> refs;

    PerplexityOptions perplexityOptions() const
    {
        PerplexityOptions po;
        po.ctx = opt.ctx;
        po.dtype = opt.dtype;
        po.activationBits = opt.activationBits;
        po.tokenizer = opt.target == PlanTarget::Gguf ? opt.modelDir : std::string(); // GGUF rows: the model's tokenizer.json
        return po;
    }

    /// The unquantized model: its perplexity comes from building the references (the same pass).
    void runBaseline(const std::string& modelDir, PipelineRow& row, const ProgressFn& progress)
    {
        for (const std::string& f : opt.pplFiles) {
            refs.push_back(kldReferenceForFile(modelDir, f, perplexityOptions(), stepProgress(progress, row.label + " ppl")));
            row.ppl.push_back(refs.back()->perplexity().perplexity);
            row.kld.push_back(0.0);
            row.kldP99.push_back(0.0);
            row.sameTop.push_back(1.0);
        }
        runTasks(modelDir, row, progress);
    }

    void runQuantized(const std::string& modelDir, PipelineRow& row, const ProgressFn& progress) const
    {
        for (size_t i = 0; i < opt.pplFiles.size(); ++i) {
            const KldResult k = evaluateKldFile(modelDir, *refs[i], opt.pplFiles[i], perplexityOptions(),
                                                stepProgress(progress, row.label + " ppl"));
            row.ppl.push_back(k.perplexity.perplexity);
            row.kld.push_back(k.meanKld);
            row.kldP99.push_back(k.p99Kld);
            row.sameTop.push_back(k.sameTop);
            row.windowKld.insert(row.windowKld.end(), k.windowKld.begin(), k.windowKld.end());
            for (int64_t t : k.windowTokens)
                row.windowTokens.push_back(double(t));
        }
        runTasks(modelDir, row, progress);
    }

    void runTasks(const std::string& modelDir, PipelineRow& row, const ProgressFn& progress) const
    {
        if (tasks.empty())
            return;
        TaskEvalOptions to;
        to.dtype = opt.dtype;
        to.activationBits = opt.activationBits;
        to.tokenizer = opt.target == PlanTarget::Gguf ? opt.modelDir : std::string();
        const TaskEvalResult r = evaluateTasks(modelDir, tasks, to, stepProgress(progress, row.label + " tasks"));
        for (size_t t = 0; t < r.tasks.size(); ++t) {
            row.tasks.push_back(r.tasks[t].overall);
            row.taskCorrect.emplace_back(r.tasks[t].correct.begin(), r.tasks[t].correct.end());
        }
    }
};

/// The uniform row a strategy row at `bits` is compared with: the same budget, else the largest
/// uniform budget below it. nullptr when the run has none.
const PipelineRow* uniformFor(const std::vector<PipelineRow>& rows, double bits, ExpertBalance balance)
{
    const PipelineRow* best = nullptr;
    for (const PipelineRow& u : rows)
        if (u.strategy == "uniform" && u.balance == balance && u.targetBits <= bits + 1e-9 && (!best || u.targetBits > best->targetBits))
            best = &u;
    return best;
}

void checkPipelineOptions(const PipelineOptions& opt)
{
    MOEWB_CHECK(!opt.calibData.empty(), "pipeline", "no calibration data given");
    MOEWB_CHECK(!opt.strategies.empty() && !opt.bits.empty(), "pipeline", "no strategy or no bit budget given");
    MOEWB_CHECK(!opt.balanceExperts.empty(), "pipeline", "no expert balancing mode given");
    for (const std::string& s : opt.strategies)
        MOEWB_CHECK(findStrategy(s), "pipeline", "unknown strategy '", s, "'");
    for (double b : opt.bits)
        MOEWB_CHECK(b >= 2.0 && b <= 16.0, "pipeline", "bits ", b, " outside [2, 16]");
    for (const std::string& s : opt.strategies)
        MOEWB_CHECK(!findStrategy(s)->fixedMix || opt.target != PlanTarget::Vllm, "pipeline", "strategy '", s,
                    "' is a llama.cpp mix: it is made for GGUF or GPTQ files, not for vLLM");
    if (opt.target == PlanTarget::Gguf)
        for (double b : opt.bits)
            MOEWB_CHECK(b <= 8.0, "pipeline", "bits ", b, " above 8: GGUF budgets go up to Q8_0");
    MOEWB_CHECK(!opt.workDir.empty(), "pipeline", "no work directory");
}

/// Statistics for the strategies and, from the same windows, the sequences for GPTQ.
struct Calibration {
    CalibStats stats;
    CalibSequences windows;
};

Calibration calibrateOnce(const PipelineOptions& opt, const std::string& statsPath, const ProgressFn& progress)
{
    const CalibTokens tokens = loadCalibData(opt.calibData, modelTokenizer(opt.modelDir));
    CalibrateOptions co;
    co.data = opt.calibData;
    co.samples = opt.samples;
    co.seqLen = opt.seqLen;
    co.seed = opt.seed;
    co.randomWindows = opt.randomWindows;
    co.dtype = opt.dtype;
    // budget minimises the Fisher-predicted KL divergence (docs/allocation.md): measure it once here.
    co.fisher = std::any_of(opt.strategies.begin(), opt.strategies.end(), [](const std::string& s) {
        const StrategyInfo* info = findStrategy(s);
        return info && info->needsErrorTable;
    });
    Calibration c;
    c.stats = calibrateTokens(opt.modelDir, tokens, co, stepProgress(progress, "calibrate"));
    writeStats(c.stats, statsPath);
    c.windows.sequences = calibSequences(tokens, opt.samples, opt.seqLen, opt.randomWindows, opt.seed);
    c.windows.description = calibDataDescription(tokens.files, int64_t(c.windows.sequences.size()), opt.seqLen,
                                                 opt.randomWindows, opt.seed);
    return c;
}

PipelineRow baselineRow(const PipelineOptions& opt, const ModelConfig& cfg, Evaluator& eval,
                        const ProgressFn& progress)
{
    const auto ts = std::chrono::steady_clock::now();
    PipelineRow base;
    base.label = "baseline";
    base.modelPath = opt.modelDir;
    eval.runBaseline(opt.modelDir, base, progress);
    base.modelBytes = 2 * parameterCount(cfg); // bf16 storage, the unit the plans' budgets are counted against
    base.seconds = secondsSince(ts);
    return base;
}

/// The rows over the baseline: one per strategy × budget, the error table measured once if needed.
class StrategyRows {
public:
    StrategyRows(const PipelineOptions& opt, const ModelConfig& cfg, const Calibration& calib, const Evaluator& eval,
                 const std::string& statsPath)
        : m_opt(opt), m_cfg(cfg), m_calib(calib), m_eval(eval), m_statsPath(statsPath)
    {
        if (opt.target == PlanTarget::Gguf)
            for (const LinearStats& l : calib.stats.linears)
                if (!l.actSqMean.empty())
                    m_actSqMean[l.name] = l.actSqMean;
    }

    PipelineRow run(const std::string& strategy, double bits, ExpertBalance balance, const ProgressFn& progress)
    {
        const auto ts = std::chrono::steady_clock::now();
        PipelineRow row;
        row.strategy = strategy;
        row.targetBits = bits;
        row.balance = balance;
        const bool severalModes = m_opt.balanceExperts.size() > 1;
        const std::string suffix = severalModes ? std::string("/") + expertBalanceName(balance) : "";
        row.label = strategy + "@" + bitsLabel(bits) + suffix;
        const std::string stem = strategy + "-" + bitsLabel(bits);
        row.planPath = (fs::path(m_opt.workDir) / ("plan-" + stem + ".json")).string();
        const bool gguf = m_opt.target == PlanTarget::Gguf;
        const Plan plan = gguf ? makeGgufPlan(strategy, bits, row, progress) : makePlan(strategy, bits, row, progress);
        QuantizeOptions qo;
        qo.planPath = row.planPath;
        qo.damp = m_opt.damp;
        qo.minExpertTokens = m_opt.minExpertTokens;
        qo.balanceExperts = balance;
        qo.dtype = m_opt.dtype;
        const std::string modelStem = severalModes ? stem + "-" + expertBalanceName(balance) : stem;
        row.modelPath = (fs::path(m_opt.workDir) / ("model-" + modelStem + (gguf ? ".gguf" : ""))).string();
        const ProgressFn quantProgress = stepProgress(progress, row.label + " quantize");
        QuantizeReport rep;
        if (gguf) {
            qo.actSqMean = m_actSqMean; // the ggml encoders' importance, as quantize --format gguf --stats
            GgufExportResult g = quantizeToGguf(m_opt.modelDir, plan, m_calib.windows.sequences, qo, row.modelPath,
                                                true, m_calib.windows.description, quantProgress);
            row.modelBytes = int64_t(g.fileBytes);
            row.achievedBits = 8.0 * double(g.fileBytes) / double(parameterCount(m_cfg));
            rep = std::move(g.quant);
        } else {
            rep = quantizeToFakeDir(m_opt.modelDir, plan, m_calib.windows.sequences, qo, row.modelPath, true,
                                    m_calib.windows.description, quantProgress);
        }
        row.meanRelError = rep.meanRelError;
        row.fallbackExperts = int64_t(rep.fallbackExperts.size());
        row.expertsBelowMin = expertsBelowMinimum(rep, true);
        m_eval.runQuantized(row.modelPath, row, progress);
        if (!m_opt.keepModels) {
            std::error_code ec;
            fs::remove_all(row.modelPath, ec);
            if (gguf)
                fs::remove(row.modelPath + ".moewb_report.json", ec);
            row.modelPath.clear();
        }
        row.seconds = secondsSince(ts);
        return row;
    }

private:
    /// Allocates, saves the plan to row.planPath and fills the row's size.
    AllocOptions allocOptions(const std::string& strategy, double bits) const
    {
        AllocOptions ao;
        ao.strategy = strategy;
        ao.targetBits = bits;
        ao.groupSize = m_opt.groupSize;
        ao.sym = m_opt.sym;
        ao.method = m_opt.method;
        ao.seed = uint64_t(m_opt.seed);
        ao.target = m_opt.target;
        return ao;
    }

    /// --target gguf: ggml types per tensor. budget solves in GGUF file bytes (the size `bits` stands
    /// for: ggufBytesForBits) over the ggml error table; the other strategies' widths become types.
    Plan makeGgufPlan(const std::string& strategy, double bits, PipelineRow& row, const ProgressFn& progress)
    {
        const AllocOptions ao = allocOptions(strategy, bits);
        PlanProvenance source;
        source.modelPath = m_opt.modelDir;
        source.statsPath = m_statsPath;
        source.architecture = m_cfg.architecture;
        GgufBudgetResult g;
        if (findStrategy(strategy)->fixedMix) { // a llama.cpp mix: its types as they are
            g.plan = planFromAllocation(allocate(m_cfg, m_calib.stats, ao), ao);
            g.plan.provenance.modelPath = source.modelPath;
            g.plan.provenance.statsPath = source.statsPath;
            g.plan.provenance.architecture = source.architecture;
        } else if (findStrategy(strategy)->needsErrorTable) {
            if (!m_ggmlErrors)
                m_ggmlErrors = measureGgmlErrors(m_opt.modelDir, m_cfg, m_calib.stats, defaultGgufCandidateTypes(),
                                                 stepProgress(progress, "measure ggml errors"), ao.costModel);
            g = ggufBudgetPlan(m_opt.modelDir, m_cfg, *m_ggmlErrors, ao,
                               ggufBytesForBits(m_opt.modelDir, m_cfg, bits, ao), kGgufBudgetTokenEmbd,
                               kGgufBudgetOutput, source);
        } else {
            g = ggufPlanFromAllocation(m_opt.modelDir, allocate(m_cfg, m_calib.stats, ao), ao, source);
        }
        savePlan(g.plan, row.planPath);
        return g.plan;
    }

    Plan makePlan(const std::string& strategy, double bits, PipelineRow& row, const ProgressFn& progress)
    {
        const AllocOptions ao = allocOptions(strategy, bits);
        AllocResult alloc;
        if (findStrategy(strategy)->needsErrorTable) {
            if (!m_errors)
                m_errors = measureErrors(m_opt.modelDir, m_cfg, m_calib.stats, m_opt.groupSize, ao.candidates,
                                         stepProgress(progress, "measure errors"));
            alloc = allocateBudget(m_cfg, *m_errors, ao);
        } else {
            alloc = allocate(m_cfg, m_calib.stats, ao);
        }
        Plan plan = planFromAllocation(alloc, ao);
        plan.activationBits = m_opt.activationBits;
        plan.provenance.modelPath = m_opt.modelDir;
        plan.provenance.statsPath = m_statsPath;
        plan.provenance.architecture = m_cfg.architecture;
        row.achievedBits = alloc.size.averageBits;
        row.modelBytes = alloc.size.modelBytes;
        savePlan(plan, row.planPath);
        return plan;
    }

    const PipelineOptions& m_opt;
    const ModelConfig& m_cfg;
    const Calibration& m_calib;
    const Evaluator& m_eval;
    std::string m_statsPath;
    std::optional<ErrorTable> m_errors; // measured once, only if "budget" is asked for
    std::optional<GgmlErrorTable> m_ggmlErrors; // the same for --target gguf
    std::map<std::string, std::vector<float>> m_actSqMean; // per linear, from the statistics (gguf importance)
};

} // namespace

PipelineResult runPipeline(const PipelineOptions& opt, const ProgressFn& progress)
{
    const auto t0 = std::chrono::steady_clock::now();
    checkPipelineOptions(opt);
    const ModelConfig cfg = loadConfig(opt.modelDir);
    fs::create_directories(opt.workDir);

    // Everything that can fail on bad input is read before the long steps start.
    Evaluator eval{opt, {}, {}};
    for (const std::string& f : opt.taskFiles)
        eval.tasks.push_back(loadTaskFile(f, opt.taskLimit));
    for (const std::string& f : opt.pplFiles)
        if (!fs::is_regular_file(f))
            throwCannotAccess(f, "no such file");

    PipelineResult result;
    for (const TaskSet& t : eval.tasks)
        result.taskNames.push_back(t.name);

    // 1. Calibration: statistics for the strategies, windows for GPTQ (the same windows).
    result.statsPath = (fs::path(opt.workDir) / "stats.h5").string();
    const Calibration calib = calibrateOnce(opt, result.statsPath, progress);
    // 2. The unquantized model.
    result.rows.push_back(baselineRow(opt, cfg, eval, progress));
    // 3. One row per strategy × budget.
    StrategyRows rows(opt, cfg, calib, eval, result.statsPath);
    for (double bits : opt.bits)
        for (const std::string& strategy : opt.strategies)
            for (ExpertBalance balance : opt.balanceExperts)
                result.rows.push_back(rows.run(strategy, bits, balance, progress));

    compareWithUniform(result);
    compareWithOff(result);
    compareWinners(result);
    result.seconds = secondsSince(t0);
    result.resultsPath = (fs::path(opt.workDir) / "results.json").string();
    writeFileAtomically(result.resultsPath, pipelineResultToJson(opt, result));
    return result;
}

void compareWithUniform(PipelineResult& r)
{
    for (PipelineRow& row : r.rows) {
        if (row.strategy.empty() || row.strategy == "uniform")
            continue;
        const PipelineRow* u = uniformFor(r.rows, row.targetBits, row.balance);
        if (!u)
            continue;
        row.uniformLabel = u->label;
        if (!row.windowKld.empty())
            row.kldVsUniform = pairedBootstrap(row.windowKld, u->windowKld, row.windowTokens);
        row.accVsUniform.clear();
        for (size_t t = 0; t < row.taskCorrect.size() && t < u->taskCorrect.size(); ++t)
            row.accVsUniform.push_back(pairedBootstrap(row.taskCorrect[t], u->taskCorrect[t],
                                                       std::vector<double>(row.taskCorrect[t].size(), 1.0)));
    }
}

void compareWithOff(PipelineResult& r)
{
    for (PipelineRow& row : r.rows) {
        if (row.strategy.empty() || row.balance == ExpertBalance::Off)
            continue;
        for (const PipelineRow& o : r.rows)
            if (o.strategy == row.strategy && o.targetBits == row.targetBits && o.balance == ExpertBalance::Off) {
                row.offLabel = o.label;
                if (!row.windowKld.empty())
                    row.kldVsOff = pairedBootstrap(row.windowKld, o.windowKld, row.windowTokens);
            }
    }
}

namespace {

double meanOf(const std::vector<double>& v)
{
    double s = 0;
    for (double x : v)
        s += x;
    return v.empty() ? 0.0 : s / double(v.size());
}

} // namespace

void compareWinners(PipelineResult& r)
{
    auto sameCell = [](const PipelineRow& a, const PipelineRow& b) {
        return a.targetBits == b.targetBits && a.balance == b.balance;
    };
    for (PipelineRow& row : r.rows) {
        if (row.strategy.empty() || row.windowKld.empty())
            continue;
        bool lowest = true;
        for (const PipelineRow& o : r.rows)
            if (&o != &row && !o.strategy.empty() && sameCell(o, row) && !o.windowKld.empty()
                && meanOf(o.kld) < meanOf(row.kld))
                lowest = false;
        if (!lowest)
            continue;
        row.kldVsOthers.clear();
        for (const PipelineRow& o : r.rows)
            if (&o != &row && !o.strategy.empty() && sameCell(o, row) && o.windowKld.size() == row.windowKld.size())
                row.kldVsOthers.emplace_back(o.label, pairedBootstrap(row.windowKld, o.windowKld, row.windowTokens));
    }
}

namespace {

nlohmann::json intervalJson(const PairedInterval& p, const std::string& against)
{
    return {{"against", against}, {"diff", p.diff}, {"lo", p.lo}, {"hi", p.hi}};
}

} // namespace

std::string pipelineResultToJson(const PipelineOptions& opt, const PipelineResult& r)
{
    nlohmann::json rows = nlohmann::json::array();
    for (const PipelineRow& row : r.rows) {
        nlohmann::json ppl = nlohmann::json::object();
        for (size_t i = 0; i < row.ppl.size() && i < opt.pplFiles.size(); ++i)
            ppl[fs::path(opt.pplFiles[i]).filename().string()] = row.ppl[i];
        nlohmann::json kld = nlohmann::json::object(), p99 = nlohmann::json::object(), same = nlohmann::json::object();
        for (size_t i = 0; i < row.kld.size() && i < opt.pplFiles.size(); ++i) {
            const std::string name = fs::path(opt.pplFiles[i]).filename().string();
            kld[name] = row.kld[i];
            p99[name] = row.kldP99[i];
            same[name] = row.sameTop[i];
        }
        nlohmann::json tasks = nlohmann::json::object();
        for (size_t i = 0; i < row.tasks.size() && i < r.taskNames.size(); ++i) {
            const TaskMetrics& m = row.tasks[i];
            nlohmann::json t = {{"n", m.n}, {"acc", m.acc}, {"acc_stderr", m.accStderr}};
            if (m.hasAccNorm) {
                t["acc_norm"] = m.accNorm;
                t["acc_norm_stderr"] = m.accNormStderr;
            }
            if (m.hasPpl)
                t["ppl"] = m.ppl;
            if (i < row.accVsUniform.size())
                t["acc_vs_uniform"] = intervalJson(row.accVsUniform[i], row.uniformLabel);
            tasks[r.taskNames[i]] = t;
        }
        nlohmann::json rowJson = {{"label", row.label},
                                  {"strategy", row.strategy},
                                  {"target_bits", row.targetBits},
                                  {"average_bits", row.achievedBits},
                                  {"model_bytes", row.modelBytes},
                                  {"perplexity", ppl},
                                  {"kld", kld},
                                  {"kld_p99", p99},
                                  {"same_top", same},
                                  {"tasks", tasks},
                                  {"mean_rel_error", row.meanRelError},
                                  {"fallback_experts", row.fallbackExperts},
                                  {"balance_experts", expertBalanceName(row.balance)},
                                  {"experts_below_min", row.expertsBelowMin},
                                  {"plan", row.planPath},
                                  {"seconds", row.seconds}};
        if (row.kldVsUniform)
            rowJson["kld_vs_uniform"] = intervalJson(*row.kldVsUniform, row.uniformLabel);
        if (row.kldVsOff)
            rowJson["kld_vs_off"] = intervalJson(*row.kldVsOff, row.offLabel);
        if (!row.kldVsOthers.empty()) {
            nlohmann::json others = nlohmann::json::array();
            for (const auto& [label, p] : row.kldVsOthers)
                others.push_back(intervalJson(p, label));
            rowJson["kld_vs_others"] = others;
        }
        rows.push_back(std::move(rowJson));
    }
    nlohmann::json j = {{"tool", std::string("moewb ") + version()},
                        {"model", opt.modelDir},
                        {"stats", r.statsPath},
                        {"calibration", {{"samples", opt.samples}, {"seq_len", opt.seqLen}, {"seed", opt.seed}}},
                        {"method", opt.method},
                        {"target", planTargetName(opt.target)},
                        {"group_size", opt.groupSize},
                        {"sym", opt.sym},
                        {"activation_bits", opt.activationBits},
                        {"rows", rows},
                        {"seconds", r.seconds}};
    return j.dump(2) + "\n";
}

} // namespace moewb
