// SPDX-License-Identifier: MIT
#include "routingmetrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace moewb {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(double num, double den) { return den > 0 ? num / den : kNaN; }
} // namespace

const std::vector<RoutingMetricInfo>& routingMetrics()
{
    static const std::vector<RoutingMetricInfo> table = {
        {RoutingMetric::TokenShare, "Token share", "expert_tokens / (tokens × top_k); uniform = 1/E", false},
        {RoutingMetric::Top1Share, "Top-1 share", "expert_top1 / tokens", false},
        {RoutingMetric::WeightMass, "Routing-weight mass", "expert_weight_mass / tokens", false},
        {RoutingMetric::ProbMass, "Router probability mass", "expert_prob_mass / tokens", false},
        {RoutingMetric::DomainShare, "Domain share", "domain_tokens[d] / Σ_e domain_tokens[d]", false},
        {RoutingMetric::UniformDeviation, "Deviation from uniform", "token share × E − 1; 0 = uniform, −1 = dead",
         true},
    };
    return table;
}

const RoutingMetricInfo& routingMetricInfo(RoutingMetric metric)
{
    for (const RoutingMetricInfo& info : routingMetrics())
        if (info.metric == metric)
            return info;
    return routingMetrics().front();
}

double routingValue(const RouterStats& r, RoutingMetric metric, int64_t e, int64_t domain)
{
    if (e < 0 || e >= r.numExperts || size_t(e) >= r.expertTokens.size())
        return kNaN;
    const double tokens = double(r.tokens);
    switch (metric) {
    case RoutingMetric::TokenShare:
        return ratio(double(r.expertTokens[size_t(e)]), tokens * double(r.topK));
    case RoutingMetric::Top1Share:
        return ratio(double(r.expertTop1[size_t(e)]), tokens);
    case RoutingMetric::WeightMass:
        return ratio(r.expertWeightMass[size_t(e)], tokens);
    case RoutingMetric::ProbMass:
        return ratio(r.expertProbMass[size_t(e)], tokens);
    case RoutingMetric::DomainShare: {
        if (domain < 0 || domain >= r.domainTokens.rows || r.domainTokens.cols != r.numExperts)
            return kNaN;
        int64_t sum = 0;
        for (int64_t j = 0; j < r.domainTokens.cols; ++j)
            sum += r.domainTokens.at(domain, j);
        return ratio(double(r.domainTokens.at(domain, e)), double(sum));
    }
    case RoutingMetric::UniformDeviation:
        return routingValue(r, RoutingMetric::TokenShare, e) * double(r.numExperts) - 1.0;
    }
    return kNaN;
}

RoutingMatrix routingMatrix(const CalibStats& stats, RoutingMetric metric, int64_t domain)
{
    RoutingMatrix m;
    for (const LayerStats& l : stats.layers) {
        if (!l.isMoe)
            continue;
        m.layers.push_back(l.layer);
        m.experts = std::max(m.experts, l.router.numExperts);
    }
    m.values.assign(m.layers.size() * size_t(m.experts), kNaN);
    for (size_t row = 0; row < m.layers.size(); ++row) {
        const RouterStats& r = stats.layers[size_t(m.layers[row])].router;
        for (int64_t e = 0; e < r.numExperts; ++e)
            m.values[row * size_t(m.experts) + size_t(e)] = routingValue(r, metric, e, domain);
    }
    return m;
}

double domainLift(const RouterStats& r, int64_t e, int64_t domain)
{
    return ratio(routingValue(r, RoutingMetric::DomainShare, e, domain), routingValue(r, RoutingMetric::TokenShare, e));
}

std::vector<int64_t> sortedOrder(const std::vector<double>& values)
{
    std::vector<int64_t> order(values.size());
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const double va = values[size_t(a)], vb = values[size_t(b)];
        if (std::isnan(va) || std::isnan(vb))
            return !std::isnan(va) && std::isnan(vb);
        return va > vb;
    });
    return order;
}

} // namespace moewb
