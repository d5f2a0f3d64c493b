// SPDX-License-Identifier: MIT
// Type choice per tensor of the GGUF export (export/gguf_types.h, docs/export-gguf.md).
#include "export/gguf_types.h"

#include "export/gguf_layout.h"

namespace moewb::gguf_export {

namespace {

/// Ordering used to pick one type per stacked expert tensor.
int typeRank(GgmlType t)
{
    switch (t) {
    case GgmlType::Q4_0: return 0;
    case GgmlType::Q4_1: return 1;
    case GgmlType::Q8_0: return 2;
    default: return 3;
    }
}

/// bits → ggml type (docs/export-gguf.md).
GgmlType typeForBits(const PlanEntry& e, GgmlType unquantized)
{
    if (e.bits >= 16 || e.bits > 8 || e.inFeatures % 32 != 0)
        return unquantized;
    if (e.bits <= 4)
        return e.sym ? GgmlType::Q4_0 : GgmlType::Q4_1;
    return GgmlType::Q8_0;
}

/// llama_ftype of a ggml type.
uint32_t fileTypeNumber(GgmlType t)
{
    switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::BF16: return 32;
    default: return 1;
    }
}

} // namespace

TensorTypes::TensorTypes(const Plan& plan, const ModelConfig& cfg, GgmlType unquantized)
    : m_unquantized(unquantized)
{
    for (const PlanEntry& e : expandPlan(plan, cfg))
        m_entries[e.name] = e;
}

GgmlType TensorTypes::linear(const LinearInfo& li) const
{
    auto it = m_entries.find(li.name);
    if (it == m_entries.end())
        return m_unquantized;
    return typeForBits(it->second, m_unquantized);
}

StackedType TensorTypes::stacked(const std::vector<const LinearInfo*>& experts) const
{
    StackedType st;
    for (const LinearInfo* li : experts) {
        const GgmlType t = linear(*li);
        st.asked.insert(int64_t(t));
        if (typeRank(t) > typeRank(st.type))
            st.type = t;
    }
    return st;
}

GgmlType TensorTypes::fitting(GgmlType type, int64_t width) const
{
    return width % gguf::ggmlBlockSize(type) != 0 ? m_unquantized : type;
}

std::string typeNames(const std::set<int64_t>& types)
{
    std::string names;
    for (int64_t t : types)
        names += (names.empty() ? "" : ", ") + std::string(gguf::ggmlTypeName(GgmlType(t)));
    return names;
}

uint32_t fileTypeOf(const std::vector<OutTensor>& tensors, GgmlType unquantized)
{
    std::map<int64_t, int64_t> elemsByType;
    for (const OutTensor& t : tensors)
        if (t.ne.size() >= 2 && t.name != "token_embd.weight" && t.name != "output.weight"
            && t.name.find("gate_inp") == std::string::npos) {
            int64_t n = 1;
            for (int64_t e : t.ne)
                n *= e;
            elemsByType[int64_t(t.type)] += n;
        }
    GgmlType major = unquantized;
    int64_t best = -1;
    for (const auto& [t, n] : elemsByType)
        if (n > best)
            best = n, major = GgmlType(t);
    return fileTypeNumber(major);
}

const char* fileTypeName(uint32_t fileType)
{
    switch (fileType) {
    case 0: return "ALL_F32";
    case 1: return "MOSTLY_F16";
    case 2: return "MOSTLY_Q4_0";
    case 3: return "MOSTLY_Q4_1";
    case 7: return "MOSTLY_Q8_0";
    case 32: return "MOSTLY_BF16";
    default: return "?";
    }
}

} // namespace moewb::gguf_export
