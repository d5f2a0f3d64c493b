// SPDX-License-Identifier: MIT
// The ggml type of each tensor of the GGUF export (moewb/export/gguf.h): a quantized linear's
// type from its plan entry, one type per stacked expert tensor, the unquantized type where the
// width does not fit a block, and general.file_type.
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
    std::set<int64_t> asked; ///< GgmlType values
};

/// The plan's linears and the unquantized type (f16 | bf16 | f32).
class TensorTypes {
public:
    TensorTypes(const Plan& plan, const ModelConfig& cfg, GgmlType unquantized);

    GgmlType unquantized() const { return m_unquantized; }
    /// bits → Q4_0 / Q4_1 / Q8_0; the unquantized type for 16 bits, widths not a multiple of 32
    /// and linears the plan does not quantize (routers, the shared expert's gate).
    GgmlType linear(const LinearInfo& li) const;
    /// The highest type its experts ask for (Q4_0 < Q4_1 < Q8_0 < unquantized).
    StackedType stacked(const std::vector<const LinearInfo*>& experts) const;
    /// `type`, or the unquantized type when a row of `width` elements is not whole blocks of it.
    GgmlType fitting(GgmlType type, int64_t width) const;

private:
    std::map<std::string, PlanEntry> m_entries;
    GgmlType m_unquantized;
};

/// "Q4_0, Q8_0"
std::string typeNames(const std::set<int64_t>& types);

struct OutTensor;

/// general.file_type: the type holding most elements of the 2-D and 3-D linear weights
/// (embeddings, output and routers left out), as its llama_ftype number.
uint32_t fileTypeOf(const std::vector<OutTensor>& tensors, GgmlType unquantized);
const char* fileTypeName(uint32_t fileType); ///< "MOSTLY_Q4_0"

} // namespace moewb::gguf_export
