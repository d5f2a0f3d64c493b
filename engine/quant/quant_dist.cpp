// SPDX-License-Identifier: MIT
#include "quant/quant_dist.h"

#include "moewb/core/error.h"
#include "moewb/dist/dist.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace moewb {

std::vector<int> assignOwners(const std::vector<double>& costs, int worldSize)
{
    std::vector<size_t> order(costs.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
    std::vector<double> load(size_t(std::max(worldSize, 1)), 0.0);
    std::vector<int> owner(costs.size(), 0);
    for (size_t i : order) {
        const size_t r = size_t(std::min_element(load.begin(), load.end()) - load.begin());
        owner[i] = int(r);
        load[r] += costs[i];
    }
    return owner;
}

double quantizeCost(int64_t inFeatures, int64_t outRows)
{
    const double in = double(inFeatures);
    return in * in * (double(outRows) + in);
}

namespace {

class Writer {
public:
    template <typename T>
    void pod(const T& v)
    {
        raw(&v, sizeof v);
    }
    void raw(const void* p, size_t n) { m_out.append(static_cast<const char*>(p), n); }
    void str(const std::string& s)
    {
        pod(uint64_t(s.size()));
        raw(s.data(), s.size());
    }
    void put(const std::string& s) { str(s); }
    template <typename T>
    void put(const T& v)
    {
        pod(v);
    }
    /// dtype, sizes, contiguous bytes.
    void tensor(const at::Tensor& t)
    {
        const at::Tensor c = t.contiguous();
        pod(int32_t(c.scalar_type()));
        pod(int32_t(c.dim()));
        for (int64_t d : c.sizes())
            pod(d);
        raw(c.data_ptr(), size_t(c.nbytes()));
    }
    std::string take() { return std::move(m_out); }

private:
    std::string m_out;
};

class Reader {
public:
    explicit Reader(const std::string& in)
        : m_in(in)
    {
    }
    template <typename T>
    T pod()
    {
        T v;
        raw(&v, sizeof v);
        return v;
    }
    void raw(void* p, size_t n)
    {
        MOEWB_ASSERT(m_pos + n <= m_in.size());
        std::memcpy(p, m_in.data() + m_pos, n);
        m_pos += n;
    }
    std::string str()
    {
        const auto n = size_t(pod<uint64_t>());
        MOEWB_ASSERT(m_pos + n <= m_in.size());
        std::string s = m_in.substr(m_pos, n);
        m_pos += n;
        return s;
    }
    void get(std::string& s) { s = str(); }
    template <typename T>
    void get(T& v)
    {
        v = pod<T>();
    }
    at::Tensor tensor()
    {
        const auto type = at::ScalarType(pod<int32_t>());
        const auto dims = pod<int32_t>();
        std::vector<int64_t> sizes(static_cast<size_t>(dims));
        for (int64_t& d : sizes)
            d = pod<int64_t>();
        at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(type));
        raw(t.data_ptr(), size_t(t.nbytes()));
        return t;
    }
    bool done() const { return m_pos == m_in.size(); }

private:
    const std::string& m_in;
    size_t m_pos = 0;
};

} // namespace

std::string packQuantized(const std::vector<QuantizedLinear>& q)
{
    Writer w;
    w.pod(uint64_t(q.size()));
    for (const QuantizedLinear& l : q) {
        const LinearQuantResult& r = l.result;
        // Codes are < 2^bits: one byte each up to 8 bits (every GPTQ/GGUF width), two above.
        w.tensor(l.q.to(r.plan.bits <= 8 ? at::kByte : at::kShort));
        w.tensor(l.scales);
        w.tensor(l.zeros);
        w.tensor(l.gIdx);
        w.str(r.name);
        w.str(r.role);
        w.str(r.method);
        w.str(r.fallback);
        for (int64_t v : {r.layer, r.expert, r.tokens})
            w.pod(v);
        forEachSetting([&](const auto& f) { w.put(r.plan.*f.resolved); });
        for (double v : {r.relError, r.dampUsed, r.dampLambda, r.seconds})
            w.pod(v);
    }
    return w.take();
}

std::vector<QuantizedLinear> unpackQuantized(const std::string& bytes, const std::vector<at::ScalarType>& storeDtypes)
{
    Reader rd(bytes);
    const auto n = size_t(rd.pod<uint64_t>());
    MOEWB_ASSERT(n == storeDtypes.size());
    std::vector<QuantizedLinear> out(n);
    for (size_t i = 0; i < n; ++i) {
        QuantizedLinear& l = out[i];
        l.q = rd.tensor().to(at::kInt).contiguous();
        l.scales = rd.tensor();
        l.zeros = rd.tensor();
        l.gIdx = rd.tensor();
        LinearQuantResult& r = l.result;
        r.name = rd.str();
        r.role = rd.str();
        r.method = rd.str();
        r.fallback = rd.str();
        for (int64_t* v : {&r.layer, &r.expert, &r.tokens})
            *v = rd.pod<int64_t>();
        forEachSetting([&](const auto& f) { rd.get(r.plan.*f.resolved); });
        for (double* v : {&r.relError, &r.dampUsed, &r.dampLambda, &r.seconds})
            *v = rd.pod<double>();
        l.stored = dequantHalfScales(l.q, l.scales, l.zeros, l.gIdx).to(storeDtypes[i]).contiguous();
    }
    MOEWB_ASSERT(rd.done());
    return out;
}

std::vector<std::vector<QuantizedLinear>> quantizeAcrossRanks(
    DistContext& dist, const std::vector<double>& costs,
    const std::function<std::vector<QuantizedLinear>(size_t)>& compute,
    const std::function<std::vector<at::ScalarType>(size_t)>& storeTypes, const std::string& what)
{
    const std::vector<int> owner = assignOwners(costs, dist.worldSize());
    // This rank's items as (index, size, packed bytes) records.
    Writer mine;
    for (size_t i = 0; i < costs.size(); ++i)
        if (owner[i] == dist.rank()) {
            mine.pod(uint64_t(i));
            mine.str(packQuantized(compute(i)));
        }
    const std::vector<std::string> all = dist.allGather(mine.take(), what);
    std::vector<std::string> packed(costs.size());
    std::vector<bool> seen(costs.size(), false);
    for (const std::string& part : all) {
        Reader rd(part);
        while (!rd.done()) {
            const auto i = size_t(rd.pod<uint64_t>());
            MOEWB_ASSERT(i < costs.size() && !seen[i]);
            packed[i] = rd.str();
            seen[i] = true;
        }
    }
    std::vector<std::vector<QuantizedLinear>> out;
    for (size_t i = 0; i < costs.size(); ++i) {
        MOEWB_ASSERT(seen[i]);
        out.push_back(unpackQuantized(packed[i], storeTypes(i)));
    }
    return out;
}

} // namespace moewb
