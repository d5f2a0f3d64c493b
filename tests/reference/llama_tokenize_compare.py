#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""By-hand check of docs/export-gguf.md ("Tokenizers in llama.cpp"): llama.cpp's tokenizer, reading the
vocabulary-only GGUF that moewb's writer made (tst_gguf_tokenizer with MOEWB_GGUF_TOK_OUT=DIR), against
`moewb tokenize DIR --jsonl` on the golden strings (tests/data/tokenizer/inputs.jsonl, the "text" field of each).

usage: llama_tokenize_compare.py [--nfc] HARNESS MOEWB GGUF_DIR NAME...   (HARNESS: llama_tokenize_golden, built by hand)
With --nfc llama.cpp gets each text NFC-normalized (what tokenizer.json's NFC normalizer does before moewb splits it).
"""
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main():
    nfc = "--nfc" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--nfc"]
    harness, moewb, gguf_dir, names = args[0], args[1], Path(args[2]), args[3:]
    inputs = ROOT / "tests/data/tokenizer/inputs.jsonl"
    texts = [json.loads(line)["text"] for line in inputs.read_text(encoding="utf-8").split("\n") if line]
    fed = [unicodedata.normalize("NFC", t) if nfc else t for t in texts]
    hex_lines = "".join(t.encode("utf-8", "surrogatepass").hex() + "\n" for t in fed)
    for name in names:
        head = json.loads((ROOT / f"tests/data/tokenizer/{name}.ids.jsonl").read_text(encoding="utf-8").split("\n")[0])
        tok_dir = str(ROOT / Path(head["tokenizer_json"]).parent)
        ours = subprocess.run([moewb, "tokenize", tok_dir, "--jsonl", str(inputs)], capture_output=True,
                              text=True, check=True).stdout.split("\n")[:-1]
        theirs = subprocess.run([harness, str(gguf_dir / f"{name}.gguf")], input=hex_lines, capture_output=True,
                                text=True, check=True).stdout.split("\n")[:-1]
        assert len(ours) == len(theirs) == len(texts), (len(ours), len(theirs), len(texts))
        bad = []
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if json.loads(a) != [int(x) for x in b.split()]:
                bad.append(i)
        print(f"{name}: {len(texts) - len(bad)} of {len(texts)} strings identical" + (" (llama.cpp given NFC)" if nfc else ""))
        for i in bad[:8]:
            print(f"  line {i + 1}: {texts[i][:60]!r}\n    moewb {ours[i][:160]}\n    llama {theirs[i][:160]}")


if __name__ == "__main__":
    main()
