#!/usr/bin/env python3
"""The import graph of src/, at the level of modules (folders, and top-level files).

A file imports a module when it names it in a `crate::…` path (or, in main.rs, a
`minima::…` path). Prints every module-to-module import with the files that make it,
the circles (strongly connected groups of modules), and the imports that run from a
lower layer back up to a higher one, where the layers are the order declared in
LAYERS below (docs/ARCHITECTURE.md draws the same order). Exit status 1 when there
is a circle or more than MAX_UPWARD upward imports, so `scripts/imports.py` is a check.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"

# Bottom to top. A module may import any module on its own layer or below.
LAYERS = [
    ["rng", "memory", "slices"],
    ["results"],
    ["kit"],
    ["data", "data/fetch", "models", "models/pool_relu", "models/batch_norm", "models/stem_conv"],
    ["metrics", "train", "train/dense", "train/sgd"],
    ["frame", "plot", "sweep"],
    ["report"],
    ["host", "host/repl"],
    ["lib", "main"],
]
MAX_UPWARD = 3

PATH = re.compile(r"\b(?:crate|minima)::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\b(?:crate|minima)::\{([^;]*?)\};", re.S)


def module_of(path):
    rel = path.relative_to(SRC)
    parts = rel.parts
    if len(parts) == 1:
        return rel.stem
    folders = [p for p in parts[:-1]]
    name = "/".join(folders)
    return name


def modules():
    found = set()
    for f in SRC.rglob("*.rs"):
        found.add(module_of(f))
    return found


def target(path_segments, known):
    # The longest known module named by the path's leading segments.
    for k in range(len(path_segments), 0, -1):
        name = "/".join(path_segments[:k])
        if name in known:
            return name
    return None


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def edges():
    known = modules()
    out = {}
    for f in sorted(SRC.rglob("*.rs")):
        src = module_of(f)
        text = strip_comments(f.read_text())
        paths = [m.group(1).split("::") for m in PATH.finditer(text)]
        for g in GROUP.finditer(text):
            for item in re.split(r",(?![^{]*\})", g.group(1)):
                item = item.strip()
                if item:
                    paths.append(re.split(r"::|\{", item)[0:2])
        for segs in paths:
            segs = [s.strip() for s in segs if s.strip()]
            dst = target(segs, known)
            if dst and dst != src and not dst.startswith(src + "/") and not src.startswith(dst + "/"):
                out.setdefault((src, dst), set()).add(str(f.relative_to(SRC)))
            elif dst and dst != src and (dst.startswith(src + "/") or src.startswith(dst + "/")):
                # A folder and its subfolder are separate modules too.
                out.setdefault((src, dst), set()).add(str(f.relative_to(SRC)))
    return known, out


def circles(known, es):
    graph = {m: set() for m in known}
    for a, b in es:
        graph[a].add(b)
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(known):
        if v not in index:
            visit(v)
    return comps


def file_edges():
    """Imports between the files of one folder: `super::x`, `self::x` (in mod.rs) and
    `crate::folder::x` paths to a sibling file, and names a folder's mod.rs re-exports
    (`pub use x::Name`) resolved to the file that defines them. mod.rs's own `mod` and
    `pub use` lines declare, they do not import."""
    out = {}
    for d in sorted({f.parent for f in SRC.rglob("*.rs")}):
        files = {f.stem: f for f in d.glob("*.rs")}
        folder = "/".join(d.relative_to(SRC).parts)
        exports = {}
        if "mod" in files:
            for m in re.finditer(r"pub use (?:self::)?([a-z_0-9]+)::\{?([A-Za-z_0-9, ]+)\}?;", files["mod"].read_text()):
                for name in m.group(2).split(","):
                    exports[name.strip()] = m.group(1)
        prefixes = ["super::"] + ([f"crate::{folder.replace('/', '::')}::"] if folder else [])
        for stem, f in files.items():
            text = strip_comments(f.read_text())
            if stem == "mod":
                text = re.sub(r"^\s*(pub(\([a-z]+\))? )?(mod|use) [^;]*;", "", text, flags=re.M)
                prefix_list = ["self::"] + prefixes[1:]
            else:
                prefix_list = prefixes
            for prefix in prefix_list:
                for m in re.finditer(re.escape(prefix) + r"(\{[^}]*\}|[A-Za-z_0-9]+)", text):
                    names = re.findall(r"[A-Za-z_0-9]+", m.group(1).split("::")[0]) if m.group(1).startswith("{") else [m.group(1)]
                    if m.group(1).startswith("{"):
                        names = [n.strip().split("::")[0] for n in m.group(1)[1:-1].split(",") if n.strip()]
                    for name in names:
                        target_file = name if name in files else exports.get(name)
                        if target_file and target_file != stem and target_file in files:
                            if prefix == "super::" and stem == "mod":
                                continue
                            out.setdefault((f"{folder}/{stem}", f"{folder}/{target_file}"), set()).add(stem)
    return out


def main():
    known, es = edges()
    layer = {}
    for i, names in enumerate(LAYERS):
        for n in names:
            layer[n] = i
    unplaced = sorted(m for m in known if m not in layer)
    print(f"{len(known)} modules, {len(es)} module imports")
    upward = []
    for (a, b), files in sorted(es.items()):
        mark = ""
        if a in layer and b in layer and layer[b] > layer[a]:
            mark = "  UPWARD"
            upward.append((a, b, files))
        print(f"  {a} -> {b}: {', '.join(sorted(files))}{mark}")
    comps = circles(known, es)
    print(f"circles: {len(comps)}")
    for c in comps:
        print("  " + " <-> ".join(c))
    fes = file_edges()
    fcomps = circles({f for e in fes for f in e}, fes)
    print(f"circles between files of one folder: {len(fcomps)}")
    for c in fcomps:
        print("  " + " <-> ".join(c))
    comps = comps + fcomps
    print(f"upward imports: {len(upward)} (at most {MAX_UPWARD})")
    if unplaced:
        print(f"modules on no layer (add them to LAYERS): {', '.join(unplaced)}")
    bad = comps or len(upward) > MAX_UPWARD or unplaced
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
