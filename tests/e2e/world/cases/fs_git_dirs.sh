#!/usr/bin/env bash
# Git directories not named .git run code on the host just the same: git
# reads their config (core.fsmonitor) and hooks for every command run in
# their checkouts. With .git read-only (the default), every git directory
# the start scan finds is read-only in the cage too — a bare repository
# with worktrees (.git says "gitdir: ./.bare"), a git dir made with
# --separate-git-dir (an absolute gitdir), a linked git dir (HEAD and a
# commondir) and its common dir — so the agent cannot plant a command there. Positive controls: git log and git status work in the
# cage in these layouts, and the rest of the workspace is writable.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

g() { git -c safe.directory='*' -c user.name=e2e -c user.email=e2e@example.invalid "$@"; }
src=$E2E_TMP/src
mkdir -p "$src"
echo 'hello' >"$src/file.txt"
g -C "$src" init -q -b main
g -C "$src" add file.txt
g -C "$src" commit -q -m 'e2e first commit' || die "host git commit failed"
# What the agent tries in each layout: a command for the next host git.
plant='"touch /workspace/fsmonitor-ran; false"'

# The common "bare repository + worktrees" layout.
ws=$E2E_TMP/bare
mkdir -p "$ws"
g clone -q --bare "$src" "$ws/.bare" || die "git clone --bare failed"
echo 'gitdir: ./.bare' >"$ws/.git"
g -C "$ws" worktree add -q main >/dev/null 2>&1 || die "git worktree add failed"
init_workspace "$ws" allowed.test
config_before=$(sha256sum <"$ws/.bare/config")
out=$(cage "$ws" "
  cd /workspace
  printf '[core]\n\tfsmonitor = %s\n' '$plant' 2>/dev/null >>.bare/config; echo \"config-write=\$?\"
  printf '#!/bin/sh\ntouch /workspace/hook-ran\n' 2>/dev/null >.bare/hooks/post-checkout; echo \"hook-write=\$?\"
  touch .bare/worktrees/main/planted 2>/dev/null; echo \"worktree-gitdir-write=\$?\"
  cd main
  echo \"log=\$(git log --oneline 2>&1 | head -n 1)\"
  git status --porcelain >/dev/null 2>&1; echo \"status=\$?\"
  echo changed >>file.txt && echo ws-write=ok")
expect_eq "bare layout: cagent exits 0" "$CAGE_RC" 0
expect_match "bare layout: .bare/config is not writable" "$out" 'config-write=[1-9]'
expect_match "bare layout: no hook can be planted in .bare/hooks" "$out" 'hook-write=[1-9]'
expect_match "bare layout: the worktree's git dir is not writable" "$out" 'worktree-gitdir-write=[1-9]'
expect_match "control: git log works in the worktree" "$out" 'log=[0-9a-f]+ e2e first commit'
expect_match "control: git status works in the worktree" "$out" 'status=0'
expect_match "control: the checkout itself is writable" "$out" 'ws-write=ok'
expect_eq "bare layout: the host's .bare/config is unchanged" "$(sha256sum <"$ws/.bare/config")" "$config_before"
expect_false "bare layout: no hook on the host" test -e "$ws/.bare/hooks/post-checkout"
g -C "$ws/main" status --porcelain >/dev/null 2>&1
expect_false "bare layout: git status on the host ran nothing of the agent's" test -e "$ws/fsmonitor-ran"
((CAGE_RC == 0)) || cage_err

# git init --separate-git-dir "$PWD/.gitdata": an absolute gitdir, in the workspace.
ws=$E2E_TMP/separate
mkdir -p "$ws"
cp "$src/file.txt" "$ws/"
g init -q -b main --separate-git-dir "$ws/.gitdata" "$ws"
g -C "$ws" add file.txt
g -C "$ws" commit -q -m 'e2e separate commit' || die "host git commit failed"
init_workspace "$ws" allowed.test
config_before=$(sha256sum <"$ws/.gitdata/config")
out=$(cage "$ws" "
  cd /workspace
  printf '[core]\n\tfsmonitor = %s\n' '$plant' 2>/dev/null >>.gitdata/config; echo \"config-write=\$?\"
  echo \"log=\$(git log --oneline 2>&1 | head -n 1)\"
  git status --porcelain >/dev/null 2>&1; echo \"status=\$?\"")
err=$(cage_err)
expect_eq "separate git dir: cagent exits 0" "$CAGE_RC" 0
expect_match "separate git dir: .gitdata/config is not writable" "$out" 'config-write=[1-9]'
expect_match "control: git log works (the git dir is where .git says)" "$out" 'log=[0-9a-f]+ e2e separate commit'
expect_match "control: git status works" "$out" 'status=0'
expect_no_match "separate git dir: no 'not mounted' warning" "$err" 'not mounted'
expect_eq "separate git dir: the host's config is unchanged" "$(sha256sum <"$ws/.gitdata/config")" "$config_before"
((CAGE_RC == 0)) || printf '%s\n' "$err"

# A linked git directory: HEAD and a commondir naming a directory that has
# objects/, refs/ and config but no HEAD. git takes lib/ for a repository
# and runs that config (core.pager, aliases) for git log in lib/.
ws=$E2E_TMP/linked
mkdir -p "$ws/lib" "$ws/.cache"
g clone -q --bare "$src" "$ws/.cache/c" || die "git clone --bare failed"
mv "$ws/.cache/c/HEAD" "$ws/lib/HEAD"
echo '../.cache/c' >"$ws/lib/commondir"
[[ $(g -C "$ws/lib" rev-parse --git-dir 2>/dev/null) == . ]] || die "git does not take lib/ for a git directory"
init_workspace "$ws" allowed.test
config_before=$(sha256sum <"$ws/.cache/c/config")
out=$(cage "$ws" "
  cd /workspace
  printf '[core]\n\tpager = %s\n' '$plant' 2>/dev/null >>.cache/c/config; echo \"config-write=\$?\"
  echo x 2>/dev/null >lib/commondir; echo \"commondir-write=\$?\"
  cd lib && echo \"log=\$(git log --oneline 2>&1 | head -n 1)\"")
expect_eq "linked git dir: cagent exits 0" "$CAGE_RC" 0
expect_match "linked git dir: the common dir's config is not writable" "$out" 'config-write=[1-9]'
expect_match "linked git dir: its commondir file is not writable" "$out" 'commondir-write=[1-9]'
expect_match "control: git log works in it" "$out" 'log=[0-9a-f]+ e2e first commit'
expect_eq "linked git dir: the host's config is unchanged" "$(sha256sum <"$ws/.cache/c/config")" "$config_before"
((CAGE_RC == 0)) || cage_err
finish
