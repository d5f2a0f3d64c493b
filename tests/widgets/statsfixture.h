// SPDX-License-Identifier: MIT
// A small hand-made CalibStats with exact, easy numbers for the widget tests:
//   layer 0 dense; layers 1 and 2 MoE with 4 experts, top-2, 100 tokens; domains "prose", "code".
//   layer 1: expert_tokens {80, 60, 40, 20}, top-1 {50, 30, 15, 5}, weight mass {40.5, 30.25, 19, 10.25},
//            prob mass {35, 30, 20, 15}, domain_tokens {{50, 30, 15, 5}, {30, 30, 25, 15}},
//            consistent co-activation, output correlation with blocks {0, 2} and {1, 3}.
//   layer 2: expert_tokens {100, 100, 0, 0} (experts 2 and 3 dead), no correlation probe.
#pragma once

#include "moewb/stats/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace moewb::test {

inline RouterStats fixtureRouter1()
{
    RouterStats r;
    r.numExperts = 4;
    r.topK = 2;
    r.tokens = 100;
    r.expertTokens = {80, 60, 40, 20};
    r.expertTop1 = {50, 30, 15, 5};
    r.expertWeightMass = {40.5, 30.25, 19.0, 10.25};
    r.expertProbMass = {35.0, 30.0, 20.0, 15.0};
    r.routerEntropy = 1.25;
    r.domainTokens = Matrix<int64_t>(2, 4);
    r.domainTokens.data = {50, 30, 15, 5, 30, 30, 25, 15};
    r.coactivation = Matrix<int64_t>(4, 4);
    r.coactivation.data = {80, 45, 25, 10, //
                           45, 60, 10, 5,  //
                           25, 10, 40, 5,  //
                           10, 5, 5, 20};
    r.correlation = Matrix<float>(4, 4);
    r.correlation.data = {1.0f, 0.1f, 0.9f, 0.2f,  //
                          0.1f, 1.0f, 0.15f, 0.8f, //
                          0.9f, 0.15f, 1.0f, 0.1f, //
                          0.2f, 0.8f, 0.1f, 1.0f};
    r.correlationTokens = 64;
    r.correlationMethod = "pearson";
    r.nextMoeLayer = 2;
    r.transitions = Matrix<int64_t>(4, 4, 5);
    return r;
}

