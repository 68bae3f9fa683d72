#!/usr/bin/env bash
# End-to-end smoke test of the cagent command against a real Docker engine.
#   smoke.sh PATH/TO/cagent
# Builds the image when missing or outdated (first run: several minutes),
# then checks: `cagent -- true`, exit-status passthrough, a binary-safe
# pipeline without a TTY, ignore/readonly mounts, the blocked-lookups
# summary, SIGTERM stopping the container, and that nothing is left behind.
# Exits 77 ("skipped") only when no Docker engine answers.
set -euo pipefail
cagent=${1:?usage: smoke.sh PATH/TO/cagent}

if ! timeout 20 docker info >/dev/null 2>&1; then
  echo "skipped: no Docker engine reachable (docker info failed)"
  exit 77
fi

tmp=$(mktemp -d /tmp/cagent-e2e.XXXXXX)
ws=$tmp/ws
export CAGENT_HOME=$tmp/home
# Never the user's image tag or home volumes: the test's own (the image
# build reuses Docker's layer cache whatever the tag).
export CAGENT_IMAGE=${CAGENT_IMAGE:-cagent-e2e:latest}
export CAGENT_HOME_VOLUME=cagent-smoke-home-$$
# Every container this test starts carries this label (passed with --arg), so
# it finds and cleans up its own sessions and never anyone else's.
mark="cagent-e2e-smoke=$$-$RANDOM"
cleanup() {
  local ids
  ids=$(docker ps -aq --filter "label=$mark" 2>/dev/null || true)
  [[ -n $ids ]] && docker rm -f $ids >/dev/null 2>&1 || true
  ids=$(docker volume ls -q --filter "label=cagent.home=$CAGENT_HOME_VOLUME" 2>/dev/null || true)
  [[ -n $ids ]] && docker volume rm -f $ids >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

mkdir -p "$ws/src" "$ws/.git"
echo 'SECRET=hunter2' >"$ws/.env"
echo 'not a secret' >"$ws/README"
echo 'ref: refs/heads/main' >"$ws/.git/HEAD"
echo 'int main(void){return 0;}' >"$ws/src/main.c"
mkdir -p "$ws/dir with space"
echo 'spaced' >"$ws/dir with space/file.txt"
# The agent takes the uid of the workspace owner; give it a non-root owner so
# writes into /workspace are what a user sees.
chown -R 1000:1000 "$ws"
cd "$ws"

# 1. First run: builds the image if needed (the CA bundle of this host goes
#    into the build, so npm works behind the TLS-intercepting egress).
status=0
"$cagent" --ca-cert system --arg "--label=$mark" -- true </dev/null >"$tmp/out1" 2>"$tmp/err1" || status=$?
[[ $status -eq 0 ]] || { cat "$tmp/err1" >&2; tail -n 30 "$CAGENT_HOME"/logs/build-*.log 2>/dev/null >&2 || true; fail "cagent -- true exited $status"; }
[[ ! -s $tmp/out1 ]] || fail "cagent -- true printed on stdout: $(head -c 200 "$tmp/out1")"
pass "cagent -- true"

run() { "$cagent" --no-update --ca-cert system --arg "--label=$mark" "$@"; }

# 2. Exit status passthrough.
status=0
run -- sh -c 'exit 7' </dev/null >/dev/null 2>&1 || status=$?
[[ $status -eq 7 ]] || fail "exit status: expected 7, got $status"
pass "exit status passed through"

# 3. Pipeline: binary-safe both ways, no TTY.
head -c 262144 /dev/urandom >"$tmp/in.bin"
run -- cat <"$tmp/in.bin" >"$tmp/out.bin" 2>"$tmp/err3" || { cat "$tmp/err3" >&2; fail "pipeline run failed"; }
cmp -s "$tmp/in.bin" "$tmp/out.bin" || fail "pipeline output differs from input ($(stat -c %s "$tmp/out.bin") bytes)"
run -- sh -c 'test ! -t 0 && test ! -t 1' </dev/null >/dev/null 2>&1 || fail "a TTY was allocated without one"
printf 'a\nb\n' | run -- wc -l 2>/dev/null | grep -qx 2 || fail "stdin line count through the cage"
pass "binary-safe pipeline without a TTY"

# 4. Mount plan: .env shadowed, .git read-only, odd paths, workspace writable.
#    Each refusal comes with its control from the same run: the run exits 0
#    and prints its end marker, a neighbour of .env reads with its content,
#    .git/HEAD itself reads, and a plain workspace file is writable, so an
#    empty .env or a failed write is the mount plan's doing, not a failed run.
status=0
got=$(run -- sh -c '
  e=$(cat /workspace/.env 2>&1); r=$?; printf "env=[%s] env-rc=%s\n" "$e" "$r"
  printf "readme=[%s]\n" "$(cat /workspace/README 2>&1)"
  printf "head=[%s]\n" "$(cat /workspace/.git/HEAD 2>&1)"
  if (echo x > /workspace/.git/HEAD) 2>/dev/null; then echo git-write=yes; else echo git-write=no; fi
  if (echo control > /workspace/src/control.txt) 2>/dev/null; then echo ws-write=yes; else echo ws-write=no; fi
  echo end-of-mount-checks' </dev/null 2>"$tmp/err4") || status=$?
[[ $status -eq 0 && $got == *end-of-mount-checks* ]] || { cat "$tmp/err4" >&2; fail "mount-plan run: exit $status, output: $got"; }
[[ $got == *"readme=[not a secret]"* ]] || fail "control: README, next to .env, does not read in the cage: $got"
[[ $got == *"env=[] env-rc=0"* ]] || fail ".env content visible (or unreadable) in the cage: $got"
[[ $got == *"head=[ref: refs/heads/main]"* ]] || fail "control: .git/HEAD does not read in the cage: $got"
[[ $got == *ws-write=yes* && $(cat "$ws/src/control.txt") == control ]] || fail "control: the workspace is not writable in the same run: $got"
[[ $got == *git-write=no* ]] || fail ".git is writable in the cage"
grep -q 'refs/heads/main' "$ws/.git/HEAD" || fail ".git/HEAD changed on the host"
[[ $(cat "$ws/.env") == 'SECRET=hunter2' ]] || fail ".env changed on the host"
got=$(run -- cat "/workspace/dir with space/file.txt" </dev/null 2>/dev/null)
[[ $got == spaced ]] || fail "path with a space: got '$got'"
run -- sh -c 'echo made-in-cage > /workspace/src/new.txt' </dev/null >/dev/null 2>&1 || fail "workspace not writable"
[[ $(cat "$ws/src/new.txt") == made-in-cage ]] || fail "write in the cage not visible on the host"
pass "ignore/readonly mounts"

# 5. Blocked lookups are summarized at exit.
run -- sh -c 'getent hosts blocked-by-cagent.example >/dev/null 2>&1; true' </dev/null >/dev/null 2>"$tmp/err5" || true
grep -q 'blocked [0-9]* lookups\?: blocked-by-cagent.example' "$tmp/err5" ||
  { cat "$tmp/err5" >&2; fail "no blocked-lookups summary"; }
pass "blocked-lookups summary"

# 6. SIGTERM stops the container and cagent cleans up.
# Started directly (not through the run function) so $! is cagent itself.
"$cagent" --no-update --ca-cert system --arg "--label=$mark" -- sleep 300 </dev/null >/dev/null 2>"$tmp/err6" &
pid=$!
name=
for _ in $(seq 1 300); do  # bounded: ≤ 60 s
  name=$(docker ps --filter "label=$mark" --format '{{.Names}}' | head -n1)
  [[ -n $name ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
[[ -n $name ]] || { cat "$tmp/err6" >&2; fail "the sleep session never started"; }
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[[ $status -ne 0 ]] || fail "cagent exited 0 after SIGTERM"
left=$(docker ps -aq --filter "name=^$name\$")
[[ -z $left ]] || { cat "$tmp/err6" >&2; docker ps -a --filter "name=^$name\$" >&2; fail "container $name still exists after SIGTERM"; }
grep -q 'session stopped' "$tmp/err6" || fail "cagent did not report the stop"
pass "SIGTERM stopped $name (cagent exit $status)"

# 7. Nothing left behind.
left=$(docker ps -aq --filter "label=$mark")
[[ -z $left ]] || fail "containers left: $left"
if [[ -d $CAGENT_HOME/sessions ]] && [[ -n $(ls -A "$CAGENT_HOME/sessions") ]]; then
  fail "session directories left: $(ls "$CAGENT_HOME/sessions")"
fi
pass "no containers or session directories left"
echo "cagent e2e smoke: all passed"
