#!/usr/bin/env bash
# At exit cagent prints one line summarising the lookups dnsguard blocked
# (names, counts, how to allow them); a session without blocked lookups
# prints no such line.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
cage "$ws" 'for n in pypi.test pypi.test example.net.test; do
  python3 -c "import socket,sys; socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET)" $n 2>/dev/null; done; true'
err=$(cage_err)
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "a 'blocked N lookups' line" "$err" 'blocked [0-9]+ lookups?'
expect_match "…naming pypi.test with its count" "$err" 'pypi\.test ×[2-9]'
expect_match "…naming example.net.test" "$err" 'example\.net\.test'
expect_match "…saying how to allow them" "$err" 'domains'
cage "$ws" 'curl -sS -m 10 http://allowed.test/ >/dev/null'
expect_eq "control session: cagent exits 0" "$CAGE_RC" 0
expect_no_match "control: no blocked line when nothing was blocked" "$(cage_err)" 'blocked [0-9]+ lookup'
finish
