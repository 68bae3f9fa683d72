#!/usr/bin/env bash
# A cage on Docker's default network, as a user's plain `cagent -- cmd` runs
# it. That network has no IPv6, so the container has no ::1 either; the cage
# must still start and run the command. Nothing may leave the host from
# here: the command sends nothing, and dnsguard's upstream (which its
# start-up refresh of the allowed names would use) is the container's own
# loopback discard port, so even those queries stay inside the cage.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
# The resolver in the global config (-c): from an untrusted workspace it
# would be ignored, and dnsguard would ask the host's resolver instead.
printf 'domains: ["allowed.test"]\n' >"$ws/.cagent.yaml"
printf 'dns_resolvers: ["127.0.0.1:9"]\ndomains: ["allowed.test"]\n' >"$E2E_TMP/global.yaml"
chown_workspace "$ws"
rc=0
out=$(cd "$ws" && cagent_env timeout 120 "$E2E_CAGENT" --no-update $(accept_tests_config "$ws") -c "$E2E_TMP/global.yaml" \
        --arg="--label=cagent.e2e.run=$RUN_ID" \
        -- sh -c 'echo in-cage-$(id -u)' </dev/null 2>"$E2E_TMP/err") || rc=$?
expect_eq "cagent -- cmd on the default network exits 0" "$rc" 0
expect_eq "the command ran as the workspace owner" "$out" "in-cage-$E2E_UID"
((rc == 0)) || cat "$E2E_TMP/err"
finish
