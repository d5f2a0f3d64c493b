#!/usr/bin/python3
"""Build corpus v2 (issue 22): >= 30 M training tokens of Debian package text in 13 domains.

Usage:  /usr/bin/python3 datasets/build_corpus_v2.py OUT_DIR [--seed 0] [--scale 1.0]
                                                     [--count-tokens TOKENIZER_JSON]

Packages: datasets/packages-v2.txt (apt-get install -y --no-install-recommends $(grep -v '^#' ...)).
Shares the cleaning, paragraph de-duplication and the v1 sources with datasets/build_corpus.py
(the v1 corpus builder; corpus v1 is no longer shipped).

Domains (budget = UTF-8 text bytes over all splits, at --scale 1):
  scripture   KJV Bible, one chapter per unit                     bible-kjv(-text)          all (~4.4 MB)
  fortunes    fortune cookie runs of ~3 KB                        fortunes*, fortune-mod    all (~3 MB)
  manpages    English man pages of 24 listed packages (man-pages,  manpages(-dev), git-man,  10 MB
              git, OpenSSL, Xlib, coreutils, util-linux, ...)      libssl-doc, libx11-doc ...
  c_cpp       C/C++ headers (libc, kernel, libstdc++, Qt 6) and     libc6-dev, glibc-source   12 MB
              glibc's C sources (glibc-source tarball)
  python      Python 3.11 stdlib + numpy, pygments, setuptools, pip libpython3.11-stdlib ...  12 MB
  licenses    common-licenses + every /usr/share/doc/*/copyright   base-files                 6 MB
  go          Go 1.19 standard library and toolchain sources       golang-1.19-src           10 MB
  rust        Rust 1.63 library/ and compiler/ sources             rust-src                  10 MB
  java        OpenJDK 17 class library sources (src.zip)           openjdk-17-source         10 MB
  perl        Perl 5.36 core modules (.pm/.pl/.pod)                perl-modules-5.36          6 MB
  docs        Python 3.11 docs (reST), Debian Policy, FHS, GNU     python3.11-doc, debian-   10 MB
              coding standards and maintainer guide (info)         policy, gnu-standards
  literature  Jane Austen's six novels, one chapter per unit       r-cran-janeaustenr         all (~4 MB)
  dictionary  Webster 1913 (GCIDE), Devil's Dictionary, Jargon     dict-gcide, dict-devil,   10 MB
              File, ~3 KB runs of consecutive entries              jargon-text

A unit is a file (or chapter / run of entries); it is cleaned (build_corpus.clean_text), its long
paragraphs are de-duplicated against everything emitted before in ANY domain (so licence headers
quoted in sources, or a GPL copy, appear once in the whole corpus and never in two splits), capped
at MAX_UNIT_BYTES and cut into documents of at most MAX_DOC_BYTES at blank lines (v1 truncated
instead). Per domain, units are ordered by sha256(seed:domain:source); walking that order, whole
units fill eval to EVAL_BYTES, then calib to CALIB_BYTES, then train to the budget. All documents of
a unit land in one split.

Outputs: OUT_DIR/{train,calib,eval}.jsonl ({"text","domain","source"} per line),
OUT_DIR/eval/<domain>.txt and OUT_DIR/calib/<domain>.txt (documents joined by a blank line),
OUT_DIR/manifest.json (parameters, per-domain/per-split documents, bytes and, with
--count-tokens, tokens; package versions; owning packages of man pages and copyright files;
sha256 of every output). Deterministic: two runs with the same installed packages give
byte-identical outputs.
"""
import argparse
import concurrent.futures
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_corpus as bc  # noqa: E402

MB = 1_000_000
DOMAINS = ["scripture", "fortunes", "manpages", "c_cpp", "python", "licenses",
           "go", "rust", "java", "perl", "docs", "literature", "dictionary"]
