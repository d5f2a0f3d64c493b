// SPDX-License-Identifier: MIT
// moewb eval MODEL_DIR --ppl FILE: perplexity over a text file with strided windows.
#include "cli_common.h"

#include "moewb/eval/perplexity.h"
#include "moewb/model/runtime.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace moewb::cli {
namespace {

int runEval(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Evaluate a model. --ppl FILE: perplexity of a UTF-8 text file, tokenized with the model's "
        "tokenizer.json, over windows of --ctx tokens advancing by --stride; every token after the first is "
        "scored exactly once. Prints 'perplexity: VALUE'."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("MODEL_DIR"), QStringLiteral("Hugging Face model directory"));
    p.addOption({QStringLiteral("ppl"), QStringLiteral("Text file to measure perplexity on."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("ctx"), QStringLiteral("Window length in tokens (default: max_position_embeddings, at most 2048)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("stride"), QStringLiteral("Window stride in tokens (default: ctx)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("dtype"), QStringLiteral("Compute dtype: auto (checkpoint's), bf16 or f32."), QStringLiteral("T"), QStringLiteral("auto")});
    p.addOption({QStringLiteral("batch-tokens"), QStringLiteral("Tokens per forward batch (default 8192)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("no-stream"), QStringLiteral("Load all layers at once instead of streaming one layer at a time.")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print the result as JSON.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1 || !p.isSet(QStringLiteral("ppl"))) {
        std::fprintf(stderr, "moewb eval: usage error: expected MODEL_DIR and --ppl FILE\n\n%s", qPrintable(p.helpText()));
        return ExitUsage;
    }
    auto intOpt = [&](const char* name, int64_t& out) {
        if (!p.isSet(QLatin1String(name)))
            return true;
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        if (!ok || out <= 0) {
            std::fprintf(stderr, "moewb eval: usage error: --%s must be a positive integer\n", name);
            return false;
        }
        return true;
    };
    PerplexityOptions opt;
    opt.dtype = toStd(p.value(QStringLiteral("dtype")));
    opt.streaming = !p.isSet(QStringLiteral("no-stream"));
    if (!intOpt("ctx", opt.ctx) || !intOpt("stride", opt.stride) || !intOpt("batch-tokens", opt.maxBatchTokens))
        return ExitUsage;
    return guarded([&] {
        const RuntimeInfo rt = initRuntime(true);
        if (rt.slowBlas)
            std::fprintf(stderr, "moewb: %s\n", rt.warning.c_str());
        const std::string model = toStd(p.positionalArguments()[0]);
        const PerplexityResult r = evaluatePerplexityFile(model, toStd(p.value(QStringLiteral("ppl"))), opt,
                                                          terminalProgress());
        if (p.isSet(QStringLiteral("json"))) {
            nlohmann::json j = {{"perplexity", r.perplexity}, {"nll_sum", r.nllSum},
                                {"scored_tokens", r.scoredTokens}, {"tokens", r.totalTokens},
                                {"windows", r.windows}, {"ctx", r.ctx}, {"stride", r.stride},
                                {"seconds", r.seconds}};
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("tokens: %lld (scored %lld) in %lld windows of %lld, stride %lld; %.1f s (%.0f tokens/s)\n",
                        (long long)r.totalTokens, (long long)r.scoredTokens, (long long)r.windows, (long long)r.ctx,
                        (long long)r.stride, r.seconds, double(r.totalTokens) / std::max(r.seconds, 1e-9));
            std::printf("perplexity: %.4f\n", r.perplexity);
        }
        return ExitOk;
    });
}

const CommandRegistrar reg({"eval", "perplexity of a model on a text file (--ppl)", runEval});

} // namespace
} // namespace moewb::cli
