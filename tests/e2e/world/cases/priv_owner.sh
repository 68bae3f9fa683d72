#!/usr/bin/env bash
# Files and directories the agent creates in /workspace belong to the host
# user who owns the workspace (uid/gid remapped), not to root and not to the
# image's default agent uid.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
cage "$ws" 'echo hello >/workspace/created.txt && mkdir -p /workspace/newdir && touch /workspace/newdir/inner'
expect_eq "cagent exits 0" "$CAGE_RC" 0
for f in created.txt newdir newdir/inner; do
  expect_eq "$f is owned by $E2E_UID:$E2E_GID on the host" "$(stat -c %u:%g "$ws/$f" 2>&1)" "$E2E_UID:$E2E_GID"
done
expect_eq "the content arrived" "$(cat "$ws/created.txt" 2>&1)" hello
((CAGE_RC == 0)) || cage_err
finish
