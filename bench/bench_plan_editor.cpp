// SPDX-License-Identifier: MIT
// Allocation editor responsiveness (#12) on a DeepSeek-V3-shaped layout: 61 layers (3 dense, 58 MoE
// with 256 routed experts + 1 shared, experts [2048 x 7168]), 44,971 quantizable linears. Goal: the
// budget gauge and the tree's colours are updated within 16 ms (one frame at 60 Hz) after an edit,
// and a budget-slider re-solve keeps the GUI interactive.
//
//   bench_plan_editor [REPS=30]
// Times, each from the edit call to the gauge and the visible tree rows repainted (synchronous
// repaint() of an offscreen 1000x700 window with one MoE layer expanded): one linear's bits, all
// 768 expert linears of one layer (one bulk command), undo of that bulk edit; and a slider re-solve
// with the frequency strategy split into the solve (worker thread in the GUI) and applying the plan
// (GUI thread). Prints the median and worst wall ms, the median CPU ms of the GUI thread, and the
// CPU time's ratio to 16 ms. A plain QStandardItemModel tree of the same size is repainted as a
// baseline: the part of a repaint that is Qt's own drawing. The gauge carries a predicted-cost table
// (#27, synthetic costs at 2/3/4/8 bits), so every edit also updates the predicted KLD (in
// O(changed linears), inside "the edit"); the fresh sum over every linear that a solve, a rule
// edit or a loaded plan costs (predictedPlanCost) is timed on its own.
#include "alloc/allocationitemmodel.h"
#include "alloc/budgetgauge.h"
#include "alloc/planeditmodel.h"
#include "alloc/predictedcost.h"

#include "moewb/alloc/allocate.h"

#include <QApplication>
#include <QStandardItemModel>
#include <QTreeView>
#include <QUndoStack>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <time.h>
#include <vector>

using namespace moewb;

namespace {

const char* kConfig = R"({
  "architectures": ["DeepseekForCausalLM"], "model_type": "deepseek",
  "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
  "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
  "vocab_size": 129280, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
  "first_k_dense_replace": 3, "moe_layer_freq": 1, "max_position_embeddings": 4096
})";

CalibStats syntheticStats(const ModelConfig& cfg)
{
    CalibStats s;
    s.numLayers = cfg.numLayers;
    s.hiddenSize = cfg.hiddenSize;
    s.layers.resize(size_t(cfg.numLayers));
    std::mt19937 rng(7);
    std::lognormal_distribution<double> usage(0.0, 1.0);
    for (int64_t l = 0; l < cfg.numLayers; ++l) {
        LayerStats& ls = s.layers[size_t(l)];
        ls.layer = l;
        if (!cfg.isMoeLayer(l))
            continue;
        ls.isMoe = true;
        RouterStats& r = ls.router;
        r.numExperts = cfg.numExperts;
        r.topK = cfg.topK;
        r.tokens = 100000;
        for (int64_t e = 0; e < cfg.numExperts; ++e)
            r.expertTokens.push_back(int64_t(usage(rng) * 2000));
    }
    return s;
}

/// A cost table for every quantizable linear: random costs, halving per extra bit.
std::shared_ptr<const ErrorTable> syntheticCostTable(const std::vector<PlanEntry>& entries)
{
    auto t = std::make_shared<ErrorTable>();
    t->candidates = {2, 3, 4, 8};
    t->costModel = CostModel::Fisher;
    std::mt19937 rng(11);
    std::lognormal_distribution<double> cost(-9.0, 1.5);
    for (const PlanEntry& e : entries) {
        LinearErrors row;
        row.name = e.name;
        const double c2 = cost(rng);
        for (int64_t b : t->candidates) {
            row.bytes.push_back(gptqLinearBytes(e.inFeatures, e.outFeatures, b, t->groupSize));
            row.error.push_back(c2 / double(int64_t(1) << (2 * (b - 2))));
        }
        t->linears.push_back(std::move(row));
    }
    return t;
}

