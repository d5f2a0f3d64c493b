// SPDX-License-Identifier: MIT
// Plan JSON (docs/plan-format.md), validation, expansion, GPTQ byte accounting and the `dynamic`
// export. See moewb/plan/plan.h.
#include "moewb/core/json_limits.h"
#include "moewb/plan/plan.h"
#include "moewb/plan/plan_settings.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include <unistd.h>

namespace moewb {

using ojson = nlohmann::ordered_json;

bool isValidBits(int64_t bits)
{
    return bits == 2 || bits == 3 || bits == 4 || bits == 8 || bits == 16;
}

bool isValidGroupSize(int64_t g)
{
    return g == -1 || (g > 0 && g % 16 == 0);
}

bool isQuantizableRole(LinearRole role)
{
    return role != LinearRole::Router && role != LinearRole::SharedGate;
}

bool operator==(const QuantSettings& a, const QuantSettings& b)
{
    return a.bits == b.bits && a.groupSize == b.groupSize && a.sym == b.sym && a.method == b.method
        && a.actOrder == b.actOrder && a.staticGroups == b.staticGroups && a.sparsity == b.sparsity
        && a.pattern == b.pattern && a.pruneMethod == b.pruneMethod;
}

static bool operator==(const PlanProvenance& a, const PlanProvenance& b)
{
    return a.strategy == b.strategy && a.modelPath == b.modelPath && a.statsPath == b.statsPath
        && a.architecture == b.architecture && a.targetBits == b.targetBits && a.targetBytes == b.targetBytes
        && a.achievedBits == b.achievedBits && a.achievedBytes == b.achievedBytes && a.seed == b.seed
        && a.params == b.params && a.toolVersion == b.toolVersion && a.created == b.created;
}

bool operator==(const Plan& a, const Plan& b)
{
    auto sameDefaults = [](const PlanDefaults& x, const PlanDefaults& y) {
        return x.bits == y.bits && x.groupSize == y.groupSize && x.sym == y.sym && x.method == y.method
            && x.actOrder == y.actOrder && x.staticGroups == y.staticGroups && x.sparsity == y.sparsity
            && x.pattern == y.pattern && x.pruneMethod == y.pruneMethod;
    };
    if (a.rules.size() != b.rules.size())
        return false;
    for (size_t i = 0; i < a.rules.size(); ++i)
        if (a.rules[i].match != b.rules[i].match || !(a.rules[i].set == b.rules[i].set))
            return false;
    return a.version == b.version && sameDefaults(a.defaults, b.defaults) && a.overrides == b.overrides
        && a.droppedExperts == b.droppedExperts && a.droppedLayers == b.droppedLayers
        && a.droppedBlocks == b.droppedBlocks && a.activationBits == b.activationBits
        && a.provenance == b.provenance;
}

// ------------------------------------------------------------------------------------ parsing
namespace {

struct Parser {
    std::string where;

