// SPDX-License-Identifier: MIT
// Training-state snapshots for `train-demo --resume`: everything a run needs to continue as if it
// had never stopped. STATE_DIR/step-NNNNNNNN/ holds state.safetensors (fp32 weights and AdamW
// moments: "param.<name>", "adam_m.<name>", "adam_v.<name>", plus the CPU generator state
// "torch_rng") and state.json (step, sampler state, loss accumulators, log so far, seconds, and the
// options fingerprint a resumed run must match). Written to a temp dir and renamed; the newest
// `keep` snapshots are kept.
#pragma once

#include "moewb/train/train.h"

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace moewb {

struct TrainState {
    std::string path;              ///< the snapshot directory (set by load / save)
    int64_t step = 0;              ///< optimizer steps done
    std::string samplerRng;        ///< BatchStream::rngToString after `step` batches
    at::Tensor torchRng;           ///< at::getDefaultCPUGenerator state (uint8)
    double lossAcc = 0, auxAcc = 0;
    int64_t accN = 0;
    double seconds = 0;            ///< run time so far (all sessions)
    std::vector<TrainLogEntry> log;
    std::string fingerprint;       ///< JSON object: options and data the run depends on
    std::string sessions;          ///< JSON array: one entry per session (threads, dtype, steps)
    std::map<std::string, at::Tensor> tensors; ///< fp32
};

/// Writes STATE_DIR/step-%08d (atomically) and removes all but the newest `keep` step-* dirs.
/// Returns the snapshot's path.
std::string saveTrainState(const std::string& stateDir, const TrainState& state, int keep = 2);

/// `dir` is a step-* snapshot, or a state dir whose newest step-* is taken.
TrainState loadTrainState(const std::string& dir);

/// Whether `stateDir` holds a step-* snapshot; removeTrainStates deletes them (a fresh run with force).
bool hasTrainState(const std::string& stateDir);
void removeTrainStates(const std::string& stateDir);

/// Throws InputError("<snapshot>/state.json: resumed run differs in KEY: snapshot A, now B") for the
/// first key of `saved` whose value differs from `now` (both JSON objects).
void checkFingerprint(const std::string& snapshot, const std::string& saved, const std::string& now);

} // namespace moewb
