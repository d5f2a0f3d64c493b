// SPDX-License-Identifier: MIT
#include "moewb/dist/dist.h"

#include <algorithm>

namespace moewb {

namespace {

/// Copies the spans into one buffer, reduces it with `op`, copies the result back.
template <typename T, typename Spans, typename Op>
void reduceSpans(Spans& spans, Op&& op)
{
    size_t total = 0;
    for (const auto& s : spans)
        total += s.n;
    if (total == 0)
        return;
    std::vector<T> buf;
    buf.reserve(total);
    for (const auto& s : spans)
        buf.insert(buf.end(), s.data, s.data + s.n);
    op(buf.data(), buf.size());
    size_t off = 0;
    for (const auto& s : spans) {
        std::copy(buf.begin() + std::ptrdiff_t(off), buf.begin() + std::ptrdiff_t(off + s.n), s.data);
        off += s.n;
    }
}

} // namespace

void ReduceList::run(DistContext& dist, const std::string& what)
{
    reduceSpans<int64_t>(m_i64, [&](int64_t* p, size_t n) { dist.allReduceSum(p, n, what + " (integer sums)"); });
    reduceSpans<double>(m_f64, [&](double* p, size_t n) { dist.allReduceSum(p, n, what + " (sums)"); });
    reduceSpans<float>(m_f32, [&](float* p, size_t n) { dist.allReduceMax(p, n, what + " (maxima)"); });
    m_i64.clear();
    m_f64.clear();
    m_f32.clear();
}

} // namespace moewb
