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
        std::printf("parameters: %lld; training stream %lld tokens, seen %lld; %.1f s (%.0f tokens/s)\n",
                    (long long)r.parameters, (long long)r.trainTokens, (long long)r.tokensSeen, r.seconds,
                    double(r.tokensSeen) / std::max(r.seconds, 1e-9));
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
