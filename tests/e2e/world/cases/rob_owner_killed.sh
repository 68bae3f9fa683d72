#!/usr/bin/env bash
# A cage never outlives the cagent that started it. cagent killed with
# SIGKILL (as when its terminal or SSH session dies hard, or the OOM killer
# picks it) leaves no handler to run: its `docker run` child goes on as an
# orphan. The cage sees its owner's listening socket close and ends: the
# container is gone within 10 s, and the next `cagent ps` removes the
# session record left behind. As root and as the ordinary docker-group user.
# Controls in the same runs: while cagent lives, the same cage keeps running
# past the wait, and `cagent ps` leaves its live record alone.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# The pid of the cagent process (not its timeout or env wrappers) of the
# cage labelled $1.
cagent_pid_of() {
  local p
  for p in $(pgrep -f "cagent.e2e.cage=$1"); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == cagent ]] && { echo "$p"; return 0; }
  done
  return 1
}
cage_container() { docker ps -q --filter "label=cagent.e2e.cage=$1"; }
# `cagent ps` in workspace $2, as root or as the e2e user ($1).
cagent_ps() {
  if [[ $1 == root ]]; then
    (cd "$2" && cagent_env "$E2E_CAGENT" ps)
  else
    (cd "$2" && runuser -u "$E2E_USER" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$E2E_USER_HOME" \
        "$E2E_USER_CAGENT" ps)
  fi
}

for who in root user; do
  label=owner-$who-$$
  if [[ $who == root ]]; then
    ws=$(new_workspace allowed.test)
    sessions=$E2E_HOME/.cagent/sessions
    run_cagent "$ws" --arg="--label=cagent.e2e.cage=$label" -- sh -c 'touch /workspace/started; sleep 300' \
      </dev/null >/dev/null 2>"$E2E_TMP/owner.err" &
  else
    ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
    chown_workspace "$ws"
    sessions=$E2E_USER_HOME/.cagent/sessions
    user_cagent "$ws" --arg="--label=cagent.e2e.cage=$label" -- sh -c 'touch /workspace/started; sleep 300' \
      </dev/null >/dev/null 2>"$E2E_TMP/owner.err" &
  fi
  bg=$!
  E2E_EXIT_HOOKS+=("kill -KILL $bg 2>/dev/null" "docker rm -f \$(docker ps -aq --filter label=cagent.e2e.cage=$label) 2>/dev/null")
  if ! wait_for "the $who cage to start" 120 test -e "$ws/started"; then
    not_ok "$who: the cage started" "$(cat "$E2E_TMP/owner.err")"; continue
  fi
  pid=$(cagent_pid_of "$label") || { not_ok "$who: found cagent's pid"; continue; }
  id=$(docker inspect -f '{{index .Config.Labels "cagent.session"}}' "$(cage_container "$label")")
  expect_true "$who: its session record exists" test -d "$sessions/$id"
  # Control: with its owner alive the cage keeps running past the wait below.
  sleep 11
  expect_ne "$who: control: while cagent lives, the cage still runs after 11 s" "$(cage_container "$label")" ""
  cagent_ps "$who" "$ws" >/dev/null 2>&1
  expect_true "$who: control: cagent ps leaves a live session's record alone" test -d "$sessions/$id"

  kill -KILL "$pid"
  t0=$SECONDS
  while [[ -n $(cage_container "$label") ]] && ((SECONDS - t0 < 30)); do sleep 0.2; done
  gone=$((SECONDS - t0))
  expect_eq "$who: after kill -9 of cagent the container is gone" "$(cage_container "$label")" ""
  expect_true "$who: …within 10 s (took ${gone} s)" test "$gone" -le 10
  # [=]: the pattern does not match the command line of the shell running it.
  wait_for "the orphaned docker run to end" 20 sh -c "! pgrep -f 'cagent.e2e.cage[=]$label' >/dev/null"
  expect_false "$who: the orphaned docker run ended with it" pgrep -f "cagent.e2e.cage[=]$label"
  expect_true "$who: the dead session's record is still there before the next cagent" test -d "$sessions/$id"
  cagent_ps "$who" "$ws" >/dev/null 2>&1
  expect_false "$who: cagent ps removed the record the killed cagent left" test -e "$sessions/$id"
  wait "$bg" 2>/dev/null
done
finish
