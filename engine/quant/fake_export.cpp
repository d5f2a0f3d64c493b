// SPDX-License-Identifier: MIT
// `quantize --format fake`: the output directory (moewb/quant/quantize.h quantizeToFakeDir).
#include "moewb/quant/quantize.h"

#include "moewb/core/error.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>

#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb {

namespace {

/// Removes a directory tree on destruction unless released: errors and cancels leave nothing.
class TempDir {
public:
    explicit TempDir(fs::path p)
        : m_path(std::move(p))
    {
    }
    ~TempDir()
    {
        if (!m_path.empty()) {
            std::error_code ec;
            fs::remove_all(m_path, ec);
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return m_path; }
    void release() { m_path.clear(); }

private:
    fs::path m_path;
};

/// Files of a HF model directory besides the weights that a loader needs: config, generation
/// config, tokenizer files, and remote-code modules (*.py, e.g. DeepSeek's modeling_deepseek.py).
bool isCompanionFile(const fs::path& p)
{
    static const std::set<std::string> names = {
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
        "chat_template.json", "chat_template.jinja"};
    const std::string n = p.filename().string();
    return names.count(n) > 0 || p.extension() == ".py";
}

void writeText(const fs::path& p, const std::string& text)
{
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    if (!f)
        throw IoError(p.string(), "cannot create file");
    f << text;
    f.flush();
    if (!f)
        throw IoError(p.string(), "write failed");
}

} // namespace

QuantizeReport quantizeToFakeDir(const std::string& modelDir, const Plan& plan,
                                 const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                                 const std::string& outDir, bool force, const std::string& calibDescription,
                                 const ProgressFn& progress)
{
    MOEWB_CHECK(!outDir.empty(), "--out", "no output directory given");
    const fs::path out = fs::path(outDir).lexically_normal();
    std::error_code ec;
    if (fs::exists(out, ec)) {
        MOEWB_CHECK(force, outDir, "already exists (use --force to replace it)");
        MOEWB_CHECK(!fs::equivalent(out, modelDir, ec), outDir, "is the input model directory");
        MOEWB_CHECK(fs::is_directory(out), outDir, "exists and is not a directory");
    }
    MOEWB_CHECK(fs::is_directory(modelDir), modelDir, "not a directory");

    const fs::path tmpPath = out.string() + ".tmp." + std::to_string(::getpid());
    fs::remove_all(tmpPath, ec);
    if (!fs::create_directories(tmpPath, ec) || ec)
        throw IoError(tmpPath.string(), "cannot create directory (" + ec.message() + ")");
    TempDir tmp(tmpPath);

    for (const auto& entry : fs::directory_iterator(modelDir)) {
        if (!entry.is_regular_file() || !isCompanionFile(entry.path()))
            continue;
        fs::copy_file(entry.path(), tmpPath / entry.path().filename(), fs::copy_options::overwrite_existing, ec);
        if (ec)
            throw IoError(entry.path().string(), "cannot copy (" + ec.message() + ")");
    }

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

    // Everything not quantized: the checkpoint's bytes unchanged.
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
    writeText(tmpPath / "moewb_quant_report.json", reportToJson(rep) + "\n");

    // Publish: the new directory appears complete or not at all.
    if (fs::exists(out, ec)) {
        const fs::path old = out.string() + ".old." + std::to_string(::getpid());
        fs::rename(out, old, ec);
        if (ec)
            throw IoError(outDir, "cannot move the existing directory aside (" + ec.message() + ")");
        fs::rename(tmpPath, out, ec);
        if (ec) {
            std::error_code ec2;
            fs::rename(old, out, ec2);
            throw IoError(outDir, "cannot rename " + tmpPath.string() + " (" + ec.message() + ")");
        }
        fs::remove_all(old, ec);
    } else {
        if (out.has_parent_path())
            fs::create_directories(out.parent_path(), ec);
        fs::rename(tmpPath, out, ec);
        if (ec)
            throw IoError(outDir, "cannot rename " + tmpPath.string() + " (" + ec.message() + ")");
    }
    tmp.release();
    return rep;
}

} // namespace moewb
