// SPDX-License-Identifier: MIT
// `quantize --format fake`: the output directory (moewb/quant/quantize.h quantizeToFakeDir).
#include "moewb/quant/quantize.h"

#include "core/output_dir.h"
#include "quant/ggml_linear.h"
#include "moewb/core/error.h"

#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace moewb {

QuantizeReport quantizeToFakeDir(const std::string& modelDir, const Plan& plan,
                                 const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                 const std::string& outDir, bool force, const std::string& calibDescription,
                                 const ProgressFn& progress)
{
    const fs::path tmpPath = prepareOutputDir(modelDir, outDir, force);
    TempDir tmp(tmpPath);
    copyCompanionFiles(modelDir, tmpPath);

    const Checkpoint ckpt = Checkpoint::open(modelDir);
    SafetensorsWriter writer((tmpPath / "model.safetensors").string());
    const std::vector<std::string> names = ckpt.names();
    for (const std::string& n : names) {
        const TensorInfo& info = ckpt.info(n);
        writer.declare(n, info.dtype, info.shape);
    }
    writer.begin();
    std::set<std::string> written;
    auto sink = [&](const QuantizedWeight& w) {
        const TensorInfo& info = ckpt.info(w.tensorName);
        MOEWB_ASSERT(info.dtype == w.dtype && info.shape == w.shape && written.insert(w.tensorName).second);
        writer.write(w.tensorName, w.data, w.nbytes);
    };
    QuantizeReport rep = quantizeModel(modelDir, plan, sequences, opt, sink, progress);
    rep.calibDescription = calibDescription;

    // The plan's GGUF types of the embedding and lm_head (#26), then everything else: the
    // checkpoint's bytes unchanged.
    std::vector<std::string> notes;
    for (const auto& [n, t] : ggmlEmbeddingRoundTrips(plan, loadConfig(modelDir), ckpt, notes)) {
        writer.write(n, t.data_ptr(), uint64_t(t.nbytes()));
        written.insert(n);
    }
    int64_t i = 0;
    for (const std::string& n : names) {
        report(progress, "write", i++, int64_t(names.size()), n);
        if (written.count(n))
            continue;
        writer.write(n, ckpt.data(n), ckpt.info(n).nbytes());
        ckpt.release(n);
    }
    writer.commit();
    report(progress, "write", int64_t(names.size()), int64_t(names.size()));

    savePlan(plan, (tmpPath / "moewb_plan.json").string());
    writeTextFile(tmpPath / "moewb_quant_report.json", reportToJson(rep) + "\n");

    // Publish: the new directory appears complete or not at all.
    publishOutputDir(tmpPath, outDir);
    tmp.release();
    return rep;
}

} // namespace moewb
