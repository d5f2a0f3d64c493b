#!/usr/bin/python3
"""Byte-level BPE tokenizer trainer and encoder (GPT-2 style), written for moewb.

Train:   /usr/bin/python3 datasets/train_bpe.py CORPUS.jsonl OUT/tokenizer.json --vocab 6144
Encode:  /usr/bin/python3 datasets/train_bpe.py --encode tokenizer.json IN.jsonl OUT.jsonl
         (one line {"ids":[...]} per input document; IN may also be a .txt file,
          which is encoded as a single document)
Check:   /usr/bin/python3 datasets/train_bpe.py --selftest tokenizer.json IN.jsonl
         (encode, decode, compare with the input; also compares the two pre-tokenizers)

Algorithm
  1. Pre-tokenize every document with the GPT-2 pattern
       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
     (Debian's python3-regex when installed, else an equivalent hand-written scanner
     over unicodedata categories) and count the unique words.
  2. Each word becomes a sequence of its UTF-8 bytes, shown as GPT-2's printable
     byte-to-unicode symbols.  The 256 byte symbols get ids 0..255 in GPT-2 order.
  3. Repeatedly merge the most frequent adjacent pair (frequency summed over
     unique words weighted by their counts).  Ties: the lexicographically smallest
     (left, right) pair of symbol strings.  Pair counts and the pair -> words
     index are updated incrementally for the words that contain the merged pair;
     the best pair is taken from a lazily invalidated heap.
  4. Special tokens (<|endoftext|>) take the last ids; vocab size includes them.
The output is a Hugging Face tokenizer.json (BPE model, ByteLevel pre-tokenizer,
post-processor and decoder, merges as [left, right] pairs in rank order).
"""
import argparse
import collections
import heapq
import json
import sys
import time
import unicodedata

SPECIAL_TOKENS = ["<|endoftext|>"]

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# ------------------------------------------------------------------ byte <-> unicode

def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable code points:
    printable Latin-1 bytes map to themselves, the other 68 bytes to 256, 257, ..."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
# Initial alphabet in id order: sorted by code point (== GPT-2's vocab order).
BYTE_SYMBOLS = sorted(BYTE_TO_CHAR.values())


# ------------------------------------------------------------------ pre-tokenizer

# Unicode White_Space (what \s means in the `regex` module and, minus U+FEFF, in JS).
_WS = set("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
          + "".join(chr(c) for c in range(0x2000, 0x200B)))


def _cls(c):
    """'s' whitespace, 'L' letter, 'N' number, 'P' anything else."""
    if c in _WS:
        return "s"
    cat = unicodedata.category(c)[0]
    if cat == "L":
        return "L"
    if cat == "N":
        return "N"
    return "P"


_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")


def pretokenize_scan(text):
    """Hand-written equivalent of GPT2_PATTERN (leftmost alternative wins)."""
    out = []
    n = len(text)
    i = 0
    cls = [_cls(c) for c in text]
    while i < n:
        c = text[i]
        if c == "'":
            hit = None
            for suf in _CONTRACTIONS:
                if text.startswith(suf, i + 1):
                    hit = suf
                    break
            if hit is not None:
                out.append(text[i:i + 1 + len(hit)])
                i += 1 + len(hit)
                continue
        k = cls[i]
        start = i
        j = i
        if c == " " and i + 1 < n and cls[i + 1] != "s":
            j = i + 1                    # optional leading space
            k = cls[j]
        if k != "s":
            j += 1
            while j < n and cls[j] == k:
                j += 1
            out.append(text[start:j])
            i = j
            continue
        # whitespace run
        j = i
        while j < n and cls[j] == "s":
            j += 1
        if j == n or j - i == 1:
            out.append(text[i:j])        # \s+(?!\S) at end, or single \s+
            i = j
        else:
            out.append(text[i:j - 1])    # leave the last one for the next token
            i = j - 1
    return out


try:
    import regex as _regex
    _GPT2_RE = _regex.compile(GPT2_PATTERN)

    def pretokenize_regex(text):
        return _GPT2_RE.findall(text)
