// SPDX-License-Identifier: MIT
// Cost of the Fisher measurement (#24, docs/allocation.md) against a calibration pass over the same
// tokens, in one process on one model: the bound is Fisher ≤ 3x calibration.
//
//   bench_fisher MODEL_DIR DATA.jsonl [SAMPLES=64] [SEQ_LEN=256] [REPS=3]
// Prints the best of REPS wall times (runs interleaved, so a busy machine slows all alike) of
//   calibration   runCalibration with every default observer (what `moewb calibrate` runs);
//   fisher alone  its own forward (no calibration observers), then the backward: by recompute
//                 (layer inputs kept, each layer's forward recomputed) and through a kept graph;
//   calibrate --fisher  what `moewb calibrate --fisher` runs (kept graph when it fits,
//                 engine/calib/fisher.h); its cost is its total minus a calibration pass
// and each as a multiple of the calibration pass.
#include "calib/calibrator.h"
#include "calib/fisher.h"
#include "model/streamer.h"
#include "moewb/calib/calibrate.h"
#include "moewb/model/runtime.h"

#include "bench_timer.h"

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <chrono>
#include <functional>

using namespace moewb;
using bench::seconds;

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: bench_fisher MODEL_DIR DATA.jsonl [SAMPLES=64] [SEQ_LEN=256]\n");
        return 2;
    }
    const std::string dir = argv[1];
    CalibrateOptions opt;
    opt.data = {CalibDataSpec{argv[2], ""}};
    opt.samples = argc > 3 ? std::atoll(argv[3]) : 64;
    opt.seqLen = argc > 4 ? std::atoll(argv[4]) : 256;
    const RuntimeInfo rt = initRuntime(false);
    const CalibTokens tokens = loadCalibData(opt.data, modelTokenizer(dir));
    const std::vector<CalibWindow> windows
        = calibWindows(int64_t(tokens.ids.size()), opt.samples, opt.seqLen, false, opt.seed);
    const at::Tensor all = at::tensor(at::ArrayRef<int32_t>(tokens.ids)).to(at::kLong);
    std::vector<at::Tensor> seqs;
    int64_t n = 0;
    for (const CalibWindow& w : windows) {
        seqs.push_back(all.slice(0, w.begin, w.end));
        n += w.end - w.begin;
    }
    const Model model(dir);
    const TokenLayout layout = layoutOf(seqs);

    const int reps = argc > 5 ? std::max(1, std::atoi(argv[5])) : 3;
    const at::ScalarType dtype = computeDtype(model.config(), opt.dtype);
    struct Alone {
        double total = 1e30, forward = 1e30, head = 1e30, layers = 1e30;
    };
    Alone byRecompute, byGraph;
    // fisher alone: its own forward (no calibration observers) that keeps what the backward needs.
    const auto fisherAlone = [&](bool keepGraph, Alone& best) {
        double tForward = 0, tHead = 0;
        const auto start = std::chrono::steady_clock::now();
        auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
        best.total = std::min(best.total, seconds([&] {
            LayerInputRecorder rec(model.config(), keepGraph);
            StreamOptions so;
            so.dtype = dtype;
            so.recordGraph = keepGraph;
            model.run(seqs, so, LogitsSink(), &rec);
            tForward = since();
            // By recompute, the first report past "lm_head" marks the end of the head's gradients.
            const ProgressFn marks = [&](const Progress& p) {
                if (tHead == 0 && p.message != "lm_head")
                    tHead = since();
                return true;
            };
            std::vector<LinearStats> linears;
            for (const LinearInfo& li : listLinears(model.config()))
                linears.push_back(LinearStats{li.name, li.layer, li.expert, linearRoleName(li.role), li.inFeatures,
                                              li.outFeatures});
            (void)fisherBackward(model, rec, opt.seed, linears, marks);
        }));
        const double total = since();
        best.forward = std::min(best.forward, tForward);
        best.head = std::min(best.head, tHead - tForward);
        best.layers = std::min(best.layers, total - tHead);
    };
    double calib = 1e30;
    CalibrateOptions::Timings fused{1e30, 1e30};
    for (int rep = 0; rep < reps; ++rep) {
        calib = std::min(calib, seconds([&] { (void)runCalibration(model, seqs, layout, opt); }));
        fisherAlone(false, byRecompute);
        fisherAlone(true, byGraph);
        CalibrateOptions::Timings t;
        CalibrateOptions withFisher = opt;
        withFisher.fisher = true;
        withFisher.timings = &t;
        (void)calibrateTokens(dir, tokens, withFisher);
        fused.calibration = std::min(fused.calibration, t.calibration);
        fused.fisher = std::min(fused.fisher, t.fisher);
    }

    const int64_t graphBytes = fisherGraphBytes(model.config(), n, opt.seqLen, dtype);
    const bool keeps = graphBytes <= fisherGraphBudget();
    std::printf("%s: %lld windows x %lld tokens = %lld tokens, %d thread(s), compute dtype %s\n", dir.c_str(),
                (long long)seqs.size(), (long long)opt.seqLen, (long long)n, rt.threads, c10::toString(dtype));
    std::printf("calibration pass          %8.2f s\n", calib);
    std::printf("fisher alone, recompute   %8.2f s  = %.2fx calibration\n", byRecompute.total, byRecompute.total / calib);
    std::printf("  of which: forward keeping layer inputs %.2f s (%.2fx), lm_head gradients %.2f s (%.2fx),\n"
                "            layer recompute + backward %.2f s (%.2fx)\n",
                byRecompute.forward, byRecompute.forward / calib, byRecompute.head, byRecompute.head / calib,
                byRecompute.layers, byRecompute.layers / calib);
    std::printf("fisher alone, kept graph  %8.2f s  = %.2fx calibration\n", byGraph.total, byGraph.total / calib);
    std::printf("  of which: forward under autograd %.2f s (%.2fx), head + backward through all layers %.2f s (%.2fx)\n",
                byGraph.forward, byGraph.forward / calib, byGraph.total - byGraph.forward,
                (byGraph.total - byGraph.forward) / calib);
    std::printf("calibrate --fisher (%s; graph estimate %.0f MB, budget %.0f MB):\n"
                "  calibration %.2f s + fisher backward %.2f s; cost of the Fisher = %.2f s = %.2fx calibration\n",
                keeps ? "kept graph" : "recompute", double(graphBytes) / 1e6, double(fisherGraphBudget()) / 1e6,
                fused.calibration, fused.fisher, fused.calibration + fused.fisher - calib,
                (fused.calibration + fused.fisher - calib) / calib);
    return 0;
}
