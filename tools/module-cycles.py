#!/usr/bin/env python3
"""Finds module cycles inside each crate of the workspace.

A module is a file under a crate's `src/` (`a/b.rs` and `a/b/mod.rs` are
module `a::b`; `lib.rs`/`main.rs` are the root and left out, as they
only declare modules). Module A depends on module B when A's code (doc
comments left out) names `crate::B` or `super::...` resolving to B, or
`use crate::{B, ...}`; a dependency on `B::c` counts as one on `B` and
its parents within the crate. Exits 1 and prints each cycle found.

Usage: tools/module-cycles.py [CRATE_DIR ...]   (default: crates/*, tools/*, bench, tests)
"""

import glob
import os
import re
import sys


def modules(src):
    out = {}
    for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        rel = os.path.relpath(path, src)[:-3].split(os.sep)
        if rel[0] == "bin" or rel in (["lib"], ["main"]):
            continue
        if rel[-1] == "mod":
            rel = rel[:-1]
        out["::".join(rel)] = path
    return out


def code_of(path):
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.startswith("//"):
                continue
            lines.append(line.split("//")[0] if "\"" not in line else line)
    return "".join(lines)


def referenced(mod, text, known):
    refs = set()
    for m in re.finditer(r"crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
        refs.add(m.group(1))
    for m in re.finditer(r"use crate::\{([^}]*)\}", text):
        for part in m.group(1).split(","):
            name = part.strip().split("::")[0]
            if name:
                refs.add(name)
    parent = mod.split("::")[:-1]
    for m in re.finditer(r"super::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
        # `super` is the parent module: `a::b`'s `super::x` is `a::x`.
        refs.add("::".join(parent + m.group(1).split("::")))
    deps = set()
    for r in refs:
        parts = r.split("::")
        # The longest known module prefix of the path.
        for k in range(len(parts), 0, -1):
            cand = "::".join(parts[:k])
            if cand in known:
                deps.add(cand)
                break
    # A module does not depend on itself, nor on its own parent or children
    # through `super` (the parent declares it).
    return {d for d in deps if d != mod and not mod.startswith(d + "::") and not d.startswith(mod + "::")}


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = sys.argv[1:] or sorted(
        glob.glob(os.path.join(root, "crates", "*"))
        + glob.glob(os.path.join(root, "tools", "*"))
        + [os.path.join(root, "bench"), os.path.join(root, "tests")]
    )
    bad = 0
    for crate in crates:
        src = os.path.join(crate, "src")
        if not os.path.isdir(src):
            continue
        mods = modules(src)
        graph = {m: referenced(m, code_of(p), mods) for m, p in mods.items()}
        for comp in cycles(graph):
            bad += 1
            edges = [f"{a} -> {b}" for a in comp for b in sorted(graph[a]) if b in comp]
            print(f"{os.path.relpath(crate, root)}: cycle among {', '.join(comp)}")
            for e in edges:
                print(f"    {e}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