BUDGET = {"scripture": 6 * MB, "fortunes": 4 * MB, "manpages": 10 * MB, "c_cpp": 12 * MB,
          "python": 12 * MB, "licenses": 6 * MB, "go": 10 * MB, "rust": 10 * MB,
          "java": 10 * MB, "perl": 6 * MB, "docs": 10 * MB, "literature": 6 * MB,
          "dictionary": 10 * MB}
EVAL_BYTES = 125_000          # per domain
CALIB_BYTES = 125_000         # per domain
MAX_FILE_BYTES = 2_000_000    # skip larger input files
MAX_UNIT_BYTES = 256_000      # keep at most this much text of one unit
MAX_DOC_BYTES = 24_000        # documents are cut at blank lines to at most this size
MIN_DOC_BYTES = 200
RUN_BYTES = 3_000             # dictionary / fortune runs
SMALL_SPLIT_UNIT_BYTES = 32_000  # larger units go to train only (bounds eval / calib sizes)

# English man pages of these packages (not of everything installed: that differs per machine)
MANPAGE_PACKAGES = ["manpages", "manpages-dev", "git-man", "libssl-doc", "libx11-doc", "coreutils",
                    "util-linux", "bash", "openssh-client", "tar", "grep", "sed", "findutils", "make",
                    "dpkg", "apt", "man-db", "groff-base", "procps", "iproute2", "e2fsprogs", "curl",
                    "libpcre2-dev", "cmake-data"]

PACKAGES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "packages-v2.txt")

DOMAIN_PACKAGES = {
    "scripture": ["bible-kjv", "bible-kjv-text"],
    "fortunes": ["fortune-mod", "fortunes", "fortunes-min", "fortunes-bofh-excuses",
                 "fortunes-debian-hints"],
    "manpages": [],  # MANPAGE_PACKAGES
    "c_cpp": ["libc6-dev", "linux-libc-dev", "libstdc++-12-dev", "qt6-base-dev", "glibc-source"],
    "python": ["libpython3.11-stdlib", "libpython3.11-minimal", "python3-numpy",
               "python3-pygments", "python3-setuptools", "python3-pip"],
    "licenses": ["base-files"],
    "go": ["golang-1.19-src"],
    "rust": ["rust-src"],
    "java": ["openjdk-17-source"],
    "perl": ["perl-modules-5.36"],
    "docs": ["python3.11-doc", "debian-policy", "gnu-standards"],
    "literature": ["r-cran-janeaustenr", "r-base-core"],
    "dictionary": ["dict-gcide", "dict-devil", "jargon-text"],
}


def fail(msg):
    sys.exit(f"build_corpus_v2: {msg}")


# ---------------------------------------------------------------- text helpers

def split_doc(text, limit=MAX_DOC_BYTES):
    """Cuts text into pieces of at most `limit` UTF-8 bytes, at a blank line when one lies in the
    second half of the piece, else at a line end, else anywhere."""
    out = []
    while len(text.encode("utf-8")) > limit:
        head = text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
        cut = head.rfind("\n\n")
        if cut < len(head) // 2:
            cut = head.rfind("\n")
        if cut < len(head) // 4:
            cut = len(head)
        out.append(head[:cut].strip("\n"))
        text = text[cut:].lstrip("\n")
    if text.strip("\n"):
        out.append(text.strip("\n"))
    return out


def cap_bytes(text, limit=MAX_UNIT_BYTES):
    b = text.encode("utf-8")
    if len(b) <= limit:
        return text
    cut = b[:limit].decode("utf-8", errors="ignore")
    nl = cut.rfind("\n")
    return cut[:nl] if nl > limit // 2 else cut


def read_bytes_text(raw, name=""):
    if len(raw) > MAX_FILE_BYTES:
        return None
    if name.endswith(".gz"):
        import gzip
        try:
            raw = gzip.decompress(raw)
        except OSError:
            return None
    return bc.clean_text(raw)


def read_path(path):
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            return None
        with open(path, "rb") as f:
            return read_bytes_text(f.read(), path)
    except OSError:
        return None


