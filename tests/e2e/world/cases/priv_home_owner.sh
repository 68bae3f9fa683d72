#!/usr/bin/env bash
# The home follows whoever the agent is now. Sessions of
# one workspace owned in turn by two uids, then by the image's own agent uid
# (1000: no remap at all), can each write ~/.npm. The walk that hands the
# home over never follows a symlink: a link the agent left in the home,
# pointing at a workspace file of a third uid, leaves that file's owner alone.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
echo victim >"$ws/victim"
chown 34567:34567 "$ws/victim"
npm_write='mkdir -p ~/.npm/_cacache && echo "$(id -u)" >~/.npm/_cacache/by-$(id -u) && echo "write-ok uid=$(id -u)"'

out=$(cage "$ws" "$npm_write; ln -s /workspace/victim ~/victim-link; ln -s /workspace ~/.npm/ws-link")
expect_match "uid $E2E_UID writes ~/.npm" "$out" "write-ok uid=$E2E_UID"
((CAGE_RC == 0)) || cage_err

chown -R 23457:23457 "$ws"
chown 34567:34567 "$ws/victim"
out=$(cage "$ws" "$npm_write")
expect_match "then uid 23457 writes ~/.npm (the home was handed over)" "$out" "write-ok uid=23457"
((CAGE_RC == 0)) || cage_err
expect_eq "the symlinked workspace file kept its owner" "$(stat -c %u:%g "$ws/victim")" "34567:34567"

chown -R 1000:1000 "$ws"
chown 34567:34567 "$ws/victim"
out=$(cage "$ws" "$npm_write; echo owners=\$(find ~ -xdev -printf '%U:%G\n' | sort -u | tr '\n' ' ')")
expect_match "then uid 1000 (the image's own, no remap) writes ~/.npm" "$out" "write-ok uid=1000"
expect_match "…and everything in the home is its own" "$out" 'owners=1000:1000$'
expect_eq "the symlinked workspace file still kept its owner" "$(stat -c %u:%g "$ws/victim")" "34567:34567"
((CAGE_RC == 0)) || cage_err
finish
