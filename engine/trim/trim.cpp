// SPDX-License-Identifier: MIT
// Expert trimming (#10): selection from stats and the trimmed checkpoint (moewb/trim/trim.h).
// The surgery is byte-level (copy, select router rows, zero): no tensor math, dtypes preserved.
#include "moewb/trim/trim.h"

#include "core/output_dir.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"
#include "moewb/safetensors/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace fs = std::filesystem;

namespace moewb {
namespace {

std::string joinInts(const std::vector<int64_t>& v)
{
    std::string s;
    for (int64_t x : v)
        s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
}

void checkStatsMatch(const ModelConfig& cfg, const CalibStats& stats, const std::string& where)
{
    if (stats.numLayers != cfg.numLayers || int64_t(stats.layers.size()) != cfg.numLayers)
        throw InputError(where, detail::concat("the stats file has ", stats.numLayers, " layers, the model ",
                                               cfg.numLayers, " (stats of another model?)"));
    if (stats.hiddenSize != 0 && stats.hiddenSize != cfg.hiddenSize)
        throw InputError(where, detail::concat("the stats file has hidden size ", stats.hiddenSize, ", the model ",
                                               cfg.hiddenSize, " (stats of another model?)"));
}

std::vector<int64_t> moeLayers(const ModelConfig& cfg)
{
    std::vector<int64_t> v;
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        if (cfg.isMoeLayer(l))
            v.push_back(l);
    return v;
}

/// Mean routing probability per expert (docs/algorithms.md §7.1).
std::vector<double> expertScores(const ModelConfig& cfg, const CalibStats& stats, int64_t layer)
{
    const RouterStats* r = stats.router(layer);
    const std::string where = "calibration statistics";
    if (!r)
        throw InputError(where, detail::concat("the stats file has no router statistics for MoE layer ", layer));
    if (r->numExperts != cfg.numExperts)
        throw InputError(where, detail::concat("layer ", layer, " has ", r->numExperts,
                                               " experts in the stats file, the model ", cfg.numExperts));
    auto usable = [&](const std::vector<double>& v) {
        double sum = 0.0;
        for (double x : v)
            sum += x;
        return int64_t(v.size()) == cfg.numExperts && sum > 0.0;
    };
    const std::vector<double>& mass = usable(r->expertProbMass) ? r->expertProbMass : r->expertWeightMass;
    if (!usable(mass))
        throw InputError(where, detail::concat("layer ", layer, ": no routing mass recorded (0 tokens?)"));
    const double tokens = double(std::max<int64_t>(r->tokens, 1));
    std::vector<double> s(mass.size());
    for (size_t e = 0; e < mass.size(); ++e)
        s[e] = mass[e] / tokens;
    return s;
}

void sortUnique(std::vector<int64_t>& v)
{
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

} // namespace

// ---- selection -------------------------------------------------------------------------------------

void selectExpertDrop(Plan& plan, const ModelConfig& cfg, const CalibStats& stats, int64_t keep, bool global)
{
    const std::string where = "experts to keep";
    if (!cfg.isMoe())
        throw InputError(where, cfg.architecture + " is a dense model: there are no experts to drop");
    if (keep > cfg.numExperts)
        throw InputError(where, detail::concat("cannot keep ", keep, " experts: the model has only ", cfg.numExperts,
                                               " per layer"));
    if (keep < cfg.topK)
        throw InputError(where, detail::concat("cannot keep ", keep, " experts: each token is routed to ", cfg.topK,
                                               " (num_experts_per_tok), so at least ", cfg.topK, " must stay"));
    checkStatsMatch(cfg, stats, "calibration statistics");
    const std::vector<int64_t> layers = moeLayers(cfg);
    // (score, -layer, -expert): ascending = dropped first; ties drop the higher index first.
    std::vector<std::tuple<double, int64_t, int64_t>> all;
    std::vector<DroppedExpert> drops;
    for (int64_t l : layers) {
        const std::vector<double> s = expertScores(cfg, stats, l);
        std::vector<std::tuple<double, int64_t, int64_t>> mine;
        for (int64_t e = 0; e < cfg.numExperts; ++e)
            mine.emplace_back(s[size_t(e)], -l, -e);
        if (global) {
            all.insert(all.end(), mine.begin(), mine.end());
            continue;
        }
        std::sort(mine.begin(), mine.end());
        for (int64_t i = 0; i < cfg.numExperts - keep; ++i)
            drops.push_back({-std::get<1>(mine[size_t(i)]), -std::get<2>(mine[size_t(i)])});
    }
    if (global) {
        std::sort(all.begin(), all.end());
        const int64_t n = (cfg.numExperts - keep) * int64_t(layers.size());
        for (int64_t i = 0; i < n; ++i)
            drops.push_back({-std::get<1>(all[size_t(i)]), -std::get<2>(all[size_t(i)])});
    }
    std::sort(drops.begin(), drops.end(), [](const DroppedExpert& a, const DroppedExpert& b) {
        return std::tie(a.layer, a.expert) < std::tie(b.layer, b.expert);
    });
    plan.droppedExperts.insert(plan.droppedExperts.end(), drops.begin(), drops.end());
}

/// The n candidate layers whose `score` (a BlockCosine similarity) is highest — the most redundant
/// first, ties broken towards deeper layers — in ascending order. Layer and Block Drop share it.
static std::vector<int64_t> mostSimilar(const CalibStats& stats, const std::vector<int64_t>& candidates,
                                        double BlockCosine::*score, int64_t n)
{
    std::vector<std::pair<double, int64_t>> s;
    for (int64_t l : candidates) {
        const LayerStats& ls = stats.layers[size_t(l)];
        if (ls.cosine.tokens <= 0)
            throw InputError("calibration statistics", detail::concat("layer ", l, " has no cosine similarity recorded"));
        s.emplace_back(ls.cosine.*score, l);
    }
    std::sort(s.begin(), s.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second > b.second;
    });
    std::vector<int64_t> drop;
    for (int64_t i = 0; i < n; ++i)
        drop.push_back(s[size_t(i)].second);
    sortUnique(drop);
    return drop;
}

void selectLayerDrop(Plan& plan, const ModelConfig& cfg, const CalibStats& stats, int64_t n)
{
    const std::string where = "MoE layers to drop";
    const std::vector<int64_t> layers = moeLayers(cfg);
    if (n < 1)
        throw InputError(where, detail::concat("must be at least 1, got ", n));
    if (n > int64_t(layers.size()))
        throw InputError(where, detail::concat("cannot drop ", n, " MoE layers: the model has ", layers.size(),
                                               layers.empty() ? " (a dense model)" : ""));
    checkStatsMatch(cfg, stats, "calibration statistics");
    const std::vector<int64_t> drop = mostSimilar(stats, layers, &BlockCosine::mlp, n);
    plan.droppedLayers.insert(plan.droppedLayers.end(), drop.begin(), drop.end());
}

void selectBlockDrop(Plan& plan, const ModelConfig& cfg, const CalibStats& stats, int64_t n)
{
    const std::string where = "blocks to drop";
    if (n < 1)
        throw InputError(where, detail::concat("must be at least 1, got ", n));
    if (n >= cfg.numLayers)
        throw InputError(where, detail::concat("cannot drop ", n, " blocks: the model has ", cfg.numLayers,
                                               " and at least one must stay"));
    checkStatsMatch(cfg, stats, "calibration statistics");
    std::vector<int64_t> all(size_t(cfg.numLayers));
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        all[size_t(l)] = l;
    const std::vector<int64_t> drop = mostSimilar(stats, all, &BlockCosine::block, n);
    plan.droppedBlocks.insert(plan.droppedBlocks.end(), drop.begin(), drop.end());
}

// ---- layout --------------------------------------------------------------------------------------

TrimLayout trimLayout(const ModelConfig& cfg, const Plan& plan, const std::string& where)
{
    // Existence first, with validatePlan's messages; then what only trimming cares about.
    for (size_t i = 0; i < plan.droppedExperts.size(); ++i) {
        const DroppedExpert& d = plan.droppedExperts[i];
        const std::string path = "$.drop.experts[" + std::to_string(i) + "]";
        if (d.layer < 0 || d.layer >= cfg.numLayers)
            throw InputError(where, detail::concat(path, ": layer ", d.layer, " does not exist (the model has ",
                                                   cfg.numLayers, " layers)"));
        if (!cfg.isMoeLayer(d.layer))
            throw InputError(where, detail::concat(path, ": layer ", d.layer, " is not a MoE layer"));
        if (d.expert < 0 || d.expert >= cfg.numExperts)
            throw InputError(where, detail::concat(path, ": expert ", d.expert, " does not exist (layers have ",
                                                   cfg.numExperts, " experts)"));
    }
    for (size_t i = 0; i < plan.droppedLayers.size(); ++i) {
        const int64_t l = plan.droppedLayers[i];
        const std::string path = "$.drop.layers[" + std::to_string(i) + "]";
        if (l < 0 || l >= cfg.numLayers)
            throw InputError(where, detail::concat(path, ": layer ", l, " does not exist (the model has ",
                                                   cfg.numLayers, " layers)"));
        if (!cfg.isMoeLayer(l))
            throw InputError(where, detail::concat(path, ": layer ", l,
                                                   " is a dense layer; Layer Drop removes MoE sub-layers only"));
    }
    for (size_t i = 0; i < plan.droppedBlocks.size(); ++i) {
        const int64_t l = plan.droppedBlocks[i];
        if (l < 0 || l >= cfg.numLayers)
            throw InputError(where, detail::concat("$.drop.blocks[", i, "]: block ", l,
                                                   " does not exist (the model has ", cfg.numLayers, " layers)"));
    }
    std::map<int64_t, std::set<int64_t>> dropE;
    for (const DroppedExpert& d : plan.droppedExperts)
        if (!dropE[d.layer].insert(d.expert).second)
            throw InputError(where, detail::concat("$.drop.experts: expert ", d.expert, " of layer ", d.layer,
                                                   " is listed twice"));
    std::set<int64_t> dropL, dropB;
    for (int64_t l : plan.droppedLayers)
        if (!dropL.insert(l).second)
            throw InputError(where, detail::concat("$.drop.layers: layer ", l, " is listed twice"));
    for (int64_t l : plan.droppedBlocks)
        if (!dropB.insert(l).second)
            throw InputError(where, detail::concat("$.drop.blocks: block ", l, " is listed twice"));
    if (int64_t(dropB.size()) >= cfg.numLayers)
        throw InputError(where, detail::concat("$.drop.blocks: drops all ", cfg.numLayers,
                                               " blocks; at least one must stay"));
    for (int64_t l : cfg.droppedMoeLayers) // a model trimmed before keeps its dropped MoE sub-layers dropped
        dropL.insert(l);

    TrimLayout out;
    out.numExperts = cfg.numExperts;
    // The expert count of the surviving, still-active MoE layers must be one number (HF configs have one key).
    std::map<int64_t, std::vector<int64_t>> keptOf; // surviving active MoE layer → kept count
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        if (cfg.isMoeLayer(l) && !dropB.count(l) && !dropL.count(l))
            keptOf[cfg.numExperts - int64_t(dropE[l].size())].push_back(l);
    if (keptOf.size() > 1) {
        std::string detailText;
        for (const auto& [k, ls] : keptOf)
            detailText += (detailText.empty() ? "" : "; ") + std::to_string(k) + " in layer"
                + (ls.size() > 1 ? "s " : " ") + joinInts(ls);
        throw InputError(where, "the MoE layers would keep different numbers of experts (" + detailText
                                    + "); a Hugging Face config.json has one expert count for all layers, so "
                                      "drop the same number in every layer (per-layer Expert Drop, not a global one)");
    }
    if (!keptOf.empty())
        out.numExperts = keptOf.begin()->first;
    else if (!dropE.empty()) // only dropped layers have expert drops: use the largest count dropped
        for (const auto& [l, s] : dropE)
            out.numExperts = std::min(out.numExperts, cfg.numExperts - int64_t(s.size()));
    if (cfg.isMoe() && out.numExperts < cfg.topK)
        throw InputError(where, detail::concat("layers would keep ", out.numExperts,
                                               " experts, fewer than the ", cfg.topK,
                                               " each token is routed to (num_experts_per_tok)"));

    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        if (dropB.count(l))
            continue;
        const int64_t i = int64_t(out.sourceLayer.size());
        out.sourceLayer.push_back(l);
        std::vector<int64_t> kept;
        if (cfg.isMoeLayer(l)) {
            const std::set<int64_t>& d = dropE[l];
            for (int64_t e = 0; e < cfg.numExperts && int64_t(kept.size()) < out.numExperts; ++e)
                if (!d.count(e))
                    kept.push_back(e);
            for (int64_t e = 0; e < cfg.numExperts && int64_t(kept.size()) < out.numExperts; ++e)
                if (d.count(e)) // a dropped MoE sub-layer that listed more drops: its experts are zero anyway
                    kept.push_back(e);
            std::sort(kept.begin(), kept.end());
            if (dropL.count(l))
                out.droppedMoeLayers.push_back(i);
        }
        out.keptExperts.push_back(std::move(kept));
    }
    return out;
}

