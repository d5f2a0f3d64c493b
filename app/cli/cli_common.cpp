// SPDX-License-Identifier: MIT
#include "cli_common.h"

#include "moewb/core/error.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace moewb::cli {

namespace {
std::atomic<int> g_interrupts{0};

/// SIGINT (Ctrl-C), SIGTERM (kill, job schedulers, systemd) and SIGHUP (closed terminal) all ask the
/// running operation to stop at its next progress check; it unwinds, removing its temporary output,
/// and the command exits 130. A second signal exits at once.
void onInterrupt(int)
{
    if (g_interrupts.fetch_add(1) >= 1)
        _exit(ExitCancelled);
}
} // namespace

std::vector<Command>& commandTable()
{
    static std::vector<Command> table;
    return table;
}

void installInterruptHandler()
{
    struct sigaction sa {};
    sa.sa_handler = onInterrupt;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaction(sig, &sa, nullptr);
}

std::string toStd(const QString& s)
{
    return s.toStdString();
}

ProgressFn terminalProgress()
{
    struct State {
        std::string stage;
        std::chrono::steady_clock::time_point stageStart;
        std::chrono::steady_clock::time_point lastDraw;
        bool tty = isatty(STDERR_FILENO) != 0;
    };
    auto st = std::make_shared<State>();
    return [st](const Progress& p) {
        using clock = std::chrono::steady_clock;
        const auto now = clock::now();
        if (p.stage != st->stage) {
            if (st->tty && !st->stage.empty())
                std::fputc('\n', stderr);
            st->stage = p.stage;
            st->stageStart = now;
            if (!st->tty)
                std::fprintf(stderr, "%s...\n", p.stage.c_str());
        }
        const bool last = p.total > 0 && p.done >= p.total;
        if (st->tty && (last || now - st->lastDraw > std::chrono::milliseconds(100))) {
            st->lastDraw = now;
            const double elapsed = std::chrono::duration<double>(now - st->stageStart).count();
            char eta[32] = "";
            if (p.total > 0 && p.done > 0 && !last)
                std::snprintf(eta, sizeof eta, " ETA %.0fs", elapsed * (p.total - p.done) / p.done);
            const int width = 30;
            const int filled = p.total > 0 ? int(width * std::min<int64_t>(p.done, p.total) / p.total) : 0;
            std::string bar(filled, '#');
            bar.resize(width, ' ');
            std::fprintf(stderr, "\r%s [%s] %lld/%lld %s%s\033[K", p.stage.c_str(), bar.c_str(),
                         (long long)p.done, (long long)p.total, p.message.c_str(), eta);
            if (last)
                std::fputc('\n', stderr);
            std::fflush(stderr);
        }
        return g_interrupts.load() == 0;
    };
}

int guarded(const std::function<int()>& body)
{
    try {
        return body();
    } catch (const Cancelled&) {
        std::fprintf(stderr, "\nmoewb: cancelled\n");
        return ExitCancelled;
    } catch (const OutputExistsError& e) {
        std::fprintf(stderr, "moewb: error: %s (use --force to replace it)\n", e.what());
        return ExitError;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "moewb: error: out of memory\n");
        return ExitError;
    } catch (const std::exception& e) {
        std::string msg = e.what();
        // c10::Error messages carry a backtrace after the first line; keep the first line.
        if (auto nl = msg.find('\n'); nl != std::string::npos)
            msg.resize(nl);
        std::fprintf(stderr, "moewb: error: %s\n", msg.c_str());
        return ExitError;
    }
}

bool parseOrUsage(QCommandLineParser& parser, const QStringList& args)
{
    if (!parser.parse(args)) {
        std::fprintf(stderr, "moewb: usage error: %s\n\n%s", qPrintable(parser.errorText()),
                     qPrintable(parser.helpText()));
        return false;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        std::fputs(qPrintable(parser.helpText()), stdout);
        return false;
    }
    return true;
}

} // namespace moewb::cli
