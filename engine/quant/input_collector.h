// SPDX-License-Identifier: MIT
// ForwardObserver that accumulates the Hessian of selected linears' inputs during a calibration
// pass. Linears that share one input (q/k/v; an MLP's gate/up) share one accumulator, keyed by the
// name of the linear whose linearInput call carries it (q_proj; the gate projection). With a cancel
// poll set it also checks for cancellation at every linear, so that a stop request does not wait
// for a whole batch to pass a whole layer.
#pragma once

#include "model/observer.h"
#include "moewb/core/error.h"
#include "quant/gptq.h"

#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace moewb {

class InputCollector : public ForwardObserver {
public:
    HessianAccumulator& want(const std::string& key, int64_t inFeatures)
    {
        return m_acc.emplace(std::piecewise_construct, std::forward_as_tuple(key), std::forward_as_tuple(inFeatures))
            .first->second;
    }
    const HessianAccumulator& at(const std::string& key) const { return m_acc.at(key); }
    HessianAccumulator& at(const std::string& key) { return m_acc.at(key); }
    bool has(const std::string& key) const { return m_acc.count(key) > 0; }
    /// Drops the accumulator of `key` (its linears are quantized): frees its Hessian.
    void release(const std::string& key) { m_acc.erase(key); }
    /// Throws Cancelled when the cancel poll says stop (for observers that wrap this one).
    void checkCancel() const
    {
        if (m_poll && !m_poll())
            throw Cancelled();
    }
    /// Distributed runs: every accumulator all-reduced, in key order (the same on every rank). The
    /// row counts and the Hessians up to kSmallHessianBytes travel in one message (each message
    /// costs a round of latency, which dominates for small layers); larger ones are summed in
    /// place, one message each, without a copy.
    void allReduce(DistContext& dist, const std::string& what)
    {
        static constexpr int64_t kSmallHessianBytes = int64_t(4) << 20;
        ReduceList batch;
        std::vector<std::pair<const std::string*, HessianAccumulator*>> large;
        for (auto& [key, acc] : m_acc) {
            const bool small = 8 * acc.inFeatures() * acc.inFeatures() <= kSmallHessianBytes;
            acc.reduceWith(batch, small);
            if (!small)
                large.emplace_back(&key, &acc);
        }
        batch.run(dist, what + ": Hessian row counts and small Hessians");
        for (auto& [key, acc] : large)
            dist.allReduceSum(acc->totalData(), acc->totalSize(), what + ": Hessian of " + *key);
    }
    /// poll returns false to cancel: linearInput then throws Cancelled.
    void setCancelPoll(std::function<bool()> poll) { m_poll = std::move(poll); }
    bool wantsLinearInputs() const override { return !m_acc.empty() || bool(m_poll); }
    void linearInput(int64_t, int64_t, const std::string& name, const at::Tensor& x) override
    {
        checkCancel();
        auto it = m_acc.find(name);
        if (it != m_acc.end())
            it->second.add(x);
    }

private:
    std::map<std::string, HessianAccumulator> m_acc;
    std::function<bool()> m_poll;
};

} // namespace moewb