// ---- config.json -----------------------------------------------------------------------------------

std::string trimmedConfigJson(const std::string& configJsonText, const ModelConfig& cfg, const TrimLayout& layout,
                              const std::string& where)
{
    nlohmann::ordered_json j;
    try {
        j = nlohmann::ordered_json::parse(configJsonText);
    } catch (const nlohmann::json::parse_error& e) {
        throw InputError(where, std::string("invalid JSON: ") + e.what());
    }
    const int64_t newL = int64_t(layout.sourceLayer.size());
    std::vector<int64_t> denseNew;
    for (int64_t i = 0; i < newL; ++i)
        if (!cfg.isMoeLayer(layout.sourceLayer[size_t(i)]))
            denseNew.push_back(i);
    j["num_hidden_layers"] = newL;
    if (cfg.isMoe()) {
        switch (cfg.arch) {
        case Arch::Mixtral: j["num_local_experts"] = layout.numExperts; break;
        case Arch::DeepseekMoe: {
            j["n_routed_experts"] = layout.numExperts;
            int64_t firstDense = 0;
            for (int64_t s : layout.sourceLayer)
                firstDense += s < cfg.firstKDenseReplace ? 1 : 0;
            if (j.contains("first_k_dense_replace"))
                j["first_k_dense_replace"] = firstDense;
            break;
        }
        case Arch::Qwen2Moe:
        case Arch::Qwen3Moe:
            j["num_experts"] = layout.numExperts;
            if (!denseNew.empty() || j.contains("mlp_only_layers")) {
                j["mlp_only_layers"] = denseNew;
                j["decoder_sparse_step"] = 1;
            }
            break;
        default: j["num_experts"] = layout.numExperts; break;
        }
    }
    // Per-layer lists some configs carry (e.g. layer_types): keep the surviving layers' entries.
    for (const char* key : {"layer_types"})
        if (j.contains(key) && j[key].is_array() && int64_t(j[key].size()) == cfg.numLayers) {
            nlohmann::ordered_json a = nlohmann::ordered_json::array();
            for (int64_t s : layout.sourceLayer)
                a.push_back(j[key][size_t(s)]);
            j[key] = a;
        }
    if (j.contains("max_window_layers") && j["max_window_layers"].is_number_integer())
        j["max_window_layers"] = std::min<int64_t>(j["max_window_layers"].get<int64_t>(), newL);
    if (layout.droppedMoeLayers.empty())
        j.erase("moewb_dropped_moe_layers");
    else
        j["moewb_dropped_moe_layers"] = layout.droppedMoeLayers;
    const std::string text = j.dump(2) + "\n";

    // The rewritten config must describe exactly the layers we write.
    const ModelConfig n = parseConfigJson(text, where + " (trimmed)");
    if (n.numLayers != newL || n.numExperts != (cfg.isMoe() ? layout.numExperts : 0))
        throw Error("trimmed config.json does not round-trip (layers/experts)");
    for (int64_t i = 0; i < newL; ++i)
        if (n.isMoeLayer(i) != cfg.isMoeLayer(layout.sourceLayer[size_t(i)]))
            throw InputError(where, detail::concat("after dropping blocks ", "layer ", i, " (originally ",
                                                   layout.sourceLayer[size_t(i)],
                                                   ") would change between dense and MoE: this config's layer "
                                                   "pattern (moe_layer_freq / decoder_sparse_step) cannot express "
                                                   "the re-indexed model"));
    return text;
}

