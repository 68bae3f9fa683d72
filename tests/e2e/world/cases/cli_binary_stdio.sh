#!/usr/bin/env bash
# Without a TTY, stdin/stdout pass straight through and are binary-safe:
# printf 'a\0b' | cagent -- cat | od -c shows the NUL, and 1 MiB of random
# bytes comes back with the same checksum; stderr stays separate.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
od=$(printf 'a\0b' | run_cagent "$ws" -- cat 2>"$E2E_TMP/err" | od -c | head -n1)
expect_match "printf 'a\\0b' | cagent -- cat | od -c round-trips" "$od" '^0000000 +a +\\0 +b *$'

head -c 1048576 /dev/urandom >"$E2E_TMP/blob"
want=$(sha256sum <"$E2E_TMP/blob" | cut -d' ' -f1)
got=$(run_cagent "$ws" -- cat <"$E2E_TMP/blob" 2>"$E2E_TMP/err" | sha256sum | cut -d' ' -f1)
expect_eq "1 MiB of random bytes round-trips unchanged" "$got" "$want"

out=$(run_cagent "$ws" -- sh -c 'echo to-out; echo to-err >&2' </dev/null 2>"$E2E_TMP/err2")
expect_match "stdout carries only stdout" "$out" '^to-out$'
expect_match "stderr carries the command's stderr" "$(cat "$E2E_TMP/err2")" 'to-err'
tty=$(run_cagent "$ws" -- sh -c 'test -t 0 && echo tty-in; test -t 1 && echo tty-out; echo end' </dev/null 2>/dev/null)
expect_eq "no TTY is allocated when cagent has none" "$tty" end
finish
