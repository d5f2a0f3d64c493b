// SPDX-License-Identifier: MIT
// `quantize --format gguf` (moewb/export/gguf.h): layout from the config and the plan, the
// quantized linears written from quantizeModel's sink straight to their place in the file,
// everything else from the checkpoint afterwards.
#include "moewb/export/gguf.h"

#include "gguf/gguf_file.h"
#include "gguf/gguf_quants.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"
#include "moewb/core/version.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace moewb {

namespace {

using gguf::GgmlType;
using gguf::Value;

/// Ordering used to pick one type per stacked expert tensor.
int typeRank(GgmlType t)
{
    switch (t) {
    case GgmlType::Q4_0: return 0;
    case GgmlType::Q4_1: return 1;
    case GgmlType::Q8_0: return 2;
    default: return 3;
    }
}

/// bits → ggml type (docs/export-gguf.md).
GgmlType linearType(const PlanEntry& e, GgmlType unquantized)
{
    if (e.bits >= 16 || e.bits > 8 || e.inFeatures % 32 != 0)
        return unquantized;
    if (e.bits <= 4)
        return e.sym ? GgmlType::Q4_0 : GgmlType::Q4_1;
    return GgmlType::Q8_0;
}

/// One tensor of the GGUF file and where its bytes come from.
struct OutTensor {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type = GgmlType::F32;
    std::vector<std::string> parts; ///< HF tensor names: one, or n_expert slices (stacked)
    int64_t permuteHeads = 0;       ///< llama q/k: rows permuted to interleaved RoPE with this many heads
    std::set<int64_t> partTypes;    ///< types the plan asked for (stacked tensors)
    gguf::PackStats stats;
    std::string note;
};

/// Where an HF tensor lands: the output tensor and the slice index (expert) inside it.
struct Slot {
    size_t tensor = 0;
    int64_t part = 0;
};

/// Row order of llama.cpp's q/k (FORMATS.md §4.5): new row → HF row.
std::vector<int64_t> ropePermutation(int64_t rows, int64_t heads)
{
    std::vector<int64_t> perm(static_cast<size_t>(rows));
    const int64_t hd = rows / heads, half = hd / 2;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < half; ++j)
            for (int64_t t = 0; t < 2; ++t)
                perm[size_t(h * hd + j * 2 + t)] = h * hd + t * half + j;
    return perm;
}

std::vector<float> loadFloats(const Checkpoint& ckpt, const std::string& name)
{
    const TensorInfo& info = ckpt.info(name);
    const uint8_t* p = ckpt.data(name);
    const int64_t n = info.numel();
    std::vector<float> out(static_cast<size_t>(n));
    switch (info.dtype) {
    case DType::F32:
        std::memcpy(out.data(), p, size_t(n) * 4);
        break;
    case DType::BF16:
    case DType::F16:
        for (int64_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            out[size_t(i)] = info.dtype == DType::BF16 ? gguf::bf16ToFp32(h) : gguf::fp16ToFp32(h);
        }
        break;
    default:
        throw InputError(ckpt.dir(), "tensor '" + name + "' has dtype " + dtypeName(info.dtype)
                                         + "; the GGUF export reads F32, F16 and BF16");
    }
    ckpt.release(name);
    return out;
}

struct TokenizerMeta {
    std::vector<std::pair<std::string, Value>> kv;
    std::string note;
};

