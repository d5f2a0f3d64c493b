// SPDX-License-Identifier: MIT
// moewb eval MODEL_DIR [--ppl FILE]... [--tasks FILE]...: perplexity over text files and zero-shot
// multiple-choice tasks, a table on stdout and (--out) a results JSON.
#include "calib_options.h"
#include "cli_common.h"
#include "moewb/workflow/quantize_source.h"

#include "moewb/core/atomic_file.h"

#include "moewb/core/error.h"
#include "moewb/core/version.h"
#include "moewb/eval/kld.h"
#include "moewb/eval/perplexity.h"
#include "moewb/eval/tasks.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/model/model_source.h"
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

void addEvalOptions(QCommandLineParser& p)
{
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
        "--kld-ref REF_DIR: also the KL divergence of MODEL_DIR's next-token distributions from REF_DIR's (the "
        "unquantized model) over the positions perplexity scores: mean, 99th percentile and the share of positions "
        "with the same top token, printed after each text's perplexity (kld:, kld p99:, same top token:). Both must "
        "tokenize the text alike; the reference's log-probabilities are kept in a scratch file under $TMPDIR "
        "(scored tokens x vocabulary x 4 bytes).\n"
        "MODEL_DIR and REF_DIR may be GGUF files (any llama, qwen2moe, qwen3moe, olmoe or deepseek GGUF, ours or "
        "llama-quantize's): each tensor is dequantized as its layer streams through. Text needs a tokenizer.json: "
        "--tokenizer, else the Hugging Face directory on the other side of --kld-ref.\n"
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
    p.addOption({QStringLiteral("llama-chunks"), QStringLiteral("Perplexity over llama-perplexity's windows instead: the first K non-overlapping chunks of --ctx tokens, "
                                                                "each scoring its second half (docs/export-gguf.md)."), QStringLiteral("K")});
    p.addOption({QStringLiteral("max-length"), QStringLiteral("Tasks: longest input in tokens, older context is cut (default: max_position_embeddings)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype: auto (checkpoint's), bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("batch-tokens"), QStringLiteral("Tokens per forward batch (default 8192)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("no-stream"), QStringLiteral("Load all layers at once instead of streaming one layer at a time.")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print the results JSON instead of the table.")});
    p.addOption({QStringLiteral("plan"), QStringLiteral("Quantize MODEL_DIR with this plan on the fly, then evaluate."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("kld-ref"), QStringLiteral("Also measure the KL divergence from this reference model (the unquantized one) on the --ppl texts."), QStringLiteral("REF_DIR")});
    p.addOption({QStringLiteral("tokenizer"), QStringLiteral("tokenizer.json (or its directory) for a GGUF model or reference. Default: the other side's Hugging Face directory."), QStringLiteral("PATH")});
    addCalibOptions(p, 128, 2048);
}

/// What `moewb eval` was asked to do.
struct EvalRequest {
    std::string model; ///< MODEL_DIR as given
    std::vector<std::string> pplFiles, taskFiles;
    std::optional<std::string> planFile; ///< --plan (none: evaluate MODEL_DIR as it is)
    std::optional<std::string> outFile;  ///< --out
    std::optional<std::string> kldRef;   ///< --kld-ref
    std::optional<std::string> tokenizer; ///< --tokenizer
    bool json = false;
    bool actBitsGiven = false;
    bool batchTokensGiven = false;
    int64_t limit = 0, actBits = 16;
    PerplexityOptions popt;
    TaskEvalOptions topt;
    CalibCliOptions calib;

    /// One --ppl and no --tasks: "perplexity: VALUE" (or its JSON) instead of the table.
    bool legacy() const { return pplFiles.size() == 1 && taskFiles.empty(); }
};

std::vector<std::string> toStdList(const QStringList& l)
{
    std::vector<std::string> out;
    for (const QString& s : l)
        out.push_back(toStd(s));
    return out;
}

/// The integer options; false (after a usage error on stderr) when one is not an integer in range.
bool readIntOptions(const QCommandLineParser& p, EvalRequest& r)
{
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
    return intOpt("ctx", r.popt.ctx, 1, big) && intOpt("stride", r.popt.stride, 1, big)
        && intOpt("llama-chunks", r.popt.llamaChunks, 1, big)
        && intOpt("batch-tokens", r.popt.maxBatchTokens, 1, big) && intOpt("limit", r.limit, 1, big)
        && intOpt("max-length", r.topt.maxLength, 2, big) && intOpt("act-bits", r.actBits, 2, 16);
}

/// Parses the command line into r; false with the exit code (help: 0, usage error: 2) otherwise.
bool parseEvalArgs(const QStringList& args, EvalRequest& r, int& exitCode)
{
    QCommandLineParser p;
    addEvalOptions(p);
    exitCode = ExitUsage;
    if (!parseOrUsage(p, args)) {
        exitCode = p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
        return false;
    }
    r.pplFiles = toStdList(p.values(QStringLiteral("ppl")));
    r.taskFiles = toStdList(p.values(QStringLiteral("tasks")));
    if (p.positionalArguments().size() != 1 || (r.pplFiles.empty() && r.taskFiles.empty())) {
        std::fprintf(stderr, "moewb eval: usage error: expected MODEL_DIR and at least one --ppl FILE or --tasks FILE\n\n%s",
                     qPrintable(p.helpText()));
        return false;
    }
    r.popt.dtype = r.topt.dtype = toStd(p.value(QStringLiteral("dtype")));
    r.popt.streaming = r.topt.streaming = !p.isSet(QStringLiteral("no-stream"));
    if (!readIntOptions(p, r))
        return false;
    r.topt.maxBatchTokens = r.popt.maxBatchTokens;
    const std::optional<CalibCliOptions> calib = readCalibOptions(p, "eval");
    if (!calib)
        return false;
    r.calib = *calib;
    if (!p.isSet(QStringLiteral("plan")) && !calib->data.empty()) {
        std::fprintf(stderr, "moewb eval: usage error: --calib/--domain are only used with --plan\n");
        return false;
    }
    r.model = toStd(p.positionalArguments()[0]);
    if (p.isSet(QStringLiteral("plan")))
        r.planFile = toStd(p.value(QStringLiteral("plan")));
    if (p.isSet(QStringLiteral("out")))
        r.outFile = toStd(p.value(QStringLiteral("out")));
    if (p.isSet(QStringLiteral("kld-ref"))) {
        if (r.pplFiles.empty()) {
            std::fprintf(stderr, "moewb eval: usage error: --kld-ref needs at least one --ppl FILE\n");
            return false;
        }
        r.kldRef = toStd(p.value(QStringLiteral("kld-ref")));
    }
    if (p.isSet(QStringLiteral("tokenizer")))
        r.tokenizer = toStd(p.value(QStringLiteral("tokenizer")));
    if (r.planFile && isGgufFile(r.model)) {
        std::fprintf(stderr, "moewb eval: usage error: --plan quantizes a Hugging Face model directory, not a GGUF file\n");
        return false;
    }
    r.json = p.isSet(QStringLiteral("json"));
    r.actBitsGiven = p.isSet(QStringLiteral("act-bits"));
    r.batchTokensGiven = p.isSet(QStringLiteral("batch-tokens"));
    return true;
}

/// --act-bits, else the plan's activation_bits, else MODEL_DIR/moewb_plan.json's; and which one it was.
std::string chooseActivationBits(const EvalRequest& r, const Plan* plan, int64_t& actBits)
{
    actBits = r.actBits;
    if (r.actBitsGiven)
        return "option";
    if (plan && plan->activationBits < 16) {
        actBits = plan->activationBits;
        std::fprintf(stderr, "moewb: activations fake-quantized to %lld bits (the plan's activation_bits)\n",
                     (long long)actBits);
        return "plan";
    }
    if (const int64_t b = plan ? 16 : planActivationBits(r.model); b < 16) {
        actBits = b;
        std::fprintf(stderr, "moewb: activations fake-quantized to %lld bits (moewb_plan.json)\n", (long long)actBits);
        return "moewb_plan.json";
    }
    return "default";
}

/// The plan applied as `quantize --format fake` would into the scratch model; its summary JSON.
json quantizeForEval(const EvalRequest& r, const QuantizeSource& source, const ScratchModel& scratch)
{
    const CalibSequences cs = loadCalibSequences(r.calib, r.model);
    QuantizeOptions qo;
    qo.planPath = *r.planFile;
    qo.damp = r.calib.damp;
    qo.minExpertTokens = r.calib.minExpertTokens;
    qo.balanceExperts = r.calib.balanceExperts;
    qo.dtype = r.popt.dtype;
    if (r.batchTokensGiven)
        qo.maxBatchTokens = r.popt.maxBatchTokens;
    const QuantizeReport qr = quantizeToFakeDir(source.modelDir(), source.plan(), cs.sequences, qo, scratch.path(),
                                                false, cs.description, terminalProgress());
    std::fprintf(stderr, "moewb: quantized with %s in %.1f s (mean relative output error %s)\n", r.planFile->c_str(),
                 qr.seconds, qr.meanRelError >= 0 ? fmt("%.4g", qr.meanRelError).c_str() : "n/a");
    return quantSummaryJson(qr, *r.planFile);
}

/// The tokenizer for `side` (MODEL_DIR or REF_DIR): its own unless it is a GGUF file; then
/// --tokenizer, else the Hugging Face directory on the other side; "" lets the engine refuse.
std::string tokenizerFor(const EvalRequest& r, const std::string& side)
{
    if (!isGgufFile(side))
        return {};
    if (r.tokenizer)
        return *r.tokenizer;
    for (const std::optional<std::string>& other : {std::optional<std::string>(r.model), r.kldRef})
        if (other && *other != side && !isGgufFile(*other)) {
            std::fprintf(stderr, "moewb: tokenizing for %s with %s's tokenizer.json\n", side.c_str(), other->c_str());
            return *other;
        }
    return {};
}

struct EvalResults {
    std::vector<std::pair<std::string, PerplexityResult>> ppls; ///< by file
    std::vector<KldResult> klds;        ///< by file, with --kld-ref
    std::vector<double> refPerplexity;  ///< the reference's perplexity per file, with --kld-ref
    TaskEvalResult tasks;
    bool hasTasks = false;
};

/// One perplexity's numbers: ordered (results JSON) or sorted by key (legacy --json).
template <typename Json>
Json pplJson(const PerplexityResult& r)
{
    return {{"perplexity", r.perplexity}, {"nll_sum", r.nllSum}, {"scored_tokens", r.scoredTokens},
            {"tokens", r.totalTokens},    {"windows", r.windows}, {"ctx", r.ctx},
            {"stride", r.stride},         {"seconds", r.seconds}};
}

/// The KL divergence of one text: ordered (results JSON) or sorted by key (legacy --json).
template <typename Json>
Json kldJson(const std::string& ref, const KldResult& k, double refPerplexity)
{
    return {{"kld_ref", ref}, {"ref_perplexity", refPerplexity}, {"kld", k.meanKld}, {"kld_p99", k.p99Kld},
            {"same_top", k.sameTop}};
}

/// "kld: X", "kld p99: X", "same top token: P %" (docs/evaluation.md).
void printKld(const KldResult& k)
{
    std::printf("kld: %.6f\nkld p99: %.6f\nsame top token: %.2f %%\n", k.meanKld, k.p99Kld, 100.0 * k.sameTop);
}

/// The results JSON (--out, --json).
json resultsJson(const EvalRequest& r, int64_t actBits, const std::string& bitsSource, const json* quantization,
                 const EvalResults& res, double seconds)
{
    json j = {{"model", r.model}, {"tool_version", version()}, {"dtype", r.popt.dtype},
              {"activation_bits", actBits}, {"activation_bits_source", bitsSource}};
    if (quantization)
        j["quantization"] = *quantization;
    json tasks = json::array(), pj = json::array();
    for (const TaskResult& t : res.tasks.tasks)
        tasks.push_back(taskJson(t));
    for (size_t i = 0; i < res.ppls.size(); ++i) {
        json x = {{"file", res.ppls[i].first}};
        x.update(pplJson<json>(res.ppls[i].second));
        if (i < res.klds.size()) {
            x.update(kldJson<json>(*r.kldRef, res.klds[i], res.refPerplexity[i]));
            // Per window, in window order (paired comparisons of two runs on the same text).
            x["window_kld"] = res.klds[i].windowKld;
            x["window_tokens"] = res.klds[i].windowTokens;
            x["window_same_top"] = res.klds[i].windowSameTop;
        }
        pj.push_back(std::move(x));
    }
    j["tasks"] = tasks;
    j["perplexity"] = pj;
    j["requests"] = res.tasks.requests;
    j["sequences"] = res.tasks.sequences;
    j["forward_tokens"] = res.tasks.tokens;
    j["tasks_seconds"] = res.tasks.seconds;
    j["seconds"] = seconds;
    return j;
}

void printTable(const EvalResults& res, int64_t actBits)
{
    std::printf("%-28s %6s  %7s %-9s  %8s %-9s  %12s\n", "task", "n", "acc", "±stderr", "acc_norm", "±stderr", "ppl");
    const TaskEvalResult& tr = res.tasks;
    for (const TaskResult& t : tr.tasks) {
        printRow(t.name, t.overall.n, &t.overall, t.overall.hasPpl ? fmt("%.3f", t.overall.ppl) : "");
        for (const TaskMetrics& m : t.domains)
            printRow("  " + m.domain, m.n, &m, m.hasPpl ? fmt("%.3f", m.ppl) : "");
    }
    for (size_t i = 0; i < res.ppls.size(); ++i) {
        const auto& [file, r] = res.ppls[i];
        const size_t slash = file.find_last_of('/');
        printRow("ppl " + (slash == std::string::npos ? file : file.substr(slash + 1)), r.scoredTokens, nullptr,
                 fmt("%.4f", r.perplexity));
        if (i < res.klds.size())
            printKld(res.klds[i]);
    }
    if (res.hasTasks)
        std::printf("tasks: %lld requests in %lld forward sequences (%lld tokens), %.1f s; activation bits %lld\n",
                    (long long)tr.requests, (long long)tr.sequences, (long long)tr.tokens, tr.seconds,
                    (long long)actBits);
}

/// stdout: one perplexity (legacy: its line or its JSON), the whole JSON, or the table.
void printResults(const EvalRequest& r, const json& j, const EvalResults& res, int64_t actBits)
{
    if (r.legacy() && r.json) {
        nlohmann::json o = pplJson<nlohmann::json>(res.ppls[0].second);
        if (!res.klds.empty())
            o.update(kldJson<nlohmann::json>(*r.kldRef, res.klds[0], res.refPerplexity[0]));
        std::printf("%s\n", o.dump(2).c_str());
    } else if (r.legacy()) {
        const PerplexityResult& p = res.ppls[0].second;
        std::printf("tokens: %lld (scored %lld) in %lld windows of %lld, stride %lld; %.1f s (%.0f tokens/s)\n",
                    (long long)p.totalTokens, (long long)p.scoredTokens, (long long)p.windows, (long long)p.ctx,
                    (long long)p.stride, p.seconds, double(p.forwardTokens) / std::max(p.seconds, 1e-9));
        std::printf("perplexity: %.4f\n", p.perplexity);
        if (!res.klds.empty())
            printKld(res.klds[0]);
    } else if (r.json) {
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        printTable(res, actBits);
    }
}

int evaluate(EvalRequest& r)
{
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<QuantizeSource> source; // trims first when the plan drops structure
    if (r.planFile)
        source.emplace(r.model, loadPlan(*r.planFile), *r.planFile, terminalProgress());
    int64_t actBits = 16;
    const std::string bitsSource = chooseActivationBits(r, source ? &source->plan() : nullptr, actBits);
    r.popt.activationBits = r.topt.activationBits = actBits;
    // Parse every task file before the model runs: a bad line fails fast.
    std::vector<TaskSet> sets;
    for (const std::string& f : r.taskFiles)
        sets.push_back(loadTaskFile(f, r.limit));

    loadModelConfig(r.model); // a wrong MODEL_DIR fails before the GEMM probe below
    r.popt.tokenizer = r.topt.tokenizer = tokenizerFor(r, r.model);
    const RuntimeInfo rt = initRuntime(true);
    if (rt.slowBlas)
        std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
    std::optional<ScratchModel> scratch;
    json quantJson;
    std::string model = r.model;
    if (source) {
        scratch.emplace();
        quantJson = quantizeForEval(r, *source, *scratch);
        model = scratch->path();
    }
    EvalResults res;
    for (const std::string& f : r.pplFiles) {
        if (!r.kldRef) {
            res.ppls.emplace_back(f, evaluatePerplexityFile(model, f, r.popt, terminalProgress()));
            continue;
        }
        PerplexityOptions refOpt = r.popt;
        refOpt.activationBits = 16; // the reference is the model as it is
        refOpt.tokenizer = tokenizerFor(r, *r.kldRef);
        const auto ref = kldReferenceForFile(*r.kldRef, f, refOpt, terminalProgress());
        res.klds.push_back(evaluateKldFile(model, *ref, f, r.popt, terminalProgress()));
        res.ppls.emplace_back(f, res.klds.back().perplexity);
        res.refPerplexity.push_back(ref->perplexity().perplexity);
    }
    res.hasTasks = !sets.empty();
    if (res.hasTasks)
        res.tasks = evaluateTasks(model, sets, r.topt, terminalProgress());

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const json j = resultsJson(r, actBits, bitsSource, source ? &quantJson : nullptr, res, seconds);
    if (r.outFile)
        writeFileAtomically(*r.outFile, j.dump(2) + "\n");
    printResults(r, j, res, actBits);
    return ExitOk;
}

int runEval(const QStringList& args)
{
    EvalRequest r;
    int exitCode = ExitOk;
    if (!parseEvalArgs(args, r, exitCode))
        return exitCode;
    return guarded([&] { return evaluate(r); });
}

const CommandRegistrar reg({"eval", "perplexity (--ppl) and zero-shot tasks (--tasks) of a model", runEval});

} // namespace
} // namespace moewb::cli
