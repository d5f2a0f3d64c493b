// SPDX-License-Identifier: MIT
// The calibration driver below the torch-free API (moewb/calib/calibrate.h): tests and benches
// call it directly to add their own observers or feed sequences they built.
#pragma once

#include "calib/observers.h"
#include "model/streamer.h"
#include "moewb/calib/calibrate.h"

#include <ATen/ATen.h>

#include <vector>

namespace moewb {

/// Runs `sequences` through the model with every calibration observer (and `extra`, called after
/// them, if given) and returns the statistics. Provenance is left empty except numTokens and
/// computeDtype; calibrateTokens fills the rest. recordGraph: the forward runs under autograd
/// (StreamOptions::recordGraph), for a Fisher pass that reuses its graph.
CalibStats runCalibration(const Model& model, const std::vector<at::Tensor>& sequences, const TokenLayout& layout,
                          const CalibrateOptions& opt, ForwardObserver* extra = nullptr,
                          const ProgressFn& progress = {}, bool recordGraph = false);

/// Global token offsets of sequences laid end to end, in input order.
TokenLayout layoutOf(const std::vector<at::Tensor>& sequences);

} // namespace moewb
