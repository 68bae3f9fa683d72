#!/usr/bin/env bash
# Ask mode with a scripted approver: `cagent watch SESSION` with its stdin a
# pipe (the same code path as keys on a terminal) decides the held lookups
# of a cage started with --ask --ask-timeout 3.
#   - no watcher: a denied name fails at once, EDE "blocked by cagent policy"
#     (control: an allowed name resolves in the same cage);
#   - watcher, key a: the agent's ONE curl to a denied name succeeds, no
#     retry; the time from the key to curl's end is printed (# measured:);
#   - watcher, no key: denied after ask_timeout, EDE "pending approval timed
#     out" (control: the watcher saw it held, then timed_out);
#   - watcher, key d: denied at once, EDE "blocked by cagent policy";
#   - 1 000 distinct denied names with a watcher attached: every query is
#     answered, dnsguard's VmRSS stays bounded, an allowed name still
#     resolves (control: the watcher saw every flood name);
#   - end of the watcher's input detaches it (no control exec left);
#   - key w saves to the workspace config, key g to the global one; a fresh
#     session without ask resolves both, and not the name only allowed for
#     the session (control).
# The agent cannot reach the control socket: live_allow covers it (every way
# in, as the agent), not repeated here.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
# Key g writes the run's global config, which every case reads: put it back.
cp "$E2E_HOME/.cagent/config.yaml" "$E2E_TMP/global-config.yaml"
E2E_EXIT_HOOKS+=("cp '$E2E_TMP/global-config.yaml' '$E2E_HOME/.cagent/config.yaml'")

# The cage runs the commands the host hands it, one at a time: cmd.N in
# the workspace, its output (and "rc=N") in res.N once it is done.
CAGE_LABEL=$E2E_NAME-$$-$RANDOM
run_cagent "$ws" --ask --ask-timeout 3 --arg="--label=cagent.e2e.cage=$CAGE_LABEL" -- sh -c '
  i=1
  while [ $i -le 40 ]; do
    w=0; while [ ! -e /workspace/cmd.$i ] && [ $w -lt 3000 ]; do sleep 0.05; w=$((w+1)); done
    [ -e /workspace/cmd.$i ] || exit 3
    grep -qx exit /workspace/cmd.$i && exit 0
    sh /workspace/cmd.$i >/workspace/out.$i 2>&1; echo "rc=$?" >>/workspace/out.$i
    mv /workspace/out.$i /workspace/res.$i
    i=$((i+1))
  done' </dev/null >"$E2E_TMP/bg.out" 2>"$E2E_TMP/bg.err" &
CAGE_PID=$!
E2E_EXIT_HOOKS+=("kill $CAGE_PID 2>/dev/null")
STEP=0
send() {  # CMD — hand the cage its next command (no wait)
  STEP=$((STEP + 1))
  printf '%s\n' "$1" >"$ws/cmd.$STEP.tmp" && chmod 644 "$ws/cmd.$STEP.tmp" && mv "$ws/cmd.$STEP.tmp" "$ws/cmd.$STEP"
}
# (Both in this shell, never in $(…): STEP counts here.)
OUT=
result() {  # — wait for the last command's output, into OUT
  OUT=
  wait_for "the cage to run step $STEP" 60 test -e "$ws/res.$STEP" || { cat "$E2E_TMP/bg.err" >&2; return 1; }
  OUT=$(cat "$ws/res.$STEP")
}
in_cage() { send "$1"; result; }
# A lookup with dig (which prints the Extended DNS Error), timed in ms.
dig_timed() {  # NAME
  printf 's=$(date +%%s%%N); dig +time=10 +tries=1 %s A; echo "ms=$(( ($(date +%%s%%N) - s) / 1000000 ))"' "$1"
}

