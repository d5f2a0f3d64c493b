// SPDX-License-Identifier: MIT
// The llama.cpp bridge (docs/export-gguf.md, "The llama.cpp bridge"): moewb's calibration
// statistics as an importance matrix llama-quantize reads, and a plan as per-tensor types for
// llama-quantize's --tensor-type / --tensor-type-file. Torch-free API.
#pragma once

#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan.h"
#include "moewb/stats/stats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

struct LlamaImatrixResult {
    int64_t entries = 0;              ///< tensors written
    int64_t chunks = 0;               ///< the ncall of every entry (calibration windows, at least 1)
    std::vector<std::string> skipped; ///< "<tensor>: <why>" (no act_sq_mean, an expert without tokens)
};

/// The legacy llama.cpp imatrix file (llama-imatrix's imatrix.dat) as bytes: per GGUF weight
/// (blk.N.attn_q.weight, blk.N.ffn_up_exps.weight with every routed expert, expert-major) the
/// mean of x² over the tokens it saw (act_sq_mean) times ncall, since llama-quantize divides by
/// ncall; then ncall and `dataset`. A stacked tensor with an expert that saw no tokens is left
/// out, as llama-imatrix leaves out partial entries. InputError when nothing can be written.
std::string llamaImatrixBytes(const CalibStats& stats, const std::string& dataset, LlamaImatrixResult& result,
                              const std::string& where);

/// The imatrix file formats llama-quantize reads: GGUF (llama-imatrix's default since mid-2025:
/// per tensor "<weight>.in_sum2" = Σx² per expert and "<weight>.counts" = tokens per expert) and the
/// legacy imatrix.dat (every llama.cpp version).
enum class ImatrixFormat { Gguf, Dat };
/// Gguf for a name ending in ".gguf", else Dat.
ImatrixFormat imatrixFormatForPath(const std::string& path);

/// The imatrix in `format` written atomically to outFile (OutputExistsError unless force). Gguf
/// keeps a stacked tensor whose experts did not all see tokens (those experts get count 0, which
/// llama-quantize reads as "no importance data": uniform weights); Dat leaves it out.
LlamaImatrixResult writeLlamaImatrix(const CalibStats& stats, const std::string& outFile, bool force,
                                     const std::string& where, ImatrixFormat format = ImatrixFormat::Dat);

/// One "regex=type" line per (GGUF tensor role, ggml type) over the layers that share it, e.g.
/// "^blk\.(0|2)\.attn_q\.weight$=q4_0", for every linear the plan covers (routers and the shared
/// expert's gate stay as llama-quantize keeps them): the types moewb's GGUF export would write.
std::string llamaTensorTypes(const Plan& plan, const ModelConfig& cfg);

} // namespace moewb
