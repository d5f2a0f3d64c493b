#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Validation of the budget cost models (#24, docs/allocation.md), driven by scripts/validate_cost_model.sh.

    validate_cost_model.py groups  FISHER.json PROXY.json OUT_DIR [--groups N] [--seed S]
    validate_cost_model.py excerpt TEXT OUT [--chars C] [--pieces P]
    validate_cost_model.py report  OUT_DIR

groups: picks N linear groups of the error tables (every attention block, every single attention
linear, then routed experts drawn with the seed, then shared experts) and writes OUT_DIR/groups.json
plus one plan per group (everything 16 bits, the group 2-bit RTN, asymmetric, group size of the table).
excerpt: P evenly spaced pieces of TEXT, C characters in all, cut at line ends (held-out text mixes
domains in long runs, so the first C characters would be one domain).
report: reads OUT_DIR/kld/<i>.json (moewb eval --json) and prints the table and the Spearman rank
correlation of each cost model's predicted cost with the measured KL divergence.
"""
import argparse
import json
import os
import random
import re
import sys


def load_table(path):
    with open(path) as f:
        t = json.load(f)
    two = t["candidates"].index(2)
    return t, {l["name"]: l["error"][two] for l in t["linears"]}


def group_key(name):
    """(layer, kind, expert) of a linear: attention, routed expert or shared expert."""
    layer = int(re.search(r"layers\.(\d+)\.", name).group(1))
    m = re.search(r"\.experts\.(\d+)\.", name)
    if m:
        return layer, "expert", int(m.group(1))
    if ".self_attn." in name:
        return layer, "attn", -1
    if "shared_expert" in name:
        return layer, "shared", -1
    return layer, "dense", -1


def make_groups(names, n, seed):
    by = {}
    for name in names:
        by.setdefault(group_key(name), []).append(name)
    attn = sorted(k for k in by if k[1] == "attn")
    groups = [("L%d attention q/k/v/o" % k[0], by[k]) for k in attn]
    for k in attn:
        for name in by[k]:
            groups.append(("L%d %s" % (k[0], name.rsplit(".", 1)[1]), [name]))
    others = sorted(k for k in by if k[1] in ("shared", "dense"))
    groups += [("L%d %s MLP" % (k[0], k[1]), by[k]) for k in others]
    experts = sorted(k for k in by if k[1] == "expert")
    random.Random(seed).shuffle(experts)
    for k in experts[: max(0, n - len(groups))]:
        groups.append(("L%d expert %d" % (k[0], k[2]), by[k]))
    return groups[:n] if len(groups) > n else groups


def cmd_groups(a):
    fisher, fcost = load_table(a.fisher)
    _, pcost = load_table(a.proxy)
    groups = make_groups(list(fcost), a.groups, a.seed)
    os.makedirs(os.path.join(a.out, "plans"), exist_ok=True)
    rows = []
    for i, (label, names) in enumerate(groups):
        plan = {"format": "moewb-plan", "version": 1,
                "defaults": {"bits": 16, "group_size": fisher["group_size"], "sym": False, "method": "rtn"},
                "overrides": {n: {"bits": 2} for n in names}}
        with open(os.path.join(a.out, "plans", "%d.json" % i), "w") as f:
            json.dump(plan, f, indent=1)
        rows.append({"index": i, "label": label, "linears": names,
                     "fisher": sum(fcost[n] for n in names), "proxy": sum(pcost[n] for n in names)})
    with open(os.path.join(a.out, "groups.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(len(rows))


def cmd_excerpt(a):
    with open(a.text, encoding="utf-8", errors="replace") as f:
        text = f.read()
    per = a.chars // a.pieces
    out = []
    for p in range(a.pieces):
        start = text.find("\n", p * len(text) // a.pieces)
        start = 0 if start < 0 or p == 0 else start + 1
        end = text.find("\n", start + per)
        out.append(text[start: end if end > 0 else len(text)])
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    n = len(x)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / (sxx * syy) ** 0.5


def cmd_report(a):
    with open(os.path.join(a.out, "groups.json")) as f:
        rows = json.load(f)
    for r in rows:
        with open(os.path.join(a.out, "kld", "%d.json" % r["index"])) as f:
            r["kld"] = json.load(f)["perplexity"][0]["kld"]
    kld = [r["kld"] for r in rows]
    res = {"groups": len(rows), "spearman_fisher": spearman([r["fisher"] for r in rows], kld),
           "spearman_proxy": spearman([r["proxy"] for r in rows], kld), "rows": rows}
    ratios = sorted(r["fisher"] / r["kld"] for r in rows if r["kld"] > 0)
    res["fisher_over_measured_median"] = ratios[len(ratios) // 2] if ratios else None
    print("%-28s %4s %14s %14s %12s" % ("group (2-bit RTN)", "lin", "fisher (nats)", "proxy", "measured KLD"))
    for r in sorted(rows, key=lambda r: -r["kld"]):
        print("%-28s %4d %14.6f %14.4f %12.6f" % (r["label"], len(r["linears"]), r["fisher"], r["proxy"], r["kld"]))
    print("groups %d: Spearman fisher %.3f, proxy %.3f; median predicted/measured (fisher) %.2f"
          % (res["groups"], res["spearman_fisher"], res["spearman_proxy"], res["fisher_over_measured_median"] or 0))
    with open(os.path.join(a.out, "validation.json"), "w") as f:
        json.dump(res, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("groups")
    g.add_argument("fisher")
    g.add_argument("proxy")
    g.add_argument("out")
    g.add_argument("--groups", type=int, default=32)
    g.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("excerpt")
    e.add_argument("text")
    e.add_argument("out")
    e.add_argument("--chars", type=int, default=40000)
    e.add_argument("--pieces", type=int, default=16)
    r = sub.add_parser("report")
    r.add_argument("out")
    a = ap.parse_args()
    {"groups": cmd_groups, "excerpt": cmd_excerpt, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
