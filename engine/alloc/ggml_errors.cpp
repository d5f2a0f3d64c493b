// SPDX-License-Identifier: MIT
// The ggml-type error table (moewb/alloc/ggml_errors.h): every tensor through the encoders the
// GGUF export uses, at every candidate type.
#include "moewb/alloc/ggml_errors.h"

#include "gguf/gguf_quants.h"
#include "model/weights.h"
#include "moewb/core/error.h"
#include "moewb/plan/plan.h"
#include "moewb/safetensors/safetensors.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <map>
#include <mutex>

namespace moewb {

namespace {

gguf::GgmlType typeNamed(const std::string& name)
{
    gguf::GgmlType t;
    MOEWB_CHECK(gguf::ggmlTypeFromName(name, t) && gguf::ggmlCanQuantize(t), "candidate ggml types",
                "'" + name + "' is not a type moewb encodes");
    return t;
}

/// Errors of x at every candidate type; types whose fallback for this width coincides share one measurement.
std::vector<double> errorsAtTypes(const at::Tensor& x, const std::vector<std::string>& types, const float* importance,
                                  const float* weight, const float* rowWeight = nullptr)
{
    const int64_t cols = x.size(-1), rows = x.numel() / cols;
    std::map<gguf::GgmlType, double> seen;
    std::vector<double> out;
    for (const std::string& name : types) {
        const gguf::GgmlType t = gguf::rowFallbackType(typeNamed(name), cols);
        auto it = seen.find(t);
        if (it == seen.end())
            it = seen.emplace(t, ggmlSquaredError(x.data_ptr<float>(), rows, cols, gguf::ggmlTypeName(t), importance,
                                                  weight, rowWeight))
                     .first;
        out.push_back(it->second);
    }
    return out;
}

/// Tokens routed to the expert / router tokens; without router statistics top_k / experts (uniform routing).
double expertUsage(const LinearInfo& li, const ModelConfig& cfg, const CalibStats& stats)
{
    if (li.expert < 0)
        return 1.0;
    const RouterStats* r = stats.router(li.layer);
    if (!r || r->tokens <= 0)
        return cfg.numExperts > 0 ? double(cfg.topK) / double(cfg.numExperts) : 1.0;
    return li.expert < r->numExperts && li.expert < int64_t(r->expertTokens.size())
        ? double(r->expertTokens[size_t(li.expert)]) / double(r->tokens)
        : 0.0;
}

/// The 2-D weight `name`; rows < 0: any number of rows (the embeddings' padded vocabularies).
at::Tensor loadMatrix(const Checkpoint& ckpt, const std::string& name, int64_t rows, int64_t cols)
{
    at::Tensor w = loadTensor(ckpt, name, at::kFloat).contiguous();
    ckpt.release(name);
    MOEWB_CHECK(w.dim() == 2 && (rows < 0 || w.size(0) == rows) && w.size(1) == cols, name, "expected shape [",
                rows < 0 ? std::string("V") : std::to_string(rows), ", ", cols, "], the checkpoint has ", w.sizes());
    return w;
}

} // namespace

const std::vector<std::string>& defaultGgufCandidateTypes()
{
    static const std::vector<std::string> t{"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_0"};
    return t;
}

double ggmlSquaredError(const float* x, int64_t rows, int64_t cols, const std::string& type, const float* importance,
                        const float* weight, const float* rowWeight)
{
    const gguf::GgmlType t = gguf::rowFallbackType(typeNamed(type), cols);
    const int64_t rb = gguf::ggmlRowBytes(t, cols);
    std::mutex m;
    double total = 0.0;
    at::parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {
        std::vector<uint8_t> enc(static_cast<size_t>(rb));
        std::vector<float> dec(static_cast<size_t>(cols));
        double part = 0.0;
        for (int64_t r = b; r < e; ++r) {
            const float* src = x + r * cols;
            gguf::quantizeRow(t, src, enc.data(), cols, importance);
            gguf::dequantizeRow(t, enc.data(), dec.data(), cols);
            double rowPart = 0.0;
            for (int64_t j = 0; j < cols; ++j) {
                const double d = double(src[j]) - double(dec[size_t(j)]);
                rowPart += (weight ? double(weight[j]) : 1.0) * d * d;
            }
            part += (rowWeight ? double(rowWeight[r]) : 1.0) * rowPart;
        }
        std::lock_guard<std::mutex> lock(m);
        total += part;
    });
    return total;
}

