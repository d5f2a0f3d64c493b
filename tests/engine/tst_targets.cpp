// SPDX-License-Identifier: MIT
// Budgets the target runtime can load (#24): the shared-width groups of each target listed by
// hand on a tiny DeepSeek config, the grouped knapsack on a hand-computed case, the budget with
// --target vllm against brute force over every group choice, heuristics made to comply (bytes by
// hand), the plan's "target" key, and the quantize warning's text.
#include "moewb/alloc/allocate.h"
#include "moewb/alloc/target_fit.h"
#include "moewb/core/error.h"
#include "moewb/plan/target_groups.h"
#include "moewb/workflow/format_constraint.h"

#include <QtTest>

#include <cmath>
#include <limits>

using namespace moewb;

namespace {

// Layer 0 dense (MLP 128), layer 1 MoE: 2 routed experts of width 32 + 1 shared expert (32);
// hidden 64. Quantizable linears in expandPlan order:
//   0-3 layer 0 q k v o, 4-6 dense gate up down,
//   7-10 layer 1 q k v o, 11-13 expert 0 gate up down, 14-16 expert 1 gate up down,
//   17-19 shared expert gate up down.
const char* kTiny = R"({
  "architectures": ["DeepseekForCausalLM"], "model_type": "deepseek",
  "hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
  "vocab_size": 100, "n_routed_experts": 2, "n_shared_experts": 1, "num_experts_per_tok": 1,
  "first_k_dense_replace": 1, "moe_layer_freq": 1, "max_position_embeddings": 64
})";

using Groups = std::vector<std::vector<size_t>>;

ErrorTable syntheticErrors(const std::vector<PlanEntry>& es)
{
    ErrorTable t;
    t.candidates = {2, 3, 4, 8};
    t.groupSize = 128;
    for (size_t i = 0; i < es.size(); ++i) {
        LinearErrors l;
        l.name = es[i].name;
        const double scale = double(1 + (i * 7) % 11); // 1..11, differs between linears
        for (int64_t b : t.candidates) {
            l.bytes.push_back(gptqLinearBytes(es[i].inFeatures, es[i].outFeatures, b, 128));
            l.error.push_back(scale * std::pow(0.25, double(b)) * double(es[i].inFeatures * es[i].outFeatures));
        }
        t.linears.push_back(l);
    }
    return t;
}

} // namespace

class TestTargets : public QObject {
    Q_OBJECT

    ModelConfig m_cfg;
    std::vector<PlanEntry> m_es;

private slots:
    void initTestCase()
    {
        m_cfg = parseConfigJson(kTiny, "tiny.json");
        m_es = expandPlan(Plan{}, m_cfg);
        QCOMPARE(m_es.size(), size_t(20));
        QCOMPARE(QString::fromStdString(m_es[4].name), QStringLiteral("model.layers.0.mlp.gate_proj"));
        QCOMPARE(QString::fromStdString(m_es[11].name), QStringLiteral("model.layers.1.mlp.experts.0.gate_proj"));
        QCOMPARE(QString::fromStdString(m_es[17].name), QStringLiteral("model.layers.1.mlp.shared_experts.gate_proj"));
    }

