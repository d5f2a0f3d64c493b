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

LayerWeights loadLayerWeights(const ModelConfig& cfg, const Checkpoint& ckpt, int64_t layer, at::ScalarType dtype)
{
    LayerWeights w;
    w.layer = layer;
    for (TensorSpec& spec : layerTensors(cfg, layer))
        w.tensors[spec.name] = loadTensorShaped(ckpt, spec.name, std::move(spec.shape), dtype);
    return w;
}

at::Tensor loadEmbedding(const ModelConfig& cfg, const Checkpoint& ckpt, at::ScalarType dtype)
{
    return loadTensorShaped(ckpt, "model.embed_tokens.weight", {cfg.vocabSize, cfg.hiddenSize}, dtype);
}

HeadWeights loadHeadWeights(const ModelConfig& cfg, const Checkpoint& ckpt, at::ScalarType dtype)
{
    HeadWeights o;
    o.norm = loadTensorShaped(ckpt, "model.norm.weight", {cfg.hiddenSize}, dtype);
    o.lmHead = cfg.tieWordEmbeddings && !ckpt.has("lm_head.weight")
        ? loadEmbedding(cfg, ckpt, dtype)
        : loadTensorShaped(ckpt, "lm_head.weight", {cfg.vocabSize, cfg.hiddenSize}, dtype);
    return o;
}

} // namespace moewb
