// SPDX-License-Identifier: MIT
// config.json parsing for every supported architecture, on the published configs of real
// checkpoints (tests/data/configs/*/config.json), plus one test per kind of bad input.
//
// The fixtures hold the published config.json values described in docs/formats.md §2 (keys the parser
// ignores, such as initializer_range, are kept so that the files look like the real ones).
#include "test_paths.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"

#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace moewb;
using json = nlohmann::json;

namespace {

std::string fixtureDir(const char* name)
{
    return (moewb::test::sourceDir() + QStringLiteral("/tests/data/configs/")).toStdString() + name;
}

json fixtureJson(const char* name)
{
    std::ifstream in(fixtureDir(name) + "/config.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
}

ModelConfig parse(const json& j)
{
    return parseConfigJson(j.dump(2), "test/config.json");
}

/// Runs parse(j) and returns the InputError message; fails the test if nothing is thrown.
std::string errorOf(const json& j)
{
    try {
        parse(j);
    } catch (const InputError& e) {
        return e.what();
    }
    return "<no error>";
}

#define VERIFY_MSG(msg, ...)                                                                       \
    do {                                                                                           \
        const std::string m_ = (msg);                                                              \
        for (const char* part : {__VA_ARGS__})                                                     \
            QVERIFY2(m_.find(part) != std::string::npos,                                           \
                     qPrintable(QString("'%1' lacks '%2'").arg(m_.c_str(), part)));                \
    } while (0)

std::map<LinearRole, int64_t> roleCounts(const std::vector<LinearInfo>& lin)
{
    std::map<LinearRole, int64_t> n;
    for (const auto& l : lin)
        ++n[l.role];
    return n;
}

const LinearInfo* findLinear(const std::vector<LinearInfo>& lin, const std::string& name)
{
    for (const auto& l : lin)
        if (l.name == name)
            return &l;
    return nullptr;
}

int64_t specCount(const std::vector<TensorSpec>& specs)
{
    int64_t n = 0;
    for (const auto& s : specs) {
        int64_t p = 1;
        for (int64_t d : s.shape)
            p *= d;
        n += p;
    }
    return n;
}

} // namespace

class TestHfConfig : public QObject {
    Q_OBJECT
private slots:
    // ---- the published configs ----------------------------------------------------------------

    void mixtral8x7b()
    {
        const ModelConfig c = loadConfig(fixtureDir("mixtral-8x7b"));
        QCOMPARE(int(c.arch), int(Arch::Mixtral));
        QCOMPARE(c.architecture, std::string("MixtralForCausalLM"));
        QCOMPARE(c.modelType, std::string("mixtral"));
        QCOMPARE(c.torchDtype, std::string("bfloat16"));
        QCOMPARE(c.hiddenSize, 4096);
        QCOMPARE(c.numLayers, 32);
        QCOMPARE(c.numHeads, 32);
        QCOMPARE(c.numKvHeads, 8);
        QCOMPARE(c.headDim, 128);
        QCOMPARE(c.vocabSize, 32000);
        QCOMPARE(c.maxPositionEmbeddings, 32768);
        QCOMPARE(c.numExperts, 8);
        QCOMPARE(c.topK, 2);
        QCOMPARE(c.intermediateSize, 14336);
        QCOMPARE(c.moeIntermediateSize, 14336);
        QVERIFY(c.normTopkProb); // no key: Mixtral always renormalizes
        QCOMPARE(c.topkNormEps, 0.0);
        QVERIFY(!c.hasSharedExpert());
        QVERIFY(!c.sharedExpertGate);
        QCOMPARE(c.rmsNormEps, 1e-5);
        QCOMPARE(c.ropeTheta, 1e6);
        QVERIFY(!c.tieWordEmbeddings);
        QVERIFY(!c.attentionBias);
        QCOMPARE(int(c.qkNorm), int(QkNorm::None));
        QCOMPARE(c.bosTokenId.value(), 1);
        QCOMPARE(c.eosTokenId.value(), 2);
        QVERIFY(!c.slidingWindow); // null in the published config
        QVERIFY(c.notes.empty());
        for (int64_t l = 0; l < 32; ++l)
            QVERIFY(c.isMoeLayer(l));
        QVERIFY(!c.isMoeLayer(32));
        QCOMPARE(layerRanges(c, true), std::string("0-31"));
        QCOMPARE(layerRanges(c, false), std::string());

        QCOMPARE(c.layerPrefix(3), std::string("model.layers.3"));
        QCOMPARE(c.attnLinear(3, "k_proj"), std::string("model.layers.3.self_attn.k_proj"));
        QCOMPARE(c.routerName(3), std::string("model.layers.3.block_sparse_moe.gate"));
        QCOMPARE(c.expertLinear(3, 7, "gate"), std::string("model.layers.3.block_sparse_moe.experts.7.w1"));
        QCOMPARE(c.expertLinear(3, 7, "up"), std::string("model.layers.3.block_sparse_moe.experts.7.w3"));
        QCOMPARE(c.expertLinear(3, 7, "down"), std::string("model.layers.3.block_sparse_moe.experts.7.w2"));

        // Per layer: 4 attention + 1 router + 8 experts × 3 = 29 linears; × 32 layers = 928.
        const auto lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 928);
        const auto n = roleCounts(lin);
        QCOMPARE(n.at(LinearRole::Router), 32);
        QCOMPARE(n.at(LinearRole::ExpertDown), 256);
        QCOMPARE(n.count(LinearRole::DenseGate), size_t(0));
        // Documented order within a layer: q k v o, router, expert 0 gate/up/down, expert 1 ...
        QCOMPARE(lin[0].name, std::string("model.layers.0.self_attn.q_proj"));
        QCOMPARE(lin[3].name, std::string("model.layers.0.self_attn.o_proj"));
        QCOMPARE(lin[4].name, std::string("model.layers.0.block_sparse_moe.gate"));
        QCOMPARE(lin[5].name, std::string("model.layers.0.block_sparse_moe.experts.0.w1"));
        QCOMPARE(lin[7].name, std::string("model.layers.0.block_sparse_moe.experts.0.w2"));
        QCOMPARE(lin[28].name, std::string("model.layers.0.block_sparse_moe.experts.7.w2"));
        QCOMPARE(lin[29].name, std::string("model.layers.1.self_attn.q_proj"));
        const LinearInfo* k = findLinear(lin, "model.layers.5.self_attn.k_proj");
        QVERIFY(k);
        QCOMPARE(k->layer, 5);
        QCOMPARE(k->inFeatures, 4096);
        QCOMPARE(k->outFeatures, 1024); // 8 kv heads × 128
        QVERIFY(!k->hasBias);
        const LinearInfo* r = findLinear(lin, "model.layers.5.block_sparse_moe.gate");
        QCOMPARE(r->outFeatures, 8);
        QCOMPARE(r->inFeatures, 4096);
        const LinearInfo* w2 = findLinear(lin, "model.layers.31.block_sparse_moe.experts.6.w2");
        QVERIFY(w2);
        QCOMPARE(w2->expert, 6);
        QCOMPARE(int(w2->role), int(LinearRole::ExpertDown));
        QCOMPARE(w2->inFeatures, 14336);
        QCOMPARE(w2->outFeatures, 4096);

