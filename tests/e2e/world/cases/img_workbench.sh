#!/usr/bin/env bash
# The image is a workbench: in a fresh cage, with no network, the
# agent builds and tests a C project with make, creates a venv and installs a
# local wheel with pip, unpacks a zip, and finds gh, pipx, cmake, sqlite3 and
# an editor; and the platform check passes on the agent tools and fails on an
# ELF for another architecture.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
mkdir -p "$ws/cproj" "$ws/py"
cat >"$ws/cproj/add.c" <<'C'
int add(int a, int b) { return a + b; }
C
cat >"$ws/cproj/test_add.c" <<'C'
#include <stdio.h>
int add(int, int);
int main(void) {
  if (add(2, 3) != 5) { puts("FAIL"); return 1; }
  puts("c-tests-passed");
  return 0;
}
C
printf 'test: test_add\n\t./test_add\ntest_add: add.o test_add.o\n\t$(CC) -o $@ $^\n' >"$ws/cproj/Makefile"
# A wheel made here (a zip with the dist-info the installer reads), so the
# cage needs no index and no build backend.
python3 - "$ws/py" <<'PY' || die "cannot write the test wheel"
import sys, zipfile
d = sys.argv[1]
files = {
    "hello_e2e/__init__.py": "def greet():\n    return 'wheel-installed'\n",
    "hello_e2e-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: hello-e2e\nVersion: 1.0\n",
    "hello_e2e-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
files["hello_e2e-1.0.dist-info/RECORD"] = "".join("%s,,\n" % n for n in files) + "hello_e2e-1.0.dist-info/RECORD,,\n"
with zipfile.ZipFile(d + "/hello_e2e-1.0-py3-none-any.whl", "w") as z:
    for n, t in files.items():
        z.writestr(n, t)
with zipfile.ZipFile(d + "/archive.zip", "w") as z:
    z.writestr("inner/unzipped.txt", "unzip-works\n")
# An aarch64 ELF header (e_machine 183): what the platform check must refuse.
hdr = bytearray(64)
hdr[0:4] = b"\x7fELF"; hdr[4] = 2; hdr[5] = 1; hdr[6] = 1
hdr[16] = 2; hdr[18] = 183
open(d + "/foreign.elf", "wb").write(bytes(hdr))
PY
chown_workspace "$ws"

E2E_CAGE_TIMEOUT=300
out=$(cage "$ws" '
  cd /workspace/cproj && make -s test 2>&1; echo "make=$?"
  cd /workspace/py
  python3 -m venv /tmp/venv >/dev/null 2>&1; echo "venv=$?"
  /tmp/venv/bin/pip install -q --no-index ./hello_e2e-1.0-py3-none-any.whl >/dev/null 2>&1; echo "pip=$?"
  /tmp/venv/bin/python -c "import hello_e2e; print(hello_e2e.greet())" 2>&1
  unzip -q -d /tmp/unz archive.zip && cat /tmp/unz/inner/unzipped.txt
  gh --version | head -1
  echo "pipx=$(pipx --version 2>&1)"
  for t in cc c++ make cmake pkg-config git zip rsync tree file sqlite3 vi curl jq rg; do
    command -v "$t" >/dev/null || echo "missing=$t"
  done
  python3 /usr/local/libexec/cagent/check-platform.py /opt/agent-tools; echo "platform=$?"
  python3 /usr/local/libexec/cagent/check-platform.py /workspace/py >/dev/null 2>&1; echo "foreign=$?"
  find / -xdev -perm /6000 -type f 2>/dev/null | head -3 | sed "s/^/setuid=/"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "make builds and the C tests pass" "$out" 'c-tests-passed'
expect_match "make exits 0" "$out" 'make=0'
expect_match "python3 -m venv works" "$out" 'venv=0'
expect_match "pip installs a local wheel into the venv" "$out" 'pip=0'
expect_match "the installed package imports" "$out" 'wheel-installed'
expect_match "unzip unpacks" "$out" 'unzip-works'
expect_match "gh runs" "$out" 'gh version [0-9]'
expect_match "pipx runs" "$out" 'pipx=[0-9]'
expect_no_match "every workbench tool is on PATH" "$out" 'missing='
expect_match "only this platform's binaries under /opt/agent-tools" "$out" 'platform=0'
expect_match "the platform check refuses an aarch64 ELF" "$out" 'foreign=1'
expect_no_match "no setuid/setgid binaries" "$out" 'setuid='
((CAGE_RC == 0)) || cage_err
printf '%s\n' "$out" | head -40
finish
