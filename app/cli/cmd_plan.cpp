// SPDX-License-Identifier: MIT
// moewb plan MODEL_DIR --stats stats.h5 --strategy NAME --bits B --out plan.json   (#7)
// moewb plan show plan.json [--model MODEL_DIR] [--dynamic]
#include "cli_common.h"

#include "moewb/core/timestamp.h"

#include "moewb/alloc/allocate.h"
#include "moewb/plan/plan.h"
#include "moewb/plan/gptq_dynamic.h"
#include "moewb/plan/target_groups.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/workflow/gguf_budget.h"

#include <QFileInfo>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>

namespace moewb::cli {
namespace {

void printSizeLine(const PlanSize& s)
{
    std::printf("average bits %.4f (with scales/zeros/g_idx %.4f), quantizable weights %lld\n", s.averageBits,
                s.effectiveBits, (long long)s.quantParams);
    std::printf("model size %lld bytes = %.3f GB (%.3f GiB)\n", (long long)s.modelBytes, double(s.modelBytes) / 1e9,
                double(s.modelBytes) / double(1ull << 30));
    if (s.nonzeroParams < s.quantParams) // pruned (#14): the dense export stores the zeros, so bytes stay the same
        std::printf("pruned: nonzero weights %lld of %lld (density %.4f; the dense export's bytes above include the "
                    "zeros)\n",
                    (long long)s.nonzeroParams, (long long)s.quantParams, s.density);
}

// "2:40 4:24": how many linears (or experts) at each width.
std::string histogram(const std::map<int64_t, int64_t>& h)
{
    std::string s;
    for (const auto& [b, n] : h)
        s += (s.empty() ? "" : " ") + std::to_string(b) + ":" + std::to_string(n);
    return s.empty() ? "-" : s;
}

int runShow(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Print a plan: per layer the attention/MLP widths and the experts per width, the average bits and the "
        "size of the quantized model (GPTQ storage: packed weights, fp16 scales, packed zeros, g_idx)."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("PLAN"), QStringLiteral("plan.json"));
    p.addOption({QStringLiteral("model"), QStringLiteral("Model directory (default: the one the plan records)."),
                 QStringLiteral("DIR")});
    p.addOption({QStringLiteral("experts"), QStringLiteral("Also list every expert's width, one row per MoE layer.")});
    p.addOption({QStringLiteral("dynamic"), QStringLiteral("Print the GPTQModel quantize_config (bits, group_size, "
                                                           "sym, desc_act, dynamic) the plan exports to.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1) {
        std::fprintf(stderr, "moewb plan show: usage error: expected exactly one PLAN file\n");
        return ExitUsage;
    }
    const std::string planPath = toStd(p.positionalArguments()[0]);
    return guarded([&] {
        const Plan plan = loadPlan(planPath);
        std::string model = toStd(p.value(QStringLiteral("model")));
        if (model.empty())
            model = plan.provenance.modelPath;
        if (model.empty())
            throw InputError(planPath, "the plan records no model directory; give --model DIR");
        const ModelConfig cfg = loadConfig(model);
        validatePlan(plan, cfg, planPath);
        const std::vector<PlanEntry> es = expandPlan(plan, cfg);
        const PlanProvenance& pv = plan.provenance;
        std::printf("plan %s for %s (%s)\n", planPath.c_str(), model.c_str(), cfg.architecture.c_str());
        if (!pv.strategy.empty())
            std::printf("strategy %s%s%s, target %s\n", pv.strategy.c_str(), pv.params.empty() ? "" : " ",
                        pv.params.c_str(),
                        pv.targetBits > 0 ? (std::to_string(pv.targetBits) + " bits").c_str()
                                          : (std::to_string(pv.targetBytes) + " bytes").c_str());
        const std::vector<TargetViolation> bad = checkTarget(es, plan.target);
        std::printf("made for %s (target %s): %zu groups share one width, %zu of them mix widths%s%s\n",
                    planTargetRuntime(plan.target), planTargetName(plan.target), sharedGroupCount(es, plan.target),
                    bad.size(), bad.empty() ? "" : ", e.g. ",
                    bad.empty() ? "" : (bad.front().label + ": " + widthsText(bad.front().widths)).c_str());
        std::printf("defaults: %lld bits, group %lld, %s, %s%s; %zu rules, %zu overrides, activations %lld bits\n",
                    (long long)plan.defaults.bits, (long long)plan.defaults.groupSize,
                    plan.defaults.sym ? "sym" : "asym", plan.defaults.method.c_str(),
                    plan.defaults.actOrder ? ", act-order" : "", plan.rules.size(), plan.overrides.size(),
                    (long long)plan.activationBits);
        if (!plan.droppedExperts.empty() || !plan.droppedLayers.empty() || !plan.droppedBlocks.empty())
            std::printf("dropped: %zu experts, %zu MoE layers, %zu blocks\n", plan.droppedExperts.size(),
                        plan.droppedLayers.size(), plan.droppedBlocks.size());

        std::printf("\n%5s %-5s %-9s %-9s %-22s %8s %10s\n", "layer", "kind", "attn", "mlp", "experts (bits:count)",
                    "avg", "MB");
        for (int64_t l = 0; l < cfg.numLayers; ++l) {
            std::map<int64_t, int64_t> attn, mlp, experts;
            std::map<int64_t, int64_t> expertBits; // expert → bits of its down projection
            double bitSum = 0, params = 0;
            int64_t bytes = 0;
            for (const PlanEntry& e : es) {
                if (e.layer != l || e.dropped)
                    continue;
                const double n = double(e.inFeatures * e.outFeatures);
                bitSum += double(e.bits) * n;
                params += n;
                bytes += gptqLinearBytes(e.inFeatures, e.outFeatures, e.bits, e.groupSize);
                if (e.role == LinearRole::Q || e.role == LinearRole::K || e.role == LinearRole::V || e.role == LinearRole::O)
                    attn[e.bits]++;
                else if (e.expert < 0)
                    mlp[e.bits]++;
                else if (e.role == LinearRole::ExpertDown)
                    experts[e.bits]++, expertBits[e.expert] = e.bits;
            }
            auto range = [](const std::map<int64_t, int64_t>& h) {
                if (h.empty())
                    return std::string("-");
                const int64_t lo = h.begin()->first, hi = h.rbegin()->first;
                return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
            };
            std::printf("%5lld %-5s %-9s %-9s %-22s %8.3f %10.3f\n", (long long)l, cfg.isMoeLayer(l) ? "moe" : "dense",
                        range(attn).c_str(), range(mlp).c_str(), histogram(experts).c_str(),
                        params > 0 ? bitSum / params : 0.0, double(bytes) / 1e6);
            if (p.isSet(QStringLiteral("experts")) && !expertBits.empty()) {
                std::printf("      experts:");
                for (const auto& [e, b] : expertBits)
                    std::printf(" %lld", (long long)b);
                std::printf("\n");
            }
        }
        std::printf("\n");
        printSizeLine(planSize(es, cfg));
        if (p.isSet(QStringLiteral("dynamic"))) {
            const GptqExport ex = exportGptqDynamic(es, listLinears(cfg));
            std::printf("\nGPTQModel config: bits %lld, group_size %lld, sym %s, desc_act %s\n\"dynamic\": %s\n",
                        (long long)ex.bits, (long long)ex.groupSize, ex.sym ? "true" : "false",
                        ex.actOrder ? "true" : "false", dynamicToJson(ex).c_str());
        }
        return ExitOk;
    });
}

void addPlanOptions(QCommandLineParser& p)
{
    std::string strategies, withStats;
    for (const StrategyInfo& s : allocStrategies()) {
        strategies += std::string("\n  ") + s.name + ": " + s.description;
        if (s.needsStats)
            withStats += std::string(withStats.empty() ? "" : ", ") + s.name;
    }
    p.setApplicationDescription(QString::fromStdString(
        "Choose a bit-width for every linear of a MoE model under a size budget and write an editable plan "
        "(docs/plan-format.md). `moewb plan show PLAN` prints one. The budget is in real GPTQ bytes: --bits B means "
        "the size of the model with every quantizable linear at B bits (scales, zeros and g_idx included, "
        "interpolated between integer widths); embeddings, lm_head, norms and routers stay bf16.\n"
        "Strategies:" + strategies));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("stats"),
                 QString::fromStdString("Calibration statistics from moewb calibrate (needed by " + withStats + ")."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("strategy"), QStringLiteral("Allocation strategy (see above)."), QStringLiteral("NAME")});
    p.addOption({QStringLiteral("bits"), QStringLiteral("Target average bit-width in [2, 16]."), QStringLiteral("B")});
    p.addOption({QStringLiteral("bytes"), QStringLiteral("Target whole-model size in bytes (instead of --bits)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("group-size"), QStringLiteral("GPTQ group size, -1 = per output channel (default 128)."),
                 QStringLiteral("G"), QStringLiteral("128")});
    p.addOption({QStringLiteral("asym"), QStringLiteral("Asymmetric quantization in the plan defaults (default sym).")});
    p.addOption({QStringLiteral("method"), QStringLiteral("Quantizer the plan asks for: gptq (default) or rtn."),
                 QStringLiteral("M"), QStringLiteral("gptq")});
    p.addOption({QStringLiteral("seed"), QStringLiteral("Seed of the random strategy (default 0)."), QStringLiteral("S"), QStringLiteral("0")});
    p.addOption({QStringLiteral("k"), QStringLiteral("first-k / block: raise exactly the first/best K MoE blocks."), QStringLiteral("K")});
    p.addOption({QStringLiteral("top-p"), QStringLiteral("outlier: raise the top fraction P of linears."), QStringLiteral("P")});
    p.addOption({QStringLiteral("per-layer"), QStringLiteral("frequency / random / moqa: raise N experts in every MoE layer."), QStringLiteral("N")});
    p.addOption({QStringLiteral("errors"), QStringLiteral("budget: error table cache; read if present (same group "
                                                          "size), else measured and written here."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("cost-model"), QStringLiteral("budget: what the solver minimises: fisher (predicted KL divergence, needs "
                                                              "stats from calibrate --fisher), proxy (activation-weighted RTN error; "
                                                              "--target gguf: ggml encoder error) or auto (fisher when the "
                                                              "stats have it). docs/allocation.md"),
                 QStringLiteral("M"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("target"), QStringLiteral("The runtime the plan is for, recorded in the plan (docs/allocation.md, "
                                                          "Targets): gptq (default; per-linear widths, GPTQ checkpoint bytes), "
                                                          "vllm (vLLM's fused kernels: all routed experts of a MoE layer share one "
                                                          "width, so do q/k/v and an MLP's gate/up; GPTQ bytes) or gguf (one ggml "
                                                          "type per layer and projection of the experts; --bytes and the sizes "
                                                          "mean the GGUF file quantize --format gguf writes, token embedding and "
                                                          "output included; widths become ggml types 2 q2_k, 3 q3_k, 4 q4_k, 8 q8_0; "
                                                          "--bytes needs --strategy budget; docs/export-gguf.md). Every strategy "
                                                          "respects the target's groups."),
                 QStringLiteral("T"), QStringLiteral("gptq")});
    p.addOption({QStringLiteral("token-embd-type"), QStringLiteral("budget --target gguf --bytes: token_embd's ggml type "
                                                                   "(q2_k q3_k q4_k q5_k q6_k q8_0), or auto (the "
                                                                   "solver chooses; needs --cost-model proxy). Default q4_k"),
                 QStringLiteral("T"), QStringLiteral("q4_k")});
    p.addOption({QStringLiteral("output-type"), QStringLiteral("budget --target gguf --bytes: output.weight's ggml type, "
                                                               "or auto. Default q6_k"),
                 QStringLiteral("T"), QStringLiteral("q6_k")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output plan file."), QStringLiteral("FILE")});
}

int planUsage(const std::string& msg)
{
    std::fprintf(stderr, "moewb plan: usage error: %s\n", msg.c_str());
    return ExitUsage;
}

/// The target and the strategy's parameters; 0 or ExitUsage (message printed).
int readAllocNumbers(const QCommandLineParser& p, AllocOptions& opt)
{
    auto usage = planUsage;
    bool ok = true;
    if (p.isSet(QStringLiteral("bits"))) {
        opt.targetBits = p.value(QStringLiteral("bits")).toDouble(&ok);
        if (!ok || opt.targetBits < 2.0 || opt.targetBits > 16.0)
            return usage("--bits must be a number in [2, 16]");
    } else if (p.isSet(QStringLiteral("bytes"))) {
        opt.targetBytes = p.value(QStringLiteral("bytes")).toLongLong(&ok);
        if (!ok || opt.targetBytes <= 0)
            return usage("--bytes must be a positive integer");
    }
    opt.groupSize = p.value(QStringLiteral("group-size")).toLongLong(&ok);
    if (!ok || !isValidGroupSize(opt.groupSize))
        return usage("--group-size must be -1 or a positive multiple of 16");
    opt.sym = !p.isSet(QStringLiteral("asym"));
    opt.method = toStd(p.value(QStringLiteral("method")));
    if (!isValidQuantMethod(opt.method))
        return usage("--method must be gptq or rtn");
    opt.seed = p.value(QStringLiteral("seed")).toULongLong(&ok);
    if (!ok)
        return usage("--seed must be a non-negative integer");
    if (p.isSet(QStringLiteral("k"))) {
        opt.k = p.value(QStringLiteral("k")).toLongLong(&ok);
        if (!ok || opt.k < 0)
            return usage("--k must be a non-negative integer");
    }
    if (p.isSet(QStringLiteral("top-p"))) {
        opt.topP = p.value(QStringLiteral("top-p")).toDouble(&ok);
        if (!ok || opt.topP < 0 || opt.topP > 1)
            return usage("--top-p must be in [0, 1]");
    }
    try {
        opt.costModel = parseCostModel(toStd(p.value(QStringLiteral("cost-model"))));
    } catch (const InputError&) {
        return usage("--cost-model must be auto, fisher or proxy");
    }
    if (p.isSet(QStringLiteral("per-layer"))) {
        opt.perLayer = p.value(QStringLiteral("per-layer")).toLongLong(&ok);
        if (!ok || opt.perLayer < 0)
            return usage("--per-layer must be a non-negative integer");
    }
    return 0;
}

/// A cached error table must hold the cost model this run uses (InputError naming the file otherwise).
void checkCachedCostModel(CostModel cached, CostModel want, const std::string& errorsPath)
{
    if (cached != want)
        throw InputError(errorsPath, std::string("holds the ") + costModelName(cached) + " cost model, this run uses "
                                         + costModelName(want) + "; delete it to measure again");
}

/// Which cost model the budget used; the warning when it fell back to the proxy. `proxyError` names the
/// proxy's error ("RTN", "ggml").
void printCostModel(CostModel used, const CalibStats& stats, const char* proxyError)
{
    if (used == CostModel::Fisher)
        std::printf("cost model: fisher (predicted KL divergence from the Fisher diagonal over %lld calibration "
                    "tokens)\n",
                    (long long)stats.fisher.tokens);
    else if (stats.hasFisher())
        std::printf("cost model: proxy (activation-weighted %s error; --cost-model proxy)\n", proxyError);
    else
        std::fprintf(stderr, "moewb plan: warning: the statistics have no Fisher diagonal (moewb calibrate --fisher); "
                             "budget falls back to the activation-weighted %s error proxy, whose errors are not "
                             "comparable across layers and roles\n",
                     proxyError);
}

/// "budget": the error table from the cache file if there is one, else measured (and cached).
ErrorTable errorTableCached(const std::string& model, const ModelConfig& cfg, const CalibStats& stats,
                           const AllocOptions& opt, const std::string& errorsPath)
{
    ErrorTable table;
    const bool cached = !errorsPath.empty() && QFileInfo::exists(QString::fromStdString(errorsPath));
    if (cached) {
        table = loadErrorTable(errorsPath);
        checkCachedCostModel(table.costModel, effectiveCostModel(opt.costModel, stats), errorsPath);
        std::printf("read quantization errors from %s\n", errorsPath.c_str());
    } else {
        table = measureErrors(model, cfg, stats, opt.groupSize, opt.candidates, terminalProgress(), opt.costModel);
        if (!errorsPath.empty()) {
            saveErrorTable(table, errorsPath);
            std::printf("wrote quantization errors to %s\n", errorsPath.c_str());
        }
    }
    printCostModel(table.costModel, stats, "RTN");
    return table;
}

/// "budget --target gguf --bytes": the ggml-type error table from the cache file if there is one
/// (with the same candidate types), else measured with the ggml encoders (and cached).
GgmlErrorTable ggmlErrorTableCached(const std::string& model, const ModelConfig& cfg, const CalibStats& stats,
                                    const std::string& errorsPath, CostModel costModel)
{
    const std::vector<std::string>& types = defaultGgufCandidateTypes();
    const CostModel want = effectiveCostModel(costModel, stats);
    GgmlErrorTable table;
    if (!errorsPath.empty() && QFileInfo::exists(QString::fromStdString(errorsPath))) {
        table = loadGgmlErrorTable(errorsPath);
        if (table.types != types)
            throw InputError(errorsPath, "measured for other candidate types; delete it to measure again");
        checkCachedCostModel(table.costModel, want, errorsPath);
        std::printf("read ggml quantization errors from %s (measured in %.1f s)\n", errorsPath.c_str(),
                    table.seconds);
    } else {
        table = measureGgmlErrors(model, cfg, stats, types, terminalProgress(), want);
        std::printf("measured ggml quantization errors (%zu linears, %zu types) in %.1f s\n", table.linears.size(),
                    types.size(), table.seconds);
        if (!errorsPath.empty()) {
            saveGgmlErrorTable(table, errorsPath);
            std::printf("wrote ggml quantization errors to %s\n", errorsPath.c_str());
        }
    }
    printCostModel(table.costModel, stats, "ggml");
    return table;
}

AllocResult allocateBudgetCached(const std::string& model, const ModelConfig& cfg, const CalibStats& stats,
                                 const AllocOptions& opt, const std::string& errorsPath)
{
    const ErrorTable table = errorTableCached(model, cfg, stats, opt, errorsPath);
    const auto ts = std::chrono::steady_clock::now();
    AllocResult r = allocateBudget(cfg, table, opt);
    std::printf("solved in %.1f ms\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ts).count());
    return r;
}

void printAllocation(const AllocResult& r, const std::string& out, std::chrono::steady_clock::time_point t0)
{
    for (const std::string& n : r.notes)
        std::printf("%s\n", n.c_str());
    std::printf("budget %lld bytes (%.3f GB)\n", (long long)r.budgetBytes, double(r.budgetBytes) / 1e9);
    printSizeLine(r.size);
    std::map<int64_t, int64_t> h;
    for (const PlanEntry& e : r.entries)
        h[e.bits]++;
    std::printf("linears per width: %s\n", histogram(h).c_str());
    std::printf("wrote %s in %.2f s\n", out.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

/// --target gguf: the budget in GGUF file bytes (budget --bytes) or any allocation's widths as ggml types.
ExitCode planForGguf(const std::string& model, const ModelConfig& cfg, const CalibStats& stats, const AllocOptions& opt,
                const StrategyInfo& strategy, const std::string& errorsPath, const std::string& statsPath,
                const std::string& out, const std::string& tokenEmbdType, const std::string& outputType)
{
    PlanProvenance source;
    source.modelPath = model;
    source.statsPath = statsPath;
    source.architecture = cfg.architecture;
    source.created = utcTimestamp();
    GgufBudgetResult g;
    if (strategy.needsErrorTable && opt.targetBits <= 0) {
        g = ggufBudgetPlan(model, cfg, ggmlErrorTableCached(model, cfg, stats, errorsPath, opt.costModel), opt, opt.targetBytes,
                           tokenEmbdType, outputType, source);
        std::printf("solved in %.1f ms; total weighted error %g\n", g.solveSeconds * 1e3, g.error);
    } else {
        const AllocResult r = strategy.needsErrorTable ? allocateBudgetCached(model, cfg, stats, opt, errorsPath)
                                                       : allocate(cfg, stats, opt);
        g = ggufPlanFromAllocation(model, r, opt, source);
    }
    savePlan(g.plan, out);
    for (const std::string& n : g.notes)
        std::printf("%s\n", n.c_str());
    std::map<std::string, int64_t> h;
    for (const PlanEntry& e : expandPlan(g.plan, cfg))
        h[e.ggmlType.empty() ? std::string("f16") : e.ggmlType]++;
    std::string types;
    for (const auto& [t, n] : h)
        types += (types.empty() ? "" : ", ") + t + " " + std::to_string(n);
    std::printf("GGUF file: %llu bytes (%.2f MB)%s\nlinears per type: %s; token_embd %s, output %s\nwrote %s\n",
                (unsigned long long)g.fileBytes, double(g.fileBytes) / 1e6,
                opt.targetBytes > 0 ? (", target " + std::to_string(opt.targetBytes) + " bytes").c_str() : "",
                types.c_str(), g.plan.ggufTokenEmbd.c_str(), g.plan.ggufOutput.c_str(), out.c_str());
    return ExitOk;
}
} // namespace

int runPlanExportLlama(const QStringList& args); // cmd_llama_bridge.cpp

namespace {

int runPlan(const QStringList& args)
{
    if (args.size() >= 2 && args[1] == QLatin1String("export-llama")) {
        QStringList sub = args.mid(2);
        sub.prepend(QStringLiteral("moewb plan export-llama"));
        return runPlanExportLlama(sub);
    }
    if (args.size() >= 2 && args[1] == QLatin1String("show")) {
        QStringList sub = args.mid(2);
        sub.prepend(QStringLiteral("moewb plan show"));
        return runShow(sub);
    }
    QCommandLineParser p;
    addPlanOptions(p);
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    auto usage = planUsage;
    if (p.positionalArguments().size() != 1)
        return usage("expected exactly one MODEL_DIR (or: moewb plan show PLAN)");
    if (!p.isSet(QStringLiteral("out")))
        return usage("--out FILE is required");
    if (!p.isSet(QStringLiteral("strategy")))
        return usage("--strategy NAME is required");
    AllocOptions opt;
    opt.strategy = toStd(p.value(QStringLiteral("strategy")));
    const StrategyInfo* strategy = findStrategy(opt.strategy);
    if (!strategy)
        return usage("unknown strategy '" + opt.strategy + "' (see --help)");
    if (strategy->fixedMix && (p.isSet(QStringLiteral("bits")) || p.isSet(QStringLiteral("bytes"))))
        return usage("strategy '" + opt.strategy + "' is a fixed llama.cpp mix: it takes no --bits or --bytes");
    if (!strategy->fixedMix && p.isSet(QStringLiteral("bits")) == p.isSet(QStringLiteral("bytes")))
        return usage("give exactly one of --bits B and --bytes N");
    if (const int rc = readAllocNumbers(p, opt))
        return rc;
    if (strategy->needsStats && !p.isSet(QStringLiteral("stats")))
        return usage("strategy '" + opt.strategy + "' needs --stats FILE");
    const std::string target = toStd(p.value(QStringLiteral("target")));
    if (!parsePlanTarget(target, opt.target))
        return usage("--target must be gptq, vllm or gguf, got '" + target + "'");
    if (strategy->fixedMix && opt.target == PlanTarget::Vllm)
        return usage("strategy '" + opt.strategy + "' is a llama.cpp mix: use it with --target gguf or gptq");
    if (target == "gguf" && p.isSet(QStringLiteral("bytes")) && !strategy->needsErrorTable)
        return usage("--target gguf --bytes N needs --strategy budget (other strategies take --bits)");
    const std::string tokenEmbdType = toStd(p.value(QStringLiteral("token-embd-type")));
    const std::string outputType = toStd(p.value(QStringLiteral("output-type")));
    for (const std::string& t : {tokenEmbdType, outputType}) {
        const auto& c = defaultGgufCandidateTypes();
        if (t != "auto" && std::find(c.begin(), c.end(), t) == c.end())
            return usage("--token-embd-type / --output-type must be auto or one of q2_k q3_k q4_k q5_k q6_k q8_0, got '"
                         + t + "'");
    }
    const std::string model = toStd(p.positionalArguments()[0]);
    const std::string statsPath = toStd(p.value(QStringLiteral("stats")));
    const std::string out = toStd(p.value(QStringLiteral("out")));
    const std::string errorsPath = toStd(p.value(QStringLiteral("errors")));

    return guarded([&] {
        const auto t0 = std::chrono::steady_clock::now();
        const ModelConfig cfg = loadConfig(model);
        CalibStats stats;
        if (!statsPath.empty())
            stats = readStats(statsPath);
        if (target == "gguf" && !strategy->fixedMix)
            return planForGguf(model, cfg, stats, opt, *strategy, errorsPath, statsPath, out, tokenEmbdType, outputType);
        const AllocResult r = strategy->needsErrorTable ? allocateBudgetCached(model, cfg, stats, opt, errorsPath)
                                                        : allocate(cfg, stats, opt);
        Plan plan = planFromAllocation(r, opt);
        plan.provenance.modelPath = model;
        plan.provenance.statsPath = statsPath;
        plan.provenance.architecture = cfg.architecture;
        plan.provenance.created = utcTimestamp();
        savePlan(plan, out);
        printAllocation(r, out, t0);
        if (opt.target != PlanTarget::Gptq)
            std::printf("made for %s: %zu groups of linears share one width, %zu of them mixed\n",
                        planTargetRuntime(opt.target), sharedGroupCount(r.entries, opt.target),
                        checkTarget(r.entries, opt.target).size());
        if (strategy->fixedMix)
            std::printf("GGUF file (quantize --format gguf): %llu bytes\n",
                        (unsigned long long)ggufPlannedBytes(model, plan));
        return ExitOk;
    });
}

const CommandRegistrar reg({"plan", "choose per-linear bit-widths under a budget; 'plan show' prints a plan", runPlan});

} // namespace
} // namespace moewb::cli
