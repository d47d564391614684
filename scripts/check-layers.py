#!/usr/bin/env python3
"""check-layers.py - the library's folders call only downward.

src/LAYERS lists the folders of src/, lowest first. Every #include "x/..."
in src/<folder>/ must name a folder listed no later than <folder>. With
--objects DIR (the build's object files, CMakeFiles/beehive_objects.dir),
it also checks that no object calls or reads a symbol defined in a higher
folder: a declaration in a lower header cannot hide an upward call.

Within the folders of ACYCLIC, the modules (x.c with x.h; x_y.c and x_y.h
belong to x when x.h exists) must not include each other in a circle
either, nor (with --objects) call each other in one. With
--graph FOLDER [--objects DIR] it prints that folder's module graph instead
(one line per module: the modules it includes, then those it calls) and
its circles, if any.

Exit status 0 when the order holds, 1 with every violation listed."""
import os, re, subprocess, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")

def layers():
    with open(os.path.join(SRC, "LAYERS")) as f:
        names = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    return {n: i for i, n in enumerate(names)}

def check_includes(rank):
    bad = []
    for folder in sorted(os.listdir(SRC)):
        path = os.path.join(SRC, folder)
        if not os.path.isdir(path):
            continue
        if folder not in rank:
            bad.append("src/%s/: a folder missing from src/LAYERS" % folder)
            continue
        for name in sorted(os.listdir(path)):
            f = os.path.join(path, name)
            for no, line in enumerate(open(f, encoding="utf-8"), 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m or m.group(1) == "beehive.h":
                    continue
                inc = m.group(1)
                top = inc.split("/")[0] if "/" in inc else None
                if top not in rank:
                    bad.append("src/%s/%s:%d: includes \"%s\": name headers "
                               "by their folder" % (folder, name, no, inc))
                elif rank[top] > rank[folder]:
                    bad.append("src/%s/%s:%d: includes %s, a higher layer "
                               "than %s/" % (folder, name, no, inc, folder))
    return bad

def includes(path):
    """The quoted includes of a file, as written."""
    out = []
    for line in open(path, encoding="utf-8"):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if m:
            out.append(m.group(1))
    return out

def module_of(name, headers):
    """The module of file `name` (x.c, x.h, x_y.c...) among the folder's
    headers: the longest x with x.h present that is name's stem or a
    prefix of it followed by '_'."""
    stem = os.path.splitext(name)[0]
    best = stem
    for h in headers:
        if stem.startswith(h + "_") and (best == stem or len(h) > len(best)):
            best = h
    return best

def module_graph(folder):
    """{module: set of modules it includes} within src/<folder>/."""
    path = os.path.join(SRC, folder)
    names = sorted(n for n in os.listdir(path) if n.endswith((".c", ".h")))
    headers = {os.path.splitext(n)[0] for n in names if n.endswith(".h")}
    graph = {}
    for name in names:
        mod = module_of(name, headers)
        edges = graph.setdefault(mod, set())
        for inc in includes(os.path.join(path, name)):
            top, _, rest = inc.partition("/")
            if top != folder or not rest:
                continue
            dep = module_of(rest, headers)
            if dep != mod:
                edges.add(dep)
    return graph

def circles(graph):
    """The strongly connected parts of graph with more than one module
    (Tarjan's algorithm), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out

def call_graph(folder, objdir):
    """{module: set of modules whose symbols it uses} within src/<folder>/,
    from the build's objects: what a header cannot hide."""
    path = os.path.join(objdir, "src", folder)
    src = os.path.join(SRC, folder)
    if not os.path.isdir(path):
        return {}
    headers = {os.path.splitext(n)[0] for n in os.listdir(src)
               if n.endswith(".h")}
    objs = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".o") and os.path.exists(os.path.join(src,
                                                               name[:-2])):
            objs[os.path.join(path, name)] = module_of(name[:-2], headers)
    if not objs:
        return {}
    owner = owners(objs)
    graph = {m: set() for m in objs.values()}
    for line in nm(["-A", "-u"] + sorted(objs)):
        obj, rest = split_nm(line)
        dep = owner.get(rest.split()[-1])
        if dep is not None and dep != objs[obj]:
            graph[objs[obj]].add(dep)
    return graph

