// SPDX-License-Identifier: MIT
#include "train/batches.h"

#include "moewb/core/error.h"

#include <sstream>

namespace moewb {

BatchStream::BatchStream(const std::vector<int32_t>& stream, int64_t batch, int64_t seqLen, uint64_t seed,
                         const std::string& rngState, int64_t firstStep, int64_t lastStep, int64_t depth)
    : m_stream(stream)
    , m_batch(batch)
    , m_seqLen(seqLen)
    , m_lastStep(lastStep)
    , m_depth(depth)
    , m_nextStep(firstStep)
    , m_rng(seed)
    , m_start(0, int64_t(stream.size()) - seqLen - 2)
{
    if (!rngState.empty()) {
        std::istringstream in(rngState);
        in >> m_rng;
        if (!in)
            throw InputError("training state", "sampler state is not a std::mt19937_64 state");
    } else if (firstStep != 0) {
        throw InputError("training state", "a resumed run needs the sampler state");
    }
    if (m_depth > 0)
        m_thread = std::thread([this] { produce(); });
}

BatchStream::~BatchStream()
{
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_stop = true;
    }
    m_cv.notify_all();
    if (m_thread.joinable())
        m_thread.join();
}

std::string BatchStream::rngToString(const std::mt19937_64& rng)
{
    std::ostringstream out;
    out << rng;
    return out.str();
}

BatchStream::Batch BatchStream::make()
{
    Batch b;
    b.step = m_nextStep++;
    b.ids = at::empty({m_batch, m_seqLen + 1}, at::kLong);
    auto* ids = b.ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < m_batch; ++i) {
        const int64_t s = m_start(m_rng);
        for (int64_t t = 0; t <= m_seqLen; ++t)
            ids[i * (m_seqLen + 1) + t] = m_stream[size_t(s + t)];
    }
    b.rng = m_rng;
    return b;
}

void BatchStream::produce()
{
    try {
        while (true) {
            {
                std::unique_lock<std::mutex> lock(m_mutex);
                m_cv.wait(lock, [&] { return m_stop || int64_t(m_queue.size()) < m_depth; });
                if (m_stop || m_nextStep >= m_lastStep)
                    return;
            }
            Batch b = make(); // m_rng and m_nextStep are touched by this thread only
            {
                std::lock_guard<std::mutex> lock(m_mutex);
                m_queue.push_back(std::move(b));
            }
            m_cv.notify_all();
        }
    } catch (...) {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_error = std::current_exception();
        m_cv.notify_all();
    }
}

BatchStream::Batch BatchStream::next()
{
    if (m_depth <= 0) {
        MOEWB_CHECK(m_nextStep < m_lastStep, "train", "no batch left after step ", m_lastStep);
        return make();
    }
    std::unique_lock<std::mutex> lock(m_mutex);
    m_cv.wait(lock, [&] { return !m_queue.empty() || m_error; });
    if (m_queue.empty() && m_error)
        std::rethrow_exception(m_error);
    Batch b = std::move(m_queue.front());
    m_queue.pop_front();
    lock.unlock();
    m_cv.notify_all();
    return b;
}

} // namespace moewb
