#!/usr/bin/env bash
# An invalid .cagent.yaml (unknown key; wrong type) fails with exit 2 and a
# message naming the file and line, before any container starts.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
printf 'bogus_key: 1\n' >>"$ws/.cagent.yaml"   # line 4 (see init_workspace)
chown_workspace "$ws"
line=$(grep -n '^bogus_key' "$ws/.cagent.yaml" | cut -d: -f1)
t0=$(date +%s.%N)
rc=0; err=$(run_cagent "$ws" -- touch /workspace/ran </dev/null 2>&1 >/dev/null) || rc=$?
expect_eq "unknown key: exit 2" "$rc" 2
expect_match "unknown key: the message names .cagent.yaml:$line" "$err" "\\.cagent\\.yaml:$line"
expect_match "unknown key: the message names the key" "$err" 'bogus_key'

ws2=$(new_workspace allowed.test)
printf 'dns_resolvers: ["%s"]\ndomains: 5\n' "$DNS4" >"$ws2/.cagent.yaml"
chown_workspace "$ws2"
rc=0; err=$(run_cagent "$ws2" -- touch /workspace/ran </dev/null 2>&1 >/dev/null) || rc=$?
expect_eq "wrong type: exit 2" "$rc" 2
expect_match "wrong type: the message names .cagent.yaml:2" "$err" '\.cagent\.yaml:2'

expect_eq "no container was created" "$(containers_created_since "$t0")" ""
expect_false "the command never ran" test -e "$ws/ran" -o -e "$ws2/ran"
# Control: the first workspace with the bad line taken out runs the same
# command, and the same containers_created_since sees its container.
sed -i '/^bogus_key/d' "$ws/.cagent.yaml"
t1=$(date +%s.%N)
rc=0; err=$(run_cagent "$ws" -- touch /workspace/ran </dev/null 2>&1 >/dev/null) || rc=$?
expect_eq "control: the valid config runs (exit 0)" "$rc" 0
expect_true "control: …and the command ran" test -e "$ws/ran"
expect_match "control: containers_created_since sees the container it created" \
  "$(containers_created_since "$t1")" '^cagent-'
((rc == 0)) || printf '%s\n' "$err"
finish