# The folders whose modules must not form a circle. runtime/ (fiber, turn)
# and value/ (blob, fmt, value) still have one each.
ACYCLIC = ("hive",)

def check_circles(objdir):
    bad = []
    for folder in ACYCLIC:
        for part in circles(module_graph(folder)):
            bad.append("src/%s/: modules include each other in a circle: %s"
                       % (folder, ", ".join(part)))
        if objdir is None:
            continue
        for part in circles(call_graph(folder, objdir)):
            bad.append("src/%s/: modules call each other in a circle: %s"
                       % (folder, ", ".join(part)))
    return bad

def print_graph(folder, objdir):
    graph = module_graph(folder)
    calls = call_graph(folder, objdir) if objdir else {}
    parts = circles(graph) + circles(calls)
    for mod in sorted(set(graph) | set(calls)):
        line = "%s/%s -> %s" % (folder, mod,
                                ", ".join(sorted(graph.get(mod, ()))) or "-")
        if objdir:
            line += "  | calls %s" % (", ".join(sorted(calls.get(mod, ())))
                                      or "-")
        print(line)
    for part in parts:
        print("circle: %s" % ", ".join(part))
    if not parts:
        print("no circle among the %d modules of %s/" % (len(graph), folder))
    return 1 if parts else 0

def nm(args):
    out = subprocess.run(["nm"] + args, capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()

def split_nm(line):
    """nm -A's line: the object's path, then what nm says of a symbol."""
    m = re.match(r"^(.*?\.o):\s*(.*)$", line)
    return m.group(1), m.group(2)

def owners(objs):
    """{symbol: objs[object]} for every symbol the objects define."""
    owner = {}
    for line in nm(["-A", "--defined-only"] + sorted(objs)):
        path, rest = split_nm(line)
        parts = rest.split()
        if len(parts) == 3 and parts[1] in "TDBR":
            owner[parts[2]] = objs[path]
    return owner

def check_symbols(rank, objdir):
    objs = {}
    for dirpath, _, files in os.walk(os.path.join(objdir, "src")):
        for name in files:
            if name.endswith(".o"):
                folder = os.path.relpath(dirpath, os.path.join(objdir, "src"))
                if not os.path.exists(os.path.join(SRC, folder, name[:-2])):
                    continue  # left from a source moved or removed
                objs[os.path.join(dirpath, name)] = folder.split(os.sep)[0]
    owner = owners(objs)
    bad = []
    for line in nm(["-A", "-u"] + sorted(objs)):
        path, rest = split_nm(line)
        folder, sym = objs[path], rest.split()[-1]
        top = owner.get(sym)
        if top is not None and top in rank and folder in rank \
                and rank[top] > rank[folder]:
            bad.append("src/%s/%s: uses %s, defined in %s/, a higher "
                       "layer" % (folder, os.path.basename(path)[:-2], sym,
                                  top))
    return bad

def main():
    rank = layers()
    args = sys.argv[1:]
    objdir = None
    if "--objects" in args:
        i = args.index("--objects")
        objdir = args[i + 1]
        del args[i:i + 2]
    if len(args) == 2 and args[0] == "--graph":
        return print_graph(args[1].strip("/").split("/")[-1], objdir)
    bad = check_includes(rank) + check_circles(objdir)
    if objdir is not None:
        bad += check_symbols(rank, objdir)
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print("check-layers: %d violation(s) of src/LAYERS" % len(bad),
              file=sys.stderr)
        return 1
    print("check-layers: %d folders, every include%s downward, no circle "
          "within %s" % (len(rank), " and call" if objdir else "",
                         ", ".join(f + "/" for f in ACYCLIC)))
    return 0

if __name__ == "__main__":
    sys.exit(main())
