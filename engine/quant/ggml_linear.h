// SPDX-License-Identifier: MIT
// A linear whose plan entry names a ggml type (#26, docs/export-gguf.md "Bits → ggml type"):
// encoded row by row with ggml's method for that type (engine/gguf/gguf_quants.h), weighted by
// the linear's input second moments when QuantizeOptions::actSqMean has them, as llama-quantize
// does with an imatrix; rows whose width the type's block does not divide take llama-quantize's
// fallback type. The encoded rows go to the GGUF export as they are, the decoded ones to every
// other sink, so the fake-quant model and the GGUF file hold the same weights.
#pragma once

#include "quant/quant_linear.h"

#include "gguf/gguf_quants.h"
#include "moewb/safetensors/safetensors.h"

#include <map>
#include <string>
#include <vector>

namespace moewb {

/// The type a plan entry's linear is written in: its ggml_type, or the fallback for its width.
/// InputError naming the linear for a name gguf does not encode.
gguf::GgmlType ggmlTypeOfEntry(const PlanEntry& e);

/// Encodes `in.weight` [out, in] (float32) as ggmlTypeOfEntry(*in.entry); `stored` = the decoded
/// weight in in.storeDtype, `ggmlRows` = the encoded rows [out, row bytes] (uint8).
QuantizedLinear ggmlQuantizeLinear(const LinearInput& in, const QuantizeOptions& opt);

/// The plan's token_embd / output ggml types applied to the checkpoint's tensors as --format fake
/// writes them (#26): HF tensor name → the decoded tensor in its own dtype. Tied embeddings: the
/// one tensor gets the token_embd type (output's is noted in `notes`).
std::map<std::string, at::Tensor> ggmlEmbeddingRoundTrips(const Plan& plan, const ModelConfig& cfg,
                                                           const Checkpoint& ckpt, std::vector<std::string>& notes);

} // namespace moewb