    [[noreturn]] void fail(const std::string& path, const std::string& msg) const
    {
        throw InputError(where, path + ": " + msg);
    }
    void onlyKeys(const ojson& obj, const std::string& path, std::initializer_list<const char*> keys) const
    {
        if (!obj.is_object())
            fail(path, "expected an object");
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            bool known = false;
            for (const char* k : keys)
                known = known || it.key() == k;
            if (!known)
                fail(path + "." + it.key(), "unknown key");
        }
    }
    int64_t integer(const ojson& v, const std::string& path) const
    {
        if (!v.is_number_integer())
            fail(path, "expected an integer");
        return v.get<int64_t>();
    }
    double number(const ojson& v, const std::string& path) const
    {
        if (!v.is_number())
            fail(path, "expected a number");
        return v.get<double>();
    }
    bool boolean(const ojson& v, const std::string& path) const
    {
        if (!v.is_boolean())
            fail(path, "expected true or false");
        return v.get<bool>();
    }
    std::string string(const ojson& v, const std::string& path) const
    {
        if (!v.is_string())
            fail(path, "expected a string");
        return v.get<std::string>();
    }
    int64_t bits(const ojson& v, const std::string& path) const
    {
        const int64_t b = integer(v, path);
        if (!isValidBits(b))
            fail(path, std::to_string(b) + " not in {2,3,4,8,16}");
        return b;
    }
    int64_t groupSize(const ojson& v, const std::string& path) const
    {
        const int64_t g = integer(v, path);
        if (!isValidGroupSize(g))
            fail(path, "group size " + std::to_string(g) + " is invalid (use -1 or a positive multiple of 16)");
        return g;
    }
    std::string method(const ojson& v, const std::string& path) const
    {
        const std::string m = string(v, path);
        if (m != "rtn" && m != "gptq")
            fail(path, "method '" + m + "' is not rtn or gptq");
        return m;
    }
    QuantSettings settings(const ojson& obj, const std::string& path, bool allowMatch) const
    {
        if (allowMatch)
            onlyKeys(obj, path, {"match", "bits", "group_size", "sym", "method", "act_order", "static_groups",
                                 "sparsity", "pattern", "prune_method"});
        else
            onlyKeys(obj, path, {"bits", "group_size", "sym", "method", "act_order", "static_groups", "sparsity",
                                 "pattern", "prune_method"});
        QuantSettings s;
        if (obj.contains("bits"))
            s.bits = bits(obj["bits"], path + ".bits");
        if (obj.contains("group_size"))
            s.groupSize = groupSize(obj["group_size"], path + ".group_size");
        if (obj.contains("sym"))
            s.sym = boolean(obj["sym"], path + ".sym");
        if (obj.contains("method"))
            s.method = method(obj["method"], path + ".method");
        if (obj.contains("act_order"))
            s.actOrder = boolean(obj["act_order"], path + ".act_order");
        if (obj.contains("static_groups"))
            s.staticGroups = boolean(obj["static_groups"], path + ".static_groups");
        if (obj.contains("sparsity"))
            s.sparsity = sparsity(obj["sparsity"], path + ".sparsity");
        if (obj.contains("pattern"))
            s.pattern = pattern(obj["pattern"], path + ".pattern");
        if (obj.contains("prune_method"))
            s.pruneMethod = pruneMethod(obj["prune_method"], path + ".prune_method");
        return s;
    }
    double sparsity(const ojson& v, const std::string& path) const
    {
        const double x = number(v, path);
        try {
            checkSparsity(x, path);
        } catch (const InputError&) {
            fail(path, "sparsity " + v.dump() + " is outside [0, 1)");
        }
        return x;
    }
    std::string pattern(const ojson& v, const std::string& path) const
    {
        const std::string t = string(v, path);
        try {
            parsePrunePattern(t, path);
        } catch (const InputError& e) {
            throw InputError(where, e.what());
        }
        return t;
    }
    std::string pruneMethod(const ojson& v, const std::string& path) const
    {
        const std::string m = string(v, path);
        if (!isValidPruneMethod(m))
            fail(path, "prune method '" + m + "' is not magnitude, wanda or sparsegpt");
        return m;
    }
};

ojson settingsJson(const QuantSettings& s)
{
    ojson o = ojson::object();
    if (s.bits)
        o["bits"] = *s.bits;
    if (s.groupSize)
        o["group_size"] = *s.groupSize;
    if (s.sym)
        o["sym"] = *s.sym;
    if (s.method)
        o["method"] = *s.method;
    if (s.actOrder)
        o["act_order"] = *s.actOrder;
    if (s.staticGroups)
        o["static_groups"] = *s.staticGroups;
    if (s.sparsity)
        o["sparsity"] = *s.sparsity;
    if (s.pattern)
        o["pattern"] = *s.pattern;
    if (s.pruneMethod)
        o["prune_method"] = *s.pruneMethod;
    return o;
}

} // namespace

