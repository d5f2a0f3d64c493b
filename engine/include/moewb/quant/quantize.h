// SPDX-License-Identifier: MIT
// Applying a plan to a model (#8): GPTQ / RTN per linear, one decoder layer at a time, with the
// calibration inputs of each layer taken from the already-quantized layers before it. Torch-free
// API for the CLI and the GUI; the layer loop lives in engine/quant/quantize_model.cpp.
//
// Per decoder layer (true-sequential, as GPTQ's reference scripts do):
//   [q, k, v] → [o_proj] → [gate, up of every routed expert, the shared expert, the dense MLP]
//   → [down of all of them]. Before each group the block's forward runs over every calibration
//   sequence with the linears quantized so far, collecting H = (2/n) Σ x xᵀ of each linear of the
//   group from its actual input rows (a routed expert sees only the tokens routed to it, unless
//   QuantizeOptions::balanceExperts says otherwise: ExpertBalance below). After the
//   last group the fully quantized block produces the hidden states the next layer starts from.
//
// Fallback (routed experts only): a GPTQ linear of an expert that received fewer than
// minExpertTokens calibration tokens is quantized with RTN (same bits, group size, sym) instead:
// its Hessian has rank ≤ tokens, and GPTQ's error feedback would fit those few tokens rather than
// the expert's real input distribution. The report names every such linear with its token count.
//
// Never quantized: routers, Qwen2-MoE's shared_expert_gate, embeddings, lm_head, norms; bits 16 =
// left as stored. Plans that drop experts/layers/blocks are refused here: the CLI trims first
// (moewb/trim/trim.h trimCheckpoint + planForTrimmed) and quantizes the trimmed model.
#pragma once

#include "moewb/plan/plan.h"
#include "moewb/calib/calibrate.h"
#include "moewb/core/progress.h"
#include "moewb/safetensors/safetensors.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace moewb {

class DistContext;

constexpr int64_t kDefaultMinExpertTokens = 32;

/// Expert-balanced calibration (#25, docs/calibration-coverage.md): what feeds a routed expert's
/// Hessians besides the tokens routed to it. The forward itself always routes top-k, so the model's
/// outputs (and every other linear's inputs) do not depend on the mode.
///   Off          the routed tokens only (weight 1 each);
///   NextChoices  an expert with fewer than minExpertTokens routed tokens also takes the tokens for
///                which it is the router's choice k+1, then k+2, ... (whole ranks, weight 1) until it
///                has minExpertTokens, at most kBalanceRanks(k, E) ranks past the top-k;
///   AllTokens    every calibration token, weighted by the expert's router probability (softmax over
///                all experts): H = (2 / Σ p) Σ p x xᵀ (the routed tokens are not counted twice).
///   Sampled      AllTokens' Hessian estimated from a sample of the tokens (fine-grained MoEs: all
///                tokens through all E experts is E / k times the routed work): a token whose
///                probability p for the expert is at least τ = 1 / (2k) is taken with weight p, one
///                below it with probability p / τ and weight τ (unbiased for Σ p x xᵀ). The draw is a
///                hash of the token's router logits (rounded to bf16) and the expert: reproducible, and
///                the same whatever the batching but for rare tokens whose logits round differently
///                (about 1 in 1,000). About Σ min(1, p / τ) ≤ 2k·N / E rows per expert instead of N.
enum class ExpertBalance { Off, NextChoices, AllTokens, Sampled };
/// The default everywhere (CLI, pipeline, GUI): all-tokens won against off with paired intervals
/// excluding 0 on every demo model with few calibration tokens (docs/calibration-coverage.md).
constexpr ExpertBalance kDefaultExpertBalance = ExpertBalance::AllTokens;

/// "off" | "next-choices" | "all-tokens" | "sampled".
const char* expertBalanceName(ExpertBalance b);
/// The inverse of expertBalanceName; InputError naming `where` for anything else.
ExpertBalance parseExpertBalance(const std::string& name, const std::string& where);
/// NextChoices: how many ranks past the top-k an expert may take tokens from: min(k, E − k).
int64_t balanceRanks(int64_t topK, int64_t numExperts);

