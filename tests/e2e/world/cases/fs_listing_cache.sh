#!/usr/bin/env bash
# The scan reuses the last session's directory listings for directories
# whose device, inode and ctime did not change (launcher/host/listing_cache.hpp),
# and the walk for new git repositories starts when the cage dies. The
# attack: the agent plants a .env and a git repository in directories the
# last scan listed, then sets their mtimes back (`touch -d`) so they look
# unchanged. ctime cannot be set back: the next session hides the .env and
# the end of this one names the repository. Controls in the same sessions:
# the listings were kept (the file exists, the user's own, 0600, for this
# workspace), secrets hidden from the start stay hidden, a file the agent
# wrote next to its .env is visible in the next session, and a session that
# changes nothing names no repository.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
mkdir -p "$ws/node_modules/pkg/lib/deep" "$ws/node_modules/other/lib" "$ws/src"
echo 'OLD_SECRET=1' >"$ws/node_modules/pkg/lib/deep/.env"
echo 'module.exports = 1' >"$ws/node_modules/pkg/lib/deep/index.js"
echo 'x' >"$ws/node_modules/other/lib/a.js"
chown_workspace "$ws"
# Listings are kept only for directories whose ctime is older than the
# scan's start less 2 s: let the workspace age past that.
sleep 3
listings=$E2E_HOME/.cagent/listings
new_repo_line='cagent: this session created (a git repository|[0-9]+ git repositories) in the workspace'

out=$(cage "$ws" 'cat /workspace/node_modules/pkg/lib/deep/.env; echo first-session')
expect_eq "the first session exits 0" "$CAGE_RC" 0
expect_match "…and ran" "$out" 'first-session'
expect_no_match "…with the old .env hidden" "$out" 'OLD_SECRET'
file=$(grep -l -F -- "$(cd "$ws" && pwd -P)" "$listings"/* 2>/dev/null | head -1)
expect_ne "the scan kept this workspace's listings" "$file" ""
expect_eq "…in a file of the user's, 0600" "$(stat -c '%U %a' "$file" 2>/dev/null)" "root 600"

out=$(cage "$ws" '
  cd /workspace/node_modules
  echo PLANTED_SECRET=1 >pkg/lib/.env && echo notes >pkg/lib/notes.txt && touch -d 2000-01-01 pkg/lib && echo planted=ok
  git init -q other/lib/repo && touch -d 2000-01-01 other/lib && echo repo=ok
  stat -c "mtime=%y" pkg/lib')
expect_eq "the agent's session exits 0" "$CAGE_RC" 0
expect_match "the agent planted a .env in a directory listed before" "$out" 'planted=ok'
expect_match "…and set its mtime back" "$out" 'mtime=2000-01-01'
expect_match "the end of the session names the repository planted the same way" "$(cage_err)" \
  'cagent:   node_modules/other/lib/repo/\.git \(a new \.git directory\)'

out=$(cage "$ws" 'cat /workspace/node_modules/pkg/lib/.env; cat /workspace/node_modules/pkg/lib/notes.txt;
  cat /workspace/node_modules/pkg/lib/deep/.env; echo third-session')
expect_eq "the next session exits 0" "$CAGE_RC" 0
expect_no_match "…and hides the planted .env" "$out" 'PLANTED_SECRET'
expect_match "…but shows the file the agent wrote beside it (control)" "$out" 'notes'
expect_no_match "…and still hides the old one" "$out" 'OLD_SECRET'
expect_no_match "…and names no new repository: none was made" "$(cage_err)" "$new_repo_line"
finish
