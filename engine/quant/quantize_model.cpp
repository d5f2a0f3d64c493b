// SPDX-License-Identifier: MIT
// The quantization layer loop (moewb/quant/quantize.h): streams one decoder layer at a time,
// collects each group's Hessians from the partially quantized block, quantizes, carries the fully
// quantized block's outputs to the next layer.
#include "moewb/quant/quantize.h"

#include "model/forward.h"
#include "model/streamer.h"
#include "model/weights.h"
#include "moewb/core/error.h"
#include "moewb/core/version.h"
#include "moewb/dist/dist.h"
#include "moewb/model/runtime.h"
#include "quant/expert_balance.h"
#include "quant/input_collector.h"
#include "quant/quant_dist.h"
#include "quant/quant_linear.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace moewb {

namespace {

constexpr int kGroups = 4;
const char* const kGroupNames[kGroups] = {"q,k,v", "o_proj", "gate,up", "down"};

/// True-sequential order inside a block: [q,k,v] → [o] → [every gate/up] → [every down].
int groupOf(LinearRole r)
{
    switch (r) {
    case LinearRole::Q:
    case LinearRole::K:
    case LinearRole::V:
        return 0;
    case LinearRole::O:
        return 1;
    case LinearRole::ExpertGate:
    case LinearRole::ExpertUp:
    case LinearRole::SharedGateProj:
    case LinearRole::SharedUp:
    case LinearRole::DenseGate:
    case LinearRole::DenseUp:
        return 2;
    default:
        return 3;
    }
}

/// The name under which the forward reports this linear's input (shared by q/k/v and by gate/up).
std::string inputKey(const ModelConfig& cfg, const PlanEntry& e)
{
    switch (e.role) {
    case LinearRole::K:
    case LinearRole::V:
        return cfg.attnLinear(e.layer, "q_proj");
    case LinearRole::ExpertUp:
        return cfg.expertLinear(e.layer, e.expert, "gate");
    case LinearRole::SharedUp:
        return cfg.sharedLinear(e.layer, "gate");
    case LinearRole::DenseUp:
        return cfg.denseLinear(e.layer, "gate");
    default:
        return e.name;
    }
}

/// What one layer needs: per group, the quantized entries and the input keys collected per pass.
struct LayerPlan {
    std::array<std::vector<const PlanEntry*>, kGroups> entries;
    std::array<std::vector<std::vector<std::string>>, kGroups> passes; // input keys per forward pass
    std::map<std::string, int64_t> keyIn;                                // key → in_features
    bool empty() const
    {
        for (const auto& g : entries)
            if (!g.empty())
                return false;
        return true;
    }
};

std::vector<LayerPlan> scheduleLayers(const ModelConfig& cfg, const std::vector<PlanEntry>& entries,
                                      int64_t maxHessianBytes)
{
    std::vector<LayerPlan> out(size_t(cfg.numLayers));
    for (const PlanEntry& e : entries) {
        if (e.bits >= 16 && e.sparsity <= 0) // pruned (#14) 16-bit linears still run
            continue;
        LayerPlan& lp = out[size_t(e.layer)];
        lp.entries[size_t(groupOf(e.role))].push_back(&e);
        lp.keyIn[inputKey(cfg, e)] = e.inFeatures;
    }
    for (LayerPlan& lp : out)
        for (int g = 0; g < kGroups; ++g) {
            std::vector<std::string> keys;
            for (const PlanEntry* e : lp.entries[size_t(g)]) {
                const std::string k = inputKey(cfg, *e);
                if (std::find(keys.begin(), keys.end(), k) == keys.end())
                    keys.push_back(k);
            }
            // Greedy split so that the Hessians of one pass stay within the budget (an accumulator
            // holds an fp32 and an fp64 [in, in] sum: ≈ 12·in² bytes).
            int64_t bytes = 0;
            for (const std::string& k : keys) {
                const int64_t need = 12 * lp.keyIn[k] * lp.keyIn[k];
                auto& passes = lp.passes[size_t(g)];
                if (passes.empty() || (bytes + need > maxHessianBytes && !passes.back().empty())) {
                    passes.emplace_back();
                    bytes = 0;
                }
                passes.back().push_back(k);
                bytes += need;
            }
        }
    return out;
}

struct Batch {
    std::vector<size_t> members;
    at::Tensor hidden; // [b, T, H]
};

/// Same batching as Model::run: sequences of equal length only, up to maxTokens per batch.
std::vector<Batch> makeBatches(const std::vector<std::vector<int32_t>>& seqs, int64_t maxTokens)
{
    std::map<int64_t, std::vector<size_t>> byLength;
    for (size_t i = 0; i < seqs.size(); ++i) {
        MOEWB_CHECK(!seqs[i].empty(), "calibration", "sequence ", i, " is empty");
        byLength[int64_t(seqs[i].size())].push_back(i);
    }
    std::vector<Batch> batches;
    for (const auto& [len, idx] : byLength) {
        const size_t per = size_t(std::max<int64_t>(1, maxTokens / len));
        for (size_t s = 0; s < idx.size(); s += per)
            batches.push_back(Batch{{idx.begin() + s, idx.begin() + std::min(idx.size(), s + per)}, {}});
    }
    return batches;
}

const char* dtypeString(at::ScalarType t)
{
    return t == at::kBFloat16 ? "bfloat16" : "float32";
}

void checkOptions(const QuantizeOptions& opt)
{
    MOEWB_CHECK(opt.damp > 0 && opt.damp < 1, "GPTQ damping", "must be in (0, 1), got ", opt.damp);
    MOEWB_CHECK(opt.minExpertTokens >= 0, "minimum tokens per expert", "must not be negative");
    MOEWB_CHECK(opt.maxBatchTokens > 0, "tokens per forward batch", "must be positive");
}

/// Refuses a plan that needs calibration data when none is given, and pruning in a distributed run.
void checkPlanNeeds(const std::vector<PlanEntry>& entries, bool calib, bool distributed, const QuantizeOptions& opt)
{
    int64_t gptqLinears = 0, prunedNeedingCalib = 0;
    for (const PlanEntry& e : entries) {
        gptqLinears += (e.bits < 16 && e.method == "gptq" && e.ggmlType.empty()) ? 1 : 0;
        prunedNeedingCalib += (e.sparsity > 0 && (e.pruneMethod == "sparsegpt"
                                                  || (e.pruneMethod == "wanda" && !opt.actSqMean.count(e.name))))
            ? 1 : 0;
    }
    if (!calib && gptqLinears > 0)
        throw InputError(opt.planPath, std::to_string(gptqLinears)
                                           + " linears use method gptq, which needs calibration data");
    if (!calib && prunedNeedingCalib > 0)
        throw InputError(opt.planPath, std::to_string(prunedNeedingCalib)
                                           + " linears are pruned with sparsegpt or wanda, which need calibration data "
                                             "(wanda also works from the statistics' activation norms)");
    if (distributed)
        for (const PlanEntry& e : entries)
        {
            if (e.sparsity > 0)
                throw InputError(opt.planPath, "'" + e.name + "' is pruned (sparsity " + std::to_string(e.sparsity)
                                                   + "): pruning does not run distributed yet; run it in one process");
            if (!e.ggmlType.empty() && e.bits < 16)
                throw InputError(opt.planPath, "'" + e.name + "' has ggml_type " + e.ggmlType
                                                   + ": ggml types do not run distributed yet; run it in one process");
        }
}

/// The last layer with a linear to quantize or prune; -1 if none.
int64_t lastLayerWithWork(const std::vector<LayerPlan>& layers)
{
    int64_t last = -1;
    for (size_t l = 0; l < layers.size(); ++l)
        if (!layers[l].empty())
            last = int64_t(l);
    return last;
}

/// Distributed: this rank's contiguous block of the sequences (each rank gets one at least).
std::vector<std::vector<int32_t>> shardSequences(const std::vector<std::vector<int32_t>>& sequences,
                                                 const DistContext& dist)
{
    MOEWB_CHECK(int64_t(sequences.size()) >= dist.worldSize(), "calibration data", sequences.size(),
                " sequences cannot be shared by ", dist.worldSize(), " ranks (one at least each)");
    const ShardRange sh = shardOf(int64_t(sequences.size()), dist.rank(), dist.worldSize());
    return {sequences.begin() + sh.begin, sequences.begin() + sh.end};
}

/// The calibration hidden states entering the next layer, and the RoPE tables for all of them.
struct CalibState {
    std::vector<Batch> batches;
    RopeTables rope;
};

/// Embeds `local` in batches; RoPE tables as long as the longest of all `sequences`.
CalibState embedSequences(const ModelConfig& cfg, const Checkpoint& ckpt,
                          const std::vector<std::vector<int32_t>>& sequences,
                          const std::vector<std::vector<int32_t>>& local, int64_t maxBatchTokens, at::ScalarType dtype)
{
    CalibState st;
    st.batches = makeBatches(local, maxBatchTokens);
    int64_t maxLen = 0;
    for (const auto& s : sequences)
        maxLen = std::max<int64_t>(maxLen, int64_t(s.size()));
    st.rope = ropeTables(cfg, maxLen, dtype);
    const at::Tensor embed = loadEmbedding(cfg, ckpt, dtype);
    for (Batch& b : st.batches) {
        std::vector<at::Tensor> ids;
        for (size_t i : b.members) {
            const at::Tensor s = at::tensor(at::ArrayRef<int32_t>(local[i])).to(at::kLong);
            const int64_t lo = s.min().item<int64_t>(), hi = s.max().item<int64_t>();
            MOEWB_CHECK(lo >= 0 && hi < cfg.vocabSize, "calibration data", "token id ", (lo < 0 ? lo : hi),
                        " is outside the model's vocabulary of ", cfg.vocabSize);
            ids.push_back(s);
        }
        b.hidden = embed.index_select(0, at::stack(ids).reshape({-1})).view({int64_t(ids.size()), -1, cfg.hiddenSize});
    }
    return st;
}

/// Progress steps: each linear, each forward pass of each batch, and moving the batches on.
int64_t totalSteps(const std::vector<LayerPlan>& layers, int64_t lastLayer, bool calib, int64_t nb)
{
    int64_t total = 0;
    for (int64_t l = 0; l <= lastLayer; ++l) {
        const LayerPlan& lp = layers[size_t(l)];
        for (int g = 0; g < kGroups; ++g)
            total += int64_t(lp.entries[size_t(g)].size()) + (calib ? int64_t(lp.passes[size_t(g)].size()) * nb : 0);
        total += (calib && l < lastLayer) ? nb : 0; // no layer after the last one with work needs its outputs
    }
    return total;
}

/// A sink call's view of one quantized linear (pointers into q's tensors).
QuantizedWeight weightView(const PlanEntry& e, const Checkpoint& ckpt, const QuantizedLinear& q)
{
    QuantizedWeight qw;
    qw.entry = &e;
    qw.tensorName = e.name + ".weight";
    qw.dtype = ckpt.info(qw.tensorName).dtype;
    qw.shape = {e.outFeatures, e.inFeatures};
    qw.data = q.stored.data_ptr();
    qw.nbytes = uint64_t(q.stored.nbytes());
    if (q.ggmlRows.defined()) {
        qw.ggmlType = q.ggmlType;
        qw.ggmlRows = q.ggmlRows.data_ptr<uint8_t>();
        qw.ggmlRowBytes = q.ggmlRows.size(1);
    } else if (q.q.defined()) { // a pruned 16-bit linear (#14) has only `data`
        MOEWB_ASSERT(q.q.is_contiguous() && q.scales.is_contiguous() && q.zeros.is_contiguous()
                     && q.gIdx.is_contiguous() && q.gIdx.scalar_type() == at::kInt);
        qw.q = q.q.data_ptr<int32_t>();
        qw.scales = q.scales.data_ptr<float>();
        qw.zeros = q.zeros.data_ptr<float>();
        qw.gIdx = q.gIdx.data_ptr<int32_t>();
        qw.groups = q.scales.size(1);
    }
    return qw;
}

/// One group of a layer being quantized: its entries, and the quantized weights that replace the
/// layer's once the whole group is done.
struct GroupWork {
    const LayerPlan& lp;
    int g;
    std::vector<std::pair<std::string, at::Tensor>> pending;