struct QuantizeOptions {
    std::string planPath = "plan";     ///< names the plan in error messages
    double damp = 0.01;                ///< GPTQ damping: λ = damp · mean(diag H)
    int64_t minExpertTokens = kDefaultMinExpertTokens; ///< below this, a routed expert's GPTQ linears fall back to RTN
    ExpertBalance balanceExperts = kDefaultExpertBalance; ///< what feeds routed experts' Hessians (see ExpertBalance)
    std::string dtype = "auto";        ///< compute dtype of the calibration forward: auto | bf16 | f32
    int64_t maxBatchTokens = 8192;     ///< sequences are batched (same length only) up to this many tokens
    int64_t blockSize = 128;           ///< GPTQ lazy-batch block
    /// Hessians held at once (estimated 12·in² bytes each); a group that needs more is collected in
    /// several forward passes over the calibration data. Results do not depend on it.
    int64_t maxHessianBytes = int64_t(8) << 30;
    /// Distributed run (#15, moewb/dist/dist.h; not owned, null = single process). Every rank
    /// passes the same sequences; each runs the calibration forward on its contiguous block of
    /// them (shardOf), the Hessians are all-reduced, the linears of each pass are split across
    /// ranks by estimated cost, quantized, and gathered, so every rank continues with the same
    /// quantized layer and hands every linear to its sink (rank 0 writes, the others pass a sink
    /// that discards). Needs at least one sequence per rank when calibration data is given.
    DistContext* dist = nullptr;
    /// Wanda input norms (E[x_j²] by linear name, e.g. from stats.h5's act_sq_mean) used when no
    /// calibration data runs through the model; with calibration data Wanda uses diag(H)/2 of the
    /// pass (inputs of the already pruned layers).
    std::map<std::string, std::vector<float>> actSqMean;
};

/// What happened to one quantizable linear.
struct LinearQuantResult {
    std::string name;          ///< tensor name without ".weight"
    int64_t layer = -1;
    int64_t expert = -1;       ///< routed expert, -1 otherwise
    std::string role;          ///< linearRoleName()
    LinearSettings plan;       ///< the settings the plan gives it (planResult); method: as the plan asks
    std::string method;        ///< what ran: "gptq" | "rtn" | "none" (bits 16)
    std::string fallback;      ///< "" or why a GPTQ linear was quantized with RTN
    int64_t tokens = -1;       ///< calibration rows that reached it (-1: not collected)
    double relError = -1;      ///< tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) of the stored weight; -1 without a Hessian
    double dampUsed = -1;      ///< GPTQ damping fraction finally used (raised when Cholesky failed); -1 for RTN
    double dampLambda = -1;    ///< the absolute λ GPTQ added to diag(H); -1 for RTN
    double seconds = 0;        ///< time of the quantizer itself (not the forward passes)
    // Pruning (#14, docs/pruning.md): set for the linears the plan prunes (plan.sparsity > 0) only.
    std::string pruneMethod;      ///< what ran (differs from plan.pruneMethod after a fallback, see `fallback`)
    int64_t numel = 0;            ///< out·in
    int64_t pruned = -1;          ///< weights pruned (the mask)
    double achievedSparsity = -1; ///< pruned / numel
    int64_t zeros = -1;           ///< exact zeros in the stored weight (>= pruned: quantization may add some)
};

struct FallbackExpert {
    int64_t layer = 0;
    int64_t expert = 0;
    int64_t tokens = 0;
    std::string reason;
};

/// Calibration coverage of one routed expert of a quantized MoE layer (#25): the tokens the router
/// sent it, and what built its Hessians after balancing (gate/up and down see the same tokens).
struct ExpertCoverage {
    int64_t layer = 0;
    int64_t expert = 0;
    int64_t routed = 0;  ///< calibration tokens routed to it (top-k)
    int64_t tokens = 0;  ///< rows of its Hessian after balancing (= routed with balancing off)
    double weight = 0;   ///< Σ of the rows' weights (= tokens unless all-tokens)
};

struct QuantizeReport {
    std::vector<LinearQuantResult> linears; ///< listLinears() order, quantizable linears only
    std::vector<FallbackExpert> fallbackExperts;
    std::vector<ExpertCoverage> experts;    ///< every routed expert with a GPTQ-collected linear, by layer, expert
    ExpertBalance balanceExperts = kDefaultExpertBalance;
    std::string architecture;
    std::string computeDtype;
    int64_t calibSequences = 0;
    int64_t calibTokens = 0;
    double damp = 0.01;
    int64_t minExpertTokens = kDefaultMinExpertTokens;
    double seconds = 0;          ///< whole run
    double meanRelError = -1;    ///< over linears with a relative error; -1 if none
    std::string calibDescription;
    std::string toolVersion;
};

