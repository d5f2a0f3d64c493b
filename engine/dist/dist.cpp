// SPDX-License-Identifier: MIT
// DistContext on c10d: TCPStore rendezvous + ProcessGroupGloo. The only translation unit that
// includes c10d headers (USE_C10D_GLOO is defined for engine/dist/ in engine/CMakeLists.txt).
#include "moewb/dist/dist.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace moewb {

namespace {

/// c10d messages carry backtraces and several lines; keep the first line of the concise text.
std::string oneLine(const std::string& s)
{
    std::string out = s.substr(0, s.find('\n'));
    while (!out.empty() && (out.back() == '\r' || out.back() == ' '))
        out.pop_back();
    return out.empty() ? "unknown error" : out;
}

std::string messageOf(const std::exception& e)
{
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e))
        return oneLine(ce->what_without_backtrace());
    return oneLine(e.what());
}

const char* envOr(const char* name)
{
    const char* v = std::getenv(name);
    return (v && *v) ? v : nullptr;
}

int64_t parseInt(const std::string& text, const std::string& where)
{
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || end != text.c_str() + text.size())
        throw InputError(where, "expected an integer, got '" + text + "'");
    return int64_t(v);
}

bool isLoopback(const std::string& host)
{
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

} // namespace

DistOptions resolveDistOptions(const DistOptions& given)
{
    DistOptions o = given;
    if (o.rank < 0)
        o.rank = envOr("RANK") ? int(parseInt(envOr("RANK"), "RANK")) : -1;
    if (o.worldSize < 0)
        o.worldSize = envOr("WORLD_SIZE") ? int(parseInt(envOr("WORLD_SIZE"), "WORLD_SIZE")) : -1;
    if (o.masterAddr.empty())
        o.masterAddr = envOr("MASTER_ADDR") ? envOr("MASTER_ADDR") : "127.0.0.1";
    if (o.masterPort < 0)
        o.masterPort = envOr("MASTER_PORT") ? int(parseInt(envOr("MASTER_PORT"), "MASTER_PORT")) : 29500;
    if (const char* t = envOr("MOEWB_DIST_TIMEOUT")) {
        char* end = nullptr;
        const double v = std::strtod(t, &end);
        if (end != t + std::strlen(t) || !(v > 0))
            throw InputError("MOEWB_DIST_TIMEOUT", std::string("expected a positive number of seconds, got '") + t + "'");
        o.timeoutSeconds = v;
    }
    MOEWB_CHECK(o.worldSize >= 1, "distributed run", "the world size is not set (or WORLD_SIZE in the environment)");
    MOEWB_CHECK(o.rank >= 0, "distributed run", "the rank of this process is not set (or RANK in the environment)");
    MOEWB_CHECK(o.rank < o.worldSize, "distributed run", "rank ", o.rank, " is not below the world size ", o.worldSize);
    MOEWB_CHECK(o.masterPort >= 1 && o.masterPort <= 65535, "distributed run", "the master port must be in 1..65535, got ",
                o.masterPort);
    MOEWB_CHECK(o.timeoutSeconds > 0, "MOEWB_DIST_TIMEOUT", "must be positive");
    return o;
}

ShardRange shardOf(int64_t n, int rank, int worldSize)
{
    const int64_t per = n / worldSize, extra = n % worldSize;
    const int64_t begin = rank * per + std::min<int64_t>(rank, extra);
    return ShardRange{begin, begin + per + (rank < extra ? 1 : 0)};
}

struct DistContext::Impl {
    int rank = 0;
    int worldSize = 1;
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
    uint64_t bytes = 0;

    /// Runs one collective; any c10d/Gloo failure becomes a one-line DistError.
    template <typename F>
    void run(const std::string& op, const std::string& what, F&& f)
    {
        try {
            f();
        } catch (const DistError&) {
            throw;
        } catch (const std::exception& e) {
            throw DistError("rank " + std::to_string(rank) + " of " + std::to_string(worldSize),
                            op + " of " + what + " failed (a peer died or timed out?): " + messageOf(e));
        }
    }
    void wait(const c10::intrusive_ptr<c10d::Work>& w) { w->wait(); }
};

DistContext::DistContext(std::unique_ptr<Impl> impl)
    : m(std::move(impl))
{
}

DistContext::~DistContext() = default;

