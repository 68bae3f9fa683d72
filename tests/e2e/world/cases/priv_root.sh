#!/usr/bin/env bash
# The agent is not root and cannot become root: its uid is the workspace
# owner's, setuid(0)/setgid(0) fail, `su` fails, and no setuid/setgid file
# exists in the image that could be used instead.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
out=$(cage "$ws" '
  echo "id=$(id -u):$(id -g)"
  python3 /workspace/probe.py setuid0
  echo "su=$(su -c "id -u" root </dev/null 2>&1; echo "rc=$?")" | tr "\n" " "; echo
  echo "suid=$(find / -xdev -perm /6000 -type f 2>/dev/null | head -n 5 | tr "\n" " ")"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "the agent runs as the workspace owner $E2E_UID:$E2E_GID" "$out" "id=$E2E_UID:$E2E_GID"
expect_match "setuid(0) fails" "$out" 'setuid0 denied EPERM'
expect_match "setgid(0) fails" "$out" 'setgid0 denied EPERM'
expect_match "still not root afterwards" "$out" "uid=$E2E_UID euid=$E2E_UID"
su_line=$(grep '^su=' <<<"$out")
expect_no_match "su does not become root" "$su_line" '(^su=|[^0-9])0 rc=0'
expect_no_match "su exits non-zero" "$su_line" 'rc=0'
expect_match "no setuid/setgid files in the image" "$out" 'suid=$'
finish
