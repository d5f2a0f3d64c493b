// SPDX-License-Identifier: MIT
// Routing specialization: how much a MoE layer's expert choice depends on the calibration domain,
// computed from the per-domain top-k counts of a stats file (RouterStats::domainTokens,
// docs/stats-schema.md). Plain numbers, no torch, no HDF5.
//
// Note [Specialization variables]: the sample space is the routed (token, slot) choices of a
// layer: a token of domain d whose top-k set contains expert e contributes one choice (d, e), so a
// layer with T tokens has k*T choices. With n_de = domainTokens(d, e) and N = sum n_de:
//   P(d, e) = n_de / N,  P(d) = sum_e n_de / N = T_d / T (the token share, each token has k
//   distinct experts),  P(e) = sum_d n_de / N,  P(e | d) = n_de / sum_e n_de.
//   MI = I(D; E) = sum_de P(d,e) log2(P(d,e) / (P(d) P(e)))   [bits]
//   NMI = MI / H(D): 1 when the domain fixes the expert set (perfect specialization), 0 when every
//   domain routes alike. MI <= min(H(D), H(E)).
// Per domain: H(E | d) in bits (log2 E for uniform routing, >= log2 k since a token has k distinct
// experts), the share of its choices going to its k most used experts (k / E for uniform routing,
// 1 when it always picks the same k), and the expert with the highest lift P(e|d) / P(e).
#pragma once

#include "moewb/stats/stats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// One domain in one MoE layer. Values are NaN (topExpert -1) for a domain with no tokens.
struct DomainSpecialization {
    int64_t tokens = 0;          ///< T_d = sum_e n_de / k
    double share = 0.0;          ///< P(d), the domain's token share
    double entropyBits = 0.0;    ///< H(E | d) in bits
    double topKShare = 0.0;      ///< sum of the k largest P(e | d)
    int64_t topExpert = -1;      ///< argmax_e P(e|d) / P(e) (lowest index on ties)
    double topExpertLift = 0.0;  ///< P(e*|d) / P(e*)
    double topExpertShare = 0.0; ///< P(e*|d)
};

/// One MoE layer.
struct LayerSpecialization {
    int64_t layer = 0;
    int64_t numExperts = 0;
    int64_t topK = 0;
    int64_t tokens = 0;                 ///< T = N / k, tokens counted over all domains
    double uniformEntropyBits = 0.0;    ///< log2 E
    double domainEntropyBits = 0.0;     ///< H(D)
    double expertEntropyBits = 0.0;     ///< H(E), the layer's overall expert usage
    double mutualInfoBits = 0.0;        ///< I(D; E)
    double normalizedMI = 0.0;          ///< I(D; E) / H(D); NaN when H(D) = 0 (one domain)
    std::vector<DomainSpecialization> domains; ///< in the stats file's domain order
};

/// Every MoE layer plus means over the MoE layers.
struct ModelSpecialization {
    std::vector<std::string> domains;
    std::vector<LayerSpecialization> layers;  ///< MoE layers only, in layer order
    double meanMutualInfoBits = 0.0;          ///< mean over layers
    double meanNormalizedMI = 0.0;            ///< mean over layers (NaN if any layer's is NaN)
    std::vector<double> meanEntropyBits;      ///< per domain, mean over layers (NaN skipped)
    std::vector<double> meanTopKShare;        ///< per domain, mean over layers (NaN skipped)
};

/// Specialization of one layer from its [D x E] per-domain counts. where names the input in errors
/// (InputError when topK < 1, counts are negative, or a domain's row sum is not a multiple of topK).
LayerSpecialization layerSpecialization(const Matrix<int64_t>& domainTokens, int64_t topK,
                                        const std::string& where = {});

/// All MoE layers of a stats file. InputError ("<where>: ...") when it has no per-domain counts
/// or no MoE layer.
ModelSpecialization modelSpecialization(const CalibStats& stats, const std::string& where);

} // namespace moewb