Plan parsePlanJson(const std::string& text, const std::string& where)
{
    Parser p{where};
    checkJsonDepth(text, where);
    ojson j;
    try {
        j = ojson::parse(text);
    } catch (const std::exception& e) {
        throw InputError(where, std::string("not valid JSON: ") + e.what());
    }
    p.onlyKeys(j, "$", {"format", "version", "defaults", "rules", "overrides", "drop", "activation_bits", "provenance"});
    if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != "moewb-plan")
        p.fail("$.format", "expected \"moewb-plan\"");
    if (!j.contains("version"))
        p.fail("$.version", "missing");
    Plan plan;
    plan.version = p.integer(j["version"], "$.version");
    if (plan.version != kPlanFormatVersion)
        p.fail("$.version", "unsupported version " + std::to_string(plan.version) + " (this moewb reads "
                   + std::to_string(kPlanFormatVersion) + ")");
    if (j.contains("defaults")) {
        const ojson& d = j["defaults"];
        p.onlyKeys(d, "$.defaults", {"bits", "group_size", "sym", "method", "act_order", "static_groups", "sparsity",
                                     "pattern", "prune_method"});
        if (d.contains("bits"))
            plan.defaults.bits = p.bits(d["bits"], "$.defaults.bits");
        if (d.contains("group_size"))
            plan.defaults.groupSize = p.groupSize(d["group_size"], "$.defaults.group_size");
        if (d.contains("sym"))
            plan.defaults.sym = p.boolean(d["sym"], "$.defaults.sym");
        if (d.contains("method"))
            plan.defaults.method = p.method(d["method"], "$.defaults.method");
        if (d.contains("act_order"))
            plan.defaults.actOrder = p.boolean(d["act_order"], "$.defaults.act_order");
        if (d.contains("static_groups"))
            plan.defaults.staticGroups = p.boolean(d["static_groups"], "$.defaults.static_groups");
        if (d.contains("sparsity"))
            plan.defaults.sparsity = p.sparsity(d["sparsity"], "$.defaults.sparsity");
        if (d.contains("pattern"))
            plan.defaults.pattern = p.pattern(d["pattern"], "$.defaults.pattern");
        if (d.contains("prune_method"))
            plan.defaults.pruneMethod = p.pruneMethod(d["prune_method"], "$.defaults.prune_method");
    }
    if (j.contains("rules")) {
        if (!j["rules"].is_array())
            p.fail("$.rules", "expected an array");
        for (size_t i = 0; i < j["rules"].size(); ++i) {
            const std::string path = "$.rules[" + std::to_string(i) + "]";
            const ojson& r = j["rules"][i];
            PlanRule rule;
            rule.set = p.settings(r, path, true);
            if (!r.contains("match"))
                p.fail(path + ".match", "missing");
            rule.match = p.string(r["match"], path + ".match");
            try {
                std::regex re(rule.match, std::regex::ECMAScript);
            } catch (const std::regex_error& e) {
                p.fail(path + ".match", "invalid regex '" + rule.match + "': " + e.what());
            }
            plan.rules.push_back(std::move(rule));
        }
    }
    if (j.contains("overrides")) {
        if (!j["overrides"].is_object())
            p.fail("$.overrides", "expected an object");
        for (auto it = j["overrides"].begin(); it != j["overrides"].end(); ++it)
            plan.overrides[it.key()] = p.settings(it.value(), "$.overrides[\"" + it.key() + "\"]", false);
    }
    if (j.contains("drop")) {
        const ojson& d = j["drop"];
        p.onlyKeys(d, "$.drop", {"experts", "layers", "blocks"});
        auto intList = [&](const char* key, std::vector<int64_t>& out) {
            if (!d.contains(key))
                return;
            const std::string path = std::string("$.drop.") + key;
            if (!d[key].is_array())
                p.fail(path, "expected an array of integers");
            for (size_t i = 0; i < d[key].size(); ++i)
                out.push_back(p.integer(d[key][i], path + "[" + std::to_string(i) + "]"));
        };
        intList("layers", plan.droppedLayers);
        intList("blocks", plan.droppedBlocks);
        if (d.contains("experts")) {
            if (!d["experts"].is_array())
                p.fail("$.drop.experts", "expected an array of [layer, expert] pairs");
            for (size_t i = 0; i < d["experts"].size(); ++i) {
                const std::string path = "$.drop.experts[" + std::to_string(i) + "]";
                const ojson& e = d["experts"][i];
                if (!e.is_array() || e.size() != 2)
                    p.fail(path, "expected a [layer, expert] pair");
                plan.droppedExperts.push_back({p.integer(e[0], path + "[0]"), p.integer(e[1], path + "[1]")});
            }
        }
    }
    if (j.contains("activation_bits")) {
        plan.activationBits = p.integer(j["activation_bits"], "$.activation_bits");
        const int64_t a = plan.activationBits;
        if (a != 4 && a != 8 && a != 16)
            p.fail("$.activation_bits", std::to_string(a) + " not in {4,8,16}");
    }
    if (j.contains("provenance")) {
        const ojson& v = j["provenance"];
        p.onlyKeys(v, "$.provenance", {"strategy", "model", "stats", "architecture", "target_bits", "target_bytes",
                                       "achieved_bits", "achieved_bytes", "seed", "params", "tool_version", "created"});
        PlanProvenance& pv = plan.provenance;
        auto str = [&](const char* k, std::string& out) {
            if (v.contains(k))
                out = p.string(v[k], std::string("$.provenance.") + k);
        };
        auto i64 = [&](const char* k, int64_t& out) {
            if (v.contains(k))
                out = p.integer(v[k], std::string("$.provenance.") + k);
        };
        auto dbl = [&](const char* k, double& out) {
            if (v.contains(k))
                out = p.number(v[k], std::string("$.provenance.") + k);
        };
        str("strategy", pv.strategy);
        str("model", pv.modelPath);
        str("stats", pv.statsPath);
        str("architecture", pv.architecture);
        dbl("target_bits", pv.targetBits);
        i64("target_bytes", pv.targetBytes);
        dbl("achieved_bits", pv.achievedBits);
        i64("achieved_bytes", pv.achievedBytes);
        i64("seed", pv.seed);
        str("params", pv.params);
        str("tool_version", pv.toolVersion);
        str("created", pv.created);
    }
    return plan;
}

