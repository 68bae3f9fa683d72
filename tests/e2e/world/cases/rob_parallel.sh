#!/usr/bin/env bash
# Ten cages started at once all work (each resolves and fetches an allowed
# name, and its agent writes to its own workspace) and all clean up: no
# container and no session directory is left once they have exited.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

n=10
pids=() wss=()
for i in $(seq 1 $n); do
  ws=$(new_workspace allowed.test)
  wss+=("$ws")
  # Each cage waits, once done, until the host has counted the sessions.
  run_cagent "$ws" -- sh -c "curl -sS -m 20 http://allowed.test/ && echo cage-$i >/workspace/mark; $(cage_wait_file go)" \
    </dev/null >"$E2E_TMP/out$i" 2>"$E2E_TMP/err$i" &
  pids+=($!)
done
all_marked() { local w; for w in "${wss[@]}"; do [[ -e $w/mark ]] || return 1; done; }
wait_for "every cage to write its mark" 180 all_marked
# The control of "no session directory is left" below: while they run,
# every cage has one.
sessions=$(ls -A "$E2E_HOME/.cagent/sessions" 2>/dev/null | wc -l)
if ((sessions >= n)); then ok "control: while they run, the $n cages have session directories ($sessions)"
else not_ok "control: while they run, the $n cages have session directories" "found $sessions"; fi
for ws in "${wss[@]}"; do touch "$ws/go"; done
for i in $(seq 1 $n); do
  rc=0; wait "${pids[$((i - 1))]}" || rc=$?
  if ((rc == 0)) && grep -q 'cagent-e2e web10' "$E2E_TMP/out$i" && [[ $(cat "${wss[$((i - 1))]}/mark" 2>/dev/null) == "cage-$i" ]]; then
    ok "cage $i of $n: exit 0, fetched allowed.test, wrote its workspace"
  else
    not_ok "cage $i of $n" "exit $rc" "stdout: $(head -c 500 "$E2E_TMP/out$i")" "stderr: $(tail -n 5 "$E2E_TMP/err$i")"
  fi
done
# docker run --rm removes the container when it stops; the daemon may finish
# that a moment after the client returned, so poll (bounded).
wait_for "the cages' containers to be removed" 30 test -z "$(session_containers)"
expect_eq "no cage container is left" "$(session_containers)" ""
expect_eq "no session directory is left" "$(ls -A "$E2E_HOME/.cagent/sessions" 2>/dev/null)" ""
finish
