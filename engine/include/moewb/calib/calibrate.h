// SPDX-License-Identifier: MIT
// Calibration (#6): run calibration data through a checkpoint layer by layer and collect
// CalibStats (moewb/stats/stats.h). Torch-free API for the CLI and the GUI; the observers live in
// engine/calib/*.h.
//
// Data (loadCalibData):
//   - format by content: a file whose first non-blank byte is '[' holds pre-tokenized ids (one
//     JSON array of ints, or an array of such arrays); *.jsonl is one JSON value per line, either
//     an object with a "text" field (and an optional "domain" string) or an array of ids; anything
//     else is UTF-8 text tokenized as one document.
//   - every document (text file, JSONL line, ids array) is tokenized on its own and the results
//     are concatenated in file order; each token keeps the domain of the text it came from
//     (--domain NAME=FILE labels a whole file, a JSONL "domain" field labels its line).
//     When some tokens have a domain and others do not, the others get domain "(unlabeled)".
// Samples (calibWindows): window k = tokens [k·L, min((k+1)·L, n)) for k < N (the last one may be
//   shorter when the data runs out); with randomWindows, N windows of exactly L tokens starting at
//   uniform positions in [0, n − L − 1] (GPTQ scripts), drawn from mt19937_64(seed) by rejection
//   sampling so the draw is the same on every platform.
#pragma once

#include "moewb/stats/stats.h"
#include "moewb/core/progress.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moewb {

class DistContext;

/// One --data / --domain input.
struct CalibDataSpec {
    std::string path;
    std::string domain; ///< "" unless given with --domain NAME=FILE
};

/// Turns one document of text into token ids (the CLI uses MODEL_DIR/tokenizer.json).
using TokenizeFn = std::function<std::vector<int32_t>(const std::string& text)>;

/// The concatenated calibration token stream with per-token domain labels.
struct CalibTokens {
    std::vector<int32_t> ids;
    std::vector<int32_t> domain;          ///< per token: index into domains, or -1 (no domains)
    std::vector<std::string> domains;     ///< in order of first appearance
    std::vector<CalibDataFile> files;     ///< provenance of each input file
};

/// Reads and tokenizes the inputs. tokenize may be empty when every input is pre-tokenized; a
/// text input then is an InputError. Missing or unreadable files, bad JSON → InputError naming
/// the file (and line).
CalibTokens loadCalibData(const std::vector<CalibDataSpec>& inputs, const TokenizeFn& tokenize);

struct CalibWindow {
    int64_t begin = 0;
    int64_t end = 0;
};
std::vector<CalibWindow> calibWindows(int64_t numTokens, int64_t samples, int64_t seqLen, bool randomWindows,
                                      int64_t seed);

/// The one human line recorded as the provenance of calibration windows (stats files, quantize
/// reports): "first 128 windows of 2048 tokens of wiki.txt, code.jsonl" or "64 random windows
/// (seed 0) of 512 tokens of wiki.txt"; files by name, in input order.
std::string calibDataDescription(const std::vector<CalibDataFile>& files, int64_t windows, int64_t seqLen,
                                 bool randomWindows, int64_t seed);

struct CalibrateOptions {
    std::vector<CalibDataSpec> data;
    int64_t samples = 128;
    int64_t seqLen = 2048;
    int64_t seed = 0;
    bool randomWindows = false;
    /// Tokens of the all-experts correlation probe: the first P tokens of the calibration windows
    /// (window order). 0 switches the probe off.
    int64_t probeTokens = 256;
    std::string dtype = "auto"; ///< auto | bf16 | f32
    bool streaming = true;
    int64_t maxBatchTokens = 8192;
    bool activations = true; ///< per-linear activation statistics
    bool outlierScores = true;
    std::string created; ///< provenance timestamp; "" = now (tests pin it)
    /// Distributed run (#15, moewb/dist/dist.h; not owned, null = single process): each rank runs
    /// a contiguous block of the windows (shardOf) and the statistics are all-reduced exactly, so
    /// every rank returns the statistics of all windows (counts bitwise equal to a single-process
    /// run, float sums equal up to summation order). Needs at least one window per rank.
    DistContext* dist = nullptr;
    /// Also measure the diagonal Fisher at every linear's output (LinearStats::fisher, labels drawn
    /// with `seed`; engine/calib/fisher.h, docs/allocation.md): the calibration forward keeps every
    /// layer's input, then a layer-streamed backward runs from the top. Single process only.
    bool fisher = false;
    /// When set, receives the wall-clock seconds of the calibration pass and of the Fisher backward.
    struct Timings {
        double calibration = 0.0;
        double fisher = 0.0;
    };
    Timings* timings = nullptr;
};

/// The whole run: load data, cut windows, run the model with the observers, fill provenance.
/// Throws InputError for bad options/data/model, Cancelled when progress asks to stop.
CalibStats calibrate(const std::string& modelDir, const CalibrateOptions& opt, const TokenizeFn& tokenize,
                     const ProgressFn& progress = {});

/// Same on an already loaded token stream (opt.data is only used for the description).
CalibStats calibrateTokens(const std::string& modelDir, const CalibTokens& tokens, const CalibrateOptions& opt,
                           const ProgressFn& progress = {});

/// A TokenizeFn over MODEL_DIR/tokenizer.json, loaded on first use (encode with special tokens,
/// as `moewb eval` does). Lives in its own translation unit so code that never tokenizes text
/// does not link the tokenizer.
TokenizeFn modelTokenizer(const std::string& modelDir);

/// Routed experts that saw no calibration token, as "model.layers.L.<moe>.experts.E" prefixes.
std::vector<std::string> deadExpertNames(const std::string& modelDir, const CalibStats& stats);

/// Lowercase hex SHA-256 of a byte string / of a whole file (IoError if unreadable).
std::string sha256Hex(const std::string& bytes);
std::string sha256File(const std::string& path, int64_t* bytes = nullptr);

} // namespace moewb
