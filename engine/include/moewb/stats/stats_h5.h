// SPDX-License-Identifier: MIT
// stats.h5: the calibration statistics file (CalibStats, moewb/stats/stats.h) in HDF5.
//
// Layout, format_version 2. Users' view with units and h5py snippets: docs/stats-schema.md.
// Every name below is a constant in namespace moewb::h5 so the writer, the reader, the CLI and
// the tests cannot drift apart. Integers are int64 little-endian, "f64"/"f32" IEEE floats, "str"
// a variable-length UTF-8 string. Every dataset is contiguous and uncompressed (readable by any
// HDF5 build, sliceable by offset). A value of NaN means "not measured".
//
//  1. Root group "/", attributes:
//       format_version  int64  kStatsFormatVersion. Read first; a reader refuses other values.
//       format          str    "moewb-stats"
//       tool_version, created (UTC ISO 8601), model_path, architecture, model_type,
//       data_description, compute_dtype, device, options_json             str
//       num_samples, seq_len, seed, num_tokens, num_layers, hidden_size  int64
//       random_windows  int64  0 or 1
//  2. Group /data: the calibration input. F files, D domains (both may be 0).
//       file_path, file_format, file_domain, file_hash_algo, file_hash   [F] str
//       file_bytes                                                       [F] int64
//       domains [D] str; domain_token_counts [D] int64 (tokens per domain)
//  3. Group /layers/<i>, one per decoder layer, i = 0 .. num_layers-1 written in decimal.
//       attributes: layer int64 (= i), is_moe int64 (0/1),
//                   block_cos_attn, block_cos_mlp, block_cos_whole f64, block_cos_tokens int64
//     MoE layers only (is_moe = 1), with E = num_experts, E' = experts of next_moe_layer:
//       attributes: num_experts, top_k, router_tokens int64; router_entropy f64 (nats);
//                   correlation_tokens int64; correlation_method str; next_moe_layer int64 (-1: last)
//       datasets:   expert_tokens [E] int64, expert_top1 [E] int64,
//                   expert_weight_mass [E] f64, expert_prob_mass [E] f64,
//                   domain_tokens [D, E] int64, coactivation [E, E] int64,
//                   correlation [E, E] f32 ([0, 0] when the probe did not run),
//                   transitions [E, E'] int64 ([E, 0] for the last MoE layer),
//                   dead_experts [n] int64
//  4. Group /linears: one table row per linear (N rows, in listLinears() order), because one
//     group per linear would mean ~20k HDF5 objects for a 128-expert model (slow, large headers).
//       attributes: outlier_metric str, outlier_dtype str, outlier_eps f64
//       name, role [N] str; layer, expert, in_features, out_features, tokens [N] int64;
//       outlier_score [N] f32; outlier_column [N] int64;
//       act_offset, act_channels [N] int64: row r's channels are act_*[act_offset[r] : +act_channels[r]],
//         act_channels is in_features, or 0 when activations were not observed;
//       act_absmax, act_sqmean [C] f32, C = sum(act_channels), rows concatenated in table order.
//       optional (calibrate --fisher): attributes fisher_tokens int64, fisher_labels str, fisher_seed
//         int64; fisher_offset, fisher_channels [N] int64 (channels: out_features or 0);
//         fisher [C'] f32, the diagonal Fisher at each linear's output (LinearStats::fisher).
#pragma once

#include "moewb/stats/stats.h"
#include "moewb/core/progress.h"

#include <cstdint>
#include <string>

