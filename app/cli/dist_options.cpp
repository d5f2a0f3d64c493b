// SPDX-License-Identifier: MIT
#include "dist_options.h"

#include "cli_common.h"

#include <cstdio>

namespace moewb::cli {

void addDistOptions(QCommandLineParser& p)
{
    p.addOption({QStringLiteral("distributed"),
                 QStringLiteral("Run as one rank of a data-parallel group (c10d TCPStore + Gloo; docs/distributed.md). "
                                "Every rank gets the same arguments; rank 0 writes the output.")});
    p.addOption({QStringLiteral("rank"), QStringLiteral("With --distributed: this process's rank (default $RANK)."),
                 QStringLiteral("R")});
    p.addOption({QStringLiteral("world-size"),
                 QStringLiteral("With --distributed: number of ranks (default $WORLD_SIZE)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("master-addr"),
                 QStringLiteral("With --distributed: address of rank 0, which hosts the rendezvous store (default "
                                "$MASTER_ADDR, else 127.0.0.1)."),
                 QStringLiteral("HOST")});
    p.addOption({QStringLiteral("master-port"),
                 QStringLiteral("With --distributed: port of the rendezvous store (default $MASTER_PORT, else 29500)."),
                 QStringLiteral("P")});
}

std::optional<DistCli> readDistOptions(const QCommandLineParser& p, const char* command)
{
    DistCli d;
    d.enabled = p.isSet(QStringLiteral("distributed"));
    auto usage = [&](const std::string& msg) {
        std::fprintf(stderr, "moewb %s: usage error: %s\n", command, msg.c_str());
        return std::nullopt;
    };
    for (const char* flag : {"rank", "world-size", "master-addr", "master-port"})
        if (!d.enabled && p.isSet(QLatin1String(flag)))
            return usage(std::string("--") + flag + " needs --distributed");
    auto intFlag = [&](const char* flag, int& out, int min) {
        if (!p.isSet(QLatin1String(flag)))
            return true;
        bool ok = false;
        out = p.value(QLatin1String(flag)).toInt(&ok);
        return ok && out >= min;
    };
    if (!intFlag("rank", d.options.rank, 0))
        return usage("--rank must be a non-negative integer");
    if (!intFlag("world-size", d.options.worldSize, 1))
        return usage("--world-size must be a positive integer");
    if (!intFlag("master-port", d.options.masterPort, 1) || d.options.masterPort > 65535)
        return usage("--master-port must be in 1..65535");
    d.options.masterAddr = toStd(p.value(QStringLiteral("master-addr")));
    return d;
}

std::unique_ptr<DistContext> connectDist(const DistCli& d)
{
    if (!d.enabled)
        return nullptr;
    const DistOptions o = resolveDistOptions(d.options);
    std::unique_ptr<DistContext> ctx = DistContext::connect(o);
    std::fprintf(stderr, "moewb: rank %d of %d joined %s:%d\n", o.rank, o.worldSize, o.masterAddr.c_str(),
                 o.masterPort);
    return ctx;
}

void printCommunication(const DistContext& d)
{
    std::fprintf(stderr, "moewb: rank %d of %d: %llu bytes handed to collectives\n", d.rank(), d.worldSize(),
                 (unsigned long long)d.bytesCommunicated());
}

} // namespace moewb::cli
