#!/usr/bin/env bash
# -d/--domain adds a name for this session only: extra.test does not resolve
# without it, and is reachable with "-d extra.test" and "--domain=extra.test".
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
probe='curl -sS -m 10 http://extra.test/; echo "rc=$?"'
out=$(cage "$ws" "$probe")
expect_match "without -d: extra.test does not resolve (curl exit 6)" "$out" 'rc=6'
out=$(run_cagent "$ws" -d extra.test -- sh -c "$probe" </dev/null 2>"$E2E_TMP/err")
expect_match "with -d extra.test: reachable" "$out" 'cagent-e2e web12'
out=$(run_cagent "$ws" --domain=extra.test -- sh -c "$probe" </dev/null 2>"$E2E_TMP/err")
expect_match "with --domain=extra.test: reachable" "$out" 'cagent-e2e web12'
finish
