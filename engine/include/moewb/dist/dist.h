// SPDX-License-Identifier: MIT
// Data-parallel runs across processes (#15) on libtorch's own distributed runtime: a c10d TCPStore
// rendezvous (rank 0 hosts it) and a ProcessGroupGloo (CPU) for the collectives. Torch-free API:
// only engine/dist/*.cpp see c10d. docs/distributed.md describes the use and the failure behaviour.
//
// Every collective below must be called by every rank, in the same order, with the same sizes
// (the engine's distributed code paths are written so that the sequence of calls depends only on
// the model, the plan and the options, never on a rank's data). A peer that dies, or a collective
// that does not complete within the timeout, raises DistError naming this rank, the operation and
// what c10d reported; the run then fails as any other error does (no partial output).
#pragma once

#include "moewb/core/error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moewb {

/// A distributed collective or the rendezvous failed (peer gone, timeout, bad address).
class DistError : public Error {
public:
    using Error::Error;
};

/// Where to meet. Values < 0 / empty are taken from the environment as torchrun sets it
/// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), then from the defaults 127.0.0.1:29500.
struct DistOptions {
    int rank = -1;
    int worldSize = -1;
    std::string masterAddr;
    int masterPort = -1;
    /// Rendezvous and per-collective timeout. A dead peer is usually noticed at once (connection
    /// reset); a hung one after this long.
    double timeoutSeconds = 300;
};

/// Fills the unset fields of `given` from RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, then the
/// defaults, and checks them (0 <= rank < worldSize, port in 1..65535). InputError naming the
/// flag or variable otherwise. MOEWB_DIST_TIMEOUT (seconds) overrides timeoutSeconds if set.
DistOptions resolveDistOptions(const DistOptions& given);

/// One process's membership of a process group.
class DistContext {
public:
    /// Rendezvous: rank 0 listens on masterAddr:masterPort, everyone connects; returns once all
    /// worldSize ranks have joined (DistError after timeoutSeconds otherwise).
    static std::unique_ptr<DistContext> connect(const DistOptions& resolved);
    ~DistContext();
    DistContext(const DistContext&) = delete;
    DistContext& operator=(const DistContext&) = delete;

    int rank() const;
    int worldSize() const;

    /// Element-wise sums / maxima over all ranks, in place (every rank gets the result). `what`
    /// names the data in error messages ("calibrate: routing counts").
    void allReduceSum(int64_t* data, size_t n, const std::string& what);
    void allReduceSum(double* data, size_t n, const std::string& what);
    void allReduceMax(float* data, size_t n, const std::string& what);
    /// Every rank contributes one byte string (any length); every rank gets all of them, by rank.
    std::vector<std::string> allGather(const std::string& mine, const std::string& what);
    /// bytes on `root` replaces bytes everywhere else.
    void broadcast(std::string& bytes, int root, const std::string& what);
    void barrier(const std::string& what);

    /// Payload bytes this rank has handed to collectives so far (its own contribution, not the
    /// transport's traffic): the communication volume the benchmark reports.
    uint64_t bytesCommunicated() const;

private:
    struct Impl;
    explicit DistContext(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m;
};

/// Many buffers reduced together: one all-reduce for all int64 sums, one for all double sums, one
/// for all float maxima (fewer, larger messages). Every rank must add the same buffers, in the
/// same order, with the same sizes. The pointers must stay valid until run().
class ReduceList {
public:
    void sum(int64_t* data, size_t n) { m_i64.push_back({data, n}); }
    void sum(double* data, size_t n) { m_f64.push_back({data, n}); }
    void max(float* data, size_t n) { m_f32.push_back({data, n}); }
    /// Reduces everything added so far in place and clears the list.
    void run(DistContext& dist, const std::string& what);

private:
    template <typename T>
    struct Span {
        T* data;
        size_t n;
    };
    std::vector<Span<int64_t>> m_i64;
    std::vector<Span<double>> m_f64;
    std::vector<Span<float>> m_f32;
};

/// The contiguous block [begin, end) of n items that `rank` of `worldSize` takes: items are dealt
/// in rank order, the first n % worldSize ranks get one more. Contiguous blocks keep every sum
/// in the same order as a single process would add it, only split into per-rank partial sums.
struct ShardRange {
    int64_t begin = 0;
    int64_t end = 0;
};
ShardRange shardOf(int64_t n, int rank, int worldSize);

} // namespace moewb
