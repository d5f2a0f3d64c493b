// SPDX-License-Identifier: MIT
#include "moewb/gptq/gptq_checkpoint.h"

#include "moewb/core/error.h"
#include "moewb/core/json_limits.h"
#include "moewb/core/text_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace moewb {

namespace {

ojson parseJsonFile(const fs::path& p)
{
    const std::string text = readFileBytes(p.string());
    checkJsonDepth(text, p.string());
    try {
        return ojson::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw InputError(p.string(), std::string("invalid JSON (") + e.what() + ")");
    }
}

} // namespace

std::optional<GptqCheckpointConfig> readGptqConfig(const std::string& modelDir)
{
    const fs::path dir(modelDir);
    ojson q;
    fs::path where;
    std::error_code ec;
    if (fs::is_regular_file(dir / "config.json", ec)) {
        const ojson c = parseJsonFile(dir / "config.json");
        if (c.is_object() && c.contains("quantization_config") && c["quantization_config"].is_object()) {
            q = c["quantization_config"];
            where = dir / "config.json";
        }
    }
    if (q.is_null() && fs::is_regular_file(dir / "quantize_config.json", ec)) {
        q = parseJsonFile(dir / "quantize_config.json");
        where = dir / "quantize_config.json";
        MOEWB_CHECK(q.is_object(), where.string(), "not a JSON object");
        if (!q.contains("quant_method"))
            q["quant_method"] = "gptq";
    }
    if (q.is_null() || !q.contains("quant_method") || q["quant_method"] != "gptq")
        return std::nullopt;

    const std::string w = where.string();
    auto intField = [&](const ojson& o, std::initializer_list<const char*> keys, int64_t def, const std::string& path) {
        for (const char* k : keys)
            if (o.contains(k)) {
                MOEWB_CHECK(o[k].is_number_integer(), w, path, k, " must be an integer");
                return o[k].get<int64_t>();
            }
        return def;
    };
    auto boolField = [&](const ojson& o, const char* k, bool def, const std::string& path) {
        if (!o.contains(k))
            return def;
        MOEWB_CHECK(o[k].is_boolean(), w, path, k, " must be true or false");
        return o[k].get<bool>();
    };
    GptqCheckpointConfig r;
    r.settings.bits = intField(q, {"bits", "w_bit", "wbits"}, 4, "quantization_config.");
    r.settings.groupSize = intField(q, {"group_size", "q_group_size"}, 128, "quantization_config.");
    r.settings.sym = boolField(q, "sym", true, "quantization_config.");
    r.settings.actOrder = boolField(q, "desc_act", false, "quantization_config.");
    r.lmHead = boolField(q, "lm_head", false, "quantization_config.");
    for (const char* k : {"checkpoint_format", "format"})
        if (q.contains(k)) {
            MOEWB_CHECK(q[k].is_string(), w, "quantization_config.", k, " must be a string");
            r.checkpointFormat = q[k].get<std::string>();
            break;
        }
    if (q.contains("dynamic") && !q["dynamic"].is_null()) {
        MOEWB_CHECK(q["dynamic"].is_object(), w, "quantization_config.dynamic must be an object");
        for (const auto& [key, val] : q["dynamic"].items()) {
            const std::string path = "quantization_config.dynamic[\"" + key + "\"].";
            MOEWB_CHECK(val.is_object(), w, path, " must be an object");
            DynamicRule rule;
            rule.key = key;
            if (val.contains("bits"))
                rule.set.bits = intField(val, {"bits"}, 0, path);
            if (val.contains("group_size"))
                rule.set.groupSize = intField(val, {"group_size"}, 0, path);
            if (val.contains("sym"))
                rule.set.sym = boolField(val, "sym", true, path);
            if (val.contains("desc_act"))
                rule.set.actOrder = boolField(val, "desc_act", false, path);
            r.settings.dynamic.push_back(std::move(rule));
        }
    }
    return r;
}

} // namespace moewb
