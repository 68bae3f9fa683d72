#!/usr/bin/env bash
# SIGINT (Ctrl-C) and SIGTERM to cagent during a session stop the container
# and leave nothing behind: cagent exits non-zero within seconds, the
# container is gone, the session directory is removed.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

for sig in INT TERM; do
  ws=$(new_workspace allowed.test)
  label=sig-$sig-$$
  # env --default-signal: a background job of a non-interactive shell starts
  # with SIGINT ignored; cagent must see the signal as a terminal would send it.
  (cd "$ws" && exec env HOME="$E2E_HOME" CAGENT_HOME="$E2E_HOME/.cagent" CAGENT_IMAGE="$CAGENT_IMAGE_TAG" \
      env --default-signal=INT,TERM "$E2E_CAGENT" --no-update $(accept_tests_config "$ws") --arg="--network=$NET" \
      --arg="--label=cagent.e2e.run=$RUN_ID" --arg="--label=cagent.e2e.cage=$label" \
      -- sh -c "touch /workspace/started; $(cage_wait_file never)" ) \
    </dev/null >"$E2E_TMP/out" 2>"$E2E_TMP/err" &
  pid=$!
  E2E_EXIT_HOOKS+=("kill -KILL $pid 2>/dev/null")
  if ! wait_for "the cage to start" 120 test -e "$ws/started"; then
    not_ok "SIG$sig: the cage started" "$(cat "$E2E_TMP/err")"; continue
  fi
  ctr=$(docker ps --filter "label=cagent.e2e.cage=$label" --format '{{.Names}}')
  expect_ne "SIG$sig: the cage's container is running" "$ctr" ""
  expect_ne "SIG$sig: control: while it runs, its session directory exists" \
    "$(ls -A "$E2E_HOME/.cagent/sessions" 2>/dev/null)" ""
  kill -"$sig" "$pid"
  t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null && ((SECONDS - t0 < 30)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    not_ok "SIG$sig: cagent exits within 30 s"; kill -KILL "$pid"; wait "$pid" 2>/dev/null
  else
    rc=0; wait "$pid" || rc=$?
    ok "SIG$sig: cagent exited after $((SECONDS - t0)) s (status $rc)"
    # As a shell reports an interrupted command: 128 + the signal number.
    expect_eq "SIG$sig: the exit status is 128+SIG$sig" "$rc" "$((128 + $(kill -l "$sig")))"
  fi
  wait_for "the container to be removed" 30 test -z "$(docker ps -aq --filter "label=cagent.e2e.cage=$label")"
  expect_eq "SIG$sig: no container is left" "$(docker ps -aq --filter "label=cagent.e2e.cage=$label")" ""
  expect_eq "SIG$sig: no session directory is left" "$(ls -A "$E2E_HOME/.cagent/sessions" 2>/dev/null)" ""
done
finish
