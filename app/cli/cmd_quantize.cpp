// SPDX-License-Identifier: MIT
// moewb quantize MODEL --plan plan.json --out DIR [--format fake|gptq|gguf] [--calib FILE | --domain NAME=FILE ...] (#8, #9).
#include "calib_options.h"
#include "cli_common.h"
#include "moewb/stats/stats_h5.h"
#include "dist_options.h"
#include "moewb/workflow/format_constraint.h"
#include "moewb/workflow/quantize_export.h"

#include "moewb/plan/plan.h"
#include "moewb/plan/gptq_dynamic.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/error.h"
#include "moewb/model/runtime.h"
#include "moewb/quant/quantize.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <map>
#include <memory>
#include <tuple>

namespace moewb::cli {
namespace {

void printSummary(const QuantizeReport& r)
{
    std::map<std::tuple<std::string, int64_t>, int64_t> byMethodBits;
    for (const LinearQuantResult& l : r.linears)
        byMethodBits[{l.method, l.plan.bits}] += 1;
    std::printf("%-6s %5s %8s\n", "method", "bits", "linears");
    for (const auto& [k, n] : byMethodBits)
        std::printf("%-6s %5lld %8lld\n", std::get<0>(k).c_str(), (long long)std::get<1>(k), (long long)n);
    if (!r.experts.empty())
        std::printf("expert coverage (--balance-experts %s): %zu routed experts, %lld below %lld routed tokens, "
                    "%lld below after balancing\n",
                    expertBalanceName(r.balanceExperts), r.experts.size(), (long long)expertsBelowMinimum(r, false),
                    (long long)r.minExpertTokens, (long long)expertsBelowMinimum(r, true));
    std::printf("experts that fell back to RTN (< %lld %s tokens): %zu\n", (long long)r.minExpertTokens,
                r.balanceExperts == ExpertBalance::Off ? "routed" : "balanced",
                r.fallbackExperts.size());
    for (const FallbackExpert& f : r.fallbackExperts)
        std::printf("  layer %lld expert %lld: %lld tokens (%s)\n", (long long)f.layer, (long long)f.expert,
                    (long long)f.tokens, f.reason.c_str());
    if (r.meanRelError >= 0)
        std::printf("mean relative output error tr(dW H dW^T)/tr(W H W^T): %.6g\n", r.meanRelError);
    else
        std::printf("mean relative output error: n/a (no calibration data)\n");
    std::printf("calibration: %lld sequences, %lld tokens; time %.1f s\n", (long long)r.calibSequences,
                (long long)r.calibTokens, r.seconds);
}

/// "4GB", "500MB", "2GiB", "1.5G", "123" (bytes); decimal units as transformers' max_shard_size.
std::optional<int64_t> parseByteSize(const std::string& text)
{
    static const std::map<std::string, double> units = {
        {"", 1},          {"B", 1},           {"KB", 1e3},         {"MB", 1e6},          {"GB", 1e9},
        {"TB", 1e12},     {"K", 1e3},         {"M", 1e6},          {"G", 1e9},           {"T", 1e12},
        {"KIB", 1024.0},  {"MIB", 1048576.0}, {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
    size_t i = 0;
    while (i < text.size() && (std::isdigit((unsigned char)text[i]) || text[i] == '.'))
        ++i;
    if (i == 0)
        return std::nullopt;
    std::string unit = text.substr(i);
    for (char& c : unit)
        c = char(std::toupper((unsigned char)c));
    auto it = units.find(unit);
    char* end = nullptr;
    const std::string num = text.substr(0, i);
    const double v = std::strtod(num.c_str(), &end);
    if (it == units.end() || end != num.c_str() + num.size() || !(v > 0))
        return std::nullopt;
    const double bytes = v * it->second;
    if (bytes < 1 || bytes > 9e18)
        return std::nullopt;
    return int64_t(bytes);
}

void addQuantizeOptions(QCommandLineParser& p)
{
    p.setApplicationDescription(QStringLiteral(
        "Apply a quantization plan (docs/plan-format.md) to a model, layer by layer: GPTQ or RTN per linear as "
        "the plan says, GPTQ Hessians from calibration data run through the already-quantized layers, true-"
        "sequential inside each block, each routed expert's Hessian from the tokens routed to it. --format fake "
        "writes a Hugging Face model directory with the dequantized weights, the plan (moewb_plan.json) and a "
        "report (moewb_quant_report.json); --format gptq writes a real GPTQ checkpoint (docs/export-gptq.md). "
        "Calibration inputs are read as by 'moewb calibrate'."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("plan"), QStringLiteral("Plan file (moewb plan)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output directory (must not exist unless --force)."), QStringLiteral("DIR")});
    p.addOption({QStringLiteral("format"), QStringLiteral("Output format: fake (dequantized weights in HF layout) or gptq (packed int32 qweight/qzeros, fp16 "
                                                   "scales, g_idx per quantized linear; quantization_config with the plan as GPTQModel "
                                                   "'dynamic' overrides; for transformers+optimum, GPTQModel, vLLM) or gguf (one GGUF v3 file for llama.cpp: "
                                                   "--out is then FILE.gguf, the report goes to FILE.gguf.moewb_report.json; docs/export-gguf.md)."), QStringLiteral("F"), QStringLiteral("fake")});
    p.addOption({QStringLiteral("max-shard-size"), QStringLiteral("gptq: largest safetensors shard, e.g. 4GB, 500MB, 2GiB or bytes (default 4GB); "
                                                                  "larger checkpoints get model.safetensors.index.json."), QStringLiteral("SIZE"), QStringLiteral("4GB")});
    p.addOption({QStringLiteral("checkpoint-format"), QStringLiteral("gptq: zero-point storage, gptq (v1, every loader; default) or gptq_v2 "
                                                                     "(GPTQModel only; exact for asym zero points of 0)."), QStringLiteral("F"), QStringLiteral("gptq")});
    p.addOption({QStringLiteral("gguf-type"), QStringLiteral("gguf: type of embeddings, lm_head and 16-bit linears: f16 (default), bf16 or f32 "
                                                             "(norms, biases and routers are always f32)."), QStringLiteral("T"), QStringLiteral("f16")});
    p.addOption({QStringLiteral("stats"), QStringLiteral("Calibration statistics (moewb calibrate): each linear's act_sq_mean weights "
                                                         "the ggml encoders of linears with a ggml_type (llama.cpp's importance matrix, per "
                                                         "expert; docs/export-gguf.md) and Wanda pruning."), QStringLiteral("FILE")});
    addCalibOptions(p, 128, 2048);
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype of the calibration forward: auto, bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("batch-tokens"), QStringLiteral("Tokens per forward batch (default 8192)."), QStringLiteral("N"), QStringLiteral("8192")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace DIR if it exists.")});
    addDistOptions(p);
}

/// Everything the command line says, checked.
struct QuantizeArgs {
    std::string model, planPath, statsPath;
    ExportTarget target;
    CalibCliOptions calib;
    QuantizeOptions opt;
    DistCli dist;
};

int usageError(const std::string& msg)
{
    std::fprintf(stderr, "moewb quantize: usage error: %s\n", msg.c_str());
    return ExitUsage;
}

/// The --format and its options; 0 or ExitUsage (message printed).
int readTarget(const QCommandLineParser& p, ExportTarget& t)
{
    t.path = toStd(p.value(QStringLiteral("out")));
    t.force = p.isSet(QStringLiteral("force"));
    t.format = toStd(p.value(QStringLiteral("format")));
    t.gguf.unquantizedType = toStd(p.value(QStringLiteral("gguf-type")));
    if (t.gguf.unquantizedType != "f16" && t.gguf.unquantizedType != "bf16" && t.gguf.unquantizedType != "f32")
        return usageError("--gguf-type must be f16, bf16 or f32, got '" + t.gguf.unquantizedType + "'");
    if (!isExportFormat(t.format))
        return usageError("--format must be fake, gptq or gguf, got '" + t.format + "'");
    t.gptq.checkpointFormat = toStd(p.value(QStringLiteral("checkpoint-format")));
    if (t.gptq.checkpointFormat != "gptq" && t.gptq.checkpointFormat != "gptq_v2")
        return usageError("--checkpoint-format must be gptq or gptq_v2, got '" + t.gptq.checkpointFormat + "'");
    const std::optional<int64_t> shard = parseByteSize(toStd(p.value(QStringLiteral("max-shard-size"))));
    if (!shard)
        return usageError("--max-shard-size expects a positive size such as 4GB, 500MB, 2GiB or a byte count, got '"
                          + toStd(p.value(QStringLiteral("max-shard-size"))) + "'");
    t.gptq.maxShardBytes = *shard;
    return 0;
}

/// 0 or ExitUsage (message printed).
int readQuantizeArgs(const QCommandLineParser& p, QuantizeArgs& a)
{
    if (p.positionalArguments().size() != 1)
        return usageError("expected exactly one MODEL_DIR");
    if (!p.isSet(QStringLiteral("plan")))
        return usageError("--plan FILE is required");
    if (!p.isSet(QStringLiteral("out")))
        return usageError("--out DIR is required");
    if (const int rc = readTarget(p, a.target))
        return rc;
    const std::optional<CalibCliOptions> calib = readCalibOptions(p, "quantize");
    if (!calib)
        return ExitUsage;
    a.calib = *calib;
    a.opt.damp = calib->damp;
    a.opt.minExpertTokens = calib->minExpertTokens;
    a.opt.balanceExperts = calib->balanceExperts;
    bool ok = false;
    a.opt.maxBatchTokens = p.value(QStringLiteral("batch-tokens")).toLongLong(&ok);
    if (!ok || a.opt.maxBatchTokens < 1)
        return usageError("--batch-tokens must be a positive integer");
    a.opt.dtype = toStd(p.value(QStringLiteral("dtype")));
    a.model = toStd(p.positionalArguments()[0]);
    a.planPath = a.opt.planPath = toStd(p.value(QStringLiteral("plan")));
    a.statsPath = toStd(p.value(QStringLiteral("stats")));
    const std::optional<DistCli> dist = readDistOptions(p, "quantize");
    if (!dist)
        return ExitUsage;
    a.dist = *dist;
    return 0;
}

void printTrimmed(const QuantizeSource& source)
{
    if (!source.trimmed())
        return;
    const TrimReport& t = source.trimReport();
    std::fprintf(stderr, "moewb: trimmed first as the plan says: %lld -> %lld layers, %lld -> %lld experts per MoE "
                         "layer, %lld -> %lld parameters\n",
                 (long long)t.layersBefore, (long long)t.layersAfter, (long long)t.expertsBefore,
                 (long long)t.expertsAfter, (long long)t.paramsBefore, (long long)t.paramsAfter);
    for (const std::string& n : t.notes)
        std::fprintf(stderr, "moewb: note: %s\n", n.c_str());
}

void printWritten(const QuantizeExportResult& r, const std::string& out)
{
    printSummary(r.report);
    if (r.format == "gguf") {
        const GgufExportResult& g = r.gguf;
        for (const std::string& n : g.notes)
            std::fprintf(stderr, "moewb: note: %s\n", n.c_str());
        std::printf("wrote %s (GGUF v3, %s, %lld blocks from the quantizer's grid, %lld re-quantized, %lld encoded by "
                    "ggml's method%s, %llu bytes = %.2f MB on disk) and %s.moewb_report.json\n",
                    out.c_str(), g.fileType.c_str(), (long long)g.gridBlocks, (long long)g.requantBlocks,
                    (long long)g.encodedBlocks, g.importance ? " with importance" : "",
                    (unsigned long long)g.fileBytes, double(g.fileBytes) / 1e6, out.c_str());
    } else if (r.format == "gptq") {
        const GptqExportResult& g = r.gptq;
        if (g.wrappedZeros > 0)
            std::fprintf(stderr,
                         "moewb: warning: %lld asymmetric groups have zero point 0, stored as 2^bits-1 in the v1 "
                         "(gptq) format: moewb and AutoGPTQ's torch path read them back exactly, exllama/Marlin "
                         "kernels do not (use --checkpoint-format gptq_v2 for GPTQModel, or sym)\n",
                         (long long)g.wrappedZeros);
        std::printf("wrote %s (GPTQ %s, %lld quantized linears, %.2f MB on disk in %lld shard%s)\n", out.c_str(),
                    g.checkpointFormat.c_str(), (long long)g.quantizedLinears, double(g.bytesOnDisk) / 1e6,
                    (long long)g.shards, g.shards == 1 ? "" : "s");
    } else {
        std::printf("wrote %s\n", out.c_str());
    }
}

int runQuantize(const QStringList& args)
{
    QCommandLineParser p;
    addQuantizeOptions(p);
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    QuantizeArgs a;
    if (const int rc = readQuantizeArgs(p, a))
        return rc;

    return guarded([&] {
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        checkExportTarget(a.target, a.model);
        // Validates the plan before calibration data is read; trims first when the plan drops
        // experts, MoE layers or blocks.
        const QuantizeSource source(a.model, loadPlan(a.planPath), a.planPath, terminalProgress());
        printTrimmed(source);
        if (!a.statsPath.empty())
            for (LinearStats& l : readStats(a.statsPath).linears)
                if (!l.actSqMean.empty())
                    a.opt.actSqMean[l.name] = std::move(l.actSqMean);
        const ModelConfig cfg = loadConfig(source.modelDir());
        checkPlanForFormat(source.plan(), cfg, a.target.format, a.planPath);
        if (const std::string w = formatConstraintWarning(source.plan(), cfg, a.target.format); !w.empty())
            std::fprintf(stderr, "moewb: warning: %s\n", w.c_str());
        const CalibSequences calib = loadCalibSequences(a.calib, a.model);
        const std::unique_ptr<DistContext> dist = connectDist(a.dist);
        a.opt.dist = dist.get();
        // With --distributed every rank runs the pass, rank 0 alone writes, all meet at a barrier.
        const QuantizeExportResult r = quantizeAndExport(source, calib, a.opt, a.target, terminalProgress());
        if (dist)
            printCommunication(*dist);
        if (!r.wrote) {
            std::printf("rank %d: quantized %zu linears with the group; rank 0 writes %s\n", dist->rank(),
                        r.report.linears.size(), a.target.path.c_str());
            return ExitOk;
        }
        printWritten(r, a.target.path);
        return ExitOk;
    });
}

const CommandRegistrar reg({"quantize", "apply a plan (GPTQ/RTN) and write a fake-quantized, GPTQ or GGUF model", runQuantize});

} // namespace
} // namespace moewb::cli
