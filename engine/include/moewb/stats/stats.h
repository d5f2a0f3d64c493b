// SPDX-License-Identifier: MIT
// The finished results of one calibration run, as plain values: what the observers produce, what
// stats.h5 stores (moewb/stats/stats_h5.h, docs/stats-schema.md) and what the GUI and the bit-allocation
// strategies read. No torch and no HDF5 types here, so widgets and the CLI can include it.
//
// Matrices are std::vector in row-major order next to their dims (Matrix<T>). Counts are exact
// int64; sums of probabilities are double; per-channel statistics and correlations are float.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

/// A row-major rows x cols matrix. An empty matrix (0 x n or n x 0) means "not recorded" where
/// the field's comment says so.
template <typename T>
struct Matrix {
    int64_t rows = 0;
    int64_t cols = 0;
    std::vector<T> data; ///< rows * cols values, row-major

    Matrix() = default;
    Matrix(int64_t r, int64_t c, T fill = T())
        : rows(r)
        , cols(c)
        , data(size_t(r * c), fill)
    {
    }
    T& at(int64_t r, int64_t c) { return data[size_t(r * cols + c)]; }
    const T& at(int64_t r, int64_t c) const { return data[size_t(r * cols + c)]; }
    bool empty() const { return data.empty(); }
};

namespace detail {
// Equality for round-trip checks: NaN ("not measured") equals NaN, everything else is exact.
inline bool sameValue(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }
template <typename T>
bool sameValues(const std::vector<T>& a, const std::vector<T>& b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!sameValue(double(a[i]), double(b[i])))
            return false;
    return true;
}
} // namespace detail

template <typename T>
bool operator==(const Matrix<T>& a, const Matrix<T>& b)
{
    return a.rows == b.rows && a.cols == b.cols && detail::sameValues(a.data, b.data);
}

/// One calibration input file, identified by content so a stats file can be matched to its data.
struct CalibDataFile {
    std::string path;     ///< as given on the command line
    std::string format;   ///< "text", "jsonl" or "ids"
    std::string domain;   ///< domain label ("" when the run has no domains)
    int64_t bytes = 0;    ///< file size
    std::string hashAlgo; ///< "sha256" or "fnv1a64"
    std::string hash;     ///< lowercase hex digest of the whole file
};

/// Where the statistics came from (root attributes of stats.h5).
struct StatsProvenance {
    std::string modelPath;       ///< model directory as given
    std::string architecture;    ///< config.json architectures[0], e.g. "Qwen3MoeForCausalLM"
    std::string modelType;       ///< config.json model_type
    std::string dataDescription; ///< one human line, e.g. "first 128 windows of 2048 tokens of wiki.txt"
    std::vector<CalibDataFile> dataFiles;
    int64_t numSamples = 0;      ///< calibration windows actually used
    int64_t seqLen = 0;          ///< requested window length (the last window may be shorter)
    int64_t seed = 0;
    bool randomWindows = false;  ///< --random-windows (else the first N consecutive windows)
    int64_t numTokens = 0;       ///< tokens run through the model (sum of window lengths)
    std::vector<std::string> domains;      ///< domain names, in the row order of domainTokens
    std::vector<int64_t> domainTokenCounts; ///< tokens per domain, same order as domains
    std::string computeDtype;    ///< dtype the forward ran in, e.g. "bfloat16"
    std::string device;          ///< e.g. "cpu", "cuda:0"
    std::string toolVersion;     ///< moewb::version() of the writer
    std::string created;         ///< UTC ISO 8601, e.g. "2025-01-31T12:00:00Z"
    std::string optionsJson;     ///< the calibrate options as a JSON object ("" if unknown)
};

/// Mean cosine similarity between the hidden states entering and leaving a part of a decoder block
/// (residual stream, residual included). NaN when not measured.
struct BlockCosine {
    double attn = 0.0;  ///< input of the block vs after the attention residual add
    double mlp = 0.0;   ///< after attention vs block output (MoE or dense MLP part): Layer Drop S^(NM)
    double block = 0.0; ///< block input vs block output: Block Drop score
    int64_t tokens = 0; ///< tokens averaged over
};

