#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Markdown tables of a `moewb pipeline` results.json (docs/allocation.md, "Strategies compared").

One table: a row per strategy, a column group per budget (average bits and size, KLD, the paired
difference to uniform with its 95 % interval), then one line per budget naming the lowest-KLD
strategy and, from its `kld_vs_others`, every strategy it is not better than beyond noise.
Usage: strategy_table.py results.json [TEXT_NAME]   (TEXT_NAME: the --ppl file's name; default the first)
"""
import json
import sys


def interval(iv):
    star = " *" if iv["lo"] > 0 or iv["hi"] < 0 else ""
    return f"{iv['diff']:+.4f} [{iv['lo']:+.4f}, {iv['hi']:+.4f}]{star}"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[-1])
    res = json.load(open(sys.argv[1]))
    rows = res["rows"]
    text = sys.argv[2] if len(sys.argv) == 3 else next(iter(rows[0]["kld"]))
    budgets = sorted({r["target_bits"] for r in rows if r["strategy"]})
    strategies = []
    for r in rows:
        if r["strategy"] and r["strategy"] not in strategies:
            strategies.append(r["strategy"])
    cell = {(r["strategy"], r["target_bits"]): r for r in rows if r["strategy"]}
    base = rows[0]
    print(f"target {res.get('target', 'gptq')}; baseline perplexity {base['perplexity'][text]:.3f}, "
          f"{base['model_bytes'] / 1e6:.2f} MB")
    print()
    head = "| strategy |" + "".join(f" {b:g}: bits / MB | KLD | Δ vs uniform [95 %] |" for b in budgets)
    print(head)
    print("|---|" + "---:|---:|---|" * len(budgets))
    for s in strategies:
        line = f"| {s} |"
        for b in budgets:
            r = cell.get((s, b))
            if r is None:
                line += " – | – | – |"
                continue
            vs = interval(r["kld_vs_uniform"]) if "kld_vs_uniform" in r else "–"
            line += f" {r['average_bits']:.3f} / {r['model_bytes'] / 1e6:.2f} | {r['kld'][text]:.4f} | {vs} |"
        print(line)
    print()
    for b in budgets:
        winners = [r for r in rows if r["strategy"] and r["target_bits"] == b and "kld_vs_others" in r]
        for w in winners:
            ties = [o["against"] for o in w["kld_vs_others"] if o["hi"] >= 0]
            verdict = ("better than every other strategy beyond noise" if not ties
                       else "not distinguishable from " + ", ".join(ties))
            closest = min(w["kld_vs_others"], key=lambda o: -o["diff"]) if w["kld_vs_others"] else None
            extra = f"; closest: {closest['against']} {interval(closest)}" if closest else ""
            print(f"- {b:g} bits: lowest KLD {w['label']} ({w['kld'][text]:.4f}), {verdict}{extra}")


if __name__ == "__main__":
    main()
