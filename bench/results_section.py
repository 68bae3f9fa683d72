#!/usr/bin/env python3
"""Replaces one script's section of bench/RESULTS.md.

    results_section.py RESULTS.md NAME TEXT      (or replace_section() from Python)

The section is what lies between `<!-- NAME: begin -->` and
`<!-- NAME: end -->`; without those markers it is appended at the end. The
rest of the file is left as it is, so each bench script owns its section.
"""
import os
import sys


def replace_section(path, name, section):
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    text = open(path).read() if os.path.exists(path) else ""
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    replace_section(*sys.argv[1:4])
