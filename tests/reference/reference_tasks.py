#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reference zero-shot task scoring (NumPy, float64), written from lm-eval-harness's conventions.

    /usr/bin/python3 tests/reference/reference_tasks.py tasks MODEL_DIR TASK.jsonl... [--max-length N]
                     [--act-bits B]            -> JSON on stdout
    /usr/bin/python3 tests/reference/reference_tasks.py forward MODEL_DIR IDS_JSON OUT_FILE [--act-bits B]
                                               -> float32 logits like reference_forward.py

Independent of the C++ engine: the task layouts are parsed and formatted here (harness prompts:
HellaSwag preprocess, PIQA/ARC "Question: ...\\nAnswer:", WinoGrande partial evaluation, LAMBADA
last word, generic context/choices/label), requests are tokenized with the Python BPE encoder of
datasets/train_bpe.py the way HFLM._encode_pair does (trailing context whitespace moved to the
continuation, encode(ctx + cont) split at len(encode(ctx)), no special tokens, empty context ->
[bos or eos]), and every request runs alone (no batching, no prefix sharing) through
reference_forward.Model in float64.

--act-bits B < 16 fake-quantizes the input of every linear that reference_forward computes with
Model.linear (attention q/k/v/o, dense / expert / shared-expert gate/up/down) per token:
scale = max|x_row| / (2^(B-1) - 1) (1 for a zero row), x -> clip(round_half_even(x / scale), -qmax, qmax)
* scale. Routers, the shared-expert gate and the head are computed without Model.linear and stay exact.

