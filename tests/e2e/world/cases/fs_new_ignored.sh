#!/usr/bin/env bash
# A file matching an ignore pattern that appears on the host between two
# sessions (created after the first cage, before the second starts) is hidden
# in the second: the workspace is scanned at every start.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
printf 'ignore:\n  - "*.pem"\n' >>"$ws/.cagent.yaml"
chown_workspace "$ws"
out1=$(cage "$ws" 'ls -A /workspace')
expect_eq "first session: cagent exits 0" "$CAGE_RC" 0
expect_no_match "first session: no fresh.pem yet" "$out1" 'fresh\.pem'

echo 'BEGIN PRIVATE' >"$ws/fresh.pem"
echo 'PLAIN NEW' >"$ws/fresh.txt"
mkdir -p "$ws/deep/er"
echo 'NEWSECRET=1' >"$ws/deep/er/.env"
chown_workspace "$ws"
out2=$(cage "$ws" '
  echo "pem=[$(cat /workspace/fresh.pem 2>&1)]"
  echo "env=[$(cat /workspace/deep/er/.env 2>&1)]"
  echo "txt=[$(cat /workspace/fresh.txt 2>&1)]"')
expect_eq "second session: cagent exits 0" "$CAGE_RC" 0
expect_match "control: a new file the patterns do not match keeps its content" "$out2" 'txt=\[PLAIN NEW\]'
expect_match "the new fresh.pem reads as empty" "$out2" 'pem=\[\]'
expect_match "the new deep/er/.env reads as empty" "$out2" 'env=\[\]'
finish
