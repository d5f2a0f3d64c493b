// SPDX-License-Identifier: MIT
// Type choice per tensor of the GGUF export (export/gguf_types.h, docs/export-gguf.md).
#include "export/gguf_types.h"

#include "export/gguf_layout.h"
#include "moewb/core/error.h"

#include <algorithm>
#include <cctype>

namespace moewb::gguf_export {

namespace {

/// bits → ggml type for plans without ggml_type (docs/export-gguf.md).
GgmlType typeForBits(const PlanEntry& e, GgmlType unquantized)
{
    if (e.bits >= 16 || e.bits > 8 || e.inFeatures % 32 != 0)
        return unquantized;
    if (e.bits <= 4)
        return e.sym ? GgmlType::Q4_0 : GgmlType::Q4_1;
    return GgmlType::Q8_0;
}

GgmlType fromPlanName(const std::string& name)
{
    GgmlType t = GgmlType::F16;
    const bool known = gguf::ggmlTypeFromName(name, t);
    MOEWB_ASSERT(known); // plan validation (ggmlTypeProblem) admits encodable names only
    return t;
}

/// llama_ftype of a ggml type (llama.h's LLAMA_FTYPE_MOSTLY_*; K types: the _S variant).
uint32_t fileTypeNumber(GgmlType t)
{
    switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q5_1: return 9;
    case GgmlType::Q2_K: return 10;
    case GgmlType::Q3_K: return 11;
    case GgmlType::Q4_K: return 14;
    case GgmlType::Q5_K: return 16;
    case GgmlType::Q6_K: return 18;
    case GgmlType::IQ4_NL: return 25;
    case GgmlType::BF16: return 32;
    default: return 1;
    }
}

struct FtypeName {
    uint32_t id;
    const char* name;
    const char* preset; ///< the plan strategy that sets it (alloc/gguf_presets), or ""
};

const FtypeName kFtypes[] = {
    {0, "ALL_F32", ""},         {1, "MOSTLY_F16", ""},         {2, "MOSTLY_Q4_0", ""},
    {3, "MOSTLY_Q4_1", ""},     {7, "MOSTLY_Q8_0", ""},        {8, "MOSTLY_Q5_0", ""},
    {9, "MOSTLY_Q5_1", ""},     {10, "MOSTLY_Q2_K", "gguf-q2_k"}, {11, "MOSTLY_Q3_K_S", ""},
    {12, "MOSTLY_Q3_K_M", "gguf-q3_k_m"}, {14, "MOSTLY_Q4_K_S", ""}, {15, "MOSTLY_Q4_K_M", "gguf-q4_k_m"},
    {16, "MOSTLY_Q5_K_S", ""},  {17, "MOSTLY_Q5_K_M", "gguf-q5_k_m"}, {18, "MOSTLY_Q6_K", "gguf-q6_k"},
    {25, "MOSTLY_IQ4_NL", ""},  {32, "MOSTLY_BF16", ""},
};

} // namespace

int typeRank(GgmlType t)
{
    static const GgmlType order[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_0, GgmlType::IQ4_NL,
                                     GgmlType::Q4_K, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_K,
                                     GgmlType::Q5_1, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::BF16,
                                     GgmlType::F16,  GgmlType::F32};
    for (size_t i = 0; i < std::size(order); ++i)
        if (order[i] == t)
            return int(i);
    return int(std::size(order));
}

TensorTypes::TensorTypes(const Plan& plan, const ModelConfig& cfg, GgmlType unquantized)
    : m_unquantized(unquantized)
    , m_tokenEmbd(plan.ggufTokenEmbd)
    , m_output(plan.ggufOutput)
{
    for (const PlanEntry& e : expandPlan(plan, cfg))
        m_entries[e.name] = e;
}

bool TensorTypes::hasGgmlType(const LinearInfo& li) const
{
    auto it = m_entries.find(li.name);
    return it != m_entries.end() && it->second.bits < 16 && !it->second.ggmlType.empty();
}

GgmlType TensorTypes::requested(const LinearInfo& li) const
{
    return hasGgmlType(li) ? fromPlanName(m_entries.at(li.name).ggmlType) : linear(li);
}

GgmlType TensorTypes::linear(const LinearInfo& li) const
{
    auto it = m_entries.find(li.name);
    if (it == m_entries.end())
        return m_unquantized;
    if (hasGgmlType(li))
        return gguf::rowFallbackType(fromPlanName(it->second.ggmlType), li.inFeatures);
    return typeForBits(it->second, m_unquantized);
}

StackedType TensorTypes::stacked(const std::vector<const LinearInfo*>& experts) const
{
    StackedType st;
    st.type = linear(*experts.front());
    for (const LinearInfo* li : experts) {
        const GgmlType t = linear(*li);
        st.asked.insert(int64_t(t));
        st.anyGgml = st.anyGgml || hasGgmlType(*li);
        if (typeRank(t) > typeRank(st.type))
            st.type = t;
    }
    for (const LinearInfo* li : experts)
        st.extraBytes += (gguf::ggmlRowBytes(st.type, li->inFeatures) - gguf::ggmlRowBytes(linear(*li), li->inFeatures))
            * li->outFeatures;
    return st;
}

GgmlType TensorTypes::fitting(GgmlType type, int64_t width) const
{
    return width % gguf::ggmlBlockSize(type) != 0 ? m_unquantized : type;
}

GgmlType TensorTypes::tokenEmbd(int64_t width) const
{
    return embedding(m_tokenEmbd, width);
}

GgmlType TensorTypes::output(int64_t width) const
{
    return embedding(m_output, width);
}

GgmlType TensorTypes::embedding(const std::string& planType, int64_t width) const
{
    return planType.empty() ? m_unquantized : gguf::rowFallbackType(fromPlanName(planType), width);
}

std::string typeNames(const std::set<int64_t>& types)
{
    std::vector<GgmlType> sorted;
    for (int64_t t : types)
        sorted.push_back(GgmlType(t));
    std::sort(sorted.begin(), sorted.end(), [](GgmlType a, GgmlType b) { return typeRank(a) < typeRank(b); });
    std::string names;
    for (GgmlType t : sorted)
        names += (names.empty() ? "" : ", ") + std::string(gguf::ggmlTypeName(t));
    return names;
}

std::string planTypeName(GgmlType t)
{
    std::string s = gguf::ggmlTypeName(t);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

uint32_t fileTypeOf(const std::vector<OutTensor>& tensors, GgmlType unquantized, const std::string& strategy)
{
    for (const FtypeName& f : kFtypes)
        if (!strategy.empty() && strategy == f.preset)
            return f.id;
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
    for (const FtypeName& f : kFtypes)
        if (f.id == fileType)
            return f.name;
    return "?";
}

} // namespace moewb::gguf_export
