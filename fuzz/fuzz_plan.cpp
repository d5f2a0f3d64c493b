// SPDX-License-Identifier: MIT
// Plan JSON: parse, validate against a fixed small Mixtral-style model, expand, size, export to
// GPTQModel `dynamic`, and round-trip through planToJson (parse(write(p)) == p).
#include "fuzz_common.h"

#include "moewb/plan/plan.h"
#include "moewb/plan/gptq_dynamic.h"

#include <cstdlib>

namespace {
const moewb::ModelConfig& model()
{
    static const moewb::ModelConfig cfg = moewb::parseConfigJson(R"({
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 64,
        "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 300, "max_position_embeddings": 128, "num_local_experts": 4, "num_experts_per_tok": 2,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0})", "fuzz-model/config.json");
    return cfg;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    moewb::fuzz::expectCleanErrors([&] {
        const moewb::Plan plan = moewb::parsePlanJson(text, "plan.json");
        const moewb::Plan again = moewb::parsePlanJson(moewb::planToJson(plan), "plan.json(rewritten)");
        if (!(again == plan)) {
            std::fprintf(stderr, "fuzz: plan does not round-trip through planToJson\n");
            std::abort();
        }
        moewb::validatePlan(plan, model(), "plan.json");
        const std::vector<moewb::PlanEntry> entries = moewb::expandPlan(plan, model());
        (void)moewb::planSize(entries, model());
        const moewb::GptqExport ex = moewb::exportGptqDynamic(entries, moewb::listLinears(model()));
        (void)moewb::dynamicToJson(ex);
    });
    return 0;
}
