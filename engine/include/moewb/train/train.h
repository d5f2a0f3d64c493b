// SPDX-License-Identifier: MIT
// Training small MoE language models from scratch: the demo models in datasets/models are made
// with this. The forward is the inference forward (engine/model/forward.h) run under autograd,
// plus the router load-balancing loss (Switch Transformer / HF `load_balancing_loss_func`), AdamW
// with decoupled weight decay, linear warm-up then cosine decay, global-norm gradient clipping.
// Deterministic for a given seed, thread count and compute dtype; a run stopped at a step and
// resumed from its training-state snapshot (resumeDir) gives the same weights as one that never
// stopped.
#pragma once

#include "moewb/core/progress.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moewb {

/// Compute dtype of the matmuls. Auto: bf16 autocast where the CPU multiplies bf16 natively
/// (cpuHasFastBf16: AVX512-BF16 or AMX), else fp32. Master weights and AdamW moments are fp32 always.
enum class TrainPrecision { Auto, F32, Bf16 };

struct TrainOptions {
    std::string configPath;             ///< HF config.json describing the architecture to train
    std::string tokenizerPath;          ///< tokenizer.json (copied into the output)
    std::vector<std::string> trainFiles; ///< JSONL ({"text": ...}) or plain UTF-8 text
    std::string evalFile;               ///< optional held-out JSONL/text: loss reported at the end
    std::string outDir;
    int64_t steps = 1000;
    int64_t batch = 8;       ///< sequences per step
    int64_t seqLen = 256;    ///< tokens per sequence (each trains seqLen predictions)
    double lr = 3e-3;        ///< peak learning rate
    double minLrRatio = 0.1; ///< cosine decays to lr · minLrRatio
    int64_t warmup = 50;     ///< linear warm-up steps
    double weightDecay = 0.1; ///< decoupled; not applied to norms, biases and embeddings
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double clipNorm = 1.0;   ///< global gradient norm clip (0: off)
    double auxCoef = 0.01;   ///< router load-balancing loss coefficient
    double initStd = 0.02;   ///< normal init; o_proj / down projections use initStd / sqrt(2 · layers)
    uint64_t seed = 0;
    int64_t logEvery = 25;
    int64_t evalTokens = 65536; ///< held-out tokens scored at the end (0: all)
    bool force = false;         ///< replace an existing output directory
    int64_t snapshotEvery = 0;  ///< also write OUT_DIR and a training-state snapshot every N steps (0: only at the end)

    int threads = 0;             ///< intra-op (and OpenBLAS) threads; 0: leave the runtime's setting
    int64_t workers = 1;         ///< data-parallel workers, one thread each, batch / workers sequences each
    TrainPrecision precision = TrainPrecision::Auto;
    int64_t prefetch = 2;        ///< batches a background thread prepares ahead (0: none)
    std::string stateDir;        ///< training-state snapshots go to STATE_DIR/step-NNNNNNNN ("": OUT_DIR.state)
    std::string resumeDir;       ///< continue from this snapshot (a step-* dir, or a state dir: its latest)
    int64_t stopAtStep = 0;      ///< stop after this many steps (of `steps`) with a snapshot (0: run to the end)
    double maxSeconds = 0.0;     ///< stop with a snapshot at the first step that ends after this many seconds (0: no limit)
};

struct TrainLogEntry {
    int64_t step = 0;
    double loss = 0.0;     ///< mean next-token cross-entropy (nats) of this step's batch
    double auxLoss = 0.0;  ///< mean load-balancing loss over MoE layers (1.0 = perfectly balanced)
    double lr = 0.0;
    double gradNorm = 0.0; ///< before clipping
    double seconds = 0.0;  ///< since the start of training
};

struct TrainResult {
    std::vector<TrainLogEntry> log;
    int64_t parameters = 0;
    int64_t trainTokens = 0;   ///< tokens in the packed training stream
    int64_t tokensSeen = 0;    ///< steps · batch · seqLen
    double evalLoss = 0.0;     ///< mean NLL on the held-out tokens (0 when no eval file)
    int64_t evalTokensScored = 0;
    double seconds = 0.0;
    int64_t stepsDone = 0;     ///< < steps in a snapshot
    int64_t startStep = 0;     ///< > 0 when resumed
    bool stopped = false;      ///< stopped early (stopAtStep / maxSeconds): resume from statePath
    std::string statePath;     ///< the last training-state snapshot written ("" if none)
    int threads = 0;           ///< intra-op threads used
    int64_t workers = 1;
    std::string computeDtype;  ///< "f32" or "bf16"
    double tokenizeSeconds = 0.0;
    double stepSeconds = 0.0;  ///< time in optimizer steps (forward, backward, AdamW) this session
    int64_t stepsThisSession = 0;
};

/// Trains and writes OUT_DIR (config.json with torch_dtype bfloat16, model.safetensors in bf16,
/// tokenizer.json, generation_config.json, training_log.json), atomically: OUT_DIR.tmp.<pid>
/// renamed at the end. onLog is called every logEvery steps and at the last step.
TrainResult trainModel(const TrainOptions& opt, const ProgressFn& progress = {},
                       const std::function<void(const TrainLogEntry&)>& onLog = {});

} // namespace moewb
