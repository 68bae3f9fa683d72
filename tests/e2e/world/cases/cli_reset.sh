#!/usr/bin/env bash
# `cagent --reset ci -y` removes cagent's session containers (a running cage
# is stopped) and its image, and nothing else: workspace files, the world's
# containers and other image tags stay. The image is addressed through
# CAGENT_IMAGE as a separate tag of the image under test, so removing it does
# not force the next run to rebuild. Runs after every other case (CMake).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# --reset c removes every cagent session on this engine; never take a
# developer's real sessions down with the test.
foreign=$(docker ps -a --filter label=cagent.session --format '{{.Names}} {{.Label "cagent.e2e.run"}}' | awk '$2 == ""')
[[ -z $foreign ]] || skip "cagent sessions not started by this test run exist and --reset c would remove them: $foreign"

reset_tag=cagent-e2e-reset:$RUN_ID
docker tag "$CAGENT_IMAGE_TAG" "$reset_tag" || die "cannot tag $reset_tag"
E2E_EXIT_HOOKS+=("docker rmi $reset_tag >/dev/null 2>&1")

ws=$(new_workspace allowed.test)
echo 'keep me' >"$ws/precious.txt"
chown_workspace "$ws"
cage_bg "$ws" "touch /workspace/started; $(cage_wait_file never)"
if wait_for "the cage to start" 120 test -e "$ws/started"; then
  ctr=$(cage_bg_container)
  expect_ne "a session container is running" "$ctr" ""
  rc=0; out=$(cd "$ws" && HOME=$E2E_HOME CAGENT_HOME=$E2E_HOME/.cagent CAGENT_IMAGE=$reset_tag \
                timeout 120 "$E2E_CAGENT" --reset ci -y </dev/null 2>&1) || rc=$?
  expect_eq "cagent --reset ci -y exits 0" "$rc" 0
  wait_for "the session container to go" 30 test -z "$(docker ps -aq --filter "label=cagent.e2e.cage=$CAGE_LABEL")"
  expect_eq "the session container was removed" "$(docker ps -aq --filter "label=cagent.e2e.cage=$CAGE_LABEL")" ""
  expect_false "the image ($reset_tag) was removed" docker image inspect "$reset_tag"
  expect_true "the image under test's own tag is untouched" docker image inspect "$CAGENT_IMAGE_TAG"
  expect_eq "workspace files untouched" "$(cat "$ws/precious.txt")" 'keep me'
  expect_ne "the world's DNS server still runs (not a cagent session)" \
    "$(docker ps -q --filter "name=cagent-e2e-$RUN_ID-dns")" ""
  wait_cage_bg 60
  ok "the stopped session's cagent returned (status $CAGE_RC)"
else
  not_ok "the cage started" "$(cat "$E2E_TMP/bg.err")"
fi

# Without -y and without a terminal, --reset refuses instead of guessing.
docker tag "$CAGENT_IMAGE_TAG" "$reset_tag"
rc=0; out=$(cd "$ws" && HOME=$E2E_HOME CAGENT_HOME=$E2E_HOME/.cagent CAGENT_IMAGE=$reset_tag \
              timeout 60 "$E2E_CAGENT" --reset ci </dev/null 2>&1) || rc=$?
expect_ne "--reset without -y and without a TTY does not succeed" "$rc" 0
expect_match "…and says to use -y" "$out" '(^|[^a-z])-y'
expect_true "…and removed nothing" docker image inspect "$reset_tag"
finish