Plan loadPlan(const std::string& path)
{
    return parsePlanJson(readFileBytes(path), path);
}

std::string planToJson(const Plan& plan)
{
    ojson j;
    j["format"] = "moewb-plan";
    j["version"] = plan.version;
    const PlanDefaults& d = plan.defaults;
    j["defaults"] = {{"bits", d.bits}, {"group_size", d.groupSize}, {"sym", d.sym}, {"method", d.method},
                     {"act_order", d.actOrder}};
    if (d.staticGroups) // written only when set, so plans without it stay byte-identical
        j["defaults"]["static_groups"] = true;
    if (d.sparsity != 0) // pruning keys likewise (#14)
        j["defaults"]["sparsity"] = d.sparsity;
    if (d.pattern != "unstructured")
        j["defaults"]["pattern"] = d.pattern;
    if (d.pruneMethod != "sparsegpt")
        j["defaults"]["prune_method"] = d.pruneMethod;
    j["rules"] = ojson::array();
    for (const PlanRule& r : plan.rules) {
        ojson o = {{"match", r.match}};
        const ojson set = settingsJson(r.set); // items() must not outlive the object
        for (auto it = set.begin(); it != set.end(); ++it)
            o[it.key()] = it.value();
        j["rules"].push_back(o);
    }
    j["overrides"] = ojson::object();
    for (const auto& [name, s] : plan.overrides)
        j["overrides"][name] = settingsJson(s);
    ojson experts = ojson::array();
    for (const DroppedExpert& e : plan.droppedExperts)
        experts.push_back({e.layer, e.expert});
    j["drop"] = {{"experts", experts}, {"layers", plan.droppedLayers}, {"blocks", plan.droppedBlocks}};
    j["activation_bits"] = plan.activationBits;
    const PlanProvenance& pv = plan.provenance;
    j["provenance"] = {{"strategy", pv.strategy}, {"model", pv.modelPath}, {"stats", pv.statsPath},
                       {"architecture", pv.architecture}, {"target_bits", pv.targetBits},
                       {"target_bytes", pv.targetBytes}, {"achieved_bits", pv.achievedBits},
                       {"achieved_bytes", pv.achievedBytes}, {"seed", pv.seed}, {"params", pv.params},
                       {"tool_version", pv.toolVersion}, {"created", pv.created}};
    return j.dump(2) + "\n";
}

