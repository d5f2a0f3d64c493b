// SPDX-License-Identifier: MIT
// `quantize --format gptq`: the output directory (moewb/export/gptq.h quantizeToGptqDir) and the
// reading side of quantization_config (readGptqConfig).
#include "moewb/export/gptq.h"

#include "gptq/gptq_pack.h"
#include "core/output_dir.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"
#include "moewb/core/version.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/gptq_dynamic.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace moewb {

namespace {

std::string readText(const fs::path& p)
{
    return readFileBytes(p.string());
}

ojson parseJsonFile(const fs::path& p)
{
    try {
        return ojson::parse(readText(p));
    } catch (const nlohmann::json::exception& e) {
        throw InputError(p.string(), std::string("invalid JSON (") + e.what() + ")");
    }
}

std::string gb(double bytes)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
    return buf;
}

/// Sequential-quantization step of a role (modules_in_block_to_quantize's outer list).
int roleStep(LinearRole r)
{
    switch (r) {
    case LinearRole::Q:
    case LinearRole::K:
    case LinearRole::V: return 0;
    case LinearRole::O: return 1;
    case LinearRole::ExpertDown:
    case LinearRole::SharedDown:
    case LinearRole::DenseDown: return 3;
    default: return 2;
    }
}

/// One tensor of the output checkpoint.
struct OutTensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    uint64_t nbytes = 0;
    size_t shard = 0;
};

uint64_t byteSize(DType d, const std::vector<int64_t>& shape)
{
    uint64_t n = uint64_t(dtypeBytes(d));
    for (int64_t s : shape)
        n *= uint64_t(s);
    return n;
}

std::string shardName(size_t i, size_t n)
{
    if (n == 1)
        return "model.safetensors";
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    return buf;
}

bool endsWith(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Tensor name ("….weight") → plan entry, for every linear the plan quantizes.
std::map<std::string, const PlanEntry*> quantizedLinears(const std::vector<PlanEntry>& entries,
                                                         const std::string& planPath)
{
    std::map<std::string, const PlanEntry*> quantized;
    for (const PlanEntry& e : entries)
        if (!e.dropped && e.bits < 16)
            quantized[e.name + ".weight"] = &e;
    MOEWB_CHECK(!quantized.empty(), planPath,
                "the plan leaves every linear at 16 bits: there is nothing to store as GPTQ (a fake-quantized "
                "export keeps the model as it is)");
    return quantized;
}

/// The output checkpoint: every tensor with its shape and shard, known before anything is
/// quantized (the writers need their headers first).
struct GptqLayout {
    std::vector<OutTensor> tensors; ///< in the input's name order
    size_t shards = 1;
    uint64_t total = 0; ///< tensor bytes
};

/// A quantized linear's four tensors take the place of its weight; the rest is copied.
std::vector<OutTensor> outputTensors(const Checkpoint& ckpt, const std::vector<std::string>& names,
                                     const std::map<std::string, const PlanEntry*>& quantized)
{
    std::vector<OutTensor> tensors;
    for (const std::string& n : names) {
        const TensorInfo& info = ckpt.info(n);
        auto it = quantized.find(n);
        if (it == quantized.end()) {
            tensors.push_back({n, info.dtype, info.shape, info.nbytes(), 0});
            continue;
        }
        const PlanEntry& e = *it->second;
        MOEWB_CHECK(info.shape == (std::vector<int64_t>{e.outFeatures, e.inFeatures}), ckpt.fileOf(n).path(),
                    "tensor '", n, "' does not have the shape config.json implies");
        const int64_t groups = gptq::groupCount(e.inFeatures, e.groupSize);
        const std::vector<std::tuple<std::string, DType, std::vector<int64_t>>> parts = {
            {".g_idx", DType::I32, {e.inFeatures}},
            {".qweight", DType::I32, gptq::qweightShape(e.inFeatures, e.outFeatures, e.bits)},
            {".qzeros", DType::I32, gptq::qzerosShape(e.outFeatures, groups, e.bits)},
            {".scales", DType::F16, gptq::scalesShape(e.outFeatures, groups)}};
        for (const auto& [suffix, dt, shape] : parts)
            tensors.push_back({e.name + suffix, dt, shape, byteSize(dt, shape), 0});
    }
    return tensors;
}

/// Shards: filled in name order; a new shard starts when the next tensor would overflow this one.
GptqLayout shardTensors(std::vector<OutTensor> tensors, int64_t maxShardBytes)
{
    GptqLayout l;
    l.tensors = std::move(tensors);
    uint64_t inShard = 0;
    for (OutTensor& t : l.tensors) {
        if (inShard > 0 && inShard + t.nbytes > uint64_t(maxShardBytes)) {
            ++l.shards;
            inShard = 0;
        }
        t.shard = l.shards - 1;
        inShard += t.nbytes;
        l.total += t.nbytes;
    }
    return l;
}

/// Tensors, headers (generously 256 bytes per tensor), the companion files and the JSON we add.
void checkDiskSpace(const std::string& modelDir, const fs::path& tmpPath, const GptqLayout& layout)
{
    uint64_t need = layout.total + 256 * layout.tensors.size() + (uint64_t(1) << 20);
    for (const auto& entry : fs::directory_iterator(modelDir))
        if (entry.is_regular_file() && isCompanionFile(entry.path()))
            need += entry.file_size();
    const int64_t avail = freeDiskBytes(tmpPath);
    if (avail >= 0 && uint64_t(avail) < need)
        throw IoError(tmpPath.parent_path().string(), "not enough free disk space: the GPTQ checkpoint needs "
                                                          + gb(double(need)) + ", " + gb(double(avail))
                                                          + " are available");
}

/// One SafetensorsWriter per shard, every tensor declared and the headers written.
class ShardWriters {
public:
    ShardWriters(const fs::path& dir, const GptqLayout& layout)
    {
        for (size_t i = 0; i < layout.shards; ++i)
            m_writers.push_back(std::make_unique<SafetensorsWriter>((dir / shardName(i, layout.shards)).string()));
        for (const OutTensor& t : layout.tensors) {
            m_writers[t.shard]->declare(t.name, t.dtype, t.shape);
            m_where[t.name] = &t;
        }
        for (auto& w : m_writers)
            w->begin();
    }

    void put(const std::string& name, const void* data, uint64_t nbytes)
    {
        const OutTensor* t = m_where.at(name);
        MOEWB_ASSERT(t->nbytes == nbytes);
        m_writers[t->shard]->write(name, data, nbytes);
    }

    void commit()
    {
        for (auto& w : m_writers)
            w->commit();
    }

private:
    std::vector<std::unique_ptr<SafetensorsWriter>> m_writers;
    std::map<std::string, const OutTensor*> m_where;
};

/// model.safetensors.index.json of a sharded checkpoint.
void writeShardIndex(const fs::path& dir, const GptqLayout& layout)
{
    ojson index;
    index["metadata"] = ojson{{"total_size", layout.total}};
    ojson map = ojson::object();
    std::map<std::string, std::string> sorted;
    for (const OutTensor& t : layout.tensors)
        sorted[t.name] = shardName(t.shard, layout.shards);
    for (const auto& [n, f] : sorted)
        map[n] = f;
    index["weight_map"] = map;
    writeTextFile(dir / "model.safetensors.index.json", index.dump(2) + "\n");
}

} // namespace

