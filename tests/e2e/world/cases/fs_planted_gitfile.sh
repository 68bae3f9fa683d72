#!/usr/bin/env bash
# A .git file is workspace content, so the agent writes it. One
# session plants .git files that point at another repository outside the
# workspace (relative and absolute), and a fake gitdir inside the workspace
# whose commondir points there; the next cagent run mounts none of it (the
# paths do not exist in the cage, the repository's content is unreadable)
# and says so on stderr.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# The repository the agent is after: a real one, next to the workspace.
other=$E2E_TMP/other
mkdir -p "$other"
echo 'OTHER_REPO_SECRET' >"$other/secret.txt"
g() { git -c safe.directory='*' -c user.name=e2e -c user.email=e2e@example.invalid "$@"; }
g -C "$other" init -q -b main
g -C "$other" add secret.txt
g -C "$other" commit -q -m 'other repository' || die "host git commit failed"
chown_workspace "$other"

ws=$E2E_TMP/ws
mkdir -p "$ws"
init_workspace "$ws" allowed.test
# From /workspace/rel/.git the relative target is ../../other/.git (the
# cage resolves it to /other/.git); the absolute one is the host path.
out1=$(cage "$ws" "
  cd /workspace
  mkdir -p rel abs fake viafake
  printf 'gitdir: ../../other/.git\n' >rel/.git
  printf 'gitdir: %s\n' '$other/.git' >abs/.git
  printf 'ref: refs/heads/main\n' >fake/HEAD
  printf '%s\n' '$other/.git' >fake/commondir
  printf 'gitdir: ../fake\n' >viafake/.git
  echo planted")
expect_eq "planting session: cagent exits 0" "$CAGE_RC" 0
expect_match "the agent planted the .git files" "$out1" 'planted'
((CAGE_RC == 0)) || cage_err

out2=$(cage "$ws" "
  for p in /other/.git '$other/.git' '$other'; do
    if [ -e \"\$p\" ]; then echo \"exists=\$p\"; else echo \"absent=\$p\"; fi
  done
  echo \"abs-gitfile=[\$(cat /workspace/abs/.git 2>&1)]\"
  cd /workspace/abs && echo \"log=\$(git log --oneline 2>&1 | head -n 1)\"")
err2=$(cage_err)
expect_eq "next session: cagent exits 0" "$CAGE_RC" 0
expect_match "/other/.git (relative gitdir) is not mounted" "$out2" 'absent=/other/\.git'
expect_match "the other repository's .git (absolute gitdir, commondir) is not mounted" "$out2" \
  "absent=$other/\\.git"
expect_no_match "nothing of the other repository exists in the cage" "$out2" 'exists='
# Control: the planted abs/.git itself is in the cage (workspace content),
# so "absent" and the failing git below are about its target.
expect_match "control: the planted abs/.git is there, naming the other repository" "$out2" \
  "abs-gitfile=\\[gitdir: $other/\\.git\\]"
expect_no_match "git cannot read the other repository's history" "$out2" 'other repository'
expect_match "cagent warns about rel/.git" "$err2" 'rel/\.git: .*not mounted'
expect_match "cagent warns about abs/.git" "$err2" 'abs/\.git: .*not mounted'
expect_match "cagent warns about the fake gitdir's commondir" "$err2" 'viafake/\.git: .*commondir.*not mounted'
((CAGE_RC == 0)) || printf '%s\n' "$err2"
finish