double ms(std::chrono::steady_clock::duration d)
{
    return std::chrono::duration<double, std::milli>(d).count();
}

// CPU time of the calling thread: on a shared, overloaded machine wall time mostly measures waiting
// for a core; the thread's CPU time is what the edit costs.
double threadCpuMs()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

struct Timing {
    double median = 0, worst = 0, cpuMedian = 0;
};

Timing measure(int reps, const std::function<void(int)>& step)
{
    std::vector<double> t, c;
    for (int i = 0; i < reps; ++i) {
        const double c0 = threadCpuMs();
        const auto t0 = std::chrono::steady_clock::now();
        step(i);
        t.push_back(ms(std::chrono::steady_clock::now() - t0));
        c.push_back(threadCpuMs() - c0);
    }
    std::sort(t.begin(), t.end());
    std::sort(c.begin(), c.end());
    return {t[t.size() / 2], t.back(), c[c.size() / 2]};
}

void report(const char* what, Timing t, double goal = 16.0)
{
    std::printf("%-54s wall median %8.2f ms worst %8.2f ms | thread CPU median %8.2f ms = %.3f x 16 ms\n", what,
                t.median, t.worst, t.cpuMedian, t.cpuMedian / goal);
}

} // namespace

int main(int argc, char** argv)
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    const int reps = argc > 1 ? std::max(3, std::atoi(argv[1])) : 30;
    QApplication app(argc, argv);

    auto cfg = std::make_shared<const ModelConfig>(parseConfigJson(kConfig, "deepseek-v3-shaped.json"));
    PlanEditModel plan;
    auto t0 = std::chrono::steady_clock::now();
    plan.setModelConfig(cfg);
    const double openMs = ms(std::chrono::steady_clock::now() - t0);
    AllocationItemModel items(&plan);
    QTreeView tree;
    tree.setUniformRowHeights(true);
    tree.setModel(&items);
    BudgetGauge gauge(&plan);
    const std::shared_ptr<const ErrorTable> costs = syntheticCostTable(plan.entries());
    gauge.setCostTable(costs);
    if (!gauge.hasPredictedCost()) {
        std::fprintf(stderr, "bench_plan_editor: the cost table does not fit the layout\n");
        return 1;
    }
    tree.resize(1000, 700);
    tree.show();
    gauge.show();
    const QModelIndex layer30 = items.indexForLayer(30);
    tree.expand(layer30);
    tree.expand(items.index(1, 0, layer30)); // its MoE group: 257 rows
    tree.scrollTo(items.indexForExpert(30, 0), QAbstractItemView::PositionAtTop);
    QApplication::processEvents();
    auto repaint = [&] {
        tree.viewport()->repaint();
        gauge.repaint();
    };
    repaint();
    std::printf("layout: %zu quantizable linears, %d layers; setModelConfig (expand + totals) %.1f ms\n",
                plan.entries().size(), int(cfg->numLayers), openMs);

    const int q = plan.entryIndex("model.layers.30.mlp.experts.0.down_proj");
    const Timing single = measure(reps, [&](int i) {
        plan.setBits({q}, i % 2 ? 4 : 8);
        repaint();
    });
    const Timing editOnly = measure(reps, [&](int i) { plan.setBits({q}, i % 2 ? 4 : 8); });
    const Timing treeOnly = measure(reps, [&](int) { tree.viewport()->repaint(); });
    const Timing dataOnly = measure(reps, [&](int) {
        QModelIndex idx = tree.indexAt(QPoint(5, 5));
        for (int r = 0; r < 40 && idx.isValid(); ++r, idx = tree.indexBelow(idx))
            for (int c = 0; c < AllocationItemModel::ColumnCount; ++c)
                for (int role : {int(Qt::DisplayRole), int(Qt::DecorationRole), int(Qt::FontRole), int(Qt::BackgroundRole),
                                 int(Qt::ForegroundRole), int(Qt::CheckStateRole), int(Qt::TextAlignmentRole)})
                    (void)idx.siblingAtColumn(c).data(role);
    });
    report("  data() of 40 rows", dataOnly);
    QStandardItemModel plain(60, AllocationItemModel::ColumnCount);
    for (int r = 0; r < 60; ++r)
        for (int c = 0; c < AllocationItemModel::ColumnCount; ++c)
            plain.setItem(r, c, new QStandardItem(QStringLiteral("cell %1").arg(r * 10 + c)));
    QTreeView baseline;
    baseline.setUniformRowHeights(true);
    baseline.setModel(&plain);
    baseline.resize(1000, 700);
    baseline.show();
    QApplication::processEvents();
    report("  baseline: repaint of a plain QStandardItemModel tree", measure(reps, [&](int) { baseline.viewport()->repaint(); }));
    const Timing gaugeOnly = measure(reps, [&](int) { gauge.repaint(); });
    const Timing gaugeRefresh = measure(reps, [&](int) { gauge.refresh(); });
    double sink = 0;
    const Timing costSum = measure(reps, [&](int) { sink += predictedPlanCost(*costs, plan.entries()).kld; });
    std::vector<int> layerExperts;
    for (size_t i = 0; i < plan.entries().size(); ++i)
        if (plan.entries()[i].layer == 30 && plan.entries()[i].expert >= 0)
            layerExperts.push_back(int(i));
    const Timing bulk = measure(reps, [&](int i) {
        plan.setBits(layerExperts, i % 2 ? 2 : 8);
        repaint();
    });
    const Timing undo = measure(reps, [&](int) {
        plan.undoStack()->undo();
        repaint();
    });
    std::printf("bulk edit: %zu linears of layer 30's routed experts\n", layerExperts.size());
    report("single linear edit -> gauge + colours", single);
    report("  of which: the edit (model, totals, signals)", editOnly);
    report("  of which: repainting the visible tree rows", treeOnly);
    report("  of which: repainting the gauge", gaugeOnly);
    report("gauge refresh (sizes, target check, texts)", gaugeRefresh);
    report("predicted KLD summed afresh over every linear", costSum);
    std::printf("predicted KLD of the last plan: %.6g nats/token (%s)\n", sink / reps,
                gauge.predictedText().toUtf8().constData());
    report("bulk edit of one layer's experts -> gauge + colours", bulk);
    report("undo of a bulk edit -> gauge + colours", undo);

    // Slider re-solve: frequency at targets 2.5 .. 3.5 bits.
    const CalibStats stats = syntheticStats(*cfg);
    AllocOptions opt;
    opt.strategy = "frequency";
    std::vector<Plan> plans;
    const Timing solve = measure(std::max(3, reps / 3), [&](int i) {
        opt.targetBits = 2.5 + 0.1 * (i % 11);
        plans.push_back(planFromAllocation(allocate(*cfg, stats, opt), opt));
    });
    int key = 1;
    size_t at = 0;
    // Copies made outside the timed steps: the panel moves the solved plan in.
    std::vector<Plan> copies;
    auto nextPlan = [&] { return std::move(copies[at++]); };
    for (int i = 0; i < 3; ++i)
        for (const Plan& p : plans)
            copies.push_back(p);
    const Timing apply = measure(int(plans.size()), [&](int) {
        plan.setPlanMerged(nextPlan(), QStringLiteral("solve"), key);
        repaint();
    });
    const Timing applyOnly = measure(int(plans.size()), [&](int) {
        plan.setPlanMerged(nextPlan(), QStringLiteral("solve"), key);
    });
    report("  of which: apply without repaint", applyOnly);
    tree.setModel(nullptr);
    const Timing applyNoView = measure(int(plans.size()), [&](int) {
        plan.setPlanMerged(nextPlan(), QStringLiteral("solve"), key);
    });
    report("  of which: apply without a view on the tree model", applyNoView);
    std::printf("re-solve: %zu overrides in the last solved plan\n", plans.back().overrides.size());
    report("slider re-solve: frequency allocate (worker thread)", solve);
    report("slider re-solve: apply plan -> gauge + colours (GUI)", apply);
    return 0;
}
