// SPDX-License-Identifier: MIT
// GGUF metadata → ModelConfig (model/gguf_config.h). The key and tensor names are llama.cpp's
// (docs/export-gguf.md, "Evaluating GGUF files", lists them per architecture).
#include "model/gguf_config.h"

#include "gguf/gguf_quants.h"
#include "moewb/core/error.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace moewb {

namespace {

/// What each general.architecture means for the forward.
struct ArchRow {
    const char* name;
    Arch withExperts;  ///< the architecture when expert_count > 0
    Arch dense;        ///< … and when there are no experts (same value: experts required)
    bool permutedQk;   ///< convert_hf_to_gguf.py permutes q/k rows (LlamaModel, DeepseekModel)
    QkNorm qkNorm;
    bool normTopk;     ///< llama.cpp renormalizes the top-k weights
};

const ArchRow kArchs[] = {
    {"llama", Arch::Mixtral, Arch::Llama, true, QkNorm::None, true},
    {"qwen2moe", Arch::Qwen2Moe, Arch::Qwen2Moe, false, QkNorm::None, false},
    {"qwen3moe", Arch::Qwen3Moe, Arch::Qwen3Moe, false, QkNorm::PerHead, true},
    {"olmoe", Arch::Olmoe, Arch::Olmoe, false, QkNorm::Whole, false},
    {"deepseek", Arch::DeepseekMoe, Arch::DeepseekMoe, true, QkNorm::None, false},
    {"qwen2", Arch::Qwen2, Arch::Qwen2, false, QkNorm::None, false},
};

const ArchRow& archRow(const gguf::File& f)
{
    const gguf::Value* a = f.find("general.architecture");
    if (!a || a->type != gguf::ValueType::STRING)
        throw InputError(f.path, "missing key 'general.architecture'");
    for (const ArchRow& r : kArchs)
        if (a->s == r.name)
            return r;
    throw InputError(f.path, "architecture '" + a->s
                                 + "' is not supported for evaluation (supported: llama, qwen2moe, qwen3moe, "
                                   "olmoe, deepseek, qwen2)");
}

/// The shortest decimal that rounds to the same float32: 1e-6 stored as f32 reads back as 1e-6.
double shortestDecimal(const gguf::Value& v)
{
    if (v.type != gguf::ValueType::FLOAT32)
        return v.asFloat();
    const float x = float(v.f);
    char buf[40];
    for (int p = 1; p <= 9; ++p) {
        std::snprintf(buf, sizeof buf, "%.*g", p, double(x));
        const double d = std::strtod(buf, nullptr);
        if (float(d) == x)
            return d;
    }
    return v.f;
}

/// "<arch>.<key>" lookups with one-line errors naming the file and the key.
class Meta {
public:
    Meta(const gguf::File& f, const std::string& arch)
        : m_f(f)
        , m_arch(arch)
    {
    }
    const gguf::Value* find(const std::string& key) const { return m_f.find(m_arch + "." + key); }
    int64_t count(const std::string& key, int64_t lo) const
    {
        const gguf::Value* v = find(key);
        if (!v)
            throw InputError(m_f.path, "missing key '" + m_arch + "." + key + "'");
        return checked(key, *v, lo);
    }
    int64_t countOr(const std::string& key, int64_t fallback, int64_t lo) const
    {
        const gguf::Value* v = find(key);
        return v ? checked(key, *v, lo) : fallback;
    }
    double real(const std::string& key, std::optional<double> fallback = std::nullopt) const
    {
        const gguf::Value* v = find(key);
        if (!v && fallback)
            return *fallback;
        if (!v)
            throw InputError(m_f.path, "missing key '" + m_arch + "." + key + "'");
        if (v->type != gguf::ValueType::FLOAT32 && v->type != gguf::ValueType::FLOAT64)
            throw InputError(m_f.path, "key '" + m_arch + "." + key + "' is " + gguf::valueTypeName(v->type)
                                           + ", expected a float");
        return shortestDecimal(*v);
    }

private:
    int64_t checked(const std::string& key, const gguf::Value& v, int64_t lo) const
    {
        if (!v.isInteger())
            throw InputError(m_f.path, "key '" + m_arch + "." + key + "' is " + gguf::valueTypeName(v.type)
                                           + ", expected an integer");
        const int64_t x = v.asInt();
        if (x < lo || x > (int64_t(1) << 40))
            throw InputError(m_f.path, "key '" + m_arch + "." + key + "' is " + std::to_string(x) + ", out of range");
        return x;
    }
    const gguf::File& m_f;
    std::string m_arch;
};

bool has(const gguf::File& f, const std::string& name)
{
    return f.findTensor(name) != nullptr;
}

void readAttention(const Meta& m, const gguf::File& f, ModelConfig& c)
{
    c.numHeads = m.count("attention.head_count", 1);
    c.numKvHeads = m.countOr("attention.head_count_kv", c.numHeads, 1);
    MOEWB_CHECK(c.numHeads % c.numKvHeads == 0, f.path, "attention.head_count ", c.numHeads,
                " is not a multiple of attention.head_count_kv ", c.numKvHeads);
    MOEWB_CHECK(c.hiddenSize % c.numHeads == 0 || m.find("attention.key_length"), f.path,
                "embedding_length is not a multiple of attention.head_count and attention.key_length is absent");
    c.headDim = m.countOr("attention.key_length", c.hiddenSize / c.numHeads, 2);
    MOEWB_CHECK(m.countOr("attention.value_length", c.headDim, 1) == c.headDim, f.path,
                "attention.value_length differs from attention.key_length (not supported)");
    MOEWB_CHECK(m.countOr("rope.dimension_count", c.headDim, 1) == c.headDim, f.path,
                "rope.dimension_count differs from the head size (partial rotary embedding is not supported)");
    if (const gguf::Value* s = m.find("rope.scaling.type"))
        MOEWB_CHECK(s->type != gguf::ValueType::STRING || s->s == "none", f.path, "rope.scaling.type '", s->s,
                    "' is not supported");
    c.rmsNormEps = m.real("attention.layer_norm_rms_epsilon");
    MOEWB_CHECK(c.rmsNormEps > 0.0, f.path, "attention.layer_norm_rms_epsilon must be positive");
    c.ropeTheta = m.real("rope.freq_base", 10000.0);
    c.attentionBias = has(f, "blk.0.attn_q.bias");
    c.oProjBias = has(f, "blk.0.attn_output.bias");
    if (const gguf::Value* w = m.find("attention.sliding_window"); w && w->isInteger() && w->asInt() > 0)
        c.slidingWindow = w->asInt();
    if (const gguf::Value* clip = m.find("attention.clamp_kqv"); clip && clip->asFloat() > 0.0)
        c.clipQkv = shortestDecimal(*clip);
}

/// Routing, expert widths and which layers are MoE (from the tensors present).
void readExperts(const Meta& m, const gguf::File& f, const ArchRow& row, ModelConfig& c)
{
    c.intermediateSize = m.countOr("feed_forward_length", 0, 0);
    c.numExperts = m.countOr("expert_count", 0, 0);
    if (c.numExperts == 0) {
        MOEWB_CHECK(row.dense != row.withExperts, f.path, "missing key '", row.name, ".expert_count'");
        c.arch = row.dense;
        return;
    }
    c.arch = row.withExperts;
    c.topK = m.count("expert_used_count", 1);
    MOEWB_CHECK(c.topK <= c.numExperts, f.path, "expert_used_count ", c.topK, " exceeds expert_count ", c.numExperts);
    c.normTopkProb = row.normTopk;
    if (const gguf::Value* n = m.find("expert_weights_norm"); n && n->type == gguf::ValueType::BOOL)
        c.normTopkProb = n->b;
    c.moeIntermediateSize = m.countOr("expert_feed_forward_length", c.intermediateSize, 1);
    MOEWB_CHECK(c.moeIntermediateSize > 0, f.path, "missing key '", row.name, ".expert_feed_forward_length'");
    if (c.arch == Arch::DeepseekMoe) {
        c.topkNormEps = 1e-20;
        c.firstKDenseReplace = m.countOr("leading_dense_block_count", 0, 0);
        c.numSharedExperts = m.countOr("expert_shared_count", 0, 0);
        c.sharedIntermediateSize = c.moeIntermediateSize * c.numSharedExperts;
        return;
    }
    if (has(f, "blk." + std::to_string(c.numLayers - 1) + ".ffn_up_shexp.weight")
        || has(f, "blk.0.ffn_up_shexp.weight"))
        c.sharedIntermediateSize = m.count("expert_shared_feed_forward_length", 1);
    c.sharedExpertGate = c.hasSharedExpert() && has(f, "blk.0.ffn_gate_inp_shexp.weight");
    if (c.arch == Arch::Qwen2Moe || c.arch == Arch::Qwen3Moe)
        for (int64_t l = 0; l < c.numLayers; ++l)
            if (!has(f, "blk." + std::to_string(l) + ".ffn_gate_inp.weight"))
                c.mlpOnlyLayers.push_back(l);
}

std::optional<int64_t> tokenId(const gguf::File& f, const char* key)
{
    const gguf::Value* v = f.find(key);
    if (v && v->isInteger())
        return v->asInt();
    return std::nullopt;
}

} // namespace

