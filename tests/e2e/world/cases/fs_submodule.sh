#!/usr/bin/env bash
# A real submodule checked out as the workspace: its .git file points at
# ../.git/modules/sub, outside the workspace. git's own core.worktree ties
# that module dir to this checkout, so it is mounted read-only (where the
# cage resolves the relative gitdir) and cagent prints no warning about it.
# Known limit: the module's core.worktree (../../../sub) resolves to /sub in
# the cage, not /workspace, so plain `git status` there needs
# --work-tree=/workspace (or GIT_WORK_TREE); the history itself is readable.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

g() { git -c safe.directory='*' -c protocol.file.allow=always -c user.name=e2e -c user.email=e2e@example.invalid "$@"; }
src=$E2E_TMP/subsrc
mkdir -p "$src"
echo 'sub file' >"$src/file.txt"
g -C "$src" init -q -b main && g -C "$src" add file.txt && g -C "$src" commit -q -m 'e2e sub base' ||
  die "host git (submodule source) failed"
super=$E2E_TMP/super
mkdir -p "$super"
g -C "$super" init -q -b main
g -C "$super" submodule add -q "$src" sub >/dev/null 2>&1 || die "git submodule add failed"
g -C "$super" commit -q -m 'e2e super' || die "host git commit (super) failed"
ws=$super/sub
[[ -f $ws/.git ]] || die "the submodule has no .git file"
init_workspace "$ws" allowed.test
chown_workspace "$super"
chown_workspace "$src"

out=$(cage "$ws" '
  echo "head=$(cat /.git/modules/sub/HEAD 2>&1)"
  touch /.git/modules/sub/planted 2>/dev/null; echo "write=$?"
  cd /workspace
  echo "log=$(git --work-tree=/workspace log --oneline 2>&1 | head -n 1)"')
err=$(cage_err)
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "the module's git dir is mounted where the cage resolves it" "$out" 'head=(ref: refs/heads/|[0-9a-f]{40})'
expect_match "the module's git dir is not writable" "$out" 'write=[1-9]'
expect_match "its history is readable" "$out" 'log=[0-9a-f]+ e2e sub base'
expect_no_match "no warning about the .git file" "$err" '\.git: '
expect_false "nothing planted on the host" test -e "$super/.git/modules/sub/planted"
((CAGE_RC == 0)) || printf '%s\n' "$err"
finish
