// SPDX-License-Identifier: MIT
// `quantize --format gguf` (#9): a plan applied to a model and written as one GGUF v3 file that
// llama.cpp loads (docs/export-gguf.md). Torch-free API.
//
// Supported: Mixtral (general.architecture "llama" with experts; q/k rows permuted to llama.cpp's
// interleaved RoPE as convert_hf_to_gguf.py does), Qwen2-MoE ("qwen2moe", shared expert and its
// sigmoid gate), Qwen3-MoE ("qwen3moe", per-head q/k norms), OLMoE ("olmoe", whole-projection q/k
// norms) and DeepSeek-MoE ("deepseek": leading dense layers, merged shared experts, q/k permuted).
// Routed experts are stacked per layer into 3-D tensors blk.N.ffn_{gate,up,down}_exps
// (ne = {in, out, n_expert}).
//
// Tensor types (docs/export-gguf.md "Bits → ggml type"): a linear whose plan entry has a ggml_type
// is written in it (llama-quantize's fallback where the width does not fit), encoded by ggml's method
// from the checkpoint with QuantizeOptions::actSqMean as importance (quant/ggml_linear.h); other
// quantized linears of b bits become Q4_0 (b ≤ 4, symmetric), Q4_1 (b ≤ 4, asymmetric) or Q8_0
// (5 ≤ b ≤ 8) holding the GPTQ/RTN grid as is wherever a 32-column block lies in one group and its
// codes fit (else re-quantized from the grid's values with ggml's reference rule; the result counts
// both). Bits 16 and widths not a multiple of 32 become the unquantized type (F16 by default); norms,
// biases, routers and the shared-expert gate are F32; token_embd / output the plan's "gguf" types,
// else the unquantized type. A stacked expert tensor has one type: the widest its experts ask for
// (gguf_types.h typeRank); the report says what that costs.
#pragma once

#include "moewb/quant/quantize.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

struct GgufExportOptions {
    std::string unquantizedType = "f16"; ///< f16 | bf16 | f32: embeddings, lm_head, 16-bit linears
    uint32_t alignment = 32;             ///< general.alignment (multiple of 8)
};

/// One tensor of the written file.
struct GgufTensorSummary {
    std::string name;
    std::vector<int64_t> ne;
    std::string type;           ///< "Q4_0"
    uint64_t bytes = 0;
    int64_t gridBlocks = 0;     ///< blocks holding the quantizer's own grid
    int64_t requantBlocks = 0;  ///< blocks re-quantized with ggml's rule
    int64_t encodedBlocks = 0;  ///< blocks encoded by ggml's method from the weights (ggml_type, embeddings)
    int64_t extraBytes = 0;     ///< stacked: bytes over the experts' asked types (one type per stack)
    std::string note;           ///< why a stacked tensor got a higher type than some experts asked for
};

struct GgufExportResult {
    QuantizeReport quant;
    std::string path;
    uint64_t fileBytes = 0;
    std::string fileType;        ///< general.file_type as text ("MOSTLY_Q4_0")
    int64_t gridBlocks = 0;
    int64_t requantBlocks = 0;
    int64_t encodedBlocks = 0;
    int64_t stackExtraBytes = 0;   ///< Σ extraBytes: what one type per stacked tensor cost
    bool importance = false;       ///< ggml-encoded linears were weighted by act_sq_mean (QuantizeOptions::actSqMean)
    std::vector<GgufTensorSummary> tensors;
    std::vector<std::string> notes; ///< one sentence each: promotions, re-quantization, llama.cpp caveats
};

/// quantizeModel into outFile (a .gguf), plus outFile + ".moewb_report.json" (the quantize report
/// and the per-tensor summary); the plan is embedded as metadata "moewb.plan". Written to a temp
/// file and renamed at the end: an error or a cancel leaves nothing. An existing outFile is an
/// InputError unless force. Refuses (InputError) architectures other than Mixtral, Qwen2-MoE,
/// Qwen3-MoE, OLMoE and DeepSeek-MoE,
/// and a disk without room for the file.
GgufExportResult quantizeToGguf(const std::string& modelDir, const Plan& plan,
                                const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                const std::string& outFile, bool force, const std::string& calibDescription = {},
                                const ProgressFn& progress = {}, const GgufExportOptions& gopt = {});

/// The exact size in bytes of the file quantizeToGguf writes for this model, plan and options
/// (header, metadata with the embedded plan, every tensor and its padding); writes nothing.
uint64_t ggufPlannedBytes(const std::string& modelDir, const Plan& plan, const GgufExportOptions& gopt = {});

/// `moewb gguf-info`: reads and validates a GGUF file (InputError on one line otherwise) and returns
/// its header, metadata (one line each, arrays shortened to maxItems values) and tensor table.
std::string ggufInfoText(const std::string& path, size_t maxItems = 8);

/// The report file's JSON text.
std::string ggufReportToJson(const GgufExportResult& r);

} // namespace moewb
