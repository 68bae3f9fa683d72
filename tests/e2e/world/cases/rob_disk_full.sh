#!/usr/bin/env bash
# The log directory runs out of space during a session (fault injection:
# the host's ~/.cagent/logs on a 2 MiB tmpfs of its own, filled from the
# host while the cage runs).
#
# 0. Control, same setup with space throughout: the exit summary counts
#    every denied lookup and says nothing about an incomplete record.
# 1. Full, then space again before the session ends: allowed names still
#    resolve and connect (a new lookup, put in the firewall's set while the
#    disk is full), denied ones stay denied, dnsguard says the failure once,
#    and the exit summary has the exact count of the control and one line:
#    the decision record is incomplete, naming the directory, since when,
#    and why (No space left on device).
# 2. Full until the session ends: the same for the cage, and the exit
#    summary says the record is incomplete — dnsguard could not write it as
#    it stopped, the directory is full — instead of a short count alone.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

logs=$E2E_HOME/.cagent/logs
mkdir -p "$logs"
mount -t tmpfs -o size=2m,mode=0755 tmpfs "$logs" || skip "cannot mount a tmpfs on $logs"
E2E_EXIT_HOOKS+=("umount -l '$logs'")

# Fills the tmpfs until it takes not one byte more.
fill_logs() {
  dd if=/dev/zero of="$logs/filler" bs=64k 2>/dev/null
  dd if=/dev/zero of="$logs/filler" bs=1 oflag=append conv=notrunc 2>/dev/null
  [[ $(stat -f -c %a "$logs") == 0 ]]
}

# What the agent does in every session: an allowed name resolved before
# the fault, then (once the host says "full") a new allowed name fetched
# and 20 denied lookups, one A query each.
script() {
  printf '%s\n' "
  cd /workspace
  getent hosts allowed.test >/dev/null; echo before=\$? >out
  python3 -c 'import socket; socket.getaddrinfo(\"before.flood.test\", 80, socket.AF_INET)' 2>/dev/null
  touch ready; $(cage_wait_file full)
  curl -sS -m 10 http://extra.test/ >>out 2>&1; echo curl=\$? >>out
  for i in \$(seq 1 20); do
    python3 -c 'import socket,sys; socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET)' d\$i.flood.test 2>/dev/null
    echo denied\$i=\$? >>out
  done
  touch done1; $(cage_wait_file go)"
}

# session NAME FAULT — one cage; FAULT: none, returns, stays. Sets OUT
# (what the agent saw) and ERR (cagent's stderr: the exit summary).
session() {
  local name=$1 fault=$2 ws
  ws=$(new_workspace allowed.test extra.test)
  cage_bg "$ws" "$(script)"
  if ! wait_for "$name: the cage to be ready" 120 test -e "$ws/ready"; then
    not_ok "$name: the cage started" "$(cat "$E2E_TMP/bg.err")"
    touch "$ws/full" "$ws/go"; wait_cage_bg 60; OUT=; ERR=; return
  fi
  if [[ $fault != none ]]; then
    expect_true "$name: the log directory is full (0 bytes free)" fill_logs
  fi
  touch "$ws/full"
  wait_for "$name: the lookups" 120 test -e "$ws/done1" || not_ok "$name: the lookups finished"
  if [[ $fault != none ]]; then
    # dnsguard's once-a-second rewrite of the record has met the full disk.
    wait_for "$name: dnsguard saying the record failed" 10 grep -q 'dnsguard: decision record:' "$E2E_TMP/bg.err"
  fi
  [[ $fault == returns ]] && rm -f "$logs/filler"
  touch "$ws/go"
  wait_cage_bg 120
  OUT=$(cat "$ws/out")
  ERR=$(cat "$E2E_TMP/bg.err")
  rm -f "$logs/filler"
  expect_eq "$name: cagent exits 0" "$CAGE_RC" 0
  expect_match "$name: the allowed name resolved before" "$OUT" 'before=0'
  expect_match "$name: a new allowed name resolves and connects" "$OUT" 'cagent-e2e web12'
  expect_match "$name: …curl exit 0" "$OUT" 'curl=0'
  expect_eq "$name: all 20 denied lookups failed" "$(grep -c '^denied[0-9]*=1$' <<<"$OUT")" 20
}

blocked_count() { sed -n 's/^cagent: blocked \([0-9]*\) lookups\?:.*/\1/p' <<<"$1"; }

# ---- 0. control ----
session control none
control_n=$(blocked_count "$ERR")
expect_true "control: the summary counts the denied lookups ($control_n)" test "${control_n:-0}" -ge 21
expect_no_match "control: no line about an incomplete record" "$ERR" 'incomplete|no decision record'
expect_no_match "control: dnsguard said nothing about writing" "$ERR" 'dnsguard: (decision record|cannot write)'

# ---- 1. full, then space again ----
session returns returns
expect_eq "returns: the summary's count is the control's, exact" "$(blocked_count "$ERR")" "$control_n"
expect_match "returns: one line says the record is incomplete, naming the directory, since when and why" "$ERR" \
  "cagent: the decision record is incomplete: writing to the log directory $logs/session-[0-9a-f-]+ failed from [0-9T:-]+Z on \\([^)]*No space left on device\\)"
expect_match "returns: …and that its counts are exact" "$ERR" 'its counts are exact'
expect_eq "returns: dnsguard said the record's failure once" "$(grep -c 'dnsguard: decision record:' <<<"$ERR")" 1

# ---- 2. full until the end ----
session stays stays
expect_match "stays: one line says the record is incomplete, that dnsguard could not write it as it stopped, and the full directory" \
  "$ERR" "cagent: the decision record is incomplete: .*dnsguard last wrote it at [0-9T:-]+Z and not as it stopped, and the log directory $logs/session-[0-9a-f-]+ is full \\(0 bytes free\\); its counts stop there"
stays_n=$(blocked_count "$ERR")
expect_true "stays: the count it qualifies is the short one on disk (${stays_n:-0} < $control_n)" \
  test "${stays_n:-0}" -lt "$control_n"
finish
