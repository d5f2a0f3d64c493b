// SPDX-License-Identifier: MIT
// Task evaluation: tokenize every request the harness's way, drop duplicate and prefix sequences,
// run the rest through the model in one streaming pass, and score the continuation tokens.
#include "moewb/eval/tasks.h"

#include "model/streamer.h"
#include "moewb/core/error.h"
#include "moewb/model/model_source.h"
#include "moewb/tokenizer/tokenizer.h"
#include "moewb/model/runtime.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

namespace moewb {

TokenPair encodeRequest(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                        int32_t emptyContextToken)
{
    // HFLM._encode_pair: trailing whitespace of the context belongs to the continuation.
    size_t keep = context.size();
    while (keep > 0 && (context[keep - 1] == ' ' || context[keep - 1] == '\t' || context[keep - 1] == '\n'
                        || context[keep - 1] == '\r' || context[keep - 1] == '\f' || context[keep - 1] == '\v'))
        --keep;
    const std::string ctx = context.substr(0, keep);
    const std::string cont = context.substr(keep) + continuation;
    TokenPair p;
    if (ctx.empty()) {
        p.context = {emptyContextToken};
        p.continuation = tok.encode(cont, /*addSpecialTokens=*/false);
        return p;
    }
    const std::vector<int32_t> whole = tok.encode(ctx + cont, false);
    p.context = tok.encode(ctx, false);
    const size_t n = std::min(p.context.size(), whole.size());
    p.continuation.assign(whole.begin() + std::ptrdiff_t(n), whole.end());
    return p;
}

namespace {

bool strippedEmpty(const std::string& s)
{
    return s.find_first_not_of(" \t\n\r\f\v") == std::string::npos;
}

struct Request {
    size_t task, item, choice;
    std::vector<int32_t> input; ///< what the model sees: (ctx + cont)[-(maxLength + 1):][:-1]
    std::vector<int32_t> cont;  ///< targets: the last cont.size() positions of input predict them
    size_t host = 0;            ///< index of the forward sequence whose logits serve this request
};

} // namespace

TaskEvalResult evaluateTasks(const std::string& modelDir, const std::vector<TaskSet>& tasks,
                             const TaskEvalOptions& opt, const ProgressFn& progress)
{
    const auto t0 = std::chrono::steady_clock::now();
    initRuntime(false);
    const Model model(modelDir);
    const ModelConfig& cfg = model.config();
    const auto tok = loadModelTokenizer(modelDir, opt.tokenizer);
    const int64_t maxLength = opt.maxLength > 0 ? opt.maxLength
                                                : (cfg.maxPositionEmbeddings > 0 ? cfg.maxPositionEmbeddings : 2048);
    MOEWB_CHECK(maxLength >= 2, "zero-shot tasks", "the maximum length must be at least 2 tokens, got ", maxLength);
    const int32_t emptyCtx = int32_t(cfg.bosTokenId ? *cfg.bosTokenId : cfg.eosTokenId ? *cfg.eosTokenId : -1);

    // ---- tokenize (contexts are shared by the choices of an item: encode each once)
    std::vector<Request> reqs;
    int64_t totalItems = 0, doneItems = 0;
    for (const TaskSet& t : tasks)
        totalItems += int64_t(t.items.size());
    for (size_t ti = 0; ti < tasks.size(); ++ti) {
        const TaskSet& set = tasks[ti];
        for (size_t ii = 0; ii < set.items.size(); ++ii, ++doneItems) {
            if (doneItems % 64 == 0)
                report(progress, "tokenize", doneItems, totalItems, set.name);
            const TaskItem& item = set.items[ii];
            for (size_t ci = 0; ci < item.choices.size(); ++ci) {
                const TaskChoice& c = item.choices[ci];
                const std::string where = set.file + ":" + std::to_string(item.line);
                if (strippedEmpty(c.context) && emptyCtx < 0)
                    throw InputError(where, "empty context and the model has no bos_token_id / eos_token_id");
                TokenPair p = encodeRequest(*tok, c.context, c.continuation, emptyCtx);
                MOEWB_CHECK(!p.continuation.empty(), where, "choice ", ci + 1, " has no continuation tokens");
                MOEWB_CHECK(int64_t(p.continuation.size()) <= maxLength, where, "continuation of choice ", ci + 1,
                            " has ", p.continuation.size(), " tokens, more than the maximum length ", maxLength);
                std::vector<int32_t> all = std::move(p.context);
                all.insert(all.end(), p.continuation.begin(), p.continuation.end());
                const size_t from = all.size() > size_t(maxLength + 1) ? all.size() - size_t(maxLength + 1) : 0;
                Request r{ti, ii, ci, std::vector<int32_t>(all.begin() + std::ptrdiff_t(from), all.end() - 1),
                          std::move(p.continuation), 0};
                reqs.push_back(std::move(r));
            }
        }
    }
    report(progress, "tokenize", totalItems, totalItems);

    // ---- distinct forward sequences: sort the inputs; equal ones collapse, and an input that is a
    // prefix of the next one in sorted order takes that one's host (causal logits are the same).
    std::vector<size_t> order(reqs.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return reqs[a].input < reqs[b].input; });
    std::vector<size_t> hostOfRank(order.size());
    std::vector<size_t> hostReq; // request whose input is the host sequence
    for (size_t k = order.size(); k-- > 0;) {
        const std::vector<int32_t>& cur = reqs[order[k]].input;
        if (k + 1 < order.size()) {
            const std::vector<int32_t>& next = reqs[order[k + 1]].input;
            if (cur.size() <= next.size() && std::equal(cur.begin(), cur.end(), next.begin())) {
                hostOfRank[k] = hostOfRank[k + 1];
                continue;
            }
        }
        hostOfRank[k] = hostReq.size();
        hostReq.push_back(order[k]);
    }
    for (size_t k = 0; k < order.size(); ++k)
        reqs[order[k]].host = hostOfRank[k];
    std::vector<std::vector<size_t>> served(hostReq.size());
    for (size_t r = 0; r < reqs.size(); ++r)
        served[reqs[r].host].push_back(r);

