// SPDX-License-Identifier: MIT
// moewb calibrate MODEL_DIR --data FILE... --samples N --seq-len L --seed S --out stats.h5 (#6).
#include "cli_common.h"
#include "dist_options.h"

#include "moewb/calib/calibrate.h"
#include "moewb/stats/stats_h5.h"
#include "moewb/model/runtime.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

namespace moewb::cli {
namespace {

int runCalibrate(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Run calibration data through a MoE checkpoint layer by layer and write routing, block-similarity, "
        "activation and weight-outlier statistics to an HDF5 stats file (docs/stats-schema.md). Inputs: UTF-8 "
        "text, JSONL with a \"text\" field (optional \"domain\"), or pre-tokenized ids (a JSON array, or arrays, "
        "of ints). Samples are the first N consecutive windows of L tokens of the concatenated data, or N "
        "random windows with --random-windows."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("data"), QStringLiteral("Calibration file (repeatable)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("domain"), QStringLiteral("Calibration file whose tokens all belong to domain NAME (repeatable)."), QStringLiteral("NAME=FILE")});
    p.addOption({QStringLiteral("samples"), QStringLiteral("Number of windows (default 128)."), QStringLiteral("N"), QStringLiteral("128")});
    p.addOption({QStringLiteral("seq-len"), QStringLiteral("Window length in tokens (default 2048)."), QStringLiteral("L"), QStringLiteral("2048")});
    p.addOption({QStringLiteral("seed"), QStringLiteral("Seed of --random-windows (default 0)."), QStringLiteral("S"), QStringLiteral("0")});
    p.addOption({QStringLiteral("random-windows"), QStringLiteral("Draw windows at random positions with the seed.")});
    p.addOption({QStringLiteral("probe-tokens"), QStringLiteral("Tokens on which every expert runs for the output correlation (default 256, 0: off)."), QStringLiteral("P"), QStringLiteral("256")});
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype: auto (checkpoint's), bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("batch-tokens"), QStringLiteral("Tokens per forward batch (default 8192)."), QStringLiteral("N"), QStringLiteral("8192")});
    p.addOption({QStringLiteral("no-stream"), QStringLiteral("Load all layers at once instead of streaming one layer at a time.")});
    p.addOption({QStringLiteral("no-activations"), QStringLiteral("Skip the per-linear activation statistics.")});
    p.addOption({QStringLiteral("fisher"), QStringLiteral("Also measure the diagonal Fisher at every linear's output (labels drawn from the model with --seed): the loss-aware cost model of plan --strategy budget (docs/allocation.md). Keeps every layer's input hidden states in memory.")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output stats file."), QStringLiteral("FILE")});
    addDistOptions(p);
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb calibrate: usage error: %s\n", msg.c_str());
        return int(ExitUsage);
    };
    if (p.positionalArguments().size() != 1)
        return usage("expected exactly one MODEL_DIR");
    if (!p.isSet(QStringLiteral("out")))
        return usage("--out FILE is required");
    if (!p.isSet(QStringLiteral("data")) && !p.isSet(QStringLiteral("domain")))
        return usage("give calibration data with --data FILE or --domain NAME=FILE");

    CalibrateOptions opt;
    for (const QString& f : p.values(QStringLiteral("data")))
        opt.data.push_back({toStd(f), ""});
    for (const QString& d : p.values(QStringLiteral("domain"))) {
        const int eq = d.indexOf(QLatin1Char('='));
        if (eq <= 0 || eq == d.size() - 1)
            return usage("--domain expects NAME=FILE, got '" + toStd(d) + "'");
        opt.data.push_back({toStd(d.mid(eq + 1)), toStd(d.left(eq))});
    }
    auto intOpt = [&](const char* name, int64_t& out, int64_t min) {
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        if (!ok || out < min) {
            usage(std::string("--") + name + (min > 0 ? " must be a positive integer" : " must be a non-negative integer"));
            return false;
        }
        return true;
    };
    if (!intOpt("samples", opt.samples, 1) || !intOpt("seq-len", opt.seqLen, 1) || !intOpt("seed", opt.seed, 0)
        || !intOpt("probe-tokens", opt.probeTokens, 0) || !intOpt("batch-tokens", opt.maxBatchTokens, 1))
        return ExitUsage;
    opt.randomWindows = p.isSet(QStringLiteral("random-windows"));
    opt.dtype = toStd(p.value(QStringLiteral("dtype")));
    opt.streaming = !p.isSet(QStringLiteral("no-stream"));
    opt.activations = !p.isSet(QStringLiteral("no-activations"));
    opt.fisher = p.isSet(QStringLiteral("fisher"));
    CalibrateOptions::Timings timings;
    opt.timings = &timings;
    const std::string model = toStd(p.positionalArguments()[0]);
    const std::string out = toStd(p.value(QStringLiteral("out")));
    const std::optional<DistCli> distCli = readDistOptions(p, "calibrate");
    if (!distCli)
        return ExitUsage;

    return guarded([&] {
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        // Joined first: the time printed below is that of the calibration, not of waiting for peers.
        const std::unique_ptr<DistContext> dist = connectDist(*distCli);
        const auto t0 = std::chrono::steady_clock::now();
        const ProgressFn progress = terminalProgress();
        opt.dist = dist.get();
        const CalibStats stats = calibrate(model, opt, modelTokenizer(model), progress);
        if (dist && dist->rank() != 0) {
            // Every rank holds the reduced statistics; rank 0 alone writes them. The barrier makes
            // this rank fail too when rank 0 could not write.
            dist->barrier("stats written by rank 0");
            printCommunication(*dist);
            std::printf("rank %d: statistics reduced; rank 0 writes %s\n", dist->rank(), out.c_str());
            return ExitOk;
        }
        // Written only after the whole run succeeded, atomically: a cancel leaves nothing behind.
        writeStats(stats, out, progress);
        if (dist) {
            dist->barrier("stats written by rank 0");
            printCommunication(*dist);
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const StatsProvenance& pv = stats.provenance;
        std::printf("calibrated %s: %lld windows, %lld tokens in %.1f s (%.0f tokens/s)\n", pv.architecture.c_str(),
                    (long long)pv.numSamples, (long long)pv.numTokens, secs, double(pv.numTokens) / std::max(secs, 1e-9));
        if (stats.hasFisher())
            std::printf("Fisher diagonal over %lld tokens (sampled labels, seed %lld): %.1f s, %.2fx the calibration "
                        "pass (%.1f s)\n",
                        (long long)stats.fisher.tokens, (long long)stats.fisher.seed, timings.fisher,
                        timings.fisher / std::max(timings.calibration, 1e-9), timings.calibration);
        if (!pv.domains.empty()) {
            std::printf("domains:");
            for (size_t d = 0; d < pv.domains.size(); ++d)
                std::printf(" %s=%lld", pv.domains[d].c_str(), (long long)pv.domainTokenCounts[d]);
            std::printf("\n");
        }
        const std::vector<std::string> dead = deadExpertNames(model, stats);
        std::printf("experts without calibration tokens: %zu\n", dead.size());
        for (const std::string& n : dead)
            std::printf("  %s\n", n.c_str());
        std::printf("wrote %s\n", out.c_str());
        return ExitOk;
    });
}

const CommandRegistrar reg({"calibrate", "routing, activation and outlier statistics into stats.h5", runCalibrate});

} // namespace
} // namespace moewb::cli