ModelConfig ggufModelConfig(const gguf::File& f)
{
    const ArchRow& row = archRow(f);
    const Meta m(f, row.name);
    ModelConfig c;
    c.modelType = row.name;
    c.hiddenSize = m.count("embedding_length", 1);
    c.numLayers = m.count("block_count", 1);
    c.maxPositionEmbeddings = m.countOr("context_length", 2048, 1);
    readAttention(m, f, c);
    readExperts(m, f, row, c);
    c.architecture = archName(c.arch);
    c.qkNorm = row.qkNorm;
    const gguf::TensorEntry* embd = f.findTensor("token_embd.weight");
    if (!embd || embd->ne.size() != 2 || embd->ne[0] != c.hiddenSize)
        throw InputError(f.path, "missing tensor 'token_embd.weight' of width embedding_length "
                                     + std::to_string(c.hiddenSize));
    c.vocabSize = embd->ne[1];
    c.torchDtype = embd->type == gguf::GgmlType::BF16 ? "bfloat16" : "float32";
    c.tieWordEmbeddings = !has(f, "output.weight");
    c.bosTokenId = tokenId(f, "tokenizer.ggml.bos_token_id");
    c.eosTokenId = tokenId(f, "tokenizer.ggml.eos_token_id");
    return c;
}

