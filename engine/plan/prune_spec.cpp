// SPDX-License-Identifier: MIT
#include "moewb/plan/prune_spec.h"

#include "moewb/core/error.h"

#include <cmath>
#include <cstdio>
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

/// The pattern, or what is wrong with the text in `problem`.
PrunePattern parsePattern(const std::string& text, std::string& problem)
{
    if (text == "unstructured")
        return {};
    const size_t colon = text.find(':');
    int64_t n = 0, m = 0;
    if (colon == std::string::npos || !parseCount(text.substr(0, colon), n) || !parseCount(text.substr(colon + 1), m))
        problem = "pattern '" + text + "' is not 'unstructured' or N:M (e.g. 2:4)";
    else if (n < 1)
        problem = "pattern " + text + ": N must be at least 1 (N:M keeps N weights in every M)";
    else if (n >= m)
        problem = "pattern " + text + ": N must be smaller than M (N:M keeps N weights in every M)";
    else if (m > 1024)
        problem = "pattern " + text + ": M must be at most 1024";
    return {n, m};
}

/// The shortest text that reads back as v ("1.5", not "1.500000").
std::string shortest(double v)
{
    if (!std::isfinite(v))
        return std::to_string(v);
    char buf[40];
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v)
            break;
    }
    return buf;
}

} // namespace

std::string prunePatternProblem(const std::string& text)
{
    std::string problem;
    parsePattern(text, problem);
    return problem;
}

std::string sparsityProblem(const double& s)
{
    if (std::isfinite(s) && s >= 0 && s < 1)
        return {};
    return "sparsity " + shortest(s) + " is outside [0, 1)";
}

std::string pruneMethodProblem(const std::string& method)
{
    return isValidPruneMethod(method) ? std::string()
                                      : "prune method '" + method + "' is not magnitude, wanda or sparsegpt";
}

PrunePattern parsePrunePattern(const std::string& text, const std::string& where)
{
    std::string problem;
    const PrunePattern p = parsePattern(text, problem);
    if (!problem.empty())
        throw InputError(where, problem);
    return p;
}

std::string prunePatternName(const PrunePattern& p)
{
    return p.structured() ? std::to_string(p.n) + ":" + std::to_string(p.m) : "unstructured";
}

void checkSparsity(double s, const std::string& where)
{
    const std::string problem = sparsityProblem(s);
    if (!problem.empty())
        throw InputError(where, problem);
}

void checkPruneSpec(const PruneSpec& spec, int64_t inFeatures, const std::string& where)
{
    const std::string problem = pruneMethodProblem(spec.method);
    if (!problem.empty())
        throw InputError(where, problem);
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