def runs(paragraphs, prefix, run_bytes=RUN_BYTES):
    """Consecutive paragraphs grouped into units of about run_bytes."""
    units, cur, size, k = [], [], 0, 0
    for p in paragraphs:
        cur.append(p)
        size += len(p.encode("utf-8")) + 2
        if size >= run_bytes:
            body = "\n\n".join(cur)
            units.append((f"{prefix}#{k}", (lambda b=body: b)))
            cur, size, k = [], 0, k + 1
    if cur:
        body = "\n\n".join(cur)
        units.append((f"{prefix}#{k}", (lambda b=body: b)))
    return units


def pkg_files(pkg, pattern, exclude=None):
    rx = re.compile(pattern)
    ex = re.compile(exclude) if exclude else None
    return [f for f in bc.dpkg_files(pkg) if rx.search(f) and not (ex and ex.search(f))]


def file_units(paths):
    return [(p, (lambda q=p: read_path(q))) for p in sorted(set(paths))]


# ---------------------------------------------------------------- package ownership

_OWNER = None


def path_owner():
    """path -> owning package, from dpkg's file lists (for man pages)."""
    global _OWNER
    if _OWNER is None:
        _OWNER = {}
        info = "/var/lib/dpkg/info"
        for name in sorted(os.listdir(info)):
            if not name.endswith(".list"):
                continue
            pkg = name[:-5].split(":")[0]
            with open(os.path.join(info, name), encoding="utf-8", errors="replace") as f:
                for line in f:
                    _OWNER.setdefault(line.rstrip("\n"), pkg)
    return _OWNER


# ---------------------------------------------------------------- sources

def src_fortunes():
    return bc.src_fortunes(tuple(p for p in DOMAIN_PACKAGES["fortunes"] if p != "fortune-mod"))


def src_manpages():
    files = []
    for pkg in MANPAGE_PACKAGES:
        files += [f for f in pkg_files(pkg, r"^/usr/share/man/man[1-8]/") if not os.path.islink(f)]
    return [(f, (lambda p=f: bc.render_man(p))) for f in sorted(set(files))]


def src_c_cpp():
    units = bc.src_c_cpp()
    qt = pkg_files("qt6-base-dev", r"^/usr/include/.*/qt6/.*\.h$")
    units += file_units(qt)
    tars = pkg_files("glibc-source", r"\.tar\.xz$")
    if not tars:
        fail("glibc-source ships no tarball")
    members = {}
    with tarfile.open(tars[0], "r:xz") as tf:
        for m in tf:
            if m.isfile() and re.search(r"\.(c|h)$", m.name) and m.size <= MAX_FILE_BYTES:
                members[m.name] = tf.extractfile(m).read()
    base = os.path.basename(tars[0])
    units += [(f"{base}:{n}", (lambda r=members[n]: bc.clean_text(r))) for n in sorted(members)]
    return units


def src_python():
    units = bc.src_python()
    extra = []
    for pkg in ["python3-numpy", "python3-pygments", "python3-setuptools", "python3-pip"]:
        extra += pkg_files(pkg, r"^/usr/lib/python3/dist-packages/.*\.py$")
    return units + file_units(extra)


def src_go():
    return file_units(pkg_files("golang-1.19-src", r"\.go$", r"/testdata/"))


def src_rust():
    return file_units(pkg_files("rust-src", r"^/usr/src/rustc-[^/]+/(library|compiler)/.*\.rs$",
                                r"/tests?/"))


def src_java():
    zips = pkg_files("openjdk-17-source", r"/src\.zip$")
    if not zips:
        fail("openjdk-17-source ships no src.zip")
    zf = zipfile.ZipFile(zips[0])
    names = sorted(n for n in zf.namelist() if n.endswith(".java"))
    return [(f"src.zip:{n}", (lambda n=n: read_bytes_text(zf.read(n), n))) for n in names]