        // Mixtral-8x7B, the published 46.7B:
        //   embed + lm_head      2 × 32000 × 4096                       =    262,144,000
        //   final norm                                                  =          4,096
        //   per layer: q, o      2 × 4096 × 4096                        =     33,554,432
        //              k, v      2 × 1024 × 4096                        =      8,388,608
        //              norms     2 × 4096                               =          8,192
        //              router    8 × 4096                               =         32,768
        //              experts   8 × 3 × 14336 × 4096                   =  1,409,286,144
        //              layer total                                      =  1,451,270,144
        //   32 layers                                                   = 46,440,644,608
        //   total                                                       = 46,702,792,704
        QCOMPARE(parameterCount(c), int64_t(46702792704));
        const auto specs = expectedTensors(c);
        QCOMPARE(specCount(specs), parameterCount(c));
        QCOMPARE(int64_t(specs.size()), 1 + 32 * (2 + 29) + 2);
        QCOMPARE(specs.front().name, std::string("model.embed_tokens.weight"));
        QCOMPARE(specs.back().name, std::string("lm_head.weight"));
        QCOMPARE(specs.back().shape, (std::vector<int64_t>{32000, 4096}));
    }

    void qwen15MoeA27b()
    {
        const ModelConfig c = loadConfig(fixtureDir("qwen1.5-moe-a2.7b") + "/config.json");
        QCOMPARE(int(c.arch), int(Arch::Qwen2Moe));
        QCOMPARE(c.hiddenSize, 2048);
        QCOMPARE(c.numLayers, 24);
        QCOMPARE(c.numHeads, 16);
        QCOMPARE(c.numKvHeads, 16);
        QCOMPARE(c.headDim, 128);
        QCOMPARE(c.numExperts, 60);
        QCOMPARE(c.topK, 4);
        QCOMPARE(c.intermediateSize, 5632);
        QCOMPARE(c.moeIntermediateSize, 1408);
        QCOMPARE(c.sharedIntermediateSize, 5632);
        QVERIFY(c.hasSharedExpert());
        QVERIFY(c.sharedExpertGate);
        QVERIFY(!c.normTopkProb);
        QVERIFY(c.attentionBias); // no key: hard-wired q/k/v bias
        QVERIFY(!c.oProjBias);
        QCOMPARE(c.decoderSparseStep, 1);
        QVERIFY(c.mlpOnlyLayers.empty());
        QCOMPARE(c.ropeTheta, 1e6);
        QCOMPARE(c.vocabSize, 151936);
        QVERIFY(!c.slidingWindow); // use_sliding_window false
        for (int64_t l = 0; l < 24; ++l)
            QVERIFY(c.isMoeLayer(l));

        QCOMPARE(c.routerName(0), std::string("model.layers.0.mlp.gate"));
        QCOMPARE(c.expertLinear(2, 59, "up"), std::string("model.layers.2.mlp.experts.59.up_proj"));
        QCOMPARE(c.sharedLinear(2, "gate"), std::string("model.layers.2.mlp.shared_expert.gate_proj"));
        QCOMPARE(c.sharedLinear(2, "down"), std::string("model.layers.2.mlp.shared_expert.down_proj"));
        QCOMPARE(c.sharedGateName(2), std::string("model.layers.2.mlp.shared_expert_gate"));

        // Per layer: 4 + router + 60 × 3 + shared 3 + shared gate = 189; × 24 = 4536.
        const auto lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 4536);
        QCOMPARE(lin[185].name, std::string("model.layers.0.mlp.shared_expert.gate_proj"));
        QCOMPARE(lin[187].name, std::string("model.layers.0.mlp.shared_expert.down_proj"));
        QCOMPARE(lin[188].name, std::string("model.layers.0.mlp.shared_expert_gate"));
        QCOMPARE(int(lin[188].role), int(LinearRole::SharedGate));
        QCOMPARE(lin[188].outFeatures, 1);
        QCOMPARE(lin[188].inFeatures, 2048);
        QVERIFY(lin[0].hasBias && lin[1].hasBias && lin[2].hasBias && !lin[3].hasBias);
        const LinearInfo* sd = findLinear(lin, "model.layers.9.mlp.shared_expert.down_proj");
        QCOMPARE(sd->inFeatures, 5632);
        QCOMPARE(sd->outFeatures, 2048);
        QCOMPARE(int(sd->role), int(LinearRole::SharedDown));
        const auto n = roleCounts(lin);
        QCOMPARE(n.at(LinearRole::SharedGateProj), 24);
        QCOMPARE(n.at(LinearRole::ExpertGate), 24 * 60);

