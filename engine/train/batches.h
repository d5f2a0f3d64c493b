// SPDX-License-Identifier: MIT
// Training batches: random windows of the packed token stream, drawn in the order one
// std::mt19937_64(seed) gives them (the same sequence whether or not a thread prefetches them, and
// whether or not the run was resumed), prepared `depth` batches ahead on a background thread.
#pragma once

#include <ATen/ATen.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace moewb {

class BatchStream {
public:
    struct Batch {
        int64_t step = 0;     ///< 0-based step this batch is for
        at::Tensor ids;       ///< [batch, seqLen + 1] int64
        std::mt19937_64 rng;  ///< the sampler's state after drawing this batch (for snapshots)
    };

    /// Batches for steps [firstStep, lastStep). `rngState` is the sampler state after firstStep
    /// batches (rngToString of a snapshot), or empty for a fresh run (firstStep must then be 0).
    BatchStream(const std::vector<int32_t>& stream, int64_t batch, int64_t seqLen, uint64_t seed,
                const std::string& rngState, int64_t firstStep, int64_t lastStep, int64_t depth);
    ~BatchStream();
    BatchStream(const BatchStream&) = delete;
    BatchStream& operator=(const BatchStream&) = delete;

    /// The next batch, in step order (blocks until the producer has it).
    Batch next();

    static std::string rngToString(const std::mt19937_64& rng);

private:
    Batch make();
    void produce();

    const std::vector<int32_t>& m_stream;
    const int64_t m_batch, m_seqLen, m_lastStep, m_depth;
    int64_t m_nextStep;
    std::mt19937_64 m_rng;
    std::uniform_int_distribution<int64_t> m_start;

    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<Batch> m_queue;
    std::exception_ptr m_error;
    bool m_stop = false;
    std::thread m_thread;
};

} // namespace moewb
