// SPDX-License-Identifier: MIT
// moewb_quant_report.json (docs/cli.md, "quantize").
#include "moewb/quant/quantize.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <tuple>

namespace moewb {

int64_t expertsBelowMinimum(const QuantizeReport& r, bool after)
{
    int64_t n = 0;
    for (const ExpertCoverage& c : r.experts)
        n += ((after ? c.tokens : c.routed) < r.minExpertTokens) ? 1 : 0;
    return n;
}

std::string reportToJson(const QuantizeReport& r)
{
    using ojson = nlohmann::ordered_json;
    auto orNull = [](double v) { return v < 0 ? ojson(nullptr) : ojson(v); };

    ojson linears = ojson::array();
    std::map<std::tuple<std::string, int64_t>, int64_t> byMethodBits; // → linears
    for (const LinearQuantResult& l : r.linears) {
        ojson j;
        j["name"] = l.name;
        j["layer"] = l.layer;
        j["expert"] = l.expert < 0 ? ojson(nullptr) : ojson(l.expert);
        j["role"] = l.role;
        j["bits"] = l.plan.bits;
        j["group_size"] = l.plan.groupSize;
        j["sym"] = l.plan.sym;
        j["act_order"] = l.plan.actOrder;
        if (l.plan.staticGroups)
            j["static_groups"] = true;
        j["plan_method"] = l.plan.method;
        j["method"] = l.method;
        j["fallback"] = l.fallback.empty() ? ojson(nullptr) : ojson(l.fallback);
        j["tokens"] = l.tokens < 0 ? ojson(nullptr) : ojson(l.tokens);
        j["rel_error"] = orNull(l.relError);
        j["damp"] = orNull(l.dampUsed);
        j["damp_lambda"] = orNull(l.dampLambda);
        j["seconds"] = l.seconds;
        if (l.plan.sparsity > 0) { // pruned (#14); absent otherwise so unpruned reports keep their shape
            j["sparsity"] = l.plan.sparsity;
            j["pattern"] = prunePatternName(l.plan.pattern);
            j["plan_prune_method"] = l.plan.pruneMethod;
            j["prune_method"] = l.pruneMethod;
            j["numel"] = l.numel;
            j["pruned"] = l.pruned;
            j["achieved_sparsity"] = orNull(l.achievedSparsity);
            j["zeros"] = l.zeros < 0 ? ojson(nullptr) : ojson(l.zeros);
        }
        linears.push_back(std::move(j));
        byMethodBits[{l.method, l.plan.bits}] += 1;
    }
    int64_t prunedLinears = 0, prunedNumel = 0, prunedCount = 0, prunedZeros = 0;
    for (const LinearQuantResult& l : r.linears)
        if (l.plan.sparsity > 0 && l.pruned >= 0) {
            ++prunedLinears;
            prunedNumel += l.numel;
            prunedCount += l.pruned;
            prunedZeros += std::max<int64_t>(l.zeros, 0);
        }
    ojson methods = ojson::array();
    for (const auto& [k, c] : byMethodBits)
        methods.push_back({{"method", std::get<0>(k)}, {"bits", std::get<1>(k)}, {"linears", c}});
    ojson fallbacks = ojson::array();
    for (const FallbackExpert& f : r.fallbackExperts)
        fallbacks.push_back({{"layer", f.layer}, {"expert", f.expert}, {"tokens", f.tokens}, {"reason", f.reason}});

    ojson experts = ojson::array(); // coverage per routed expert (#25, docs/calibration-coverage.md)
    for (const ExpertCoverage& c : r.experts)
        experts.push_back({{"layer", c.layer}, {"expert", c.expert}, {"routed_tokens", c.routed},
                           {"hessian_tokens", c.tokens}, {"hessian_weight", c.weight}});

    ojson j;
    j["format"] = "moewb-quant-report";
    j["version"] = 1;
    j["output_format"] = "fake";
    j["architecture"] = r.architecture;
    j["tool_version"] = r.toolVersion;
    j["compute_dtype"] = r.computeDtype;
    j["calibration"] = {{"sequences", r.calibSequences}, {"tokens", r.calibTokens}, {"description", r.calibDescription}};
    j["options"] = {{"damp", r.damp}, {"min_expert_tokens", r.minExpertTokens},
                    {"expert_fallback", "rtn"}, {"balance_experts", expertBalanceName(r.balanceExperts)}};
    j["totals"] = {{"linears", int64_t(r.linears.size())}, {"by_method_bits", methods},
                   {"fallback_experts", fallbacks},
                   {"experts_below_min", {{"routed", expertsBelowMinimum(r, false)}, {"after_balancing", expertsBelowMinimum(r, true)}}},
                   {"mean_rel_error", orNull(r.meanRelError)},
                   {"seconds", r.seconds}};
    if (prunedLinears > 0)
        j["totals"]["pruning"] = {{"linears", prunedLinears}, {"weights", prunedNumel}, {"pruned", prunedCount},
                                  {"zeros", prunedZeros},
                                  {"achieved_sparsity", double(prunedCount) / double(std::max<int64_t>(prunedNumel, 1))}};
    j["experts"] = experts;
    j["linears"] = linears;
    return j.dump(1);
}

} // namespace moewb
