#!/usr/bin/env python3
"""Module import graph of one crate's src (file granularity), then its strongly connected
components: a cycle is an error (exit 1).

Every way a file can name another module counts as an edge:
- `crate::a::b` paths (in `use` or inline), and `use crate::{a, b::c}` groups;
- `super::x` and `self::x` paths, resolved from the file's own module;
- `use x::...` / `x::item` where `x` is a child module declared in the file (`mod x;`) or a
  sibling module named through `super`.
An edge from a module to its own ancestor counts too (a parent that uses a child and a child
that uses its parent's items form a cycle: the parent's items belong in a file of their own).
A module declaring its children (`mod x;`) is not an edge: declaring is not using.
Test modules (`#[cfg(test)] mod tests { ... }` and files under `tests/`) are left out.

Usage: modgraph.py CRATE_SRC [-v]   (-v prints every edge)"""
import os
import re
import sys

root = sys.argv[1]
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'):
            continue
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)[:-3]
        parts = rel.split('/')
        if 'tests' in parts:
            continue
        if parts[-1] in ('mod', 'lib', 'main'):
            parts = parts[:-1]
        mods['::'.join(parts)] = p


def resolve(segs):
    """The longest prefix of `segs` that is a module of the crate."""
    for k in range(len(segs), 0, -1):
        m = '::'.join(segs[:k])
        if m in mods:
            return m
    return '' if '' in mods else None  # an item of the crate root (lib.rs)


def strip(src):
    # Inline test modules (`#[cfg(test)] mod tests {`, `#[cfg(all(test, feature = "loom"))] mod
    # loom_tests {`) sit at the end of a file: their `super::` is the file's module itself.
    src = re.split(r'#\[cfg\([^\]]*\btest\b[^\]]*\)\]\s*(?:pub\s+)?mod \w+\s*\{', src)[0]
    src = re.sub(r'//[^\n]*', '', src)  # comments (doc links are not imports)
    src = re.sub(r'"(?:\\.|[^"\\])*"', '""', src)  # string literals
    return src


edges = {m: set() for m in mods}
for m, p in mods.items():
    src = strip(open(p).read())
    here = m.split('::') if m else []
    # A file's own module path: for `a/b.rs` and `a/b/mod.rs` it is a::b.
    children = set(re.findall(r'^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_0-9]+)\s*;', src, re.M))

    def add(segs):
        t = resolve(segs)
        if t is not None and t != m:
            edges[m].add(t)

    for mt in re.finditer(r'\bcrate::((?:[a-z_0-9]+::)*[A-Za-z_0-9]+)', src):
        add(mt.group(1).split('::'))
    for mt in re.finditer(r'\buse\s+crate::\{([^}]*)\}', src, re.S):
        for item in mt.group(1).split(','):
            item = item.strip().split('::{')[0]
            if item:
                add(item.split('::'))
    # super:: (possibly repeated) and self::
    for mt in re.finditer(r'\b((?:super::)+|self::)((?:[a-z_0-9]+::)*[A-Za-z_0-9]+)?', src):
        ups = mt.group(1).count('super::')
        base = here[:len(here) - ups] if ups else here
        rest = mt.group(2).split('::') if mt.group(2) else []
        add(base + rest)
    for mt in re.finditer(r'\buse\s+((?:super::)+|self::)\{([^}]*)\}', src, re.S):
        ups = mt.group(1).count('super::')
        base = here[:len(here) - ups] if ups else here
        for item in mt.group(2).split(','):
            item = item.strip().split('::{')[0]
            if item and item != 'self':
                add(base + item.split('::'))
    # Paths starting with a child module's name: `child::x` or `use child::{..}`.
    for c in children:
        if re.search(r'(?<![:\w])' + re.escape(c) + r'::', src):
            add(here + [c])

idx, low, st, on, sccs, c = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def sc(v):
    idx[v] = low[v] = c[0]
    c[0] += 1
    st.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in idx:
            sc(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        sccs.append(comp)


for v in edges:
    if v not in idx:
        sc(v)
if '-v' in sys.argv:
    for m in sorted(edges):
        print(f"{m or '(root)'} -> {', '.join(sorted(e or '(root)' for e in edges[m]))}")
cyc = [s for s in sccs if len(s) > 1]
for s in cyc:
    print("CYCLE:", ' <-> '.join(sorted(x or '(root)' for x in s)))
print(f"{root}: {len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(cyc)} cycles")
sys.exit(1 if cyc else 0)
