#!/usr/bin/env bash
# Secrets never enter the cage (issue 21). The host's "real" GitHub token
# (GITHUB_REAL_TOKEN, which web21 demands as git's Basic password) is the
# github preset's source, GH_TOKEN in cagent's environment; a custom secret
# belongs to wrong.test, whose certificate names other sites. Both come in
# through the run's global config (-c: a copy of the world's with `secrets:`
# and the world CA in ca_certificates, which the relay uses to verify the
# real server). web21 (tests/tools/echo_server.py) answers digests and logs
# every request's headers on the host, so the test sees what arrived.
#
# 1. One cage runs every in-cage probe, then hands over (marker files): the
#    host greps the running container — its files (docker exec), every
#    process's environ and cmdline (from the host's /proc), docker inspect —
#    for the value, with the placeholder as the control.
# 2. A missing source: one line naming the secret, exit 2, no container.
# 3. The docker-group user on the world network without dns_resolvers
#    (Docker's embedded resolver forwarding to the world DNS): the first check.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init
[[ -n ${GITHUB_REAL_TOKEN:-} && -n ${WEB21_LOG:-} ]] || die "the world has no web21 (world_up.sh too old?)"
REAL=$GITHUB_REAL_TOKEN
WRONG_REAL=wrong-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

secrets_yaml() {  # the secrets: block both configs get
  cat <<YAML
secrets:
  - github
  - name: wrongsite
    env: WRONG_TOKEN
    from_env: WRONG_TOKEN
    hosts: [wrong.test]
YAML
}
# BASE OUT — BASE with the world CA added to ca_certificates and secrets: appended.
secrets_config() {
  grep -qx '  - system' "$1" || die "$1 has no '  - system' ca_certificates entry to extend"
  sed "s|^  - system\$|  - system\n  - \"$TLS_CA\"|" "$1" >"$2"
  secrets_yaml >>"$2"
  chmod 0644 "$2"
}
# The case's own home: its global config is the world's plus the secrets
# (and its session logs, relay.jsonl among them, are this case's alone).
world_cfg=$E2E_HOME/.cagent/config.yaml
E2E_HOME=$E2E_TMP/home
mkdir -p "$E2E_HOME/.cagent"
chmod 755 "$E2E_HOME"
cfg=$E2E_HOME/.cagent/config.yaml
secrets_config "$world_cfg" "$cfg"

ws=$(new_workspace echo.test wrong.test)
cat >"$ws/stream.py" <<'PY'
import socket, ssl, time
ctx = ssl.create_default_context()  # SSL_CERT_FILE: the cage's bundle
s = ctx.wrap_socket(socket.create_connection(("api.github.com", 443), timeout=10), server_hostname="api.github.com")
t = time.monotonic()
s.sendall(b"GET /stream HTTP/1.1\r\nHost: api.github.com\r\nAccept: text/event-stream\r\n\r\n")
got = b""
for want in (b"data: 1", b"data: 2"):
    while want not in got:
        piece = s.recv(4096)
        if not piece: break
        got += piece
    print(("first=%.2f " if want == b"data: 1" else "second=%.2f") % (time.monotonic() - t), end="")