namespace moewb {

/// 2: every string fixed-length UTF-8, NUL-padded, so reading never touches HDF5's global heap.
/// Version 1 (variable-length strings) is refused with a message to recalibrate.
constexpr int64_t kStatsFormatVersion = 2;

namespace h5 {
// 1. root
constexpr const char* kFormatVersion = "format_version";
constexpr const char* kFormat = "format";
constexpr const char* kFormatValue = "moewb-stats";
constexpr const char* kToolVersion = "tool_version";
constexpr const char* kCreated = "created";
constexpr const char* kModelPath = "model_path";
constexpr const char* kArchitecture = "architecture";
constexpr const char* kModelType = "model_type";
constexpr const char* kDataDescription = "data_description";
constexpr const char* kComputeDtype = "compute_dtype";
constexpr const char* kDevice = "device";
constexpr const char* kOptionsJson = "options_json";
constexpr const char* kNumSamples = "num_samples";
constexpr const char* kSeqLen = "seq_len";
constexpr const char* kSeed = "seed";
constexpr const char* kNumTokens = "num_tokens";
constexpr const char* kNumLayers = "num_layers";
constexpr const char* kHiddenSize = "hidden_size";
constexpr const char* kRandomWindows = "random_windows";
// 2. /data
constexpr const char* kDataGroup = "data";
constexpr const char* kFilePath = "file_path";
constexpr const char* kFileFormat = "file_format";
constexpr const char* kFileDomain = "file_domain";
constexpr const char* kFileHashAlgo = "file_hash_algo";
constexpr const char* kFileHash = "file_hash";
constexpr const char* kFileBytes = "file_bytes";
constexpr const char* kDomains = "domains";
constexpr const char* kDomainTokenCounts = "domain_token_counts";
// 3. /layers/<i>
constexpr const char* kLayersGroup = "layers";
constexpr const char* kLayer = "layer";
constexpr const char* kIsMoe = "is_moe";
constexpr const char* kBlockCosAttn = "block_cos_attn";
constexpr const char* kBlockCosMlp = "block_cos_mlp";
constexpr const char* kBlockCosWhole = "block_cos_whole";
constexpr const char* kBlockCosTokens = "block_cos_tokens";
constexpr const char* kNumExperts = "num_experts";
constexpr const char* kTopK = "top_k";
constexpr const char* kRouterTokens = "router_tokens";
constexpr const char* kRouterEntropy = "router_entropy";
constexpr const char* kCorrelationTokens = "correlation_tokens";
constexpr const char* kCorrelationMethod = "correlation_method";
constexpr const char* kNextMoeLayer = "next_moe_layer";
constexpr const char* kExpertTokens = "expert_tokens";
constexpr const char* kExpertTop1 = "expert_top1";
constexpr const char* kExpertWeightMass = "expert_weight_mass";
constexpr const char* kExpertProbMass = "expert_prob_mass";
constexpr const char* kDomainTokens = "domain_tokens";
constexpr const char* kCoactivation = "coactivation";
constexpr const char* kCorrelation = "correlation";
constexpr const char* kTransitions = "transitions";
constexpr const char* kDeadExperts = "dead_experts";
// 4. /linears
constexpr const char* kLinearsGroup = "linears";
constexpr const char* kOutlierMetric = "outlier_metric";
constexpr const char* kOutlierDtype = "outlier_dtype";
constexpr const char* kOutlierEps = "outlier_eps";
constexpr const char* kName = "name";
constexpr const char* kRole = "role";
constexpr const char* kExpert = "expert";
constexpr const char* kInFeatures = "in_features";
constexpr const char* kOutFeatures = "out_features";
constexpr const char* kTokens = "tokens";
constexpr const char* kOutlierScore = "outlier_score";
constexpr const char* kOutlierColumn = "outlier_column";
constexpr const char* kActOffset = "act_offset";
constexpr const char* kActChannels = "act_channels";
constexpr const char* kActAbsMax = "act_absmax";
constexpr const char* kActSqMean = "act_sqmean";
// optional (present when calibrate ran with --fisher)
constexpr const char* kFisherTokens = "fisher_tokens";
constexpr const char* kFisherLabels = "fisher_labels";
constexpr const char* kFisherSeed = "fisher_seed";
constexpr const char* kFisherOffset = "fisher_offset";
constexpr const char* kFisherChannels = "fisher_channels";
constexpr const char* kFisher = "fisher";
} // namespace h5

/// Checks that every vector has the size its dims imply (see moewb/stats/stats.h) and that layers are
/// numbered 0..numLayers-1. Throws moewb::Error naming the field ("layer 3 coactivation: ...").
void validateStats(const CalibStats& stats);

/// Writes stats to path atomically: into path + ".tmp.<pid>", fsynced, then renamed over path. On any
/// failure (including Cancelled from progress, reported once per layer) the temporary file is
/// removed and an existing file at path is left untouched. Throws IoError when the OS or HDF5
/// refuses, Error when stats is inconsistent (validateStats).
void writeStats(const CalibStats& stats, const std::string& path, const ProgressFn& progress = {});

/// Reads a stats file. Throws InputError, one line starting with the path, for: not an HDF5 file,
/// a truncated file, a missing or unsupported format_version, a missing group/dataset/attribute
/// (named), a dataset of the wrong shape or type (named), inconsistent sizes. IoError when the file
/// cannot be opened at all. progress (stage "read") is reported once after the header, once per
/// MoE layer and once after the linears (total: MoE layers + 2); a sink that returns false stops
/// the read with Cancelled at its next report.
CalibStats readStats(const std::string& path, const ProgressFn& progress = {});

} // namespace moewb