std::unique_ptr<DistContext> DistContext::connect(const DistOptions& o)
{
    auto impl = std::make_unique<Impl>();
    impl->rank = o.rank;
    impl->worldSize = o.worldSize;
    const auto timeout = std::chrono::milliseconds(int64_t(o.timeoutSeconds * 1000.0));
    const std::string where = "rank " + std::to_string(o.rank) + " of " + std::to_string(o.worldSize);
    const std::string at = o.masterAddr + ":" + std::to_string(o.masterPort);
    try {
        c10d::TCPStoreOptions so;
        so.port = uint16_t(o.masterPort);
        so.isServer = o.rank == 0;
        so.numWorkers = size_t(o.worldSize);
        so.waitWorkers = false; // the Gloo connect below waits for everyone (once, not twice the timeout)
        so.timeout = timeout;
        impl->store = c10::make_intrusive<c10d::TCPStore>(o.masterAddr, so);

        auto gopt = c10d::ProcessGroupGloo::Options::create(timeout);
        // The Gloo transport binds to this machine's own address: the interface in
        // GLOO_SOCKET_IFNAME (as PyTorch honours it), loopback when the master is on loopback
        // (single-machine runs), else the address this machine's hostname resolves to.
        if (const char* ifname = envOr("GLOO_SOCKET_IFNAME"))
            gopt->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (isLoopback(o.masterAddr))
            gopt->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
            gopt->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        gopt->threads = 1;
        impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, o.rank, o.worldSize, gopt);
    } catch (const std::exception& e) {
        throw DistError(where, "rendezvous at " + at + " failed: " + messageOf(e));
    }
    return std::unique_ptr<DistContext>(new DistContext(std::move(impl)));
}

int DistContext::rank() const
{
    return m->rank;
}

int DistContext::worldSize() const
{
    return m->worldSize;
}

uint64_t DistContext::bytesCommunicated() const
{
    return m->bytes;
}

namespace {
template <typename T>
at::Tensor wrap(T* data, size_t n, at::ScalarType type)
{
    return at::from_blob(static_cast<void*>(data), {int64_t(n)}, at::TensorOptions().dtype(type));
}
} // namespace

void DistContext::allReduceSum(int64_t* data, size_t n, const std::string& what)
{
    if (n == 0 || m->worldSize == 1)
        return;
    m->run("all-reduce (sum)", what, [&] {
        std::vector<at::Tensor> t{wrap(data, n, at::kLong)};
        m->wait(m->pg->allreduce(t, c10d::AllreduceOptions{c10d::ReduceOp::SUM}));
    });
    m->bytes += n * sizeof(int64_t);
}

void DistContext::allReduceSum(double* data, size_t n, const std::string& what)
{
    if (n == 0 || m->worldSize == 1)
        return;
    m->run("all-reduce (sum)", what, [&] {
        std::vector<at::Tensor> t{wrap(data, n, at::kDouble)};
        m->wait(m->pg->allreduce(t, c10d::AllreduceOptions{c10d::ReduceOp::SUM}));
    });
    m->bytes += n * sizeof(double);
}

void DistContext::allReduceMax(float* data, size_t n, const std::string& what)
{
    if (n == 0 || m->worldSize == 1)
        return;
    m->run("all-reduce (max)", what, [&] {
        std::vector<at::Tensor> t{wrap(data, n, at::kFloat)};
        m->wait(m->pg->allreduce(t, c10d::AllreduceOptions{c10d::ReduceOp::MAX}));
    });
    m->bytes += n * sizeof(float);
}

std::vector<std::string> DistContext::allGather(const std::string& mine, const std::string& what)
{
    const int W = m->worldSize;
    if (W == 1)
        return {mine};
    // Sizes first (each rank fills its slot), then one equal-size all-gather of padded buffers.
    std::vector<int64_t> sizes(size_t(W), 0);
    sizes[size_t(m->rank)] = int64_t(mine.size());
    allReduceSum(sizes.data(), sizes.size(), what + " (sizes)");
    const int64_t maxSize = std::max<int64_t>(1, *std::max_element(sizes.begin(), sizes.end()));
    at::Tensor in = at::zeros({maxSize}, at::kByte);
    std::memcpy(in.data_ptr(), mine.data(), mine.size());
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < W; ++r)
        out[0].push_back(at::empty({maxSize}, at::kByte));
    m->run("all-gather", what, [&] {
        std::vector<at::Tensor> inputs{in};
        m->wait(m->pg->allgather(out, inputs));
    });
    m->bytes += uint64_t(maxSize);
    std::vector<std::string> result(static_cast<size_t>(W));
    for (int r = 0; r < W; ++r)
        result[size_t(r)].assign(static_cast<const char*>(out[0][size_t(r)].data_ptr()), size_t(sizes[size_t(r)]));
    return result;
}

void DistContext::broadcast(std::string& bytes, int root, const std::string& what)
{
    if (m->worldSize == 1)
        return;
    int64_t size = m->rank == root ? int64_t(bytes.size()) : 0;
    m->run("broadcast", what + " (size)", [&] {
        std::vector<at::Tensor> t{wrap(&size, 1, at::kLong)};
        m->wait(m->pg->broadcast(t, c10d::BroadcastOptions{root}));
    });
    if (m->rank != root)
        bytes.assign(size_t(size), '\0');
    if (size > 0)
        m->run("broadcast", what, [&] {
            std::vector<at::Tensor> t{wrap(bytes.data(), size_t(size), at::kByte)};
            m->wait(m->pg->broadcast(t, c10d::BroadcastOptions{root}));
        });
    if (m->rank == root)
        m->bytes += uint64_t(size) + sizeof(int64_t);
}

void DistContext::barrier(const std::string& what)
{
    if (m->worldSize == 1)
        return;
    m->run("barrier", what, [&] { m->wait(m->pg->barrier()); });
}

} // namespace moewb