wait_for "the ask cage to run" 120 sh -c "[ -n \"\$(docker ps -q --filter label=cagent.e2e.cage=$CAGE_LABEL)\" ]"
container=$(cage_bg_container)
session=${container#cagent-}
[[ -n $session ]] || { cat "$E2E_TMP/bg.err" >&2; die "no ask cage"; }

# ---- no watcher attached: denied at once, with the policy's text -------------
in_cage "$(dig_timed pypi.test); getent ahostsv4 allowed.test | head -n1"; out=$OUT
expect_match "control: an allowed name resolves in the ask cage" "$out" '198\.51\.100\.10 '
expect_match "no watcher: the denied name gets the policy's EDE" "$out" 'blocked by cagent policy'
expect_no_match "…not the pending-approval one" "$out" 'pending approval'
ms=$(grep -o 'ms=[0-9]*' <<<"$out" | cut -d= -f2)
expect_true "…at once (${ms:-?} ms, the ask_timeout is 3 s)" test "${ms:-99999}" -lt 1000

# ---- a scripted approver --------------------------------------------------------
# cagent watch SESSION: keys through a FIFO held open on fd 7, events in
# watch.out, its own lines in watch.err.
WATCH_PID=
start_watch() {
  rm -f "$E2E_TMP/keys" && mkfifo "$E2E_TMP/keys"
  : >"$E2E_TMP/watch.out"; : >"$E2E_TMP/watch.err"
  cagent_env "$E2E_CAGENT" watch "$session" <"$E2E_TMP/keys" >"$E2E_TMP/watch.out" 2>"$E2E_TMP/watch.err" &
  WATCH_PID=$!
  E2E_EXIT_HOOKS+=("kill $WATCH_PID 2>/dev/null")
  exec 7>"$E2E_TMP/keys"
  wait_for "cagent watch to attach" 30 grep -q "watching session $session" "$E2E_TMP/watch.err" ||
    cat "$E2E_TMP/watch.err" >&2
}
# A key answers only the prompt on screen, and only once it has been shown
# for 0.5 s (cagent watch discards earlier keys: launcher/host/REFERENCE.md,
# "Ask mode"): wait for the prompt naming NAME, then 0.6 s, then one key.
key_for() {  # NAME-ERE KEY
  local deadline=$((SECONDS + 20))
  until grep -qE "^cagent watch: $session .*$1 A\\? a allow" "$E2E_TMP/watch.err"; do
    ((SECONDS < deadline)) || { say "cagent watch never asked about /$1/"; return 1; }
    sleep 0.02
  done
  sleep 0.6
  printf '%s' "$2" >&7
}
stop_watch() {  # end of input: cagent watch detaches and exits
  exec 7>&-
  local deadline=$((SECONDS + 20))
  while kill -0 "$WATCH_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  WATCH_RC=0; wait "$WATCH_PID" || WATCH_RC=$?
}
# Polls watch.out for a line (every 20 ms, at most 20 s): the key must come
# within the 3 s hold.
watch_shows() {  # ERE
  local deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    grep -qE "$1" "$E2E_TMP/watch.out" && return 0
    sleep 0.02
  done
  say "cagent watch never printed /$1/"; return 1
}
control_execs() {  # dnsguard --control processes in the cage (the watcher's)
  docker exec -u 0 "$container" sh -c 'for p in /proc/[0-9]*; do
    tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^/usr/local/bin/dnsguard --control" && echo ${p#/proc/}; done' | wc -l
}

start_watch
expect_eq "cagent watch runs one control exec in the cage" "$(control_execs)" 1

# ---- key a: the agent's single curl succeeds --------------------------------------
send 'curl -sS -m 20 http://denied.test/; echo "curl=$?"; date +%s%N >/workspace/t_done'
if watch_shows "^$session held denied\.test A "; then
  key_for 'denied\.test' a && t_key=$(date +%s%N)
fi
result; out=$OUT
expect_match "key a: the single curl succeeded" "$out" 'curl=0'
expect_match "…with the page" "$out" 'cagent-e2e web19'
expect_eq "…in one attempt (one curl, no retry in the command)" "$(grep -c '^curl=' <<<"$out")" 1
t_done=$(cat "$ws/t_done" 2>/dev/null || echo 0)
if [[ -n ${t_key:-} && $t_done -gt ${t_key:-0} ]]; then
  measured=$(( (t_done - t_key) / 1000000 ))
  printf '# measured: %s ms from the key (a) to the held curl'"'"'s completion\n' "$measured"
  say "key a → curl done: $measured ms"
fi
expect_true "the watcher saw it allowed" watch_shows "^$session allowed denied\.test"
expect_match "…and said what it did" "$(cat "$E2E_TMP/watch.err")" "session $session: allowed denied\.test \(until the session ends\)"

# ---- no key: denied after ask_timeout ------------------------------------------------
in_cage "$(dig_timed example.net.test)"; out=$OUT
expect_match "no key: denied with 'pending approval timed out'" "$out" 'pending approval timed out'
ms=$(grep -o 'ms=[0-9]*' <<<"$out" | cut -d= -f2)
expect_true "…after the 3 s hold (${ms:-?} ms)" test "${ms:-0}" -ge 2500 -a "${ms:-0}" -lt 9000
expect_true "control: the watcher saw it held" grep -qE "^$session held example\.net\.test A " "$E2E_TMP/watch.out"
expect_true "…then timed out" watch_shows "^$session timed_out example\.net\.test"

# ---- key d: denied at once ---------------------------------------------------------------
send "$(dig_timed extra.test)"
watch_shows "^$session held extra\.test A " && key_for 'extra\.test' d
result; out=$OUT
expect_match "key d: denied with the policy's text" "$out" 'blocked by cagent policy'
expect_no_match "…not as timed out" "$out" 'pending approval'
ms=$(grep -o 'ms=[0-9]*' <<<"$out" | cut -d= -f2)
expect_true "…before the hold's end (${ms:-?} ms)" test "${ms:-99999}" -lt 2500
expect_true "the watcher saw it refused" watch_shows "^$session refused extra\.test"

# ---- 1 000 distinct denied names under ask mode --------------------------------------------
vmrss() {  # dnsguard's (the server's, not a --control client's) VmRSS in kB
  docker exec -u 0 "$container" sh -c 'for p in /proc/[0-9]*; do
    [ "$(cat $p/comm 2>/dev/null)" = dnsguard ] || continue
    tr "\0" " " <$p/cmdline | grep -q -- --control && continue
    awk "/^VmRSS/ {print \$2}" $p/status; done' | head -n1
}
rss_before=$(vmrss)
cat >"$ws/flood.py" <<'PY'
# 1 000 distinct names, one UDP query each, paced (1 ms apart, so the
# kernel's socket buffers drop none); every answer collected by ID.
import socket, struct, time
N = 1000
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
def query(i):
    name = b"".join(bytes([len(l)]) + l for l in (b"n%d" % i, b"askflood", b"test")) + b"\0"
    # With an OPT record: the answer can carry the Extended DNS Error.
    return (struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 1) + name + struct.pack(">HH", 1, 1)
            + b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0))
