#!/usr/bin/env python3
"""Finds ELF files under a tree that cannot run on this image's platform.

    check-platform.py [--prune] ROOT...

An ELF is foreign when its machine (e_machine) or class differs from the
reference binary's (/bin/sh by default, or --reference FILE), or when it asks
for a program interpreter that does not exist here (a musl build's
/lib/ld-musl-x86_64.so.1 on a glibc image). Statically linked executables and
shared objects of the right machine pass: they run (or load) here.

npm packages ship every platform's binaries as optional dependencies and
install more than one on Linux (Claude Code installs its glibc *and* its musl
build, ~390 MB each). With --prune, the innermost npm package
(node_modules/[@scope/]name) holding a foreign ELF is removed, then the tree
is checked again. Exit status: 0 clean, 1 foreign ELFs remain (listed on
stderr), 2 usage or read error.
"""
import os
import shutil
import struct
import sys

PT_INTERP = 3


def elf_info(path):
    """(class, machine, interpreter or None) for an ELF file, None otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 52 or head[:4] != b"\x7fELF":
                return None
            ei_class, ei_data = head[4], head[5]
            if ei_data not in (1, 2) or ei_class not in (1, 2):
                return None
            end = "<" if ei_data == 1 else ">"
            machine = struct.unpack_from(end + "H", head, 18)[0]
            if ei_class == 2:
                phoff, = struct.unpack_from(end + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            else:
                phoff, = struct.unpack_from(end + "I", head, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
            interp = None
            for i in range(min(phnum, 256)):
                f.seek(phoff + i * phentsize)
                ph = f.read(phentsize)
                if len(ph) < 16:
                    break
                if struct.unpack_from(end + "I", ph, 0)[0] != PT_INTERP:
                    continue
                if ei_class == 2:
                    off, = struct.unpack_from(end + "Q", ph, 8)
                    size, = struct.unpack_from(end + "Q", ph, 32)
                else:
                    off, = struct.unpack_from(end + "I", ph, 4)
                    size, = struct.unpack_from(end + "I", ph, 16)
                f.seek(off)
                interp = f.read(min(size, 4096)).split(b"\0", 1)[0].decode("utf-8", "replace")
                break
            return ei_class, machine, interp
    except OSError:
        return None


def foreign_reason(info, ref):
    ei_class, machine, interp = info
    if (ei_class, machine) != (ref[0], ref[1]):
        return "machine %d/class %d, this image is %d/%d" % (machine, ei_class, ref[1], ref[0])
    if interp is not None and not os.path.exists(interp):
        return "interpreter %s is not in this image (another libc)" % interp
    return None


def scan(roots, ref):
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                info = elf_info(path)
                if info is None:
                    continue
                reason = foreign_reason(info, ref)
                if reason:
                    found.append((path, reason))
    return found


def npm_package_of(path):
    """The innermost node_modules/name or node_modules/@scope/name above path."""
    parts = path.split(os.sep)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] != "node_modules":
            continue
        last = i + 2 if parts[i + 1].startswith("@") else i + 1
        if last < len(parts) - 1:  # a directory strictly above the file
            return os.sep.join(parts[: last + 1])
    return None


def main(argv):
    prune = False
    reference = "/bin/sh"
    roots = []
    args = iter(argv)
    for a in args:
        if a == "--prune":
            prune = True
        elif a == "--reference":
            reference = next(args, None)
        else:
            roots.append(a)
    if not roots or reference is None:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    ref = elf_info(os.path.realpath(reference))
    if ref is None:
        print("check-platform: reference %s is not an ELF" % reference, file=sys.stderr)
        return 2
    found = scan(roots, ref)
    if prune and found:
        for pkg in sorted({npm_package_of(p) for p, _ in found} - {None}):
            print("check-platform: removing %s (built for another platform)" % pkg)
            shutil.rmtree(pkg)
        found = scan(roots, ref)
    for path, reason in found:
        print("check-platform: %s: %s" % (path, reason), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
