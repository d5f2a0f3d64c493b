// SPDX-License-Identifier: MIT
// moewb stats show STATS.h5 [--layer L] [--top N] [--json]: a summary of a calibration stats file;
// moewb stats specialization STATS.h5 [--json] is in stats_specialization.cpp.
#include "cli_common.h"
#include "stats_specialization.h"

#include "moewb/stats/stats_h5.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace moewb::cli {
namespace {

using nlohmann::json;

// Share of a layer's top-k hits, so layers with different token counts compare.
double share(const RouterStats& r, int64_t e)
{
    const double hits = double(r.tokens) * double(std::max<int64_t>(r.topK, 1));
    return hits > 0 ? double(r.expertTokens[size_t(e)]) / hits : 0.0;
}

/// Experts of a layer ordered by routed tokens, most used first; ties by index for a stable print.
std::vector<int64_t> byUsage(const RouterStats& r)
{
    std::vector<int64_t> idx(size_t(r.numExperts));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
        return r.expertTokens[size_t(a)] > r.expertTokens[size_t(b)];
    });
    return idx;
}

std::vector<size_t> topOutliers(const CalibStats& s, int64_t layer, size_t n)
{
    std::vector<size_t> idx;
    for (size_t i = 0; i < s.linears.size(); ++i)
        if (!std::isnan(s.linears[i].outlierScore) && (layer < 0 || s.linears[i].layer == layer))
            idx.push_back(i);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](size_t a, size_t b) { return s.linears[a].outlierScore > s.linears[b].outlierScore; });
    if (idx.size() > n)
        idx.resize(n);
    return idx;
}

json num(double v)
{
    return std::isnan(v) ? json(nullptr) : json(v);
}

std::string fmtCos(double v)
{
    char b[32];
    if (std::isnan(v))
        return "-";
    std::snprintf(b, sizeof b, "%.4f", v);
    return b;
}

std::string expertList(const RouterStats& r, const std::vector<int64_t>& experts)
{
    std::string out;
    char b[64];
    for (int64_t e : experts) {
        std::snprintf(b, sizeof b, "%sE%lld %.1f%%", out.empty() ? "" : ", ", (long long)e, 100.0 * share(r, e));
        out += b;
    }
    return out;
}

json layerSummaryJson(const LayerStats& l, size_t top)
{
    json j = {{"layer", l.layer},
              {"is_moe", l.isMoe},
              {"block_cos_attn", num(l.cosine.attn)},
              {"block_cos_mlp", num(l.cosine.mlp)},
              {"block_cos_whole", num(l.cosine.block)},
              {"block_cos_tokens", l.cosine.tokens}};
    if (!l.isMoe)
        return j;
    const RouterStats& r = l.router;
    const std::vector<int64_t> order = byUsage(r);
    const size_t n = std::min(top, order.size());
    auto entries = [&](auto begin, auto end) {
        json a = json::array();
        for (auto it = begin; it != end; ++it)
            a.push_back({{"expert", *it}, {"tokens", r.expertTokens[size_t(*it)]}, {"share", share(r, *it)}});
        return a;
    };
    j["num_experts"] = r.numExperts;
    j["top_k"] = r.topK;
    j["router_tokens"] = r.tokens;
    j["router_entropy"] = num(r.routerEntropy);
    j["most_used"] = entries(order.begin(), order.begin() + long(n));
    j["least_used"] = entries(order.rbegin(), order.rbegin() + long(n));
    j["dead_experts"] = r.deadExperts;
    return j;
}

void printHeader(const std::string& path, const CalibStats& s)
{
    const StatsProvenance& p = s.provenance;
    int64_t moeLayers = 0, experts = 0, topK = 0;
    for (const LayerStats& l : s.layers)
        if (l.isMoe) {
            ++moeLayers;
            experts = std::max(experts, l.router.numExperts);
            topK = std::max(topK, l.router.topK);
        }
    std::printf("%s: written by moewb %s at %s\n", path.c_str(), p.toolVersion.c_str(), p.created.c_str());
    std::printf("model:   %s (%s)\n", p.modelPath.c_str(), p.architecture.c_str());
    std::printf("data:    %s\n", p.dataDescription.c_str());
    std::printf("         %lld samples x %lld tokens (%s, seed %lld), %lld tokens, %s on %s\n", (long long)p.numSamples,
                (long long)p.seqLen, p.randomWindows ? "random windows" : "consecutive windows", (long long)p.seed,
                (long long)p.numTokens, p.computeDtype.c_str(), p.device.c_str());
    for (const CalibDataFile& f : p.dataFiles)
        std::printf("file:    %s (%s%s%s, %lld bytes, %s %s)\n", f.path.c_str(), f.format.c_str(),
                    f.domain.empty() ? "" : ", domain ", f.domain.c_str(), (long long)f.bytes, f.hashAlgo.c_str(),
                    f.hash.c_str());
    for (size_t d = 0; d < p.domains.size(); ++d)
        std::printf("domain:  %s, %lld tokens\n", p.domains[d].c_str(), (long long)p.domainTokenCounts[d]);
    std::printf("layers:  %lld (%lld MoE, up to %lld experts, top-%lld), %zu linears, %lld dead experts\n\n",
                (long long)s.numLayers, (long long)moeLayers, (long long)experts, (long long)topK, s.linears.size(),
                (long long)s.totalDeadExperts());
}

