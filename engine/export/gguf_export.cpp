// SPDX-License-Identifier: MIT
// `quantize --format gguf` (moewb/export/gguf.h): the layout from the config and the plan
// (gguf_layout, gguf_types, per architecture gguf_arch), the metadata (gguf_metadata,
// gguf_tokenizer), the quantized linears written from quantizeModel's sink straight to their place
// in the file and everything else from the checkpoint afterwards (gguf_tensor_data); here the
// order of those steps, the checks around them and the report.
#include "moewb/export/gguf.h"

#include "export/gguf_arch.h"
#include "export/gguf_layout.h"
#include "export/gguf_metadata.h"
#include "export/gguf_tensor_data.h"
#include "export/gguf_tokenizer.h"
#include "export/gguf_types.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_quants.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace moewb {

namespace {

using namespace gguf_export;

std::string humanBytes(uint64_t b)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / (1024.0 * 1024.0));
    return buf;
}

/// Refuses a missing name, an existing file unless force, and an existing non-file.
void checkOutputFile(const std::string& outFile, bool force)
{
    MOEWB_CHECK(!outFile.empty(), "GGUF export", "no output file given");
    std::error_code ec;
    if (fs::exists(outFile, ec)) {
        if (!force)
            throw OutputExistsError(outFile);
        MOEWB_CHECK(fs::is_regular_file(outFile, ec), outFile, "exists and is not a regular file");
    }
}

/// Refuses a disk without room for `planned` bytes and 16 MiB to spare.
void checkDiskSpace(const std::string& outFile, uint64_t planned)
{
    const fs::path dir = fs::absolute(outFile).parent_path();
    std::error_code ec;
    const fs::space_info sp = fs::space(dir, ec);
    if (!ec && sp.available < planned + (uint64_t(16) << 20))
        throw IoError(outFile, "not enough disk space: the file needs " + humanBytes(planned) + ", "
                                   + humanBytes(sp.available) + " available in " + dir.string());
}

/// Stacked-type promotions, the architecture's llama.cpp caveats, widths stored unquantized.
std::vector<std::string> layoutNotes(const GgufArch& arch, const ModelConfig& cfg, const GgufLayout& layout,
                                     GgmlType unquantized)
{
    std::vector<std::string> notes = layout.notes;
    if (arch.caveats)
        arch.caveats(cfg, notes);
    for (std::string& n : widthNotes(layout, unquantized))
        notes.push_back(std::move(n));
    return notes;
}

/// Per-tensor summaries and block totals (the re-quantization note among the notes).
void summarize(const GgufLayout& layout, const gguf::Writer& writer, GgufExportResult& res)
{
    for (const OutTensor& t : layout.tensors) {
        GgufTensorSummary s;
        s.name = t.name;
        s.ne = t.ne;
        s.type = gguf::ggmlTypeName(t.type);
        s.bytes = writer.tensor(t.name).nbytes;
        s.gridBlocks = t.stats.gridBlocks;
        s.requantBlocks = t.stats.requantBlocks;
        s.encodedBlocks = t.stats.encodedBlocks;
        s.extraBytes = t.extraBytes;
        s.note = t.note;
        res.gridBlocks += s.gridBlocks;
        res.requantBlocks += s.requantBlocks;
        res.encodedBlocks += s.encodedBlocks;
        res.stackExtraBytes += s.extraBytes;
        res.tensors.push_back(std::move(s));
    }
    if (res.requantBlocks > 0)
        res.notes.push_back(std::to_string(res.requantBlocks) + " of " + std::to_string(res.gridBlocks + res.requantBlocks)
                            + " quantized blocks were re-quantized with ggml's reference rule (act-order groups, "
                              "group size not a multiple of 32, or codes outside the type)");
}

/// The plan as quantized: experts whose stack holds ggml types encoded in the stack's type.
Plan withStackOverrides(const Plan& plan, const GgufLayout& layout)
{
    Plan p = plan;
    for (const auto& [name, type] : layout.stackOverrides)
        p.overrides[name].ggmlType = type;
    return p;
}

/// Metadata and tensor infos of the file into a writer not yet begun; notes and file type into res.
void declareFile(gguf::Writer& writer, const std::string& modelDir, const ModelConfig& cfg, const GgufArch& arch,
                 const GgufLayout& layout, const Plan& plan, GgmlType unq, GgufExportResult& res)
{
    res.notes = layoutNotes(arch, cfg, layout, unq);
    MetadataFacts facts;
    facts.modelName = fs::path(modelDir).lexically_normal().filename().string();
    facts.fileType = fileTypeOf(layout.tensors, unq, plan.provenance.strategy);
    facts.expertWidth = layout.expertWidth;
    facts.planJson = planToJson(plan);
    facts.unquantized = unq;
    res.fileType = fileTypeName(facts.fileType);
    TokenizerMeta tokenizer = tokenizerMetadata(modelDir, cfg);
    if (!tokenizer.note.empty())
        res.notes.push_back(tokenizer.note);
    addMetadata(writer, arch, cfg, facts, std::move(tokenizer));
    for (const OutTensor& t : layout.tensors)
        writer.addTensor(t.name, t.ne, t.type);
}

/// The report beside the file, then the file renamed into place; no report without the file.
void commitWithReport(gguf::Writer& writer, const std::string& outFile, const GgufExportResult& res)
{
    const std::string reportPath = outFile + ".moewb_report.json";
    writeFileAtomically(reportPath, ggufReportToJson(res) + "\n");
    try {
        writer.commit();
    } catch (...) {
        std::error_code ec;
        fs::remove(reportPath, ec);
        throw;
    }
}

} // namespace