void savePlan(const Plan& plan, const std::string& path)
{
    writeFileAtomically(path, planToJson(plan));
}

// ------------------------------------------------------------------------------- validation
void validatePlan(const Plan& plan, const ModelConfig& cfg, const std::string& where)
{
    std::map<std::string, LinearRole> known;
    for (const LinearInfo& li : listLinears(cfg))
        known.emplace(li.name, li.role);
    for (const auto& [name, s] : plan.overrides) {
        const std::string path = "$.overrides[\"" + name + "\"]";
        auto it = known.find(name);
        if (it == known.end())
            throw InputError(where, path + ": unknown module (the model has no linear of that name)");
        if (!isQuantizableRole(it->second))
            throw InputError(where, path + ": " + linearRoleName(it->second) + " is never quantized");
    }
    for (size_t i = 0; i < plan.droppedExperts.size(); ++i) {
        const DroppedExpert& e = plan.droppedExperts[i];
        const std::string path = "$.drop.experts[" + std::to_string(i) + "]";
        if (!cfg.isMoeLayer(e.layer))
            throw InputError(where, path + ": layer " + std::to_string(e.layer) + " is not a MoE layer");
        if (e.expert < 0 || e.expert >= cfg.numExperts)
            throw InputError(where, path + ": expert " + std::to_string(e.expert) + " out of range 0.."
                                 + std::to_string(cfg.numExperts - 1));
    }
    for (size_t i = 0; i < plan.droppedLayers.size(); ++i)
        if (!cfg.isMoeLayer(plan.droppedLayers[i]))
            throw InputError(where, "$.drop.layers[" + std::to_string(i) + "]: layer "
                                 + std::to_string(plan.droppedLayers[i]) + " is not a MoE layer");
    for (size_t i = 0; i < plan.droppedBlocks.size(); ++i)
        if (plan.droppedBlocks[i] < 0 || plan.droppedBlocks[i] >= cfg.numLayers)
            throw InputError(where, "$.drop.blocks[" + std::to_string(i) + "]: block "
                                 + std::to_string(plan.droppedBlocks[i]) + " out of range");
    // Pruning: every pruned linear's pattern must fit its in_features (M divides it).
    for (const PlanEntry& e : expandPlan(plan, cfg))
        if (e.sparsity > 0 && !e.dropped)
            checkPruneSpec(e.pruneSpec(), e.inFeatures, where + ": " + e.name);
}

// -------------------------------------------------------------------------------- expansion
void applyQuantSettings(PlanEntry& e, const QuantSettings& s)
{
    if (s.bits)
        e.bits = *s.bits;
    if (s.groupSize)
        e.groupSize = *s.groupSize;
    if (s.sym)
        e.sym = *s.sym;
    if (s.method)
        e.method = *s.method;
    if (s.actOrder)
        e.actOrder = *s.actOrder;
    if (s.staticGroups)
        e.staticGroups = *s.staticGroups;
    if (s.sparsity)
        e.sparsity = *s.sparsity;
    if (s.pattern)
        e.pattern = parsePrunePattern(*s.pattern, e.name);
    if (s.pruneMethod)
        e.pruneMethod = *s.pruneMethod;
}

