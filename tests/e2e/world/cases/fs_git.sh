#!/usr/bin/env bash
# .git is read-only by default: history is readable (git log, git status
# work as the agent) and cannot be rewritten (commit fails, .git not writable).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
echo 'hello' >"$ws/file.txt"
# Host-side git runs as root in a tree owned by the test uid.
g() { git -c safe.directory='*' -c user.name=e2e -c user.email=e2e@example.invalid "$@"; }
g -C "$ws" init -q -b main
g -C "$ws" add file.txt
g -C "$ws" commit -q -m 'e2e first commit' || die "host git commit failed"
chown_workspace "$ws"
head_before=$(g -C "$ws" rev-parse HEAD) || die "host git rev-parse failed"

out=$(cage "$ws" '
  cd /workspace
  echo "log=$(git log --oneline 2>&1)"
  git status --porcelain >/dev/null 2>&1; echo "status=$?"
  touch .git/planted 2>/dev/null; echo "git-write=$?"
  touch planted 2>/dev/null; echo "ws-write=$?"
  echo change >>file.txt
  git -c user.name=a -c user.email=a@example.invalid commit -qam rewrite >/dev/null 2>&1; echo "commit=$?"
  # Control: git itself can commit here, in a repository of the agent'"'"'s own.
  scratch=$(mktemp -d) && cd "$scratch" && git init -q -b main && echo x >f && git add f &&
    git -c user.name=a -c user.email=a@example.invalid commit -qm scratch >/dev/null 2>&1; echo "scratch-commit=$?"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "control: the workspace itself is writable" "$out" 'ws-write=0'
expect_true "control: …the host sees the planted file" test -e "$ws/planted"
expect_match "control: …and the change to file.txt" "$(cat "$ws/file.txt")" 'change'
expect_match "control: git commits in a scratch repository in the same cage" "$out" 'scratch-commit=0'
expect_match "git log works inside" "$out" 'log=[0-9a-f]+ e2e first commit'
expect_match "git status works inside" "$out" 'status=0'
expect_match ".git is not writable" "$out" 'git-write=[1-9]'
expect_match "git commit fails" "$out" 'commit=[1-9]'
expect_eq "host HEAD unchanged" "$(g -C "$ws" rev-parse HEAD)" "$head_before"
expect_false "nothing planted in the host's .git" test -e "$ws/.git/planted"
((CAGE_RC == 0)) || cage_err
finish
