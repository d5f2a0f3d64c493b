// SPDX-License-Identifier: MIT
#include "moewb/plan/prune_spec.h"

#include "moewb/core/error.h"

#include <cmath>
#include <cstdlib>

namespace moewb {

bool isValidPruneMethod(const std::string& m)
{
    return m == "magnitude" || m == "wanda" || m == "sparsegpt";
}

namespace {

bool parseCount(const std::string& s, int64_t& out)
{
    if (s.empty() || s.size() > 6)
        return false;
    for (char c : s)
        if (c < '0' || c > '9')
            return false;
    out = std::strtoll(s.c_str(), nullptr, 10);
    return true;
}

} // namespace

PrunePattern parsePrunePattern(const std::string& text, const std::string& where)
{
    if (text == "unstructured")
        return {};
    const size_t colon = text.find(':');
    int64_t n = 0, m = 0;
    if (colon == std::string::npos || !parseCount(text.substr(0, colon), n) || !parseCount(text.substr(colon + 1), m))
        throw InputError(where, "pattern '" + text + "' is not 'unstructured' or N:M (e.g. 2:4)");
    if (n < 1)
        throw InputError(where, "pattern " + text + ": N must be at least 1 (N:M keeps N weights in every M)");
    if (n >= m)
        throw InputError(where, "pattern " + text + ": N must be smaller than M (N:M keeps N weights in every M)");
    if (m > 1024)
        throw InputError(where, "pattern " + text + ": M must be at most 1024");
    return {n, m};
}

std::string prunePatternName(const PrunePattern& p)
{
    return p.structured() ? std::to_string(p.n) + ":" + std::to_string(p.m) : "unstructured";
}

void checkSparsity(double s, const std::string& where)
{
    if (!std::isfinite(s) || s < 0 || s >= 1)
        throw InputError(where, "sparsity " + std::to_string(s) + " is outside [0, 1)");
}

void checkPruneSpec(const PruneSpec& spec, int64_t inFeatures, const std::string& where)
{
    if (!isValidPruneMethod(spec.method))
        throw InputError(where, "prune method '" + spec.method + "' is not magnitude, wanda or sparsegpt");
    checkSparsity(spec.sparsity, where);
    const PrunePattern& p = spec.pattern;
    if (p.structured()) {
        if (p.n < 1 || p.n >= p.m)
            throw InputError(where, "pattern " + prunePatternName(p) + ": need 1 <= N < M");
        if (inFeatures % p.m != 0)
            throw InputError(where, "pattern " + prunePatternName(p) + ": M = " + std::to_string(p.m)
                                        + " does not divide in_features " + std::to_string(inFeatures));
    }
}

int64_t prunedPerRow(const PruneSpec& spec, int64_t inFeatures)
{
    if (spec.pattern.structured())
        return (spec.pattern.m - spec.pattern.n) * (inFeatures / spec.pattern.m);
    return std::min<int64_t>(inFeatures, std::llround(spec.sparsity * double(inFeatures)));
}

double patternSparsity(const PrunePattern& p, double sparsity)
{
    return p.structured() ? double(p.m - p.n) / double(p.m) : sparsity;
}

} // namespace moewb