got = {}
def drain():
    while True:
        try:
            data = s.recv(4096)
        except BlockingIOError:
            return
        if len(data) >= 4:
            got[struct.unpack(">H", data[:2])[0]] = data
start = time.time()
for i in range(N):
    s.sendto(query(i), ("127.0.0.1", 53))
    drain()
    time.sleep(0.001)
deadline = time.time() + 20
while len(got) < N and time.time() < deadline:
    drain()
    time.sleep(0.01)
print("answered=%d nxdomain=%d timed_out=%d seconds=%.1f" % (
    len(got), sum(1 for d in got.values() if d[3] & 15 == 3),
    sum(1 for d in got.values() if b"pending approval timed out" in d), time.time() - start))
PY
chown "$E2E_UID:$E2E_GID" "$ws/flood.py"
in_cage 'python3 /workspace/flood.py; getent hosts allowed.test; echo "allowed=$?"'; out=$OUT
rss_after=$(vmrss)
say "flood: $(grep answered= <<<"$out")"
printf '# measured: dnsguard VmRSS %s kB before, %s kB after 1000 denied names under ask mode\n' "$rss_before" "$rss_after"
expect_match "every one of the 1000 queries got an answer" "$out" 'answered=1000 '
expect_match "…each a denial (NXDOMAIN)" "$out" 'nxdomain=1000 '
expect_true "dnsguard's VmRSS grew by less than 16 MiB (${rss_before:-?} → ${rss_after:-?} kB)" \
  test -n "$rss_before" -a -n "$rss_after" -a "$(( ${rss_after:-0} - ${rss_before:-0} ))" -lt 16384