except ImportError:                      # python3-regex not installed
    pretokenize_regex = None

pretokenize = pretokenize_regex or pretokenize_scan


def word_symbols(word):
    return "".join(BYTE_TO_CHAR[b] for b in word.encode("utf-8"))


# ------------------------------------------------------------------ corpus

def iter_documents(path):
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)["text"]
    else:
        with open(path, encoding="utf-8") as f:
            yield f.read()


# ------------------------------------------------------------------ training

def train(corpus, vocab_size, log):
    t0 = time.time()
    counts = collections.Counter()
    ndocs = 0
    for text in iter_documents(corpus):
        counts.update(pretokenize(text))
        ndocs += 1
    log(f"pre-tokenized {ndocs} documents: {sum(counts.values())} words, "
        f"{len(counts)} unique ({time.time() - t0:.1f}s)")

    sym_str = list(BYTE_SYMBOLS)                       # id -> symbol string
    sym_id = {s: i for i, s in enumerate(sym_str)}
    words = []                                         # list of lists of ids
    freqs = []
    for w in sorted(counts):                           # sorted: deterministic indices
        words.append([sym_id[ch] for ch in word_symbols(w)])
        freqs.append(counts[w])
    del counts

    pair_count = collections.defaultdict(int)
    pair_words = collections.defaultdict(set)
    for wi, syms in enumerate(words):
        f = freqs[wi]
        for a, b in zip(syms, syms[1:]):
            pair_count[(a, b)] += f
            pair_words[(a, b)].add(wi)

    def entry(p):
        return (-pair_count[p], sym_str[p[0]], sym_str[p[1]], p)

    heap = [entry(p) for p in pair_count]
    heapq.heapify(heap)

    n_symbols = vocab_size - len(SPECIAL_TOKENS)
    merges = []
    t1 = time.time()
    while len(sym_str) < n_symbols and heap:
        negc, _, _, pair = heapq.heappop(heap)
        cur = pair_count.get(pair, 0)
        if cur <= 0 or -negc != cur:
            continue                                   # stale heap entry
        a, b = pair
        merged = sym_str[a] + sym_str[b]
        new = sym_id.get(merged)
        if new is None:                                # usual case: a new token
            new = len(sym_str)
            sym_str.append(merged)
            sym_id[merged] = new
        # else: another merge path already produced this string; reuse its id
        merges.append((sym_str[a], sym_str[b]))
        changed = set()
        for wi in sorted(pair_words.pop(pair)):
            syms = words[wi]
            f = freqs[wi]
            # remove the old word's pair contributions
            for p in zip(syms, syms[1:]):
                pair_count[p] -= f
                changed.add(p)
            out = []
            i = 0
            L = len(syms)
            while i < L:
                if i + 1 < L and syms[i] == a and syms[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pair_count[p] += f
                pair_words[p].add(wi)
                changed.add(p)
            # drop word index from pairs it no longer contains
            still = set(zip(out, out[1:]))
            for p in zip(syms, syms[1:]):
                if p not in still:
                    s = pair_words.get(p)
                    if s is not None:
                        s.discard(wi)
        pair_count.pop(pair, None)
        for p in changed:
            c = pair_count.get(p, 0)
            if c > 0 and p != pair:
                heapq.heappush(heap, entry(p))
            elif c <= 0:
                pair_count.pop(p, None)
                pair_words.pop(p, None)
        if len(merges) % 500 == 0:
            log(f"  {len(merges)} merges, last {merges[-1]!r} count {cur} "
                f"({time.time() - t1:.1f}s)")
    log(f"learned {len(merges)} merges ({len(sym_str)} symbols) in {time.time() - t1:.1f}s")
    if len(sym_str) < n_symbols:
        log(f"warning: corpus supports only {len(sym_str)} symbols")
    return merges


def tokenizer_json(merges):
    vocab = {}
    for s in BYTE_SYMBOLS:
        vocab[s] = len(vocab)
    for l, r in merges:
        tok = l + r
        if tok not in vocab:             # two merge paths may yield the same string
            vocab[tok] = len(vocab)
    added = []
    for s in SPECIAL_TOKENS:
        vocab[s] = len(vocab)
        added.append({"id": vocab[s], "content": s, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                          "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                    "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[l, r] for l, r in merges]},
    }