void printOutliers(const CalibStats& s, const std::vector<size_t>& idx)
{
    if (idx.empty())
        return;
    std::printf("\nhighest weight outlier scores (%s = max over input columns of max|W|/mean|W|):\n",
                s.outlier.metric.c_str());
    std::printf("  %10s %7s  %-12s %s\n", "score", "column", "role", "linear");
    for (size_t i : idx) {
        const LinearStats& l = s.linears[i];
        std::printf("  %10.2f %7lld  %-12s %s\n", double(l.outlierScore), (long long)l.outlierColumn, l.role.c_str(),
                    l.name.c_str());
    }
}

void printOverview(const CalibStats& s, size_t top)
{
    std::printf("%5s %9s %7s %7s %7s %7s  %-34s %-34s %s\n", "layer", "tokens", "entropy", "cosAttn", "cosMlp",
                "cosBlk", "most used (share of top-k hits)", "least used", "dead");
    for (const LayerStats& l : s.layers) {
        std::printf("%5lld ", (long long)l.layer);
        if (!l.isMoe) {
            std::printf("%9s %7s %7s %7s %7s  %s\n", "dense", "-", fmtCos(l.cosine.attn).c_str(),
                        fmtCos(l.cosine.mlp).c_str(), fmtCos(l.cosine.block).c_str(), "");
            continue;
        }
        const RouterStats& r = l.router;
        const std::vector<int64_t> order = byUsage(r);
        const size_t n = std::min(top, order.size());
        const std::vector<int64_t> most(order.begin(), order.begin() + long(n));
        const std::vector<int64_t> least(order.rbegin(), order.rbegin() + long(n));
        std::printf("%9lld %7.3f %7s %7s %7s  %-34s %-34s %zu\n", (long long)r.tokens, r.routerEntropy,
                    fmtCos(l.cosine.attn).c_str(), fmtCos(l.cosine.mlp).c_str(), fmtCos(l.cosine.block).c_str(),
                    expertList(r, most).c_str(), expertList(r, least).c_str(), r.deadExperts.size());
    }
    if (s.totalDeadExperts() > 0) {
        std::printf("\ndead experts (no calibration tokens):\n");
        for (const LayerStats& l : s.layers) {
            if (!l.isMoe || l.router.deadExperts.empty())
                continue;
            std::string list;
            for (int64_t e : l.router.deadExperts)
                list += (list.empty() ? "" : ", ") + std::to_string(e);
            std::printf("  layer %lld: %s\n", (long long)l.layer, list.c_str());
        }
    }
}

void printLayer(const CalibStats& s, const LayerStats& l)
{
    std::printf("layer %lld: %s, block cosine attn %s, mlp %s, whole %s over %lld tokens\n", (long long)l.layer,
                l.isMoe ? "MoE" : "dense", fmtCos(l.cosine.attn).c_str(), fmtCos(l.cosine.mlp).c_str(),
                fmtCos(l.cosine.block).c_str(), (long long)l.cosine.tokens);
    if (!l.isMoe)
        return;
    const RouterStats& r = l.router;
    std::printf("router: %lld experts, top-%lld, %lld tokens, mean entropy %.4f nats; correlation probe: %s\n\n",
                (long long)r.numExperts, (long long)r.topK, (long long)r.tokens, r.routerEntropy,
                r.correlation.empty() ? "not run"
                                      : (r.correlationMethod + " on " + std::to_string(r.correlationTokens) + " tokens")
                                            .c_str());
    std::printf("%6s %10s %7s %10s %12s %12s", "expert", "tokens", "share", "top1", "weightMass", "probMass");
    for (const std::string& d : s.provenance.domains)
        std::printf(" %10.10s", d.c_str());
    std::printf("\n");
    for (int64_t e = 0; e < r.numExperts; ++e) {
        const size_t i = size_t(e);
        std::printf("%6lld %10lld %6.2f%% %10lld %12.3f %12.3f", (long long)e, (long long)r.expertTokens[i],
                    100.0 * share(r, e), (long long)r.expertTop1[i], r.expertWeightMass[i], r.expertProbMass[i]);
        for (int64_t d = 0; d < r.domainTokens.rows; ++d)
            std::printf(" %10lld", (long long)r.domainTokens.at(d, e));
        std::printf("%s\n", r.expertTokens[i] == 0 ? "  dead" : "");
    }
}