    /// The group's linears that read input `key`.
    std::vector<const PlanEntry*> usersOf(const ModelConfig& cfg, const std::string& key) const
    {
        std::vector<const PlanEntry*> users;
        for (const PlanEntry* e : lp.entries[size_t(g)])
            if (inputKey(cfg, *e) == key)
                users.push_back(e);
        return users;
    }
};

/// The layer loop: per layer, per true-sequential group, per pass of input keys: collect the
/// inputs over the calibration batches, quantize, hand to the sink; then move the batches on.
class LayerLoop {
public:
    LayerLoop(const ModelConfig& cfg, const Checkpoint& ckpt, const QuantizeOptions& opt,
              const QuantizedWeightSink& sink, const ProgressFn& progress, DistContext* dist, at::ScalarType dtype)
        : m_cfg(cfg)
        , m_ckpt(ckpt)
        , m_opt(opt)
        , m_sink(sink)
        , m_progress(progress)
        , m_dist(dist)
        , m_dtype(dtype)
    {
    }

    /// Layers 0..lastLayer; `calib` null: no calibration data (RTN without forward passes).
    std::map<std::string, LinearQuantResult> run(const std::vector<LayerPlan>& layers, int64_t lastLayer,
                                                 CalibState* calib)
    {
        m_calib = calib;
        m_total = totalSteps(layers, lastLayer, calib != nullptr, calib ? int64_t(calib->batches.size()) : 0);
        for (int64_t l = 0; l <= lastLayer; ++l)
            layer(l, layers[size_t(l)], l == lastLayer);
        report(m_progress, "quantize", m_total, m_total, "done");
        return std::move(m_results);
    }

