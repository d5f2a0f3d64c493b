// SPDX-License-Identifier: MIT
// Plan files (docs/plan-format.md): reading them with one-line errors that name the file and the
// JSON path, and writing them. The quantization settings are read and written by iterating
// forEachSetting (moewb/plan/quant_settings.h).
#include "moewb/plan/plan.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"
#include "moewb/core/json_limits.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

namespace moewb {

namespace {

using ojson = nlohmann::ordered_json;

/// Every provenance field with its JSON key, in the order of the JSON output.
template <class F>
void forEachProvenanceField(F&& f)
{
    using P = PlanProvenance;
    f("strategy", &P::strategy);
    f("model", &P::modelPath);
    f("stats", &P::statsPath);
    f("architecture", &P::architecture);
    f("target_bits", &P::targetBits);
    f("target_bytes", &P::targetBytes);
    f("achieved_bits", &P::achievedBits);
    f("achieved_bytes", &P::achievedBytes);
    f("seed", &P::seed);
    f("params", &P::params);
    f("tool_version", &P::toolVersion);
    f("created", &P::created);
}

// ------------------------------------------------------------------------------------ reading
/// Reads the values of one plan file; every error is InputError(file, "<JSON path>: <problem>").
struct Reader {
    std::string where;

    [[noreturn]] void fail(const std::string& path, const std::string& msg) const
    {
        throw InputError(where, path + ": " + msg);
    }
    void onlyKeys(const ojson& obj, const std::string& path, const std::vector<std::string>& keys) const
    {
        if (!obj.is_object())
            fail(path, "expected an object");
        for (auto it = obj.begin(); it != obj.end(); ++it)
            if (std::find(keys.begin(), keys.end(), it.key()) == keys.end())
                fail(path + "." + it.key(), "unknown key");
    }
    void read(const ojson& v, const std::string& path, int64_t& out) const
    {
        if (!v.is_number_integer())
            fail(path, "expected an integer");
        out = v.get<int64_t>();
    }
    void read(const ojson& v, const std::string& path, double& out) const
    {
        if (!v.is_number())
            fail(path, "expected a number");
        out = v.get<double>();
    }
    void read(const ojson& v, const std::string& path, bool& out) const
    {
        if (!v.is_boolean())
            fail(path, "expected true or false");
        out = v.get<bool>();
    }
    void read(const ojson& v, const std::string& path, std::string& out) const
    {
        if (!v.is_string())
            fail(path, "expected a string");
        out = v.get<std::string>();
    }
    int64_t integer(const ojson& v, const std::string& path) const
    {
        int64_t x = 0;
        read(v, path, x);
        return x;
    }
    /// obj[field.key] read and checked.
    template <class Field>
    typename Field::ValueType setting(const Field& f, const ojson& obj, const std::string& objPath) const
    {
        const std::string path = objPath + "." + f.key;
        typename Field::ValueType x{};
        read(obj[f.key], path, x);
        const std::string problem = f.problem ? f.problem(x) : std::string();
        if (!problem.empty())
            fail(path, problem);
        return x;
    }
};

/// The keys of a plan's defaults and overrides; a rule also has "match".
const std::vector<std::string>& settingKeys(bool isRule)
{
    static const auto keys = [](bool rule) {
        std::vector<std::string> k;
        if (rule)
            k.push_back("match");
        forEachSetting([&k](const auto& f) { k.push_back(f.key); });
        return k;
    };
    static const std::vector<std::string> plain = keys(false), rule = keys(true);
    return isRule ? rule : plain;
}

PlanDefaults readDefaults(const Reader& p, const ojson& d)
{
    p.onlyKeys(d, "$.defaults", settingKeys(false));
    PlanDefaults out;
    forEachSetting([&](const auto& f) {
        if (d.contains(f.key))
            out.*f.defaults = p.setting(f, d, "$.defaults");
    });
    return out;
}

QuantSettings readSettings(const Reader& p, const ojson& obj, const std::string& path, bool isRule)
{
    p.onlyKeys(obj, path, settingKeys(isRule));
    QuantSettings s;
    forEachSetting([&](const auto& f) {
        if (obj.contains(f.key))
            s.*f.set = p.setting(f, obj, path);
    });
    return s;
}

std::vector<PlanRule> readRules(const Reader& p, const ojson& rules)
{
    if (!rules.is_array())
        p.fail("$.rules", "expected an array");
    std::vector<PlanRule> out;
    for (size_t i = 0; i < rules.size(); ++i) {
        const std::string path = "$.rules[" + std::to_string(i) + "]";
        const ojson& r = rules[i];
        PlanRule rule;
        rule.set = readSettings(p, r, path, true);
        if (!r.contains("match"))
            p.fail(path + ".match", "missing");
        p.read(r["match"], path + ".match", rule.match);
        try {
            std::regex re(rule.match, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            p.fail(path + ".match", "invalid regex '" + rule.match + "': " + e.what());
        }
        out.push_back(std::move(rule));
    }
    return out;
}

std::map<std::string, QuantSettings> readOverrides(const Reader& p, const ojson& overrides)
{
    if (!overrides.is_object())
        p.fail("$.overrides", "expected an object");
    std::map<std::string, QuantSettings> out;
    for (auto it = overrides.begin(); it != overrides.end(); ++it)
        out[it.key()] = readSettings(p, it.value(), "$.overrides[\"" + it.key() + "\"]", false);
    return out;
}

void readDrop(const Reader& p, const ojson& d, Plan& plan)
{
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
    if (!d.contains("experts"))
        return;
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

/// "gguf": {"token_embd": TYPE, "output": TYPE}, each "" or a ggml type (ggmlTypeProblem).
void readGguf(const Reader& p, const ojson& g, Plan& plan)
{
    p.onlyKeys(g, "$.gguf", {"token_embd", "output"});
    auto type = [&](const char* key, std::string& out) {
        if (!g.contains(key))
            return;
        const std::string path = std::string("$.gguf.") + key;
        if (!g[key].is_string())
            p.fail(path, "expected a string");
        out = g[key].get<std::string>();
        if (const std::string problem = ggmlTypeProblem(out); !problem.empty())
            p.fail(path, problem);
    };
    type("token_embd", plan.ggufTokenEmbd);
    type("output", plan.ggufOutput);
}

/// "target": "gptq" | "vllm" | "gguf" (moewb/plan/plan_target.h).
PlanTarget readTarget(const Reader& p, const ojson& v)
{
    PlanTarget t = PlanTarget::Gptq;
    if (!v.is_string() || !parsePlanTarget(v.get<std::string>(), t))
        p.fail("$.target", "expected \"gptq\", \"vllm\" or \"gguf\"");
    return t;
}

PlanProvenance readProvenance(const Reader& p, const ojson& v)
{
    std::vector<std::string> keys;
    forEachProvenanceField([&keys](const char* key, auto) { keys.push_back(key); });
    p.onlyKeys(v, "$.provenance", keys);
    PlanProvenance out;
    forEachProvenanceField([&](const char* key, auto member) {
        if (v.contains(key))
            p.read(v[key], std::string("$.provenance.") + key, out.*member);
    });
    return out;
}

ojson parseDocument(const std::string& text, const std::string& where)
{
    checkJsonDepth(text, where);
    try {
        return ojson::parse(text);
    } catch (const std::exception& e) {
        throw InputError(where, std::string("not valid JSON: ") + e.what());
    }
}

// ------------------------------------------------------------------------------------ writing
ojson settingsJson(const QuantSettings& s)
{
    ojson o = ojson::object();
    forEachSetting([&](const auto& f) {
        if (s.*f.set)
            o[f.key] = *(s.*f.set);
    });
    return o;
}

ojson defaultsJson(const PlanDefaults& d)
{
    const PlanDefaults initial;
    ojson o = ojson::object();
    forEachSetting([&](const auto& f) {
        if (f.written == InDefaults::Always || !(d.*f.defaults == initial.*f.defaults))
            o[f.key] = d.*f.defaults;
    });
    return o;
}

ojson provenanceJson(const PlanProvenance& pv)
{
    ojson o = ojson::object();
    forEachProvenanceField([&](const char* key, auto member) { o[key] = pv.*member; });
    return o;
}

} // namespace

Plan parsePlanJson(const std::string& text, const std::string& where)
{
    const Reader p{where};
    const ojson j = parseDocument(text, where);
    p.onlyKeys(j, "$", {"format", "version", "defaults", "rules", "overrides", "drop", "activation_bits", "gguf", "target", "provenance"});
    if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != "moewb-plan")
        p.fail("$.format", "expected \"moewb-plan\"");
    if (!j.contains("version"))
        p.fail("$.version", "missing");
    Plan plan;
    plan.version = p.integer(j["version"], "$.version");
    if (plan.version != kPlanFormatVersion)
        p.fail("$.version", "unsupported version " + std::to_string(plan.version) + " (this moewb reads "
                   + std::to_string(kPlanFormatVersion) + ")");
    if (j.contains("defaults"))
        plan.defaults = readDefaults(p, j["defaults"]);
    if (j.contains("rules"))
        plan.rules = readRules(p, j["rules"]);
    if (j.contains("overrides"))
        plan.overrides = readOverrides(p, j["overrides"]);
    if (j.contains("drop"))
        readDrop(p, j["drop"], plan);
    if (j.contains("activation_bits")) {
        const int64_t a = plan.activationBits = p.integer(j["activation_bits"], "$.activation_bits");
        if (a != 4 && a != 8 && a != 16)
            p.fail("$.activation_bits", std::to_string(a) + " not in {4,8,16}");
    }
    if (j.contains("gguf"))
        readGguf(p, j["gguf"], plan);
    if (j.contains("target"))
        plan.target = readTarget(p, j["target"]);
    if (j.contains("provenance"))
        plan.provenance = readProvenance(p, j["provenance"]);
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
    j["defaults"] = defaultsJson(plan.defaults);
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
    if (!plan.ggufTokenEmbd.empty() || !plan.ggufOutput.empty()) // absent in older plans: kept byte-identical
        j["gguf"] = {{"token_embd", plan.ggufTokenEmbd}, {"output", plan.ggufOutput}};
    if (plan.target != PlanTarget::Gptq) // absent in older plans and in gptq ones: kept byte-identical
        j["target"] = planTargetName(plan.target);
    j["provenance"] = provenanceJson(plan.provenance);
    return j.dump(2) + "\n";
}

void savePlan(const Plan& plan, const std::string& path)
{
    writeFileAtomically(path, planToJson(plan));
}

} // namespace moewb
