// SPDX-License-Identifier: MIT
// Cost of the Fisher measurement (#24, docs/allocation.md) against a calibration pass over the same
// tokens, in one process on one model: the bound is Fisher ≤ 3x calibration.
//
//   bench_fisher MODEL_DIR DATA.jsonl [SAMPLES=64] [SEQ_LEN=256] [REPS=3]
// Prints the best of REPS wall times (runs interleaved, so a busy machine slows all alike) of
//   calibration   runCalibration with every default observer (what `moewb calibrate` runs);
//   fisher alone  its own forward that keeps the layer inputs + the layer-streamed backward;
//   fused extra   calibrate --fisher: the backward after a calibration forward that kept the inputs
// and the ratios fisher alone / calibration and fused extra / calibration.
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
    double calib = 1e30, alone = 1e30, forward = 1e30, head = 1e30, layers = 1e30;
    CalibrateOptions::Timings fused{1e30, 1e30};
    for (int rep = 0; rep < reps; ++rep) {
    calib = std::min(calib, seconds([&] { (void)runCalibration(model, seqs, layout, opt); }));
    double tForward = 0, tHead = 0;
    const auto start = std::chrono::steady_clock::now();
    auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    alone = std::min(alone, seconds([&] {
        LayerInputRecorder rec(model.config().numLayers);
        StreamOptions so;
        so.dtype = computeDtype(model.config(), opt.dtype);
        model.run(seqs, so, LogitsSink(), &rec);
        tForward = since();
        // The first report past "lm_head" marks the end of the head's gradient.
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
    forward = std::min(forward, tForward);
    head = std::min(head, tHead - tForward);
    layers = std::min(layers, total - tHead);
    CalibrateOptions::Timings t;
    CalibrateOptions withFisher = opt;
    withFisher.fisher = true;
    withFisher.timings = &t;
    (void)calibrateTokens(dir, tokens, withFisher);
    fused.calibration = std::min(fused.calibration, t.calibration);
    fused.fisher = std::min(fused.fisher, t.fisher);
    }

    std::printf("%s: %lld windows x %lld tokens = %lld tokens, %d thread(s)\n", dir.c_str(), (long long)seqs.size(),
                (long long)opt.seqLen, (long long)n, rt.threads);
    std::printf("calibration pass          %8.2f s\n", calib);
    std::printf("fisher alone              %8.2f s  = %.2fx calibration\n", alone, alone / calib);
    std::printf("  of which: forward keeping layer inputs %.2f s (%.2fx), lm_head gradient %.2f s (%.2fx),\n"
                "            layer recompute + backward %.2f s (%.2fx)\n",
                forward, forward / calib, head, head / calib, layers, layers / calib);
    std::printf("calibrate --fisher: calibration %.2f s + fisher backward %.2f s  (backward = %.2fx calibration)\n",
                fused.calibration, fused.fisher, fused.fisher / calib);
    return 0;
}
