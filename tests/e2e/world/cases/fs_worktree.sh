#!/usr/bin/env bash
# A git worktree as the workspace: its .git is a file pointing outside the
# workspace; that gitdir (and the main repository's common dir) are mounted
# read-only, so git log/status work inside and nothing can be written there.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

repo=$E2E_TMP/repo
mkdir -p "$repo"
echo 'main file' >"$repo/file.txt"
# Host-side git runs as root in a tree owned by the test uid.
g() { git -c safe.directory='*' -c user.name=e2e -c user.email=e2e@example.invalid "$@"; }
g -C "$repo" init -q -b main
g -C "$repo" add file.txt
g -C "$repo" commit -q -m 'e2e worktree base' || die "host git commit failed"
ws=$E2E_TMP/worktree
g -C "$repo" worktree add -q -b e2e-wt "$ws" >/dev/null 2>&1 || die "git worktree add failed"
init_workspace "$ws" allowed.test
chown_workspace "$repo"
gitdir=$(sed -n 's/^gitdir: //p' "$ws/.git")
[[ -d $gitdir ]] || die "worktree gitdir not found: $gitdir"
head_before=$(g -C "$ws" rev-parse HEAD) || die "host git rev-parse failed"

out=$(cage "$ws" "
  cd /workspace
  echo \"log=\$(git log --oneline 2>&1)\"
  git status --porcelain >/dev/null 2>&1; echo \"status=\$?\"
  echo \"head=\$(cat '$gitdir/HEAD' 2>&1)\"
  touch '$gitdir/planted' 2>/dev/null; echo \"gitdir-write=\$?\"
  touch '$repo/.git/planted' 2>/dev/null; echo \"common-write=\$?\"
  git -c user.name=a -c user.email=a@example.invalid commit -q --allow-empty -m x >/dev/null 2>&1; echo \"commit=\$?\"")
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "git log works in the worktree" "$out" 'log=[0-9a-f]+ e2e worktree base'
expect_match "git status works in the worktree" "$out" 'status=0'
expect_match "the worktree's gitdir is reachable at its host path" "$out" 'head=ref: refs/heads/e2e-wt'
expect_match "the gitdir is not writable" "$out" 'gitdir-write=[1-9]'
expect_match "the main repository's .git is not writable" "$out" 'common-write=[1-9]'
expect_match "git commit fails" "$out" 'commit=[1-9]'
expect_eq "host HEAD unchanged" "$(g -C "$ws" rev-parse HEAD)" "$head_before"
expect_false "nothing planted in the gitdir" test -e "$gitdir/planted"
((CAGE_RC == 0)) || cage_err
finish