namespace {

const char* ggufBaseName(LinearRole r)
{
    switch (r) {
    case LinearRole::Q: return "attn_q";
    case LinearRole::K: return "attn_k";
    case LinearRole::V: return "attn_v";
    case LinearRole::O: return "attn_output";
    case LinearRole::Router: return "ffn_gate_inp";
    case LinearRole::SharedGate: return "ffn_gate_inp_shexp";
    case LinearRole::ExpertGate: return "ffn_gate_exps";
    case LinearRole::ExpertUp: return "ffn_up_exps";
    case LinearRole::ExpertDown: return "ffn_down_exps";
    case LinearRole::SharedGateProj: return "ffn_gate_shexp";
    case LinearRole::SharedUp: return "ffn_up_shexp";
    case LinearRole::SharedDown: return "ffn_down_shexp";
    case LinearRole::DenseGate: return "ffn_gate";
    case LinearRole::DenseUp: return "ffn_up";
    case LinearRole::DenseDown: return "ffn_down";
    }
    return "?";
}

/// Every HF tensor name → (GGUF name, expert slice, permutation heads); checked afterwards.
class SourceMap {
public:
    SourceMap(const gguf::File& f, const ModelConfig& cfg)
        : m_f(f)
        , m_cfg(cfg)
        , m_permuted(archRow(f).permutedQk)
    {
    }

    std::map<std::string, GgufSource> build()
    {
        add("model.embed_tokens.weight", "token_embd.weight");
        add("model.norm.weight", "output_norm.weight");
        add("lm_head.weight", "output.weight");
        for (int64_t l = 0; l < m_cfg.numLayers; ++l)
            norms(l);
        for (const LinearInfo& li : listLinears(m_cfg))
            linear(li);
        std::map<std::string, GgufSource> out;
        for (const TensorSpec& spec : expectedTensors(m_cfg))
            out[spec.name] = checked(spec);
        return out;
    }

private:
    struct Name {
        std::string gguf;
        int64_t expert = -1;
        int64_t heads = 0;
    };

