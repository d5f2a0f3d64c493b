#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Build the demo zero-shot tasks from the held-out evaluation split of the demo corpus.

Usage:
    /usr/bin/python3 datasets/build_tasks.py [--corpus datasets/corpus-v2/eval.jsonl]
                     [--out datasets/tasks-v2] [--seed 0] [--items 600]
    /usr/bin/python3 datasets/build_tasks.py --check [--tokenizer datasets/tokenizer-v2/tokenizer.json]

Writes three JSONL files in lm-eval-harness layouts (one object per line, keys sorted):

  demo_hellaswag.jsonl   {"ctx", "endings" [4], "label" 0..3, "domain"}
      ctx = 2-4 consecutive lines of one document (whitespace collapsed to single spaces),
      the true ending = the next line; the 3 distractors are lines of OTHER documents of the
      SAME domain with a length close to the true ending's.  All strings are fixed points of
      the harness's HellaSwag preprocessing (no brackets, no double spaces, stripped).
  demo_lambada.jsonl     {"text", "domain"}   (target = the last space-separated word)
      prose domains only (scripture, fortunes, manpages, licenses, and literature where the
      corpus has it): 30-70 words of running text ending in an alphabetic word of >= 4
      letters that already occurs earlier in the passage (LAMBADA's "predictable from the context" filter, done by a simple heuristic).
  demo_winogrande.jsonl  {"sentence" (one "_"), "option1", "option2", "answer" "1"|"2", "domain"}
      one line of a document with one word blanked; the distractor is another word of the
      same document of the same shape class (capitalization, common suffix, length +-2
      characters, frequency bucket in the document).  The blank is followed by a space and
      at least three words, so the harness's partial scoring has a real shared continuation.

Determinism: every random choice draws from numpy.random.Generator(PCG64(seed)) in a fixed
order over sorted inputs; items are deduplicated, spread evenly over domains, answers/labels
balanced (label = position mod #choices before the final deterministic shuffle), and listed
round-robin over domains so that --limit N in `moewb eval` keeps the domains balanced.

--check rebuilds into a temporary directory and compares bytes with --out, then tokenizes
every item with the demo tokenizer the way `moewb eval` does (encode(context + continuation)
split at len(encode(context))) and fails on an empty continuation.
"""
import argparse
import filecmp
import json
import os
import re
import sys
import tempfile

import numpy as np

# Domain order of corpus v1 first (the order the committed task files were built in, kept so that
# they rebuild byte-identically; corpus v1 itself is no longer shipped), then the other domains of
# the corpus (v2 has 13) in sorted order. LAMBADA-like items come from prose domains.
DOMAINS_V1 = ["scripture", "fortunes", "manpages", "c_cpp", "python", "licenses"]
PROSE = ["scripture", "fortunes", "manpages", "licenses", "literature"]
FILES = ["demo_hellaswag.jsonl", "demo_lambada.jsonl", "demo_winogrande.jsonl"]


def load_docs(path):
    """{domain: [document text]} in v1's domain order, then the other domains sorted."""
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            found.setdefault(r["domain"], []).append(r["text"])
    order = [d for d in DOMAINS_V1 if d in found] + sorted(d for d in found if d not in DOMAINS_V1)
    return {d: found[d] for d in order}


def prose_domains(docs):
    return [d for d in PROSE if docs.get(d)]


def squash(s):
    return " ".join(s.split())


def round_robin(per_domain):
    """Interleave the domains' item lists: d0[0], d1[0], ..., d0[1], ..."""
    out = []
    n = max(len(v) for v in per_domain.values())
    for i in range(n):
        for d in per_domain:  # the quotas' (= domain) order
            if i < len(per_domain[d]):
                out.append(per_domain[d][i])
    return out


def quotas(total, domains):
    base, extra = divmod(total, len(domains))
    return {d: base + (1 if i < extra else 0) for i, d in enumerate(domains)}


def pick_spread(rng, candidates, n, key_doc):
    """n candidates chosen at random but spread over documents (round-robin over shuffled docs)."""
    by_doc = {}
    for c in candidates:
        by_doc.setdefault(key_doc(c), []).append(c)
    docs = sorted(by_doc)
    for d in docs:
        lst = by_doc[d]
        order = rng.permutation(len(lst))
        by_doc[d] = [lst[i] for i in order]
    docs = [docs[i] for i in rng.permutation(len(docs))]
    out = []
    i = 0
    while len(out) < n and any(by_doc[d] for d in docs):
        d = docs[i % len(docs)]
        if by_doc[d]:
            out.append(by_doc[d].pop())
        i += 1
    return out


# ------------------------------------------------------------------------------ HellaSwag

def hellaswag_ok(line):
    return "[" not in line and "]" not in line and re.search(r"[A-Za-z]", line) is not None


def build_hellaswag(docs, rng, total):
    per = {}
    for dom, q in quotas(total, list(docs)).items():
        lines = [[squash(l) for l in t.split("\n")] for t in docs[dom]]
        lines = [[l for l in ls if l] for ls in lines]
        pool = []  # (doc, index) of every usable ending line
        for di, ls in enumerate(lines):
            for li, l in enumerate(ls):
                if 20 <= len(l) <= 110 and hellaswag_ok(l):
                    pool.append((di, li))
        cands = []
        for di, li in pool:
            k = 2 + (li % 3)  # 2-4 context lines
            if li < k:
                continue
            ctx_lines = lines[di][li - k:li]
            ctx = " ".join(ctx_lines)
            if all(hellaswag_ok(l) for l in ctx_lines) and 40 <= len(ctx) <= 320:
                cands.append((di, li, ctx))
        chosen = pick_spread(rng, cands, 3 * q, key_doc=lambda c: c[0])
        items, seen_ctx = [], set()
        for di, li, ctx in chosen:
            if len(items) == q:
                break
            true_end = lines[di][li]
            if ctx in seen_ctx:
                continue
            others = [lines[dj][lj] for dj, lj in pool if dj != di]
            others = sorted(set(o for o in others if o != true_end and o not in ctx))
            close = sorted(others, key=lambda o: (abs(len(o) - len(true_end)), o))[:24]
            if len(close) < 3:
                continue
            pick = rng.choice(len(close), size=3, replace=False)
            distractors = [close[int(i)] for i in sorted(pick)]
            seen_ctx.add(ctx)
            items.append({"ctx": ctx, "true": true_end, "distractors": distractors, "domain": dom})
        per[dom] = items
    out = round_robin(per)
    for n, it in enumerate(out):
        label = n % 4
        endings = list(it["distractors"])
        endings.insert(label, it["true"])
        out[n] = {"ctx": it["ctx"], "endings": endings, "label": label, "domain": it["domain"]}
    return out


# ------------------------------------------------------------------------------ LAMBADA

STOP = set("""that this with from have were they them their there which what when where will would
shall unto your yours also into than then these those been being some such only upon other
each more most very here thee thou thy thine hath doth""".split())


def bare(w):
    return re.sub(r"^[^A-Za-z]+|[^A-Za-z]+$", "", w)


def build_lambada(docs, rng, total):
    per = {}
    for dom, q in quotas(total, prose_domains(docs)).items():
        cands = []
        for di, t in enumerate(docs[dom]):
            words = t.split()
            start = 0
            while start + 40 < len(words):
                n = 30 + int(rng.integers(0, 41))  # passage length 30..70 words
                seg = words[start:start + n]
                # the last word that is alphabetic, >= 4 letters, not a stop word, seen earlier
                for j in range(len(seg) - 1, 19, -1):
                    w = bare(seg[j])
                    if (len(w) >= 4 and w.isalpha() and w.isascii() and w.lower() not in STOP
                            and seg[j].startswith(w)
                            and any(bare(x).lower() == w.lower() for x in seg[:j])):
                        text = " ".join(seg[:j] + [w])
                        if len(text) <= 420:
                            cands.append((di, text))
                        break
                start += n
        chosen = pick_spread(rng, cands, len(cands), key_doc=lambda c: c[0])
        items, seen = [], set()
        for di, text in chosen:
            if len(items) == q:
                break
            if text not in seen:
                seen.add(text)
                items.append({"text": text, "domain": dom})
        per[dom] = items
    return round_robin(per)


# ------------------------------------------------------------------------------ WinoGrande

WORD = re.compile(r"[A-Za-z]+")


def shape(w, freq):
    cap = "U" if w.isupper() else ("C" if w[0].isupper() else "l")
    suf = next((s for s in ("ing", "ed", "ly", "es", "s", "er", "tion") if w.lower().endswith(s)), "")
    return cap, suf, int(np.log2(freq))


def build_winogrande(docs, rng, total):
    per = {}
    for dom, q in quotas(total, list(docs)).items():
        cands = []
        for di, t in enumerate(docs[dom]):
            freq = {}
            for m in WORD.finditer(t):
                freq[m.group(0)] = freq.get(m.group(0), 0) + 1
            vocab = sorted(w for w in freq if len(w) >= 3)
            for line in t.split("\n"):
                s = squash(line)
                if not (40 <= len(s) <= 200) or "_" in s:
                    continue
                words = s.split(" ")
                if len(words) < 7:
                    continue
                # blank positions: a whole alphabetic word with >= 2 words before and >= 3 after
                pos = [i for i in range(2, len(words) - 3)
                       if WORD.fullmatch(words[i]) and len(words[i]) >= 3]
                if pos:
                    cands.append((di, s, words, pos, freq, vocab))
        chosen = pick_spread(rng, cands, len(cands), key_doc=lambda c: c[0])
        items, seen = [], set()
        for di, s, words, pos, freq, vocab in chosen:
            if len(items) == q:
                break
            i = pos[int(rng.integers(0, len(pos)))]
            w = words[i]
            sh = shape(w, freq[w])
            alts = [v for v in vocab if v.lower() != w.lower() and abs(len(v) - len(w)) <= 2
                    and shape(v, freq[v]) == sh and v not in words]
            if not alts:
                continue
            alt = alts[int(rng.integers(0, len(alts)))]
            sentence = " ".join(words[:i] + ["_"] + words[i + 1:])
            if sentence in seen:
                continue
            seen.add(sentence)
            items.append({"sentence": sentence, "true": w, "alt": alt, "domain": dom})
        per[dom] = items
    out = round_robin(per)
    for n, it in enumerate(out):
        if n % 2 == 0:
            o1, o2, ans = it["true"], it["alt"], "1"
        else:
            o1, o2, ans = it["alt"], it["true"], "2"
        out[n] = {"sentence": it["sentence"], "option1": o1, "option2": o2, "answer": ans,
                  "domain": it["domain"]}
    return out


# ------------------------------------------------------------------------------ main

def write_jsonl(path, items):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


def build(corpus, out, seed, n):
    docs = load_docs(corpus)
    os.makedirs(out, exist_ok=True)
    # One generator per task, so that changing one builder leaves the others' items unchanged.
    hs = build_hellaswag(docs, np.random.Generator(np.random.PCG64([seed, 1])), n)
    lb = build_lambada(docs, np.random.Generator(np.random.PCG64([seed, 2])), n)
    wg = build_winogrande(docs, np.random.Generator(np.random.PCG64([seed, 3])), n)
    for name, items in zip(FILES, (hs, lb, wg)):
        write_jsonl(os.path.join(out, name), items)
    return {"hellaswag": hs, "lambada": lb, "winogrande": wg}


def harness_pairs(task, it):
    """(context, continuation) strings as `moewb eval` forms them (lm-eval-harness formatting)."""
    if task == "hellaswag":
        return [(it["ctx"], " " + e) for e in it["endings"]]
    if task == "lambada":
        cut = it["text"].rfind(" ")
        return [(it["text"][:cut], " " + it["text"][cut + 1:])]
    idx = it["sentence"].index("_")
    cont = " " + it["sentence"][idx + 1:].strip()
    return [(it["sentence"][:idx] + it[o], cont) for o in ("option1", "option2")]


def check(args):
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        built = build(args.corpus, tmp, args.seed, args.items)
        for name in FILES:
            same = filecmp.cmp(os.path.join(tmp, name), os.path.join(args.out, name), shallow=False)
            print(f"{name}: {'identical' if same else 'DIFFERS'} to the committed file")
            ok &= same
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import train_bpe  # noqa: E402

    enc = train_bpe.Encoder(args.tokenizer)
    for task, items in built.items():
        counts = []
        for it in items:
            for ctx, cont in harness_pairs(task, it):
                whole, c = enc.encode(ctx + cont), enc.encode(ctx)
                if len(whole) <= len(c) or whole[:len(c)] != c:
                    print(f"{task}: empty or non-prefix continuation: {ctx!r} + {cont!r}")
                    ok = False
                counts.append(len(whole) - len(c))
        doms = {}
        for it in items:
            doms[it["domain"]] = doms.get(it["domain"], 0) + 1
        labels = {}
        for it in items:
            lab = str(it.get("label", it.get("answer", "-")))
            labels[lab] = labels.get(lab, 0) + 1
        print(f"{task}: {len(items)} items, domains {doms}, labels {labels}, continuation tokens "
              f"min {min(counts)} mean {sum(counts) / len(counts):.1f} max {max(counts)}")
        if len(items) < 500:
            print(f"{task}: fewer than 500 items")
            ok = False
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in FILES)
    print(f"total size {size} bytes")
    ok &= size < 1_500_000
    return 0 if ok else 1


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="build the demo zero-shot task files")
    ap.add_argument("--corpus", default=os.path.join(here, "corpus-v2", "eval.jsonl"))
    ap.add_argument("--out", default=os.path.join(here, "tasks-v2"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--items", type=int, default=600, help="items per task")
    ap.add_argument("--tokenizer", default=os.path.join(here, "tokenizer-v2", "tokenizer.json"))
    ap.add_argument("--check", action="store_true",
                    help="rebuild into a temp dir, compare bytes with --out, check tokenization")
    args = ap.parse_args()
    if args.check:
        return check(args)
    built = build(args.corpus, args.out, args.seed, args.items)
    for task, items in built.items():
        print(f"{task}: {len(items)} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
