// SPDX-License-Identifier: MIT
#include "moewb/export/llama_bridge.h"

#include "export/gguf_types.h"
#include "gguf/gguf_file.h"
#include "model/gguf_config.h"
#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>

namespace moewb {

namespace {

LinearRole roleFromName(const std::string& name, const std::string& where)
{
    for (int r = int(LinearRole::Q); r <= int(LinearRole::DenseDown); ++r)
        if (name == linearRoleName(LinearRole(r)))
            return LinearRole(r);
    throw InputError(where, "unknown linear role '" + name + "'");
}

bool isExpertRole(LinearRole r)
{
    return r == LinearRole::ExpertGate || r == LinearRole::ExpertUp || r == LinearRole::ExpertDown;
}

struct ImatrixEntry {
    int64_t in = 0;
    std::vector<float> values;   ///< [experts × in] act_sq_mean (0 for an expert without tokens)
    std::vector<int64_t> tokens; ///< [experts] tokens each expert's mean is over
    std::string skip;            ///< why the legacy format leaves it out ("" = complete)
};

/// Every GGUF weight the statistics cover, in first-seen order, with its per-expert means.
std::vector<std::pair<std::string, ImatrixEntry>> imatrixEntries(const CalibStats& stats, const std::string& where)
{
    std::vector<std::string> order;
    std::map<std::string, ImatrixEntry> entries;
    for (const LinearStats& ls : stats.linears) {
        const LinearRole role = roleFromName(ls.role, where);
        const std::string name = ggufWeightName(ls.layer, role);
        const bool stacked = isExpertRole(role);
        const RouterStats* router = stacked ? stats.router(ls.layer) : nullptr;
        const int64_t experts = router ? router->numExperts : 1;
        auto [it, fresh] = entries.try_emplace(name);
        ImatrixEntry& e = it->second;
        if (fresh) {
            order.push_back(name);
            e.in = ls.inFeatures;
            e.values.assign(size_t(experts * ls.inFeatures), 0.0f);
            e.tokens.assign(size_t(experts), 0);
        }
        MOEWB_CHECK(ls.inFeatures == e.in && (!stacked || (ls.expert >= 0 && ls.expert < experts)), where,
                    "linear '", ls.name, "' does not fit ", name);
        if (ls.actSqMean.empty() || ls.tokens == 0) {
            if (e.skip.empty())
                e.skip = ls.tokens == 0 ? ls.name + " saw no tokens" : "no act_sq_mean for " + ls.name;
            continue;
        }
        MOEWB_CHECK(int64_t(ls.actSqMean.size()) == e.in, where, "linear '", ls.name, "': act_sq_mean has ",
                    ls.actSqMean.size(), " values, expected ", e.in);
        const int64_t slot = stacked ? ls.expert : 0;
        std::copy(ls.actSqMean.begin(), ls.actSqMean.end(), e.values.begin() + slot * e.in);
        e.tokens[size_t(slot)] = ls.tokens;
    }
    std::vector<std::pair<std::string, ImatrixEntry>> out;
    for (const std::string& name : order)
        out.emplace_back(name, std::move(entries[name]));
    return out;
}

void put32(std::string& out, int32_t v)
{
    char b[4];
    std::memcpy(b, &v, 4);
    out.append(b, 4);
}

} // namespace

std::string llamaImatrixBytes(const CalibStats& stats, const std::string& dataset, LlamaImatrixResult& result,
                              const std::string& where)
{
    result = {};
    result.chunks = std::max<int64_t>(1, stats.provenance.numSamples);
    std::string body;
    for (auto& [name, e] : imatrixEntries(stats, where)) {
        if (!e.skip.empty()) {
            result.skipped.push_back(name + ": " + e.skip);
            continue;
        }
        MOEWB_CHECK(e.values.size() < size_t(INT32_MAX), where, name, ": too many values for the imatrix format");
        put32(body, int32_t(name.size()));
        body += name;
        put32(body, int32_t(result.chunks));
        put32(body, int32_t(e.values.size()));
        for (float& v : e.values)
            v *= float(result.chunks); // llama-quantize divides the legacy format's values by ncall
        body.append(reinterpret_cast<const char*>(e.values.data()), e.values.size() * sizeof(float));
        ++result.entries;
    }
    MOEWB_CHECK(result.entries > 0, where, "no linear has activation statistics (act_sq_mean) to write");
    std::string out;
    put32(out, int32_t(result.entries));
    out += body;
    put32(out, int32_t(result.chunks));
    put32(out, int32_t(dataset.size()));
    out += dataset;
    return out;
}

ImatrixFormat imatrixFormatForPath(const std::string& path)
{
    const std::string ext = ".gguf";
    const bool gguf = path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
    return gguf ? ImatrixFormat::Gguf : ImatrixFormat::Dat;
}

namespace {

/// llama-imatrix's GGUF layout (tools/imatrix/imatrix.cpp, llama.cpp d32676d): general.type
/// "imatrix", imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size; per weight, sorted by
/// name, "<weight>.in_sum2" F32 ne [in, experts] = Σ x² and "<weight>.counts" F32 ne [1, experts]
/// = tokens; llama-quantize uses in_sum2 / counts, and 1 where a count is 0.
LlamaImatrixResult writeImatrixGguf(const CalibStats& stats, const std::string& outFile, const std::string& where)
{
    LlamaImatrixResult r;
    r.chunks = std::max<int64_t>(1, stats.provenance.numSamples);
    std::vector<std::pair<std::string, ImatrixEntry>> entries = imatrixEntries(stats, where);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    gguf::Writer w(outFile);
    w.addKv("general.type", gguf::Value::str("imatrix"));
    w.addKv("imatrix.datasets", gguf::Value::strings({stats.provenance.dataDescription}));
    w.addKv("imatrix.chunk_count", gguf::Value::u32(uint32_t(r.chunks)));
    w.addKv("imatrix.chunk_size", gguf::Value::u32(uint32_t(std::max<int64_t>(1, stats.provenance.seqLen))));
    std::vector<std::pair<std::string, std::vector<float>>> data;
    for (auto& [name, e] : entries) {
        const int64_t experts = int64_t(e.tokens.size());
        if (std::all_of(e.tokens.begin(), e.tokens.end(), [](int64_t t) { return t == 0; })) {
            r.skipped.push_back(name + ": " + e.skip);
            continue;
        }
        std::vector<float> counts(e.tokens.begin(), e.tokens.end());
        for (int64_t x = 0; x < experts; ++x)
            for (int64_t j = 0; j < e.in; ++j)
                e.values[size_t(x * e.in + j)] *= counts[size_t(x)];
        w.addTensor(name + ".in_sum2", {e.in, experts}, gguf::GgmlType::F32);
        w.addTensor(name + ".counts", {1, experts}, gguf::GgmlType::F32);
        data.emplace_back(name + ".in_sum2", std::move(e.values));
        data.emplace_back(name + ".counts", std::move(counts));
        ++r.entries;
    }
    MOEWB_CHECK(r.entries > 0, where, "no linear has activation statistics (act_sq_mean) to write");
    w.begin();
    for (const auto& [name, values] : data)
        w.write(name, 0, values.data(), values.size() * sizeof(float));
    w.commit();
    return r;
}

} // namespace

LlamaImatrixResult writeLlamaImatrix(const CalibStats& stats, const std::string& outFile, bool force,
                                     const std::string& where, ImatrixFormat format)
{
    std::error_code ec;
    if (!force && std::filesystem::exists(outFile, ec))
        throw OutputExistsError(outFile);
    if (format == ImatrixFormat::Gguf)
        return writeImatrixGguf(stats, outFile, where);
    LlamaImatrixResult r;
    const std::string bytes = llamaImatrixBytes(stats, stats.provenance.dataDescription, r, where);
    writeFileAtomically(outFile, bytes);
    return r;
}

namespace {

std::string lower(std::string s)
{
    for (char& c : s)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// "^blk\.(0|1)\.attn_q\.weight$"
std::string pattern(const std::string& base, const std::vector<int64_t>& layers)
{
    std::string alt;
    for (size_t i = 0; i < layers.size(); ++i)
        alt += (i ? "|" : "") + std::to_string(layers[i]);
    return "^blk\\.(" + alt + ")\\." + base + "\\.weight$";
}

} // namespace

std::string llamaTensorTypes(const Plan& plan, const ModelConfig& cfg)
{
    using gguf_export::TensorTypes;
    const TensorTypes types(plan, cfg, gguf::GgmlType::F16);
    // (base name, type) → layers, in first-seen order of the base names
    std::vector<std::pair<std::string, std::string>> keys;
    std::map<std::pair<std::string, std::string>, std::vector<int64_t>> layers;
    std::map<std::pair<int64_t, LinearRole>, std::vector<const LinearInfo*>> experts;
    const std::vector<LinearInfo> linears = listLinears(cfg);
    auto add = [&](const LinearInfo& li, gguf::GgmlType t) {
        const std::string name = ggufWeightName(li.layer, li.role);
        const std::string base = name.substr(name.find('.', 4) + 1, name.size() - name.find('.', 4) - 8);
        const std::pair<std::string, std::string> key{base, lower(gguf::ggmlTypeName(types.fitting(t, li.inFeatures)))};
        auto& v = layers[key];
        if (v.empty())
            keys.push_back(key);
        if (v.empty() || v.back() != li.layer)
            v.push_back(li.layer);
    };
    for (const LinearInfo& li : linears) {
        if (li.role == LinearRole::Router || li.role == LinearRole::SharedGate)
            continue;
        if (isExpertRole(li.role)) {
            auto& group = experts[{li.layer, li.role}];
            group.push_back(&li);
            if (int64_t(group.size()) == cfg.numExperts)
                add(li, types.stacked(group).type);
            continue;
        }
        add(li, types.linear(li));
    }
    std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out;
    for (const auto& key : keys)
        out += pattern(key.first, layers[key]) + "=" + key.second + "\n";
    return out;
}

} // namespace moewb