    TaskEvalResult res;
    res.requests = int64_t(reqs.size());
    res.sequences = int64_t(hostReq.size());
    std::vector<at::Tensor> seqs;
    seqs.reserve(hostReq.size());
    for (size_t h : hostReq) {
        const std::vector<int32_t>& in = reqs[h].input;
        seqs.push_back(at::tensor(at::ArrayRef<int32_t>(in)).to(at::kLong));
        res.tokens += int64_t(in.size());
    }

    // ---- one pass over the model
    StreamOptions so;
    so.dtype = computeDtype(cfg, opt.dtype);
    so.maxBatchTokens = opt.maxBatchTokens;
    so.streaming = opt.streaming;
    so.activationBits = opt.activationBits;
    std::vector<ChoiceScore> scores(reqs.size());
    model.run(seqs, so,
              [&](size_t host, const at::Tensor& logits) {
                  for (size_t r : served[host]) {
                      const Request& q = reqs[r];
                      const int64_t n = int64_t(q.cont.size());
                      const int64_t start = int64_t(q.input.size()) - n;
                      const at::Tensor rows = logits.slice(0, start, start + n);
                      const at::Tensor targets = at::tensor(at::ArrayRef<int32_t>(q.cont)).to(at::kLong);
                      const at::Tensor lp = at::log_softmax(rows.to(at::kDouble), -1);
                      scores[r].loglik = lp.gather(1, targets.unsqueeze(1)).sum().item<double>();
                      scores[r].greedy = rows.argmax(-1).eq(targets).all().item<bool>();
                      scores[r].tokens = n;
                  }
              },
              nullptr, progress);

    // ---- metrics
    std::vector<std::vector<std::vector<ChoiceScore>>> perTask(tasks.size());
    for (size_t t = 0; t < tasks.size(); ++t) {
        perTask[t].resize(tasks[t].items.size());
        for (size_t i = 0; i < tasks[t].items.size(); ++i)
            perTask[t][i].resize(tasks[t].items[i].choices.size());
    }
    for (size_t r = 0; r < reqs.size(); ++r)
        perTask[reqs[r].task][reqs[r].item][reqs[r].choice] = scores[r];
    for (size_t t = 0; t < tasks.size(); ++t)
        res.tasks.push_back(scoreTask(tasks[t], perTask[t]));
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

} // namespace moewb
