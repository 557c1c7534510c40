#!/usr/bin/env python3
"""Module import graph of a crate's src (file granularity): edges from `crate::a::b` paths
(and `super::`), then strongly connected components (cycles)."""
import os, re, sys
root = sys.argv[1]
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f); rel = os.path.relpath(p, root)[:-3]
        parts = rel.split('/')
        if parts[-1] in ('mod', 'lib', 'main'): parts = parts[:-1]
        mods['::'.join(parts)] = p
def resolve(path):
    # longest prefix that is a module
    segs = path.split('::')
    for k in range(len(segs), 0, -1):
        m = '::'.join(segs[:k])
        if m in mods: return m
    return None
edges = {m: set() for m in mods}
for m, p in mods.items():
    src = open(p).read()
    # strip test modules
    src = re.split(r'#\[cfg\(test\)\]\s*mod tests', src)[0]
    for mt in re.finditer(r'crate::([a-z_0-9]+(?:::[a-z_0-9]+)*)', src):
        t = resolve(mt.group(1))
        if t and t != m and not m.startswith(t + '::') : edges[m].add(t)
    # grouped use crate::{a, b::c}
    for mt in re.finditer(r'use crate::\{([^}]*)\}', src, re.S):
        for item in re.split(r',', mt.group(1)):
            item = item.strip().split('::{')[0]
            t = resolve(item.strip())
            if t and t != m and not m.startswith(t + '::'): edges[m].add(t)
    base = m.split('::')[:-1] if not p.endswith(('mod.rs','lib.rs')) else m.split('::')
    for mt in re.finditer(r'\bsuper::([a-z_0-9]+(?:::[a-z_0-9]+)*)', src):
        par = m.split('::')[:-1]
        t = resolve('::'.join(par + mt.group(1).split('::')))
        if t and t != m and not m.startswith(t + '::'): edges[m].add(t)
# Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in edges:
    if v not in idx: sc(v)
if '-v' in sys.argv:
    for m in sorted(edges): print(f"{m or '(root)'} -> {', '.join(sorted(edges[m]))}")
cyc = [s for s in sccs if len(s) > 1]
for s in cyc: print("CYCLE:", ' <-> '.join(sorted(s)))
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(cyc)} cycles")
sys.exit(1 if cyc else 0)
