// SPDX-License-Identifier: MIT
#include "model/weights.h"

#include "moewb/core/error.h"

#include <cstring>

namespace moewb {

at::ScalarType toScalarType(DType d)
{
    switch (d) {
    case DType::BOOL: return at::kBool;
    case DType::U8: return at::kByte;
    case DType::I8: return at::kChar;
    case DType::I16: return at::kShort;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I32: return at::kInt;
    case DType::F32: return at::kFloat;
    case DType::F64: return at::kDouble;
    case DType::I64: return at::kLong;
    case DType::U16:
    case DType::U32:
    case DType::U64:
        break;
    }
    throw InputError(std::string("dtype ") + dtypeName(d) + " has no libtorch equivalent in this build");
}

namespace {
std::string shapeString(at::IntArrayRef s)
{
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i)
        out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}
} // namespace

at::Tensor loadTensor(const Checkpoint& ckpt, const std::string& name, at::ScalarType target)
{
    const TensorInfo& info = ckpt.info(name);
    const at::ScalarType stored = toScalarType(info.dtype);
    at::Tensor t = at::empty(info.shape, at::TensorOptions().dtype(stored));
    MOEWB_ASSERT(uint64_t(t.nbytes()) == info.nbytes());
    if (info.nbytes() > 0)
        std::memcpy(t.data_ptr(), ckpt.data(name), info.nbytes());
    ckpt.release(name);
    if (target != at::ScalarType::Undefined && target != stored)
        t = t.to(target);
    return t;
}

at::Tensor loadTensorShaped(const Checkpoint& ckpt, const std::string& name, std::vector<int64_t> shape,
                            at::ScalarType target)
{
    const TensorInfo& info = ckpt.info(name);
    if (info.shape != shape)
        throw InputError(ckpt.fileOf(name).path(),
                         "tensor '" + name + "' has shape " + shapeString(info.shape) + ", expected "
                             + shapeString(shape) + " from config.json");
    return loadTensor(ckpt, name, target);
}

const at::Tensor& LayerWeights::get(const std::string& name) const
{
    auto it = tensors.find(name);
    if (it == tensors.end())
        throw Error("layer " + std::to_string(layer) + ": weight '" + name + "' was not loaded");
    return it->second;
}

at::Tensor LayerWeights::opt(const std::string& name) const
{
    auto it = tensors.find(name);
    return it == tensors.end() ? at::Tensor() : it->second;
}

int64_t LayerWeights::bytes() const
{
    int64_t n = 0;
    for (const auto& [k, t] : tensors)
        n += int64_t(t.nbytes());
    return n;
}

namespace {
struct LayerLoader {
    const ModelConfig& cfg;
    const Checkpoint& ckpt;
    at::ScalarType dtype;
    LayerWeights& out;

    void add(const std::string& name, std::vector<int64_t> shape)
    {
        out.tensors[name] = loadTensorShaped(ckpt, name, std::move(shape), dtype);
    }
    void linear(const std::string& base, int64_t outF, int64_t inF, bool bias)
    {
        add(base + ".weight", {outF, inF});
        if (bias)
            add(base + ".bias", {outF});
    }
    void mlp(const std::string& gate, const std::string& up, const std::string& down, int64_t width)
    {
        const int64_t h = cfg.hiddenSize;
        linear(gate, width, h, false);
        linear(up, width, h, false);
        linear(down, h, width, false);
    }
};
} // namespace

LayerWeights loadLayerWeights(const ModelConfig& cfg, const Checkpoint& ckpt, int64_t layer, at::ScalarType dtype)
{
    LayerWeights w;
    w.layer = layer;
    LayerLoader L{cfg, ckpt, dtype, w};
    const int64_t h = cfg.hiddenSize, hd = cfg.headDim;
    const std::string p = cfg.layerPrefix(layer);
    L.add(p + ".input_layernorm.weight", {h});
    L.add(p + ".post_attention_layernorm.weight", {h});
    L.linear(cfg.attnLinear(layer, "q_proj"), cfg.numHeads * hd, h, cfg.attentionBias);
    L.linear(cfg.attnLinear(layer, "k_proj"), cfg.numKvHeads * hd, h, cfg.attentionBias);
    L.linear(cfg.attnLinear(layer, "v_proj"), cfg.numKvHeads * hd, h, cfg.attentionBias);
    L.linear(cfg.attnLinear(layer, "o_proj"), h, cfg.numHeads * hd, cfg.oProjBias);
    if (cfg.qkNorm == QkNorm::PerHead) {
        L.add(p + ".self_attn.q_norm.weight", {hd});
        L.add(p + ".self_attn.k_norm.weight", {hd});
    } else if (cfg.qkNorm == QkNorm::Whole) {
        L.add(p + ".self_attn.q_norm.weight", {cfg.numHeads * hd});
        L.add(p + ".self_attn.k_norm.weight", {cfg.numKvHeads * hd});
    }
    if (cfg.isMoeLayer(layer)) {
        L.linear(cfg.routerName(layer), cfg.numExperts, h, false);
        for (int64_t e = 0; e < cfg.numExperts; ++e)
            L.mlp(cfg.expertLinear(layer, e, "gate"), cfg.expertLinear(layer, e, "up"),
                  cfg.expertLinear(layer, e, "down"), cfg.moeIntermediateSize);
        if (cfg.hasSharedExpert()) {
            L.mlp(cfg.sharedLinear(layer, "gate"), cfg.sharedLinear(layer, "up"), cfg.sharedLinear(layer, "down"),
                  cfg.sharedIntermediateSize);
            if (cfg.sharedExpertGate)
                L.linear(cfg.sharedGateName(layer), 1, h, false);
        }
    } else {
        L.mlp(cfg.denseLinear(layer, "gate"), cfg.denseLinear(layer, "up"), cfg.denseLinear(layer, "down"),
              cfg.intermediateSize);
    }
    return w;
}

OuterWeights loadOuterWeights(const ModelConfig& cfg, const Checkpoint& ckpt, at::ScalarType dtype)
{
    OuterWeights o;
    o.embed = loadTensorShaped(ckpt, "model.embed_tokens.weight", {cfg.vocabSize, cfg.hiddenSize}, dtype);
    o.norm = loadTensorShaped(ckpt, "model.norm.weight", {cfg.hiddenSize}, dtype);
    if (cfg.tieWordEmbeddings && !ckpt.has("lm_head.weight"))
        o.lmHead = o.embed;
    else
        o.lmHead = loadTensorShaped(ckpt, "lm_head.weight", {cfg.vocabSize, cfg.hiddenSize}, dtype);
    return o;
}

} // namespace moewb
