// SPDX-License-Identifier: MIT
// A plan's per-linear table as GPTQModel `dynamic` overrides, and their lookup
// (moewb/plan/gptq_dynamic.h).
#include "moewb/plan/gptq_dynamic.h"

#include "moewb/core/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <tuple>

namespace moewb {

namespace {

std::string escapeRegex(const std::string& s)
{
    std::string out;
    for (char c : s) {
        if (std::strchr(".^$|()[]{}*+?\\", c))
            out += '\\';
        out += c;
    }
    return out;
}

std::string alternation(const std::vector<std::string>& parts)
{
    if (parts.size() == 1)
        return escapeRegex(parts[0]);
    std::string s = "(?:";
    for (size_t i = 0; i < parts.size(); ++i)
        s += (i ? "|" : "") + escapeRegex(parts[i]);
    return s + ")";
}

std::string intAlternation(const std::vector<int64_t>& v, bool all)
{
    if (all)
        return "\\d+";
    std::vector<std::string> s;
    for (int64_t x : v)
        s.push_back(std::to_string(x));
    return alternation(s);
}

// The setting a module is exported with; -1 bits = excluded ("-:").
using Setting = std::tuple<int64_t, int64_t, bool, bool>; // bits, group, sym, actOrder

// A name split around its layer and expert numbers: prefix L mid E suffix, with tails grouped.
struct Split {
    std::string head; ///< text before the layer number ("model.layers.")
    int64_t layer = -1;
    std::string mid;  ///< between layer and expert (".mlp.experts."), or the rest up to the last dot
    int64_t expert = -1;
    std::string tail; ///< last dotted component ("down_proj")
};

Split splitName(const std::string& name, int64_t layer, int64_t expert)
{
    Split s;
    s.layer = layer;
    s.expert = expert;
    const std::string lTok = "layers." + std::to_string(layer) + ".";
    const size_t lp = name.find(lTok);
    MOEWB_ASSERT(lp != std::string::npos);
    s.head = name.substr(0, lp + 7);
    std::string rest = name.substr(lp + lTok.size() - 1); // starts at "."
    const size_t dot = rest.rfind('.');
    s.tail = rest.substr(dot + 1);
    rest = rest.substr(0, dot + 1);
    if (expert >= 0) {
        const std::string eTok = "." + std::to_string(expert) + ".";
        const size_t ep = rest.rfind(eTok);
        MOEWB_ASSERT(ep != std::string::npos && ep + eTok.size() == rest.size());
        s.mid = rest.substr(0, ep + 1);
    } else {
        s.mid = rest;
    }
    return s;
}

/// The settings of every quantized, kept linear by name; the others are exported as excluded.
class Settings {
public:
    explicit Settings(const std::vector<PlanEntry>& entries)
    {
        for (const PlanEntry& e : entries)
            m_byName[e.name] = &e;
    }
    Setting of(const LinearInfo& li) const
    {
        auto it = m_byName.find(li.name);
        if (it != m_byName.end() && it->second->bits < 16 && !it->second->dropped) {
            const PlanEntry& e = *it->second;
            return Setting{e.bits, e.groupSize, e.sym, e.actOrder};
        }
        return Setting{-1, 0, false, false};
    }

private:
    std::map<std::string, const PlanEntry*> m_byName;
};

/// The most common quantized setting, by weights (4-bit, group 128, sym when nothing is quantized).
Setting globalSetting(const std::vector<PlanEntry>& entries)
{
    std::map<Setting, int64_t> counts;
    for (const PlanEntry& e : entries)
        if (e.bits < 16)
            counts[{e.bits, e.groupSize, e.sym, e.actOrder}] += e.inFeatures * e.outFeatures;
    Setting global{4, 128, true, false};
    int64_t best = -1;
    for (const auto& [s, c] : counts)
        if (c > best)
            best = c, global = s;
    return global;
}

/// A "+:" rule carries only the fields that differ from the global settings.
DynamicRule positiveRule(const GptqExport& ex, std::string key, const Setting& st)
{
    const auto& [bits, group, sym, actOrder] = st;
    DynamicRule r;
    r.key = std::move(key);
    if (bits != ex.bits)
        r.set.bits = bits;
    if (group != ex.groupSize)
        r.set.groupSize = group;
    if (sym != ex.sym)
        r.set.sym = sym;
    if (actOrder != ex.actOrder)
        r.set.actOrder = actOrder;
    return r;
}

/// (setting, "model.layers.") → layers
using WholeLayers = std::map<std::pair<Setting, std::string>, std::vector<int64_t>>;

/// Stage 0: a layer whose quantized linears all share one non-global setting gets one prefix rule
/// "model.layers.L." (placed after the negative rules, which keep their own linears out).
WholeLayers wholeLayers(const Settings& settings, const std::vector<LinearInfo>& allLinears, const Setting& global)
{
    std::map<int64_t, std::set<Setting>> layerSettings;
    std::map<int64_t, std::string> layerHead;
    for (const LinearInfo& li : allLinears) {
        const Setting st = settings.of(li);
        if (std::get<0>(st) >= 0)
            layerSettings[li.layer].insert(st);
        layerHead[li.layer] = splitName(li.name, li.layer, li.expert).head;
    }
    WholeLayers out;
    for (const auto& [l, sts] : layerSettings)
        if (sts.size() == 1 && *sts.begin() != global)
            out[{*sts.begin(), layerHead[l]}].push_back(l);
    return out;
}

/// (setting, head, mid, experts, tails) → layers
using Groups = std::map<std::tuple<Setting, std::string, std::string, std::set<int64_t>, std::vector<std::string>>,
                        std::vector<int64_t>>;

/// Stages 1 to 3: the linears not covered by the global setting or a whole-layer rule, grouped by
/// equal settings over experts, then tails, then layers.
Groups groupedLinears(const Settings& settings, const std::vector<LinearInfo>& allLinears, const Setting& global,
                      const std::set<int64_t>& wholeLayer)
{
    // Stage 1: per (setting, head, layer, mid, tail), the set of experts.
    using K1 = std::tuple<Setting, std::string, int64_t, std::string, std::string>;
    std::map<K1, std::set<int64_t>> s1;
    for (const LinearInfo& li : allLinears) {
        const Setting st = settings.of(li);
        if (st == global || (std::get<0>(st) >= 0 && wholeLayer.count(li.layer)))
            continue;
        const Split sp = splitName(li.name, li.layer, li.expert);
        s1[{st, sp.head, sp.layer, sp.mid, sp.tail}].insert(li.expert);
    }
    // Stage 2: merge tails with equal expert sets: (setting, head, layer, mid, experts) → tails.
    using K2 = std::tuple<Setting, std::string, int64_t, std::string, std::set<int64_t>>;
    std::map<K2, std::vector<std::string>> s2;
    for (const auto& [k, experts] : s1)
        s2[{std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), experts}].push_back(std::get<4>(k));
    // Stage 3: merge layers with equal (mid, experts, tails).
    Groups s3;
    for (const auto& [k, tails] : s2)
        s3[{std::get<0>(k), std::get<1>(k), std::get<3>(k), std::get<4>(k), tails}].push_back(std::get<2>(k));
    return s3;
}

} // namespace