inline RouterStats fixtureRouter2()
{
    RouterStats r;
    r.numExperts = 4;
    r.topK = 2;
    r.tokens = 100;
    r.expertTokens = {100, 100, 0, 0};
    r.expertTop1 = {60, 40, 0, 0};
    r.expertWeightMass = {55.0, 45.0, 0.0, 0.0};
    r.expertProbMass = {45.0, 40.0, 10.0, 5.0};
    r.routerEntropy = 0.75;
    r.domainTokens = Matrix<int64_t>(2, 4);
    r.domainTokens.data = {50, 50, 0, 0, 50, 50, 0, 0};
    r.coactivation = Matrix<int64_t>(4, 4);
    r.coactivation.data = {100, 100, 0, 0, 100, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    r.nextMoeLayer = -1;
    r.transitions = Matrix<int64_t>(4, 0);
    r.deadExperts = {2, 3};
    return r;
}

inline LinearStats fixtureLinear(const std::string& name, int64_t layer, int64_t expert, const std::string& role,
                                 int64_t in, int64_t out, int64_t tokens, float score, int64_t column)
{
    LinearStats l;
    l.name = name;
    l.layer = layer;
    l.expert = expert;
    l.role = role;
    l.inFeatures = in;
    l.outFeatures = out;
    l.tokens = tokens;
    l.outlierScore = score;
    l.outlierColumn = column;
    return l;
}

inline CalibStats fixtureStats()
{
    CalibStats s;
    StatsProvenance& p = s.provenance;
    p.modelPath = "fixture-model";
    p.architecture = "MixtralForCausalLM";
    p.modelType = "mixtral";
    p.dataDescription = "hand-made fixture";
    p.numSamples = 2;
    p.seqLen = 50;
    p.numTokens = 100;
    p.domains = {"prose", "code"};
    p.domainTokenCounts = {50, 50};
    p.computeDtype = "float32";
    p.device = "cpu";
    p.toolVersion = "test";
    p.created = "2026-01-01T00:00:00Z";
    s.numLayers = 3;
    s.hiddenSize = 8;
    s.layers.resize(3);
    for (int64_t i = 0; i < 3; ++i) {
        s.layers[size_t(i)].layer = i;
        s.layers[size_t(i)].cosine = {0.9, 0.8, 0.7, 100};
    }
    s.layers[1].isMoe = true;
    s.layers[1].router = fixtureRouter1();
    s.layers[2].isMoe = true;
    s.layers[2].router = fixtureRouter2();

    const float nan = std::nanf("");
    s.linears.push_back(fixtureLinear("model.layers.0.self_attn.q_proj", 0, -1, "q_proj", 8, 8, 100, 3.5f, 2));
    s.linears.push_back(fixtureLinear("model.layers.0.mlp.gate_proj", 0, -1, "dense.gate", 8, 16, 100, 2.0f, 1));
    for (int64_t l = 1; l <= 2; ++l) {
        const std::string prefix = "model.layers." + std::to_string(l);
        const RouterStats& r = s.layers[size_t(l)].router;
        s.linears.push_back(fixtureLinear(prefix + ".self_attn.q_proj", l, -1, "q_proj", 8, 8, 100,
                                          l == 1 ? 4.25f : 5.5f, 0));
        s.linears.push_back(fixtureLinear(prefix + ".block_sparse_moe.gate", l, -1, "router", 8, 4, 100, 1.5f, 3));
        for (int64_t e = 0; e < 4; ++e) {
            const std::string ex = prefix + ".block_sparse_moe.experts." + std::to_string(e);
            float gate = 2.0f + 0.5f * float(e);
            if (l == 1 && e == 3)
                gate = 12.75f;
            if (l == 2)
                gate = e == 2 ? nan : 2.25f - 0.25f * float(e);
            s.linears.push_back(fixtureLinear(ex + ".w1", l, e, "expert.gate", 8, 16, r.expertTokens[size_t(e)], gate,
                                              std::isnan(gate) ? -1 : e));
            s.linears.push_back(fixtureLinear(ex + ".w2", l, e, "expert.down", 16, 8, r.expertTokens[size_t(e)],
                                              1.25f + float(e), 5));
        }
    }
    return s;
}

/// Stats shaped like a real model with E experts per layer and L layers (all MoE, top-8 or E/2),
/// D domains: deterministic pseudo-random token counts (some experts never routed), consistent
/// co-activation, an output correlation in blocks of 16 experts (optional: withCorrelation), four
/// attention linears, a router and gate/up/down per expert in every layer (outlier scores 1–20).
/// For the widget tests and benches at 8–256 experts; no transitions (next_moe_layer -1).
inline CalibStats syntheticStats(int64_t E, int64_t L, int64_t D = 6, bool withCorrelation = true)
{
    uint64_t state = 0x9e3779b97f4a7c15ull ^ uint64_t(E * 1000 + L);
    const auto next = [&state]() { // splitmix64
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    CalibStats s;
    StatsProvenance& p = s.provenance;
    p.modelPath = "synthetic-" + std::to_string(E) + "e";
    p.architecture = "Qwen3MoeForCausalLM";
    p.modelType = "qwen3_moe";
    p.dataDescription = "synthetic";
    p.numSamples = 8;
    p.seqLen = 512;
    p.numTokens = 4096;
    const char* names[] = {"scripture", "fortunes", "manpages", "c_cpp", "python", "licenses", "chat", "math"};
    for (int64_t d = 0; d < D; ++d) {
        p.domains.push_back(names[d % 8] + (d >= 8 ? std::to_string(d) : std::string()));
        p.domainTokenCounts.push_back(p.numTokens / std::max<int64_t>(D, 1));
    }
    p.computeDtype = "float32";
    p.device = "cpu";
    p.toolVersion = "test";
    p.created = "2026-01-01T00:00:00Z";
    s.numLayers = L;
    s.hiddenSize = 16;
    s.layers.resize(size_t(L));
    const int64_t topK = std::min<int64_t>(8, std::max<int64_t>(1, E / 2));
    for (int64_t l = 0; l < L; ++l) {
        LayerStats& layer = s.layers[size_t(l)];
        layer.layer = l;
        layer.isMoe = true;
        layer.cosine = {0.9, 0.8, 0.7, p.numTokens};
        RouterStats& r = layer.router;
        r.numExperts = E;
        r.topK = topK;
        r.tokens = p.numTokens;
        r.routerEntropy = 2.0;
        r.domainTokens = Matrix<int64_t>(D, E);
        r.coactivation = Matrix<int64_t>(E, E);
        for (int64_t e = 0; e < E; ++e) {
            const int64_t t = next() % 23 == 0 ? 0 : int64_t(next() % 400) + 1; // about 4 % never routed
            r.expertTokens.push_back(t);
            r.expertTop1.push_back(t / 3);
            r.expertWeightMass.push_back(double(t) / double(topK));
            r.expertProbMass.push_back(double(t) / double(topK) + 0.5);
            if (t == 0)
                r.deadExperts.push_back(e);
            for (int64_t d = 0; d < D; ++d)
                r.domainTokens.at(d, e) = d + 1 < D ? t / D : t - (D - 1) * (t / D);
        }
        for (int64_t i = 0; i < E; ++i)
            for (int64_t j = i; j < E; ++j) {
                const int64_t bound = std::min(r.expertTokens[size_t(i)], r.expertTokens[size_t(j)]);
                const int64_t c = i == j ? r.expertTokens[size_t(i)] : (bound > 0 ? int64_t(next() % uint64_t(bound + 1)) / 4 : 0);
                r.coactivation.at(i, j) = c;
                r.coactivation.at(j, i) = c;
            }
        if (withCorrelation) {
            r.correlation = Matrix<float>(E, E);
            for (int64_t i = 0; i < E; ++i)
                for (int64_t j = 0; j < E; ++j)
                    r.correlation.at(i, j) = i == j ? 1.0f : ((i % 16) == (j % 16) ? 0.8f : 0.05f);
            r.correlationTokens = 256;
            r.correlationMethod = "pearson";
        }
        r.nextMoeLayer = -1;
        r.transitions = Matrix<int64_t>(E, 0);
        const std::string prefix = "model.layers." + std::to_string(l);
        const auto score = [&next]() { return 1.0f + float(next() % 1900) / 100.0f; };
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
            s.linears.push_back(fixtureLinear(prefix + ".self_attn." + proj, l, -1, proj, 16, 16, p.numTokens, score(), 0));
        s.linears.push_back(fixtureLinear(prefix + ".mlp.gate", l, -1, "router", 16, E, p.numTokens, score(), 0));
        for (int64_t e = 0; e < E; ++e)
            for (const char* role : {"gate", "up", "down"})
                s.linears.push_back(fixtureLinear(prefix + ".mlp.experts." + std::to_string(e) + "." + role + "_proj", l, e,
                                                  std::string("expert.") + role, 16, 8, r.expertTokens[size_t(e)],
                                                  score(), 1));
    }
    return s;
}

} // namespace moewb::test