        // Qwen1.5-MoE-A2.7B, the published 14.3B:
        //   embed + lm_head      2 × 151936 × 2048                       =    622,329,856
        //   final norm                                                   =          2,048
        //   per layer: q,k,v,o   4 × 2048 × 2048                         =     16,777,216
        //              q,k,v bias 3 × 2048                               =          6,144
        //              norms     2 × 2048                                =          4,096
        //              router    60 × 2048                               =        122,880
        //              experts   60 × 3 × 1408 × 2048                    =    519,045,120
        //              shared    3 × 5632 × 2048                         =     34,603,008
        //              shared gate 1 × 2048                              =          2,048
        //              layer total                                       =    570,560,512
        //   24 layers                                                    = 13,693,452,288
        //   total                                                        = 14,315,784,192
        QCOMPARE(parameterCount(c), int64_t(14315784192));
        const auto specs = expectedTensors(c);
        QCOMPARE(specCount(specs), parameterCount(c));
        bool sawBias = false;
        for (const auto& s : specs)
            if (s.name == "model.layers.0.self_attn.v_proj.bias") {
                sawBias = true;
                QCOMPARE(s.shape, std::vector<int64_t>{2048});
            }
        QVERIFY(sawBias);
    }

    void qwen3_30bA3b()
    {
        const ModelConfig c = loadConfig(fixtureDir("qwen3-30b-a3b"));
        QCOMPARE(int(c.arch), int(Arch::Qwen3Moe));
        QCOMPARE(c.headDim, 128); // explicit, ≠ 2048 / 32
        QCOMPARE(c.numHeads, 32);
        QCOMPARE(c.numKvHeads, 4);
        QCOMPARE(c.numExperts, 128);
        QCOMPARE(c.topK, 8);
        QCOMPARE(c.moeIntermediateSize, 768);
        QCOMPARE(c.intermediateSize, 6144);
        QVERIFY(c.normTopkProb);
        QVERIFY(!c.hasSharedExpert());
        QVERIFY(!c.attentionBias);
        QCOMPARE(int(c.qkNorm), int(QkNorm::PerHead));
        QCOMPARE(c.maxPositionEmbeddings, 40960);
        QCOMPARE(c.eosTokenId.value(), 151645);

        const auto lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 48 * (4 + 1 + 128 * 3));
        QCOMPARE(lin[0].outFeatures, 4096); // q: 32 × 128
        QCOMPARE(lin[0].inFeatures, 2048);
        QCOMPARE(lin[1].outFeatures, 512); // k: 4 × 128
        QCOMPARE(lin[3].inFeatures, 4096); // o
        QCOMPARE(lin[3].outFeatures, 2048);
        QCOMPARE(lin[4].outFeatures, 128); // router

        const auto specs = expectedTensors(c);
        bool sawQNorm = false;
        for (const auto& s : specs)
            if (s.name == "model.layers.47.self_attn.q_norm.weight") {
                sawQNorm = true;
                QCOMPARE(s.shape, std::vector<int64_t>{128});
            }
        QVERIFY(sawQNorm);

        // Qwen3-30B-A3B, the published 30.5B:
        //   embed + lm_head      2 × 151936 × 2048                        =    622,329,856
        //   final norm                                                    =          2,048
        //   per layer: q, o      2 × 4096 × 2048                          =     16,777,216
        //              k, v      2 × 512 × 2048                           =      2,097,152
        //              q/k norm  2 × 128                                  =            256
        //              norms     2 × 2048                                 =          4,096
        //              router    128 × 2048                               =        262,144
        //              experts   128 × 3 × 768 × 2048                     =    603,979,776
        //              layer total                                        =    623,120,640
        //   48 layers                                                     = 29,909,790,720
        //   total                                                         = 30,532,122,624
        QCOMPARE(parameterCount(c), int64_t(30532122624));
        QCOMPARE(specCount(specs), parameterCount(c));
    }

    void qwen3Defaults()
    {
        // Absent keys take the Qwen3MoeConfig class defaults: norm_topk_prob false (unlike the
        // released checkpoints), decoder_sparse_step 1, mlp_only_layers [].
        json j = fixtureJson("qwen3-30b-a3b");
        j.erase("norm_topk_prob");
        j.erase("decoder_sparse_step");
        j.erase("mlp_only_layers");
        j.erase("rope_theta");
        j.erase("rms_norm_eps");
        j.erase("max_position_embeddings");
        const ModelConfig c = parse(j);
        QVERIFY(!c.normTopkProb);
        QCOMPARE(c.decoderSparseStep, 1);
        QVERIFY(c.mlpOnlyLayers.empty());
        QCOMPARE(c.ropeTheta, 10000.0);
        QCOMPARE(c.rmsNormEps, 1e-6);
        QCOMPARE(c.maxPositionEmbeddings, 32768);
        QVERIFY(c.isMoeLayer(0));
    }

    void qwenSparseLayers()
    {
        json j = fixtureJson("qwen3-30b-a3b");
        j["mlp_only_layers"] = {0, 47};
        ModelConfig c = parse(j);
        QVERIFY(!c.isMoeLayer(0));
        QVERIFY(c.isMoeLayer(1));
        QVERIFY(!c.isMoeLayer(47));
        QCOMPARE(layerRanges(c, true), std::string("1-46"));
        QCOMPARE(layerRanges(c, false), std::string("0,47"));
        QCOMPARE(c.denseLinear(0, "gate"), std::string("model.layers.0.mlp.gate_proj"));
        auto lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 2 * 7 + 46 * (4 + 1 + 384));
        QCOMPARE(lin[4].name, std::string("model.layers.0.mlp.gate_proj"));
        QCOMPARE(lin[4].outFeatures, 6144); // dense width = intermediate_size
        QCOMPARE(lin[6].name, std::string("model.layers.0.mlp.down_proj"));
        QCOMPARE(lin[6].inFeatures, 6144);
        QCOMPARE(specCount(expectedTensors(c)), parameterCount(c));

        // (i + 1) % decoder_sparse_step == 0: step 2 makes the odd layers MoE.
        j["mlp_only_layers"] = json::array();
        j["decoder_sparse_step"] = 2;
        c = parse(j);
        QVERIFY(!c.isMoeLayer(0));
        QVERIFY(c.isMoeLayer(1));
        QVERIFY(!c.isMoeLayer(2));
        QVERIFY(c.isMoeLayer(47));
        lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 24 * 7 + 24 * (4 + 1 + 384));

        j["mlp_only_layers"] = {48};
        VERIFY_MSG(errorOf(j), "test/config.json: ", "mlp_only_layers", "48");
        j["mlp_only_layers"] = {1, "2"};
        VERIFY_MSG(errorOf(j), "test/config.json: ", "key 'mlp_only_layers' must be a list of integers");
        j["mlp_only_layers"] = json::array();
        j["decoder_sparse_step"] = 0;
        VERIFY_MSG(errorOf(j), "test/config.json: ", "key 'decoder_sparse_step' must be positive");
    }

    void olmoe1b7b()
    {
        const ModelConfig c = loadConfig(fixtureDir("olmoe-1b-7b-0924"));
        QCOMPARE(int(c.arch), int(Arch::Olmoe));
        QCOMPARE(c.numExperts, 64);
        QCOMPARE(c.topK, 8);
        QCOMPARE(c.moeIntermediateSize, 1024);
        QVERIFY(!c.normTopkProb);
        QCOMPARE(int(c.qkNorm), int(QkNorm::Whole));
        QVERIFY(!c.clipQkv);
        QCOMPARE(c.rmsNormEps, 1e-5);
        QCOMPARE(c.ropeTheta, 10000.0);
        QCOMPARE(c.vocabSize, 50304);
        QVERIFY(!c.bosTokenId); // OlmoeConfig has no BOS
        QCOMPARE(c.eosTokenId.value(), 50279);
        QCOMPARE(c.expertLinear(15, 63, "down"), std::string("model.layers.15.mlp.experts.63.down_proj"));
        const auto lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 16 * (4 + 1 + 192));
        const LinearInfo* d = findLinear(lin, "model.layers.15.mlp.experts.63.down_proj");
        QCOMPARE(d->inFeatures, 1024);
        QCOMPARE(d->outFeatures, 2048);

        // OLMoE-1B-7B-0924, the published 6.92B:
        //   embed + lm_head      2 × 50304 × 2048                        =   206,045,184
        //   final norm                                                   =         2,048
        //   per layer: q,k,v,o   4 × 2048 × 2048                         =    16,777,216
        //              q/k norm  2048 + 2048 (whole projections)         =         4,096
        //              norms     2 × 2048                                =         4,096
        //              router    64 × 2048                               =       131,072
        //              experts   64 × 3 × 1024 × 2048                    =   402,653,184
        //              layer total                                       =   419,569,664
        //   16 layers                                                    = 6,713,114,624
        //   total                                                        = 6,919,161,856
        QCOMPARE(parameterCount(c), int64_t(6919161856));
        QCOMPARE(specCount(expectedTensors(c)), parameterCount(c));

        json j = fixtureJson("olmoe-1b-7b-0924");
        j["clip_qkv"] = 8.0;
        QCOMPARE(parse(j).clipQkv.value(), 8.0);
        j["clip_qkv"] = "8";
        VERIFY_MSG(errorOf(j), "test/config.json: ", "key 'clip_qkv' must be a number");
    }

    void deepseekMoe16b()
    {
        const ModelConfig c = loadConfig(fixtureDir("deepseek-moe-16b-base"));
        QCOMPARE(int(c.arch), int(Arch::DeepseekMoe));
        QCOMPARE(c.numExperts, 64);
        QCOMPARE(c.topK, 6);
        QCOMPARE(c.numSharedExperts, 2);
        QCOMPARE(c.moeIntermediateSize, 1408);
        QCOMPARE(c.sharedIntermediateSize, 2816); // 1408 × 2, one merged MLP
        QCOMPARE(c.intermediateSize, 10944);
        QVERIFY(c.hasSharedExpert());
        QVERIFY(!c.sharedExpertGate);
        QVERIFY(!c.normTopkProb);
        QCOMPARE(c.topkNormEps, 1e-20);
        QCOMPARE(c.firstKDenseReplace, 1);
        QCOMPARE(c.moeLayerFreq, 1);
        QCOMPARE(c.ropeTheta, 10000.0); // written as the integer 10000
        QCOMPARE(c.bosTokenId.value(), 100000);
        QVERIFY(!c.isMoeLayer(0));
        for (int64_t l = 1; l < 28; ++l)
            QVERIFY(c.isMoeLayer(l));
        QCOMPARE(layerRanges(c, true), std::string("1-27"));
        QCOMPARE(layerRanges(c, false), std::string("0"));

        QCOMPARE(c.routerName(1), std::string("model.layers.1.mlp.gate"));
        QCOMPARE(c.sharedLinear(1, "up"), std::string("model.layers.1.mlp.shared_experts.up_proj"));
        QCOMPARE(c.denseLinear(0, "down"), std::string("model.layers.0.mlp.down_proj"));

        // Layer 0: 4 + 3 dense; layers 1..27: 4 + router + 64 × 3 + 3 shared = 200.
        const auto lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 7 + 27 * 200);
        QCOMPARE(lin[4].name, std::string("model.layers.0.mlp.gate_proj"));
        QCOMPARE(int(lin[4].role), int(LinearRole::DenseGate));
        QCOMPARE(lin[4].outFeatures, 10944);
        QCOMPARE(lin[7].name, std::string("model.layers.1.self_attn.q_proj"));
        QCOMPARE(lin[11].name, std::string("model.layers.1.mlp.gate"));
        QCOMPARE(lin[12].name, std::string("model.layers.1.mlp.experts.0.gate_proj"));
        QCOMPARE(lin[204].name, std::string("model.layers.1.mlp.shared_experts.gate_proj"));
        QCOMPARE(lin[204].outFeatures, 2816);
        QCOMPARE(lin[206].name, std::string("model.layers.1.mlp.shared_experts.down_proj"));
        QCOMPARE(lin[206].inFeatures, 2816);
        const auto n = roleCounts(lin);
        QCOMPARE(n.count(LinearRole::SharedGate), size_t(0));
        QCOMPARE(n.at(LinearRole::DenseUp), 1);

        // deepseek-moe-16b-base, the published 16.4B:
        //   embed + lm_head      2 × 102400 × 2048                        =    419,430,400
        //   final norm                                                    =          2,048
        //   every layer: q,k,v,o 4 × 2048 × 2048                          =     16,777,216
        //                norms   2 × 2048                                 =          4,096
        //   layer 0 dense MLP    3 × 10944 × 2048                         =     67,239,936
        //   layers 1..27: router 64 × 2048                                =        131,072
        //                experts 64 × 3 × 1408 × 2048                     =    553,648,128
        //                shared  3 × 2816 × 2048                          =     17,301,504
        //   layer 0 total        16,777,216 + 4,096 + 67,239,936          =     84,021,248
        //   MoE layer total      16,777,216 + 4,096 + 131,072 + 553,648,128 + 17,301,504
        //                                                                 =    587,862,016
        //   27 MoE layers                                                 = 15,872,274,432
        //   total  419,430,400 + 2,048 + 84,021,248 + 15,872,274,432      = 16,375,728,128
        QCOMPARE(parameterCount(c), int64_t(16375728128));
        QCOMPARE(specCount(expectedTensors(c)), parameterCount(c));

        json j = fixtureJson("deepseek-moe-16b-base");
        j["moe_layer_freq"] = 2;
        const ModelConfig c2 = parse(j);
        QVERIFY(!c2.isMoeLayer(0));
        QVERIFY(!c2.isMoeLayer(1));
        QVERIFY(c2.isMoeLayer(2));
        QVERIFY(!c2.isMoeLayer(3));
        j["moe_layer_freq"] = 1;
        j.erase("n_shared_experts");
        const ModelConfig c3 = parse(j);
        QCOMPARE(c3.numSharedExperts, 0);
        QVERIFY(!c3.hasSharedExpert());
    }

    void llama2_7b()
    {
        const ModelConfig c = loadConfig(fixtureDir("llama-2-7b"));
        QCOMPARE(int(c.arch), int(Arch::Llama));
        QVERIFY(!c.isMoe());
        QVERIFY(!c.isMoeLayer(0));
        QCOMPARE(c.ropeTheta, 10000.0); // absent: LlamaConfig default
        QCOMPARE(c.rmsNormEps, 1e-5);
        QCOMPARE(c.torchDtype, std::string("float16"));
        QCOMPARE(layerRanges(c, false), std::string("0-31"));
        const auto lin = listLinears(c);
        QCOMPARE(int64_t(lin.size()), 32 * 7);
        QCOMPARE(lin[4].name, std::string("model.layers.0.mlp.gate_proj"));
        QCOMPARE(lin[5].name, std::string("model.layers.0.mlp.up_proj"));
        QCOMPARE(lin[6].name, std::string("model.layers.0.mlp.down_proj"));
        QCOMPARE(lin[6].inFeatures, 11008);
        // Llama-2-7B, the published 6.74B:
        //   embed + lm_head  2 × 32000 × 4096                  =   262,144,000
        //   final norm                                         =         4,096
        //   per layer: attention 4 × 4096 × 4096               =    67,108,864
        //              MLP       3 × 11008 × 4096              =   135,266,304
        //              norms     2 × 4096                      =         8,192
        //              layer total                             =   202,383,360
        //   32 layers                                          = 6,476,267,520
        //   total                                              = 6,738,415,616
        QCOMPARE(parameterCount(c), int64_t(6738415616));

        json j = fixtureJson("llama-2-7b");
        j["tie_word_embeddings"] = true;
        const ModelConfig tied = parse(j);
        QCOMPARE(parameterCount(tied), int64_t(6738415616) - 32000 * 4096);
        const auto specs = expectedTensors(tied);
        QCOMPARE(specs.back().name, std::string("model.norm.weight"));
        QCOMPARE(specCount(specs), parameterCount(tied));

        j["tie_word_embeddings"] = false;
        j["attention_bias"] = true;
        const ModelConfig biased = parse(j);
        QVERIFY(biased.attentionBias && biased.oProjBias);
        // q, k, v, o biases: 4 × 4096 per layer.
        QCOMPARE(parameterCount(biased), int64_t(6738415616) + 32 * 4 * 4096);
        QCOMPARE(specCount(expectedTensors(biased)), parameterCount(biased));
    }

    void denseVariants()
    {
        json j = fixtureJson("llama-2-7b");
        j["architectures"] = {"Qwen2ForCausalLM"};
        j["model_type"] = "qwen2";
        ModelConfig c = parse(j);
        QCOMPARE(int(c.arch), int(Arch::Qwen2));
        QVERIFY(c.attentionBias); // Qwen2 q/k/v bias is hard-wired
        QVERIFY(!c.oProjBias);
        QVERIFY(!c.bosTokenId || *c.bosTokenId == 1);
        j["qkv_bias"] = false;
        QVERIFY(!parse(j).attentionBias);

        j = fixtureJson("llama-2-7b");
        j["architectures"] = {"MistralForCausalLM"};
        j["model_type"] = "mistral";
        j["num_key_value_heads"] = 8;
        j["sliding_window"] = 4096;
        c = parse(j);
        QCOMPARE(int(c.arch), int(Arch::Mistral));
        QCOMPARE(c.numKvHeads, 8);
        QCOMPARE(c.slidingWindow.value(), 4096);
        QCOMPARE(c.notes.size(), size_t(1));
        VERIFY_MSG(c.notes[0], "sliding_window 4096");
        QCOMPARE(std::string(archName(c.arch)), std::string("MistralForCausalLM"));
    }

    void keyVariants()
    {
        // architectures absent: model_type decides.
        json j = fixtureJson("mixtral-8x7b");
        j.erase("architectures");
        ModelConfig c = parse(j);
        QCOMPARE(int(c.arch), int(Arch::Mixtral));
        QCOMPARE(c.architecture, std::string("MixtralForCausalLM"));

        // num_key_value_heads absent or null: equal to num_attention_heads; head_dim null: hidden / heads.
        j = fixtureJson("mixtral-8x7b");
        j.erase("num_key_value_heads");
        j["head_dim"] = nullptr;
        c = parse(j);
        QCOMPARE(c.numKvHeads, 32);
        QCOMPARE(c.headDim, 128);

        // rope_theta inside rope_parameters (newer configs).
        j = fixtureJson("mixtral-8x7b");
        j.erase("rope_theta");
        j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
        QCOMPARE(parse(j).ropeTheta, 500000.0);
        j.erase("rope_parameters");
        QCOMPARE(parse(j).ropeTheta, 1e6); // MixtralConfig default
        j["rope_scaling"] = {{"rope_type", "default"}};
        QCOMPARE(parse(j).ropeTheta, 1e6);

        // v5 "dtype", eos as a list, Mixtral sliding window noted.
        j = fixtureJson("mixtral-8x7b");
        j.erase("torch_dtype");
        j["dtype"] = "float32";
        j["eos_token_id"] = {2, 32000};
        j["sliding_window"] = 4096;
        c = parse(j);
        QCOMPARE(c.torchDtype, std::string("float32"));
        QCOMPARE(c.eosTokenId.value(), 2);
        QCOMPARE(c.slidingWindow.value(), 4096);
        QCOMPARE(c.notes.size(), size_t(1));

        // norm_topk_prob in a Mixtral config cannot turn renormalization off.
        j["norm_topk_prob"] = false;
        QVERIFY(parse(j).normTopkProb);

        // Qwen2-MoE attention bias keys.
        j = fixtureJson("qwen1.5-moe-a2.7b");
        j["qkv_bias"] = false;
        QVERIFY(!parse(j).attentionBias);
        j.erase("qkv_bias");
        j["attention_bias"] = false;
        QVERIFY(!parse(j).attentionBias);
    }

    // ---- errors: each names the file and the key ----------------------------------------------

    void errorMissingKey()
    {
        json j = fixtureJson("mixtral-8x7b");
        j.erase("num_local_experts");
        QCOMPARE(errorOf(j), std::string("test/config.json: missing required key 'num_local_experts'"));
        j = fixtureJson("deepseek-moe-16b-base");
        j.erase("n_routed_experts");
        QCOMPARE(errorOf(j), std::string("test/config.json: missing required key 'n_routed_experts'"));
        for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                                "intermediate_size", "num_experts_per_tok", "moe_intermediate_size"}) {
            j = fixtureJson("qwen3-30b-a3b");
            j.erase(key);
            QCOMPARE(errorOf(j), "test/config.json: missing required key '" + std::string(key) + "'");
        }
        j = fixtureJson("qwen1.5-moe-a2.7b");
        j["shared_expert_intermediate_size"] = nullptr;
        QCOMPARE(errorOf(j), std::string("test/config.json: missing required key 'shared_expert_intermediate_size'"));
    }

    void errorWrongType()
    {
        json j = fixtureJson("mixtral-8x7b");
        j["hidden_size"] = "4096";
        VERIFY_MSG(errorOf(j), "test/config.json: key 'hidden_size' must be an integer");
        j["hidden_size"] = 4096.5;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'hidden_size' must be an integer");
        j = fixtureJson("mixtral-8x7b");
        j["tie_word_embeddings"] = 0;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'tie_word_embeddings' must be a boolean");
        j = fixtureJson("mixtral-8x7b");
        j["rms_norm_eps"] = "1e-5";
        VERIFY_MSG(errorOf(j), "test/config.json: key 'rms_norm_eps' must be a number");
        j = fixtureJson("mixtral-8x7b");
        j["architectures"] = "MixtralForCausalLM";
        VERIFY_MSG(errorOf(j), "test/config.json: key 'architectures' must be a non-empty list");
        j = fixtureJson("mixtral-8x7b");
        j["num_experts_per_tok"] = true;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'num_experts_per_tok' must be an integer");
    }

    void errorUnknownArch()
    {
        json j = fixtureJson("deepseek-moe-16b-base");
        j["architectures"] = {"DeepseekV2ForCausalLM"};
        const std::string m = errorOf(j);
        VERIFY_MSG(m, "test/config.json: unsupported architecture 'DeepseekV2ForCausalLM'", "supported:",
                   "MixtralForCausalLM", "Qwen2ForCausalLM");
        j.erase("architectures");
        j["model_type"] = "deepseek_v2";
        VERIFY_MSG(errorOf(j), "test/config.json: unsupported architecture 'deepseek_v2'");
        j.erase("model_type");
        VERIFY_MSG(errorOf(j), "test/config.json: missing required key 'architectures'");
    }

    void errorRopeScaling()
    {
        json j = fixtureJson("qwen3-30b-a3b");
        j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
        VERIFY_MSG(errorOf(j), "test/config.json: rope_scaling type 'yarn' is not supported");
        j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
        VERIFY_MSG(errorOf(j), "test/config.json: rope_scaling type 'linear' is not supported");
        j.erase("rope_scaling");
        j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}};
        VERIFY_MSG(errorOf(j), "test/config.json: rope_parameters type 'llama3' is not supported");
        j.erase("rope_parameters");
        j["rope_theta"] = -1.0;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'rope_theta' must be positive");
    }

    void errorContradictoryHeads()
    {
        json j = fixtureJson("mixtral-8x7b");
        j["num_attention_heads"] = 30;
        j["num_key_value_heads"] = 10;
        VERIFY_MSG(errorOf(j), "test/config.json: ", "hidden_size 4096", "num_attention_heads 30",
                   "no head_dim");
        j["head_dim"] = 128; // an explicit head_dim makes 30 heads fine
        QCOMPARE(parse(j).headDim, 128);

        j = fixtureJson("mixtral-8x7b");
        j["num_key_value_heads"] = 6;
        VERIFY_MSG(errorOf(j), "test/config.json: ", "num_attention_heads 32",
                   "is not a multiple of num_key_value_heads 6");
        j["num_key_value_heads"] = 0;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'num_key_value_heads' must be positive");
        j = fixtureJson("mixtral-8x7b");
        j["head_dim"] = 127;
        VERIFY_MSG(errorOf(j), "test/config.json: ", "odd", "head_dim");
    }

    void errorRouting()
    {
        json j = fixtureJson("mixtral-8x7b");
        j["num_experts_per_tok"] = 9;
        VERIFY_MSG(errorOf(j), "test/config.json: num_experts_per_tok 9 exceeds num_local_experts 8");
        j["num_experts_per_tok"] = 0;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'num_experts_per_tok' must be at least 1");
        j = fixtureJson("olmoe-1b-7b-0924");
        j["num_experts"] = 0;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'num_experts' must be positive");
        j = fixtureJson("deepseek-moe-16b-base");
        j["scoring_func"] = "sigmoid";
        VERIFY_MSG(errorOf(j), "test/config.json: scoring_func 'sigmoid' is not supported");
    }

    void errorNegativeSize()
    {
        json j = fixtureJson("qwen1.5-moe-a2.7b");
        j["moe_intermediate_size"] = -1408;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'moe_intermediate_size' must be positive, got -1408");
        j = fixtureJson("deepseek-moe-16b-base");
        j["first_k_dense_replace"] = -1;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'first_k_dense_replace' must be non-negative");
        j = fixtureJson("mixtral-8x7b");
        j["num_hidden_layers"] = int64_t(1) << 40;
        VERIFY_MSG(errorOf(j), "test/config.json: key 'num_hidden_layers' is implausibly large");
    }

    void errorUnsupportedFeatures()
    {
        json j = fixtureJson("llama-2-7b");
        j["mlp_bias"] = true;
        VERIFY_MSG(errorOf(j), "test/config.json: mlp_bias true is not supported");
        j = fixtureJson("mixtral-8x7b");
        j["hidden_act"] = "gelu";
        VERIFY_MSG(errorOf(j), "test/config.json: hidden_act 'gelu' is not supported");
    }

    void errorMalformedJson()
    {
        QTemporaryDir tmp;
        const std::string path = tmp.path().toStdString() + "/config.json";
        {
            std::ofstream out(path);
            out << "{\n  \"hidden_size\": 4096,\n  \"vocab_size\": ,\n}\n";
        }
        try {
            loadConfig(tmp.path().toStdString());
            QFAIL("expected an error");
        } catch (const InputError& e) {
            VERIFY_MSG(e.what(), path.c_str(), "invalid JSON at line 3, column 17");
        }
        try {
            parseConfigJson("[1, 2]", "x/config.json");
            QFAIL("expected an error");
        } catch (const InputError& e) {
            VERIFY_MSG(e.what(), "x/config.json: top level is a JSON array");
        }
        try {
            loadConfig(tmp.path().toStdString() + "/nope");
            QFAIL("expected an error");
        } catch (const Error& e) {
            VERIFY_MSG(e.what(), "/nope: no such file or directory");
        }
        try {
            QVERIFY(QDir(tmp.path()).mkdir("empty"));
            loadConfig(tmp.path().toStdString() + "/empty");
            QFAIL("expected an error");
        } catch (const Error& e) {
            VERIFY_MSG(e.what(), "/empty/config.json: no such file");
        }
    }
};

QTEST_APPLESS_MAIN(TestHfConfig)
#include "tst_hf_config.moc"
