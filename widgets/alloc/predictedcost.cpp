// SPDX-License-Identifier: MIT
#include "alloc/predictedcost.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moewb {

double linearCostAt(const ErrorTable& table, size_t row, int64_t bits)
{
    if (bits >= 16)
        return 0.0;
    const auto it = std::find(table.candidates.begin(), table.candidates.end(), bits);
    if (it == table.candidates.end() || row >= table.linears.size())
        return std::numeric_limits<double>::quiet_NaN();
    return table.linears[row].error[size_t(it - table.candidates.begin())];
}

std::string costTableMismatch(const ErrorTable& table, const std::vector<PlanEntry>& entries)
{
    if (table.linears.size() != entries.size())
        return "the cost table has " + std::to_string(table.linears.size()) + " linears, the model "
            + std::to_string(entries.size());
    for (size_t i = 0; i < entries.size(); ++i)
        if (table.linears[i].name != entries[i].name)
            return "the cost table's linear " + std::to_string(i) + " is " + table.linears[i].name + ", the model's "
                + entries[i].name;
    return {};
}

PlanCost predictedPlanCost(const ErrorTable& table, const std::vector<PlanEntry>& entries)
{
    PlanCostTracker t;
    t.reset(&table, entries);
    return t.cost();
}

PlanCostTracker::Counted PlanCostTracker::countOf(const ErrorTable& table, size_t row, const PlanEntry& e)
{
    Counted c;
    if (e.dropped) {
        c.dropped = true;
        return c;
    }
    const double v = linearCostAt(table, row, e.bits);
    if (std::isnan(v)) {
        c.unmeasured = true;
        return c;
    }
    c.kld = v;
    c.linear = true;
    c.otherGroupSize = e.bits < 16 && e.groupSize != table.groupSize;
    c.pruned = e.sparsity > 0;
    return c;
}

void PlanCostTracker::add(const Counted& c, int sign)
{
    m_cost.kld += sign * c.kld;
    m_cost.linears += sign * int64_t(c.linear);
    m_cost.droppedLinears += sign * int64_t(c.dropped);
    m_cost.unmeasuredLinears += sign * int64_t(c.unmeasured);
    m_cost.otherGroupSize += sign * int64_t(c.otherGroupSize);
    m_cost.prunedLinears += sign * int64_t(c.pruned);
}

void PlanCostTracker::reset(const ErrorTable* table, const std::vector<PlanEntry>& entries)
{
    m_table = table;
    m_cost = PlanCost{};
    m_counted.assign(table ? entries.size() : 0, Counted{});
    for (size_t i = 0; i < m_counted.size(); ++i) { // in entry order: the solver's summation order
        m_counted[i] = countOf(*table, i, entries[i]);
        add(m_counted[i], +1);
    }
}

void PlanCostTracker::update(const std::vector<PlanEntry>& entries, const int* changed, size_t count)
{
    if (!m_table)
        return;
    for (size_t k = 0; k < count; ++k) {
        const int i = changed[k];
        if (i < 0 || size_t(i) >= m_counted.size() || size_t(i) >= entries.size())
            continue;
        add(m_counted[size_t(i)], -1);
        m_counted[size_t(i)] = countOf(*m_table, size_t(i), entries[size_t(i)]);
        add(m_counted[size_t(i)], +1);
    }
}

RoutingMatrix expertCostMatrix(const ErrorTable& table, const ModelConfig& cfg, const std::vector<int64_t>& layers,
                               int64_t bits)
{
    RoutingMatrix m;
    m.layers = layers;
    m.experts = cfg.numExperts;
    m.values.assign(layers.size() * size_t(m.experts), std::numeric_limits<double>::quiet_NaN());
    if (bits < 16 && std::find(table.candidates.begin(), table.candidates.end(), bits) == table.candidates.end())
        return m; // not measured at this width
    std::vector<int> rowOf(size_t(std::max<int64_t>(cfg.numLayers, 0)), -1);
    for (size_t r = 0; r < layers.size(); ++r)
        if (layers[r] >= 0 && layers[r] < cfg.numLayers)
            rowOf[size_t(layers[r])] = int(r);
    size_t row = 0; // the table's row: quantizable linears in listLinears() order
    for (const LinearInfo& li : listLinears(cfg)) {
        if (!isQuantizableRole(li.role))
            continue;
        const size_t t = row++;
        if (li.expert < 0 || li.expert >= m.experts || li.layer < 0 || li.layer >= cfg.numLayers
            || rowOf[size_t(li.layer)] < 0 || t >= table.linears.size())
            continue;
        double& cell = m.values[size_t(rowOf[size_t(li.layer)]) * size_t(m.experts) + size_t(li.expert)];
        cell = (std::isnan(cell) ? 0.0 : cell) + linearCostAt(table, t, bits);
    }
    return m;
}

} // namespace moewb