// ---- checkpoint ------------------------------------------------------------------------------------

namespace {

enum class Op { Copy, Rows, Zero };

struct OutTensor {
    std::string name, source;
    Op op = Op::Copy;
    std::vector<int64_t> shape;
    std::vector<int64_t> rows; ///< Op::Rows: source rows, in order
    bool active = true;        ///< false: part of a dropped MoE sub-layer
};

const char* expertRole(LinearRole r)
{
    switch (r) {
    case LinearRole::ExpertGate: return "gate";
    case LinearRole::ExpertUp: return "up";
    default: return "down";
    }
}

std::string readText(const fs::path& p)
{
    return readFileBytes(p.string());
}

bool isMoePart(LinearRole r)
{
    switch (r) {
    case LinearRole::Router:
    case LinearRole::SharedGate:
    case LinearRole::ExpertGate:
    case LinearRole::ExpertUp:
    case LinearRole::ExpertDown:
    case LinearRole::SharedGateProj:
    case LinearRole::SharedUp:
    case LinearRole::SharedDown:
        return true;
    default:
        return false;
    }
}

/// Name of the original linear that trimmed linear li (of trimmed layer li.layer) comes from.
std::string sourceLinear(const ModelConfig& cfg, const ModelConfig& ncfg, const TrimLayout& layout,
                         const LinearInfo& li)
{
    const int64_t s = layout.sourceLayer[size_t(li.layer)];
    if (li.expert >= 0)
        return cfg.expertLinear(s, layout.keptExperts[size_t(li.layer)][size_t(li.expert)], expertRole(li.role));
    return cfg.layerPrefix(s) + li.name.substr(ncfg.layerPrefix(li.layer).size());
}

} // namespace