    /// Coverage of every routed expert whose inputs were collected, by (layer, expert).
    std::vector<ExpertCoverage> coverage() const
    {
        std::vector<ExpertCoverage> out;
        for (const auto& [k, c] : m_coverage)
            out.push_back(c);
        return out;
    }

private:
    bool poll(const std::string& msg) const { return m_progress(Progress{"quantize", m_done, m_total, msg}); }

    void layer(int64_t l, const LayerPlan& lp, bool last)
    {
        m_where = "layer " + std::to_string(l + 1) + "/" + std::to_string(m_cfg.numLayers);
        report(m_progress, "quantize", m_done, m_total, m_where + " (loading)");
        LayerWeights w;
        if (m_calib)
            w = loadLayerWeights(m_cfg, m_ckpt, l, m_dtype);
        const std::string inputNorm = m_cfg.layerPrefix(l) + ".input_layernorm.weight";
        for (int g = 0; g < kGroups; ++g) {
            if (lp.entries[size_t(g)].empty())
                continue;
            GroupWork group{lp, g, {}};
            for (const std::vector<std::string>& keys : lp.passes[size_t(g)])
                pass(group, keys, w, inputNorm);
            for (auto& [name, t] : group.pending)
                w.tensors[name] = t.to(m_dtype);
        }
        if (m_calib && !last)
            forwardBatches(w);
        w = LayerWeights();
        releaseFreedMemory();
    }