GgmlErrorTable measureGgmlErrors(const std::string& modelDir, const ModelConfig& cfg, const CalibStats& stats,
                                 const std::vector<std::string>& types, const ProgressFn& progress, CostModel model)
{
    const auto t0 = std::chrono::steady_clock::now();
    MOEWB_CHECK(!types.empty(), "candidate ggml types", "none given");
    for (const std::string& t : types)
        typeNamed(t);
    std::map<std::string, const LinearStats*> byName;
    for (const LinearStats& l : stats.linears)
        byName[l.name] = &l;
    const Checkpoint ckpt = Checkpoint::open(modelDir);
    model = resolveCostModel(model, stats);
    const bool fisher = model == CostModel::Fisher;
    GgmlErrorTable table;
    table.types = types;
    table.costModel = model;
    const std::vector<LinearInfo> lin = quantizableLinears(cfg);
    const int64_t steps = int64_t(lin.size()) + 2;
    for (size_t i = 0; i < lin.size(); ++i) {
        const LinearInfo& li = lin[i];
        report(progress, "measure ggml quantization error", int64_t(i), steps, li.name);
        const at::Tensor w = loadMatrix(ckpt, li.name + ".weight", li.outFeatures, li.inFeatures);
        auto it = byName.find(li.name);
        const float* imp = (it != byName.end() && int64_t(it->second->actSqMean.size()) == li.inFeatures)
            ? it->second->actSqMean.data()
            : nullptr;
        if (fisher) {
            // ½ F_r per output row: the predicted KL divergence (docs/allocation.md); the Fisher of a
            // routed expert is averaged over all tokens, so routing is in it already.
            const LinearStats* ls = it != byName.end() ? it->second : nullptr;
            MOEWB_CHECK(ls && int64_t(ls->fisher.size()) == li.outFeatures, li.name,
                        "no Fisher diagonal in the statistics (run moewb calibrate --fisher)");
            std::vector<float> half(ls->fisher.size());
            for (size_t r = 0; r < half.size(); ++r)
                half[r] = 0.5f * ls->fisher[r];
            table.linears.push_back({li.name, errorsAtTypes(w, types, imp, imp, half.data())});
            continue;
        }
        GgmlTensorErrors row{li.name, errorsAtTypes(w, types, imp, imp)};
        const double usage = expertUsage(li, cfg, stats);
        for (double& e : row.error)
            e *= usage;
        table.linears.push_back(std::move(row));
    }
    const std::string embed = "model.embed_tokens.weight";
    report(progress, "measure ggml quantization error", steps - 2, steps, embed);
    const at::Tensor e = loadMatrix(ckpt, embed, -1, cfg.hiddenSize);
    table.tokenEmbd = {embed, errorsAtTypes(e, types, nullptr, nullptr)};
    for (double& v : table.tokenEmbd.error)
        v /= double(e.size(0));
    const std::string head = cfg.tieWordEmbeddings ? embed : "lm_head.weight";
    report(progress, "measure ggml quantization error", steps - 1, steps, head);
    const at::Tensor h = cfg.tieWordEmbeddings ? e : loadMatrix(ckpt, head, -1, cfg.hiddenSize);
    const at::Tensor g = loadTensor(ckpt, "model.norm.weight", at::kFloat).contiguous();
    MOEWB_CHECK(g.numel() == cfg.hiddenSize, "model.norm.weight", "expected ", cfg.hiddenSize, " values, got ",
                g.numel());
    const at::Tensor g2 = (g * g).contiguous();
    table.output = {head, errorsAtTypes(h, types, nullptr, g2.data_ptr<float>())};
    report(progress, "measure ggml quantization error", steps, steps);
    table.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return table;
}

} // namespace moewb
