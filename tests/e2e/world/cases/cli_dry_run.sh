#!/usr/bin/env bash
# --dry-run prints the docker commands (with the workspace mount, the cap
# drop, the extra --arg, the image and the command) and starts no container.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
t0=$(date +%s.%N)
rc=0; out=$(run_cagent "$ws" --dry-run -- echo dry-run-marker </dev/null 2>"$E2E_TMP/err") || rc=$?
expect_eq "cagent --dry-run exits 0" "$rc" 0
expect_match "prints a docker run command" "$out" 'docker run '
expect_match "…mounting the workspace at /workspace" "$out" "$ws:/workspace"
expect_match "…dropping all capabilities" "$out" '--cap-drop'
expect_match "…with the --arg given" "$out" "--network=$NET"
expect_match "…running the image under test" "$out" "$CAGENT_IMAGE_TAG"
expect_match "…and the command" "$out" 'dry-run-marker'
expect_no_match "the command did not actually run" "$(cat "$E2E_TMP/err")" 'dry-run-marker'
expect_eq "no container was created" "$(containers_created_since "$t0")" ""
expect_eq "no session directory is left" "$(ls -A "$E2E_HOME/.cagent/sessions" 2>/dev/null)" ""
# Control: the same command without --dry-run runs, and the same
# containers_created_since sees the container it created, so the empty
# answer above is --dry-run's doing, not a blind probe. While it runs its
# session directory exists, and it is gone after: the control of "no
# session directory is left".
t1=$(date +%s.%N)
cage_bg "$ws" "echo dry-run-marker; touch /workspace/running; $(cage_wait_file go)"
if wait_for "the control cage to run" 120 test -e "$ws/running"; then
  expect_ne "control: a running session has a session directory" "$(ls -A "$E2E_HOME/.cagent/sessions" 2>/dev/null)" ""
else
  not_ok "control: the cage without --dry-run ran" "$(cat "$E2E_TMP/bg.err")"
fi
touch "$ws/go"
wait_cage_bg 60
expect_eq "control: without --dry-run cagent exits 0" "$CAGE_RC" 0
expect_match "control: …and the command ran" "$(cat "$E2E_TMP/bg.out")" 'dry-run-marker'
expect_match "control: containers_created_since sees the container it created" \
  "$(containers_created_since "$t1")" '^cagent-'
expect_eq "control: …and its session directory is gone after it" "$(ls -A "$E2E_HOME/.cagent/sessions" 2>/dev/null)" ""
finish
