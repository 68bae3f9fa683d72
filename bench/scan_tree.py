#!/usr/bin/env python3
"""A synthetic JavaScript project for bench/scan.sh: a node_modules-like tree.

    scan_tree.py DIR FILES [--seed N]

Makes DIR with about FILES regular files (never fewer) and prints one JSON
line: files, directories, symlinks, and the planted secrets (paths relative
to DIR) that cagent's default ignore patterns must hide.

The shape, as npm leaves it: a project root (package.json, src/, a .git
directory) and node_modules/ with packages, one in seven of them scoped
(@scopeN/pkg-N); each has package.json, README.md, LICENSE, index.js,
index.d.ts and lib/partK/ subtrees one to four directories deep with 2-25
files each; one package in fifty has its own node_modules/; node_modules/.bin
holds a symlink to every third package's index.js. The secrets sit deep
inside: a .env at the root, five more .env and three *.key files in the
deepest directories of packages spread over the tree.
"""
import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("files", type=int)
    ap.add_argument("--seed", type=int, default=24)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    root = a.dir
    counts = {"files": 0, "directories": 0, "symlinks": 0}

    def mkdir(path):
        os.makedirs(path, exist_ok=True)

    def put(path, content=b""):
        with open(path, "wb") as f:
            f.write(content)
        counts["files"] += 1

    mkdir(root)
    for name in ("package.json", "package-lock.json", "README.md", ".gitignore"):
        put(os.path.join(root, name), b"{}\n")
    mkdir(os.path.join(root, "src"))
    for i in range(20):
        put(os.path.join(root, "src", f"module{i}.js"), b"export {};\n")
    git = os.path.join(root, ".git")
    for d in ("objects/pack", "refs/heads", "hooks"):
        mkdir(os.path.join(git, d))
    put(os.path.join(git, "HEAD"), b"ref: refs/heads/main\n")
    put(os.path.join(git, "config"), b"[core]\n\tbare = false\n")
    nm = os.path.join(root, "node_modules")
    mkdir(os.path.join(nm, ".bin"))
    deepest = []  # per package: its deepest directory
    n = 0
    while counts["files"] < a.files:
        name = f"@scope{n % 13}/pkg-{n}" if n % 7 == 0 else f"pkg-{n}"
        pkg = os.path.join(nm, name)
        mkdir(pkg)
        for f in ("package.json", "README.md", "LICENSE", "index.js", "index.d.ts"):
            put(os.path.join(pkg, f), b"module.exports = {};\n")
        if n % 3 == 0:
            os.symlink(f"../{name}/index.js", os.path.join(nm, ".bin", f"cmd-{n}"))
            counts["symlinks"] += 1
        deep = pkg
        for part in range(rng.randint(1, 6)):
            d = os.path.join(pkg, "lib", f"part{part}", *[f"level{k}" for k in range(rng.randint(0, 3))])
            mkdir(d)
            for i in range(rng.randint(2, 25)):
                put(os.path.join(d, f"file{i}.js"), b"module.exports = 1;\n")
            if d.count("/") > deep.count("/"):
                deep = d
        if n % 50 == 7:
            inner = os.path.join(pkg, "node_modules", f"dep-{n}", "dist")
            mkdir(inner)
            for i in range(10):
                put(os.path.join(inner, f"chunk{i}.js"), b"module.exports = 2;\n")
        deepest.append(deep)
        n += 1
    planted = [".env"]
    put(os.path.join(root, ".env"), b"SECRET=1\n")
    for k in range(1, 6):
        d = deepest[len(deepest) * k // 6]
        put(os.path.join(d, ".env"), b"SECRET=1\n")
        planted.append(os.path.relpath(os.path.join(d, ".env"), root))
    for k in range(1, 4):
        d = deepest[len(deepest) * k // 4 - 1]
        put(os.path.join(d, "server.key"), b"KEY\n")
        planted.append(os.path.relpath(os.path.join(d, "server.key"), root))
    for _, dirs, _ in os.walk(root):
        counts["directories"] += len(dirs)
    counts["planted"] = sorted(set(planted))
    counts["packages"] = n
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
