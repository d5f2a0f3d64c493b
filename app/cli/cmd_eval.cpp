// SPDX-License-Identifier: MIT
// moewb eval MODEL_DIR [--ppl FILE]... [--tasks FILE]...: perplexity over text files and zero-shot
// multiple-choice tasks, a table on stdout and (--out) a results JSON.
#include "calib_options.h"
#include "cli_common.h"
#include "moewb/workflow/quantize_source.h"

#include "moewb/core/atomic_file.h"

#include "moewb/core/error.h"
#include "moewb/core/version.h"
#include "moewb/eval/perplexity.h"
#include "moewb/eval/tasks.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/model/runtime.h"
#include "moewb/quant/quantize.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace moewb::cli {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

/// The fake-quantized model `eval --plan` evaluates: built under $TMPDIR, removed when done, failed
/// or cancelled.
class ScratchModel {
public:
    ScratchModel()
        : m_path(fs::temp_directory_path() / ("moewb-eval-" + std::to_string(::getpid())))
    {
    }
    ~ScratchModel()
    {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    ScratchModel(const ScratchModel&) = delete;
    ScratchModel& operator=(const ScratchModel&) = delete;
    std::string path() const { return m_path.string(); }

private:
    fs::path m_path;
};

json quantSummaryJson(const QuantizeReport& r, const std::string& planPath)
{
    json byMethod = json::object();
    for (const LinearQuantResult& l : r.linears)
        byMethod[l.method] = byMethod.value(l.method, 0) + 1;
    json fb = json::array();
    for (const FallbackExpert& f : r.fallbackExperts)
        fb.push_back({{"layer", f.layer}, {"expert", f.expert}, {"tokens", f.tokens}, {"reason", f.reason}});
    return {{"plan", planPath}, {"calibration", r.calibDescription}, {"linears_by_method", byMethod},
            {"mean_rel_error", r.meanRelError >= 0 ? json(r.meanRelError) : json(nullptr)},
            {"fallback_experts", fb}, {"seconds", r.seconds}};
}

/// activation_bits of MODEL_DIR/moewb_plan.json (written by `moewb quantize`), 16 when absent.
int64_t planActivationBits(const std::string& modelDir)
{
    const std::string path = modelDir + "/moewb_plan.json";
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return 16;
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::parse_error&) {
        throw InputError(path, "invalid JSON");
    }
    if (!j.is_object() || !j.contains("activation_bits"))
        return 16;
    if (!j["activation_bits"].is_number_integer())
        throw InputError(path, "$.activation_bits must be an integer");
    const int64_t b = j["activation_bits"].get<int64_t>();
    MOEWB_CHECK(b >= 2 && b <= 16, path, "$.activation_bits ", b, " is not between 2 and 16");
    return b;
}

json metricsJson(const TaskMetrics& m)
{
    json j;
    if (!m.domain.empty())
        j["domain"] = m.domain;
    j["n"] = m.n;
    j["acc"] = m.acc;
    j["acc_stderr"] = m.accStderr;
    j["acc_norm"] = m.hasAccNorm ? json(m.accNorm) : json(nullptr);
    j["acc_norm_stderr"] = m.hasAccNorm ? json(m.accNormStderr) : json(nullptr);
    if (m.hasPpl)
        j["ppl"] = m.ppl;
    return j;
}

json taskJson(const TaskResult& t)
{
    json j = {{"name", t.name}, {"file", t.file}, {"layout", taskLayoutName(t.layout)}};
    j.update(metricsJson(t.overall));
    double sum = 0.0;
    for (const auto& item : t.scores)
        for (const ChoiceScore& c : item)
            sum += c.loglik;
    j["loglik_sum"] = sum; // every choice's loglik summed: a fingerprint to compare runs
    json doms = json::array();
    for (const TaskMetrics& m : t.domains)
        doms.push_back(metricsJson(m));
    j["domains"] = doms;
    return j;
}

std::string fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

