// SPDX-License-Identifier: MIT
// The ggml type of each tensor of the GGUF export (moewb/export/gguf.h): a quantized linear's
// type from its plan entry (ggml_type, else the bits → grid type map), one type per stacked expert
// tensor, the fallback where the width does not fit a block, the embeddings' types and
// general.file_type.
#pragma once

#include "gguf/gguf_quants.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/plan/plan.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace moewb::gguf_export {

using gguf::GgmlType;

/// The type of a stacked tensor and the types its experts asked for.
struct StackedType {
    GgmlType type = GgmlType::Q4_0;
    std::set<int64_t> asked;    ///< GgmlType values
    bool anyGgml = false;       ///< some expert has a ggml_type: the whole stack is then encoded as `type`
    int64_t extraBytes = 0;     ///< what writing every expert as `type` costs over the types they asked for
};

/// The plan's linears and the unquantized type (f16 | bf16 | f32).
class TensorTypes {
public:
    TensorTypes(const Plan& plan, const ModelConfig& cfg, GgmlType unquantized);

    GgmlType unquantized() const { return m_unquantized; }
    /// ggml_type (with llama-quantize's fallback for the width), else bits → Q4_0 / Q4_1 / Q8_0;
    /// the unquantized type for 16 bits, widths not a multiple of 32 and linears the plan does not
    /// quantize (routers, the shared expert's gate).
    GgmlType linear(const LinearInfo& li) const;
    bool hasGgmlType(const LinearInfo& li) const; ///< the plan entry names a ggml type (and bits < 16)
    /// The plan's ggml_type before the width fallback (linear(li) when it has none).
    GgmlType requested(const LinearInfo& li) const;
    /// The widest type its experts ask for (typeRank order).
    StackedType stacked(const std::vector<const LinearInfo*>& experts) const;
    /// `type`, or the unquantized type when a row of `width` elements is not whole blocks of it.
    GgmlType fitting(GgmlType type, int64_t width) const;
    /// token_embd / output.weight: the plan's "gguf" type with the width fallback, else unquantized.
    GgmlType tokenEmbd(int64_t width) const;
    GgmlType output(int64_t width) const;

private:
    GgmlType embedding(const std::string& planType, int64_t width) const;

    std::map<std::string, PlanEntry> m_entries;
    GgmlType m_unquantized;
    std::string m_tokenEmbd, m_output;
};

/// Order of "wider" used for stacked tensors: Q2_K < Q3_K < Q4_0 < IQ4_NL < Q4_K < Q4_1 < Q5_0 <
/// Q5_K < Q5_1 < Q6_K < Q8_0 < the float types.
int typeRank(GgmlType t);

/// "Q4_0, Q8_0"
std::string typeNames(const std::set<int64_t>& types);
/// "q4_k" (the plan's spelling)
std::string planTypeName(GgmlType t);

struct OutTensor;

/// general.file_type: the preset's llama_ftype when the plan came from a GGUF preset (provenance
/// strategy gguf-…), else the type holding most elements of the 2-D and 3-D linear weights
/// (embeddings, output and routers left out).
uint32_t fileTypeOf(const std::vector<OutTensor>& tensors, GgmlType unquantized, const std::string& strategy = {});
const char* fileTypeName(uint32_t fileType); ///< "MOSTLY_Q4_0"

} // namespace moewb::gguf_export