print()
PY
cat >"$ws/probe.sh" <<'SH'
# One "key=value" line per probe; answers on one line each.
one() { tr -d '\n'; }
echo "agent_pid=$$"
echo "placeholder=$GH_TOKEN"
printf '%s' "$GH_TOKEN" >/tmp/placeholder-control   # the file grep's control
echo "gh=$(gh api echo 2>&1 | one)"
echo "curl_api=$(curl -sS -m 10 -H "Authorization: Bearer $GH_TOKEN" https://api.github.com/echo 2>&1 | one)"
export GIT_TERMINAL_PROMPT=0
git clone -q https://github.com/private/repo.git /tmp/c1 >/tmp/git1.err 2>&1
echo "git_helper=$? $(cat /tmp/c1/README 2>/dev/null) $(one </tmp/git1.err)"
GIT_CONFIG_COUNT=0 git clone -q https://github.com/private/repo.git /tmp/c2 >/tmp/git2.err 2>&1
echo "git_nohelper=$? $(one </tmp/git2.err)"
echo "echo_test=$(curl -sS -m 10 --http1.1 -H "Authorization: Bearer $GH_TOKEN" https://echo.test/echo 2>&1 | one)"
code=$(curl -s -m 10 -o /tmp/h.out -w '%{http_code}' -H 'Host: echo.test' -H "Authorization: Bearer $GH_TOKEN" https://api.github.com/echo)
echo "hostswap=$code $(one </tmp/h.out)"
curl -sS -m 10 -o /dev/null http://api.github.com/echo 2>/tmp/p80.err; echo "http_api=$? $(one </tmp/p80.err)"
echo "http_echo=$(curl -sS -m 10 -H "Authorization: Bearer $GH_TOKEN" http://echo.test/echo 2>&1 | one)"
code=$(curl -s -m 10 -o /tmp/w.out -w '%{http_code}' -H "Authorization: Bearer $WRONG_TOKEN" https://wrong.test/echo)
echo "wrong=$code $(one </tmp/w.out)"
echo "h2=$(curl -s -m 10 --http2 -o /dev/null -w '%{http_version}' -H "Authorization: Bearer $GH_TOKEN" https://api.github.com/echo)"
echo "stream=$(python3 /workspace/stream.py 2>&1 | one)"
head -c 20000000 /dev/urandom >/tmp/up.bin
echo "up_sha=$(sha256sum </tmp/up.bin | cut -d' ' -f1)"
echo "upload=$(curl -sS -m 60 -X PUT --data-binary @/tmp/up.bin -H "Authorization: Bearer $GH_TOKEN" https://api.github.com/upload 2>&1 | one)"
rm -f /tmp/up.bin
touch /workspace/probed
SH
printf '%s; echo waited=$i\n' "$(cage_wait_file go)" >>"$ws/probe.sh"
chown_workspace "$ws"

# ---- 1. the probes, and the host's greps of the running cage -----------------
export GH_TOKEN=$REAL WRONG_TOKEN=$WRONG_REAL
log_before=$(wc -l <"$WEB21_LOG")
cage_bg "$ws" sh /workspace/probe.sh
if ! wait_for "the cage's probes" 150 test -e "$ws/probed"; then
  not_ok "the cage ran its probes" "$(cat "$E2E_TMP/bg.err")" "$(cat "$E2E_TMP/bg.out")"
  touch "$ws/go"; finish
fi
ctr=$(cage_bg_container)
out=$(cat "$E2E_TMP/bg.out")
val() { sed -n "s/^$1=//p" <<<"$out" | head -n1; }
placeholder=$(val placeholder)
expect_match "the agent's GH_TOKEN is a placeholder" "$placeholder" '^cagent-secret-github-[0-9a-f]{32}$'

# In the container, as root: every file (but /proc, /sys; devices and fifos
# skipped), for all three strings at once (patterns on stdin: a pattern in
# argv would sit in /proc/*/cmdline itself). Output "FILE:MATCH"; the
# placeholder's hits are the control.
pats=$(printf '%s\n%s\n%s\n' "$REAL" "$WRONG_REAL" "$placeholder")
fs_hits=$(docker exec -i -u 0 "$ctr" nice -n 19 grep -rsaoF -D skip --exclude-dir=proc --exclude-dir=sys -f /dev/stdin / <<<"$pats" | sort -u)
# /proc from the host (docker top's host pids): root in the cage lacks
# CAP_SYS_PTRACE, so it cannot read the environ of the agent's processes
# (another uid) nor of the non-dumpable relay; the host's root reads them all.
# Lines "pid NSPID FILE:MATCH", NSPID the pid as the cage sees it.
printf '%s\n' "$pats" >"$E2E_TMP/patterns"   # host side only: not in the workspace
proc_hits= unreadable=0 scanned=0
for p in $(docker top "$ctr" -eo pid | tail -n +2); do
  ns=$(awk '/^NSpid:/ {print $NF}' "/proc/$p/status" 2>/dev/null) || continue
  [[ -n $ns ]] || continue   # gone meanwhile
  scanned=$((scanned + 1))
  cat "/proc/$p/environ" >/dev/null 2>&1 || unreadable=$((unreadable + 1))
  for f in environ cmdline; do
    proc_hits+=$(grep -aoF -f "$E2E_TMP/patterns" "/proc/$p/$f" 2>/dev/null | sed "s|^|pid $ns $f:|")$'\n'
  done
done
inspect=$(docker inspect "$ctr")
sid=$(docker inspect -f '{{index .Config.Labels "cagent.session"}}' "$ctr")
touch "$ws/go"
wait_cage_bg 60
expect_eq "the cage exits 0 after the hand-over" "$CAGE_RC" 0

for s in REAL WRONG_REAL; do
  expect_no_match "the $s value is in no file of the running container" "$fs_hits" "${!s}"
  expect_no_match "…nor in any /proc/*/environ or /proc/*/cmdline" "$proc_hits" "${!s}"
  expect_no_match "…nor in docker inspect" "$inspect" "${!s}"
done
expect_match "control: the same file grep finds the placeholder the agent wrote" "$fs_hits" \
  "/tmp/placeholder-control:$placeholder"
expect_eq "control: the host read the environ of all $scanned processes of the cage" "$unreadable" 0
expect_match "control: the same /proc grep finds it in the agent's environ" "$proc_hits" \
  "pid $(val agent_pid) environ:$placeholder"
expect_match "control: docker inspect shows the placeholder" "$inspect" "GH_TOKEN=$placeholder"
session_dir=$E2E_HOME/.cagent/logs/session-$sid
expect_true "the session's host logs exist ($session_dir)" test -n "$sid" -a -d "$session_dir"
expect_false "the value is in none of the session's host logs (dnsguard, decisions, relay)" \
  grep -rqF -e "$REAL" -e "$WRONG_REAL" "$session_dir"

# The answers the agent got carry digests, never the value.
expect_no_match "no answer the agent got carries the value" "$out" "$REAL|$WRONG_REAL"
expect_match "gh api: api.github.com got gh's Authorization with the real value" "$(val gh)" \
  "\"authorization_sha256\": ?\"($(sha "token $REAL")|$(sha "Bearer $REAL"))\""
expect_match "curl with Bearer \$GH_TOKEN: api.github.com got the real value" "$(val curl_api)" \
  "\"authorization_sha256\": \"$(sha "Bearer $REAL")\""
expect_match "git clone https://github.com/private/repo.git works (helper → placeholder → relay)" \
  "$(val git_helper)" '^0 fetched over https'
expect_match "control: the same clone without the credential helper fails (401: git wants a username)" \
  "$(val git_nohelper)" '^[1-9][0-9]* .*(could not read Username|Authentication failed)'
expect_match "echo.test (allowed, no secret's host) is reached and gets the placeholder as it is" "$(val echo_test)" \
  "\"host\": \"echo.test\".*\"authorization_sha256\": \"$(sha "Bearer $placeholder")\""
expect_match "Host: echo.test on api.github.com's connection: 403 naming the secret" "$(val hostswap)" \
  '^403 .*secret github sent to echo\.test'
relay_log=$(cat "$session_dir/relay.jsonl" 2>/dev/null)
expect_match "…recorded in the session's relay.jsonl" "$relay_log" '"secret":"github","sent_to":"echo\.test"'
expect_match "port 80 to api.github.com is refused" "$(val http_api)" '^[1-9]'
expect_match "control: port 80 to echo.test works" "$(val http_echo)" '"host": "echo\.test"'
expect_match "wrong.test (certificate for other names): 502, hostname mismatch" "$(val wrong)" \
  '^502 .*certificate is not trusted: hostname mismatch'
expect_eq "curl --http2 to api.github.com gets HTTP/1.1" "$(val h2)" 1.1
stream=$(val stream)
if [[ $stream =~ first=([0-9.]+)\ second=([0-9.]+) ]] &&
   awk -v f="${BASH_REMATCH[1]}" -v s="${BASH_REMATCH[2]}" 'BEGIN { exit !(f < 2.0 && s >= 2.9) }'; then
  ok "server-sent events arrive as sent ($stream; the server waits 3 s between them)"
else
  not_ok "server-sent events arrive as sent" "$stream"
fi
expect_match "a 20 MB upload arrives intact" "$(val upload)" \
  "\"body_len\": 20000000, \"body_sha256\": \"$(val up_sha)\""

# What arrived at web21 (its log has every header, real values included).
tail -n +$((log_before + 1)) "$WEB21_LOG" >"$E2E_TMP/arrived.jsonl"
verdict=$(python3 - "$E2E_TMP/arrived.jsonl" "$REAL" "$WRONG_REAL" "$placeholder" <<'PY'
import json, sys
path, real, wrong, ph = sys.argv[1:5]
leaks, hosts, ph_at_echo, wrong_seen, basic_ok = [], set(), 0, 0, 0
for line in open(path).read().splitlines():
    r = json.loads(line)
    h = {k.lower(): v for k, v in r["headers"].items()}
    host = h.get("host", "")
    hosts.add(host)
    blob = json.dumps(h)
    if (real in blob or wrong in blob) and host not in ("api.github.com", "github.com"):
        leaks.append(host)
    if wrong in blob: leaks.append("wrong value at " + host)
    if host == "echo.test" and ph in blob: ph_at_echo += 1
    if host.startswith("wrong.test"): wrong_seen += 1
    if host == "github.com" and r["path"].startswith("/private/") and h.get("authorization", "").startswith("Basic "):
        basic_ok += 1
print(f"leaks={leaks} ph_at_echo={ph_at_echo} wrong_seen={wrong_seen} basic={basic_ok} hosts={sorted(hosts)}")
PY
)
expect_match "the real value arrived at its own hosts only" "$verdict" '^leaks=\[\] '
expect_match "…and the placeholder did arrive at echo.test (HTTPS and HTTP: control)" "$verdict" 'ph_at_echo=[2-9]'
expect_match "nothing reached the server as wrong.test" "$verdict" 'wrong_seen=0 '
expect_match "git's requests to github.com carried Basic credentials" "$verdict" 'basic=[1-9]'

# ---- 2. a missing source ------------------------------------------------------
since=$(date +%s.%N)
err=$(cd "$ws" && env -u GH_TOKEN HOME="$E2E_HOME" CAGENT_HOME="$E2E_HOME/.cagent" CAGENT_IMAGE="$CAGENT_IMAGE_TAG" \
  timeout 60 "$E2E_CAGENT" --no-update $(accept_tests_config "$ws") --arg="--network=$NET" \
  --arg="--label=cagent.e2e.run=$RUN_ID" -- true 2>&1 </dev/null)
rc=$?
expect_eq "GH_TOKEN unset: exit 2" "$rc" 2
expect_match "…one line naming the secret" "$err" '^[^'$'\n'']*github[^'$'\n'']*GH_TOKEN[^'$'\n'']*$'
expect_eq "…and no container was created" "$(containers_created_since "$since")" ""

# ---- 3. the docker-group user, user-defined network, no dns_resolvers -------
ucfg=$E2E_TMP/user-secrets.yaml
secrets_config "$E2E_SRC/../../../config-default.yaml" "$ucfg"
grep -qx 'dns_resolvers: \[\]' "$ucfg" || die "the built-in default names dns_resolvers"
# (A workspace without .cagent.yaml, as the user's own: the names by -d.)
uws=$(mktemp -d "$E2E_TMP/uws.XXXXXX") || die "mktemp failed"
chown_workspace "$uws"
E2E_USER_ENV=(GH_TOKEN="$REAL" WRONG_TOKEN="$WRONG_REAL")
uout=$(user_cage "$uws" -c "$ucfg" --arg="--dns=$DNS4" -d echo.test -d wrong.test -- \
  'echo "curl_api=$(curl -sS -m 10 -H "Authorization: Bearer $GH_TOKEN" https://api.github.com/echo 2>&1 | tr -d "\n")"')
expect_eq "docker-group user, no dns_resolvers: cagent exits 0" "$CAGE_RC" 0
expect_match "…api.github.com got the real value for the placeholder" "$uout" \
  "\"authorization_sha256\": \"$(sha "Bearer $REAL")\""
expect_no_match "…and the answer does not carry it" "$uout" "$REAL"
((CAGE_RC == 0)) || cage_err
finish