    /// One pass over the calibration batches collecting the inputs of `keys`, then their linears quantized.
    void pass(GroupWork& group, const std::vector<std::string>& keys, const LayerWeights& w,
              const std::string& inputNorm)
    {
        if (!m_calib)
            return quantizeKeys(group, keys, nullptr);
        InputCollector col;
        for (const std::string& k : keys)
            col.want(k, group.lp.keyIn.at(k));
        const std::string msg = m_where + ": inputs of " + kGroupNames[group.g];
        if (m_progress)
            col.setCancelPoll([this, msg] { return poll(msg); });
        ExpertBalancer balancer(m_cfg, w.layer, col, m_opt.balanceExperts, m_opt.minExpertTokens);
        ForwardObserver* obs = balancer.active() ? static_cast<ForwardObserver*>(&balancer) : &col;
        for (const Batch& b : m_calib->batches) {
            report(m_progress, "quantize", m_done, m_total, msg);
            // q/k/v see only the normed input, o_proj only the attention sub-block; the MLP
            // passes skip the routed experts where the balancer builds their rows itself.
            const at::Tensor normed = group.g <= 1 ? rmsNorm(b.hidden, w.get(inputNorm), m_cfg.rmsNormEps) : at::Tensor();
            if (group.g == 0)
                observeAttentionInput(m_cfg, w, normed, &col);
            else if (group.g == 1)
                attention(m_cfg, w, normed, m_calib->rope, &col);
            else
                decoderLayer(m_cfg, w, b.hidden, m_calib->rope, obs);
            ++m_done;
        }
        if (balancer.active())
            balancer.finishPass(m_dist, m_where);
        if (m_dist)
            col.allReduce(*m_dist, m_where);
        for (const ExpertCoverage& c : balancer.coverage())
            m_coverage.emplace(std::make_pair(c.layer, c.expert), c); // gate/up and down: the same tokens
        quantizeKeys(group, keys, &col);
    }

    /// The fully quantized layer's outputs become the next layer's inputs.
    void forwardBatches(const LayerWeights& w)
    {
        const std::string msg = m_where + ": outputs";
        InputCollector poller; // collects nothing: only checks for cancellation inside the forward
        if (m_progress)
            poller.setCancelPoll([this, msg] { return poll(msg); });
        for (Batch& b : m_calib->batches) {
            report(m_progress, "quantize", m_done, m_total, msg);
            b.hidden = decoderLayer(m_cfg, w, b.hidden, m_calib->rope, m_progress ? &poller : nullptr);
            ++m_done;
        }
    }

