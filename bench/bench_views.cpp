// SPDX-License-Identifier: MIT
// The matrix views at DeepSeek-V3 scale (#27): goal, each update within 50 ms.
//
//   bench_views [REPS=20]
// On a synthetic 61-layer × 256-expert stats (tests/widgets/statsfixture.h), with the views shown
// offscreen at the default window's proportions, times from the call to the repainted view
// (synchronous repaint()):
//   heat map 61 × 256     a metric switch (token share ↔ top-1 share): rebuild the 15,616 values, replot;
//   heat map selection    a click-equivalent selection change (outline moves, neighbours follow);
//   correlation 256 × 256 a layer switch: 65,536 values, replot;
//   correlation clustered the same with cluster order (average linkage of 256 experts);
//   domains 6 × 256       a layer switch.
// Prints the median and worst wall ms, the median CPU ms of the thread, and the median's ratio to
// 50 ms. Run with QT_QPA_PLATFORM=offscreen on a machine without a display.
#include "../tests/widgets/statsfixture.h"
#include "document.h"
#include "plot/matrixplot.h"
#include "selection.h"
#include "views/correlationview.h"
#include "views/domainview.h"
#include "views/routingheatmapview.h"

#include <QApplication>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <time.h>
#include <vector>

using namespace moewb;

namespace {

double cpuMs()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

void measure(const char* name, int reps, const std::function<void(int)>& step, QWidget* repaint)
{
    std::vector<double> wall, cpu;
    for (int i = 0; i < reps + 2; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpuMs();
        step(i);
        repaint->repaint();
        const double c1 = cpuMs();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (i >= 2) { // the first two warm caches up
            wall.push_back(ms);
            cpu.push_back(c1 - c0);
        }
        QCoreApplication::processEvents();
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    const double median = wall[wall.size() / 2];
    std::printf("%-26s median %7.2f ms  worst %7.2f ms  cpu %7.2f ms  median/50ms %.2f %s\n", name, median,
                wall.back(), cpu[cpu.size() / 2], median / 50.0, median < 50.0 ? "ok" : "SLOW");
}

} // namespace

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    const int reps = argc > 1 ? std::max(3, std::atoi(argv[1])) : 20;
    auto stats = std::make_shared<const CalibStats>(test::syntheticStats(256, 61, 6, true));
    Document doc;
    RoutingHeatmapView heatmap(&doc);
    CorrelationView correlation(&doc);
    DomainView domains(&doc);
    // the default window's areas: the heat map in the centre, the matrices in the right column
    heatmap.resize(760, 560);
    correlation.resize(560, 560);
    domains.resize(560, 560);
    for (QWidget* w : {static_cast<QWidget*>(&heatmap), static_cast<QWidget*>(&correlation),
                       static_cast<QWidget*>(&domains)})
        w->show();
    doc.setStats(stats, QStringLiteral("synthetic"));
    QCoreApplication::processEvents();
    std::printf("61 layers x 256 experts, %d repetitions each\n", reps);

    measure("heat map 61x256 metric", reps, [&](int i) {
        heatmap.setMetric(i % 2 ? RoutingMetric::Top1Share : RoutingMetric::TokenShare);
        heatmap.matrixPlot()->replot();
    }, &heatmap);
    measure("heat map selection", reps, [&](int i) {
        doc.selection()->select(int(i % 61), int((i * 37) % 256));
        heatmap.matrixPlot()->replot();
    }, &heatmap);
    measure("correlation 256x256 layer", reps, [&](int i) {
        correlation.setLayer(i % 61);
        correlation.matrixPlot()->replot();
    }, &correlation);
    correlation.setMeasure(CorrelationView::Measure::OutputCorrelation);
    correlation.setClustered(true);
    measure("correlation clustered", reps, [&](int i) {
        correlation.setLayer(i % 61);
        correlation.matrixPlot()->replot();
    }, &correlation);
    measure("domains 6x256 layer", reps, [&](int i) {
        domains.setLayer(i % 61);
        domains.matrixPlot()->replot();
    }, &domains);
    return 0;
}
