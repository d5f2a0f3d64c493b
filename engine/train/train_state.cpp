// SPDX-License-Identifier: MIT
#include "train/train_state.h"

#include "moewb/core/error.h"
#include "moewb/safetensors/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb {

namespace {

const char* kFormat = "moewb-train-state-1";

bool isStepDir(const fs::path& p)
{
    const std::string n = p.filename().string();
    return n.size() == 13 && n.rfind("step-", 0) == 0 && n.find_first_not_of("0123456789", 5) == std::string::npos;
}

std::vector<fs::path> stepDirs(const fs::path& root)
{
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec))
        if (e.is_directory() && isStepDir(e.path()) && fs::exists(e.path() / "state.json"))
            dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

void writeFile(const fs::path& path, const std::string& text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out)
        throw IoError(path.string() + ": write failed");
}

nlohmann::json logJson(const std::vector<TrainLogEntry>& log)
{
    nlohmann::json a = nlohmann::json::array();
    for (const TrainLogEntry& e : log)
        a.push_back({{"step", e.step}, {"loss", e.loss}, {"aux_loss", e.auxLoss}, {"lr", e.lr},
                     {"grad_norm", e.gradNorm}, {"seconds", e.seconds}});
    return a;
}

} // namespace

std::string saveTrainState(const std::string& stateDir, const TrainState& st, int keep)
{
    const fs::path root(stateDir);
    fs::create_directories(root);
    char name[32];
    std::snprintf(name, sizeof name, "step-%08lld", (long long)st.step);
    const fs::path final = root / name;
    const fs::path tmp = root / (std::string(".tmp-") + name + "." + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    try {
        {
            SafetensorsWriter writer((tmp / "state.safetensors").string(), {{"format", kFormat}});
            std::vector<std::pair<std::string, at::Tensor>> all;
            for (const auto& [n, t] : st.tensors)
                all.emplace_back(n, t.detach().to(at::kFloat).contiguous());
            all.emplace_back("torch_rng", st.torchRng.contiguous());
            for (const auto& [n, t] : all)
                writer.declare(n, t.scalar_type() == at::kByte ? DType::U8 : DType::F32, t.sizes().vec());
            for (const auto& [n, t] : all)
                writer.write(n, t.data_ptr(), uint64_t(t.nbytes()));
            writer.commit();
        }
        nlohmann::json j = {{"format", kFormat},
                            {"step", st.step},
                            {"sampler_rng", st.samplerRng},
                            {"loss_acc", st.lossAcc},
                            {"aux_acc", st.auxAcc},
                            {"acc_n", st.accN},
                            {"seconds", st.seconds},
                            {"fingerprint", nlohmann::json::parse(st.fingerprint)},
                            {"sessions", nlohmann::json::parse(st.sessions)},
                            {"log", logJson(st.log)}};
        writeFile(tmp / "state.json", j.dump(1) + "\n");
        fs::remove_all(final, ec);
        fs::rename(tmp, final);
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
    std::vector<fs::path> dirs = stepDirs(root);
    for (size_t i = 0; i + size_t(std::max(1, keep)) < dirs.size(); ++i)
        fs::remove_all(dirs[i], ec);
    return final.string();
}

TrainState loadTrainState(const std::string& dir)
{
    fs::path snap(dir);
    if (!fs::exists(snap / "state.json")) {
        const std::vector<fs::path> dirs = stepDirs(snap);
        if (dirs.empty())
            throw InputError(dir + ": no training-state snapshot (step-*/state.json) to resume from");
        snap = dirs.back();
    }
    const fs::path jsonPath = snap / "state.json";
    std::ifstream in(jsonPath, std::ios::binary);
    if (!in)
        throw IoError(jsonPath.string() + ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
        throw InputError(jsonPath.string(), std::string("not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object() || j.value("format", "") != kFormat)
        throw InputError(jsonPath.string(), std::string("not a ") + kFormat + " file");
    TrainState st;
    st.path = snap.string();
    try {
        st.step = j.at("step").get<int64_t>();
        st.samplerRng = j.at("sampler_rng").get<std::string>();
        st.lossAcc = j.at("loss_acc").get<double>();
        st.auxAcc = j.at("aux_acc").get<double>();
        st.accN = j.at("acc_n").get<int64_t>();
        st.seconds = j.at("seconds").get<double>();
        st.fingerprint = j.at("fingerprint").dump();
        st.sessions = j.at("sessions").dump();
        for (const auto& e : j.at("log"))
            st.log.push_back({e.at("step").get<int64_t>(), e.at("loss").get<double>(), e.at("aux_loss").get<double>(),
                              e.at("lr").get<double>(), e.at("grad_norm").get<double>(), e.at("seconds").get<double>()});
    } catch (const nlohmann::json::exception& e) {
        throw InputError(jsonPath.string(), std::string("missing or bad field (") + e.what() + ")");
    }
    const auto file = SafetensorsFile::open((snap / "state.safetensors").string());
    for (const TensorInfo& t : file->tensors()) {
        const bool rng = t.name == "torch_rng";
        MOEWB_CHECK(t.dtype == (rng ? DType::U8 : DType::F32), (snap / "state.safetensors").string(), "tensor ", t.name,
                    " has dtype ", dtypeName(t.dtype));
        const at::Tensor view = at::from_blob(const_cast<uint8_t*>(file->data(t)), t.shape,
                                              at::TensorOptions().dtype(rng ? at::kByte : at::kFloat));
        if (rng)
            st.torchRng = view.clone();
        else
            st.tensors[t.name] = view.clone();
    }
    MOEWB_CHECK(st.torchRng.defined(), (snap / "state.safetensors").string(), "no torch_rng tensor");
    return st;
}

bool hasTrainState(const std::string& stateDir)
{
    return !stepDirs(stateDir).empty();
}

void removeTrainStates(const std::string& stateDir)
{
    std::error_code ec;
    for (const fs::path& d : stepDirs(stateDir))
        fs::remove_all(d, ec);
}

void checkFingerprint(const std::string& snapshot, const std::string& saved, const std::string& now)
{
    const nlohmann::json a = nlohmann::json::parse(saved), b = nlohmann::json::parse(now);
    for (auto it = b.begin(); it != b.end(); ++it) {
        const auto old = a.find(it.key());
        if (old == a.end() || *old != it.value())
            throw InputError(snapshot + "/state.json", "resumed run differs in " + it.key() + ": snapshot "
                                 + (old == a.end() ? std::string("has none") : old->dump()) + ", now " + it.value().dump());
    }
}

} // namespace moewb