std::string gptqQuantizationConfigJson(const std::vector<PlanEntry>& entries, const ModelConfig& cfg,
                                       const QuantizeOptions& opt, const std::string& checkpointFormat)
{
    const GptqExport ex = exportGptqDynamic(entries, listLinears(cfg));
    bool staticGroups = false;
    std::vector<std::vector<std::string>> steps(4);
    std::set<std::string> seen;
    for (const PlanEntry& e : entries) {
        if (e.dropped || e.bits >= 16)
            continue;
        staticGroups = staticGroups || (e.actOrder && e.staticGroups);
        // Module path inside its decoder block: "model.layers.3.mlp.experts.0.up_proj" → "mlp.experts.0.up_proj".
        const std::string prefix = cfg.layerPrefix(e.layer) + ".";
        const std::string suffix = e.name.rfind(prefix, 0) == 0 ? e.name.substr(prefix.size()) : e.name;
        if (seen.insert(suffix).second)
            steps[size_t(roleStep(e.role))].push_back(suffix);
    }
    ojson inBlock = ojson::array();
    for (const auto& s : steps)
        if (!s.empty())
            inBlock.push_back(s);

    const std::string tool = std::string("moewb:") + version();
    ojson q = ojson::object();
    q["quant_method"] = "gptq";
    q["bits"] = ex.bits;
    q["group_size"] = ex.groupSize;
    q["desc_act"] = ex.actOrder;
    q["sym"] = ex.sym;
    q["static_groups"] = staticGroups;
    q["true_sequential"] = true;
    q["damp_percent"] = opt.damp;
    q["lm_head"] = false;
    q["checkpoint_format"] = checkpointFormat;
    q["pack_dtype"] = "int32";
    q["modules_in_block_to_quantize"] = inBlock;
    q["dynamic"] = ojson::parse(dynamicToJson(ex));
    q["meta"] = ojson{{"quantizer", ojson::array({tool})},
                      {"damp_percent", opt.damp},
                      {"true_sequential", true},
                      {"static_groups", staticGroups}};
    return q.dump(2);
}

