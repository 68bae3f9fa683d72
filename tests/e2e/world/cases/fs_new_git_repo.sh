#!/usr/bin/env bash
# A git repository the session created runs code on the host: its config
# (core.fsmonitor) runs for any git command there, e.g. the `git status` of
# a shell prompt. The .git readonly pattern covers only repositories that
# existed at the start, so at the end of the session cagent names each new
# .git (directory, file, symlink) and each new directory git takes for a
# repository (a bare one; HEAD and commondir), with the reason. Controls:
# the workspace's own .git, there at the start, is not named, and a session
# that creates none prints no such line.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
g() { git -c safe.directory='*' -c user.name=e2e -c user.email=e2e@example.invalid "$@"; }
echo hello >"$ws/file.txt"
g -C "$ws" init -q -b main
g -C "$ws" add file.txt
g -C "$ws" commit -q -m 'e2e first commit' || die "host git commit failed"
chown_workspace "$ws"
new_repo_line='cagent: this session created (a git repository|[0-9]+ git repositories) in the workspace'

cage "$ws" 'cd /workspace && git status --porcelain >/dev/null && echo clean-session'
expect_eq "a session that creates no repository exits 0" "$CAGE_RC" 0
expect_no_match "…and names none (the workspace's own .git is old)" "$(cage_err)" "$new_repo_line"

out=$(cage "$ws" '
  cd /workspace
  git init -q vendor/lib && git -C vendor/lib config core.fsmonitor "touch /tmp/fsmonitor-ran" && echo init=ok
  mkdir -p tools/x && printf "gitdir: ../../vendor/lib/.git\n" >tools/x/.git
  git init -q --bare mirror && echo bare=ok
  mkdir -p src .cache/c/objects .cache/c/refs && echo "ref: refs/heads/main" >src/HEAD &&
    echo ../.cache/c >src/commondir && printf "[core]\n\tpager = touch /tmp/pager-ran\n" >.cache/c/config &&
    echo linked=ok')
expect_eq "the session exits 0" "$CAGE_RC" 0
expect_match "the agent could git init a nested repository" "$out" 'init=ok'
expect_match "…and a bare one" "$out" 'bare=ok'
expect_match "…and a linked git dir" "$out" 'linked=ok'
err=$(cage_err)
expect_match "the end says the session created git repositories" "$err" "$new_repo_line"
expect_match "…with the reason (their config runs on the host)" "$err" 'core\.fsmonitor'
expect_match "…naming vendor/lib/.git" "$err" 'cagent:   vendor/lib/\.git \(a new \.git directory\)'
expect_match "…naming the planted .git file" "$err" 'cagent:   tools/x/\.git \(a new \.git file'
expect_match "…naming the bare repository" "$err" 'cagent:   mirror \(git takes it for a bare repository'
expect_match "…and the linked git dir (HEAD and commondir, its common dir without HEAD)" "$err" \
  'cagent:   src \(git takes it for a repository: HEAD and commondir'
expect_no_match "…but not the workspace's own .git" "$err" 'cagent:   \.git '

cage "$ws" 'true'
expect_no_match "the next session started with them: nothing new to name" "$(cage_err)" "$new_repo_line"
finish