    void groupsOfEachTarget()
    {
        Groups single;
        for (size_t i = 0; i < 20; ++i)
            single.push_back({i});
        QCOMPARE(sharedWidthGroups(m_es, PlanTarget::Gptq), single);
        const Groups gguf{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10},
                          {11, 14}, {12, 15}, {13, 16}, {17}, {18}, {19}};
        QCOMPARE(sharedWidthGroups(m_es, PlanTarget::Gguf), gguf);
        const Groups vllm{{0, 1, 2}, {3}, {4, 5}, {6}, {7, 8, 9}, {10}, {11, 12, 13, 14, 15, 16}, {17, 18}, {19}};
        QCOMPARE(sharedWidthGroups(m_es, PlanTarget::Vllm), vllm);
        // The LinearInfo overload (what the --target gguf budget reads) gives the same partition.
        const std::vector<LinearInfo> lin = quantizableLinears(m_cfg);
        QCOMPARE(sharedWidthGroups(lin, PlanTarget::Vllm), vllm);
        QCOMPARE(sharedWidthGroups(lin, PlanTarget::Gguf), gguf);
        QCOMPARE(sharedGroupCount(m_es, PlanTarget::Vllm), size_t(5));
        QCOMPARE(sharedGroupCount(m_es, PlanTarget::Gguf), size_t(3));
        QCOMPARE(sharedWidthGroupLabel(m_es, vllm[6], PlanTarget::Vllm), std::string("layer 1, routed experts"));
        QCOMPARE(sharedWidthGroupLabel(m_es, vllm[7], PlanTarget::Vllm), std::string("layer 1, shared expert gate/up"));
        QCOMPARE(sharedWidthGroupLabel(m_es, vllm[2], PlanTarget::Vllm), std::string("layer 0, MLP gate/up"));
        QCOMPARE(sharedWidthGroupLabel(m_es, gguf[13], PlanTarget::Gguf),
                 std::string("layer 1, routed experts' down projection"));
    }

    void checkListsMixedGroups()
    {
        std::vector<PlanEntry> es = m_es; // all 4 bits
        QVERIFY(checkTarget(es, PlanTarget::Vllm).empty());
        es[14].bits = 2; // expert 1 gate
        es[1].bits = 8;  // layer 0 k
        const std::vector<TargetViolation> v = checkTarget(es, PlanTarget::Vllm);
        QCOMPARE(v.size(), size_t(2));
        QCOMPARE(v[0].label, std::string("layer 0, attention q/k/v"));
        QCOMPARE(widthsText(v[0].widths), std::string("4, 8 bits"));
        QCOMPARE(v[1].label, std::string("layer 1, routed experts"));
        QCOMPARE(v[1].members, (std::vector<size_t>{11, 12, 13, 14, 15, 16}));
        QCOMPARE(checkTarget(es, PlanTarget::Gguf).size(), size_t(1)); // the gate stack
        QVERIFY(checkTarget(es, PlanTarget::Gptq).empty());
        es[14].dropped = true; // a dropped linear does not count
        QCOMPARE(checkTarget(es, PlanTarget::Vllm).size(), size_t(1));
    }

    // Items A, B, C with options (10, 20) bytes; errors A (5, 1), B (4, 1), C (6, 0); budget 50.
    // Per linear: A and C high, B low = 50 bytes, error 1 + 4 + 0 = 5. With A and B one group
    // (bytes 20/40, errors 9/2): {AB high, C low} 50 bytes error 8, {AB low, C high} 40 bytes
    // error 9, both low 30 bytes error 15, both high 60 bytes: {AB high, C low} is optimal.
    void groupedKnapsackByHand()
    {
        const std::vector<KnapsackItem> items{{{10, 20}, {5, 1}}, {{10, 20}, {4, 1}}, {{10, 20}, {6, 0}}};
        QCOMPARE(solveKnapsack(items, 50), (std::vector<int>{1, 0, 1}));
        QCOMPARE(solveKnapsackInGroups(items, {{0, 1}, {2}}, 50, SolverMethod::Exact), (std::vector<int>{1, 1, 0}));
        // The Lagrangian relaxation is not exact: it stops at {AB low, C high} (40 bytes, error 9),
        // within the budget, with both members of the group at one option.
        QCOMPARE(solveKnapsackInGroups(items, {{0, 1}, {2}}, 50, SolverMethod::Lagrangian), (std::vector<int>{0, 0, 1}));
        for (SolverMethod m : {SolverMethod::Exact, SolverMethod::Lagrangian})
            QCOMPARE(solveKnapsackInGroups(items, {{0}, {1}, {2}}, 50, m), solveKnapsack(items, 50, m));
        QVERIFY_THROWS_EXCEPTION(InputError, solveKnapsackInGroups(items, {{0, 1}, {2}}, 29));
    }

    // The budget with --target vllm never mixes widths in a group and is the best of all 4^9
    // group choices under the budget.
    void budgetVllmIsOptimal()
    {
        const ErrorTable t = syntheticErrors(m_es);
        const Groups groups = sharedWidthGroups(m_es, PlanTarget::Vllm);
        for (double bits : {2.5, 3.0, 3.5, 5.0}) {
            AllocOptions opt;
            opt.strategy = "budget";
            opt.targetBits = bits;
            opt.target = PlanTarget::Vllm;
            const AllocResult r = allocateBudget(m_cfg, t, opt);
            QVERIFY(r.size.modelBytes <= r.budgetBytes);
            QVERIFY(checkTarget(r.entries, PlanTarget::Vllm).empty());
            double got = 0;
            for (size_t i = 0; i < r.entries.size(); ++i)
                for (size_t c = 0; c < 4; ++c)
                    got += t.candidates[c] == r.entries[i].bits ? t.linears[i].error[c] : 0.0;
            const int64_t budget = r.budgetBytes - fixedModelBytes(m_cfg);
            double best = std::numeric_limits<double>::infinity();
            std::vector<size_t> choice(groups.size(), 0);
            for (;;) {
                int64_t bytes = 0;
                double err = 0;
                for (size_t g = 0; g < groups.size(); ++g)
                    for (size_t i : groups[g])
                        bytes += t.linears[i].bytes[choice[g]], err += t.linears[i].error[choice[g]];
                if (bytes <= budget)
                    best = std::min(best, err);
                size_t g = 0;
                while (g < choice.size() && ++choice[g] == 4)
                    choice[g++] = 0;
                if (g == choice.size())
                    break;
            }
            QVERIFY2(std::abs(got - best) <= 1e-9 * best, qPrintable(QString("%1 bits: %2 vs %3").arg(bits).arg(got).arg(best)));
            // Per-linear widths (gptq) can only do as well or better.
            opt.target = PlanTarget::Gptq;
            const AllocResult free = allocateBudget(m_cfg, t, opt);
            double freeErr = 0;
            for (size_t i = 0; i < free.entries.size(); ++i)
                for (size_t c = 0; c < 4; ++c)
                    freeErr += t.candidates[c] == free.entries[i].bits ? t.linears[i].error[c] : 0.0;
            QVERIFY(freeErr <= got * (1 + 1e-12));
        }
    }

    // Bytes by hand (docs/export-gptq.md, "What is written"; group 128 > K: one group per row):
    //   64x64: qweight ceil(64b/32)*64*4, qzeros ceil(64b/32)*4, scales 128, g_idx 256:
    //          2 bits 1024+16+128+256 = 1424, 3 bits 1536+24+128+256 = 1944 (+520)
    //   expert gate/up K=64 N=32: 2 bits 512+8+64+256 = 840, 3 bits 768+12+64+256 = 1100 (+260)
    //   expert down K=32 N=64: 2 bits 512+16+128+128 = 784, 3 bits 768+24+128+128 = 1048 (+264)
    // Start: all 2 bits but layer-0 q and expert 0 at 3. Both groups drop to 2 bits; the experts
    // (3248 of their 5712 bytes above 2 bits) come before q/k/v (1944 of 4792): raising all six
    // expert linears costs 2*(260+260+264) = 1568, q/k/v 3*520 = 1560. With 1600 bytes above
    // all-2-bit the experts are raised, q/k/v then no longer fit.
    void heuristicsComply()
    {
        QCOMPARE(gptqLinearBytes(64, 64, 2, 128), int64_t(1424));
        QCOMPARE(gptqLinearBytes(64, 64, 3, 128), int64_t(1944));
        QCOMPARE(gptqLinearBytes(64, 32, 2, 128), int64_t(840));
        QCOMPARE(gptqLinearBytes(64, 32, 3, 128), int64_t(1100));
        QCOMPARE(gptqLinearBytes(32, 64, 2, 128), int64_t(784));
        QCOMPARE(gptqLinearBytes(32, 64, 3, 128), int64_t(1048));
        AllocResult r;
        r.entries = m_es;
        for (PlanEntry& e : r.entries)
            e.bits = 2;
        const int64_t all2 = planSize(r.entries, m_cfg).modelBytes;
        for (size_t i : {0, 11, 12, 13})
            r.entries[i].bits = 3;
        r.budgetBytes = all2 + 1600;
        AllocOptions opt;
        opt.target = PlanTarget::Vllm;
        fitToTarget(r, m_cfg, opt);
        for (size_t i = 0; i < 20; ++i)
            QCOMPARE(r.entries[i].bits, int64_t(i >= 11 && i <= 16 ? 3 : 2));
        QCOMPARE(r.size.modelBytes, all2 + 1568);
        QCOMPARE(r.notes.back(), std::string("target vllm: 2 groups that must share one width had mixed widths: each "
                                             "took its lowest width, then 1 of them their widest within the budget"));
        // Every strategy that runs without statistics complies and stays within its budget.
        for (const char* s : {"uniform", "attn-ffn", "first-k", "random"}) {
            AllocOptions o;
            o.strategy = s;
            o.targetBits = 3.3;
            o.target = PlanTarget::Vllm;
            const StrategyInfo* info = findStrategy(s);
            QVERIFY(info);
            if (info->needsStats)
                continue;
            const AllocResult a = allocate(m_cfg, CalibStats{}, o);
            QVERIFY2(checkTarget(a.entries, PlanTarget::Vllm).empty(), s);
            QVERIFY2(a.size.modelBytes <= a.budgetBytes, s);
            QCOMPARE(planFromAllocation(a, o).target, PlanTarget::Vllm);
        }
    }

    void planJsonTarget()
    {
        Plan p;
        p.target = PlanTarget::Vllm;
        const std::string json = planToJson(p);
        QVERIFY(json.find("\"target\": \"vllm\"") != std::string::npos);
        QCOMPARE(parsePlanJson(json, "p.json").target, PlanTarget::Vllm);
        QVERIFY(parsePlanJson(json, "p.json") == p);
        p.target = PlanTarget::Gguf;
        QCOMPARE(parsePlanJson(planToJson(p), "p.json").target, PlanTarget::Gguf);
        // gptq is the default: not written, and a plan without the key (older ones) reads as gptq.
        p.target = PlanTarget::Gptq;
        QVERIFY(planToJson(p).find("\"target\"") == std::string::npos);
        QCOMPARE(parsePlanJson(R"({"format": "moewb-plan", "version": 1})", "old.json").target, PlanTarget::Gptq);
        try {
            parsePlanJson(R"({"format": "moewb-plan", "version": 1, "target": "tensorrt"})", "bad.json");
            QFAIL("no error");
        } catch (const InputError& e) {
            QCOMPARE(std::string(e.what()), std::string("bad.json: $.target: expected \"gptq\", \"vllm\" or \"gguf\""));
        }
    }

    void quantizeWarningText()
    {
        Plan p;
        p.defaults.bits = 2;
        p.overrides["model.layers.1.mlp.experts.0.gate_proj"].bits = 3;
        QCOMPARE(formatConstraintWarning(p, m_cfg, "gptq"), std::string()); // made for per-linear widths
        QCOMPARE(formatConstraintWarning(p, m_cfg, "gguf"),
                 std::string("1 of 3 groups of linears that llama.cpp stores at one width have mixed widths (e.g. layer "
                             "1, routed experts' gate projection: 2, 3 bits); a GGUF file stores one type per stack, so "
                             "each is written at its widest width (more bytes than planned)"));
        p.target = PlanTarget::Vllm;
        QCOMPARE(formatConstraintWarning(p, m_cfg, "gptq"),
                 std::string("1 of 5 groups of linears that vLLM stores at one width have mixed widths (e.g. layer 1, "
                             "routed experts: 2, 3 bits); the checkpoint keeps the planned widths, which vLLM cannot "
                             "load as they are"));
        QCOMPARE(formatConstraintWarning(p, m_cfg, "fake"),
                 std::string("1 of 5 groups of linears that vLLM stores at one width have mixed widths (e.g. layer 1, "
                             "routed experts: 2, 3 bits); the fake-quantized model keeps the planned widths, which vLLM "
                             "could not load as they are"));
        p.overrides.clear();
        QCOMPARE(formatConstraintWarning(p, m_cfg, "gptq"), std::string());
    }
};

QTEST_APPLESS_MAIN(TestTargets)
#include "tst_targets.moc"
