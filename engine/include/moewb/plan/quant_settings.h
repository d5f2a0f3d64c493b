// SPDX-License-Identifier: MIT
// The quantization settings of one linear (bits, group size, sym, method, act order, static groups
// and the pruning request of #14), described once (#21). The three structs hold them where they
// live: optional in a plan's rules and overrides (QuantSettings), with the plan's defaults
// (PlanDefaults), resolved for one linear (LinearSettings, the base of PlanEntry). forEachSetting
// is the one list of them: JSON key, member in each struct, check and its message. The plan file
// reader and writer, equality, rule application, the allocation editor and the quantize report all
// iterate it or copy LinearSettings whole, so a new setting is its three members plus one line there.
#pragma once

#include "moewb/plan/prune_spec.h"

#include <cstdint>
#include <optional>
#include <string>

namespace moewb {

/// Settings of one linear in rules and overrides: every field optional (only what is set replaces
/// the value inherited so far).
struct QuantSettings {
    std::optional<int64_t> bits;
    std::optional<int64_t> groupSize;
    std::optional<bool> sym;
    std::optional<std::string> method; ///< "rtn" | "gptq"
    std::optional<bool> actOrder;
    /// With act order: fix every group's grid from the original weight before any GPTQ update,
    /// g_idx = column / group size (AutoGPTQ's static_groups). Changes only how GPTQ runs.
    std::optional<bool> staticGroups;
    /// Pruning (#14, docs/pruning.md): fraction of each row's weights set to zero, in [0, 1); 0 = not pruned.
    std::optional<double> sparsity;
    std::optional<std::string> pattern;     ///< "unstructured" | "N:M" (N:M implies sparsity (M − N)/M)
    std::optional<std::string> pruneMethod; ///< "magnitude" | "wanda" | "sparsegpt"
    /// ggml type (#26, docs/export-gguf.md "Bits → ggml type"): "" = from bits; else the linear is
    /// quantized by ggml's encoder for that type ("q4_k", "iq4_nl", ...) in --format fake and gguf.
    std::optional<std::string> ggmlType;
};

/// A plan's "defaults". The member initializers are the defaults of the plan format.
struct PlanDefaults {
    int64_t bits = 4;
    int64_t groupSize = 128;
    bool sym = true;
    std::string method = "gptq";
    bool actOrder = false;
    bool staticGroups = false;
    double sparsity = 0.0;
    std::string pattern = "unstructured";
    std::string pruneMethod = "sparsegpt";
    std::string ggmlType;
};

/// The settings one linear ends up with: defaults, then matching rules, then its override.
struct LinearSettings {
    int64_t bits = 16;
    int64_t groupSize = 128;
    bool sym = true;
    std::string method = "gptq";
    bool actOrder = false;
    bool staticGroups = false;
    /// The effective sparsity (0 = not pruned; with an N:M pattern (M − N)/M whenever the plan's
    /// sparsity is non-zero).
    double sparsity = 0.0;
    PrunePattern pattern;
    std::string pruneMethod = "sparsegpt";
    std::string ggmlType; ///< "" = none (lower case otherwise)
    PruneSpec pruneSpec() const { return PruneSpec{pruneMethod, sparsity, pattern}; }
};

/// The bit-widths a plan may give a linear; 16 = left unquantized (bf16).
bool isValidBits(int64_t bits);
/// -1 (one group over all in_features) or a positive multiple of 16.
bool isValidGroupSize(int64_t groupSize);
bool isValidQuantMethod(const std::string& method); ///< "rtn" or "gptq"

/// The checks of single values: "" when valid, else what is wrong in one line that names the
/// setting and the value ("group size 100 is invalid (use -1 or a positive multiple of 16)").
/// The pruning ones (sparsity, pattern, prune method) are in prune_spec.h.
std::string bitsProblem(const int64_t& bits);
std::string groupSizeProblem(const int64_t& groupSize);
std::string quantMethodProblem(const std::string& method);
/// "" or one of the ggml types a linear may be written in (lower case: q2_k, q3_k, q4_k, q5_k, q6_k,
/// iq4_nl, q4_0, q4_1, q5_0, q5_1, q8_0).
std::string ggmlTypeProblem(const std::string& type);

/// How a setting is written into a plan's "defaults": always, or only when it differs from the
/// default (so that plans written before the setting existed stay byte-identical).
enum class InDefaults { Always, WhenChanged };

/// One setting: its names, where it lives in each struct and how a value is checked.
/// Resolved differs from Value only for the pattern (text in plans, PrunePattern once resolved).
template <class Value, class Resolved = Value>
struct SettingField {
    using ValueType = Value;
    const char* member; ///< C++ member name in the three structs
    const char* key;    ///< JSON key in a plan's "defaults", rules and overrides
    std::optional<Value> QuantSettings::*set;
    Value PlanDefaults::*defaults;
    Resolved LinearSettings::*resolved;
    InDefaults written;
    std::string (*problem)(const Value&); ///< nullptr: every value of the type is valid
};

/// Calls f(field) for every setting, in the order of the JSON output. The one list of the settings.
template <class F>
constexpr void forEachSetting(F&& f)
{
    using I = int64_t;
    using S = std::string;
    using QS = QuantSettings;
    using PD = PlanDefaults;
    using LS = LinearSettings;
    constexpr InDefaults always = InDefaults::Always, changed = InDefaults::WhenChanged;
    f(SettingField<I>{"bits", "bits",
                      &QS::bits, &PD::bits, &LS::bits, always, bitsProblem});
    f(SettingField<I>{"groupSize", "group_size",
                      &QS::groupSize, &PD::groupSize, &LS::groupSize, always, groupSizeProblem});
    f(SettingField<bool>{"sym", "sym",
                         &QS::sym, &PD::sym, &LS::sym, always, nullptr});
    f(SettingField<S>{"method", "method",
                      &QS::method, &PD::method, &LS::method, always, quantMethodProblem});
    f(SettingField<bool>{"actOrder", "act_order",
                         &QS::actOrder, &PD::actOrder, &LS::actOrder, always, nullptr});
    f(SettingField<bool>{"staticGroups", "static_groups",
                         &QS::staticGroups, &PD::staticGroups, &LS::staticGroups, changed, nullptr});
    f(SettingField<double>{"sparsity", "sparsity",
                           &QS::sparsity, &PD::sparsity, &LS::sparsity, changed, sparsityProblem});
    f(SettingField<S, PrunePattern>{"pattern", "pattern",
                                    &QS::pattern, &PD::pattern, &LS::pattern, changed, prunePatternProblem});
    f(SettingField<S>{"pruneMethod", "prune_method",
                      &QS::pruneMethod, &PD::pruneMethod, &LS::pruneMethod, changed, pruneMethodProblem});
    f(SettingField<S>{"ggmlType", "ggml_type",
                      &QS::ggmlType, &PD::ggmlType, &LS::ggmlType, changed, ggmlTypeProblem});
}

bool operator==(const QuantSettings& a, const QuantSettings& b);
bool operator==(const PlanDefaults& a, const PlanDefaults& b);
bool operator==(const LinearSettings& a, const LinearSettings& b);

/// The first invalid value's message, "" when all are valid.
std::string settingsProblem(const QuantSettings& s);
std::string settingsProblem(const PlanDefaults& d);
/// Throws InputError(where, settingsProblem(s)) when s holds an invalid value.
void checkSettings(const QuantSettings& s, const std::string& where);

/// Sets in `into` every field set in s (the others keep their value).
void overlaySettings(QuantSettings& into, const QuantSettings& s);
/// The defaults resolved; `where` (the linear) names a malformed pattern.
LinearSettings resolveDefaults(const PlanDefaults& d, const std::string& where);
/// Copies every field set in s onto e (unset fields leave e alone). Does not apply the N:M
/// normalization of the sparsity, which expandPlan does once after rules and override.
void applyQuantSettings(LinearSettings& e, const QuantSettings& s, const std::string& where);

} // namespace moewb