/// Routing statistics of one MoE layer. E = numExperts of this layer, D = provenance domains.
struct RouterStats {
    int64_t numExperts = 0;
    int64_t topK = 0;
    int64_t tokens = 0;                   ///< tokens that passed this router
    std::vector<int64_t> expertTokens;    ///< [E] tokens whose top-k contains the expert
    std::vector<int64_t> expertTop1;      ///< [E] tokens whose first choice is the expert
    std::vector<double> expertWeightMass; ///< [E] sum of the final mixing weights the expert received
    std::vector<double> expertProbMass;   ///< [E] sum over all tokens of softmax(logits)[e], all experts
    double routerEntropy = 0.0;           ///< mean over tokens of the entropy of softmax(logits), nats
    Matrix<int64_t> domainTokens;         ///< [D x E] expertTokens split by domain; 0 x E without domains
    Matrix<int64_t> coactivation;         ///< [E x E] tokens choosing both i and j; diagonal = expertTokens
    Matrix<float> correlation;            ///< [E x E] expert output correlation on the probe; 0 x 0 if not run
    int64_t correlationTokens = 0;        ///< probe tokens the correlation was computed on
    std::string correlationMethod;        ///< "cosine" or "pearson" ("" if not run)
    int64_t nextMoeLayer = -1;            ///< decoder index of the next MoE layer, -1 for the last one
    Matrix<int64_t> transitions;          ///< [E x E_next] tokens going from expert i here to j there; E x 0 if last
    std::vector<int64_t> deadExperts;     ///< experts with expertTokens == 0, ascending
};

/// One decoder layer.
struct LayerStats {
    int64_t layer = 0;
    BlockCosine cosine;
    bool isMoe = false;
    RouterStats router; ///< meaningful only when isMoe
};

/// How the weight outlier scores were computed (docs/algorithms.md §5.2): for W [out, in],
/// r_j = max_i |W_ij| / (mean_i |W_ij| + eps), score = max_j r_j, column = argmax_j r_j.
struct OutlierScoreParams {
    std::string metric = "col_peak_to_mean_max"; ///< the only metric so far
    std::string computeDtype = "float32";         ///< weights are upcast to this before |W|
    double eps = 0.0;                             ///< columns with mean |W| = 0 are skipped when eps = 0
};

/// One linear module (see moewb/hfconfig/hf_config.h LinearInfo for the naming).
struct LinearStats {
    std::string name;     ///< tensor name without ".weight"
    int64_t layer = -1;
    int64_t expert = -1;  ///< routed expert index, -1 otherwise
    std::string role;     ///< linearRoleName(), e.g. "q_proj", "expert.down"
    int64_t inFeatures = 0;
    int64_t outFeatures = 0;
    int64_t tokens = 0;             ///< input rows seen (routed experts: tokens routed to it)
    std::vector<float> actAbsMax;   ///< [in] max_t |x_tj|; empty when activations were not observed
    std::vector<float> actSqMean;   ///< [in] mean_t x_tj^2 (Wanda norm, diag(H)/2); empty likewise
    float outlierScore = 0.0f;      ///< see OutlierScoreParams; NaN when not computed
    int64_t outlierColumn = -1;     ///< argmax column j of the score, -1 when not computed
    /// [out] diagonal Fisher at the linear's output: F_i = (1/N) sum_t g_ti^2 over all N calibration
    /// tokens, g = gradient of the sampled-label loss (FisherParams) at output channel i (a routed
    /// expert's g is 0 on tokens not routed to it). Empty when not measured (docs/allocation.md).
    std::vector<float> fisher;
};

/// How the per-linear Fisher diagonals were measured (moewb calibrate --fisher, engine/calib/fisher.cpp).
struct FisherParams {
    int64_t tokens = 0;              ///< N: calibration tokens averaged over; 0 = no Fisher in the file
    std::string labels = "sampled";  ///< "sampled": one label per token drawn from the model's own softmax
    int64_t seed = 0;                ///< seed of the label draw
};

struct CalibStats {
    StatsProvenance provenance;
    int64_t numLayers = 0;  ///< decoder layers; layers.size() == numLayers, layers[i].layer == i
    int64_t hiddenSize = 0;
    std::vector<LayerStats> layers;
    OutlierScoreParams outlier;
    FisherParams fisher;              ///< fisher.tokens == 0: no LinearStats::fisher recorded
    std::vector<LinearStats> linears; ///< in listLinears() order

    bool hasFisher() const { return fisher.tokens > 0; }