Output of `tasks`: {"tasks": [{"name", "layout", "n", "acc", "acc_norm" (null for winogrande /
lambada), "ppl" (lambada, else null), "loglik": [[per choice]], "greedy": [[...]], "tokens": [[...]],
"pred", "pred_norm"}]}.
"""
import json
import math
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "datasets"))
import reference_forward as rf  # noqa: E402
import train_bpe  # noqa: E402


def fake_quant(x, bits):
    if bits >= 16:
        return x
    qmax = float(2 ** (bits - 1) - 1)
    amax = np.max(np.abs(x), axis=-1, keepdims=True)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    return np.clip(np.round(x / scale), -qmax, qmax) * scale


class QuantModel(rf.Model):
    def __init__(self, model_dir, act_bits):
        self.act_bits = act_bits
        super().__init__(model_dir)

    def linear(self, x, prefix, out_f, in_f):
        return super().linear(fake_quant(x, self.act_bits), prefix, out_f, in_f)


# ----------------------------------------------------------------------------- layouts

def hs_preprocess(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def ascii_capitalize(s):
    # Python's str.capitalize restricted to ASCII letters (what the engine implements).
    return "".join((c.upper() if i == 0 else c.lower()) if c.isascii() else c for i, c in enumerate(s))


def layout_of(d):
    if "ctx_a" in d or ("ctx" in d and "endings" in d):
        return "hellaswag"
    if "goal" in d and "sol1" in d:
        return "piqa"
    if "question" in d and "answerKey" in d:
        return "arc"
    if "sentence" in d and "option1" in d:
        return "winogrande"
    if "context" in d and "choices" in d:
        return "generic"
    if "text" in d:
        return "lambada"
    raise ValueError("unknown layout")


def requests_of(layout, d):
    """[(context, continuation, norm_string)], gold index."""
    if layout == "hellaswag":
        ctx = d["ctx_a"] + " " + ascii_capitalize(d.get("ctx_b", "")) if "ctx_a" in d else d["ctx"]
        if "activity_label" in d:
            ctx = d["activity_label"] + ": " + ctx
        q = hs_preprocess(ctx)
        ch = [hs_preprocess(e) for e in d["endings"]]
        return [(q, " " + c, c) for c in ch], int(d["label"])
    if layout == "piqa":
        q = "Question: " + d["goal"] + "\nAnswer:"
        return [(q, " " + c, c) for c in (d["sol1"], d["sol2"])], int(d["label"])
    if layout == "arc":
        q = "Question: " + d["question"] + "\nAnswer:"
        return ([(q, " " + c, c) for c in d["choices"]["text"]],
                d["choices"]["label"].index(d["answerKey"]))
    if layout == "winogrande":
        idx = d["sentence"].index("_")
        cont = " " + d["sentence"][idx + 1:].strip()
        ctxs = [d["sentence"][:idx] + d[o] for o in ("option1", "option2")]
        return [(c, cont, c) for c in ctxs], {"1": 0, "2": 1}[str(d["answer"])]
    if layout == "lambada":
        words = d["text"].split(" ")
        return [(" ".join(words[:-1]), " " + words[-1], words[-1])], 0
    return [(d["context"], " " + c, c) for c in d["choices"]], int(d["label"])


def encode_pair(enc, context, continuation, empty_token):
    n = len(context) - len(context.rstrip())
    if n > 0:
        continuation = context[-n:] + continuation
        context = context[:-n]
    if context == "":
        return [empty_token], enc.encode(continuation)
    whole = enc.encode(context + continuation)
    ctx = enc.encode(context)
    return ctx, whole[len(ctx):]


def score_requests(model, seqs):
    """seqs: [(input ids, continuation ids)] -> [(loglik, greedy)] one forward per request."""
    out = []
    for inp, cont in seqs:
        logits = model.forward(np.array([inp], dtype=np.int64))[0]
        lp = rf.log_softmax(logits[len(inp) - len(cont):], axis=-1)
        ll = float(sum(lp[i, t] for i, t in enumerate(cont)))
        greedy = all(int(np.argmax(logits[len(inp) - len(cont) + i])) == t for i, t in enumerate(cont))
        out.append((ll, greedy))
    return out


def run_tasks(model_dir, files, max_length, act_bits):
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    max_length = max_length or cfg.get("max_position_embeddings") or 2048
    empty = cfg.get("bos_token_id")
    if empty is None:
        empty = cfg.get("eos_token_id")
    model = QuantModel(model_dir, act_bits)
    enc = train_bpe.Encoder(os.path.join(model_dir, "tokenizer.json"))
    result = []
    for path in files:
        docs = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
        layout = layout_of(docs[0])
        lls, greedys, toks, preds, preds_norm, accs, accs_norm = [], [], [], [], [], [], []
        for d in docs:
            reqs, gold = requests_of(layout, d)
            seqs = []
            for ctx, cont, _ in reqs:
                c, k = encode_pair(enc, ctx, cont, empty)
                seqs.append(((c + k)[-(max_length + 1):][:-1], k))
            scored = score_requests(model, seqs)
            ll = np.array([s[0] for s in scored])
            lens = np.array([float(len(r[2])) for r in reqs])
            lls.append(ll.tolist())
            greedys.append([s[1] for s in scored])
            toks.append([len(s[1]) for s in seqs])
            preds.append(int(np.argmax(ll)))
            preds_norm.append(int(np.argmax(ll / lens)))
            accs.append(float(scored[0][1]) if layout == "lambada" else float(preds[-1] == gold))
            accs_norm.append(float(preds_norm[-1] == gold))
        n = len(docs)
        result.append({
            "name": os.path.splitext(os.path.basename(path))[0], "layout": layout, "n": n,
            "acc": sum(accs) / n,
            "acc_stderr": (float(np.std(accs, ddof=1)) / math.sqrt(n)) if n > 1 else 0.0,
            "acc_norm": None if layout in ("winogrande", "lambada") else sum(accs_norm) / n,
            "ppl": math.exp(-sum(l[0] for l in lls) / n) if layout == "lambada" else None,
            "loglik": lls, "greedy": greedys, "tokens": toks, "pred": preds, "pred_norm": preds_norm})
    return {"tasks": result}


def main(argv):
    mode = argv[0]
    act_bits = 16
    max_length = 0
    rest = []
    i = 1
    while i < len(argv):
        if argv[i] == "--act-bits":
            act_bits = int(argv[i + 1])
            i += 2
        elif argv[i] == "--max-length":
            max_length = int(argv[i + 1])
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    if mode == "tasks":
        json.dump(run_tasks(rest[0], rest[1:], max_length, act_bits), sys.stdout)
    elif mode == "forward":
        model_dir, ids_file, out_file = rest
        with open(ids_file, encoding="utf-8") as f:
            ids = json.load(f)
        if ids and all(isinstance(v, int) for v in ids):
            ids = [ids]
        model = QuantModel(model_dir, act_bits)
        rf.write_logits(out_file, model.forward(np.array(ids, dtype=np.int64)))
    else:
        raise SystemExit("usage: reference_tasks.py tasks|forward ...")


if __name__ == "__main__":
    main(sys.argv[1:])
