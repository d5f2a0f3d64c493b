// SPDX-License-Identifier: MIT
// The loop a user runs over and over, in one call: calibrate → plan (one or more strategies at one
// or more budgets) → quantize (fake-quant) → evaluate, with the unquantized model evaluated first
// on the same perplexity texts and tasks, so every row of the comparison is measured the same way.
// Torch-free API (the CLI and the GUI call it); each step is the engine function the matching
// subcommand uses, so the pipeline's numbers equal those of running the steps by hand.
#pragma once

#include "moewb/calib/calibrate.h"
#include "moewb/core/progress.h"
#include "moewb/eval/paired.h"
#include "moewb/eval/tasks.h"
#include "moewb/plan/plan_target.h"
#include "moewb/quant/quantize.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moewb {

struct PipelineOptions {
    std::string modelDir;
    std::string workDir;                 ///< stats.h5, plans, quantized models, results.json
    std::vector<CalibDataSpec> calibData;
    int64_t samples = 64;
    int64_t seqLen = 512;
    int64_t seed = 0;
    bool randomWindows = true;
    std::vector<std::string> strategies{"uniform"};
    std::vector<double> bits{4.0};       ///< average bits per quantizable weight, one row per strategy × bits
    /// The runtime the plans are for (docs/allocation.md "Targets"): gptq and vllm quantize into a
    /// fake-quantized directory; gguf writes each row as a GGUF file (widths as ggml types, budget in
    /// file bytes: ggufBytesForBits) and evaluates that file.
    PlanTarget target = PlanTarget::Gptq;
    int64_t groupSize = 128;
    bool sym = true;
    std::string method = "gptq";
    double damp = 0.01;
    int64_t minExpertTokens = 32;
    /// Expert balancing modes (#25): every strategy × budget runs once per mode; rows with a mode
    /// other than off are compared with the off row of the same strategy and budget (kldVsOff).
    std::vector<ExpertBalance> balanceExperts{kDefaultExpertBalance};
    std::vector<std::string> pplFiles;   ///< UTF-8 texts
    std::vector<std::string> taskFiles;  ///< lm-eval-harness style JSONL
    int64_t taskLimit = 0;               ///< items per task (0: all)
    int64_t ctx = 0;                     ///< perplexity window (0: the model's, at most 2048)
    std::string dtype = "auto";
    int64_t activationBits = 16;         ///< also applied to the quantized models' evaluation
    bool keepModels = false;             ///< keep each quantized model directory in workDir
};

struct PipelineRow {
    std::string label;        ///< "baseline" or "<strategy>@<bits>" (+ "/<balance>" when several modes run)
    std::string strategy;     ///< "" for the baseline
    ExpertBalance balance = kDefaultExpertBalance; ///< the quantize run's expert balancing
    double targetBits = 16.0;
    double achievedBits = 16.0; ///< average over quantizable weights (plan's GPTQ storage); gguf: file bits per parameter
    int64_t modelBytes = 0;   ///< whole model as stored (GPTQ packing for quantized rows; gguf: the file's size)
    std::vector<double> ppl;  ///< per pplFiles entry
    std::vector<TaskMetrics> tasks; ///< overall metrics per taskFiles entry
    /// Against the unquantized model (docs/evaluation.md), per pplFiles entry: mean KLD (nats),
    /// its 99th percentile, the share of positions with the same top token (baseline: 0, 0, 1).
    std::vector<double> kld, kldP99, sameTop;
    /// Every text's windows in order: KLD sum and scored tokens (the paired bootstrap's units).
    std::vector<double> windowKld, windowTokens;
    /// Per taskFiles entry, per item: 1 when the item's top choice (acc) is right.
    std::vector<std::vector<double>> taskCorrect;
    /// Strategy rows: the paired difference to the uniform row of the same budget (or the nearest
    /// uniform width not larger): mean KLD (this − uniform) and per task accuracy (this − uniform).
    std::string uniformLabel; ///< "" when there is no uniform row to compare with
    std::optional<PairedInterval> kldVsUniform;
    std::vector<PairedInterval> accVsUniform;
    /// Balanced rows: mean KLD (this − the off row of the same strategy and budget), paired.
    std::string offLabel;
    std::optional<PairedInterval> kldVsOff;
    /// The lowest-KLD strategy row of its budget and balancing mode (the winner; "" strategy rows
    /// excluded): the paired difference (this − other) to every other strategy row there, by label.
    std::vector<std::pair<std::string, PairedInterval>> kldVsOthers;
    int64_t expertsBelowMin = 0; ///< quantize report: experts below the minimum after balancing
    double meanRelError = -1; ///< quantize report; -1 for the baseline
    int64_t fallbackExperts = 0;
    double seconds = 0;       ///< plan + quantize + evaluate for this row
    std::string planPath, modelPath;
};

struct PipelineResult {
    std::vector<PipelineRow> rows; ///< baseline first
    std::vector<std::string> taskNames;
    std::string statsPath, resultsPath;
    double seconds = 0;
};

/// Fills each strategy row's uniformLabel, kldVsUniform and accVsUniform from the rows' window
/// and item results (95 % paired bootstrap, 2,000 resamples, seed 0). Uniform rows compare with
/// nothing.
void compareWithUniform(PipelineResult& r);

/// Fills each balanced row's offLabel and kldVsOff: the row of the same strategy and budget with
/// balancing off (95 % paired bootstrap over evaluation windows, as compareWithUniform).
void compareWithOff(PipelineResult& r);

/// Fills kldVsOthers of the lowest-mean-KLD strategy row of each budget and balancing mode (95 %
/// paired bootstrap over evaluation windows, as compareWithUniform). Rows without KLD: nothing.
void compareWinners(PipelineResult& r);

/// Runs everything; writes workDir/results.json (atomic) at the end. InputError for bad options
/// (unknown strategy, no calibration data), Cancelled via progress.
PipelineResult runPipeline(const PipelineOptions& opt, const ProgressFn& progress = {});

/// results.json text.
std::string pipelineResultToJson(const PipelineOptions& opt, const PipelineResult& r);

} // namespace moewb
