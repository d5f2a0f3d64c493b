// SPDX-License-Identifier: MIT
#include "calib_options.h"

#include "cli_common.h"
#include "moewb/core/error.h"

#include <cstdio>

namespace moewb::cli {

void addCalibOptions(QCommandLineParser& p, int64_t defaultSamples, int64_t defaultSeqLen)
{
    p.addOption({{QStringLiteral("calib"), QStringLiteral("data")},
                 QStringLiteral("Calibration file (repeatable): text, JSONL with \"text\" (and \"domain\"), or token ids."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("domain"), QStringLiteral("Calibration file labelled with domain NAME (repeatable)."),
                 QStringLiteral("NAME=FILE")});
    p.addOption({QStringLiteral("samples"),
                 QStringLiteral("Calibration windows (default %1).").arg(defaultSamples), QStringLiteral("N"),
                 QString::number(defaultSamples)});
    p.addOption({QStringLiteral("seq-len"),
                 QStringLiteral("Calibration window length in tokens (default %1).").arg(defaultSeqLen),
                 QStringLiteral("T"), QString::number(defaultSeqLen)});
    p.addOption({QStringLiteral("random-windows"), QStringLiteral("Draw calibration windows at random positions with --seed.")});
    p.addOption({QStringLiteral("seed"), QStringLiteral("Seed of --random-windows (default 0)."), QStringLiteral("S"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("damp"), QStringLiteral("GPTQ damping, fraction of mean(diag H) (default 0.01)."),
                 QStringLiteral("X"), QStringLiteral("0.01")});
    p.addOption({QStringLiteral("min-expert-tokens"),
                 QStringLiteral("Routed experts with fewer calibration tokens use RTN instead of GPTQ (default %1).")
                     .arg(kDefaultMinExpertTokens),
                 QStringLiteral("N"), QString::number(kDefaultMinExpertTokens)});
    p.addOption({QStringLiteral("balance-experts"),
                 QStringLiteral("What else feeds routed experts' Hessians: off, next-choices, all-tokens or sampled "
                                "(default %1; docs/calibration-coverage.md).")
                     .arg(QLatin1String(expertBalanceName(kDefaultExpertBalance))),
                 QStringLiteral("MODE"), QLatin1String(expertBalanceName(kDefaultExpertBalance))});
}

std::optional<CalibCliOptions> readCalibOptions(const QCommandLineParser& p, const char* command)
{
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb %s: usage error: %s\n", command, msg.c_str());
        return std::nullopt;
    };
    CalibCliOptions o;
    for (const QString& f : p.values(QStringLiteral("calib")))
        o.data.push_back({toStd(f), ""});
    for (const QString& d : p.values(QStringLiteral("domain"))) {
        const int eq = d.indexOf(QLatin1Char('='));
        if (eq <= 0 || eq == d.size() - 1)
            return usage("--domain expects NAME=FILE, got '" + toStd(d) + "'");
        o.data.push_back({toStd(d.mid(eq + 1)), toStd(d.left(eq))});
    }
    auto integer = [&](const char* name, int64_t& out, int64_t min) {
        bool ok = false;
        out = p.value(QLatin1String(name)).toLongLong(&ok);
        return ok && out >= min;
    };
    if (!integer("samples", o.samples, 1))
        return usage("--samples must be a positive integer");
    if (!integer("seq-len", o.seqLen, 2))
        return usage("--seq-len must be an integer >= 2");
    if (!integer("seed", o.seed, 0))
        return usage("--seed must be a non-negative integer");
    if (!integer("min-expert-tokens", o.minExpertTokens, 0))
        return usage("--min-expert-tokens must be a non-negative integer");
    bool ok = false;
    o.damp = p.value(QStringLiteral("damp")).toDouble(&ok);
    if (!ok || !(o.damp > 0 && o.damp < 1))
        return usage("--damp must be a number in (0, 1)");
    o.randomWindows = p.isSet(QStringLiteral("random-windows"));
    const std::string balance = toStd(p.value(QStringLiteral("balance-experts")));
    try {
        o.balanceExperts = parseExpertBalance(balance, "--balance-experts");
    } catch (const InputError&) {
        return usage("--balance-experts must be off, next-choices, all-tokens or sampled, got '" + balance + "'");
    }
    return o;
}

} // namespace moewb::cli
