// SPDX-License-Identifier: MIT
// Peak RSS of layer streaming on a 4-layer full-width synthetic Mixtral-8x7B-shaped checkpoint
// (bf16, ~11.7 GB on disk), compared with one layer's weights + the hidden states.
//
//   bench_stream_rss [DIR=/tmp/moewb-rss-model] [TOKENS=512]
// The checkpoint is written once (streaming, tensor by tensor) and reused; the measurement runs
// in a fresh child process so that writing it does not count.
#include "model/streamer.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/safetensors/safetensors.h"
#include "moewb/model/runtime.h"

#include <ATen/ATen.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace moewb;
namespace fs = std::filesystem;

namespace {
constexpr int64_t H = 4096, I = 14336, E = 8, L = 4, V = 32000, KV = 1024;

void writeModel(const std::string& dir)
{
    fs::create_directories(dir);
    const std::string config = R"({"architectures":["MixtralForCausalLM"],"model_type":"mixtral",
 "hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":4,"num_attention_heads":32,
 "num_key_value_heads":8,"num_local_experts":8,"num_experts_per_tok":2,"rms_norm_eps":1e-5,
 "rope_theta":1000000.0,"vocab_size":32000,"max_position_embeddings":32768,"tie_word_embeddings":false,
 "hidden_act":"silu","torch_dtype":"bfloat16"})";
    std::ofstream(dir + "/config.json") << config;
    // Every tensor the architecture needs, named and shaped by config.json (as the loader expects).
    const std::vector<TensorSpec> specs = expectedTensors(parseConfigJson(config, dir + "/config.json"));
    SafetensorsWriter w(dir + "/model.safetensors");
    for (const TensorSpec& t : specs)
        w.declare(t.name, DType::BF16, t.shape);
    for (const auto& [n, s] : specs) {
        const bool norm = s.size() == 1;
        const at::Tensor t = norm ? at::ones(s, at::kBFloat16) : (at::randn(s) * 0.02).to(at::kBFloat16);
        w.write(n, t.data_ptr(), uint64_t(t.nbytes()));
    }
    w.commit();
}

double maxRssGiB()
{
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / (1024.0 * 1024.0);
}

int measure(const std::string& dir, int64_t tokens)
{
    initRuntime(false);
    const double base = maxRssGiB();
    const Model model(dir);
    const at::Tensor ids = at::randint(0, V, {tokens}, at::TensorOptions().dtype(at::kLong));
    StreamOptions opt;
    opt.dtype = at::kBFloat16;
    double nll = 0;
    model.run({ids}, opt, [&](size_t, const at::Tensor& logits) { nll = logits.abs().mean().item<double>(); });
    const double layerGiB = double(3 * E * H * I + 2 * H * H + 2 * KV * H + E * H + 2 * H) * 2 / (1 << 30);
    const double hiddenGiB = double(tokens * H) * 2 / (1 << 30);
    const double logitsGiB = double(tokens * V) * 4 / (1 << 30);
    const double peak = maxRssGiB();
    std::printf("process baseline RSS (libtorch loaded): %.2f GiB\n", base);
    std::printf("peak RSS while streaming %lld layers, %lld tokens: %.2f GiB (%.2f GiB above baseline)\n",
                (long long)L, (long long)tokens, peak, peak - base);
    std::printf("one layer's weights %.2f GiB + hidden states %.3f GiB + logits %.3f GiB = %.2f GiB\n", layerGiB,
                hiddenGiB, logitsGiB, layerGiB + hiddenGiB + logitsGiB);
    std::printf("ratio (peak above baseline) / (layer + hidden + logits): %.2fx  [goal <= 1.3x]  (checksum %.4f)\n",
                (peak - base) / (layerGiB + hiddenGiB + logitsGiB), nll);
    return 0;
}
} // namespace

int main(int argc, char** argv)
{
    if (argc > 2 && std::string(argv[1]) == "--measure")
        return measure(argv[2], argc > 3 ? std::atoll(argv[3]) : 512);
    const std::string dir = argc > 1 ? argv[1] : "/tmp/moewb-rss-model";
    const std::string tokens = argc > 2 ? argv[2] : "512";
    if (!fs::exists(dir + "/model.safetensors")) {
        std::printf("writing a 4-layer full-width Mixtral-shaped checkpoint to %s ...\n", dir.c_str());
        at::NoGradGuard g;
        writeModel(dir);
    }
    const pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "--measure", dir.c_str(), tokens.c_str(), (char*)nullptr);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