GgufExportResult quantizeToGguf(const std::string& modelDir, const Plan& plan,
                                const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                const std::string& outFile, bool force, const std::string& calibDescription,
                                const ProgressFn& progress, const GgufExportOptions& gopt)
{
    checkOutputFile(outFile, force);
    MOEWB_CHECK(fs::is_directory(modelDir), modelDir, "not a directory");
    const GgmlType unq = gguf::floatTypeFromName(gopt.unquantizedType, "GGUF export");
    const ModelConfig cfg = loadConfig(modelDir);
    const GgufArch& arch = ggufArchFor(cfg, modelDir);
    checkPlanForQuantize(plan, cfg, opt.planPath);
    const TensorTypes types(plan, cfg, unq);
    const Checkpoint ckpt = Checkpoint::open(modelDir);
    GgufLayout layout = planLayout(arch, cfg, ckpt, types);

    GgufExportResult res;
    res.path = outFile;
    gguf::Writer writer(outFile, gopt.alignment); // builds outFile.tmp.<pid>, renamed by commit()
    declareFile(writer, modelDir, cfg, arch, layout, plan, unq, res);
    const uint64_t planned = writer.plannedSize();
    checkDiskSpace(outFile, planned);
    writer.begin();

    TensorData data(writer, layout);
    res.importance = !opt.actSqMean.empty();
    res.quant = quantizeModel(modelDir, withStackOverrides(plan, layout), sequences, opt,
                              [&](const QuantizedWeight& w) { data.quantized(w); }, progress);
    res.quant.calibDescription = calibDescription;
    data.fromCheckpoint(ckpt, progress);
    summarize(layout, writer, res);
    res.fileBytes = planned;
    commitWithReport(writer, outFile, res);
    res.fileBytes = fs::file_size(outFile);
    return res;
}

uint64_t ggufPlannedBytes(const std::string& modelDir, const Plan& plan, const GgufExportOptions& gopt)
{
    const GgmlType unq = gguf::floatTypeFromName(gopt.unquantizedType, "GGUF export");
    const ModelConfig cfg = loadConfig(modelDir);
    const GgufArch& arch = ggufArchFor(cfg, modelDir);
    const TensorTypes types(plan, cfg, unq);
    const Checkpoint ckpt = Checkpoint::open(modelDir);
    const GgufLayout layout = planLayout(arch, cfg, ckpt, types);
    // Never begun: nothing is written at this path.
    gguf::Writer writer((fs::temp_directory_path() / "moewb-gguf-size-probe.gguf").string(), gopt.alignment);
    GgufExportResult res;
    declareFile(writer, modelDir, cfg, arch, layout, plan, unq, res);
    return writer.plannedSize();
}

std::string ggufInfoText(const std::string& path, size_t maxItems)
{
    const gguf::File f = gguf::read(path);
    std::ostringstream os;
    os << path << ": GGUF v" << f.version << ", " << f.fileSize << " bytes, " << f.kv.size() << " metadata, "
       << f.tensors.size() << " tensors, alignment " << f.alignment << ", data at " << f.dataOffset << "\n";
    for (const auto& [k, v] : f.kv)
        os << "  " << k << " (" << gguf::valueTypeName(v.type) << ") = " << v.toText(maxItems) << "\n";
    std::map<std::string, std::pair<int64_t, uint64_t>> byType;
    char line[256];
    std::snprintf(line, sizeof line, "  %-36s %-6s %-24s %12s %12s\n", "tensor", "type", "ne", "offset", "bytes");
    os << line;
    for (const gguf::TensorEntry& t : f.tensors) {
        std::string ne = "[";
        for (size_t k = 0; k < t.ne.size(); ++k)
            ne += (k ? ", " : "") + std::to_string(t.ne[k]);
        ne += "]";
        std::snprintf(line, sizeof line, "  %-36s %-6s %-24s %12llu %12llu\n", t.name.c_str(),
                      gguf::ggmlTypeName(t.type), ne.c_str(), (unsigned long long)t.offset,
                      (unsigned long long)t.nbytes);
        os << line;
        auto& bt = byType[gguf::ggmlTypeName(t.type)];
        bt.first += 1;
        bt.second += t.nbytes;
    }
    os << "by type:";
    for (const auto& [name, nb] : byType)
        os << " " << name << " " << nb.first << " tensors " << humanBytes(nb.second) << ";";
    os << "\n";
    return os.str();
}

std::string ggufReportToJson(const GgufExportResult& r)
{
    json j;
    j["format"] = "gguf";
    j["file"] = r.path;
    j["bytes"] = r.fileBytes;
    j["file_type"] = r.fileType;
    j["grid_blocks"] = r.gridBlocks;
    j["requantized_blocks"] = r.requantBlocks;
    j["encoded_blocks"] = r.encodedBlocks;
    j["stack_extra_bytes"] = r.stackExtraBytes;
    j["importance"] = r.importance;
    j["notes"] = r.notes;
    json ts = json::array();
    for (const GgufTensorSummary& t : r.tensors) {
        json x = {{"name", t.name}, {"ne", t.ne}, {"type", t.type}, {"bytes", t.bytes}};
        if (t.gridBlocks || t.requantBlocks) {
            x["grid_blocks"] = t.gridBlocks;
            x["requantized_blocks"] = t.requantBlocks;
        }
        if (t.encodedBlocks)
            x["encoded_blocks"] = t.encodedBlocks;
        if (t.extraBytes)
            x["extra_bytes"] = t.extraBytes;
        if (!t.note.empty())
            x["note"] = t.note;
        ts.push_back(std::move(x));
    }
    j["tensors"] = std::move(ts);
    j["quantize"] = json::parse(reportToJson(r.quant));
    return j.dump(2);
}

} // namespace moewb