namespace {

/// config.json as the model has it plus quantization_config, the same dict in quantize_config.json,
/// the plan and the report.
void writeGptqMetadata(const fs::path& dir, const std::string& modelDir, const Plan& plan,
                       const std::vector<PlanEntry>& entries, const ModelConfig& cfg, const QuantizeOptions& opt,
                       const GptqExportResult& res)
{
    const std::string qcText = gptqQuantizationConfigJson(entries, cfg, opt, res.checkpointFormat);
    ojson config = parseJsonFile(fs::path(modelDir) / "config.json");
    config["quantization_config"] = ojson::parse(qcText);
    writeTextFile(dir / "config.json", config.dump(2) + "\n");
    writeTextFile(dir / "quantize_config.json", qcText + "\n");
    savePlan(plan, (dir / "moewb_plan.json").string());
    writeTextFile(dir / "moewb_quant_report.json", reportToJson(res.report) + "\n");
}

} // namespace

GptqExportResult quantizeToGptqDir(const std::string& modelDir, const Plan& plan,
                                   const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                   const std::string& outDir, bool force, const std::string& calibDescription,
                                   const ProgressFn& progress, const GptqExportOptions& gopt)
{
    const gptq::ZeroFormat fmt = gptq::zeroFormatFromName(gopt.checkpointFormat, "GPTQ export");
    MOEWB_CHECK(gopt.maxShardBytes > 0, "GPTQ export", "the largest shard size must be positive");
    const ModelConfig cfg = loadConfig(modelDir);
    checkPlanForQuantize(plan, cfg, opt.planPath);
    const std::vector<PlanEntry> entries = expandPlan(plan, cfg);
    const std::map<std::string, const PlanEntry*> quantized = quantizedLinears(entries, opt.planPath);
    for (const auto& [n, e] : quantized)
        MOEWB_CHECK(e->ggmlType.empty(), opt.planPath,
                    "'" + e->name + "' has ggml_type " + e->ggmlType + ", which only --format gguf and fake write");
    if (!plan.ggufTokenEmbd.empty() || !plan.ggufOutput.empty())
        throw InputError(opt.planPath, "the plan sets GGUF types of token_embd / output, which --format gptq cannot write");
    const Checkpoint ckpt = Checkpoint::open(modelDir);
    const std::vector<std::string> names = ckpt.names();
    for (const std::string& n : names)
        MOEWB_CHECK(!endsWith(n, ".qweight"), ckpt.fileOf(n).path(),
                    "holds GPTQ tensors ('", n, "'): quantize the unquantized model instead");
    const GptqLayout layout = shardTensors(outputTensors(ckpt, names, quantized), gopt.maxShardBytes);

    const fs::path tmpPath = prepareOutputDir(modelDir, outDir, force);
    TempDir tmp(tmpPath);
    checkDiskSpace(modelDir, tmpPath, layout);
    copyCompanionFiles(modelDir, tmpPath);
    ShardWriters writers(tmpPath, layout);

    GptqExportResult res;
    res.checkpointFormat = gptq::zeroFormatName(fmt);
    std::set<std::string> written;
    auto sink = [&](const QuantizedWeight& w) {
        auto it = quantized.find(w.tensorName);
        MOEWB_ASSERT(it != quantized.end() && written.insert(w.tensorName).second);
        const PlanEntry& e = *it->second;
        MOEWB_ASSERT(w.shape == (std::vector<int64_t>{e.outFeatures, e.inFeatures}) && w.q && w.scales && w.zeros
                     && w.gIdx && w.groups == gptq::groupCount(e.inFeatures, e.groupSize));
        const gptq::PackedLinear p = gptq::packLinear(w.q, w.scales, w.zeros, w.gIdx, e.outFeatures, e.inFeatures,
                                                      w.groups, e.bits, fmt, e.name, &res.wrappedZeros);
        writers.put(e.name + ".qweight", p.qweight.data(), p.qweight.size() * 4);
        writers.put(e.name + ".qzeros", p.qzeros.data(), p.qzeros.size() * 4);
        writers.put(e.name + ".scales", p.scales.data(), p.scales.size() * 2);
        writers.put(e.name + ".g_idx", p.gIdx.data(), p.gIdx.size() * 4);
    };
    res.report = quantizeModel(modelDir, plan, sequences, opt, sink, progress);
    res.report.calibDescription = calibDescription;
    for (const auto& [n, e] : quantized)
        MOEWB_CHECK(written.count(n), n, "the quantizer did not produce this linear");

    // Everything not quantized: the checkpoint's bytes unchanged.
    int64_t i = 0;
    for (const std::string& n : names) {
        report(progress, "write", i++, int64_t(names.size()), n);
        if (quantized.count(n))
            continue;
        writers.put(n, ckpt.data(n), ckpt.info(n).nbytes());
        ckpt.release(n);
    }
    writers.commit();
    report(progress, "write", int64_t(names.size()), int64_t(names.size()));
    if (layout.shards > 1)
        writeShardIndex(tmpPath, layout);
    writeGptqMetadata(tmpPath, modelDir, plan, entries, cfg, opt, res);

    res.bytesOnDisk = directoryBytes(tmpPath);
    res.tensorBytes = layout.total;
    res.shards = int64_t(layout.shards);
    res.quantizedLinears = int64_t(quantized.size());
    publishOutputDir(tmpPath, outDir);
    tmp.release();
    return res;
}

} // namespace moewb
