// SPDX-License-Identifier: MIT
// What `moewb quantize` and the GUI's quantize/export job run (#21): a plan applied to a model
// (QuantizeSource: trimmed first when the plan drops something) and written in one of the output
// formats: a fake-quantized Hugging Face directory, a GPTQ checkpoint or a GGUF file. The checks
// and the dispatch live here once; the callers print or show the result their own way.
#pragma once

#include "moewb/export/gguf.h"
#include "moewb/export/gptq.h"
#include "moewb/quant/quantize.h"
#include "moewb/workflow/calib_sequences.h"
#include "moewb/workflow/quantize_source.h"

#include <string>
#include <vector>

namespace moewb {

/// The output formats: "fake" (dequantized weights in HF layout), "gptq", "gguf".
const std::vector<std::string>& exportFormats();
bool isExportFormat(const std::string& name);

struct ExportTarget {
    std::string format = "fake"; ///< one of exportFormats()
    std::string path;            ///< a directory (fake, gptq) or FILE.gguf
    bool force = false;          ///< replace an existing output once the new one is complete
    GptqExportOptions gptq;      ///< format gptq
    GgufExportOptions gguf;      ///< format gguf
};

/// What can be checked before the long steps (InputError): a known format and an output path that
/// is given and is not the input model directory.
void checkExportTarget(const ExportTarget& target, const std::string& modelDir);

/// Pruned linears left at 16 bits exist only as dense weights with zeros, which only the fake
/// format stores. InputError naming planPath for the first such linear in another format.
void checkPlanForFormat(const Plan& plan, const ModelConfig& cfg, const std::string& format,
                        const std::string& planPath);

struct QuantizeExportResult {
    std::string format;
    bool wrote = false;      ///< false on the ranks of a distributed run other than 0 (rank 0 writes)
    QuantizeReport report;   ///< every format (moved out of gptq.report / gguf.quant)
    GptqExportResult gptq;   ///< format gptq: files, shards, wrapped zero points
    GgufExportResult gguf;   ///< format gguf: file type, blocks, notes
};

/// Runs both checks, quantizes source.plan() on source.modelDir() with the calibration sequences
/// and writes target. A distributed run (opt.dist) runs the same pass on every rank, rank 0 alone
/// writes, and all ranks meet at a barrier afterwards (so the others fail when rank 0 could not
/// write). InputError / IoError / Cancelled as the writers throw them; a failure leaves nothing.
QuantizeExportResult quantizeAndExport(const QuantizeSource& source, const CalibSequences& calib,
                                       const QuantizeOptions& opt, const ExportTarget& target,
                                       const ProgressFn& progress = {});

} // namespace moewb
