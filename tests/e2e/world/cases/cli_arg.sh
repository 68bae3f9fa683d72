#!/usr/bin/env bash
# --arg passes one extra argument to docker run, in both spellings
# ("--arg VALUE" and "--arg=VALUE"), even when VALUE starts with "--".
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
out=$(run_cagent "$ws" --arg --add-host=arg-space.invalid:192.0.2.1 --arg=--add-host=arg-equals.invalid:192.0.2.2 \
        -- cat /etc/hosts </dev/null 2>"$E2E_TMP/err")
expect_match "--arg VALUE reached docker run" "$out" '192\.0\.2\.1[[:space:]]+arg-space\.invalid'
expect_match "--arg=VALUE reached docker run" "$out" '192\.0\.2\.2[[:space:]]+arg-equals\.invalid'
finish