    void add(const std::string& hf, const std::string& gguf, int64_t expert = -1, int64_t heads = 0)
    {
        m_names[hf] = Name{gguf, expert, heads};
    }

    void norms(int64_t l)
    {
        const std::string p = m_cfg.layerPrefix(l), blk = "blk." + std::to_string(l) + ".";
        add(p + ".input_layernorm.weight", blk + "attn_norm.weight");
        add(p + ".post_attention_layernorm.weight", blk + "ffn_norm.weight");
        add(p + ".self_attn.q_norm.weight", blk + "attn_q_norm.weight");
        add(p + ".self_attn.k_norm.weight", blk + "attn_k_norm.weight");
    }

    static const char* baseName(LinearRole r) { return ggufBaseName(r); }

    void linear(const LinearInfo& li)
    {
        const std::string blk = "blk." + std::to_string(li.layer) + ".";
        const int64_t heads = !m_permuted ? 0
            : li.role == LinearRole::Q    ? m_cfg.numHeads
            : li.role == LinearRole::K    ? m_cfg.numKvHeads
                                          : 0;
        std::string base = blk + baseName(li.role);
        int64_t expert = li.expert;
        if (expert >= 0 && !has(m_f, base + ".weight")) {
            // Files older than llama.cpp's stacked experts: blk.N.ffn_gate.E.weight per expert.
            const std::string role = li.role == LinearRole::ExpertGate ? "ffn_gate"
                : li.role == LinearRole::ExpertUp                      ? "ffn_up"
                                                                       : "ffn_down";
            const std::string single = blk + role + "." + std::to_string(expert);
            if (has(m_f, single + ".weight")) {
                base = single;
                expert = -1;
            }
        }
        add(li.name + ".weight", base + ".weight", expert, heads);
        add(li.name + ".bias", base + ".bias", expert, heads);
    }

    static std::vector<int64_t> squeezed(std::vector<int64_t> v)
    {
        v.erase(std::remove(v.begin(), v.end(), int64_t(1)), v.end());
        return v;
    }

    static std::string shapeText(const std::vector<int64_t>& ne)
    {
        std::string s = "{";
        for (size_t i = 0; i < ne.size(); ++i)
            s += (i ? ", " : "") + std::to_string(ne[i]);
        return s + "}";
    }

    GgufSource checked(const TensorSpec& spec) const
    {
        auto it = m_names.find(spec.name);
        MOEWB_ASSERT(it != m_names.end());
        const Name& n = it->second;
        const gguf::TensorEntry* t = m_f.findTensor(n.gguf);
        if (!t)
            throw InputError(m_f.path, "missing tensor '" + n.gguf + "' (" + m_cfg.modelType + " with these keys needs it)");
        if (!gguf::ggmlCanDequantize(t->type))
            throw InputError(m_f.path, "tensor '" + n.gguf + "' has type " + gguf::ggmlTypeName(t->type)
                                           + ", which moewb cannot decode (it decodes F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                                             "Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL)");
        std::vector<int64_t> want(spec.shape.rbegin(), spec.shape.rend());
        if (n.expert >= 0)
            want.push_back(m_cfg.numExperts);
        if (squeezed(t->ne) != squeezed(want))
            throw InputError(m_f.path, "tensor '" + n.gguf + "' has ne " + shapeText(t->ne) + ", expected "
                                           + shapeText(want) + " from the metadata");
        return GgufSource{t, n.expert, n.heads};
    }

    const gguf::File& m_f;
    const ModelConfig& m_cfg;
    bool m_permuted;
    std::map<std::string, Name> m_names;
};

} // namespace

std::string ggufWeightName(int64_t layer, LinearRole role)
{
    return "blk." + std::to_string(layer) + "." + ggufBaseName(role) + ".weight";
}

std::map<std::string, GgufSource> ggufSources(const gguf::File& f, const ModelConfig& cfg)
{
    return SourceMap(f, cfg).build();
}

} // namespace moewb