/// tokenizer.ggml.* (FORMATS.md §4.6) for a byte-level BPE tokenizer.json; "none" otherwise.
TokenizerMeta tokenizerMetadata(const std::string& modelDir, const ModelConfig& cfg)
{
    TokenizerMeta m;
    const fs::path path = fs::path(modelDir) / "tokenizer.json";
    std::ifstream f(path);
    if (!f) {
        m.kv.emplace_back("tokenizer.ggml.model", Value::str("none"));
        m.note = "no tokenizer.json: the GGUF has no vocabulary (tokenizer.ggml.model \"none\")";
        return m;
    }
    json j;
    try {
        j = json::parse(f);
    } catch (const json::exception& e) {
        throw InputError(path.string(), std::string("invalid JSON (") + e.what() + ")");
    }
    const json& model = j.value("model", json::object());
    const bool byteLevel = model.value("type", std::string()) == "BPE" && j.contains("decoder")
        && j["decoder"].is_object() && j["decoder"].value("type", std::string()) == "ByteLevel";
    if (!byteLevel || !model.contains("vocab") || !model["vocab"].is_object()) {
        m.kv.emplace_back("tokenizer.ggml.model", Value::str("none"));
        m.note = "the tokenizer is not byte-level BPE: the GGUF has no vocabulary (tokenizer.ggml.model \"none\"); "
                 "llama.cpp can load it but not tokenize text";
        return m;
    }
    std::map<int64_t, std::string> byId;
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it)
        byId[it.value().get<int64_t>()] = it.key();
    std::map<int64_t, int32_t> types;
    for (const json& a : j.value("added_tokens", json::array())) {
        const int64_t id = a.at("id").get<int64_t>();
        byId[id] = a.at("content").get<std::string>();
        types[id] = a.value("special", false) ? 3 : 4; // CONTROL / USER_DEFINED
    }
    const int64_t n = std::max<int64_t>(cfg.vocabSize, byId.empty() ? 0 : byId.rbegin()->first + 1);
    std::vector<std::string> tokens(static_cast<size_t>(n));
    std::vector<int32_t> tokenTypes(size_t(n), 1);
    for (int64_t id = 0; id < n; ++id) {
        auto it = byId.find(id);
        if (it == byId.end()) {
            tokens[size_t(id)] = "[PAD" + std::to_string(id) + "]";
            tokenTypes[size_t(id)] = 5; // UNUSED
        } else {
            tokens[size_t(id)] = it->second;
            auto t = types.find(id);
            if (t != types.end())
                tokenTypes[size_t(id)] = t->second;
        }
    }
    std::vector<std::string> merges;
    for (const json& mg : model.value("merges", json::array())) {
        if (mg.is_string())
            merges.push_back(mg.get<std::string>());
        else if (mg.is_array() && mg.size() == 2)
            merges.push_back(mg[0].get<std::string>() + " " + mg[1].get<std::string>());
    }
    // llama.cpp picks its pre-tokenizer regex by name: a plain ByteLevel(use_regex) pre-tokenizer is
    // GPT-2's regex ("gpt-2"); anything else gets "default" and a note.
    std::string pre = "default";
    const json& pt = j.value("pre_tokenizer", json());
    if (pt.is_object() && pt.value("type", std::string()) == "ByteLevel" && pt.value("use_regex", true))
        pre = "gpt-2";
    else
        m.note = "pre-tokenizer is not GPT-2's ByteLevel regex: tokenizer.ggml.pre \"default\" may split text "
                 "differently from tokenizer.json in llama.cpp";
    m.kv.emplace_back("tokenizer.ggml.model", Value::str("gpt2"));
    m.kv.emplace_back("tokenizer.ggml.pre", Value::str(pre));
    m.kv.emplace_back("tokenizer.ggml.tokens", Value::strings(tokens));
    m.kv.emplace_back("tokenizer.ggml.token_type", Value::i32s(tokenTypes));
    m.kv.emplace_back("tokenizer.ggml.merges", Value::strings(merges));
    if (cfg.bosTokenId)
        m.kv.emplace_back("tokenizer.ggml.bos_token_id", Value::u32(uint32_t(*cfg.bosTokenId)));
    if (cfg.eosTokenId)
        m.kv.emplace_back("tokenizer.ggml.eos_token_id", Value::u32(uint32_t(*cfg.eosTokenId)));
    // Whether the post-processor adds BOS / EOS, as moewb's own tokenizer does it.
    const auto tok = Tokenizer::load(path.string());
    const std::vector<int32_t> with = tok->encode("a", true), without = tok->encode("a", false);
    const bool addBos = with.size() > without.size() && !without.empty() && with.front() != without.front();
    const bool addEos = with.size() > without.size() && !without.empty() && with.back() != without.back();
    m.kv.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(addBos));
    m.kv.emplace_back("tokenizer.ggml.add_eos_token", Value::boolean(addEos));
    return m;
}

