// SPDX-License-Identifier: MIT
// moewb quantize MODEL --plan plan.json --out DIR [--format fake|gptq|gguf] [--calib FILE | --domain NAME=FILE ...] (#8, #9).
#include "calib_options.h"
#include "cli_common.h"
#include "dist_options.h"
#include "moewb/workflow/quantize_source.h"

#include "moewb/plan/plan.h"
#include "moewb/plan/gptq_dynamic.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/error.h"
#include "moewb/export/gguf.h"
#include "moewb/export/gptq.h"
#include "moewb/model/runtime.h"
#include "moewb/quant/quantize.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <filesystem>
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
    std::printf("experts that fell back to RTN (< %lld routed tokens): %zu\n", (long long)r.minExpertTokens,
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

int runQuantize(const QStringList& args)
{
    QCommandLineParser p;
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
    addCalibOptions(p, 128, 2048);
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype of the calibration forward: auto, bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("batch-tokens"), QStringLiteral("Tokens per forward batch (default 8192)."), QStringLiteral("N"), QStringLiteral("8192")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace DIR if it exists.")});
    addDistOptions(p);
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb quantize: usage error: %s\n", msg.c_str());
        return int(ExitUsage);
    };
    if (p.positionalArguments().size() != 1)
        return usage("expected exactly one MODEL_DIR");
    if (!p.isSet(QStringLiteral("plan")))
        return usage("--plan FILE is required");
    if (!p.isSet(QStringLiteral("out")))
        return usage("--out DIR is required");
    const std::string format = toStd(p.value(QStringLiteral("format")));
    GgufExportOptions ggufOpt;
    ggufOpt.unquantizedType = toStd(p.value(QStringLiteral("gguf-type")));
    if (ggufOpt.unquantizedType != "f16" && ggufOpt.unquantizedType != "bf16" && ggufOpt.unquantizedType != "f32")
        return usage("--gguf-type must be f16, bf16 or f32, got '" + ggufOpt.unquantizedType + "'");
    if (format != "fake" && format != "gptq" && format != "gguf")
        return usage("--format must be fake, gptq or gguf, got '" + format + "'");
    GptqExportOptions gopt;
    gopt.checkpointFormat = toStd(p.value(QStringLiteral("checkpoint-format")));
    if (gopt.checkpointFormat != "gptq" && gopt.checkpointFormat != "gptq_v2")
        return usage("--checkpoint-format must be gptq or gptq_v2, got '" + gopt.checkpointFormat + "'");
    {
        const std::optional<int64_t> shard = parseByteSize(toStd(p.value(QStringLiteral("max-shard-size"))));
        if (!shard)
            return usage("--max-shard-size expects a positive size such as 4GB, 500MB, 2GiB or a byte count, got '"
                         + toStd(p.value(QStringLiteral("max-shard-size"))) + "'");
        gopt.maxShardBytes = *shard;
    }

    const std::optional<CalibCliOptions> calib = readCalibOptions(p, "quantize");
    if (!calib)
        return ExitUsage;
    QuantizeOptions opt;
    opt.damp = calib->damp;
    opt.minExpertTokens = calib->minExpertTokens;
    bool ok = false;
    opt.maxBatchTokens = p.value(QStringLiteral("batch-tokens")).toLongLong(&ok);
    if (!ok || opt.maxBatchTokens < 1)
        return usage("--batch-tokens must be a positive integer");
    opt.dtype = toStd(p.value(QStringLiteral("dtype")));
    const std::string model = toStd(p.positionalArguments()[0]);
    const std::string planPath = toStd(p.value(QStringLiteral("plan")));
    const std::string out = toStd(p.value(QStringLiteral("out")));
    opt.planPath = planPath;
    const std::optional<DistCli> distCli = readDistOptions(p, "quantize");
    if (!distCli)
        return ExitUsage;

    return guarded([&] {
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        {
            std::error_code ec;
            if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(out, model, ec))
                throw InputError(out, "is the input model directory; choose another --out");
        }
        // Validates the plan before calibration data is read; trims first when the plan drops
        // experts, MoE layers or blocks.
        const QuantizeSource source(model, loadPlan(planPath), planPath, terminalProgress());
        const Plan& plan = source.plan();
        const std::string& srcModel = source.modelDir();
        if (source.trimmed()) {
            const TrimReport& t = source.trimReport();
            std::fprintf(stderr, "moewb: trimmed first as the plan says: %lld -> %lld layers, %lld -> %lld experts per MoE "
                                 "layer, %lld -> %lld parameters\n",
                         (long long)t.layersBefore, (long long)t.layersAfter, (long long)t.expertsBefore,
                         (long long)t.expertsAfter, (long long)t.paramsBefore, (long long)t.paramsAfter);
            for (const std::string& n : t.notes)
                std::fprintf(stderr, "moewb: note: %s\n", n.c_str());
        }
        if (format != "fake") // pruned 16-bit linears (#14) exist only as dense weights with zeros
            for (const PlanEntry& e : expandPlan(plan, loadConfig(srcModel)))
                if (e.sparsity > 0 && e.bits >= 16 && !e.dropped)
                    throw InputError(planPath, e.name + " is pruned but left at 16 bits, which --format " + format
                                                   + " cannot store from the pass; quantize it too or use --format fake");
        const CalibSequences cs = loadCalibSequences(*calib, model);
        const std::vector<std::vector<int32_t>>& seqs = cs.sequences;
        const std::string& description = cs.description;
        const std::unique_ptr<DistContext> dist = connectDist(*distCli);
        opt.dist = dist.get();
        if (dist && dist->rank() != 0) {
            // The same layer loop and collectives as rank 0, with a sink that discards: rank 0
            // alone writes. The barrier makes this rank fail too when rank 0 could not write.
            const QuantizeReport r = quantizeModel(srcModel, plan, seqs, opt, [](const QuantizedWeight&) {},
                                                   terminalProgress());
            dist->barrier("output written by rank 0");
            printCommunication(*dist);
            std::printf("rank %d: quantized %zu linears with the group; rank 0 writes %s\n", dist->rank(),
                        r.linears.size(), out.c_str());
            return ExitOk;
        }
        // Rank 0 (or a single process) writes; with --distributed the others wait at this barrier.
        auto written = [&] {
            if (dist) {
                dist->barrier("output written by rank 0");
                printCommunication(*dist);
            }
        };
        if (format == "gguf") {
            const GgufExportResult g = quantizeToGguf(srcModel, plan, seqs, opt, out, p.isSet(QStringLiteral("force")),
                                                      description, terminalProgress(), ggufOpt);
            written();
            printSummary(g.quant);
            for (const std::string& n : g.notes)
                std::fprintf(stderr, "moewb: note: %s\n", n.c_str());
            std::printf("wrote %s (GGUF v3, %s, %lld blocks from the quantizer's grid, %lld re-quantized, %.2f MB on "
                        "disk) and %s.moewb_report.json\n",
                        out.c_str(), g.fileType.c_str(), (long long)g.gridBlocks, (long long)g.requantBlocks,
                        double(g.fileBytes) / 1e6, out.c_str());
            return ExitOk;
        }
        if (format == "gptq") {
            const GptqExportResult g = quantizeToGptqDir(srcModel, plan, seqs, opt, out, p.isSet(QStringLiteral("force")),
                                                         description, terminalProgress(), gopt);
            written();
            printSummary(g.report);
            if (g.wrappedZeros > 0)
                std::fprintf(stderr,
                             "moewb: warning: %lld asymmetric groups have zero point 0, stored as 2^bits-1 in the v1 "
                             "(gptq) format: moewb and AutoGPTQ's torch path read them back exactly, exllama/Marlin "
                             "kernels do not (use --checkpoint-format gptq_v2 for GPTQModel, or sym)\n",
                             (long long)g.wrappedZeros);
            std::printf("wrote %s (GPTQ %s, %lld quantized linears, %.2f MB on disk in %lld shard%s)\n", out.c_str(),
                        g.checkpointFormat.c_str(), (long long)g.quantizedLinears, double(g.bytesOnDisk) / 1e6,
                        (long long)g.shards, g.shards == 1 ? "" : "s");
            return ExitOk;
        }
        const QuantizeReport r = quantizeToFakeDir(srcModel, plan, seqs, opt, out, p.isSet(QStringLiteral("force")),
                                                   description, terminalProgress());
        written();
        printSummary(r);
        std::printf("wrote %s\n", out.c_str());
        return ExitOk;
    });
}

const CommandRegistrar reg({"quantize", "apply a plan (GPTQ/RTN) and write a fake-quantized, GPTQ or GGUF model", runQuantize});

} // namespace
} // namespace moewb::cli