    /// The keys of one pass: one after the other, or (distributed) each on its owner rank, then
    /// gathered so that every rank delivers every key, in key order.
    void quantizeKeys(GroupWork& group, const std::vector<std::string>& keys, InputCollector* col)
    {
        if (m_dist)
            return quantizeKeysAcrossRanks(group, keys, col);
        for (const std::string& k : keys) {
            const std::vector<const PlanEntry*> users = group.usersOf(m_cfg, k);
            std::vector<QuantizedLinear> q = computeKey(users, col, k);
            deliverKey(group, users, q);
            // The key's Hessian is done with; its memory (and the quantizer's transients) go back
            // while the group's quantized weights pile up (64 experts: 2 GiB of Hessians at hidden 2048).
            if (col)
                col->release(k);
            releaseFreedMemory();
        }
    }

    void quantizeKeysAcrossRanks(GroupWork& group, const std::vector<std::string>& keys, const InputCollector* col)
    {
        std::vector<double> costs;
        for (const std::string& k : keys) {
            int64_t outRows = 0;
            for (const PlanEntry* e : group.usersOf(m_cfg, k))
                outRows += e->outFeatures;
            costs.push_back(quantizeCost(group.lp.keyIn.at(k), outRows));
        }
        auto compute = [&](size_t i) { return computeKey(group.usersOf(m_cfg, keys[i]), col, keys[i]); };
        auto storeTypes = [&](size_t i) {
            std::vector<at::ScalarType> types;
            for (const PlanEntry* e : group.usersOf(m_cfg, keys[i]))
                types.push_back(toScalarType(m_ckpt.info(e->name + ".weight").dtype));
            return types;
        };
        std::vector<std::vector<QuantizedLinear>> q = quantizeAcrossRanks(
            *m_dist, costs, compute, storeTypes, m_where + ": quantized " + kGroupNames[group.g]);
        for (size_t i = 0; i < keys.size(); ++i)
            deliverKey(group, group.usersOf(m_cfg, keys[i]), q[i]);
    }

    /// Quantizes the linears of one input key (with its Hessian when inputs were collected).
    std::vector<QuantizedLinear> computeKey(const std::vector<const PlanEntry*>& users, const InputCollector* col,
                                            const std::string& key)
    {
        const at::Tensor h = col ? col->at(key).hessian() : at::Tensor();
        const int64_t rows = col ? col->at(key).rows() : int64_t(0);
        std::vector<LinearInput> in;
        std::string names;
        for (const PlanEntry* e : users) {
            const std::string tensor = e->name + ".weight";
            in.push_back({e, loadTensorShaped(m_ckpt, tensor, {e->outFeatures, e->inFeatures}, at::kFloat),
                          toScalarType(m_ckpt.info(tensor).dtype)});
            names += (names.empty() ? "" : ", ") + e->name;
        }
        const std::string msg = m_where + ": " + names;
        report(m_progress, "quantize", m_done, m_total, msg);
        auto cancel = [&] { return !m_progress || poll(msg); };
        return quantizeLinears(in, h, rows, m_opt, cancel);
    }

    /// Hands the quantized linears of one key to the sink and records the results.
    void deliverKey(GroupWork& group, const std::vector<const PlanEntry*>& users, std::vector<QuantizedLinear>& q)
    {
        for (size_t i = 0; i < q.size(); ++i) {
            const PlanEntry& e = *users[i];
            m_sink(weightView(e, m_ckpt, q[i]));
            if (m_calib)
                group.pending.emplace_back(e.name + ".weight", q[i].stored);
            m_results[e.name] = std::move(q[i].result);
            ++m_done;
        }
    }

