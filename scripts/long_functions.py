#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Lists C++ functions longer than N lines (issue #21: functions short enough to read at once).

A function is a brace block at namespace or class scope whose header (the text since the previous
';', '{' or '}') ends in a parameter list: free functions, member functions, constructors,
operators. Lambdas and local classes count as part of the function around them; initializers at
namespace scope (tables, `= [] {...}`) are not functions. Comments, strings, character and raw
string literals and preprocessor lines are blanked first, so braces inside them do not count.
Length is from the header's first line to the closing brace, both included.

Usage: long_functions.py [--min N] [--fail] [PATH...]   (default: --min 80 engine app)
Prints "LINES  FILE:LINE  NAME" for each, longest first; with --fail exits 1 when any is listed."""
import argparse
import os
import re
import sys

SOURCE = (".cpp", ".h", ".hpp", ".cc", ".cxx")
NOT_FUNCTIONS = re.compile(r"^\s*(?:template\s*<.*>\s*)?(?:namespace|class|struct|union|enum)\b")
CONTROL = re.compile(r"\b(?:if|for|while|switch|catch|do|else|try)\s*$")


def blank(text):
    """text with comments, literals and preprocessor lines replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#":  # a preprocessor line, with its continuations
            j = i
            while j < n and (text[j] != "\n" or text[j - 1] == "\\"):
                j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == "\n":
            line_start = True
            out.append(c)
            i += 1
            continue
        if not c.isspace():
            line_start = False
        two = text[i:i + 2]
        if two == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif two == "/*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        else:
            m = re.match(r'(?:u8|u|U|L)?R"([^()\\ ]{0,16})\(', text[i:i + 24])
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                end = text.find(")" + m.group(1) + '"', i + m.end())
                j = n if end < 0 else end + len(m.group(1)) + 2
            elif c in "\"'" and not (c == "'" and i > 0 and text[i - 1].isalnum()):  # 1'000 is a digit separator
                j = i + 1
                while j < n and text[j] != c and text[j] != "\n":
                    j += 2 if text[j] == "\\" else 1
                j = min(j + 1, n)
            else:
                out.append(c)
                i += 1
                continue
        out.append(re.sub(r"[^\n]", " ", text[i:j]))
        i = j
    return "".join(out)


def function_name(header):
    """The qualified name before the parameter list of a function header."""
    h = " ".join(header.split())
    m = re.search(r"([\w:~]*operator\s*(?:\(\s*\)|[^\s(]+))\s*\(", h)
    if m:
        return m.group(1)
    angle = 0
    for k, c in enumerate(h):  # the first '(' outside template arguments
        if c == "<":
            angle += 1
        elif c == ">" and h[k - 1] != "-":
            angle = max(0, angle - 1)
        elif c == "(" and angle == 0:
            m = re.search(r"([~\w:]+(?:<[^()]*>)?)\s*$", h[:k])
            return m.group(1) if m else "?"
    return "?"


def is_function_header(header):
    h = " ".join(header.split())
    if not h or "(" not in h or NOT_FUNCTIONS.match(h) or CONTROL.search(h):
        return False
    head = h[: h.find("(")]
    if "=" in head and "operator" not in head:  # an initializer: `auto x = f(` or `T t = {`
        return False
    # after the last ')' only qualifiers, a trailing return type or a constructor's init list
    tail = h[h.rfind(")") + 1:]
    return re.fullmatch(r"\s*(?:(?:const|noexcept|override|final|volatile|&|&&|mutable)\s*)*"
                        r"(?:->.*)?(?::.*)?\s*", tail) is not None or ") :" in h or "):" in h


def scan(path):
    """Yields (first line, last line, name) for every function in the file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = blank(f.read())
    scopes = []        # per open brace: "scope" (namespace/class/extern) or "body" (function, nested)
    header_start = 0   # offset just after the previous ';', '{' or '}'
    func_open = None   # (start offset, name) of the function whose body is open
    i = 0
    while i < len(text):
        c = text[i]
        in_body = any(s == "body" for s in scopes)
        if c == "{":
            header = text[header_start:i]
            if in_body:
                scopes.append("inner")
            elif re.search(r"\)\s*:", header) and re.search(r"[\w>]\s*$", header) and is_function_header(
                    header.split(":")[0] + ")"):
                # a brace initializer in a constructor's init list: part of the header
                depth, j = 0, i
                while j < len(text):
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    if depth == 0:
                        break
                    j += 1
                i = j + 1
                continue
            elif is_function_header(header):
                scopes.append("body")
                stripped = len(header) - len(header.lstrip())
                func_open = (header_start + stripped, function_name(header))
            elif NOT_FUNCTIONS.match(" ".join(header.split())) or re.search(r'extern\s*$', header):
                scopes.append("scope")
            else:
                scopes.append("data")  # an initializer, an enum's list
            header_start = i + 1
        elif c == "}":
            kind = scopes.pop() if scopes else "scope"
            if kind == "body" and func_open:
                first = text.count("\n", 0, func_open[0]) + 1
                last = text.count("\n", 0, i) + 1
                yield first, last, func_open[1]
                func_open = None
            header_start = i + 1
        elif c == ";" and not in_body and (not scopes or scopes[-1] != "data"):
            header_start = i + 1
        i += 1


def sources(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for d, _, files in os.walk(p):
            for name in sorted(files):
                if name.endswith(SOURCE):
                    yield os.path.join(d, name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min", type=int, default=80, help="list functions longer than this many lines (80)")
    ap.add_argument("--fail", action="store_true", help="exit 1 when a function is listed")
    ap.add_argument("paths", nargs="*", default=["engine", "app"])
    args = ap.parse_args()
    found = []
    for path in sources(args.paths):
        for first, last, name in scan(path):
            if last - first + 1 > args.min:
                found.append((last - first + 1, f"{path}:{first}", name))
    for n, where, name in sorted(found, key=lambda x: (-x[0], x[1])):
        print(f"{n:5d}  {where}  {name}")
    print(f"long_functions: {len(found)} function(s) over {args.min} lines")
    return 1 if args.fail and found else 0


if __name__ == "__main__":
    sys.exit(main())
