// SPDX-License-Identifier: MIT
// Budgets the target runtime can load (moewb/alloc/target_fit.h).
#include "moewb/alloc/target_fit.h"

#include "moewb/core/error.h"

#include <algorithm>
#include <sstream>

namespace moewb {

std::vector<int> solveKnapsackInGroups(const std::vector<KnapsackItem>& items,
                                       const std::vector<std::vector<size_t>>& groups, int64_t budget,
                                       SolverMethod method)
{
    std::vector<KnapsackItem> merged(groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
        MOEWB_ASSERT(!groups[g].empty());
        KnapsackItem& m = merged[g];
        m.bytes.assign(items[groups[g].front()].bytes.size(), 0);
        m.error.assign(m.bytes.size(), 0.0);
        for (size_t i : groups[g]) {
            MOEWB_ASSERT(items[i].bytes.size() == m.bytes.size());
            for (size_t o = 0; o < m.bytes.size(); ++o) {
                m.bytes[o] += items[i].bytes[o];
                m.error[o] += items[i].error[o];
            }
        }
    }
    const std::vector<int> pick = solveKnapsack(merged, budget, method);
    std::vector<int> out(items.size(), -1);
    for (size_t g = 0; g < groups.size(); ++g)
        for (size_t i : groups[g])
            out[i] = pick[g];
    MOEWB_ASSERT(std::find(out.begin(), out.end(), -1) == out.end());
    return out;
}

namespace {

struct MixedGroup {
    std::vector<size_t> members;
    int64_t low = 0, high = 0; ///< lowest and widest member width
    double raisedShare = 0;    ///< bytes the strategy put above `low` / the group's bytes
    size_t order = 0;          ///< position in the model
};

int64_t groupBytes(const std::vector<PlanEntry>& es, const std::vector<size_t>& members, int64_t bits)
{
    int64_t b = 0;
    for (size_t i : members)
        b += gptqLinearBytes(es[i].inFeatures, es[i].outFeatures, bits, es[i].groupSize);
    return b;
}

MixedGroup mixedGroup(const std::vector<PlanEntry>& es, const std::vector<size_t>& members, size_t order)
{
    MixedGroup m{members, es[members.front()].bits, es[members.front()].bits, 0.0, order};
    for (size_t i : members)
        m.low = std::min(m.low, es[i].bits), m.high = std::max(m.high, es[i].bits);
    int64_t above = 0, total = 0;
    for (size_t i : members) {
        const int64_t b = gptqLinearBytes(es[i].inFeatures, es[i].outFeatures, es[i].bits, es[i].groupSize);
        total += b;
        above += es[i].bits > m.low ? b : 0;
    }
    m.raisedShare = total > 0 ? double(above) / double(total) : 0.0;
    return m;
}

void setGroupBits(std::vector<PlanEntry>& es, const std::vector<size_t>& members, int64_t bits)
{
    for (size_t i : members)
        es[i].bits = bits;
}

} // namespace

void fitToTarget(AllocResult& r, const ModelConfig& cfg, const AllocOptions& opt)
{
    std::vector<MixedGroup> mixed;
    for (const TargetViolation& v : checkTarget(r.entries, opt.target))
        mixed.push_back(mixedGroup(r.entries, v.members, mixed.size()));
    if (mixed.empty())
        return;
    for (const MixedGroup& m : mixed)
        setGroupBits(r.entries, m.members, m.low);
    std::stable_sort(mixed.begin(), mixed.end(),
                     [](const MixedGroup& a, const MixedGroup& b) { return a.raisedShare > b.raisedShare; });
    int64_t used = planSize(r.entries, cfg).modelBytes;
    size_t raised = 0;
    for (const MixedGroup& m : mixed) {
        const int64_t extra = groupBytes(r.entries, m.members, m.high) - groupBytes(r.entries, m.members, m.low);
        if (r.budgetBytes > 0 && used + extra > r.budgetBytes)
            continue;
        setGroupBits(r.entries, m.members, m.high);
        used += extra;
        ++raised;
    }
    r.size = planSize(r.entries, cfg);
    std::ostringstream os;
    os << "target " << planTargetName(opt.target) << ": " << mixed.size()
       << " groups that must share one width had mixed widths: each took its lowest width, then " << raised
       << " of them their widest within the budget";
    r.notes.push_back(os.str());
}

} // namespace moewb