# ------------------------------------------------------------------ encoding

class Encoder:
    """Applies the merges of a tokenizer.json by rank (lowest rank first)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        model = tj["model"]
        self.vocab = model["vocab"]
        self.inv = {i: s for s, i in self.vocab.items()}
        merges = model["merges"]
        if merges and isinstance(merges[0], str):
            merges = [m.split(" ", 1) for m in merges]
        self.ranks = {(l, r): i for i, (l, r) in enumerate(merges)}
        self.special = {t["content"]: t["id"] for t in tj.get("added_tokens", [])}
        self.cache = {}

    def bpe(self, word):
        syms = list(word_symbols(word))
        ranks = self.ranks
        while len(syms) > 1:
            best = None
            best_rank = None
            for p in zip(syms, syms[1:]):
                r = ranks.get(p)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = p, r
            if best is None:
                break
            a, b = best
            out = []
            i = 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        return [self.vocab[s] for s in syms]

    def encode(self, text):
        ids = []
        for w in pretokenize(text):
            r = self.cache.get(w)
            if r is None:
                r = self.bpe(w)
                if len(self.cache) < 1_000_000:
                    self.cache[w] = r
            ids.extend(r)
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            s = self.inv[i]
            if s in self.special:
                out += s.encode("utf-8")
            else:
                out += bytes(CHAR_TO_BYTE[c] for c in s)
        return out.decode("utf-8", errors="replace")


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description="byte-level BPE trainer / encoder")
    ap.add_argument("args", nargs="+")
    ap.add_argument("--vocab", type=int, default=6144,
                    help="total vocabulary size including special tokens")
    ap.add_argument("--encode", action="store_true",
                    help="args: TOKENIZER_JSON IN(.jsonl|.txt) OUT.jsonl")
    ap.add_argument("--selftest", action="store_true",
                    help="args: TOKENIZER_JSON IN.jsonl  (round trip + pre-tokenizer check)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    log = (lambda *x: None) if a.quiet else (lambda *x: print(*x, file=sys.stderr, flush=True))

    if a.encode:
        tok_path, inp, outp = a.args
        enc = Encoder(tok_path)
        t0 = time.time()
        ntok = nbytes = 0
        with open(outp, "w", encoding="utf-8") as f:
            for text in iter_documents(inp):
                ids = enc.encode(text)
                ntok += len(ids)
                nbytes += len(text.encode("utf-8"))
                f.write(json.dumps({"ids": ids}) + "\n")
        log(f"encoded {nbytes} bytes into {ntok} tokens "
            f"({nbytes / max(ntok, 1):.3f} bytes/token) in {time.time() - t0:.1f}s")
        return
    if a.selftest:
        tok_path, inp = a.args
        enc = Encoder(tok_path)
        bad_rt = bad_pt = docs = 0
        for text in iter_documents(inp):
            docs += 1
            if enc.decode(enc.encode(text)) != text:
                bad_rt += 1
            if pretokenize_regex is not None and pretokenize_scan(text) != pretokenize_regex(text):
                bad_pt += 1
        print(f"{docs} documents: round-trip mismatches {bad_rt}; "
              f"scanner vs regex pre-tokenizer mismatches "
              f"{bad_pt if pretokenize_regex else 'n/a (python3-regex missing)'}")
        sys.exit(1 if bad_rt or bad_pt else 0)

    corpus, outp = a.args
    t0 = time.time()
    log(f"pre-tokenizer: {'python3-regex' if pretokenize_regex else 'unicodedata scanner'}")
    merges = train(corpus, a.vocab, log)
    tj = tokenizer_json(merges)
    import os
    os.makedirs(os.path.dirname(os.path.abspath(outp)), exist_ok=True)
    with open(outp, "w", encoding="utf-8", newline="\n") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    log(f"wrote {outp}: vocab {len(tj['model']['vocab'])}, "
        f"{len(merges)} merges, total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
