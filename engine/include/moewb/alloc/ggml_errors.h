// SPDX-License-Identifier: MIT
// The error table of `plan --strategy budget --target gguf` (#26, docs/export-gguf.md "Budgets in
// GGUF bytes"): each quantizable linear, the token embedding and the output matrix encoded with
// the ggml encoders moewb writes (engine/gguf), at every candidate ggml type (llama-quantize's
// width fallback applied), and the squared error measured against the original weight.
//
//   linear:     usage · Σ_r Σ_j a_j (W_rj − Ŵ_rj)²    a = act_sq_mean (E[x_j²]; 1 without stats),
//               the encoder given a as importance, exactly as quantize --format gguf --stats does;
//               usage = tokens routed to the expert / router tokens (1 for dense linears;
//               top_k / experts without router statistics)
//   token_embd: (1/V) Σ_r Σ_j (E_rj − Ê_rj)²           expected perturbation of a token's embedding
//   output:     Σ_r Σ_j g_j² (W_rj − Ŵ_rj)²            g = the final norm's weight: E[x_j²] ≈ g_j²
//                                                      for the RMS-normalized hidden state
// All three are the expected squared perturbation per token of the tensor's output. token_embd and
// output are encoded without importance, as the export writes them.
//
// With the Fisher cost model (statistics from calibrate --fisher; docs/allocation.md) a linear's
// error is instead the predicted KL divergence ½ Σ_r F_r Σ_j a_j (W_rj − Ŵ_rj)², F = the Fisher
// diagonal at the linear's output (routing already in it: no usage factor). token_embd and output
// keep the squared perturbation above (no Fisher is measured for them), so they are only comparable
// with the linears under the proxy; the budget fixes their types by default.
#pragma once

#include "moewb/alloc/allocate.h"
#include "moewb/core/progress.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/stats/stats.h"

#include <string>
#include <vector>

namespace moewb {

/// llama.cpp's K-quant ladder and Q8_0, ascending: the default candidates.
const std::vector<std::string>& defaultGgufCandidateTypes();

/// The plan's bits for a ggml type (what the other formats would approximate it with): q2_k 2,
/// q3_k 3, q4_k 4, anything wider 8.
int64_t ggufBitsOfType(const std::string& type);

struct GgmlTensorErrors {
    std::string name;          ///< HF module name ("model.layers.0.mlp.experts.3.down_proj"), or the tensor name
    std::vector<double> error; ///< per candidate type
};

struct GgmlErrorTable {
    std::vector<std::string> types;        ///< candidate ggml types, plan spelling ("q4_k")
    std::vector<GgmlTensorErrors> linears; ///< quantizable linears in listLinears() order
    GgmlTensorErrors tokenEmbd;            ///< "model.embed_tokens.weight"
    GgmlTensorErrors output;               ///< "lm_head.weight" (the embedding when tied)
    CostModel costModel = CostModel::Proxy; ///< of the linears' errors: Fisher or Proxy (never Auto)
    double seconds = 0.0;                  ///< measurement wall time
};

/// Measures the table (one weight loaded at a time). `model` Auto: Fisher when the statistics have
/// it, else Proxy. InputError for an unknown or unencodable type, a weight of the wrong shape, Fisher
/// asked of statistics without it; Cancelled when `progress` asks.
GgmlErrorTable measureGgmlErrors(const std::string& modelDir, const ModelConfig& cfg, const CalibStats& stats,
                                 const std::vector<std::string>& types, const ProgressFn& progress = {},
                                 CostModel model = CostModel::Auto);

/// The squared error Σ_r v_r Σ_j w_j (x_rj − x̂_rj)² of `rows` × `cols` row-major x encoded as `type`
/// (rowFallbackType applied) with `importance` (nullable) and decoded; `weight` (nullable) = w and
/// `rowWeight` (nullable) = v, 1 when null. Rows are encoded in parallel.
double ggmlSquaredError(const float* x, int64_t rows, int64_t cols, const std::string& type, const float* importance,
                        const float* weight, const float* rowWeight = nullptr);

void saveGgmlErrorTable(const GgmlErrorTable& t, const std::string& path); ///< JSON, atomic
/// InputError naming the file for anything not written by saveGgmlErrorTable.
GgmlErrorTable loadGgmlErrorTable(const std::string& path);

} // namespace moewb
