// SPDX-License-Identifier: MIT
// The operations every quantization setting takes part in, each one loop over forEachSetting.
#include "moewb/plan/quant_settings.h"

#include "moewb/core/error.h"

#include <type_traits>
#include <utility>

namespace moewb {

namespace {

// The number of members of an aggregate: the most initializers T{...} accepts. The structs must
// have exactly one member per setting, so a member added without its line in forEachSetting (or
// the reverse) does not compile.
struct AnyValue {
    template <class U>
    operator U() const;
};
template <class T, class Seq, class = void>
struct BraceInitializable : std::false_type {};
template <class T, size_t... I>
struct BraceInitializable<T, std::index_sequence<I...>, std::void_t<decltype(T{(void(I), AnyValue{})...})>>
    : std::true_type {};
template <class T, size_t N = 0>
constexpr size_t memberCount()
{
    if constexpr (BraceInitializable<T, std::make_index_sequence<N + 1>>::value)
        return memberCount<T, N + 1>();
    else
        return N;
}

constexpr size_t settingCount()
{
    size_t n = 0;
    forEachSetting([&n](const auto&) { ++n; });
    return n;
}

} // namespace

static_assert(memberCount<QuantSettings>() == settingCount() && memberCount<PlanDefaults>() == settingCount()
                  && memberCount<LinearSettings>() == settingCount(),
              "every quantization setting needs its line in forEachSetting (moewb/plan/quant_settings.h)");

bool isValidBits(int64_t bits)
{
    return bits == 2 || bits == 3 || bits == 4 || bits == 8 || bits == 16;
}

bool isValidGroupSize(int64_t g)
{
    return g == -1 || (g > 0 && g % 16 == 0);
}

bool isValidQuantMethod(const std::string& m)
{
    return m == "rtn" || m == "gptq";
}

std::string bitsProblem(const int64_t& bits)
{
    return isValidBits(bits) ? std::string() : "bits " + std::to_string(bits) + " not in {2,3,4,8,16}";
}

std::string groupSizeProblem(const int64_t& g)
{
    if (isValidGroupSize(g))
        return {};
    return "group size " + std::to_string(g) + " is invalid (use -1 or a positive multiple of 16)";
}

std::string quantMethodProblem(const std::string& m)
{
    return isValidQuantMethod(m) ? std::string() : "method '" + m + "' is not rtn or gptq";
}

std::string ggmlTypeProblem(const std::string& t)
{
    static const char* const kTypes[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl",
                                         "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"};
    if (t.empty())
        return {};
    for (const char* k : kTypes)
        if (t == k)
            return {};
    return "ggml_type '" + t + "' is not one of q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, q4_0, q4_1, q5_0, q5_1, q8_0";
}

namespace {

template <class Struct, class MemberOf>
bool allEqual(const Struct& a, const Struct& b, MemberOf member)
{
    bool same = true;
    forEachSetting([&](const auto& f) { same = same && a.*member(f) == b.*member(f); });
    return same;
}

template <class Field>
std::string problemOf(const Field& f, const typename Field::ValueType& v)
{
    return f.problem ? f.problem(v) : std::string();
}

template <class T>
void resolve(T& to, const T& from, const std::string&)
{
    to = from;
}

void resolve(PrunePattern& to, const std::string& from, const std::string& where)
{
    to = parsePrunePattern(from, where);
}

} // namespace

bool operator==(const QuantSettings& a, const QuantSettings& b)
{
    return allEqual(a, b, [](const auto& f) { return f.set; });
}

bool operator==(const PlanDefaults& a, const PlanDefaults& b)
{
    return allEqual(a, b, [](const auto& f) { return f.defaults; });
}

bool operator==(const LinearSettings& a, const LinearSettings& b)
{
    return allEqual(a, b, [](const auto& f) { return f.resolved; });
}

std::string settingsProblem(const QuantSettings& s)
{
    std::string problem;
    forEachSetting([&](const auto& f) {
        if (problem.empty() && s.*f.set)
            problem = problemOf(f, *(s.*f.set));
    });
    return problem;
}

std::string settingsProblem(const PlanDefaults& d)
{
    std::string problem;
    forEachSetting([&](const auto& f) {
        if (problem.empty())
            problem = problemOf(f, d.*f.defaults);
    });
    return problem;
}

void checkSettings(const QuantSettings& s, const std::string& where)
{
    const std::string problem = settingsProblem(s);
    if (!problem.empty())
        throw InputError(where, problem);
}

void overlaySettings(QuantSettings& into, const QuantSettings& s)
{
    forEachSetting([&](const auto& f) {
        if (s.*f.set)
            into.*f.set = s.*f.set;
    });
}

LinearSettings resolveDefaults(const PlanDefaults& d, const std::string& where)
{
    LinearSettings e;
    forEachSetting([&](const auto& f) { resolve(e.*f.resolved, d.*f.defaults, where); });
    return e;
}

void applyQuantSettings(LinearSettings& e, const QuantSettings& s, const std::string& where)
{
    forEachSetting([&](const auto& f) {
        if (s.*f.set)
            resolve(e.*f.resolved, *(s.*f.set), where);
    });
}

} // namespace moewb