void printRow(const std::string& name, int64_t n, const TaskMetrics* m, const std::string& ppl)
{
    std::string acc = "-", accSe = "", norm = "-", normSe = "";
    if (m) {
        acc = fmt("%.4f", m->acc);
        accSe = fmt("±%.4f", m->accStderr);
        if (m->hasAccNorm) {
            norm = fmt("%.4f", m->accNorm);
            normSe = fmt("±%.4f", m->accNormStderr);
        }
    }
    // "±" is two bytes in UTF-8: pad those columns by one more byte.
    std::printf("%-28s %6lld  %7s %-*s  %8s %-*s  %12s\n", name.c_str(), (long long)n, acc.c_str(),
                accSe.empty() ? 8 : 9, accSe.c_str(), norm.c_str(), normSe.empty() ? 8 : 9, normSe.c_str(),
                ppl.c_str());
}

int runEval(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Evaluate a model.\n"
        "--ppl FILE (repeatable): perplexity of a UTF-8 text file, tokenized with the model's tokenizer.json, over "
        "windows of --ctx tokens advancing by --stride; every token after the first is scored exactly once.\n"
        "--tasks FILE (repeatable): zero-shot multiple-choice tasks in lm-eval-harness JSONL layouts (HellaSwag, "
        "PIQA, ARC, WinoGrande, LAMBADA, or generic context/choices/label), scored by log-likelihood: acc, acc_norm "
        "and their standard errors per task and per domain; all task files run in one pass over the model.\n"
        "With one --ppl and no --tasks prints 'perplexity: VALUE' (or --json); otherwise a table. --out writes the "
        "results JSON. If MODEL_DIR has a moewb_plan.json with activation_bits < 16, activations are fake-quantized "
        "to that many bits unless --act-bits is given.\n"
        "--plan FILE evaluates MODEL_DIR quantized by the plan without keeping it: the plan is applied as by "
        "'moewb quantize --format fake' (GPTQ needs --calib/--domain data) into a scratch directory under $TMPDIR "
        "(as large as the model), which is removed afterwards; the plan's activation_bits apply."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("ppl"), QStringLiteral("Text file to measure perplexity on (repeatable)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("tasks"), QStringLiteral("JSONL task file (repeatable)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("limit"), QStringLiteral("Use only the first N items of each task file."), QStringLiteral("N")});
    p.addOption({QStringLiteral("act-bits"), QStringLiteral("Fake-quantize the input of every quantizable linear per token to B bits (2-16; 16 = off). Default: moewb_plan.json's activation_bits, else 16."), QStringLiteral("B")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Write the results as JSON to FILE (atomically)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("ctx"), QStringLiteral("Perplexity window length in tokens (default: max_position_embeddings, at most 2048)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("stride"), QStringLiteral("Perplexity window stride in tokens (default: ctx)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("max-length"), QStringLiteral("Tasks: longest input in tokens, older context is cut (default: max_position_embeddings)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype: auto (checkpoint's), bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("batch-tokens"), QStringLiteral("Tokens per forward batch (default 8192)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("no-stream"), QStringLiteral("Load all layers at once instead of streaming one layer at a time.")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print the results JSON instead of the table.")});
    p.addOption({QStringLiteral("plan"), QStringLiteral("Quantize MODEL_DIR with this plan on the fly, then evaluate."), QStringLiteral("FILE")});
    addCalibOptions(p, 128, 2048);
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    const QStringList pplFiles = p.values(QStringLiteral("ppl")), taskFiles = p.values(QStringLiteral("tasks"));
    if (p.positionalArguments().size() != 1 || (pplFiles.isEmpty() && taskFiles.isEmpty())) {
        std::fprintf(stderr, "moewb eval: usage error: expected MODEL_DIR and at least one --ppl FILE or --tasks FILE\n\n%s",
                     qPrintable(p.helpText()));
        return ExitUsage;
    }
    auto intOpt = [&](const char* name, int64_t& out, int64_t lo, int64_t hi) {
        if (!p.isSet(QLatin1String(name)))
            return true;
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        if (!ok || out < lo || out > hi) {
            std::fprintf(stderr, "moewb eval: usage error: --%s must be an integer in [%lld, %lld]\n", name,
                         (long long)lo, (long long)hi);
            return false;
        }
        return true;
    };
    const int64_t big = int64_t(1) << 40;
    PerplexityOptions popt;
    TaskEvalOptions topt;
    int64_t limit = 0, actBits = 16;
    popt.dtype = topt.dtype = toStd(p.value(QStringLiteral("dtype")));
    popt.streaming = topt.streaming = !p.isSet(QStringLiteral("no-stream"));
    if (!intOpt("ctx", popt.ctx, 1, big) || !intOpt("stride", popt.stride, 1, big)
        || !intOpt("batch-tokens", popt.maxBatchTokens, 1, big) || !intOpt("limit", limit, 1, big)
        || !intOpt("max-length", topt.maxLength, 2, big) || !intOpt("act-bits", actBits, 2, 16))
        return ExitUsage;
    topt.maxBatchTokens = popt.maxBatchTokens;
    const std::optional<CalibCliOptions> calib = readCalibOptions(p, "eval");
    if (!calib)
        return ExitUsage;
    const bool withPlan = p.isSet(QStringLiteral("plan"));
    if (!withPlan && !calib->data.empty()) {
        std::fprintf(stderr, "moewb eval: usage error: --calib/--domain are only used with --plan\n");
        return ExitUsage;
    }
    const bool legacy = pplFiles.size() == 1 && taskFiles.isEmpty();

    return guarded([&] {
        const auto t0 = std::chrono::steady_clock::now();
        const std::string sourceModel = toStd(p.positionalArguments()[0]);
        std::string model = sourceModel;
        std::optional<Plan> plan;
        std::optional<QuantizeSource> source; // trims first when the plan drops structure
        if (withPlan) {
            source.emplace(model, loadPlan(toStd(p.value(QStringLiteral("plan")))), toStd(p.value(QStringLiteral("plan"))),
                           terminalProgress());
            plan = source->plan();
        }
        std::string bitsSource = "default";
        if (p.isSet(QStringLiteral("act-bits"))) {
            bitsSource = "option";
        } else if (plan && plan->activationBits < 16) {
            actBits = plan->activationBits;
            bitsSource = "plan";
            std::fprintf(stderr, "moewb: activations fake-quantized to %lld bits (the plan's activation_bits)\n",
                         (long long)actBits);
        } else if (const int64_t b = withPlan ? 16 : planActivationBits(model); b < 16) {
            actBits = b;
            bitsSource = "moewb_plan.json";
            std::fprintf(stderr, "moewb: activations fake-quantized to %lld bits (moewb_plan.json)\n", (long long)actBits);
        }
        popt.activationBits = topt.activationBits = actBits;
        // Parse every task file before the model runs: a bad line fails fast.
        std::vector<TaskSet> sets;
        for (const QString& f : taskFiles)
            sets.push_back(loadTaskFile(toStd(f), limit));

        loadConfig(model); // a wrong MODEL_DIR fails before the GEMM probe below
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        std::optional<ScratchModel> scratch;
        json quantJson;
        if (plan) {
            const std::string planPath = toStd(p.value(QStringLiteral("plan")));
            const CalibSequences cs = loadCalibSequences(*calib, sourceModel);
            QuantizeOptions qo;
            qo.planPath = planPath;
            qo.damp = calib->damp;
            qo.minExpertTokens = calib->minExpertTokens;
            qo.dtype = popt.dtype;
            if (p.isSet(QStringLiteral("batch-tokens")))
                qo.maxBatchTokens = popt.maxBatchTokens;
            scratch.emplace();
            const QuantizeReport qr = quantizeToFakeDir(source->modelDir(), *plan, cs.sequences, qo, scratch->path(),
                                                        false, cs.description, terminalProgress());
            quantJson = quantSummaryJson(qr, planPath);
            std::fprintf(stderr, "moewb: quantized with %s in %.1f s (mean relative output error %s)\n",
                         planPath.c_str(), qr.seconds,
                         qr.meanRelError >= 0 ? fmt("%.4g", qr.meanRelError).c_str() : "n/a");
            model = scratch->path();
        }
        std::vector<std::pair<std::string, PerplexityResult>> ppls;
        for (const QString& f : pplFiles)
            ppls.emplace_back(toStd(f), evaluatePerplexityFile(model, toStd(f), popt, terminalProgress()));
        TaskEvalResult tr;
        if (!sets.empty())
            tr = evaluateTasks(model, sets, topt, terminalProgress());

        json j = {{"model", sourceModel}, {"tool_version", version()}, {"dtype", popt.dtype},
                  {"activation_bits", actBits}, {"activation_bits_source", bitsSource}};
        if (plan)
            j["quantization"] = quantJson;
        json tasks = json::array(), pj = json::array();
        for (const TaskResult& t : tr.tasks)
            tasks.push_back(taskJson(t));
        for (const auto& [file, r] : ppls)
            pj.push_back({{"file", file}, {"perplexity", r.perplexity}, {"nll_sum", r.nllSum},
                          {"scored_tokens", r.scoredTokens}, {"tokens", r.totalTokens}, {"windows", r.windows},
                          {"ctx", r.ctx}, {"stride", r.stride}, {"seconds", r.seconds}});
        j["tasks"] = tasks;
        j["perplexity"] = pj;
        j["requests"] = tr.requests;
        j["sequences"] = tr.sequences;
        j["forward_tokens"] = tr.tokens;
        j["tasks_seconds"] = tr.seconds;
        j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (p.isSet(QStringLiteral("out")))
            writeFileAtomically(toStd(p.value(QStringLiteral("out"))), j.dump(2) + "\n");

        if (legacy && p.isSet(QStringLiteral("json"))) {
            const PerplexityResult& r = ppls[0].second;
            const nlohmann::json o = {{"perplexity", r.perplexity}, {"nll_sum", r.nllSum},
                                      {"scored_tokens", r.scoredTokens}, {"tokens", r.totalTokens},
                                      {"windows", r.windows}, {"ctx", r.ctx}, {"stride", r.stride},
                                      {"seconds", r.seconds}};
            std::printf("%s\n", o.dump(2).c_str());
        } else if (legacy) {
            const PerplexityResult& r = ppls[0].second;
            std::printf("tokens: %lld (scored %lld) in %lld windows of %lld, stride %lld; %.1f s (%.0f tokens/s)\n",
                        (long long)r.totalTokens, (long long)r.scoredTokens, (long long)r.windows, (long long)r.ctx,
                        (long long)r.stride, r.seconds, double(r.totalTokens) / std::max(r.seconds, 1e-9));
            std::printf("perplexity: %.4f\n", r.perplexity);
        } else if (p.isSet(QStringLiteral("json"))) {
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("%-28s %6s  %7s %-9s  %8s %-9s  %12s\n", "task", "n", "acc", "±stderr", "acc_norm", "±stderr",
                        "ppl");
            for (const TaskResult& t : tr.tasks) {
                printRow(t.name, t.overall.n, &t.overall, t.overall.hasPpl ? fmt("%.3f", t.overall.ppl) : "");
                for (const TaskMetrics& m : t.domains)
                    printRow("  " + m.domain, m.n, &m, m.hasPpl ? fmt("%.3f", m.ppl) : "");
            }
            for (const auto& [file, r] : ppls) {
                const size_t slash = file.find_last_of('/');
                printRow("ppl " + (slash == std::string::npos ? file : file.substr(slash + 1)), r.scoredTokens, nullptr,
                         fmt("%.4f", r.perplexity));
            }
            if (!sets.empty())
                std::printf("tasks: %lld requests in %lld forward sequences (%lld tokens), %.1f s; activation bits %lld\n",
                            (long long)tr.requests, (long long)tr.sequences, (long long)tr.tokens, tr.seconds,
                            (long long)actBits);
        }
        return ExitOk;
    });
}

const CommandRegistrar reg({"eval", "perplexity (--ppl) and zero-shot tasks (--tasks) of a model", runEval});

} // namespace
} // namespace moewb::cli
