// SPDX-License-Identifier: MIT
#include "model/weights.h"

#include "gptq/gptq_pack.h"
#include "moewb/core/error.h"
#include "moewb/gptq/gptq_checkpoint.h"
#include "moewb/plan/gptq_dynamic.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

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

namespace {

bool endsWith(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// What the GPTQ reader needs from a checkpoint directory's config files, read once per
/// directory (and again when config.json changes).
struct GptqDirInfo {
    std::optional<GptqCheckpointConfig> config;
    at::ScalarType modelDtype = at::ScalarType::Undefined; ///< config.json torch_dtype
};

GptqDirInfo readDirInfo(const std::string& dir)
{
    GptqDirInfo info;
    info.config = readGptqConfig(dir);
    const std::filesystem::path cfgPath = std::filesystem::path(dir) / "config.json";
    std::ifstream f(cfgPath, std::ios::binary);
    if (f) {
        const nlohmann::json c = nlohmann::json::parse(f, nullptr, false);
        if (c.is_object())
            for (const char* k : {"torch_dtype", "dtype"})
                if (c.contains(k) && c[k].is_string()) {
                    const std::string d = c[k].get<std::string>();
                    info.modelDtype = d == "bfloat16" ? at::kBFloat16
                        : d == "float16"              ? at::kHalf
                        : d == "float32"              ? at::kFloat
                                                      : at::ScalarType::Undefined;
                    break;
                }
    }
    return info;
}

std::shared_ptr<const GptqDirInfo> gptqDirInfo(const std::string& dir)
{
    static std::mutex mutex;
    static std::map<std::string, std::pair<std::string, std::shared_ptr<const GptqDirInfo>>> cache;
    std::error_code ec;
    const std::filesystem::path cfgPath = std::filesystem::path(dir) / "config.json";
    const auto mtime = std::filesystem::last_write_time(cfgPath, ec);
    const std::string stamp = ec ? std::string("-")
                                 : std::to_string(mtime.time_since_epoch().count()) + "/"
            + std::to_string(std::filesystem::file_size(cfgPath, ec));
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(dir);
    if (it != cache.end() && it->second.first == stamp)
        return it->second.second;
    auto info = std::make_shared<const GptqDirInfo>(readDirInfo(dir));
    cache[dir] = {stamp, info};
    return info;
}

template <typename T>
std::vector<T> copyOut(const Checkpoint& ckpt, const std::string& name)
{
    const TensorInfo& info = ckpt.info(name);
    std::vector<T> v(size_t(info.nbytes() / sizeof(T)));
    if (info.nbytes() > 0)
        std::memcpy(v.data(), ckpt.data(name), info.nbytes()); // the mapping may be unaligned
    ckpt.release(name);
    return v;
}

/// `base`.weight of a GPTQ checkpoint (docs/export-gptq.md, "Packing in detail"): dequantized from
/// qweight / qzeros / scales / g_idx as float(fp16 scale) · (q − zero), rounded to the model's
/// dtype (config.json torch_dtype, as a dequantizing export would have stored it), then converted
/// to `target`. `expect` ({out, in}) is checked when given.
at::Tensor loadGptqWeight(const Checkpoint& ckpt, const std::string& base, const std::vector<int64_t>* expect,
                          at::ScalarType target)
{
    const std::string qw = base + ".qweight", qz = base + ".qzeros", sc = base + ".scales", gi = base + ".g_idx";
    const TensorInfo &iw = ckpt.info(qw), &iz = ckpt.info(qz), &is = ckpt.info(sc), &ig = ckpt.info(gi);
    auto fail = [&](const std::string& tensor, const std::string& problem) {
        throw InputError(ckpt.fileOf(tensor).path(), "tensor '" + tensor + "' " + problem);
    };
    auto checkDtype = [&](const std::string& name, const TensorInfo& info, DType dt) {
        if (info.dtype != dt)
            fail(name, std::string("has dtype ") + dtypeName(info.dtype) + ", expected " + dtypeName(dt));
    };
    checkDtype(qw, iw, DType::I32);
    checkDtype(qz, iz, DType::I32);
    checkDtype(sc, is, DType::F16);
    checkDtype(gi, ig, DType::I32);
    if (ig.shape.size() != 1)
        fail(gi, "has shape " + shapeString(ig.shape) + ", expected [in_features]");
    const int64_t K = ig.shape[0];
    if (iw.shape.size() != 2)
        fail(qw, "has shape " + shapeString(iw.shape) + ", expected 2 dimensions");
    const int64_t N = iw.shape[1];
    if (expect && *expect != std::vector<int64_t>{N, K})
        fail(qw, "holds a [" + std::to_string(N) + ", " + std::to_string(K) + "] weight, expected "
                     + shapeString(*expect) + " from config.json");
    if (is.shape.size() != 2 || is.shape[1] != N || is.shape[0] < 1)
        fail(sc, "has shape " + shapeString(is.shape) + ", expected [groups, " + std::to_string(N) + "]");
    const int64_t groups = is.shape[0];
    if (iz.shape.size() != 2 || iz.shape[0] != groups)
        fail(qz, "has shape " + shapeString(iz.shape) + ", expected [" + std::to_string(groups) + ", ceil(" +
                     std::to_string(N) + "·bits/32)]");

    const std::shared_ptr<const GptqDirInfo> dir = gptqDirInfo(ckpt.dir());
    std::vector<int64_t> bits = gptq::bitsFromShapes(iw.shape[0], iz.shape[1], K, N);
    if (bits.empty())
        fail(qw, "has shape " + shapeString(iw.shape) + " and '" + qz + "' " + shapeString(iz.shape)
                     + ", which fit no GPTQ bit width for in_features " + std::to_string(K) + ", out_features "
                     + std::to_string(N) + " (expected [ceil(" + std::to_string(K) + "·b/32), " + std::to_string(N)
                     + "], b in 2, 3, 4, 8)");
    if (bits.size() > 1) { // tiny K and N: the config says which
        std::optional<PlanEntry> e;
        if (dir->config)
            e = dynamicLookup(dir->config->settings, base);
        if (!e || std::find(bits.begin(), bits.end(), e->bits) == bits.end())
            fail(qw, "has a shape that fits several bit widths and quantization_config does not say which");
        bits = {e->bits};
    }
    const gptq::ZeroFormat fmt = gptq::zeroFormatFromName(
        dir->config ? dir->config->checkpointFormat : std::string("gptq"), ckpt.dir() + "/config.json");

    const std::vector<int32_t> qweight = copyOut<int32_t>(ckpt, qw), qzeros = copyOut<int32_t>(ckpt, qz),
                               gIdx = copyOut<int32_t>(ckpt, gi);
    const std::vector<uint16_t> scales = copyOut<uint16_t>(ckpt, sc);
    gptq::PackedView v;
    v.qweight = qweight.data();
    v.qzeros = qzeros.data();
    v.scales = scales.data();
    v.gIdx = gIdx.data();
    v.inFeatures = K;
    v.outFeatures = N;
    v.groups = groups;
    v.bits = bits[0];
    at::Tensor w = at::empty({N, K}, at::TensorOptions().dtype(at::kFloat));
    try {
        gptq::checkGroupIndex(v, gi);
    } catch (const InputError& e) {
        throw InputError(ckpt.fileOf(gi).path(), e.what());
    }
    float* dst = w.data_ptr<float>();
    at::parallel_for(0, N, std::max<int64_t>(1, 65536 / std::max<int64_t>(K, 1)),
                     [&](int64_t r0, int64_t r1) { gptq::dequantizeRows(v, fmt, dst, r0, r1); });
    if (dir->modelDtype != at::ScalarType::Undefined && dir->modelDtype != at::kFloat)
        w = w.to(dir->modelDtype);
    if (target != at::ScalarType::Undefined && target != w.scalar_type())
        w = w.to(target);
    return w;
}

/// `name` is "X.weight", absent, and X.qweight is present.
bool isGptqWeight(const Checkpoint& ckpt, const std::string& name)
{
    return endsWith(name, ".weight") && !ckpt.has(name)
        && ckpt.has(name.substr(0, name.size() - 7) + ".qweight");
}

} // namespace

at::Tensor loadTensor(const Checkpoint& ckpt, const std::string& name, at::ScalarType target)
{
    if (isGptqWeight(ckpt, name))
        return loadGptqWeight(ckpt, name.substr(0, name.size() - 7), nullptr, target);
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
    if (isGptqWeight(ckpt, name))
        return loadGptqWeight(ckpt, name.substr(0, name.size() - 7), &shape, target);
    const TensorInfo& info = ckpt.info(name);
    if (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16 && info.dtype != DType::F64)
        throw InputError(ckpt.fileOf(name).path(), "tensor '" + name + "' has dtype " + dtypeName(info.dtype)
                                                       + "; weights must be F32, F16, BF16 or F64");
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

/// Weights the forward runs on must be finite: a NaN or Inf would silently poison every statistic
/// and perplexity downstream. InputError naming the checkpoint and the tensor.
static at::Tensor finite(const Checkpoint& ckpt, const std::string& name, at::Tensor t)
{
    if (t.numel() > 0 && t.is_floating_point() && !at::isfinite(t).all().item<bool>()) {
        const int64_t nan = at::isnan(t).sum().item<int64_t>();
        const int64_t inf = at::isinf(t).sum().item<int64_t>();
        throw InputError(ckpt.dir(), "tensor '" + name + "' contains " + std::to_string(nan) + " NaN and "
                                         + std::to_string(inf) + " Inf values");
    }
    return t;
}

LayerWeights loadLayerWeights(const ModelConfig& cfg, const Checkpoint& ckpt, int64_t layer, at::ScalarType dtype)
{
    LayerWeights w;
    w.layer = layer;
    for (TensorSpec& spec : layerTensors(cfg, layer))
        w.tensors[spec.name] = finite(ckpt, spec.name, loadTensorShaped(ckpt, spec.name, std::move(spec.shape), dtype));
    return w;
}

at::Tensor loadEmbedding(const ModelConfig& cfg, const Checkpoint& ckpt, at::ScalarType dtype)
{
    return finite(ckpt, "model.embed_tokens.weight",
                  loadTensorShaped(ckpt, "model.embed_tokens.weight", {cfg.vocabSize, cfg.hiddenSize}, dtype));
}

HeadWeights loadHeadWeights(const ModelConfig& cfg, const Checkpoint& ckpt, at::ScalarType dtype)
{
    HeadWeights o;
    o.norm = finite(ckpt, "model.norm.weight", loadTensorShaped(ckpt, "model.norm.weight", {cfg.hiddenSize}, dtype));
    o.lmHead = cfg.tieWordEmbeddings && !ckpt.has("lm_head.weight")
        ? loadEmbedding(cfg, ckpt, dtype)
        : finite(ckpt, "lm_head.weight",
                 loadTensorShaped(ckpt, "lm_head.weight", {cfg.vocabSize, cfg.hiddenSize}, dtype));
    return o;
}

} // namespace moewb