Plan planForTrimmed(const Plan& plan, const ModelConfig& cfg, const TrimLayout& layout, const ModelConfig& trimmedCfg)
{
    std::map<std::string, std::string> newName; // original linear → trimmed linear
    for (const LinearInfo& li : listLinears(trimmedCfg))
        newName[sourceLinear(cfg, trimmedCfg, layout, li)] = li.name;
    Plan out = plan;
    out.droppedExperts.clear();
    out.droppedLayers.clear();
    out.droppedBlocks.clear();
    out.overrides.clear();
    for (const auto& [name, settings] : plan.overrides) {
        const auto it = newName.find(name);
        if (it != newName.end())
            out.overrides[it->second] = settings;
    }
    return out;
}

namespace {

/// The trimmed model: its config, the source layout and the tensors to write, each from its source.
struct TrimJob {
    const ModelConfig& cfg;
    const ModelConfig& ncfg;
    const TrimLayout& layout;
    const Checkpoint& ckpt;
    std::map<std::string, LinearInfo> newLinears; ///< the trimmed model's linears by name
};

/// Where one tensor of a trimmed decoder layer comes from, and how (rows of the router, zeros or
/// inactive for a dropped MoE sub-layer).
void sourceInLayer(const TrimJob& job, OutTensor& t)
{
    const std::string prefix = "model.layers.";
    const size_t dot = t.name.find('.', prefix.size());
    const int64_t i = std::stoll(t.name.substr(prefix.size(), dot - prefix.size()));
    const int64_t s = job.layout.sourceLayer[size_t(i)];
    const std::string rest = t.name.substr(dot); // ".self_attn.q_proj.weight"
    t.source = job.cfg.layerPrefix(s) + rest;
    const bool isWeight = rest.size() > 7 && rest.compare(rest.size() - 7, 7, ".weight") == 0;
    const bool isBias = rest.size() > 5 && rest.compare(rest.size() - 5, 5, ".bias") == 0;
    const std::string base = t.name.substr(0, t.name.size() - (isWeight ? 7 : isBias ? 5 : 0));
    const auto it = job.newLinears.find(base);
    const auto& droppedMoe = job.layout.droppedMoeLayers;
    const bool dropped = std::find(droppedMoe.begin(), droppedMoe.end(), i) != droppedMoe.end();
    if (it == job.newLinears.end()) {
        if (dropped && rest == ".post_attention_layernorm.weight")
            t.active = false;
        return;
    }
    const LinearInfo& li = it->second;
    if (li.expert >= 0)
        t.source = sourceLinear(job.cfg, job.ncfg, job.layout, li) + (isWeight ? ".weight" : ".bias");
    if (li.role == LinearRole::Router && isWeight && job.layout.numExperts != job.cfg.numExperts) {
        t.op = Op::Rows;
        t.rows = job.layout.keptExperts[size_t(i)];
    }
    if (dropped && isMoePart(li.role)) {
        t.active = false;
        if (li.role == LinearRole::ExpertDown || li.role == LinearRole::SharedDown)
            t.op = Op::Zero;
    }
}

/// Every tensor the trimmed config expects, each from its source (shape-checked); `consumed` gets the sources.
std::vector<OutTensor> expectedOutputs(const TrimJob& job, std::set<std::string>& consumed)
{
    std::vector<OutTensor> outs;
    for (const TensorSpec& spec : expectedTensors(job.ncfg)) {
        OutTensor t;
        t.name = spec.name;
        t.shape = spec.shape;
        t.source = spec.name;
        if (spec.name.rfind("model.layers.", 0) == 0)
            sourceInLayer(job, t);
        const TensorInfo& src = job.ckpt.info(t.source); // InputError names a missing tensor
        std::vector<int64_t> want = t.shape;
        if (t.op == Op::Rows)
            want[0] = job.cfg.numExperts;
        if (src.shape != want)
            throw InputError(job.ckpt.fileOf(t.source).path(),
                             "tensor '" + t.source + "' does not have the shape config.json implies");
        consumed.insert(t.source);
        outs.push_back(std::move(t));
    }
    return outs;
}

/// Tensors the config does not describe (e.g. rotary inv_freq buffers): kept with their layer.
void addUndescribedTensors(const TrimJob& job, const std::set<std::string>& consumed, std::vector<OutTensor>& outs)
{
    std::set<std::string> outNames;
    for (const OutTensor& t : outs)
        outNames.insert(t.name);
    std::map<int64_t, int64_t> newIndexOf;
    for (size_t i = 0; i < job.layout.sourceLayer.size(); ++i)
        newIndexOf[job.layout.sourceLayer[i]] = int64_t(i);
    for (const std::string& n : job.ckpt.names()) {
        if (consumed.count(n))
            continue;
        OutTensor t;
        t.source = n;
        t.name = n;
        t.shape = job.ckpt.info(n).shape;
        const std::string prefix = "model.layers.";
        if (n.rfind(prefix, 0) == 0) {
            const size_t dot = n.find('.', prefix.size());
            int64_t s = -1;
            try {
                s = std::stoll(n.substr(prefix.size(), dot - prefix.size()));
            } catch (const std::exception&) {
            }
            const auto it = newIndexOf.find(s);
            if (it == newIndexOf.end() || n.find(".experts.") != std::string::npos
                || n.find(".block_sparse_moe.") != std::string::npos)
                continue; // a dropped block's tensor (or an unknown per-expert one: not re-indexable)
            t.name = job.ncfg.layerPrefix(it->second) + n.substr(dot);
        }
        if (outNames.insert(t.name).second)
            outs.push_back(std::move(t));
    }
}

/// One output tensor's bytes: copied, zero, or the kept rows of its source.
void writeTrimmed(SafetensorsWriter& writer, const Checkpoint& ckpt, const OutTensor& t, uint64_t nbytes,
                  std::vector<uint8_t>& buf)
{
    const TensorInfo& src = ckpt.info(t.source);
    switch (t.op) {
    case Op::Copy:
        writer.write(t.name, ckpt.data(t.source), nbytes);
        break;
    case Op::Zero:
        buf.assign(nbytes, 0); // +0.0 in every float dtype
        writer.write(t.name, buf.data(), nbytes);
        break;
    case Op::Rows: {
        const uint64_t rowBytes = src.nbytes() / uint64_t(src.shape[0]);
        buf.resize(nbytes);
        const uint8_t* base = ckpt.data(t.source);
        for (size_t r = 0; r < t.rows.size(); ++r)
            std::memcpy(buf.data() + r * rowBytes, base + uint64_t(t.rows[r]) * rowBytes, rowBytes);
        writer.write(t.name, buf.data(), nbytes);
        break;
    }
    }
    ckpt.release(t.source);
}

/// model.safetensors of the trimmed model; counts what it holds into rep.
void writeTrimmedCheckpoint(const fs::path& dir, const Checkpoint& ckpt, const std::vector<OutTensor>& outs,
                            TrimReport& rep, const ProgressFn& progress)
{
    SafetensorsWriter writer((dir / "model.safetensors").string());
    for (const OutTensor& t : outs)
        writer.declare(t.name, ckpt.info(t.source).dtype, t.shape);
    writer.begin();
    std::vector<uint8_t> buf;
    int64_t done = 0;
    for (const OutTensor& t : outs) {
        report(progress, "trim", done++, int64_t(outs.size()), t.name);
        int64_t numel = 1;
        for (int64_t d : t.shape)
            numel *= d;
        const uint64_t nbytes = uint64_t(numel) * uint64_t(dtypeBytes(ckpt.info(t.source).dtype));
        rep.paramsAfter += numel;
        rep.activeParamsAfter += t.active ? numel : 0;
        rep.bytesAfter += int64_t(nbytes);
        writeTrimmed(writer, ckpt, t, nbytes, buf);
    }
    writer.commit();
    report(progress, "trim", int64_t(outs.size()), int64_t(outs.size()));
}

/// Sizes before trimming and the notes on what loaders will do differently.
void describeTrim(TrimReport& rep, const ModelConfig& cfg, const ModelConfig& ncfg, const TrimLayout& layout,
                  const Checkpoint& ckpt)
{
    rep.layersBefore = cfg.numLayers;
    rep.layersAfter = ncfg.numLayers;
    rep.expertsBefore = cfg.numExperts;
    rep.expertsAfter = ncfg.numExperts;
    for (const std::string& n : ckpt.names()) {
        rep.paramsBefore += ckpt.info(n).numel();
        rep.bytesBefore += int64_t(ckpt.info(n).nbytes());
    }
    if (!layout.droppedMoeLayers.empty())
        rep.notes.push_back("MoE sub-layers of layers " + joinInts(layout.droppedMoeLayers)
                            + " (new indices) are dropped: a " + cfg.architecture
                            + " config cannot express a layer without MoE, so their experts' down_proj"
                            + (cfg.hasSharedExpert() ? " and the shared expert's down_proj" : "")
                            + " are zero (Hugging Face loaders compute h + 0 but still run the router and "
                              "experts); moewb skips them (config key moewb_dropped_moe_layers)");
    if (ncfg.numExperts != cfg.numExperts && !cfg.normTopkProb)
        rep.notes.push_back(detail::concat("norm_topk_prob is false: the router softmax now runs over the ",
                                           ncfg.numExperts, " kept experts, so the kept experts' mixing weights "
                                           "grow by the probability mass the dropped ones had"));
}

} // namespace

