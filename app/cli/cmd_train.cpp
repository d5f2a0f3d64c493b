// SPDX-License-Identifier: MIT
// moewb train-demo: train a small MoE model from scratch (how datasets/models/* are made).
#include "cli_common.h"

#include "moewb/model/runtime.h"
#include "moewb/train/train.h"

#include <cmath>
#include <cstdio>

namespace moewb::cli {
namespace {

int runTrain(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Train a small language model from scratch with the inference forward under autograd: next-token "
        "cross-entropy plus the router load-balancing loss, AdamW, linear warm-up and cosine decay. "
        "Writes a Hugging Face directory with bf16 weights. Deterministic for a seed and thread count."));
    p.addHelpOption();
    p.addOption({QStringLiteral("config"), QStringLiteral("HF config.json of the architecture to train."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("tokenizer"), QStringLiteral("tokenizer.json (copied into the output)."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("data"), QStringLiteral("Training data: JSONL with a \"text\" field, or plain text. Repeatable."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("eval"), QStringLiteral("Held-out JSONL/text: its loss is reported at the end."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Output model directory."), QStringLiteral("DIR")});
    p.addOption({QStringLiteral("steps"), QStringLiteral("Optimizer steps (default 1000)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("batch"), QStringLiteral("Sequences per step (default 8)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("seq-len"), QStringLiteral("Tokens per sequence (default 256)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("lr"), QStringLiteral("Peak learning rate (default 3e-3)."), QStringLiteral("X")});
    p.addOption({QStringLiteral("min-lr-ratio"), QStringLiteral("Final learning rate as a fraction of the peak (default 0.1)."), QStringLiteral("X")});
    p.addOption({QStringLiteral("warmup"), QStringLiteral("Warm-up steps (default 50)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("weight-decay"), QStringLiteral("AdamW decoupled weight decay (default 0.1)."), QStringLiteral("X")});
    p.addOption({QStringLiteral("aux-coef"), QStringLiteral("Router load-balancing loss coefficient (default 0.01)."), QStringLiteral("X")});
    p.addOption({QStringLiteral("seed"), QStringLiteral("Random seed (default 0)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("log-every"), QStringLiteral("Print the mean loss every N steps (default 25)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("eval-tokens"), QStringLiteral("Held-out tokens to score at the end (default 65536, 0 = all)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace an existing output directory.")});
    p.addOption({QStringLiteral("snapshot-every"), QStringLiteral("Also write the output directory every N steps (a usable model if the run is stopped early)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Intra-op threads, OpenBLAS's too (default: OMP_NUM_THREADS or all cores). Results are deterministic for a thread count."), QStringLiteral("N")});
    p.addOption({QStringLiteral("workers"), QStringLiteral("Data-parallel workers, one thread each, each running batch/N sequences (default 1). Robust on a busy machine; deterministic for N."), QStringLiteral("N")});
    p.addOption({QStringLiteral("precision"), QStringLiteral("Matmul dtype: auto (bf16 where the CPU has native bf16, AVX512-BF16 or AMX; else f32), f32 or bf16 (default auto)."), QStringLiteral("P")});
    p.addOption({QStringLiteral("prefetch"), QStringLiteral("Batches a background thread prepares ahead of the optimizer (default 2, 0 = none)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("state"), QStringLiteral("Directory for training-state snapshots (default OUT.state)."), QStringLiteral("DIR")});
    p.addOption({QStringLiteral("resume"), QStringLiteral("Continue from a training-state snapshot (a step-* directory, or a state directory: its newest); the other options must match the original run."), QStringLiteral("DIR")});
    p.addOption({QStringLiteral("stop-at-step"), QStringLiteral("Stop after N steps with a snapshot (resume later with --resume)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("max-seconds"), QStringLiteral("Stop with a snapshot at the first step that ends after S seconds of this session."), QStringLiteral("S")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    for (const char* required : {"config", "tokenizer", "data", "out"})
        if (!p.isSet(QLatin1String(required))) {
            std::fprintf(stderr, "moewb train-demo: usage error: --%s is required\n\n%s", required, qPrintable(p.helpText()));
            return ExitUsage;
        }
    TrainOptions opt;
    opt.configPath = toStd(p.value(QStringLiteral("config")));
    opt.tokenizerPath = toStd(p.value(QStringLiteral("tokenizer")));
    for (const QString& f : p.values(QStringLiteral("data")))
        opt.trainFiles.push_back(toStd(f));
    opt.evalFile = toStd(p.value(QStringLiteral("eval")));
    opt.outDir = toStd(p.value(QStringLiteral("out")));
    opt.force = p.isSet(QStringLiteral("force"));
    bool okAll = true;
    auto intOpt = [&](const char* name, int64_t& out, bool allowZero = false) {
        if (!p.isSet(QLatin1String(name)))
            return;
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        if (!ok || out < 0 || (!allowZero && out == 0)) {
            std::fprintf(stderr, "moewb train-demo: usage error: --%s must be a %s integer\n", name,
                         allowZero ? "non-negative" : "positive");
            okAll = false;
        }
    };
    auto realOpt = [&](const char* name, double& out) {
        if (!p.isSet(QLatin1String(name)))
            return;
        bool ok = false;
        out = p.value(QLatin1String(name)).toDouble(&ok);
        if (!ok || !std::isfinite(out) || out < 0) {
            std::fprintf(stderr, "moewb train-demo: usage error: --%s must be a non-negative number\n", name);
            okAll = false;
        }
    };
    opt.stateDir = toStd(p.value(QStringLiteral("state")));
    opt.resumeDir = toStd(p.value(QStringLiteral("resume")));
    if (p.isSet(QStringLiteral("precision"))) {
        const QString v = p.value(QStringLiteral("precision"));
        if (v == QLatin1String("auto"))
            opt.precision = TrainPrecision::Auto;
        else if (v == QLatin1String("f32"))
            opt.precision = TrainPrecision::F32;
        else if (v == QLatin1String("bf16"))
            opt.precision = TrainPrecision::Bf16;
        else {
            std::fprintf(stderr, "moewb train-demo: usage error: --precision must be auto, f32 or bf16\n");
            okAll = false;
        }
    }
    int64_t threads = 0;
    intOpt("threads", threads);
    opt.threads = int(threads);
    intOpt("prefetch", opt.prefetch, true);
    intOpt("workers", opt.workers);
    intOpt("stop-at-step", opt.stopAtStep);
    realOpt("max-seconds", opt.maxSeconds);
    int64_t seed = 0;
    intOpt("steps", opt.steps);
    intOpt("batch", opt.batch);
    intOpt("seq-len", opt.seqLen);
    intOpt("warmup", opt.warmup, true);
    intOpt("seed", seed, true);
    intOpt("log-every", opt.logEvery);
    intOpt("eval-tokens", opt.evalTokens, true);
    intOpt("snapshot-every", opt.snapshotEvery, true);
    realOpt("lr", opt.lr);
    realOpt("min-lr-ratio", opt.minLrRatio);
    realOpt("weight-decay", opt.weightDecay);
    realOpt("aux-coef", opt.auxCoef);
    if (!okAll)
        return ExitUsage;
    opt.seed = uint64_t(seed);
    return guarded([&] {
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        const TrainResult r = trainModel(opt, terminalProgress(), [](const TrainLogEntry& e) {
            std::printf("step %6lld  loss %.4f  ppl %9.2f  aux %.4f  lr %.2e  |g| %.3f  %7.1f s\n", (long long)e.step,
                        e.loss, std::exp(e.loss), e.auxLoss, e.lr, e.gradNorm, e.seconds);
            std::fflush(stdout);
        });
        const double sessionTokens = double(r.stepsThisSession * opt.batch * opt.seqLen);
        std::printf("parameters: %lld; training stream %lld tokens, seen %lld; %.1f s; %d threads x %lld workers, %s matmuls, "
                    "%.0f tokens/s in steps this session\n",
                    (long long)r.parameters, (long long)r.trainTokens, (long long)r.tokensSeen, r.seconds, r.threads,
                    (long long)r.workers, r.computeDtype.c_str(), sessionTokens / std::max(r.stepSeconds, 1e-9));
        if (r.stopped) {
            std::printf("stopped after step %lld of %lld; state in %s (continue with the same options and --resume %s)\n",
                        (long long)r.stepsDone, (long long)opt.steps, r.statePath.c_str(), r.statePath.c_str());
            std::printf("wrote %s (snapshot)\n", opt.outDir.c_str());
            return ExitOk;
        }
        if (r.evalTokensScored > 0)
            std::printf("held-out loss %.4f (perplexity %.2f) over %lld tokens\n", r.evalLoss, std::exp(r.evalLoss),
                        (long long)r.evalTokensScored);
        std::printf("wrote %s\n", opt.outDir.c_str());
        return ExitOk;
    });
}

const CommandRegistrar reg({"train-demo", "train a small MoE model from scratch (the demo models)", runTrain});

} // namespace
} // namespace moewb::cli