    const ModelConfig& m_cfg;
    const Checkpoint& m_ckpt;
    const QuantizeOptions& m_opt;
    const QuantizedWeightSink& m_sink;
    const ProgressFn& m_progress;
    DistContext* m_dist;
    at::ScalarType m_dtype;
    CalibState* m_calib = nullptr;
    int64_t m_done = 0, m_total = 0;
    std::string m_where; ///< "layer 3/32"
    std::map<std::string, LinearQuantResult> m_results;
    std::map<std::pair<int64_t, int64_t>, ExpertCoverage> m_coverage;
};

/// The report: every plan entry's result in plan order (bits 16: the plan's settings, method "none").
QuantizeReport assembleReport(QuantizeReport rep, const std::vector<PlanEntry>& entries,
                              const std::map<std::string, LinearQuantResult>& results)
{
    double errSum = 0;
    int64_t errCount = 0;
    std::set<std::pair<int64_t, int64_t>> seenExperts;
    for (const PlanEntry& e : entries) {
        auto it = results.find(e.name);
        LinearQuantResult r;
        if (it != results.end()) {
            r = it->second;
        } else {
            r = planResult(e);
            r.method = "none";
        }
        if (r.relError >= 0) {
            errSum += r.relError;
            ++errCount;
        }
        if (!r.fallback.empty() && seenExperts.insert({r.layer, r.expert}).second)
            rep.fallbackExperts.push_back({r.layer, r.expert, std::max<int64_t>(r.tokens, 0), r.fallback});
        rep.linears.push_back(std::move(r));
    }
    rep.meanRelError = errCount > 0 ? errSum / double(errCount) : -1.0;
    return rep;
}

} // namespace

void checkPlanForQuantize(const Plan& plan, const ModelConfig& cfg, const std::string& planPath)
{
    validatePlan(plan, cfg, planPath);
    const size_t drops = plan.droppedExperts.size() + plan.droppedLayers.size() + plan.droppedBlocks.size();
    if (drops > 0)
        throw InputError(planPath, "$.drop: the plan drops " + std::to_string(plan.droppedExperts.size())
                                       + " experts, " + std::to_string(plan.droppedLayers.size()) + " layers and "
                                       + std::to_string(plan.droppedBlocks.size())
                                       + " blocks; quantize cannot apply drops yet (trimming comes with issue #10)");
}

std::vector<std::vector<int32_t>> calibSequences(const CalibTokens& tokens, int64_t samples, int64_t seqLen,
                                                 bool randomWindows, int64_t seed)
{
    std::vector<std::vector<int32_t>> out;
    for (const CalibWindow& w : calibWindows(int64_t(tokens.ids.size()), samples, seqLen, randomWindows, seed))
        out.emplace_back(tokens.ids.begin() + w.begin, tokens.ids.begin() + w.end);
    return out;
}

QuantizeReport quantizeModel(const std::string& modelDir, const Plan& plan,
                             const std::vector<std::vector<int32_t>>& sequences, const QuantizeOptions& opt,
                             const QuantizedWeightSink& sink, const ProgressFn& progress)
{
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    at::NoGradGuard noGrad;
    initRuntime(false);
    checkOptions(opt);
    const ModelConfig cfg = loadConfig(modelDir);
    const Checkpoint ckpt = Checkpoint::open(modelDir);
    checkPlanForQuantize(plan, cfg, opt.planPath);
    const std::vector<PlanEntry> entries = expandPlan(plan, cfg);
    const at::ScalarType dtype = computeDtype(cfg, opt.dtype);
    const bool calib = !sequences.empty();
    // Distributed: this rank runs the forward on its contiguous block of the sequences only.
    DistContext* dist = (opt.dist && opt.dist->worldSize() > 1) ? opt.dist : nullptr;
    checkPlanNeeds(entries, calib, dist != nullptr, opt);
    const std::vector<LayerPlan> layers = scheduleLayers(cfg, entries, opt.maxHessianBytes);
    const int64_t lastLayer = lastLayerWithWork(layers);

    QuantizeReport rep;
    rep.architecture = cfg.architecture;
    rep.computeDtype = dtypeString(dtype);
    rep.damp = opt.damp;
    rep.minExpertTokens = opt.minExpertTokens;
    rep.balanceExperts = opt.balanceExperts;
    rep.toolVersion = version();
    rep.calibSequences = int64_t(sequences.size());
    for (const auto& s : sequences)
        rep.calibTokens += int64_t(s.size());

    std::optional<CalibState> state; // embedded only when some layer has work
    if (calib) {
        const std::vector<std::vector<int32_t>> shard = dist ? shardSequences(sequences, *dist)
                                                             : std::vector<std::vector<int32_t>>();
        if (lastLayer >= 0)
            state = embedSequences(cfg, ckpt, sequences, dist ? shard : sequences, opt.maxBatchTokens, dtype);
    }
    LayerLoop loop(cfg, ckpt, opt, sink, progress, dist, dtype);
    const std::map<std::string, LinearQuantResult> results = loop.run(layers, lastLayer, state ? &*state : nullptr);
    rep = assembleReport(std::move(rep), entries, results);
    rep.experts = loop.coverage();
    rep.seconds = std::chrono::duration<double>(clock::now() - start).count();
    return rep;
}

} // namespace moewb
