// SPDX-License-Identifier: MIT
// Budget solver speed (#7) on a synthetic DeepSeek-V3-sized layout: 61 layers x 256 routed experts
// x 3 linears (gate/up [2048, 7168], down [7168, 2048]) = 46,848 linears, 4 candidate widths
// {2,3,4,8}, real GPTQ byte sizes (group 128). Errors follow the quantization law e0 * 4^-b with
// e0 log-uniform over 4 decades times a Zipf-like expert usage, so the instance looks like a
// measured one. Goal: < 100 ms per solve, so the GUI can re-solve while a budget slider moves.
//
//   bench_alloc [REPS=10] [BITS=3.0]
// Prints the best and median wall time of REPS solves at BITS and at two neighbouring budgets,
// and the achieved bytes vs the budget.
#include "moewb/alloc/allocate.h"
#include "moewb/plan/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace moewb;

int main(int argc, char** argv)
{
    const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
    const double bits = argc > 2 ? std::atof(argv[2]) : 3.0;
    constexpr int64_t kLayers = 61, kExperts = 256, kHidden = 7168, kWidth = 2048, kGroup = 128;
    const std::vector<int64_t> widths{2, 3, 4, 8};

    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    std::vector<KnapsackItem> items;
    items.reserve(size_t(kLayers * kExperts * 3));
    double budgetAt[17] = {};
    for (int64_t l = 0; l < kLayers; ++l)
        for (int64_t e = 0; e < kExperts; ++e) {
            const double usage = 1.0 / double(1 + (e * 7 + l) % kExperts); // Zipf-like
            for (int r = 0; r < 3; ++r) {
                const int64_t in = r == 2 ? kWidth : kHidden, out = r == 2 ? kHidden : kWidth;
                KnapsackItem it;
                const double e0 = std::pow(10.0, 4.0 * u01(rng)) * usage;
                for (int64_t b : widths) {
                    it.bytes.push_back(gptqLinearBytes(in, out, b, kGroup));
                    it.error.push_back(e0 * std::pow(4.0, -double(b)));
                }
                for (int64_t b = 2; b <= 16; ++b)
                    budgetAt[b] += double(gptqLinearBytes(in, out, b, kGroup));
                items.push_back(std::move(it));
            }
        }
    std::printf("instance: %zu linears x %zu candidates, group %lld\n", items.size(), widths.size(), (long long)kGroup);

    for (double target : {bits - 0.25, bits, bits + 0.25}) {
        const int64_t lo = int64_t(std::floor(target));
        const double f = target - double(lo);
        const int64_t budget = int64_t(budgetAt[lo] + f * (budgetAt[lo + 1] - budgetAt[lo]));
        std::vector<double> ms;
        std::vector<int> pick;
        for (int i = 0; i < reps; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            pick = solveKnapsack(items, budget);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(ms.begin(), ms.end());
        int64_t used = 0;
        double err = 0;
        int64_t count[4] = {};
        for (size_t i = 0; i < items.size(); ++i) {
            used += items[i].bytes[size_t(pick[i])];
            err += items[i].error[size_t(pick[i])];
            count[pick[i]]++;
        }
        std::printf("target %.2f bits: budget %lld bytes, used %lld (%.6f%% left), error %.4g, widths 2:%lld 3:%lld "
                    "4:%lld 8:%lld; solve best %.1f ms, median %.1f ms (%s goal 100 ms)\n",
                    target, (long long)budget, (long long)used, 100.0 * double(budget - used) / double(budget), err,
                    (long long)count[0], (long long)count[1], (long long)count[2], (long long)count[3], ms.front(),
                    ms[ms.size() / 2], ms[ms.size() / 2] < 100.0 ? "meets" : "MISSES");
        if (used > budget) {
            std::printf("ERROR: over budget\n");
            return 1;
        }
    }
    return 0;
}