GptqExport exportGptqDynamic(const std::vector<PlanEntry>& entries, const std::vector<LinearInfo>& allLinears)
{
    const Settings settings(entries);
    GptqExport ex;
    const Setting global = globalSetting(entries);
    std::tie(ex.bits, ex.groupSize, ex.sym, ex.actOrder) = global;

    int64_t maxExpert = -1;
    for (const LinearInfo& li : allLinears)
        maxExpert = std::max(maxExpert, li.expert);
    std::set<int64_t> allExperts;
    for (int64_t e = 0; e <= maxExpert; ++e)
        allExperts.insert(e);

    const WholeLayers whole = wholeLayers(settings, allLinears, global);
    std::set<int64_t> wholeLayer;
    for (const auto& [k, layers] : whole)
        wholeLayer.insert(layers.begin(), layers.end());
    for (const auto& [k, layers] : groupedLinears(settings, allLinears, global, wholeLayer)) {
        const auto& [st, head, mid, experts, tails] = k;
        std::string re = escapeRegex(head) + intAlternation(layers, false) + escapeRegex(mid);
        const bool isExpert = !(experts.size() == 1 && *experts.begin() == -1);
        if (isExpert) {
            const std::vector<int64_t> ev(experts.begin(), experts.end());
            re += intAlternation(ev, experts == allExperts) + "\\.";
        }
        re += alternation(tails) + "$";
        ex.dynamic.push_back(std::get<0>(st) < 0 ? DynamicRule{"-:" + re, {}} : positiveRule(ex, "+:" + re, st));
    }
    for (const auto& [k, layers] : whole)
        ex.dynamic.push_back(positiveRule(ex, "+:" + escapeRegex(k.second) + intAlternation(layers, false) + "\\.", k.first));
    // Negative rules first: they are what GPTQModel checks to leave a module alone.
    std::stable_partition(ex.dynamic.begin(), ex.dynamic.end(),
                          [](const DynamicRule& r) { return r.key.rfind("-:", 0) == 0; });
    return ex;
}

std::string dynamicToJson(const GptqExport& e)
{
    nlohmann::ordered_json d = nlohmann::ordered_json::object();
    for (const DynamicRule& r : e.dynamic) {
        nlohmann::ordered_json o = nlohmann::ordered_json::object();
        if (r.set.bits)
            o["bits"] = *r.set.bits;
        if (r.set.groupSize)
            o["group_size"] = *r.set.groupSize;
        if (r.set.sym)
            o["sym"] = *r.set.sym;
        if (r.set.actOrder)
            o["desc_act"] = *r.set.actOrder;
        d[r.key] = o;
    }
    return d.dump(2);
}

std::optional<PlanEntry> dynamicLookup(const GptqExport& e, const std::string& name)
{
    PlanEntry out;
    out.name = name;
    out.bits = e.bits;
    out.groupSize = e.groupSize;
    out.sym = e.sym;
    out.actOrder = e.actOrder;
    for (const DynamicRule& r : e.dynamic) {
        const bool negative = r.key.rfind("-:", 0) == 0;
        const std::string pat = (negative || r.key.rfind("+:", 0) == 0) ? r.key.substr(2) : r.key;
        const std::regex re(pat, std::regex::ECMAScript);
        // Python re.match: anchored at the start, not at the end.
        if (!std::regex_search(name, re, std::regex_constants::match_continuous))
            continue;
        if (negative)
            return std::nullopt;
        applyQuantSettings(out, r.set, name);
        return out;
    }
    return out;
}

} // namespace moewb
