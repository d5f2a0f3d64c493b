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
#include "quant/input_collector.h"
#include "quant/quant_dist.h"
#include "quant/quant_linear.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <set>

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
    MOEWB_CHECK(opt.damp > 0 && opt.damp < 1, "--damp", "must be in (0, 1), got ", opt.damp);
    MOEWB_CHECK(opt.minExpertTokens >= 0, "--min-expert-tokens", "must not be negative");
    MOEWB_CHECK(opt.maxBatchTokens > 0, "--batch-tokens", "must be positive");

    const ModelConfig cfg = loadConfig(modelDir);
    const Checkpoint ckpt = Checkpoint::open(modelDir);
    checkPlanForQuantize(plan, cfg, opt.planPath);
    const std::vector<PlanEntry> entries = expandPlan(plan, cfg);
    const at::ScalarType dtype = computeDtype(cfg, opt.dtype);
    const bool calib = !sequences.empty();

    int64_t gptqLinears = 0, prunedNeedingCalib = 0;
    for (const PlanEntry& e : entries) {
        gptqLinears += (e.bits < 16 && e.method == "gptq") ? 1 : 0;
        prunedNeedingCalib += (e.sparsity > 0 && (e.pruneMethod == "sparsegpt"
                                                  || (e.pruneMethod == "wanda" && !opt.actSqMean.count(e.name))))
            ? 1 : 0;
    }
    if (!calib && gptqLinears > 0)
        throw InputError(opt.planPath, std::to_string(gptqLinears)
                                           + " linears use method gptq, which needs calibration data (give --calib FILE)");
    if (!calib && prunedNeedingCalib > 0)
        throw InputError(opt.planPath, std::to_string(prunedNeedingCalib)
                                           + " linears are pruned with sparsegpt or wanda, which need calibration data "
                                             "(give --calib FILE; wanda also works from --stats)");

    const std::vector<LayerPlan> layers = scheduleLayers(cfg, entries, opt.maxHessianBytes);
    int64_t lastLayer = -1;
    for (int64_t l = 0; l < cfg.numLayers; ++l)
        if (!layers[size_t(l)].empty())
            lastLayer = l;

    QuantizeReport rep;
    rep.architecture = cfg.architecture;
    rep.computeDtype = dtypeString(dtype);
    rep.damp = opt.damp;
    rep.minExpertTokens = opt.minExpertTokens;
    rep.toolVersion = version();
    rep.calibSequences = int64_t(sequences.size());
    for (const auto& s : sequences)
        rep.calibTokens += int64_t(s.size());

    // Distributed: this rank runs the forward on its contiguous block of the sequences only.
    DistContext* dist = (opt.dist && opt.dist->worldSize() > 1) ? opt.dist : nullptr;
    if (dist)
        for (const PlanEntry& e : entries)
            if (e.sparsity > 0)
                throw InputError(opt.planPath, "'" + e.name + "' is pruned (sparsity " + std::to_string(e.sparsity)
                                                   + "): pruning does not run distributed yet; run without --distributed");
    std::vector<std::vector<int32_t>> shard;
    if (dist && calib) {
        MOEWB_CHECK(int64_t(sequences.size()) >= dist->worldSize(), "calibration data", sequences.size(),
                    " sequences cannot be shared by ", dist->worldSize(), " ranks (one at least each)");
        const ShardRange sh = shardOf(int64_t(sequences.size()), dist->rank(), dist->worldSize());
        shard.assign(sequences.begin() + sh.begin, sequences.begin() + sh.end);
    }
    const std::vector<std::vector<int32_t>>& local = dist ? shard : sequences;

    // Embed every calibration sequence (only needed up to the last layer with work).
    std::vector<Batch> batches;
    RopeTables rope;
    if (calib && lastLayer >= 0) {
        batches = makeBatches(local, opt.maxBatchTokens);
        int64_t maxLen = 0;
        for (const auto& s : sequences)
            maxLen = std::max<int64_t>(maxLen, int64_t(s.size()));
        rope = ropeTables(cfg, maxLen, dtype);
        const at::Tensor embed = loadEmbedding(cfg, ckpt, dtype);
        for (Batch& b : batches) {
            std::vector<at::Tensor> ids;
            for (size_t i : b.members) {
                const at::Tensor s = at::tensor(at::ArrayRef<int32_t>(local[i])).to(at::kLong);
                const int64_t lo = s.min().item<int64_t>(), hi = s.max().item<int64_t>();
                MOEWB_CHECK(lo >= 0 && hi < cfg.vocabSize, "calibration data", "token id ", (lo < 0 ? lo : hi),
                            " is outside the model's vocabulary of ", cfg.vocabSize);
                ids.push_back(s);
            }
            b.hidden = embed.index_select(0, at::stack(ids).reshape({-1}))
                           .view({int64_t(ids.size()), -1, cfg.hiddenSize});
        }
    }
    const int64_t nb = int64_t(batches.size());

    int64_t total = 0;
    for (int64_t l = 0; l <= lastLayer; ++l) {
        const LayerPlan& lp = layers[size_t(l)];
        for (int g = 0; g < kGroups; ++g)
            total += int64_t(lp.entries[size_t(g)].size()) + (calib ? int64_t(lp.passes[size_t(g)].size()) * nb : 0);
        total += (calib && l < lastLayer) ? nb : 0; // no layer after the last one with work needs its outputs
    }
    int64_t done = 0;
    const std::string L = std::to_string(cfg.numLayers);

    std::map<std::string, LinearQuantResult> results;
    for (int64_t l = 0; l <= lastLayer; ++l) {
        const LayerPlan& lp = layers[size_t(l)];
        const std::string where = "layer " + std::to_string(l + 1) + "/" + L;
        report(progress, "quantize", done, total, where + " (loading)");
        LayerWeights w;
        if (calib)
            w = loadLayerWeights(cfg, ckpt, l, dtype);
        const std::string inputNorm = cfg.layerPrefix(l) + ".input_layernorm.weight";

        for (int g = 0; g < kGroups; ++g) {
            const auto& groupEntries = lp.entries[size_t(g)];
            if (groupEntries.empty())
                continue;
            std::vector<std::pair<std::string, at::Tensor>> pending; // applied once the whole group is done
            // Quantizes the linears of one input key.
            auto computeKey = [&](const std::vector<const PlanEntry*>& users, const at::Tensor& h, int64_t rows) {
                std::vector<LinearInput> in;
                std::string names;
                for (const PlanEntry* e : users) {
                    const std::string tensor = e->name + ".weight";
                    in.push_back({e, loadTensorShaped(ckpt, tensor, {e->outFeatures, e->inFeatures}, at::kFloat),
                                  toScalarType(ckpt.info(tensor).dtype)});
                    names += (names.empty() ? "" : ", ") + e->name;
                }
                const std::string msg = where + ": " + names;
                report(progress, "quantize", done, total, msg);
                auto cancel = [&] { return !progress || progress(Progress{"quantize", done, total, msg}); };
                return quantizeLinears(in, h, rows, opt, cancel);
            };
            // Hands the quantized linears of one key to the sink and records the results.
            auto deliverKey = [&](const std::vector<const PlanEntry*>& users, std::vector<QuantizedLinear>& q) {
                for (size_t i = 0; i < q.size(); ++i) {
                    const PlanEntry& e = *users[i];
                    const std::string tensor = e.name + ".weight";
                    QuantizedWeight qw;
                    qw.entry = &e;
                    qw.tensorName = tensor;
                    qw.dtype = ckpt.info(tensor).dtype;
                    qw.shape = {e.outFeatures, e.inFeatures};
                    qw.data = q[i].stored.data_ptr();
                    qw.nbytes = uint64_t(q[i].stored.nbytes());
                    if (q[i].q.defined()) { // a pruned 16-bit linear (#14) has only `data`
                        MOEWB_ASSERT(q[i].q.is_contiguous() && q[i].scales.is_contiguous() && q[i].zeros.is_contiguous()
                                     && q[i].gIdx.is_contiguous() && q[i].gIdx.scalar_type() == at::kInt);
                        qw.q = q[i].q.data_ptr<int32_t>();
                        qw.scales = q[i].scales.data_ptr<float>();
                        qw.zeros = q[i].zeros.data_ptr<float>();
                        qw.gIdx = q[i].gIdx.data_ptr<int32_t>();
                        qw.groups = q[i].scales.size(1);
                    }
                    sink(qw);
                    if (calib)
                        pending.emplace_back(tensor, q[i].stored);
                    results[e.name] = std::move(q[i].result);
                    ++done;
                }
            };
            auto usersOf = [&](const std::string& key) {
                std::vector<const PlanEntry*> users;
                for (const PlanEntry* e : groupEntries)
                    if (inputKey(cfg, *e) == key)
                        users.push_back(e);
                return users;
            };
            // The keys of one pass: one after the other, or (distributed) each on its owner rank,
            // then gathered so that every rank delivers every key, in key order.
            auto quantizeKeys = [&](const std::vector<std::string>& keys, const InputCollector* col) {
                auto hessian = [&](const std::string& k) { return col ? col->at(k).hessian() : at::Tensor(); };
                auto rows = [&](const std::string& k) { return col ? col->at(k).rows() : int64_t(0); };
                if (!dist) {
                    for (const std::string& k : keys) {
                        const std::vector<const PlanEntry*> users = usersOf(k);
                        std::vector<QuantizedLinear> q = computeKey(users, hessian(k), rows(k));
                        deliverKey(users, q);
                    }
                    return;
                }
                std::vector<double> costs;
                for (const std::string& k : keys) {
                    int64_t outRows = 0;
                    for (const PlanEntry* e : usersOf(k))
                        outRows += e->outFeatures;
                    costs.push_back(quantizeCost(lp.keyIn.at(k), outRows));
                }
                std::vector<std::vector<QuantizedLinear>> q = quantizeAcrossRanks(
                    *dist, costs, [&](size_t i) { return computeKey(usersOf(keys[i]), hessian(keys[i]), rows(keys[i])); },
                    [&](size_t i) {
                        std::vector<at::ScalarType> types;
                        for (const PlanEntry* e : usersOf(keys[i]))
                            types.push_back(toScalarType(ckpt.info(e->name + ".weight").dtype));
                        return types;
                    },
                    where + ": quantized " + kGroupNames[g]);
                for (size_t i = 0; i < keys.size(); ++i)
                    deliverKey(usersOf(keys[i]), q[i]);
            };
            for (const std::vector<std::string>& keys : lp.passes[size_t(g)]) {
                if (!calib) {
                    quantizeKeys(keys, nullptr);
                    continue;
                }
                InputCollector col;
                for (const std::string& k : keys)
                    col.want(k, lp.keyIn.at(k));
                const std::string msg = where + ": inputs of " + kGroupNames[g];
                if (progress)
                    col.setCancelPoll([&] { return progress(Progress{"quantize", done, total, msg}); });
                for (int64_t bi = 0; bi < nb; ++bi) {
                    report(progress, "quantize", done, total, msg);
                    const at::Tensor& x = batches[size_t(bi)].hidden;
                    if (g <= 1) // q/k/v and o_proj see only the attention sub-block
                        attention(cfg, w, rmsNorm(x, w.get(inputNorm), cfg.rmsNormEps), rope, &col);
                    else
                        decoderLayer(cfg, w, x, rope, &col);
                    ++done;
                }
                if (dist)
                    col.allReduce(*dist, where);
                quantizeKeys(keys, &col);
            }
            for (auto& [name, t] : pending)
                w.tensors[name] = t.to(dtype);
        }
        if (calib && l < lastLayer) {
            const std::string msg = where + ": outputs";
            InputCollector poll; // collects nothing: only checks for cancellation inside the forward
            if (progress)
                poll.setCancelPoll([&] { return progress(Progress{"quantize", done, total, msg}); });
            for (int64_t bi = 0; bi < nb; ++bi) {
                report(progress, "quantize", done, total, msg);
                batches[size_t(bi)].hidden = decoderLayer(cfg, w, batches[size_t(bi)].hidden, rope, progress ? &poll : nullptr);
                ++done;
            }
        }
    }
    report(progress, "quantize", total, total, "done");

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
    rep.seconds = std::chrono::duration<double>(clock::now() - start).count();
    return rep;
}

} // namespace moewb
