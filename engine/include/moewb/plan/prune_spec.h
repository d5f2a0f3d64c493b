// SPDX-License-Identifier: MIT
// Expert slimming by pruning (#14): the vocabulary of a pruning request (method, sparsity, pattern)
// and its checks. Torch-free (moewb_io, engine/plan/prune_spec.cpp): plans, the CLI and the GUI use it.
// The pruning itself runs inside the quantize layer loop (moewb/quant/quantize.h) for every plan
// entry with sparsity > 0; the per-linear algorithms are in engine/quant/ (docs/pruning.md).
//
// Patterns act along the input dimension of a weight W [out, in]:
//   unstructured: every output row keeps in − round(sparsity·in) weights (per-row ratio);
//   N:M:          in every row, every group of M consecutive input columns keeps exactly N weights
//                 (2:4 = two nonzeros in every four), so the sparsity is (M − N) / M.
#pragma once

#include <cstdint>
#include <string>

namespace moewb {

/// magnitude: |W_ij|; wanda: |W_ij|·sqrt(E[x_j²]); sparsegpt: OBS saliency w²/[H⁻¹]_jj² with the
/// OBS update of the remaining weights (blocked, lazy), jointly with quantization when bits < 16.
bool isValidPruneMethod(const std::string& method);

struct PrunePattern {
    int64_t n = 0; ///< weights kept per group (0: unstructured)
    int64_t m = 0; ///< group length (0: unstructured)
    bool structured() const { return m > 0; }
    bool operator==(const PrunePattern& o) const { return n == o.n && m == o.m; }
};

/// "unstructured" → {0, 0}; "N:M" with integers 1 <= N < M <= 1024 → {N, M}. Anything else throws
/// InputError(where, prunePatternProblem(text)).
PrunePattern parsePrunePattern(const std::string& text, const std::string& where);
std::string prunePatternName(const PrunePattern& p);

/// Throws InputError(where, sparsityProblem(sparsity)) unless 0 <= sparsity < 1 (and finite).
void checkSparsity(double sparsity, const std::string& where);

/// The checks of single values (as in moewb/plan/quant_settings.h): "" when valid, else what is
/// wrong, e.g. "pattern 4:4: N must be smaller than M (N:M keeps N weights in every M)",
/// "sparsity 1.5 is outside [0, 1)", "prune method 'obs' is not magnitude, wanda or sparsegpt".
std::string prunePatternProblem(const std::string& text);
std::string sparsityProblem(const double& sparsity);
std::string pruneMethodProblem(const std::string& method);

/// What one linear is asked to do.
struct PruneSpec {
    std::string method = "sparsegpt";
    double sparsity = 0.0; ///< unstructured: the fraction of each row to prune; N:M: (M − N) / M
    PrunePattern pattern;
};

/// Checks method, sparsity and that M divides inFeatures; `where` names the linear (or the option).
void checkPruneSpec(const PruneSpec& spec, int64_t inFeatures, const std::string& where);

/// Weights pruned in every output row of a linear with inFeatures inputs: round(sparsity·in)
/// (half away from zero) for unstructured, (M − N)·in/M for N:M.
int64_t prunedPerRow(const PruneSpec& spec, int64_t inFeatures);

/// The effective sparsity of a pattern: (M − N)/M for N:M, else `sparsity`.
double patternSparsity(const PrunePattern& p, double sparsity);

} // namespace moewb