std::vector<PlanEntry> expandPlan(const Plan& plan, const ModelConfig& cfg)
{
    std::vector<std::regex> res;
    for (const PlanRule& r : plan.rules)
        res.emplace_back(r.match, std::regex::ECMAScript | std::regex::optimize);
    std::set<std::pair<int64_t, int64_t>> dropE;
    for (const DroppedExpert& d : plan.droppedExperts)
        dropE.insert({d.layer, d.expert});
    const std::set<int64_t> dropL(plan.droppedLayers.begin(), plan.droppedLayers.end());
    const std::set<int64_t> dropB(plan.droppedBlocks.begin(), plan.droppedBlocks.end());

    std::vector<PlanEntry> out;
    for (const LinearInfo& li : listLinears(cfg)) {
        if (!isQuantizableRole(li.role))
            continue;
        PlanEntry e;
        e.name = li.name;
        e.layer = li.layer;
        e.expert = li.expert;
        e.role = li.role;
        e.inFeatures = li.inFeatures;
        e.outFeatures = li.outFeatures;
        e.bits = plan.defaults.bits;
        e.groupSize = plan.defaults.groupSize;
        e.sym = plan.defaults.sym;
        e.method = plan.defaults.method;
        e.actOrder = plan.defaults.actOrder;
        e.staticGroups = plan.defaults.staticGroups;
        e.sparsity = plan.defaults.sparsity;
        e.pattern = parsePrunePattern(plan.defaults.pattern, e.name);
        e.pruneMethod = plan.defaults.pruneMethod;
        for (size_t r = 0; r < res.size(); ++r)
            if (std::regex_match(li.name, res[r]))
                applyQuantSettings(e, plan.rules[r].set);
        auto it = plan.overrides.find(li.name);
        if (it != plan.overrides.end())
            applyQuantSettings(e, it->second);
        const bool mlpPart = li.role != LinearRole::Q && li.role != LinearRole::K && li.role != LinearRole::V
            && li.role != LinearRole::O;
        e.dropped = dropB.count(li.layer) || (mlpPart && dropL.count(li.layer) && cfg.isMoeLayer(li.layer))
            || (li.expert >= 0 && dropE.count({li.layer, li.expert}));
        if (e.sparsity > 0) // an N:M pattern fixes the sparsity; 0 always means "not pruned"
            e.sparsity = patternSparsity(e.pattern, e.sparsity);
        out.push_back(std::move(e));
    }
    return out;
}

// ---------------------------------------------------------------------------- byte accounting
int64_t gptqLinearBytes(int64_t k, int64_t n, int64_t bits, int64_t groupSize)
{
    if (bits >= 16)
        return 2 * k * n;
    const int64_t g = groupSize <= 0 ? k : groupSize;
    const int64_t groups = (k + g - 1) / g;
    const int64_t qweight = (k * bits + 31) / 32 * n * 4;
    const int64_t qzeros = groups * ((n * bits + 31) / 32) * 4;
    const int64_t scales = groups * n * 2;
    const int64_t gIdx = k * 4;
    return qweight + qzeros + scales + gIdx;
}

int64_t fixedModelBytes(const ModelConfig& cfg)
{
    int64_t quant = 0;
    for (const LinearInfo& li : listLinears(cfg))
        if (isQuantizableRole(li.role))
            quant += li.inFeatures * li.outFeatures;
    return 2 * (parameterCount(cfg) - quant);
}

PlanSize planSize(const std::vector<PlanEntry>& entries, const ModelConfig& cfg)
{
    PlanSize s;
    double bitSum = 0;
    for (const PlanEntry& e : entries) {
        if (e.dropped)
            continue;
        const int64_t numel = e.inFeatures * e.outFeatures;
        s.linearBytes += gptqLinearBytes(e.inFeatures, e.outFeatures, e.bits, e.groupSize);
        s.quantParams += numel;
        bitSum += double(e.bits) * double(numel);
        s.nonzeroParams += numel - (e.sparsity > 0 ? e.outFeatures * prunedPerRow(e.pruneSpec(), e.inFeatures) : 0);
    }
    s.density = s.quantParams ? double(s.nonzeroParams) / double(s.quantParams) : 1.0;
    s.modelBytes = s.linearBytes + fixedModelBytes(cfg);
    s.averageBits = s.quantParams ? bitSum / double(s.quantParams) : 0.0;
    s.effectiveBits = s.quantParams ? 8.0 * double(s.linearBytes) / double(s.quantParams) : 0.0;
    return s;
}

// ------------------------------------------------------------------------------ dynamic export
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

} // namespace

