// SPDX-License-Identifier: MIT
#include "moewb/eval/paired.h"

#include "moewb/core/error.h"
#include "moewb/eval/kld.h"

#include <random>

namespace moewb {

PairedInterval pairedBootstrap(const std::vector<double>& a, const std::vector<double>& b,
                               const std::vector<double>& weight, int resamples, uint64_t seed, double level)
{
    MOEWB_CHECK(a.size() == b.size() && a.size() == weight.size(), "paired comparison",
                "the two runs were scored on different units (", a.size(), " vs ", b.size(), ")");
    PairedInterval out;
    const size_t n = a.size();
    if (n == 0)
        return out;
    auto diffOf = [&](const std::vector<size_t>& pick) {
        double sa = 0, sb = 0, sw = 0;
        for (size_t i : pick)
            sa += a[i], sb += b[i], sw += weight[i];
        return sw > 0 ? (sa - sb) / sw : 0.0;
    };
    std::vector<size_t> pick(n);
    for (size_t i = 0; i < n; ++i)
        pick[i] = i;
    out.diff = diffOf(pick);
    std::mt19937_64 gen(seed);
    std::vector<double> diffs;
    diffs.reserve(size_t(resamples));
    for (int r = 0; r < resamples; ++r) {
        for (size_t i = 0; i < n; ++i)
            pick[i] = size_t(gen() % n);
        diffs.push_back(diffOf(pick));
    }
    out.lo = percentileLinear(diffs, (1.0 - level) / 2.0);
    out.hi = percentileLinear(diffs, (1.0 + level) / 2.0);
    return out;
}

} // namespace moewb
