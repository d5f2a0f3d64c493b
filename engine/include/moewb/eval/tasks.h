// SPDX-License-Identifier: MIT
// Zero-shot multiple-choice tasks scored by log-likelihood, the lm-evaluation-harness way.
//
// Layouts (one JSON object per line; detected from the keys of the first item, every later item
// must have the same layout; blank lines are skipped):
//   HellaSwag   ctx | ctx_a + ctx_b [+ activity_label], endings[], label (int or "int")
//               context = preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b))
//               (without activity_label: preprocess(ctx)); choices = preprocess(ending)
//   PIQA        goal, sol1, sol2, label      context = "Question: " + goal + "\nAnswer:"
//   ARC         question, choices{text[], label[]}, answerKey
//               context = "Question: " + question + "\nAnswer:"; gold = choices.label.index(answerKey)
//   WinoGrande  sentence (with "_"), option1, option2, answer "1"|"2"   (partial evaluation: choice i's
//               context = sentence[:idx("_")] + option_i, shared continuation = " " + sentence[idx+1:].strip())
//   LAMBADA     text            context = text up to the last ' ', continuation = " " + last word
//   generic     context, choices[], label   (our own layout for users' data)
// A continuation is " " + choice (the harness's target_delimiter) except for WinoGrande and LAMBADA
// as above. preprocess = strip, " [title]" → ". ", remove "[...]" spans, "  " → " " (one pass), as the
// harness's hellaswag utils; capitalize = Python str.capitalize on ASCII letters.
// An optional "domain" string on any item groups the metrics per domain.
//
// Tokenization (HFLM._encode_pair): trailing spaces of the context move to the continuation;
// whole = encode(context + continuation), ctx = encode(context) (no special tokens, as HFLM does by
// default for causal models), continuation tokens = whole[len(ctx):]. An empty context is replaced
// by the model's BOS (else EOS) token. The model sees (ctx + cont)[-(maxLength + 1):][:-1].
//
// Metrics (per task, and per domain): acc = argmax of the choices' summed loglik is the label
// (first maximum on ties, as numpy.argmax); acc_norm = argmax of loglik / len(choice) where len is
// the choice string's length in Unicode code points (the harness's `len(str)`; its docs call it the
// byte length, equal for ASCII), not reported for WinoGrande (one shared continuation) and LAMBADA;
// stderr = sample standard deviation / sqrt(n) (ddof = 1; 0 for n = 1). LAMBADA: acc = every
// target token is the greedy argmax; ppl = exp(-mean over items of the target's loglik).
#pragma once

#include "moewb/core/progress.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moewb {

class Tokenizer;

enum class TaskLayout { HellaSwag, Piqa, Arc, WinoGrande, Lambada, Generic };
const char* taskLayoutName(TaskLayout layout); ///< "hellaswag", "piqa", "arc", "winogrande", "lambada", "generic"

/// One (context, continuation) request, already formatted as the harness formats it.
struct TaskChoice {
    std::string context;
    std::string continuation;
    int64_t normLength = 1; ///< acc_norm divisor: code points of the choice string
};

struct TaskItem {
    int64_t line = 0;   ///< 1-based line in the task file
    std::string domain; ///< empty when the item has none
    std::vector<TaskChoice> choices;
    int64_t label = 0;  ///< index of the correct choice (0 for LAMBADA)
};

struct TaskSet {
    std::string name; ///< file name without directory and extension
    std::string file;
    TaskLayout layout = TaskLayout::Generic;
    std::vector<TaskItem> items;
};

/// Loads a JSONL task file; limit > 0 keeps the first `limit` items. InputError "FILE:LINE: problem".
TaskSet loadTaskFile(const std::string& path, int64_t limit = 0);

/// Parses task-file text (for tests and in-memory data); `where` names it in errors.
TaskSet parseTaskText(const std::string& text, const std::string& where, int64_t limit = 0);

/// Context and continuation token ids of one request, split as described above.
struct TokenPair {
    std::vector<int32_t> context, continuation;
};
TokenPair encodeRequest(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                        int32_t emptyContextToken);

struct ChoiceScore {
    double loglik = 0.0; ///< summed natural-log probability of the continuation tokens
    bool greedy = false; ///< every continuation token is the argmax of its position
    int64_t tokens = 0;  ///< continuation tokens
};

struct TaskMetrics {
    std::string domain; ///< empty: all items
    int64_t n = 0;
    double acc = 0.0, accStderr = 0.0;
    bool hasAccNorm = false;
    double accNorm = 0.0, accNormStderr = 0.0;
    bool hasPpl = false; ///< LAMBADA
    double ppl = 0.0;
};

struct TaskResult {
    std::string name, file;
    TaskLayout layout = TaskLayout::Generic;
    TaskMetrics overall;
    std::vector<TaskMetrics> domains;          ///< sorted by name; empty when no item has a domain
    std::vector<std::vector<ChoiceScore>> scores; ///< [item][choice]
    std::vector<int64_t> pred, predNorm;       ///< argmax of loglik, of loglik / normLength
    std::vector<uint8_t> correct;              ///< per item, what `acc` counts (LAMBADA: greedy match)
};

/// Metrics from per-choice scores (no model needed): scores[i].size() == set.items[i].choices.size().
TaskResult scoreTask(const TaskSet& set, const std::vector<std::vector<ChoiceScore>>& scores);

struct TaskEvalOptions {
    std::string dtype = "auto";  ///< auto | bf16 | f32
    int64_t maxBatchTokens = 8192;
    bool streaming = true;
    int64_t maxLength = 0;       ///< tokens the model sees; 0 = max_position_embeddings (2048 if unset)
    int64_t activationBits = 16; ///< < 16: per-token activation fake-quantization (model/actquant.h)
    std::string tokenizer;       ///< tokenizer.json or its directory; empty = the model's (required for GGUF)
};

struct TaskEvalResult {
    std::vector<TaskResult> tasks;
    int64_t requests = 0;  ///< (context, continuation) pairs
    int64_t sequences = 0; ///< distinct forward sequences after dropping duplicates and prefixes
    int64_t tokens = 0;    ///< tokens pushed through the model
    double seconds = 0.0;
};

/// Scores every request of every task in ONE pass over the model (Model::run streams the layers
/// once). Identical input sequences run once, and a sequence that is a prefix of another takes its
/// logits from the longer one (causal attention makes them the same). Progress stages: "tokenize",
/// "forward"; cancellation throws Cancelled.
TaskEvalResult evaluateTasks(const std::string& modelDir, const std::vector<TaskSet>& tasks,
                             const TaskEvalOptions& opt, const ProgressFn& progress = {});

} // namespace moewb
