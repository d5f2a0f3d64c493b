// SPDX-License-Identifier: MIT
// Peak RSS of `moewb eval --kld-ref` (engine/eval/kld.cpp) with a 151,936-token vocabulary (the
// Qwen2/Qwen3 tokenizer's), for a short and a 4x longer text: KL divergence must hold one window's
// logits per model at a time, never all logits of the text (docs/evaluation.md).
//
//   bench_kld_rss [DIR=/tmp/moewb-kld-rss] [CTX=1024] [WINDOWS=4]
// Two checkpoints (reference and a perturbed copy) are written once into DIR and reused; each
// measurement runs in a fresh child process, so writing them does not count. The reference cache
// goes to $TMPDIR (scored tokens x vocabulary x 4 bytes on disk).
#include "moewb/eval/kld.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/model/runtime.h"
#include "moewb/safetensors/safetensors.h"

#include <ATen/ATen.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace moewb;
namespace fs = std::filesystem;

namespace {
constexpr int64_t H = 256, V = 151936;

void writeModel(const std::string& dir, uint64_t seed)
{
    fs::create_directories(dir);
    const std::string config = R"({"architectures":["MixtralForCausalLM"],"model_type":"mixtral",
 "hidden_size":256,"intermediate_size":256,"num_hidden_layers":2,"num_attention_heads":8,
 "num_key_value_heads":4,"num_local_experts":8,"num_experts_per_tok":2,"rms_norm_eps":1e-5,
 "rope_theta":1000000.0,"vocab_size":151936,"max_position_embeddings":32768,"tie_word_embeddings":false,
 "hidden_act":"silu","torch_dtype":"float32"})";
    std::ofstream(dir + "/config.json") << config;
    const std::vector<TensorSpec> specs = expectedTensors(parseConfigJson(config, dir + "/config.json"));
    at::manual_seed(seed);
    SafetensorsWriter w(dir + "/model.safetensors");
    for (const TensorSpec& t : specs)
        w.declare(t.name, DType::F32, t.shape);
    for (const auto& [n, s] : specs) {
        const at::Tensor t = s.size() == 1 ? at::ones(s) : at::randn(s) * 0.05;
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

int measure(const std::string& dir, int64_t ctx, int64_t windows)
{
    initRuntime(false);
    const double base = maxRssGiB();
    const int64_t tokens = ctx * windows;
    at::manual_seed(1);
    const at::Tensor t = at::randint(0, V, {tokens}, at::TensorOptions().dtype(at::kInt));
    const std::vector<int32_t> ids(t.data_ptr<int32_t>(), t.data_ptr<int32_t>() + tokens);
    PerplexityOptions opt;
    opt.ctx = ctx;
    opt.dtype = "f32";
    const KldReference ref(dir + "/ref", ids, opt, {}, "");
    const double afterRef = maxRssGiB();
    const KldResult r = evaluateKld(dir + "/model", ref, opt, {});
    const double peak = maxRssGiB();
    const double gib = double(1 << 30);
    const double weights = double(2 * V * H) * 4 / gib; // embedding + lm_head dominate
    const double windowLogits = double(ctx * V) * 4 / gib;
    const double allLogits = double(tokens * V) * 4 / gib;
    std::printf("%lld windows of %lld tokens (%lld tokens), vocabulary %lld: mean KLD %.4f, same top %.1f %%\n",
                (long long)windows, (long long)ctx, (long long)tokens, (long long)V, r.meanKld, 100.0 * r.sameTop);
    std::printf("  baseline RSS %.2f GiB; peak after the reference pass %.2f GiB, after both %.2f GiB "
                "(%.2f GiB above baseline)\n",
                base, afterRef, peak, peak - base);
    std::printf("  embedding + lm_head %.2f GiB; one window's logits (f32) %.2f GiB; all logits of the text "
                "(f32) %.2f GiB\n",
                weights, windowLogits, allLogits);
    std::printf("  (peak above baseline - weights) / one window's logits: %.2fx; / all logits: %.2fx\n",
                (peak - base - weights) / windowLogits, (peak - base - weights) / allLogits);
    return 0;
}

int runChild(const char* self, const std::string& dir, const std::string& ctx, const std::string& windows)
{
    const pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", self, "--measure", dir.c_str(), ctx.c_str(), windows.c_str(), (char*)nullptr);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
} // namespace

int main(int argc, char** argv)
{
    if (argc > 4 && std::string(argv[1]) == "--measure")
        return measure(argv[2], std::atoll(argv[3]), std::atoll(argv[4]));
    const std::string dir = argc > 1 ? argv[1] : "/tmp/moewb-kld-rss";
    const std::string ctx = argc > 2 ? argv[2] : "1024";
    const int64_t windows = argc > 3 ? std::atoll(argv[3]) : 4;
    if (!fs::exists(dir + "/model/model.safetensors")) {
        std::printf("writing two 2-layer Mixtral-shaped checkpoints (hidden %lld, vocabulary %lld) to %s ...\n",
                    (long long)H, (long long)V, dir.c_str());
        at::NoGradGuard g;
        writeModel(dir + "/ref", 0);
        writeModel(dir + "/model", 7);
    }
    // The same model on a text 4x as long: the peak must not grow with the text.
    const int a = runChild(argv[0], dir, ctx, std::to_string(windows));
    const int b = runChild(argv[0], dir, ctx, std::to_string(4 * windows));
    return a != 0 ? a : b;
}
