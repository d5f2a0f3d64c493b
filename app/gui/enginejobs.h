// SPDX-License-Identifier: MIT
// The GUI's jobs over the engine (#12): each function turns the options a dialog collected into a
// Job whose work calls the same engine functions as the matching CLI subcommand (app/cli/cmd_*.cpp),
// so the GUI's numbers equal the CLI's. Only torch-free engine headers are included here: Qt's
// signals/slots/emit macros must never meet a libtorch header (docs/architecture.md, Conventions).
#pragma once

#include "jobs/job.h"
#include "results/runresult.h"

#include "moewb/alloc/allocate.h"
#include "moewb/plan/plan.h"
#include "moewb/calib/calibrate.h"
#include "moewb/stats/stats.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/quant/quantize.h"

#include <QString>
#include <QStringList>

#include <cstdint>
#include <memory>

namespace moewb::gui {

/// Calibration data as the CLI takes it: FILE, or NAME=FILE for a file labelled with a domain.
std::vector<CalibDataSpec> calibSpecs(const QStringList& files);

struct CalibrateSettings {
    QString modelDir;
    QStringList data;   ///< FILE or NAME=FILE
    int64_t samples = 16;
    int64_t seqLen = 256;
    int64_t seed = 0;
    bool randomWindows = false;
    int64_t probeTokens = 256;
    QString dtype = QStringLiteral("auto");
    bool fisher = false; ///< also measure the loss sensitivity (Fisher diagonal), as calibrate --fisher
    QString outPath;    ///< the stats file (written atomically at the end)
};
/// value: std::shared_ptr<const CalibStats> (the stats just written). As `moewb calibrate`.
Job calibrateJob(const CalibrateSettings& s);

struct StrategySettings {
    QString strategy = QStringLiteral("uniform"); ///< allocStrategies() name
    double bits = 4.0;     ///< target average bits
    int64_t groupSize = 128;
    bool sym = true;
    QString method = QStringLiteral("gptq");
    int64_t seed = 0;
    int64_t k = -1;
    double topP = -1.0;
    int64_t perLayer = -1;
    QString target = QStringLiteral("gptq"); ///< the runtime: gptq | vllm | gguf (planTargetName)
};
/// value: Plan (provenance filled as `moewb plan` fills it; with target gguf the widths become ggml
/// types as `moewb plan --target gguf --bits` writes them). "budget" measures the error table
/// first (the long part) unless `costTable` (costTableJob's, for the same model and stats) was
/// measured at the settings' group size. As `moewb plan`.
Job strategyJob(std::shared_ptr<const ModelConfig> cfg, const QString& modelDir,
                std::shared_ptr<const CalibStats> stats, const QString& statsPath, const StrategySettings& s,
                std::shared_ptr<const ErrorTable> costTable = nullptr);

/// value: std::shared_ptr<const ErrorTable>: the predicted cost (#27) of every quantizable linear
/// at the budget solver's candidate widths (AllocOptions{}.candidates, group size 128) with the
/// Fisher cost model: measureErrors, exactly what `moewb plan --strategy budget` solves on. Needs
/// statistics with a Fisher diagonal (InputError otherwise).
Job costTableJob(std::shared_ptr<const ModelConfig> cfg, const QString& modelDir, std::shared_ptr<const CalibStats> stats);

struct QuantizeSettings {
    QString modelDir;
    QString format = QStringLiteral("fake"); ///< fake | gptq | gguf
    QString outPath;                         ///< directory (fake, gptq) or FILE.gguf
    bool force = false;
    QStringList calib;                       ///< FILE or NAME=FILE; needed by GPTQ
    int64_t samples = 16;
    int64_t seqLen = 256;
    bool randomWindows = false;
    int64_t seed = 0;
    double damp = 0.01;
    int64_t minExpertTokens = 32;
    QString balanceExperts = QString::fromLatin1(expertBalanceName(kDefaultExpertBalance)); ///< off | next-choices | all-tokens
    QString dtype = QStringLiteral("auto");
    QString checkpointFormat = QStringLiteral("gptq"); ///< gptq | gptq_v2
    int64_t maxShardBytes = int64_t(4'000'000'000);
    QString ggufType = QStringLiteral("f16");
};
/// What a quantize job made (value of its result).
struct QuantizeOutcome {
    QString outPath;
    QString format;
    QString reportPath; ///< the quantize report it wrote (per-expert coverage for the coverage view)
    QString label;    ///< "<strategy>@<bits>" from the plan's provenance, else the output's name
    QString planJson;
    double averageBits = 16.0; ///< planSize of the plan on the model
    int64_t modelBytes = 0;
    double meanRelError = -1;
};
/// As `moewb quantize --plan`: plans that drop experts/layers/blocks are trimmed first.
Job quantizeJob(const Plan& plan, const QuantizeSettings& s);

struct EvaluateSettings {
    QString modelDir;      ///< a quantized (fake) directory or the original model
    QString label;         ///< "" = from the directory's moewb_plan.json, else "baseline"
    QStringList pplFiles;
    QStringList taskFiles;
    int64_t taskLimit = 0;
    int64_t ctx = 0;
    int64_t stride = 0;
    QString dtype = QStringLiteral("auto");
};
/// value: RunResult. Perplexity of the first ppl file (as `moewb eval --ppl`), acc per task file;
/// average bits and bytes from the directory's moewb_plan.json (written by quantize), or the bf16
/// model for a directory without one (as `moewb pipeline`'s baseline row).
Job evaluateJob(const EvaluateSettings& s);

/// Bytes of the whole model stored as bf16 (the pipeline's baseline).
int64_t bf16ModelBytes(const ModelConfig& cfg);

} // namespace moewb::gui
