// SPDX-License-Identifier: MIT
#include "model/gguf_weights.h"

#include "moewb/core/error.h"

#include <ATen/Parallel.h>

namespace moewb {

namespace {

/// Rows [first, first + rows) of t dequantized into out, blocks of rows on all compute threads.
void readRows(const gguf::File& f, const gguf::TensorEntry& t, int64_t first, int64_t rows, float* out)
{
    const int64_t n = t.ne[0];
    at::parallel_for(0, rows, 64, [&](int64_t a, int64_t b) { gguf::readRowsF32(f, t, first + a, b - a, out + a * n); });
}

/// The whole tensor dequantized, in PyTorch order (ne reversed).
at::Tensor dequantized(const gguf::File& f, const gguf::TensorEntry& t)
{
    const std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());
    at::Tensor out = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
    readRows(f, t, 0, t.numel() / t.ne[0], out.data_ptr<float>());
    return out;
}

/// Expert `e` of a stacked expert tensor (ne = [in, out, experts]) dequantized: [out, in], read
/// without the other experts (a layer's stacks would be 1.5 GiB in float32 at OLMoE's shape).
at::Tensor dequantizedExpert(const gguf::File& f, const gguf::TensorEntry& t, int64_t e)
{
    MOEWB_CHECK(t.ne.size() == 3 && e >= 0 && e < t.ne[2], f.path, "tensor '", t.name, "' has no expert ", e);
    at::Tensor out = at::empty({t.ne[1], t.ne[0]}, at::TensorOptions().dtype(at::kFloat));
    readRows(f, t, e * t.ne[1], t.ne[1], out.data_ptr<float>());
    return out;
}

/// Undoes convert_hf_to_gguf.py's permute(w, n_head): the file holds
/// w.reshape(h, 2, rows/h/2, …).swapaxes(1, 2), so reading it as (h, rows/h/2, 2, …) and swapping
/// back restores the Hugging Face (rotate-half) row order.
at::Tensor unpermuteRows(const at::Tensor& w, int64_t heads, const std::string& where)
{
    const int64_t rows = w.size(0);
    MOEWB_CHECK(heads > 0 && rows % (2 * heads) == 0, where, "cannot undo the q/k row permutation: ", rows,
                " rows for ", heads, " heads");
    const at::Tensor m = w.reshape({rows, -1});
    return m.view({heads, rows / heads / 2, 2, m.size(1)}).transpose(1, 2).reshape(w.sizes());
}

} // namespace

GgufWeights::GgufWeights(const std::string& path)
    : m_file(gguf::read(path))
    , m_cfg(ggufModelConfig(m_file))
    , m_sources(ggufSources(m_file, m_cfg))
{
}

at::Tensor GgufWeights::load(const std::string& hfName, at::ScalarType dtype) const
{
    auto it = m_sources.find(hfName);
    if (it == m_sources.end())
        throw Error(m_file.path + ": no GGUF tensor for '" + hfName + "'");
    const GgufSource& s = it->second;
    at::Tensor w = s.expert >= 0 ? dequantizedExpert(m_file, *s.tensor, s.expert) : dequantized(m_file, *s.tensor);
    if (s.permuteHeads > 0)
        w = unpermuteRows(w, s.permuteHeads, m_file.path + ": tensor '" + s.tensor->name + "'");
    if (!at::isfinite(w).all().item<bool>())
        throw InputError(m_file.path, "tensor '" + s.tensor->name + "' contains NaN or Inf values");
    return dtype == at::kFloat ? w : w.to(dtype);
}

at::Tensor GgufWeights::tensor(const std::string& hfName, at::ScalarType dtype) const
{
    return load(hfName, dtype);
}

LayerWeights GgufWeights::layer(int64_t layer, at::ScalarType dtype) const
{
    LayerWeights w;
    w.layer = layer;
    for (TensorSpec& spec : layerTensors(m_cfg, layer)) {
        at::Tensor t = load(spec.name, dtype);
        w.tensors[spec.name] = t.reshape(spec.shape); // a 1-D shared-expert gate becomes [1, H]
    }
    return w;
}

at::Tensor GgufWeights::embedding(at::ScalarType dtype) const
{
    return load("model.embed_tokens.weight", dtype);
}

HeadWeights GgufWeights::head(at::ScalarType dtype) const
{
    HeadWeights h;
    h.norm = load("model.norm.weight", dtype);
    h.lmHead = m_cfg.tieWordEmbeddings ? embedding(dtype) : load("lm_head.weight", dtype);
    return h;
}

} // namespace moewb