/// One quantized linear as the writers (fake, GPTQ, GGUF) receive it; pointers valid during the
/// sink call only. The integer grid is docs/algorithms.md §3.1's, in the original column order:
/// w'[r][c] = scales[r][gIdx[c]] · (q[r][c] − zeros[r][gIdx[c]]). Scales are already rounded to
/// fp16 (as GPTQ checkpoints store them), so `data` is exactly what a GPTQ kernel computes from the
/// packed tensors, rounded to the checkpoint dtype.
struct QuantizedWeight {
    const PlanEntry* entry = nullptr; ///< name, layer, expert, role, shape, bits, group size, sym, act order
    std::string tensorName;           ///< entry->name + ".weight"
    DType dtype = DType::BF16;        ///< the checkpoint's dtype of this tensor (and of `data`)
    std::vector<int64_t> shape;       ///< {out, in}
    const void* data = nullptr;       ///< dequantized weight [out, in] in dtype
    uint64_t nbytes = 0;
    const int32_t* q = nullptr;       ///< [out * in] codes in [0, 2^bits − 1]
    const float* scales = nullptr;    ///< [out * groups], fp16-representable
    const float* zeros = nullptr;     ///< [out * groups], integer-valued
    const int32_t* gIdx = nullptr;    ///< [in] group of each input column (i / G unless act order
                                      ///< without static groups, docs/algorithms.md §3.1)
    int64_t groups = 0;
    /// A linear with a ggml_type (#26): its rows as ggml encoded them (q/scales/zeros/gIdx null).
    int64_t ggmlType = -1;            ///< gguf::GgmlType, -1 when none
    const uint8_t* ggmlRows = nullptr; ///< [out][ggmlRowBytes]
    int64_t ggmlRowBytes = 0;
};

/// Receives each quantized linear, layer by layer, exactly once.
using QuantizedWeightSink = std::function<void(const QuantizedWeight&)>;

/// Refuses what quantizeModel does not apply itself: dropped experts/layers/blocks (QuantizeSource,
/// moewb/workflow/quantize_source.h, trims first).
/// Also runs validatePlan. InputError names opt.planPath.
void checkPlanForQuantize(const Plan& plan, const ModelConfig& cfg, const std::string& planPath);

/// The layer loop. sequences: calibration token ids (may be empty when no linear uses GPTQ,
/// SparseGPT or Wanda without actSqMean: RTN then runs without any forward pass and no error is measured). Every linear with bits < 16 or sparsity > 0 is
/// handed to sink exactly once, layer by layer. Cancellation via progress (Cancelled).
QuantizeReport quantizeModel(const std::string& modelDir, const Plan& plan,
                             const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                             const QuantizedWeightSink& sink, const ProgressFn& progress = {});

/// Calibration windows as quantizeModel wants them (loadCalibData + calibWindows).
std::vector<std::vector<int32_t>> calibSequences(const CalibTokens& tokens, int64_t samples, int64_t seqLen,
                                                 bool randomWindows, int64_t seed);

/// `--format fake`: quantizeModel into a new HF-layout directory outDir: config.json, tokenizer
/// and generation files copied; model.safetensors with each quantized linear replaced by its
/// dequantized weight (the tensor's own dtype) and every other tensor bit-identical;
/// moewb_plan.json (the plan) and moewb_quant_report.json. Built in outDir.tmp.<pid> and renamed
/// at the end: an error or a cancel leaves nothing. outDir existing is an InputError unless force
/// (then it is replaced once the new one is complete).
QuantizeReport quantizeToFakeDir(const std::string& modelDir, const Plan& plan,
                                 const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                 const std::string& outDir, bool force, const std::string& calibDescription = {},
                                 const ProgressFn& progress = {});

/// moewb_quant_report.json.
std::string reportToJson(const QuantizeReport& r);

/// Experts of r.experts with fewer than r.minExpertTokens tokens: routed ones (before balancing,
/// `after` false) or in their Hessians (after).
int64_t expertsBelowMinimum(const QuantizeReport& r, bool after);

} // namespace moewb
