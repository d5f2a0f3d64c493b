// SPDX-License-Identifier: MIT
// The ggml-type error table as JSON (moewb/alloc/ggml_errors.h): the cache file of
// `plan --strategy budget --target gguf --errors FILE`.
#include "moewb/alloc/ggml_errors.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"

#include <nlohmann/json.hpp>

#include <cmath>

namespace moewb {

namespace {

constexpr const char* kFormat = "moewb-ggml-errors";

nlohmann::ordered_json row(const GgmlTensorErrors& e)
{
    return {{"name", e.name}, {"error", e.error}};
}

GgmlTensorErrors readRow(const nlohmann::json& j, size_t types, const std::string& path)
{
    GgmlTensorErrors e;
    e.name = j.at("name").get<std::string>();
    e.error = j.at("error").get<std::vector<double>>();
    MOEWB_CHECK(e.error.size() == types, path, e.name, ": ", e.error.size(), " errors, expected one per type (", types,
                ")");
    for (double v : e.error)
        MOEWB_CHECK(std::isfinite(v) && v >= 0, path, e.name, ": error ", v, " is not a finite non-negative number");
    return e;
}

} // namespace

void saveGgmlErrorTable(const GgmlErrorTable& t, const std::string& path)
{
    nlohmann::ordered_json j;
    j["format"] = kFormat;
    j["version"] = 1;
    j["types"] = t.types;
    j["cost_model"] = costModelName(t.costModel);
    j["seconds"] = t.seconds;
    j["token_embd"] = row(t.tokenEmbd);
    j["output"] = row(t.output);
    j["linears"] = nlohmann::ordered_json::array();
    for (const GgmlTensorErrors& l : t.linears)
        j["linears"].push_back(row(l));
    writeFileAtomically(path, j.dump() + "\n");
}

GgmlErrorTable loadGgmlErrorTable(const std::string& path)
{
    const std::string text = readFileBytes(path);
    GgmlErrorTable t;
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        MOEWB_CHECK(j.is_object() && j.value("format", "") == kFormat && j.value("version", 0) == 1, path,
                    "not a moewb ggml error table (format ", kFormat, ", version 1; the --target gptq table is another "
                    "file)");
        t.types = j.at("types").get<std::vector<std::string>>();
        MOEWB_CHECK(!t.types.empty(), path, "no candidate types");
        // Tables written before the Fisher cost model hold the proxy.
        const std::string cm = j.value("cost_model", std::string("proxy"));
        MOEWB_CHECK(cm == "proxy" || cm == "fisher", path, "unknown cost_model '", cm, "' (fisher or proxy)");
        t.costModel = parseCostModel(cm);
        t.seconds = j.value("seconds", 0.0);
        t.tokenEmbd = readRow(j.at("token_embd"), t.types.size(), path);
        t.output = readRow(j.at("output"), t.types.size(), path);
        for (const auto& l : j.at("linears"))
            t.linears.push_back(readRow(l, t.types.size(), path));
    } catch (const nlohmann::json::exception& e) {
        throw InputError(path, std::string("bad ggml error table: ") + e.what());
    }
    return t;
}

} // namespace moewb
