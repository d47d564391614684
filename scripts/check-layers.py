#!/usr/bin/env python3
"""check-layers.py - the library's folders call only downward.

src/LAYERS lists the folders of src/, lowest first. Every #include "x/..."
in src/<folder>/ must name a folder listed no later than <folder>. With
--objects DIR (the build's object files, CMakeFiles/beehive_objects.dir),
it also checks that no object calls or reads a symbol defined in a higher
folder: a declaration in a lower header cannot hide an upward call.

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

def nm(args):
    out = subprocess.run(["nm"] + args, capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()

def split_nm(line):
    """nm -A's line: the object's path, then what nm says of a symbol."""
    m = re.match(r"^(.*?\.o):\s*(.*)$", line)
    return m.group(1), m.group(2)

def check_symbols(rank, objdir):
    objs = {}
    for dirpath, _, files in os.walk(os.path.join(objdir, "src")):
        for name in files:
            if name.endswith(".o"):
                folder = os.path.relpath(dirpath, os.path.join(objdir, "src"))
                if not os.path.exists(os.path.join(SRC, folder, name[:-2])):
                    continue  # left from a source moved or removed
                objs[os.path.join(dirpath, name)] = folder.split(os.sep)[0]
    owner = {}
    for line in nm(["-A", "--defined-only"] + sorted(objs)):
        path, rest = split_nm(line)
        parts = rest.split()
        if len(parts) == 3 and parts[1] in "TDBR":
            owner[parts[2]] = objs[path]
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
    bad = check_includes(rank)
    if len(sys.argv) == 3 and sys.argv[1] == "--objects":
        bad += check_symbols(rank, sys.argv[2])
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print("check-layers: %d violation(s) of src/LAYERS" % len(bad),
              file=sys.stderr)
        return 1
    print("check-layers: %d folders, every include%s downward"
          % (len(rank), " and call" if len(sys.argv) == 3 else ""))
    return 0

if __name__ == "__main__":
    sys.exit(main())