const char* fileTypeName(uint32_t ft)
{
    switch (ft) {
    case 0: return "ALL_F32";
    case 1: return "MOSTLY_F16";
    case 2: return "MOSTLY_Q4_0";
    case 3: return "MOSTLY_Q4_1";
    case 7: return "MOSTLY_Q8_0";
    case 32: return "MOSTLY_BF16";
    default: return "?";
    }
}

uint32_t fileTypeOf(GgmlType t)
{
    switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::BF16: return 32;
    default: return 1;
    }
}

std::string humanBytes(uint64_t b)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / (1024.0 * 1024.0));
    return buf;
}

} // namespace

GgufExportResult quantizeToGguf(const std::string& modelDir, const Plan& plan,
                                const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                const std::string& outFile, bool force, const std::string& calibDescription,
                                const ProgressFn& progress, const GgufExportOptions& gopt)
{
    MOEWB_CHECK(!outFile.empty(), "GGUF export", "no output file given");
    std::error_code ec;
    if (fs::exists(outFile, ec)) {
        if (!force)
            throw OutputExistsError(outFile);
        MOEWB_CHECK(fs::is_regular_file(outFile, ec), outFile, "exists and is not a regular file");
    }
    MOEWB_CHECK(fs::is_directory(modelDir), modelDir, "not a directory");
    const GgmlType unq = gguf::floatTypeFromName(gopt.unquantizedType, "--gguf-type");

    const ModelConfig cfg = loadConfig(modelDir);
    MOEWB_CHECK(cfg.arch == Arch::Mixtral || cfg.arch == Arch::Qwen2Moe, modelDir,
                "GGUF export supports MixtralForCausalLM and Qwen2MoeForCausalLM, not ", cfg.architecture);
    checkPlanForQuantize(plan, cfg, opt.planPath);
    const bool llama = cfg.arch == Arch::Mixtral;
    const std::string arch = llama ? "llama" : "qwen2moe";

    GgufExportResult res;
    res.path = outFile;

    std::map<std::string, PlanEntry> entries;
    for (const PlanEntry& e : expandPlan(plan, cfg))
        entries[e.name] = e;
    auto typeOfLinear = [&](const LinearInfo& li) {
        auto it = entries.find(li.name);
        if (it == entries.end())
            return unq; // never quantized (router, shared gate) are handled by the caller
        return linearType(it->second, unq);
    };

    // --- layout -------------------------------------------------------------------------------
    std::vector<OutTensor> tensors;
    std::map<std::string, Slot> slots; // HF tensor name → place
    auto addTensor = [&](const std::string& name, std::vector<int64_t> ne, GgmlType type,
                         std::vector<std::string> parts, int64_t permuteHeads = 0) {
        if (ne[0] % gguf::ggmlBlockSize(type) != 0)
            type = unq;
        OutTensor t;
        t.name = name;
        t.ne = std::move(ne);
        t.type = type;
        t.parts = std::move(parts);
        t.permuteHeads = permuteHeads;
        for (size_t k = 0; k < t.parts.size(); ++k)
            slots[t.parts[k]] = Slot{tensors.size(), int64_t(k)};
        tensors.push_back(std::move(t));
    };
    const Checkpoint ckpt = Checkpoint::open(modelDir);
    auto shape = [&](const std::string& n) { return ckpt.info(n).shape; };
    auto ggmlNe = [](std::vector<int64_t> s) {
        std::reverse(s.begin(), s.end());
        return s;
    };
    const int64_t H = cfg.hiddenSize;
    addTensor("token_embd.weight", ggmlNe(shape("model.embed_tokens.weight")), unq, {"model.embed_tokens.weight"});

    const std::vector<LinearInfo> linears = listLinears(cfg);
    int64_t expertWidth = 0;
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        const std::string p = cfg.layerPrefix(l);
        const std::string blk = "blk." + std::to_string(l) + ".";
        addTensor(blk + "attn_norm.weight", {H}, GgmlType::F32, {p + ".input_layernorm.weight"});
        std::map<std::pair<LinearRole, int64_t>, const LinearInfo*> byRole;
        for (const LinearInfo& li : linears)
            if (li.layer == l)
                byRole[{li.role, li.expert}] = &li;
        auto lin = [&](LinearRole r, int64_t expert = -1) -> const LinearInfo& {
            auto it = byRole.find({r, expert});
            MOEWB_ASSERT(it != byRole.end());
            return *it->second;
        };
        const struct {
            LinearRole role;
            const char* name;
            int64_t heads;
        } attn[] = {{LinearRole::Q, "attn_q", llama ? cfg.numHeads : 0},
                    {LinearRole::K, "attn_k", llama ? cfg.numKvHeads : 0},
                    {LinearRole::V, "attn_v", 0},
                    {LinearRole::O, "attn_output", 0}};
        for (const auto& a : attn) {
            const LinearInfo& li = lin(a.role);
            addTensor(blk + a.name + ".weight", {li.inFeatures, li.outFeatures}, typeOfLinear(li),
                      {li.name + ".weight"}, a.heads);
            if (li.hasBias)
                addTensor(blk + a.name + ".bias", {li.outFeatures}, GgmlType::F32, {li.name + ".bias"}, a.heads);
        }
        addTensor(blk + "ffn_norm.weight", {H}, GgmlType::F32, {p + ".post_attention_layernorm.weight"});
        if (cfg.isMoeLayer(l)) {
            const LinearInfo& router = lin(LinearRole::Router);
            addTensor(blk + "ffn_gate_inp.weight", {H, cfg.numExperts}, GgmlType::F32, {router.name + ".weight"});
            const struct {
                LinearRole role;
                const char* name;
            } exps[] = {{LinearRole::ExpertGate, "ffn_gate_exps"},
                        {LinearRole::ExpertUp, "ffn_up_exps"},
                        {LinearRole::ExpertDown, "ffn_down_exps"}};
            for (const auto& x : exps) {
                std::vector<std::string> parts;
                GgmlType type = GgmlType::Q4_0;
                std::set<int64_t> asked;
                const LinearInfo& first = lin(x.role, 0);
                for (int64_t e = 0; e < cfg.numExperts; ++e) {
                    const LinearInfo& li = lin(x.role, e);
                    parts.push_back(li.name + ".weight");
                    const GgmlType t = typeOfLinear(li);
                    asked.insert(int64_t(t));
                    if (typeRank(t) > typeRank(type))
                        type = t;
                }
                if (x.role == LinearRole::ExpertGate)
                    expertWidth = first.outFeatures;
                addTensor(blk + x.name + ".weight", {first.inFeatures, first.outFeatures, cfg.numExperts}, type,
                          parts);
                tensors.back().partTypes = asked;
                if (asked.size() > 1) {
                    std::string names;
                    for (int64_t t : asked)
                        names += (names.empty() ? "" : ", ") + std::string(gguf::ggmlTypeName(GgmlType(t)));
                    tensors.back().note = "experts asked for " + names + "; stored as "
                        + gguf::ggmlTypeName(tensors.back().type) + " (one type per stacked tensor)";
                    res.notes.push_back(tensors.back().name + ": " + tensors.back().note);
                }
            }
            if (cfg.hasSharedExpert()) {
                if (cfg.sharedExpertGate)
                    addTensor(blk + "ffn_gate_inp_shexp.weight", {H}, GgmlType::F32,
                              {lin(LinearRole::SharedGate).name + ".weight"});
                const struct {
                    LinearRole role;
                    const char* name;
                } sh[] = {{LinearRole::SharedGateProj, "ffn_gate_shexp"},
                          {LinearRole::SharedUp, "ffn_up_shexp"},
                          {LinearRole::SharedDown, "ffn_down_shexp"}};
                for (const auto& x : sh) {
                    const LinearInfo& li = lin(x.role);
                    addTensor(blk + x.name + ".weight", {li.inFeatures, li.outFeatures}, typeOfLinear(li),
                              {li.name + ".weight"});
                }
            }
        } else {
            const struct {
                LinearRole role;
                const char* name;
            } dense[] = {{LinearRole::DenseGate, "ffn_gate"}, {LinearRole::DenseUp, "ffn_up"},
                         {LinearRole::DenseDown, "ffn_down"}};
            for (const auto& x : dense) {
                const LinearInfo& li = lin(x.role);
                addTensor(blk + x.name + ".weight", {li.inFeatures, li.outFeatures}, typeOfLinear(li),
                          {li.name + ".weight"});
            }
        }
    }
    addTensor("output_norm.weight", {H}, GgmlType::F32, {"model.norm.weight"});
    {
        // Written even when tied (a copy of the embedding): llama.cpp's qwen2moe requires it.
        const std::string head = cfg.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
        OutTensor t;
        t.name = "output.weight";
        t.ne = ggmlNe(shape(head));
        t.type = unq;
        t.parts = {head};
        tensors.push_back(std::move(t)); // not in slots: the embedding's slot stays token_embd
    }

    // --- notes on what llama.cpp will do differently ----------------------------------------------
    if (!llama) {
        for (int64_t l = 0; l < cfg.numLayers; ++l)
            if (!cfg.isMoeLayer(l)) {
                res.notes.push_back("layer " + std::to_string(l) + " is dense (mlp_only_layers / decoder_sparse_step): "
                                    "written as blk.N.ffn_{gate,up,down}, which llama.cpp's qwen2moe does not load");
                break;
            }
        if (cfg.normTopkProb)
            res.notes.push_back("norm_topk_prob is true, but llama.cpp's qwen2moe never renormalizes the top-k weights");
        if (cfg.numHeads * cfg.headDim != H)
            res.notes.push_back("heads x head_dim != hidden_size: llama.cpp's qwen2moe expects square attn_q/attn_output");
    }
    for (const OutTensor& t : tensors)
        if (t.ne[0] % 32 != 0 && t.ne.size() >= 2 && t.type == unq && t.name != "token_embd.weight"
            && t.name != "output.weight") {
            res.notes.push_back(t.name + ": input width " + std::to_string(t.ne[0])
                                + " is not a multiple of 32, stored as " + gguf::ggmlTypeName(unq));
        }

    // --- metadata -----------------------------------------------------------------------------------
    gguf::Writer writer(outFile, gopt.alignment); // builds outFile.tmp.<pid>, renamed by commit()
    std::map<int64_t, int64_t> elemsByType;
    for (const OutTensor& t : tensors)
        if (t.ne.size() >= 2 && t.name != "token_embd.weight" && t.name != "output.weight"
            && t.name.find("gate_inp") == std::string::npos) {
            int64_t n = 1;
            for (int64_t e : t.ne)
                n *= e;
            elemsByType[int64_t(t.type)] += n;
        }
    GgmlType major = unq;
    int64_t best = -1;
    for (const auto& [t, n] : elemsByType)
        if (n > best)
            best = n, major = GgmlType(t);
    const uint32_t fileType = fileTypeOf(major);
    res.fileType = fileTypeName(fileType);

    const std::string a = arch + ".";
    writer.addKv("general.architecture", Value::str(arch));
    writer.addKv("general.name", Value::str(fs::path(modelDir).lexically_normal().filename().string()));
    writer.addKv("general.file_type", Value::u32(fileType));
    writer.addKv("general.quantization_version", Value::u32(2));
    writer.addKv("general.quantized_by", Value::str(std::string("moewb ") + version()));
    writer.addKv(a + "vocab_size", Value::u32(uint32_t(cfg.vocabSize)));
    writer.addKv(a + "context_length", Value::u32(uint32_t(cfg.maxPositionEmbeddings)));
    writer.addKv(a + "embedding_length", Value::u32(uint32_t(H)));
    writer.addKv(a + "block_count", Value::u32(uint32_t(cfg.numLayers)));
    writer.addKv(a + "feed_forward_length",
                 Value::u32(uint32_t(llama ? (expertWidth ? expertWidth : cfg.intermediateSize) : cfg.intermediateSize)));
    writer.addKv(a + "attention.head_count", Value::u32(uint32_t(cfg.numHeads)));
    writer.addKv(a + "attention.head_count_kv", Value::u32(uint32_t(cfg.numKvHeads)));
    writer.addKv(a + "attention.layer_norm_rms_epsilon", Value::f32(float(cfg.rmsNormEps)));
    writer.addKv(a + "rope.freq_base", Value::f32(float(cfg.ropeTheta)));
    if (llama)
        writer.addKv(a + "rope.dimension_count", Value::u32(uint32_t(cfg.headDim)));
    if (cfg.numHeads * cfg.headDim != H) {
        writer.addKv(a + "attention.key_length", Value::u32(uint32_t(cfg.headDim)));
        writer.addKv(a + "attention.value_length", Value::u32(uint32_t(cfg.headDim)));
    }
    writer.addKv(a + "expert_count", Value::u32(uint32_t(cfg.numExperts)));
    writer.addKv(a + "expert_used_count", Value::u32(uint32_t(cfg.topK)));
    if (!llama) {
        writer.addKv(a + "expert_feed_forward_length", Value::u32(uint32_t(expertWidth)));
        writer.addKv(a + "expert_shared_feed_forward_length", Value::u32(uint32_t(cfg.sharedIntermediateSize)));
    }
    TokenizerMeta tm = tokenizerMetadata(modelDir, cfg);
    if (!tm.note.empty())
        res.notes.push_back(tm.note);
    for (auto& [k, v] : tm.kv)
        writer.addKv(k, std::move(v));
    writer.addKv("moewb.plan", Value::str(planToJson(plan)));
    writer.addKv("moewb.unquantized_type", Value::str(gguf::ggmlTypeName(unq)));
    for (const OutTensor& t : tensors)
        writer.addTensor(t.name, t.ne, t.type);

    const uint64_t planned = writer.plannedSize();
    {
        fs::path dir = fs::absolute(outFile).parent_path();
        const fs::space_info sp = fs::space(dir, ec);
        if (!ec && sp.available < planned + (uint64_t(16) << 20))
            throw IoError(outFile, "not enough disk space: the file needs " + humanBytes(planned) + ", "
                                       + humanBytes(sp.available) + " available in " + dir.string());
    }
    writer.begin();

    // --- quantized linears, from the sink -----------------------------------------------------------
    std::set<std::string> written;
    auto writeRows = [&](OutTensor& t, int64_t part, int64_t rows, int64_t cols,
                         const std::function<void(int64_t hfRow, uint8_t* out)>& encodeRow) {
        const int64_t rb = gguf::ggmlRowBytes(t.type, cols);
        std::vector<uint8_t> buf(static_cast<size_t>(rows * rb));
        std::vector<int64_t> perm;
        if (t.permuteHeads > 0)
            perm = ropePermutation(rows, t.permuteHeads);
        for (int64_t r = 0; r < rows; ++r)
            encodeRow(perm.empty() ? r : perm[size_t(r)], buf.data() + r * rb);
        writer.write(t.name, uint64_t(part) * uint64_t(rows * rb), buf.data(), buf.size());
    };
    auto sink = [&](const QuantizedWeight& w) {
        auto it = slots.find(w.tensorName);
        MOEWB_ASSERT(it != slots.end() && w.shape.size() == 2 && w.q && w.scales && w.zeros && w.gIdx);
        MOEWB_ASSERT(written.insert(w.tensorName).second);
        OutTensor& t = tensors[it->second.tensor];
        const int64_t rows = w.shape[0], cols = w.shape[1];
        MOEWB_ASSERT(t.ne[0] == cols && t.ne[1] == rows);
        writeRows(t, it->second.part, rows, cols, [&](int64_t r, uint8_t* out) {
            gguf::GridRow g;
            g.q = w.q + r * cols;
            g.scales = w.scales + r * w.groups;
            g.zeros = w.zeros + r * w.groups;
            g.gIdx = w.gIdx;
            gguf::packGridRow(t.type, g, out, cols, t.stats);
        });
    };
    res.quant = quantizeModel(modelDir, plan, sequences, opt, sink, progress);
    res.quant.calibDescription = calibDescription;

    // --- everything else, from the checkpoint ----------------------------------------------------------
    int64_t done = 0;
    for (OutTensor& t : tensors) {
        report(progress, "write", done++, int64_t(tensors.size()), t.name);
        for (size_t k = 0; k < t.parts.size(); ++k) {
            const std::string& hf = t.parts[k];
            if (written.count(hf) && t.name != "output.weight")
                continue;
            const std::vector<float> x = loadFloats(ckpt, hf);
            const int64_t cols = t.ne[0];
            const int64_t rows = int64_t(x.size()) / cols;
            MOEWB_ASSERT(rows * cols == int64_t(x.size()));
            if (t.type != GgmlType::F32 && t.type != GgmlType::F16 && t.type != GgmlType::BF16)
                t.stats.requantBlocks += rows * cols / 32;
            if (t.ne.size() == 1 && t.permuteHeads > 0) { // a q/k bias of a llama-arch model
                const std::vector<int64_t> perm = ropePermutation(rows * cols, t.permuteHeads);
                std::vector<float> y(x.size());
                for (size_t i = 0; i < y.size(); ++i)
                    y[i] = x[size_t(perm[i])];
                std::vector<uint8_t> buf(static_cast<size_t>(gguf::ggmlRowBytes(t.type, cols)));
                gguf::quantizeRow(t.type, y.data(), buf.data(), cols);
                writer.write(t.name, 0, buf.data(), buf.size());
                continue;
            }
            writeRows(t, int64_t(k), rows, cols,
                      [&](int64_t r, uint8_t* out) { gguf::quantizeRow(t.type, x.data() + r * cols, out, cols); });
        }
    }
    report(progress, "write", int64_t(tensors.size()), int64_t(tensors.size()));

    for (const OutTensor& t : tensors) {
        GgufTensorSummary s;
        s.name = t.name;
        s.ne = t.ne;
        s.type = gguf::ggmlTypeName(t.type);
        s.bytes = writer.tensor(t.name).nbytes;
        s.gridBlocks = t.stats.gridBlocks;
        s.requantBlocks = t.stats.requantBlocks;
        s.note = t.note;
        res.gridBlocks += s.gridBlocks;
        res.requantBlocks += s.requantBlocks;
        res.tensors.push_back(std::move(s));
    }
    if (res.requantBlocks > 0)
        res.notes.push_back(std::to_string(res.requantBlocks) + " of " + std::to_string(res.gridBlocks + res.requantBlocks)
                            + " quantized blocks were re-quantized with ggml's reference rule (act-order groups, "
                              "group size not a multiple of 32, or codes outside the type)");
    res.fileBytes = planned;
    const std::string reportPath = outFile + ".moewb_report.json";
    writeFileAtomically(reportPath, ggufReportToJson(res) + "\n");
    try {
        writer.commit();
    } catch (...) {
        std::error_code ec2;
        fs::remove(reportPath, ec2);
        throw;
    }
    res.fileBytes = fs::file_size(outFile);
    return res;
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
    j["notes"] = r.notes;
    json ts = json::array();
    for (const GgufTensorSummary& t : r.tensors) {
        json x = {{"name", t.name}, {"ne", t.ne}, {"type", t.type}, {"bytes", t.bytes}};
        if (t.gridBlocks || t.requantBlocks) {
            x["grid_blocks"] = t.gridBlocks;
            x["requantized_blocks"] = t.requantBlocks;
        }
        if (!t.note.empty())
            x["note"] = t.note;
        ts.push_back(std::move(x));
    }
    j["tensors"] = std::move(ts);
    j["quantize"] = json::parse(reportToJson(r.quant));
    return j.dump(2);
}

} // namespace moewb