int runStats(const QStringList& args)
{
    if (args.size() >= 2 && args[1] == QLatin1String("specialization"))
        return runStatsSpecialization(QStringList{args[0] + QStringLiteral(" specialization")} + args.mid(2));
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Inspect a calibration statistics file (stats.h5, see docs/stats-schema.md).\n"
        "  show STATS.h5   provenance, per-layer expert usage (most/least used, dead experts), block\n"
        "                  cosine similarities and the linears with the highest weight outlier scores.\n"
        "                  With --layer L: every expert of that layer and its linears' outlier scores.\n"
        "  specialization STATS.h5 [--json]\n"
        "                  routing specialization by domain: mutual information between domain and\n"
        "                  expert choice per MoE layer, per-domain expert entropy, top-k share and\n"
        "                  most specific expert (see 'moewb stats specialization --help')."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("ACTION"), QStringLiteral("show or specialization"));
    p.addPositionalArgument(QStringLiteral("STATS"), QStringLiteral("stats.h5 written by moewb calibrate"));
    p.addOption({QStringLiteral("layer"), QStringLiteral("Show one decoder layer in full."), QStringLiteral("L")});
    p.addOption({QStringLiteral("top"),
                 QStringLiteral("Most/least used experts per layer to list (default 3); outlier linears: 10 x N/3."),
                 QStringLiteral("N"), QStringLiteral("3")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print the summary as JSON.")});
    if (!parseOrUsage(p, args))
        return p.isSet(QStringLiteral("help")) ? ExitOk : ExitUsage;
    const QStringList pos = p.positionalArguments();
    if (pos.size() != 2 || pos[0] != QLatin1String("show")) {
        std::fprintf(stderr, "moewb stats: usage error: expected 'show STATS.h5' or 'specialization STATS.h5'\n\n%s", qPrintable(p.helpText()));
        return ExitUsage;
    }
    bool ok = false;
    const long long top = p.value(QStringLiteral("top")).toLongLong(&ok);
    if (!ok || top <= 0) {
        std::fprintf(stderr, "moewb stats: usage error: --top must be a positive integer\n");
        return ExitUsage;
    }
    int64_t layer = -1;
    if (p.isSet(QStringLiteral("layer"))) {
        layer = p.value(QStringLiteral("layer")).toLongLong(&ok);
        if (!ok || layer < 0) {
            std::fprintf(stderr, "moewb stats: usage error: --layer must be a layer index (0, 1, ...)\n");
            return ExitUsage;
        }
    }
    const bool asJson = p.isSet(QStringLiteral("json"));
    const std::string path = toStd(pos[1]);
    return guarded([&] {
        const CalibStats s = readStats(path);
        if (layer >= s.numLayers)
            throw InputError(path, "has " + std::to_string(s.numLayers) + " layers, --layer "
                                       + std::to_string(layer) + " is out of range");
        const size_t nOut = size_t(std::max<long long>(10, 10 * top / 3));
        const std::vector<size_t> outliers = topOutliers(s, layer, nOut);
        if (asJson) {
            const StatsProvenance& pr = s.provenance;
            json j = {{"file", path},
                      {"format_version", kStatsFormatVersion},
                      {"tool_version", pr.toolVersion},
                      {"created", pr.created},
                      {"model_path", pr.modelPath},
                      {"architecture", pr.architecture},
                      {"data_description", pr.dataDescription},
                      {"num_samples", pr.numSamples},
                      {"seq_len", pr.seqLen},
                      {"seed", pr.seed},
                      {"num_tokens", pr.numTokens},
                      {"domains", pr.domains},
                      {"num_layers", s.numLayers},
                      {"num_linears", s.linears.size()},
                      {"dead_experts_total", s.totalDeadExperts()}};
            json layers = json::array();
            for (const LayerStats& l : s.layers) {
                if (layer >= 0 && l.layer != layer)
                    continue;
                json lj = layerSummaryJson(l, size_t(top));
                if (layer >= 0 && l.isMoe) {
                    const RouterStats& r = l.router;
                    lj["expert_tokens"] = r.expertTokens;
                    lj["expert_top1"] = r.expertTop1;
                    lj["expert_weight_mass"] = r.expertWeightMass;
                    lj["expert_prob_mass"] = r.expertProbMass;
                    json dom = json::array();
                    for (int64_t d = 0; d < r.domainTokens.rows; ++d)
                        dom.push_back(std::vector<int64_t>(r.domainTokens.data.begin() + d * r.numExperts,
                                                           r.domainTokens.data.begin() + (d + 1) * r.numExperts));
                    lj["domain_tokens"] = dom;
                }
                layers.push_back(lj);
            }
            j["layers"] = layers;
            json out = json::array();
            for (size_t i : outliers) {
                const LinearStats& l = s.linears[i];
                out.push_back({{"name", l.name}, {"role", l.role}, {"layer", l.layer}, {"expert", l.expert},
                               {"outlier_score", l.outlierScore}, {"outlier_column", l.outlierColumn},
                               {"tokens", l.tokens}});
            }
            j["outlier_metric"] = s.outlier.metric;
            j["highest_outliers"] = out;
            std::printf("%s\n", j.dump(2).c_str());
            return ExitOk;
        }
        printHeader(path, s);
        if (layer >= 0)
            printLayer(s, s.layers[size_t(layer)]);
        else
            printOverview(s, size_t(top));
        printOutliers(s, outliers);
        return ExitOk;
    });
}

const CommandRegistrar reg({"stats", "inspect a calibration stats file (show STATS.h5 [--layer L] | specialization STATS.h5)", runStats});

} // namespace
} // namespace moewb::cli
