// SPDX-License-Identifier: MIT
// The per-expert routing numbers the heat map, the domain view and the tree show, computed from
// CalibStats (moewb/stats/stats.h) with no Qt types so they are easy to test exactly.
#pragma once

#include "moewb/stats/stats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

enum class RoutingMetric {
    TokenShare,      ///< expert_tokens[e] / (tokens * top_k): share of the routing slots, uniform = 1/E
    Top1Share,       ///< expert_top1[e] / tokens
    WeightMass,      ///< expert_weight_mass[e] / tokens: mean mixing weight per token
    ProbMass,        ///< expert_prob_mass[e] / tokens: mean router probability
    DomainShare,     ///< domain_tokens[d][e] / sum_e domain_tokens[d][e] (needs a domain index)
    UniformDeviation ///< TokenShare * E - 1: 0 = uniform, -1 = never routed, 1 = twice the fair share
};

struct RoutingMetricInfo {
    RoutingMetric metric;
    const char* name;    ///< for combo boxes and CSV headers
    const char* formula; ///< one line for tooltips and the user guide
    bool diverging;      ///< centred on 0 (use a diverging colour map)
};
const std::vector<RoutingMetricInfo>& routingMetrics();
const RoutingMetricInfo& routingMetricInfo(RoutingMetric metric);

/// The metric for expert `expert` of a router, NaN when it is not defined (no tokens, expert out
/// of range, domain missing). `domain` is used by DomainShare only.
double routingValue(const RouterStats& router, RoutingMetric metric, int64_t expert, int64_t domain = -1);

/// Layers × experts matrix over the MoE layers of stats, in decoder order.
struct RoutingMatrix {
    std::vector<int64_t> layers; ///< decoder index of each row
    int64_t experts = 0;         ///< columns: the largest expert count of any MoE layer
    std::vector<double> values;  ///< rows * experts, row-major, NaN where a layer has fewer experts
    double at(size_t row, int64_t expert) const { return values[row * size_t(experts) + size_t(expert)]; }
};
RoutingMatrix routingMatrix(const CalibStats& stats, RoutingMetric metric, int64_t domain = -1);

/// Domain d's share of expert e in one layer relative to all domains' share (lift): DomainShare /
/// TokenShare; 1 = the domain routes to the expert as often as the whole data set does.
double domainLift(const RouterStats& router, int64_t expert, int64_t domain);

/// Column permutation that sorts `values` (one row) descending, NaN last, ties by index.
std::vector<int64_t> sortedOrder(const std::vector<double>& values);

} // namespace moewb
