#!/usr/bin/env bash
# ctest wrapper: bench/compare.sh --quick into a scratch directory, then
# checks the report it wrote. Exit 77 (skipped) when it cannot run here.
set -euo pipefail
src=$1 build=$2
skip() { echo "skipped: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root for network namespaces and nftables"
ip netns add "cbprobe$$" 2>/dev/null || skip "cannot create network namespaces"
ip netns del "cbprobe$$"
[[ -x $build/bin/cagent-bench ]] || { echo "cagent-bench not built in $build"; exit 1; }
[[ -x $build/bin/dnsguard ]] || { echo "dnsguard not built in $build"; exit 1; }
command -v dnsmasq >/dev/null || skip "dnsmasq not installed (setup.sh --test-tools)"

out=$(mktemp -d /tmp/cagent-bench-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$src/bench/compare.sh" --quick --build "$build" --out "$out"

# Every scenario ran and was answered; nothing got lost on an idle path.
python3 - "$out/RESULTS.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
assert "not run" not in text, "a scenario did not run:\n" + text
for title in ("direct to upstream", "dnsguard, miss", "dnsguard, hit", "dnsmasq --nftset, miss", "dnsmasq --nftset, hit"):
    row = next(l for l in text.splitlines() if l.startswith("| " + title))
    answered = int(row.split("|")[2])
    assert answered > 0, row
print("report complete")
PY
[[ -s $out/latency.png ]] || { echo "no latency plot"; exit 1; }
echo "compare.sh --quick: ok"
