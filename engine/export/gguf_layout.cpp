// SPDX-License-Identifier: MIT
// Tensor naming and expert stacking of the GGUF export (export/gguf_layout.h).
#include "export/gguf_layout.h"

#include "moewb/core/error.h"

#include <algorithm>
#include <tuple>

namespace moewb::gguf_export {

namespace {

/// HF shape → ggml ne (fastest-varying first).
std::vector<int64_t> ggmlNe(std::vector<int64_t> shape)
{
    std::reverse(shape.begin(), shape.end());
    return shape;
}

int64_t ropeHeads(RopeRows rows, const ModelConfig& cfg)
{
    switch (rows) {
    case RopeRows::PerHead: return cfg.numHeads;
    case RopeRows::PerKvHead: return cfg.numKvHeads;
    case RopeRows::Kept: break;
    }
    return 0;
}

/// Builds the layout tensor by tensor, in file order.
class LayoutBuilder {
public:
    LayoutBuilder(const GgufArch& arch, const ModelConfig& cfg, const TensorTypes& types)
        : m_arch(arch)
        , m_cfg(cfg)
        , m_types(types)
        , m_linears(listLinears(cfg))
    {
        for (const LinearInfo& li : m_linears)
            m_byRole[{li.layer, li.role, li.expert}] = &li;
    }

    GgufLayout take() { return std::move(m_layout); }

    /// A tensor whose parts land in it; `type` falls back to the unquantized one where ne[0] is
    /// not whole blocks of it.
    OutTensor& add(const std::string& name, std::vector<int64_t> ne, GgmlType type, std::vector<std::string> parts,
                   int64_t permuteHeads = 0)
    {
        OutTensor t;
        t.name = name;
        t.type = m_types.fitting(type, ne[0]);
        t.ne = std::move(ne);
        t.parts = std::move(parts);
        t.permuteHeads = permuteHeads;
        for (size_t k = 0; k < t.parts.size(); ++k)
            m_layout.slots[t.parts[k]] = Slot{m_layout.tensors.size(), int64_t(k)};
        m_layout.tensors.push_back(std::move(t));
        return m_layout.tensors.back();
    }

    void layer(int64_t l)
    {
        const std::string blk = "blk." + std::to_string(l) + ".";
        norms(l, blk, m_arch.attnNorms);
        for (const LinearName& x : m_arch.attention)
            linear(blk, x, lin(l, x.role));
        norms(l, blk, m_arch.qkNorms);
        norms(l, blk, m_arch.ffnNorms);
        if (m_cfg.isMoeLayer(l)) {
            const LinearInfo& router = lin(l, LinearRole::Router);
            add(blk + "ffn_gate_inp.weight", {m_cfg.hiddenSize, m_cfg.numExperts}, GgmlType::F32,
                {router.name + ".weight"});
            for (const LinearName& x : m_arch.experts)
                stackedExperts(l, blk, x);
            if (m_cfg.hasSharedExpert())
                sharedExpert(l, blk);
        } else {
            for (const LinearName& x : m_arch.dense)
                linear(blk, x, lin(l, x.role));
        }
    }

private:
    const LinearInfo& lin(int64_t layer, LinearRole role, int64_t expert = -1) const
    {
        auto it = m_byRole.find({layer, role, expert});
        MOEWB_ASSERT(it != m_byRole.end());
        return *it->second;
    }

    void norms(int64_t l, const std::string& blk, const std::vector<NormName>& names)
    {
        for (const NormName& n : names)
            add(blk + n.name + ".weight", {n.width(m_cfg)}, GgmlType::F32,
                {m_cfg.layerPrefix(l) + "." + n.hf + ".weight"});
    }

    /// A note when the plan's ggml_type does not fit the rows and llama-quantize's fallback is written.
    void fallbackNote(const OutTensor& t, const LinearInfo& li)
    {
        const GgmlType asked = m_types.requested(li);
        if (m_types.hasGgmlType(li) && asked != m_types.linear(li))
            m_layout.notes.push_back(t.name + ": " + gguf::ggmlTypeName(asked) + " asked, rows of "
                                     + std::to_string(li.inFeatures) + " are not whole blocks of it: written as "
                                     + gguf::ggmlTypeName(m_types.linear(li)) + " (llama-quantize's fallback)");
    }

