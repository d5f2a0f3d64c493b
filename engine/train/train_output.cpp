// SPDX-License-Identifier: MIT
#include "train/train_output.h"

#include "moewb/core/error.h"
#include "moewb/core/version.h"
#include "moewb/safetensors/safetensors.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb {

namespace {

void writeText(const fs::path& path, const std::string& text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out)
        throw IoError(path.string() + ": write failed");
}

nlohmann::json optionsJson(const TrainOptions& o)
{
    return {{"config", fs::path(o.configPath).filename().string()},
            {"train_files", o.trainFiles.size()},
            {"steps", o.steps},
            {"batch", o.batch},
            {"seq_len", o.seqLen},
            {"lr", o.lr},
            {"min_lr_ratio", o.minLrRatio},
            {"warmup", o.warmup},
            {"weight_decay", o.weightDecay},
            {"betas", {o.beta1, o.beta2}},
            {"eps", o.eps},
            {"clip_norm", o.clipNorm},
            {"aux_coef", o.auxCoef},
            {"init_std", o.initStd},
            {"seed", o.seed}};
}

} // namespace

void writeTrainedModel(const TrainOptions& opt, const std::string& configText,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors, const TrainResult& result)
{
    const fs::path out(opt.outDir);
    const fs::path tmp = out.string() + ".tmp." + std::to_string(::getpid());
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    try {
        nlohmann::json cfg = nlohmann::json::parse(configText);
        cfg["torch_dtype"] = "bfloat16";
        writeText(tmp / "config.json", cfg.dump(2) + "\n");

        nlohmann::json gen = {{"_from_model_config", true}};
        if (cfg.contains("bos_token_id"))
            gen["bos_token_id"] = cfg["bos_token_id"];
        if (cfg.contains("eos_token_id"))
            gen["eos_token_id"] = cfg["eos_token_id"];
        writeText(tmp / "generation_config.json", gen.dump(2) + "\n");

        fs::copy_file(opt.tokenizerPath, tmp / "tokenizer.json", fs::copy_options::overwrite_existing);

        SafetensorsWriter writer((tmp / "model.safetensors").string(), {{"format", "pt"}});
        std::vector<at::Tensor> bf16;
        for (const auto& [name, t] : tensors) {
            bf16.push_back(t.to(at::kBFloat16).contiguous());
            writer.declare(name, DType::BF16, t.sizes().vec());
        }
        for (size_t i = 0; i < tensors.size(); ++i)
            writer.write(tensors[i].first, bf16[i].data_ptr(), uint64_t(bf16[i].nbytes()));
        writer.commit();

        nlohmann::json log = nlohmann::json::array();
        for (const TrainLogEntry& e : result.log)
            log.push_back({{"step", e.step}, {"loss", e.loss}, {"aux_loss", e.auxLoss}, {"lr", e.lr},
                           {"grad_norm", e.gradNorm}, {"seconds", e.seconds}});
        nlohmann::json summary = {{"tool", std::string("moewb ") + MOEWB_VERSION},
                                  {"options", optionsJson(opt)},
                                  {"parameters", result.parameters},
                                  {"train_tokens", result.trainTokens},
                                  {"tokens_seen", result.tokensSeen},
                                  {"steps_done", result.stepsDone},
                                  {"eval_loss", result.evalLoss},
                                  {"eval_tokens", result.evalTokensScored},
                                  {"seconds", result.seconds},
                                  {"threads", result.threads},
                                  {"workers", result.workers},
                                  {"compute_dtype", result.computeDtype},
                                  {"start_step", result.startStep},
                                  {"tokenize_seconds", result.tokenizeSeconds},
                                  {"step_seconds_this_session", result.stepSeconds},
                                  {"tokens_per_second_this_session",
                                   result.stepSeconds > 0 ? double(result.stepsThisSession * opt.batch * opt.seqLen) / result.stepSeconds : 0.0},
                                  {"log", log}};
        writeText(tmp / "training_log.json", summary.dump(1) + "\n");

        if (fs::exists(out)) {
            if (!opt.force)
                throw OutputExistsError(opt.outDir);
            fs::remove_all(out);
        }
        fs::rename(tmp, out);
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
}

} // namespace moewb
