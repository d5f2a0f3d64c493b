// SPDX-License-Identifier: MIT
// moewb stats specialization STATS.h5 [--json]: per MoE layer, how much the expert choice depends on
// the calibration domain (moewb/stats/specialization.h), as a table or JSON.
#include "stats_specialization.h"

#include "cli_common.h"

#include "moewb/stats/specialization.h"
#include "moewb/stats/stats_h5.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moewb::cli {
namespace {

using nlohmann::json;

json num(double v)
{
    return std::isnan(v) ? json(nullptr) : json(v);
}

std::string fmt(const char* f, double v)
{
    if (std::isnan(v))
        return "-";
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

json toJson(const std::string& path, const ModelSpecialization& m)
{
    json layers = json::array();
    for (const LayerSpecialization& l : m.layers) {
        json doms = json::array();
        for (size_t d = 0; d < l.domains.size(); ++d) {
            const DomainSpecialization& s = l.domains[d];
            doms.push_back({{"domain", m.domains[d]},
                            {"tokens", s.tokens},
                            {"share", s.share},
                            {"entropy_bits", num(s.entropyBits)},
                            {"topk_share", num(s.topKShare)},
                            {"top_expert", s.topExpert},
                            {"top_expert_lift", num(s.topExpertLift)},
                            {"top_expert_share", num(s.topExpertShare)}});
        }
        layers.push_back({{"layer", l.layer},
                          {"num_experts", l.numExperts},
                          {"top_k", l.topK},
                          {"tokens", l.tokens},
                          {"uniform_entropy_bits", l.uniformEntropyBits},
                          {"domain_entropy_bits", l.domainEntropyBits},
                          {"expert_entropy_bits", l.expertEntropyBits},
                          {"mutual_info_bits", l.mutualInfoBits},
                          {"normalized_mi", num(l.normalizedMI)},
                          {"domains", doms}});
    }
    json mean = json::array();
    for (size_t d = 0; d < m.domains.size(); ++d)
        mean.push_back({{"domain", m.domains[d]},
                        {"entropy_bits", num(m.meanEntropyBits[d])},
                        {"topk_share", num(m.meanTopKShare[d])}});
    return {{"file", path},
            {"domains", m.domains},
            {"layers", layers},
            {"mean",
             {{"mutual_info_bits", m.meanMutualInfoBits},
              {"normalized_mi", num(m.meanNormalizedMI)},
              {"domains", mean}}}};
}

void printTable(const std::string& path, const ModelSpecialization& m)
{
    size_t w = 6;
    for (const std::string& d : m.domains)
        w = std::max(w, d.size());
    const int dw = int(std::min<size_t>(w, 24));
    std::printf("%s: routing specialization over %zu domains, %zu MoE layers\n", path.c_str(), m.domains.size(),
                m.layers.size());
    std::printf("MI = I(domain; expert) over routed (token, slot) choices, NMI = MI / H(domain); per domain:\n"
                "H(E|d) = entropy of its expert distribution (uniform = log2 E), top-k = share of its choices\n"
                "on its k most used experts (uniform = k/E), specific = expert with the highest P(e|d)/P(e).\n\n");
    std::printf("%5s %9s %8s %8s %8s %8s %7s\n", "layer", "tokens", "H(D)", "H(E)", "log2 E", "MI", "NMI");
    for (const LayerSpecialization& l : m.layers)
        std::printf("%5lld %9lld %8.4f %8.4f %8.4f %8.4f %7s\n", (long long)l.layer, (long long)l.tokens,
                    l.domainEntropyBits, l.expertEntropyBits, l.uniformEntropyBits, l.mutualInfoBits,
                    fmt("%.4f", l.normalizedMI).c_str());
    std::printf("%5s %9s %8s %8s %8s %8.4f %7s\n\n", "mean", "", "", "", "", m.meanMutualInfoBits,
                fmt("%.4f", m.meanNormalizedMI).c_str());

    for (const LayerSpecialization& l : m.layers) {
        std::printf("layer %lld: %lld experts, top-%lld; uniform H = %.3f bits, top-k share %.1f%%\n",
                    (long long)l.layer, (long long)l.numExperts, (long long)l.topK, l.uniformEntropyBits,
                    l.numExperts > 0 ? 100.0 * double(std::min(l.topK, l.numExperts)) / double(l.numExperts) : 0.0);
        std::printf("  %-*s %9s %7s %8s %7s  %s\n", dw, "domain", "tokens", "share", "H(E|d)", "top-k",
                    "specific expert (P(e|d), lift)");
        for (size_t d = 0; d < l.domains.size(); ++d) {
            const DomainSpecialization& s = l.domains[d];
            std::string spec = "-";
            if (s.topExpert >= 0) {
                char b[96];
                std::snprintf(b, sizeof b, "E%lld (%.1f%%, x%.2f)", (long long)s.topExpert, 100.0 * s.topExpertShare,
                              s.topExpertLift);
                spec = b;
            }
            std::printf("  %-*.*s %9lld %6.1f%% %8s %7s  %s\n", dw, dw, m.domains[d].c_str(), (long long)s.tokens,
                        100.0 * s.share, fmt("%.3f", s.entropyBits).c_str(),
                        (fmt("%.1f", 100.0 * s.topKShare) + (std::isnan(s.topKShare) ? "" : "%")).c_str(),
                        spec.c_str());
        }
    }
    std::printf("\nmean over MoE layers:\n  %-*s %8s %7s\n", dw, "domain", "H(E|d)", "top-k");
    for (size_t d = 0; d < m.domains.size(); ++d)
        std::printf("  %-*.*s %8s %7s\n", dw, dw, m.domains[d].c_str(), fmt("%.3f", m.meanEntropyBits[d]).c_str(),
                    (fmt("%.1f", 100.0 * m.meanTopKShare[d]) + (std::isnan(m.meanTopKShare[d]) ? "" : "%")).c_str());
}

} // namespace

int runStatsSpecialization(const QStringList& args)
{
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Routing specialization by calibration domain, from the per-domain expert counts of a stats file\n"
        "(moewb calibrate with domains). Per MoE layer: mutual information between domain and expert choice\n"
        "(bits, and normalized by H(domain)); per domain: the entropy of its expert distribution, the share\n"
        "of its routing on its top-k experts, and its most specific expert (highest lift P(e|d)/P(e))."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("STATS"), QStringLiteral("stats.h5 written by moewb calibrate"));
    p.addOption({QStringLiteral("json"), QStringLiteral("Print the result as JSON.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    if (p.positionalArguments().size() != 1) {
        std::fprintf(stderr, "moewb stats specialization: usage error: expected one STATS.h5\n\n%s",
                     qPrintable(p.helpText()));
        return ExitUsage;
    }
    const std::string path = toStd(p.positionalArguments()[0]);
    const bool asJson = p.isSet(QStringLiteral("json"));
    return guarded([&] {
        const ModelSpecialization m = modelSpecialization(readStats(path), path);
        if (asJson)
            std::printf("%s\n", toJson(path, m).dump(2).c_str());
        else
            printTable(path, m);
        return ExitOk;
    });
}

} // namespace moewb::cli