    /// blk.N.<name>.weight in the plan's type (and its bias, F32).
    void linear(const std::string& blk, const LinearName& x, const LinearInfo& li)
    {
        const int64_t heads = ropeHeads(x.rows, m_cfg);
        fallbackNote(add(blk + x.name + ".weight", {li.inFeatures, li.outFeatures}, m_types.linear(li),
                         {li.name + ".weight"}, heads),
                     li);
        if (li.hasBias)
            add(blk + x.name + ".bias", {li.outFeatures}, GgmlType::F32, {li.name + ".bias"}, heads);
    }

    /// Every routed expert's linear of one role as a slice of one 3-D tensor of one type.
    void stackedExperts(int64_t l, const std::string& blk, const LinearName& x)
    {
        std::vector<const LinearInfo*> experts;
        std::vector<std::string> parts;
        for (int64_t e = 0; e < m_cfg.numExperts; ++e) {
            experts.push_back(&lin(l, x.role, e));
            parts.push_back(experts.back()->name + ".weight");
        }
        const LinearInfo& first = *experts.front();
        if (x.role == LinearRole::ExpertGate)
            m_layout.expertWidth = first.outFeatures;
        const StackedType st = m_types.stacked(experts);
        OutTensor& t = add(blk + x.name + ".weight", {first.inFeatures, first.outFeatures, m_cfg.numExperts}, st.type,
                           parts);
        t.partTypes = st.asked;
        t.extraBytes = st.extraBytes;
        if (st.asked.size() == 1)
            fallbackNote(t, first);
        if (st.anyGgml && typeRank(t.type) < typeRank(GgmlType::BF16)) // quantized: encode every expert as it
            for (const LinearInfo* li : experts)
                if (m_types.linear(*li) != t.type)
                    m_layout.stackOverrides[li->name] = planTypeName(t.type);
        if (st.asked.size() > 1) {
            t.note = "experts asked for " + typeNames(st.asked) + "; stored as " + gguf::ggmlTypeName(t.type)
                + " (one type per stacked tensor): +" + std::to_string(st.extraBytes) + " bytes";
            m_layout.notes.push_back(t.name + ": " + t.note);
        }
    }

    void sharedExpert(int64_t l, const std::string& blk)
    {
        if (m_cfg.sharedExpertGate)
            add(blk + m_arch.sharedGate + ".weight", {m_cfg.hiddenSize}, GgmlType::F32,
                {lin(l, LinearRole::SharedGate).name + ".weight"});
        for (const LinearName& x : m_arch.shared)
            linear(blk, x, lin(l, x.role));
    }

    const GgufArch& m_arch;
    const ModelConfig& m_cfg;
    const TensorTypes& m_types;
    std::vector<LinearInfo> m_linears;
    std::map<std::tuple<int64_t, LinearRole, int64_t>, const LinearInfo*> m_byRole;
    GgufLayout m_layout;
};

} // namespace

GgufLayout planLayout(const GgufArch& arch, const ModelConfig& cfg, const Checkpoint& ckpt, const TensorTypes& types)
{
    LayoutBuilder b(arch, cfg, types);
    const std::string embed = "model.embed_tokens.weight";
    const std::vector<int64_t> embedNe = ggmlNe(ckpt.info(embed).shape);
    b.add("token_embd.weight", embedNe, types.tokenEmbd(embedNe[0]), {embed});
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        b.layer(l);
    b.add("output_norm.weight", {cfg.hiddenSize}, GgmlType::F32, {"model.norm.weight"});
    GgufLayout layout = b.take();
    // Written even when tied (a copy of the embedding): llama.cpp's qwen2moe requires it. Not in
    // slots: the embedding's slot stays token_embd.
    const std::string head = cfg.tieWordEmbeddings ? embed : "lm_head.weight";
    OutTensor out;
    out.name = "output.weight";
    out.ne = ggmlNe(ckpt.info(head).shape);
    out.type = types.output(out.ne[0]);
    out.parts = {head};
    layout.tensors.push_back(std::move(out));
    return layout;
}

std::vector<std::string> widthNotes(const GgufLayout& layout, GgmlType unquantized)
{
    std::vector<std::string> notes;
    for (const OutTensor& t : layout.tensors)
        if (t.ne[0] % 32 != 0 && t.ne.size() >= 2 && t.type == unquantized && t.name != "token_embd.weight"
            && t.name != "output.weight") {
            notes.push_back(t.name + ": input width " + std::to_string(t.ne[0]) + " is not a multiple of 32, stored as "
                            + gguf::ggmlTypeName(unquantized));
        }
    return notes;
}

} // namespace moewb::gguf_export