expect_match "control: an allowed name still resolves after the flood" "$out" 'allowed=0'
timed_out=$(grep -o 'timed_out=[0-9]*' <<<"$out" | cut -d= -f2)
expect_true "control: some flood names were held, then timed out (${timed_out:-?}; ask mode held them)" \
  test "${timed_out:-0}" -gt 0
expect_true "…at most dnsguard's 64 held names (the rest denied at once)" test "${timed_out:-999}" -le 64
seen=$(grep -oE "^$session (held|denied) n[0-9]+\.askflood\.test" "$E2E_TMP/watch.out" | awk '{print $3}' | sort -u | wc -l)
held=$(grep -cE "^$session held n[0-9]+\.askflood\.test" "$E2E_TMP/watch.out")
say "the watcher saw $seen flood names ($held held, the rest denied at once)"
# The approver is not buried: held names one line each (at most 64), the
# names denied at once only a few a second (dnsguard sends 10 a second, cagent
# watch prints 5), the rest folded into counts.
denied_lines=$(grep -cE "^$session denied n[0-9]+\.askflood\.test" "$E2E_TMP/watch.out")
folded=$(grep -cE "and [0-9]+ (more denied names|earlier events dnsguard did not send)" "$E2E_TMP/watch.out")
expect_true "control: the watcher was told of the held flood names (${held:-0})" test "${held:-0}" -gt 0
expect_true "…and of few of those denied at once (${denied_lines:-?} lines)" test "${denied_lines:-999}" -le 40
expect_true "…the rest folded into counts (${folded:-0} lines)" test "${folded:-0}" -gt 0

# ---- end of input detaches the watcher --------------------------------------------------
stop_watch
expect_eq "cagent watch exits 0 at the end of its input" "$WATCH_RC" 0
expect_eq "…and no control exec is left in the cage" "$(control_execs)" 0

# ---- keys w and g: saved, then allowed ---------------------------------------------------
start_watch
send 'curl -sS -m 20 http://pypi.test/; echo "curl=$?"'
watch_shows "^$session held pypi\.test A " && key_for 'pypi\.test' w
result; out=$OUT
expect_match "key w: the held curl succeeded" "$out" 'curl=0'
expect_match "key w: pypi.test is in the workspace config" "$(cat "$ws/.cagent.yaml")" 'pypi\.test'
expect_no_match "…not in the global one" "$(cat "$E2E_HOME/.cagent/config.yaml")" 'pypi\.test'
send 'curl -sS -m 20 http://wild.test/; echo "curl=$?"'
watch_shows "^$session held wild\.test A " && key_for 'wild\.test' g
result; out=$OUT
expect_match "key g: the held curl succeeded" "$out" 'curl=0'
expect_match "key g: wild.test is in the global config" "$(cat "$E2E_HOME/.cagent/config.yaml")" '"?wild\.test"?'
expect_no_match "…not in the workspace one" "$(cat "$ws/.cagent.yaml")" 'wild\.test'
expect_match "the watcher said where it saved" "$(cat "$E2E_TMP/watch.err")" "allowed wild\.test \(saved to .*config\.yaml\)"

send exit
wait_cage_bg 60
expect_eq "the ask session exits 0" "$CAGE_RC" 0
deadline=$((SECONDS + 20))
while kill -0 "$WATCH_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
expect_false "cagent watch SESSION ends with its cage" kill -0 "$WATCH_PID"
expect_match "…saying so" "$(cat "$E2E_TMP/watch.err")" "session $session: its cage is gone"
exec 7>&-

# ---- a fresh session without ask: the saved names resolve -------------------------------
out=$(cage "$ws" 'for n in pypi.test wild.test denied.test; do echo "$n=$(curl -sS -m 10 http://$n/ 2>/dev/null)"; done')
expect_eq "the next session (no ask) exits 0" "$CAGE_RC" 0
expect_match "the name saved by w resolves and connects" "$out" 'pypi\.test=cagent-e2e web19'
expect_match "the name saved by g resolves and connects" "$out" 'wild\.test=cagent-e2e web12'
expect_match "control: the name a allowed for that session only is denied again" "$out" 'denied\.test=$'
finish
