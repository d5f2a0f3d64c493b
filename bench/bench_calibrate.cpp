// SPDX-License-Identifier: MIT
// Overhead of the calibration observers (#6) over the plain streaming forward, measured in one
// run on the same data, on a synthetic mid-size Mixtral-shaped checkpoint (bf16, hidden 1024,
// 8 experts of width 2816, top-2, 4 layers, ~0.3 GB), written once to DIR and reused.
//
//   bench_calibrate [DIR=/tmp/moewb-calib-model] [SAMPLES=16] [SEQ_LEN=512] [REPS=3]
// Prints the best of REPS wall times (runs interleaved) of: the plain forward; calibration without
// the correlation probe (routing, block cosine, activations, outlier scores); the same without
// outlier scores; and the probe's extra cost on its own. Goal: calibration / plain ≤ 1.15.
#include "calib/calibrator.h"
#include "model/streamer.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/model/runtime.h"

#include <ATen/ATen.h>

#include "bench_timer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

using namespace moewb;
namespace fs = std::filesystem;

namespace {
constexpr int64_t H = 1024, I = 2816, E = 8, L = 4, V = 4096;

void writeModel(const std::string& dir)
{
    fs::create_directories(dir);
    const std::string config = R"({"architectures":["MixtralForCausalLM"],"model_type":"mixtral",
 "hidden_size":1024,"intermediate_size":2816,"num_hidden_layers":4,"num_attention_heads":16,
 "num_key_value_heads":4,"num_local_experts":8,"num_experts_per_tok":2,"rms_norm_eps":1e-5,
 "rope_theta":1000000.0,"vocab_size":4096,"max_position_embeddings":32768,"tie_word_embeddings":false,
 "hidden_act":"silu","torch_dtype":"bfloat16"})";
    std::ofstream(dir + "/config.json") << config;
    // Every tensor the architecture needs, named and shaped by config.json (as the loader expects).
    const std::vector<TensorSpec> specs = expectedTensors(parseConfigJson(config, dir + "/config.json"));
    SafetensorsWriter w(dir + "/model.safetensors");
    for (const TensorSpec& t : specs)
        w.declare(t.name, DType::BF16, t.shape);
    at::manual_seed(1);
    for (const auto& [n, s] : specs) {
        const at::Tensor t = s.size() == 1 ? at::ones(s, at::kBFloat16)
                                           : (at::randn(s) / std::sqrt(double(s[1]))).to(at::kBFloat16).contiguous();
        w.write(n, t.data_ptr(), uint64_t(t.nbytes()));
    }
    w.commit();
}

using bench::seconds;
} // namespace

int main(int argc, char** argv)
{
    const std::string dir = argc > 1 ? argv[1] : "/tmp/moewb-calib-model";
    const int64_t samples = argc > 2 ? std::atoll(argv[2]) : 16, seqLen = argc > 3 ? std::atoll(argv[3]) : 512;
    const RuntimeInfo rt = initRuntime(true);
    if (!fs::exists(dir + "/model.safetensors")) {
        std::printf("writing %s ...\n", dir.c_str());
        writeModel(dir);
    }
    const Model model(dir);
    at::Generator gen = at::detail::createCPUGenerator(3);
    std::vector<at::Tensor> seqs;
    for (int64_t i = 0; i < samples; ++i)
        seqs.push_back(at::randint(0, V, {seqLen}, gen, at::TensorOptions().dtype(at::kLong)));
    const TokenLayout layout = layoutOf(seqs);
    StreamOptions so;
    so.dtype = at::kBFloat16;

    CalibrateOptions base;
    base.dtype = "bf16";
    base.probeTokens = 0;
    CalibrateOptions noOutlier = base;
    noOutlier.outlierScores = false;
    CalibrateOptions probe = base;
    probe.probeTokens = 256;

    double plain = 1e30, calib = 1e30, calibNoOut = 1e30, calibProbe = 1e30;
    const int reps = argc > 4 ? std::atoi(argv[4]) : 3;
    for (int rep = 0; rep < reps; ++rep) {
        plain = std::min(plain, seconds([&] { model.run(seqs, so, [](size_t, const at::Tensor&) {}); }));
        calib = std::min(calib, seconds([&] { runCalibration(model, seqs, layout, base); }));
        calibNoOut = std::min(calibNoOut, seconds([&] { runCalibration(model, seqs, layout, noOutlier); }));
        calibProbe = std::min(calibProbe, seconds([&] { runCalibration(model, seqs, layout, probe); }));
    }
    const double tokens = double(samples * seqLen);
    std::printf("model: Mixtral-shaped bf16, hidden %lld, %lld experts x %lld, top-2, %lld layers; %lld x %lld tokens; "
                "%d threads\n",
                (long long)H, (long long)E, (long long)I, (long long)L, (long long)samples, (long long)seqLen, rt.threads);
    std::printf("plain streaming forward     %7.3f s  (%.0f tok/s)\n", plain, tokens / plain);
    std::printf("calibrate (no probe)        %7.3f s  ratio %.3f  (goal <= 1.15)\n", calib, calib / plain);
    std::printf("  of which outlier scores   %7.3f s  (ratio without them %.3f)\n", calib - calibNoOut,
                calibNoOut / plain);
    std::printf("correlation probe, 256 tok  %7.3f s extra (ratio with probe %.3f)\n", calibProbe - calib,
                calibProbe / plain);
    return 0;
}
