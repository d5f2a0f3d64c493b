// SPDX-License-Identifier: MIT
// Task metrics from per-choice log-likelihoods (acc, acc_norm, stderr, LAMBADA ppl), per domain.
#include "moewb/eval/tasks.h"

#include "moewb/core/error.h"

#include <cmath>
#include <map>

namespace moewb {

namespace {

/// Index of the first maximum (numpy.argmax).
int64_t argmax(const std::vector<double>& v)
{
    int64_t best = 0;
    for (size_t i = 1; i < v.size(); ++i)
        if (v[i] > v[size_t(best)])
            best = int64_t(i);
    return best;
}

/// Mean and the harness's mean_stderr: sample standard deviation (ddof 1) / sqrt(n).
void meanStderr(const std::vector<double>& x, double& mean, double& stderr_)
{
    const double n = double(x.size());
    double s = 0.0;
    for (double v : x)
        s += v;
    mean = x.empty() ? 0.0 : s / n;
    if (x.size() < 2) {
        stderr_ = 0.0;
        return;
    }
    double ss = 0.0;
    for (double v : x)
        ss += (v - mean) * (v - mean);
    stderr_ = std::sqrt(ss / (n - 1.0) / n);
}

TaskMetrics metricsOf(const TaskSet& set, const TaskResult& r, const std::vector<size_t>& items, const std::string& domain)
{
    TaskMetrics m;
    m.domain = domain;
    m.n = int64_t(items.size());
    std::vector<double> acc, accNorm, ll;
    for (size_t i : items) {
        const TaskItem& it = set.items[i];
        acc.push_back(r.correct[i] ? 1.0 : 0.0);
        if (set.layout == TaskLayout::Lambada)
            ll.push_back(r.scores[i][0].loglik);
        else
            accNorm.push_back(r.predNorm[i] == it.label ? 1.0 : 0.0);
    }
    meanStderr(acc, m.acc, m.accStderr);
    m.hasAccNorm = set.layout != TaskLayout::Lambada && set.layout != TaskLayout::WinoGrande;
    if (m.hasAccNorm)
        meanStderr(accNorm, m.accNorm, m.accNormStderr);
    if (set.layout == TaskLayout::Lambada) {
        double meanLl = 0.0, unused = 0.0;
        meanStderr(ll, meanLl, unused);
        m.hasPpl = true;
        m.ppl = std::exp(-meanLl);
    }
    return m;
}

} // namespace

TaskResult scoreTask(const TaskSet& set, const std::vector<std::vector<ChoiceScore>>& scores)
{
    MOEWB_ASSERT(scores.size() == set.items.size());
    TaskResult r;
    r.name = set.name;
    r.file = set.file;
    r.layout = set.layout;
    r.scores = scores;
    std::map<std::string, std::vector<size_t>> byDomain;
    std::vector<size_t> all;
    for (size_t i = 0; i < set.items.size(); ++i) {
        const TaskItem& it = set.items[i];
        MOEWB_ASSERT(scores[i].size() == it.choices.size());
        std::vector<double> ll, norm;
        for (size_t c = 0; c < it.choices.size(); ++c) {
            ll.push_back(scores[i][c].loglik);
            norm.push_back(scores[i][c].loglik / double(it.choices[c].normLength));
        }
        r.pred.push_back(argmax(ll));
        r.predNorm.push_back(argmax(norm));
        r.correct.push_back(set.layout == TaskLayout::Lambada ? scores[i][0].greedy : r.pred.back() == it.label);
        all.push_back(i);
        if (!it.domain.empty())
            byDomain[it.domain].push_back(i);
    }
    r.overall = metricsOf(set, r, all, "");
    for (const auto& [domain, items] : byDomain)
        r.domains.push_back(metricsOf(set, r, items, domain));
    return r;
}

} // namespace moewb
