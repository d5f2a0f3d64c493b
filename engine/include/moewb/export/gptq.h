// SPDX-License-Identifier: MIT
// `quantize --format gptq` (#9): a real GPTQ checkpoint (docs/export-gptq.md) that transformers+optimum,
// GPTQModel and vLLM load, and the description of such a checkpoint that moewb's own reader
// (model/weights.cpp: `.qweight` & co. dequantized on load) uses. Users' view: docs/export-gptq.md.
#pragma once

#include "moewb/gptq/gptq_checkpoint.h"
#include "moewb/plan/plan.h"
#include "moewb/plan/gptq_dynamic.h"
#include "moewb/core/progress.h"
#include "moewb/quant/quantize.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moewb {

constexpr int64_t kDefaultMaxShardBytes = 4'000'000'000; ///< 4 GB (decimal, like transformers' "4GB")

struct GptqExportOptions {
    /// A shard holds at most this many tensor bytes (a tensor larger than that gets a shard of
    /// its own); over it the checkpoint is split into model-0000i-of-0000n.safetensors with
    /// model.safetensors.index.json.
    int64_t maxShardBytes = kDefaultMaxShardBytes;
    /// "gptq" (v1: qzeros hold zero − 1; what every loader reads) or "gptq_v2" (GPTQModel only).
    std::string checkpointFormat = "gptq";
};

struct GptqExportResult {
    QuantizeReport report;
    std::string checkpointFormat;
    uint64_t bytesOnDisk = 0;  ///< every file of the output directory
    uint64_t tensorBytes = 0;  ///< sum of the tensors' sizes (index metadata.total_size)
    int64_t shards = 1;
    int64_t quantizedLinears = 0;
    /// v1 only: asym groups whose zero point is 0, stored as 2^b − 1 (docs/export-gptq.md, "Zero
    /// points"). moewb and AutoGPTQ's torch path read them back exactly; exllama/Marlin-style
    /// kernels do not.
    int64_t wrappedZeros = 0;
};

/// quantizeModel into a new HF-layout directory outDir (same contract as quantizeToFakeDir:
/// built in outDir.tmp.<pid>, renamed at the end; an error or a cancel leaves nothing; outDir
/// existing is an InputError unless force). Each linear with bits < 16 is stored as
/// <name>.qweight / .qzeros / .scales / .g_idx (bias unchanged); every other tensor, 16-bit linears
/// included, bit-identical. config.json gets `quantization_config` (also written to
/// quantize_config.json) with the plan as GPTQModel `dynamic` overrides. Plans whose quantized
/// linears use bits outside {2,3,4,8} cannot exist (validatePlan), so every plan exports.
GptqExportResult quantizeToGptqDir(const std::string& modelDir, const Plan& plan,
                                   const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                   const std::string& outDir, bool force, const std::string& calibDescription = {},
                                   const ProgressFn& progress = {}, const GptqExportOptions& gopt = {});

/// The `quantization_config` object moewb writes, as JSON text (indent 2).
std::string gptqQuantizationConfigJson(const std::vector<PlanEntry>& entries, const ModelConfig& cfg,
                                       const QuantizeOptions& opt, const std::string& checkpointFormat);

} // namespace moewb
