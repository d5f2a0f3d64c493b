// SPDX-License-Identifier: MIT
// ggml-encoded linears (quant/ggml_linear.h).
#include "quant/ggml_linear.h"

#include "model/weights.h"
#include "moewb/core/error.h"

#include <ATen/Parallel.h>

#include <chrono>

namespace moewb {

gguf::GgmlType ggmlTypeOfEntry(const PlanEntry& e)
{
    gguf::GgmlType t;
    MOEWB_CHECK(gguf::ggmlTypeFromName(e.ggmlType, t), e.name, "ggml_type '" + e.ggmlType + "' is not encoded by moewb");
    return gguf::rowFallbackType(t, e.inFeatures);
}

QuantizedLinear ggmlQuantizeLinear(const LinearInput& in, const QuantizeOptions& opt)
{
    const auto t0 = std::chrono::steady_clock::now();
    const PlanEntry& e = *in.entry;
    const gguf::GgmlType type = ggmlTypeOfEntry(e);
    const at::Tensor w = in.weight.to(at::kFloat).contiguous();
    const int64_t rows = w.size(0), cols = w.size(1);
    const float* importance = nullptr;
    auto it = opt.actSqMean.find(e.name);
    if (it != opt.actSqMean.end()) {
        MOEWB_CHECK(int64_t(it->second.size()) == cols, e.name,
                    "act_sq_mean has " + std::to_string(it->second.size()) + " values, expected " + std::to_string(cols));
        importance = it->second.data();
    }
    const int64_t rb = gguf::ggmlRowBytes(type, cols);
    at::Tensor enc = at::empty({rows, rb}, at::kByte);
    at::Tensor dec = at::empty({rows, cols}, at::kFloat);
    const float* src = w.data_ptr<float>();
    uint8_t* encP = enc.data_ptr<uint8_t>();
    float* decP = dec.data_ptr<float>();
    at::parallel_for(0, rows, 1, [&](int64_t b, int64_t end) {
        for (int64_t r = b; r < end; ++r) {
            gguf::quantizeRow(type, src + r * cols, encP + r * rb, cols, importance);
            gguf::dequantizeRow(type, encP + r * rb, decP + r * cols, cols);
        }
    });
    QuantizedLinear q;
    q.stored = dec.to(in.storeDtype).contiguous();
    q.ggmlRows = enc;
    q.ggmlType = int64_t(type);
    q.result = planResult(e);
    q.result.method = std::string("ggml ") + gguf::ggmlTypeName(type) + (importance ? " imatrix" : "");
    q.result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return q;
}

namespace {

/// ne[0]-wide rows of a float tensor through type t and back.
at::Tensor roundTripRows(const at::Tensor& w, gguf::GgmlType t)
{
    const at::Tensor x = w.to(at::kFloat).contiguous();
    const int64_t cols = x.size(-1), rows = x.numel() / cols;
    at::Tensor out = at::empty_like(x);
    const int64_t rb = gguf::ggmlRowBytes(t, cols);
    const float* src = x.data_ptr<float>();
    float* dst = out.data_ptr<float>();
    at::parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {
        std::vector<uint8_t> buf(static_cast<size_t>(rb));
        for (int64_t r = b; r < e; ++r) {
            gguf::quantizeRow(t, src + r * cols, buf.data(), cols);
            gguf::dequantizeRow(t, buf.data(), dst + r * cols, cols);
        }
    });
    return out;
}

} // namespace

std::map<std::string, at::Tensor> ggmlEmbeddingRoundTrips(const Plan& plan, const ModelConfig& cfg,
                                                           const Checkpoint& ckpt, std::vector<std::string>& notes)
{
    std::map<std::string, at::Tensor> out;
    auto apply = [&](const std::string& hf, const std::string& typeName) {
        if (typeName.empty() || out.count(hf))
            return;
        gguf::GgmlType t;
        MOEWB_CHECK(gguf::ggmlTypeFromName(typeName, t), hf, "ggml type '" + typeName + "' is not encoded by moewb");
        const TensorInfo& info = ckpt.info(hf);
        t = gguf::rowFallbackType(t, info.shape.back());
        const at::Tensor w = loadTensorShaped(ckpt, hf, info.shape, at::kFloat);
        out[hf] = roundTripRows(w, t).to(toScalarType(info.dtype)).contiguous();
    };
    const std::string embed = "model.embed_tokens.weight";
    apply(embed, plan.ggufTokenEmbd);
    if (cfg.tieWordEmbeddings) {
        if (!plan.ggufOutput.empty() && plan.ggufOutput != plan.ggufTokenEmbd)
            notes.push_back("tied embeddings: the fake export holds one matrix, written with token_embd's type "
                            + (plan.ggufTokenEmbd.empty() ? std::string("(unquantized)") : plan.ggufTokenEmbd)
                            + "; the GGUF's output.weight is " + plan.ggufOutput);
    } else {
        apply("lm_head.weight", plan.ggufOutput);
    }
    return out;
}

} // namespace moewb
