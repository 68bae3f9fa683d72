#!/usr/bin/env bash
# The workspace scan fails closed, and anchored ignores survive a
# rename attempt.
#  1. The agent makes the directory of an ignored file unreadable
#     (chmod 000). The next cagent run, by the ordinary user who owns the
#     workspace (root would read through the mode bits), cannot scan it and
#     hides the whole directory: the agent cannot chmod it back and read.
#  2. A file hidden by an anchored pattern (/secrets/key.pem) stays where
#     the pattern names it: its directory cannot be renamed from the cage
#     (it is pinned by a mount), so the next session hides it again.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

docker_gid=$(stat -c %g /var/run/docker.sock 2>/dev/null) || skip "no /var/run/docker.sock to grant the test user"
command -v setpriv >/dev/null 2>&1 || skip "setpriv (util-linux) is not installed"

ws=$(new_workspace allowed.test)
printf 'ignore:\n  - "/secrets/key.pem"\n' >>"$ws/.cagent.yaml"
mkdir -p "$ws/locked" "$ws/secrets"
echo 'LOCKED_SECRET=1' >"$ws/locked/.env"
echo 'PEM_SECRET' >"$ws/secrets/key.pem"
chown_workspace "$ws"

# Session 1 (the agent): lock the directory, try to carry key.pem away.
out1=$(cage "$ws" '
  cd /workspace
  echo "pem=[$(cat secrets/key.pem 2>&1)]"
  chmod 000 locked; echo "chmod=$?"
  mkdir plain && mv plain plain2; echo "mvplain=$?"
  echo x >plainfile && mv plainfile plainfile2; echo "mvplainfile=$?"
  mv secrets s2 2>/dev/null; echo "mv=$?"
  mv secrets/key.pem k 2>/dev/null; echo "mvfile=$?"')
expect_eq "session 1: cagent exits 0" "$CAGE_RC" 0
expect_match "session 1: key.pem reads as empty" "$out1" 'pem=\[\]'
expect_match "session 1: the agent could chmod 000 its directory" "$out1" 'chmod=0'
expect_match "session 1: control: a plain directory can be renamed" "$out1" 'mvplain=0'
expect_match "session 1: control: a plain file can be moved" "$out1" 'mvplainfile=0'
expect_true "host: control: plain2/ and plainfile2 are there" test -d "$ws/plain2" -a -f "$ws/plainfile2"
expect_match "session 1: secrets/ cannot be renamed (pinned)" "$out1" 'mv=[1-9]'
expect_match "session 1: key.pem cannot be moved" "$out1" 'mvfile=[1-9]'
expect_true "host: secrets/key.pem still under its name" test -f "$ws/secrets/key.pem"
expect_false "host: no s2 appeared" test -e "$ws/s2"
expect_eq "host: locked/ is mode 000" "$(stat -c %a "$ws/locked")" 0
((CAGE_RC == 0)) || cage_err

# Session 2, as the workspace owner with a private home (copied from the
# world's, so the same config and trust apply).
uhome=$E2E_TMP/uhome
mkdir -p "$uhome"
[[ -d $E2E_HOME/.cagent ]] && cp -a "$E2E_HOME/.cagent" "$uhome/"
chown -R "$E2E_UID:$E2E_GID" "$uhome"
# The test uid runs a copy staged in this case's temp dir (0755, under
# /tmp): the build tree may sit under a 0700 home it cannot enter. With
# --no-update and the image present, cagent needs no image context.
install -m 0755 "$E2E_CAGENT" "$E2E_TMP/cagent"
rc2=0
out2=$(cd "$ws" && env HOME="$uhome" CAGENT_HOME="$uhome/.cagent" CAGENT_IMAGE="$CAGENT_IMAGE_TAG" \
  setpriv --reuid="$E2E_UID" --regid="$E2E_GID" --groups="$docker_gid" \
  timeout --kill-after=10 "${E2E_CAGE_TIMEOUT:-180}" "$E2E_TMP/cagent" --no-update \
    --arg="--network=$NET" --arg="--label=cagent.e2e.run=$RUN_ID" -- sh -c '
  cd /workspace
  chmod 755 locked 2>/dev/null; echo "rechmod=$?"
  echo "locked=[$(ls -A locked 2>&1)]"
  echo "env=[$(cat locked/.env 2>&1)]"
  echo "pem=[$(cat secrets/key.pem 2>&1)]"' </dev/null 2>"$E2E_TMP/cage2.err") || rc2=$?
err2=$(cat "$E2E_TMP/cage2.err")
expect_eq "session 2 (as uid $E2E_UID): cagent exits 0" "$rc2" 0
expect_match "session 2: cagent warns that locked/ could not be scanned" "$err2" 'locked: cannot open.*hidden'
expect_match "session 2: locked/ cannot be opened up again" "$out2" 'rechmod=[1-9]'
expect_match "session 2: locked/ lists as empty" "$out2" 'locked=\[\]'
expect_no_match "session 2: locked/.env is not readable" "$out2" 'LOCKED_SECRET'
expect_match "session 2: key.pem still reads as empty" "$out2" 'pem=\[\]'
expect_eq "host: locked/.env kept its content" "$(cat "$ws/locked/.env")" 'LOCKED_SECRET=1'
((rc2 == 0)) || printf '%s\n' "$err2"
finish