def src_perl():
    # unicore/ holds machine-generated Unicode tables, not Perl as people write it
    return file_units(pkg_files("perl-modules-5.36", r"\.(pm|pl|pod)$", r"/unicore/"))


def info_nodes(path):
    import gzip
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    units = []
    for k, node in enumerate(raw.split(b"\x1f")):
        m = re.search(rb"Node: ([^,\n]+)", node[:300])
        label = m.group(1).decode("utf-8", "replace").strip() if m else str(k)
        units.append((f"{path}#{k}:{label}", (lambda r=node: bc.clean_text(r))))
    return units


def src_docs():
    files = pkg_files("python3.11-doc", r"/_sources/.*\.(rst|txt)(\.txt)?$")
    files += pkg_files("debian-policy", r"(/_sources/.*\.rst\.txt|\.txt\.gz)$")
    units = file_units(files)
    for p in pkg_files("gnu-standards", r"\.info(\.gz)?$"):
        units += info_nodes(p)
    return units


def src_literature():
    books = ["emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
             "sensesensibility"]
    script = ("library(janeaustenr); for (b in c(%s)) { cat('@@BOOK ', b, '\\n', sep=''); "
              "writeLines(get(b)) }" % ", ".join(f"'{b}'" for b in books))
    env = dict(os.environ, LC_ALL="C.UTF-8")
    r = subprocess.run(["Rscript", "--vanilla", "-e", script], capture_output=True, env=env,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        fail("Rscript could not load janeaustenr: " + r.stderr.decode(errors="replace")[:200])
    text = bc.clean_text(r.stdout)
    units = []
    for block in re.split(r"^@@BOOK ", text, flags=re.M):
        if not block.strip():
            continue
        book, _, body = block.partition("\n")
        parts = re.split(r"^(?=(?:CHAPTER|Chapter) [0-9IVXLC]+\.?\s*$)", body, flags=re.M)
        title = parts[0].strip().split("\n")[0] if parts else book
        for k, ch in enumerate(parts[1:]):
            units.append((f"austen/{book}#{k + 1:03d}",
                          (lambda t=title, c=ch: t + "\n\n" + c.strip("\n"))))
    return units


def dict_entries(path):
    import gzip
    with open(path, "rb") as f:
        raw = gzip.decompress(f.read())
    # GCIDE has a few stray cp1252 bytes: entries with undecodable bytes are dropped
    paras = re.split(r"\n\s*\n", raw.decode("utf-8", errors="replace"))
    text = bc.clean_text("\n\n".join(p for p in paras if "\ufffd" not in p).encode("utf-8"))
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def src_dictionary():
    units = []
    for pkg, name in [("dict-gcide", "gcide"), ("dict-devil", "devil")]:
        for p in pkg_files(pkg, r"\.dict\.dz$"):
            units += runs(dict_entries(p), f"{name}")
    for p in pkg_files("jargon-text", r"jargon\.txt\.gz$"):
        units += runs(dict_entries(p), "jargon")
    return units


SOURCES = {"scripture": bc.src_scripture, "fortunes": src_fortunes, "manpages": src_manpages,
           "c_cpp": src_c_cpp, "python": src_python, "licenses": bc.src_licenses,
           "go": src_go, "rust": src_rust, "java": src_java, "perl": src_perl,
           "docs": src_docs, "literature": src_literature, "dictionary": src_dictionary}


# ---------------------------------------------------------------- assembly

def build_domain(domain, seed, budget, seen, pool, log):
    t0 = time.time()
    units = SOURCES[domain]()
    units.sort(key=lambda u: (bc.order_key(seed, domain, u[0]), u[0]))
    targets = {"eval": EVAL_BYTES, "calib": CALIB_BYTES,
               "train": max(0, budget - EVAL_BYTES - CALIB_BYTES)}
    splits = {"train": [], "calib": [], "eval": []}
    sizes = {"train": 0, "calib": 0, "eval": 0}
    stats = {"candidates": len(units), "rejected": 0, "units": 0}

    def full(name):
        return sizes[name] >= targets[name]

    def place(nbytes):
        """eval, then calib, then train; units too big for the small splits go to train."""
        for name in ("eval", "calib"):
            if not full(name):
                if nbytes <= SMALL_SPLIT_UNIT_BYTES:
                    return name
                break
        return None if full("train") else "train"

    batch = 16
    for i in range(0, len(units), batch):
        if all(full(n) for n in targets):
            break
        chunk = units[i:i + batch]
        # loaders (man rendering, zip reads) run on two threads; results are used in order
        texts = list(pool.map(lambda u: u[1](), chunk))
        for (source, _), text in zip(chunk, texts):
            if all(full(n) for n in targets):
                break
            if text is None:
                stats["rejected"] += 1
                continue
            text = bc.dedup_paragraphs(cap_bytes(text), seen)
            docs = [d for d in split_doc(text) if len(d.encode("utf-8")) >= MIN_DOC_BYTES]
            if not docs:
                stats["rejected"] += 1
                continue
            name = place(sum(len(d.encode("utf-8")) for d in docs))
            if name is None:
                continue
            for j, d in enumerate(docs):
                src = source if len(docs) == 1 else f"{source}@{j}"
                splits[name].append({"text": d, "domain": domain, "source": src})
                sizes[name] += len(d.encode("utf-8"))
            stats["units"] += 1
    stats["exhausted"] = not all(full(n) for n in targets)
    log(f"  {domain}: {stats['candidates']} candidates, {stats['rejected']} rejected, "
        + ", ".join(f"{k} {len(v)} docs / {sizes[k]} B" for k, v in splits.items())
        + (" (exhausted)" if stats["exhausted"] else "") + f"  [{time.time() - t0:.0f} s]")
    return splits, stats


def count_tokens(tokenizer, docs_by_key, log):
    """{key: [texts]} -> {key: tokens} with datasets/train_bpe.py's encoder (2 processes)."""
    import multiprocessing
    keys = sorted(docs_by_key)
    with multiprocessing.get_context("fork").Pool(2, initializer=_enc_init,
                                                  initargs=(tokenizer,)) as p:
        counts = p.map(_enc_count, [docs_by_key[k] for k in keys], chunksize=1)
    return dict(zip(keys, counts))


_ENC = None


def _enc_init(path):
    global _ENC
    import train_bpe
    _ENC = train_bpe.Encoder(path)


def _enc_count(texts):
    return sum(len(_ENC.encode(t)) for t in texts)


def read_packages_file():
    pkgs = []
    with open(PACKAGES_FILE, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                pkgs.append(line)
    return pkgs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every domain budget (default %(default)s)")
    ap.add_argument("--domains", default=",".join(DOMAINS),
                    help="comma-separated subset (for quick checks; default all)")
    ap.add_argument("--count-tokens", metavar="TOKENIZER_JSON",
                    help="also count tokens per domain and split with this tokenizer")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    domains = [d for d in args.domains.split(",") if d]
    for d in domains:
        if d not in SOURCES:
            fail(f"unknown domain {d}")
    missing = [p for p in read_packages_file() if bc.pkg_version(p) is None]
    if missing:
        fail(f"{PACKAGES_FILE}: packages not installed: {' '.join(missing)}")

    t0 = time.time()
    out = args.out_dir
    os.makedirs(os.path.join(out, "eval"), exist_ok=True)
    os.makedirs(os.path.join(out, "calib"), exist_ok=True)
    all_splits = {"train": [], "calib": [], "eval": []}
    domain_stats = {}
    seen = set()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for d in domains:
            log(f"building {d} ...")
            splits, stats = build_domain(d, args.seed, int(BUDGET[d] * args.scale), seen, pool, log)
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
        for d in domains:
            docs = [x for x in all_splits[split] if x["domain"] == d]
            per[d] = {"documents": len(docs),
                      "text_bytes": sum(len(x["text"].encode("utf-8")) for x in docs)}
        summary[split] = {"documents": len(all_splits[split]),
                          "text_bytes": sum(v["text_bytes"] for v in per.values()),
                          "per_domain": per}
    for split in ["eval", "calib"]:
        for d in domains:
            path = os.path.join(out, split, f"{d}.txt")
            docs = [x["text"] for x in all_splits[split] if x["domain"] == d]
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write("\n\n".join(docs) + "\n")
            outputs.append(f"{split}/{d}.txt")

    tokens = None
    if args.count_tokens:
        log("counting tokens ...")
        t1 = time.time()
        by_key = {}
        for split in ["train", "calib", "eval"]:
            for doc in all_splits[split]:
                by_key.setdefault(f"{split}/{doc['domain']}", []).append(doc["text"])
        counts = count_tokens(args.count_tokens, by_key, log)
        tokens = {"tokenizer": os.path.basename(args.count_tokens),
                  "tokenizer_sha256": bc.sha256_file(args.count_tokens),
                  "eos_per_document": False}
        for split in ["train", "calib", "eval"]:
            per = {d: counts.get(f"{split}/{d}", 0) for d in domains}
            tokens[split] = {"total": sum(per.values()), "per_domain": per}
        log(f"  counted in {time.time() - t1:.0f} s")

    owner = path_owner()
    man_pkgs, lic_pkgs = {}, {}
    for doc in all_splits["train"] + all_splits["calib"] + all_splits["eval"]:
        src = doc["source"].split("@")[0]
        if doc["domain"] == "manpages" and src in owner:
            man_pkgs.setdefault(owner[src], None)
        if doc["domain"] == "licenses" and src.startswith("/usr/share/doc/"):
            lic_pkgs.setdefault(src.split("/")[4], None)
    for m in (man_pkgs, lic_pkgs):
        for p in m:
            m[p] = bc.pkg_version(p)
    pkgs = read_packages_file()
    rver = subprocess.run(["Rscript", "--version"], capture_output=True, text=True)
    manifest = {
        "generator": "datasets/build_corpus_v2.py",
        "seed": args.seed,
        "domains": domains,
        "parameters": {"budget_bytes": {d: int(BUDGET[d] * args.scale) for d in domains},
                       "scale": args.scale, "eval_bytes": EVAL_BYTES, "calib_bytes": CALIB_BYTES,
                       "max_file_bytes": MAX_FILE_BYTES, "max_unit_bytes": MAX_UNIT_BYTES,
                       "max_doc_bytes": MAX_DOC_BYTES, "min_doc_bytes": MIN_DOC_BYTES,
                       "dedup_min_chars": bc.DEDUP_MIN, "dedup_scope": "global",
                       "run_bytes": RUN_BYTES},
        "domain_sources": {d: (MANPAGE_PACKAGES + ["man-db", "groff-base"] if d == "manpages"
                               else DOMAIN_PACKAGES[d]) for d in domains},
        "domain_candidates": {d: domain_stats[d]["candidates"] for d in domains},
        "domain_exhausted": {d: domain_stats[d]["exhausted"] for d in domains},
        "splits": summary,
        "tokens": tokens,
        "package_versions": {p: bc.pkg_version(p) for p in pkgs},
        "rscript": (rver.stdout + rver.stderr).strip(),
        "manpage_packages": dict(sorted(man_pkgs.items())),
        "license_copyright_packages": dict(sorted(lic_pkgs.items())),
        "files": {name: {"bytes": os.path.getsize(os.path.join(out, name)),
                         "sha256": bc.sha256_file(os.path.join(out, name))}
                  for name in outputs},
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for split in ["train", "calib", "eval"]:
        s = summary[split]
        t = f", {tokens[split]['total']} tokens" if tokens else ""
        log(f"{split}: {s['documents']} docs, {s['text_bytes']} text bytes{t}")
    log(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