GptqExport exportGptqDynamic(const std::vector<PlanEntry>& entries, const std::vector<LinearInfo>& allLinears)
{
    std::map<std::string, const PlanEntry*> byName;
    for (const PlanEntry& e : entries)
        byName[e.name] = &e;
    std::map<Setting, int64_t> counts;
    for (const PlanEntry& e : entries)
        if (e.bits < 16)
            counts[{e.bits, e.groupSize, e.sym, e.actOrder}] += e.inFeatures * e.outFeatures;
    GptqExport ex;
    Setting global{4, 128, true, false};
    int64_t best = -1;
    for (const auto& [s, c] : counts)
        if (c > best)
            best = c, global = s;
    std::tie(ex.bits, ex.groupSize, ex.sym, ex.actOrder) = global;

    int64_t maxExpert = -1;
    for (const LinearInfo& li : allLinears)
        maxExpert = std::max(maxExpert, li.expert);
    std::set<int64_t> allExperts;
    for (int64_t e = 0; e <= maxExpert; ++e)
        allExperts.insert(e);

    auto settingOf = [&](const LinearInfo& li) {
        auto it = byName.find(li.name);
        if (it != byName.end() && it->second->bits < 16 && !it->second->dropped) {
            const PlanEntry& e = *it->second;
            return Setting{e.bits, e.groupSize, e.sym, e.actOrder};
        }
        return Setting{-1, 0, false, false};
    };
    // Stage 0: a layer whose quantized linears all share one non-global setting gets one prefix
    // rule "model.layers.L." (placed after the negative rules, which keep their own linears out).
    std::map<int64_t, std::set<Setting>> layerSettings;
    std::map<int64_t, std::string> layerHead;
    for (const LinearInfo& li : allLinears) {
        const Setting st = settingOf(li);
        if (std::get<0>(st) >= 0)
            layerSettings[li.layer].insert(st);
        layerHead[li.layer] = splitName(li.name, li.layer, li.expert).head;
    }
    std::map<std::pair<Setting, std::string>, std::vector<int64_t>> wholeLayers;
    std::set<int64_t> wholeLayer;
    for (const auto& [l, sts] : layerSettings)
        if (sts.size() == 1 && *sts.begin() != global) {
            wholeLayers[{*sts.begin(), layerHead[l]}].push_back(l);
            wholeLayer.insert(l);
        }

    // Stage 1: per (setting, head, layer, mid, tail), the set of experts.
    using K1 = std::tuple<Setting, std::string, int64_t, std::string, std::string>;
    std::map<K1, std::set<int64_t>> s1;
    for (const LinearInfo& li : allLinears) {
        const Setting st = settingOf(li);
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
    using K3 = std::tuple<Setting, std::string, std::string, std::set<int64_t>, std::vector<std::string>>;
    std::map<K3, std::vector<int64_t>> s3;
    for (const auto& [k, tails] : s2)
        s3[{std::get<0>(k), std::get<1>(k), std::get<3>(k), std::get<4>(k), tails}].push_back(std::get<2>(k));

    // A "+:" rule carries only the fields that differ from the global settings.
    auto positiveRule = [&ex](std::string key, const Setting& st) {
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
    };
    for (const auto& [k, layers] : s3) {
        const auto& [st, head, mid, experts, tails] = k;
        std::string re = escapeRegex(head) + intAlternation(layers, false) + escapeRegex(mid);
        const bool isExpert = !(experts.size() == 1 && *experts.begin() == -1);
        if (isExpert) {
            const std::vector<int64_t> ev(experts.begin(), experts.end());
            re += intAlternation(ev, experts == allExperts) + "\\.";
        }
        re += alternation(tails) + "$";
        ex.dynamic.push_back(std::get<0>(st) < 0 ? DynamicRule{"-:" + re, {}} : positiveRule("+:" + re, st));
    }
    for (const auto& [k, layers] : wholeLayers)
        ex.dynamic.push_back(positiveRule("+:" + escapeRegex(k.second) + intAlternation(layers, false) + "\\.", k.first));
    // Negative rules first: they are what GPTQModel checks to leave a module alone.
    std::stable_partition(ex.dynamic.begin(), ex.dynamic.end(),
                          [](const DynamicRule& r) { return r.key.rfind("-:", 0) == 0; });
    return ex;
}

std::string dynamicToJson(const GptqExport& e)
{
    ojson d = ojson::object();
    for (const DynamicRule& r : e.dynamic) {
        ojson o = ojson::object();
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
        applyQuantSettings(out, r.set);
        return out;
    }
    return out;
}

} // namespace moewb