    /// The MoE layer `layer`'s router, or nullptr for a dense or unknown layer.
    const RouterStats* router(int64_t layer) const
    {
        if (layer < 0 || layer >= int64_t(layers.size()) || !layers[size_t(layer)].isMoe)
            return nullptr;
        return &layers[size_t(layer)].router;
    }
    int64_t totalDeadExperts() const
    {
        int64_t n = 0;
        for (const LayerStats& l : layers)
            n += l.isMoe ? int64_t(l.router.deadExperts.size()) : 0;
        return n;
    }
};

// Field-by-field equality (NaN == NaN), used by the round-trip tests and by "did anything change" checks.
inline bool operator==(const CalibDataFile& a, const CalibDataFile& b)
{
    return a.path == b.path && a.format == b.format && a.domain == b.domain && a.bytes == b.bytes
        && a.hashAlgo == b.hashAlgo && a.hash == b.hash;
}
inline bool operator==(const StatsProvenance& a, const StatsProvenance& b)
{
    return a.modelPath == b.modelPath && a.architecture == b.architecture && a.modelType == b.modelType
        && a.dataDescription == b.dataDescription && a.dataFiles == b.dataFiles && a.numSamples == b.numSamples
        && a.seqLen == b.seqLen && a.seed == b.seed && a.randomWindows == b.randomWindows
        && a.numTokens == b.numTokens && a.domains == b.domains && a.domainTokenCounts == b.domainTokenCounts
        && a.computeDtype == b.computeDtype && a.device == b.device && a.toolVersion == b.toolVersion
        && a.created == b.created && a.optionsJson == b.optionsJson;
}
inline bool operator==(const BlockCosine& a, const BlockCosine& b)
{
    return detail::sameValue(a.attn, b.attn) && detail::sameValue(a.mlp, b.mlp)
        && detail::sameValue(a.block, b.block) && a.tokens == b.tokens;
}
inline bool operator==(const RouterStats& a, const RouterStats& b)
{
    return a.numExperts == b.numExperts && a.topK == b.topK && a.tokens == b.tokens
        && a.expertTokens == b.expertTokens && a.expertTop1 == b.expertTop1
        && detail::sameValues(a.expertWeightMass, b.expertWeightMass)
        && detail::sameValues(a.expertProbMass, b.expertProbMass)
        && detail::sameValue(a.routerEntropy, b.routerEntropy) && a.domainTokens == b.domainTokens
        && a.coactivation == b.coactivation && a.correlation == b.correlation
        && a.correlationTokens == b.correlationTokens && a.correlationMethod == b.correlationMethod
        && a.nextMoeLayer == b.nextMoeLayer && a.transitions == b.transitions && a.deadExperts == b.deadExperts;
}
inline bool operator==(const LayerStats& a, const LayerStats& b)
{
    // A dense layer's router is not stored, so it does not take part.
    return a.layer == b.layer && a.cosine == b.cosine && a.isMoe == b.isMoe && (!a.isMoe || a.router == b.router);
}
inline bool operator==(const OutlierScoreParams& a, const OutlierScoreParams& b)
{
    return a.metric == b.metric && a.computeDtype == b.computeDtype && detail::sameValue(a.eps, b.eps);
}
inline bool operator==(const LinearStats& a, const LinearStats& b)
{
    return a.name == b.name && a.layer == b.layer && a.expert == b.expert && a.role == b.role
        && a.inFeatures == b.inFeatures && a.outFeatures == b.outFeatures && a.tokens == b.tokens
        && detail::sameValues(a.actAbsMax, b.actAbsMax) && detail::sameValues(a.actSqMean, b.actSqMean)
        && detail::sameValue(a.outlierScore, b.outlierScore) && a.outlierColumn == b.outlierColumn
        && detail::sameValues(a.fisher, b.fisher);
}
inline bool operator==(const FisherParams& a, const FisherParams& b)
{
    return a.tokens == b.tokens && a.labels == b.labels && a.seed == b.seed;
}
inline bool operator==(const CalibStats& a, const CalibStats& b)
{
    return a.provenance == b.provenance && a.numLayers == b.numLayers && a.hiddenSize == b.hiddenSize
        && a.layers == b.layers && a.outlier == b.outlier && a.fisher == b.fisher && a.linears == b.linears;
}

} // namespace moewb