TrimReport trimCheckpoint(const std::string& modelDir, const Plan& plan, const std::string& outDir, bool force,
                          const ProgressFn& progress)
{
    const fs::path cfgPath = fs::path(modelDir) / "config.json";
    const ModelConfig cfg = loadConfig(modelDir);
    const TrimLayout layout = trimLayout(cfg, plan, "plan");
    const std::string newConfig = trimmedConfigJson(readText(cfgPath), cfg, layout, cfgPath.string());
    const ModelConfig ncfg = parseConfigJson(newConfig, cfgPath.string() + " (trimmed)");

    const Checkpoint ckpt = Checkpoint::open(modelDir);
    for (const std::string& n : ckpt.names())
        if (n.size() > 8 && n.compare(n.size() - 8, 8, ".qweight") == 0)
            throw InputError(modelDir, "is a GPTQ-quantized checkpoint ('" + n
                                           + "'); trim the unquantized model, then quantize the result");

    TrimJob job{cfg, ncfg, layout, ckpt, {}};
    for (LinearInfo& li : listLinears(ncfg))
        job.newLinears.emplace(li.name, li);
    std::set<std::string> consumed;
    std::vector<OutTensor> outs = expectedOutputs(job, consumed);
    addUndescribedTensors(job, consumed, outs);

    TrimReport rep;
    const fs::path tmpPath = prepareOutputDir(modelDir, outDir, force);
    TempDir tmp(tmpPath);
    copyCompanionFiles(modelDir, tmpPath);
    writeTextFile(tmpPath / "config.json", newConfig);
    writeTrimmedCheckpoint(tmpPath, ckpt, outs, rep, progress);

    Plan record = plan;
    if (record.provenance.modelPath.empty())
        record.provenance.modelPath = modelDir;
    if (record.provenance.architecture.empty())
        record.provenance.architecture = cfg.architecture;
    savePlan(record, (tmpPath / "moewb_plan.json").string());
    describeTrim(rep, cfg, ncfg, layout, ckpt);

    publishOutputDir(tmpPath, outDir);
    tmp.release();
    return rep;
}

} // namespace moewb
