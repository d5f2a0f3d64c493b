#!/usr/bin/python3
"""Build the deterministic multi-domain moewb demo corpus v1 from Debian packages.

Usage:  /usr/bin/python3 datasets/build_corpus.py OUT_DIR [--seed 0] [--domain-bytes N]

Corpus v1 and the models trained on it are no longer shipped (issue 22); datasets/build_corpus_v2.py
builds the current corpus and imports this module's sources, cleaning and de-duplication.

Domains (each document keeps its label):
  scripture  King James Bible, one chapter per document      (bible-kjv, bible-kjv-text)
  fortunes   fortune cookies, runs of consecutive entries      (fortunes, fortunes-min)
  manpages   Linux man-pages rendered to plain text by man-db  (manpages, manpages-dev, man-db, groff-base)
  c_cpp      C and C++ headers                                 (libc6-dev, linux-libc-dev, libstdc++-12-dev)
  python     Python 3.11 standard library sources              (libpython3.11-stdlib, libpython3.11-minimal)
  licenses   licence texts and Debian copyright files          (base-files + /usr/share/doc/*/copyright)

Per domain: candidate units (files / chapters / fortune runs) are sorted, then
ordered by sha256(seed:domain:source).  Walking that order, units are assigned
to eval until it holds EVAL_FRAC of the domain budget, then calib (CALIB_FRAC),
then train until the budget is reached.  Long paragraphs (>= DEDUP_MIN chars)
that were already emitted in the same domain are dropped, so no boilerplate
paragraph (e.g. a GPL text quoted in many copyright files) occurs twice in the
corpus, and in particular never in two splits.

Outputs: OUT_DIR/{train,calib,eval}.jsonl  ({"text","domain","source"} per line),
OUT_DIR/eval/<domain>.txt (eval documents separated by a blank line),
OUT_DIR/manifest.json (sizes, counts, package versions, sha256 of outputs).
Everything is deterministic: no timestamps, no dependence on directory order.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

DOMAINS = ["scripture", "fortunes", "manpages", "c_cpp", "python", "licenses"]
DOMAIN_BYTES = 2_500_000      # total UTF-8 bytes of text per domain (all splits)
EVAL_FRAC = 0.05
CALIB_FRAC = 0.05
MAX_FILE_BYTES = 1_000_000    # skip larger inputs entirely
MAX_DOC_BYTES = 24_000        # truncate documents (at a line boundary) beyond this
MIN_DOC_BYTES = 200           # drop tiny documents
DEDUP_MIN = 120               # paragraphs at least this long are deduplicated per domain
FORTUNE_RUN_BYTES = 3_000     # fortune documents: consecutive entries up to this size

DOMAIN_PACKAGES = {
    "scripture": ["bible-kjv", "bible-kjv-text"],
    "fortunes": ["fortune-mod", "fortunes", "fortunes-min"],
    "manpages": ["manpages", "manpages-dev", "man-db", "groff-base"],
    "c_cpp": ["libc6-dev", "linux-libc-dev", "libstdc++-12-dev"],
    "python": ["libpython3.11-stdlib", "libpython3.11-minimal"],
    "licenses": ["base-files"],
}

# C0/C1 controls (except \t \n) and BOM; also keeps the \s class identical across
# Python `regex`, unicodedata and JavaScript for the tokenizer.
CTRL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
OVERSTRIKE_RE = re.compile(r".\x08")


# ---------------------------------------------------------------- helpers

def dpkg_files(pkg):
    """Regular files owned by an installed package, sorted."""
    try:
        out = subprocess.run(["dpkg-query", "-L", pkg], check=True,
                             capture_output=True, text=True).stdout
    except subprocess.CalledProcessError:
        sys.exit(f"build_corpus: package {pkg} is not installed (see datasets/packages-v2.txt)")
    files = []
    for line in out.splitlines():
        if line and os.path.isfile(line) and not os.path.islink(line):
            files.append(line)
    return sorted(set(files))


def pkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def clean_text(raw):
    """bytes -> normalized str, or None if binary / not UTF-8."""
    if raw.count(b"\x00") > max(1, len(raw) // 1000):
        return None
    raw = raw.replace(b"\x00", b"")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    while "\x08" in text:                       # overstrike (bold / underline)
        new = OVERSTRIKE_RE.sub("", text)
        if new == text:
            text = text.replace("\x08", "")
            break
        text = new
    text = CTRL_RE.sub("", text)
    if "\ufffd" in text:
        return None
    # strip trailing whitespace per line, collapse >2 blank lines
    lines = [l.rstrip() for l in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{4,}", "\n\n\n", text).strip("\n")
    return text


def truncate(text, limit=MAX_DOC_BYTES):
    b = text.encode("utf-8")
    if len(b) <= limit:
        return text
    cut = b[:limit].decode("utf-8", errors="ignore")
    nl = cut.rfind("\n")
    if nl > limit // 2:
        cut = cut[:nl]
    return cut.rstrip("\n")


def read_file(path):
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            return None
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except OSError:
            return None
        if len(raw) > MAX_FILE_BYTES:
            return None
    return clean_text(raw)


# ---------------------------------------------------------------- domain sources
# Each source yields (source_id, loader) pairs; loader() -> text or None.
# Loaders are lazy so that expensive rendering happens only for selected units.

def src_scripture():
    env = dict(os.environ, LC_ALL="C.UTF-8")
    out = subprocess.run(["bible", "-l100000", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL,
                         capture_output=True, env=env, check=True).stdout
    text = clean_text(out)
    chapters = []
    cur_title, cur = None, []
    for line in text.split("\n"):
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m and cur_title is not None:
            cur.append(f"{m.group(1)} {m.group(2).strip()}")
        elif line.strip():
            if cur_title is not None:
                chapters.append((cur_title, cur))
            cur_title, cur = line.strip(), []
    if cur_title is not None:
        chapters.append((cur_title, cur))
    units = []
    for title, verses in chapters:
        body = title + "\n\n" + "\n".join(verses)
        units.append((f"kjv:{title}", (lambda b=body: b)))
    return units


def src_fortunes(packages=("fortunes", "fortunes-min")):
    files = set()
    for pkg in packages:
        for f in dpkg_files(pkg):
            if f.startswith("/usr/share/games/fortunes/") and "." not in os.path.basename(f):
                files.add(f)
    units = []
    for f in sorted(files):
        if os.path.basename(f) in ("ascii-art", "art"):     # pictures, not prose
            continue
        text = read_file(f)
        if text is None:
            continue
        entries = [e.strip("\n") for e in re.split(r"^%$", text, flags=re.M)]
        entries = [e for e in entries if e.strip()]
        run, size, k = [], 0, 0
        name = os.path.basename(f)
        for e in entries:
            run.append(e)
            size += len(e.encode("utf-8")) + 2
            if size >= FORTUNE_RUN_BYTES:
                body = "\n\n".join(run)
                units.append((f"fortunes/{name}#{k}", (lambda b=body: b)))
                run, size, k = [], 0, k + 1
        if run:
            body = "\n\n".join(run)
            units.append((f"fortunes/{name}#{k}", (lambda b=body: b)))
    return units


def render_man(path):
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "MANWIDTH": "80",
           "HOME": "/nonexistent"}
    with open(path, "rb") as f:
        head = gzip.decompress(f.read())[:200] if path.endswith(".gz") else f.read(200)
    if head.startswith(b".so ") or len(head) < 40:
        return None                                       # alias page
    r = subprocess.run(["man", "--nh", "--nj", "-l", "-P", "cat", path],
                       stdin=subprocess.DEVNULL, capture_output=True, env=env,
                       cwd="/usr/share/man", timeout=60)
    if r.returncode != 0:
        return None
    return clean_text(r.stdout)


def src_manpages():
    files = set()
    for pkg in ["manpages", "manpages-dev"]:
        for f in dpkg_files(pkg):
            if re.match(r"^/usr/share/man/man[1-8]/", f):
                files.add(f)
    return [(f, (lambda p=f: render_man(p))) for f in sorted(files)]


def src_c_cpp():
    files = set()
    for pkg in DOMAIN_PACKAGES["c_cpp"]:
        for f in dpkg_files(pkg):
            if not f.startswith("/usr/include/"):
                continue
            base = os.path.basename(f)
            if re.search(r"\.(h|hh|hpp|hxx|tcc)$", base) or \
               ("/c++/" in f and "." not in base):
                files.add(f)
    return [(f, (lambda p=f: read_file(p))) for f in sorted(files)]


def src_python():
    files = set()
    for pkg in DOMAIN_PACKAGES["python"]:
        for f in dpkg_files(pkg):
            if f.startswith("/usr/lib/python3.11/") and f.endswith(".py") \
               and "-packages/" not in f:
                files.add(f)
    return [(f, (lambda p=f: read_file(p))) for f in sorted(files)]


def src_licenses():
    files = set(f for f in dpkg_files("base-files")
                if f.startswith("/usr/share/common-licenses/"))
    docroot = "/usr/share/doc"
    for d in sorted(os.listdir(docroot)):
        p = os.path.join(docroot, d, "copyright")
        if os.path.isfile(p) and not os.path.islink(p):
            files.add(p)
    return [(f, (lambda p=f: read_file(p))) for f in sorted(files)]


SOURCES = {"scripture": src_scripture, "fortunes": src_fortunes,
           "manpages": src_manpages, "c_cpp": src_c_cpp,
           "python": src_python, "licenses": src_licenses}


# ---------------------------------------------------------------- assembly

def order_key(seed, domain, source):
    return hashlib.sha256(f"{seed}:{domain}:{source}".encode("utf-8")).hexdigest()


def dedup_paragraphs(text, seen):
    paras = re.split(r"(\n\s*\n)", text)
    out = []
    i = 0
    while i < len(paras):
        p = paras[i]
        sep = paras[i + 1] if i + 1 < len(paras) else ""
        norm = " ".join(p.split())
        if len(norm) >= DEDUP_MIN:
            h = hashlib.sha256(norm.encode("utf-8")).digest()
            if h in seen:
                i += 2
                continue
            seen.add(h)
        out.append(p + sep)
        i += 2
    return "".join(out).strip("\n")


def build_domain(domain, seed, budget, log):
    units = SOURCES[domain]()
    units.sort(key=lambda u: (order_key(seed, domain, u[0]), u[0]))
    targets = [("eval", budget * EVAL_FRAC), ("calib", budget * CALIB_FRAC),
               ("train", budget * (1 - EVAL_FRAC - CALIB_FRAC))]
    splits = {"train": [], "calib": [], "eval": []}
    sizes = {"train": 0, "calib": 0, "eval": 0}
    seen = set()
    ti = 0
    stats = {"candidates": len(units), "rejected": 0}
    for source, loader in units:
        if ti >= len(targets):
            break
        text = loader()
        if text is None:
            stats["rejected"] += 1
            continue
        text = dedup_paragraphs(truncate(text), seen)
        nbytes = len(text.encode("utf-8"))
        if nbytes < MIN_DOC_BYTES:
            stats["rejected"] += 1
            continue
        name, target = targets[ti]
        splits[name].append({"text": text, "domain": domain, "source": source})
        sizes[name] += nbytes
        if sizes[name] >= target:
            ti += 1
    stats["exhausted"] = ti < len(targets)
    log(f"  {domain}: {stats['candidates']} candidates, {stats['rejected']} rejected, "
        + ", ".join(f"{k} {len(v)} docs / {sizes[k]} B" for k, v in splits.items()))
    return splits, stats


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--domain-bytes", type=int, default=DOMAIN_BYTES,
                    help="UTF-8 text bytes per domain over all splits (default %(default)s)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    out = args.out_dir
    os.makedirs(os.path.join(out, "eval"), exist_ok=True)
    all_splits = {"train": [], "calib": [], "eval": []}
    domain_stats = {}
    for d in DOMAINS:
        log(f"building {d} ...")
        splits, stats = build_domain(d, args.seed, args.domain_bytes, log)
        domain_stats[d] = stats
        for k in all_splits:
            all_splits[k].extend(splits[k])

    outputs = []
    summary = {}
    for split in ["train", "calib", "eval"]:
        path = os.path.join(out, f"{split}.jsonl")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for doc in all_splits[split]:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        outputs.append(f"{split}.jsonl")
        per = {}
        for d in DOMAINS:
            docs = [x for x in all_splits[split] if x["domain"] == d]
            per[d] = {"documents": len(docs),
                      "text_bytes": sum(len(x["text"].encode("utf-8")) for x in docs)}
        summary[split] = {"documents": len(all_splits[split]),
                          "text_bytes": sum(v["text_bytes"] for v in per.values()),
                          "per_domain": per}
    for d in DOMAINS:
        path = os.path.join(out, "eval", f"{d}.txt")
        docs = [x["text"] for x in all_splits["eval"] if x["domain"] == d]
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n\n".join(docs) + "\n")
        outputs.append(f"eval/{d}.txt")

    pkgs = sorted(set(p for v in DOMAIN_PACKAGES.values() for p in v) | {"python3-regex"})
    # copyright files: record the owning (directory) package and its version
    lic_pkgs = {}
    for doc in all_splits["train"] + all_splits["calib"] + all_splits["eval"]:
        if doc["domain"] == "licenses" and doc["source"].startswith("/usr/share/doc/"):
            name = doc["source"].split("/")[4]
            lic_pkgs[name] = pkg_version(name)
    manifest = {
        "generator": "datasets/build_corpus.py",
        "seed": args.seed,
        "domains": DOMAINS,
        "parameters": {"domain_bytes": args.domain_bytes, "eval_frac": EVAL_FRAC,
                       "calib_frac": CALIB_FRAC, "max_file_bytes": MAX_FILE_BYTES,
                       "max_doc_bytes": MAX_DOC_BYTES, "min_doc_bytes": MIN_DOC_BYTES,
                       "dedup_min_chars": DEDUP_MIN, "fortune_run_bytes": FORTUNE_RUN_BYTES},
        "domain_sources": {d: DOMAIN_PACKAGES[d] for d in DOMAINS},
        "domain_candidates": {d: domain_stats[d]["candidates"] for d in DOMAINS},
        "splits": summary,
        "package_versions": {p: pkg_version(p) for p in pkgs},
        "license_copyright_packages": dict(sorted(lic_pkgs.items())),
        "files": {name: {"bytes": os.path.getsize(os.path.join(out, name)),
                         "sha256": sha256_file(os.path.join(out, name))}
                  for name in outputs},
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for split in ["train", "calib", "eval"]:
        s = summary[split]
        log(f"{split}: {s['documents']} docs, {s['text_bytes']} text bytes")


if __name__ == "__main__":
    main()
