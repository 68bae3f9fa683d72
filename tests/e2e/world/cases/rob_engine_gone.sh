#!/usr/bin/env bash
# The Docker engine goes away during a session: dockerd killed (kill -9),
# stopped and started again (what `systemctl restart docker` does), killed
# and left down. cagent exits within seconds with status 125 and one line
# saying the engine went away (not "docker run failed", not the cage's 143),
# and nothing is left half-done: no cagent or docker run process, no session
# record, the cage's command gone from the host even while the engine is
# down (the owner socket, not the engine, stops it), and once the engine is
# back no container of the session. As root and as the ordinary
# docker-group user, with stdin from /dev/null and in a pipeline.
# Controls in the same setup: before each fault the cage runs and its record
# exists; with the engine untouched a session ends with the command's
# status (7), and a command's own 125 is "docker run failed", not the engine.
#
# The engine is restarted the way it runs here (its own command line, as
# setup.sh --docker starts it); an engine under systemd is not touched. A
# restart without live-restore kills the world's servers: they are started
# again at the end, whatever happened (EXIT hook), and CMake runs this case
# after every other one but cli_reset.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

[[ $(id -u) == 0 ]] || skip "stopping and starting dockerd needs root"
engine_pid=$(pidof dockerd) || skip "no dockerd process here (the engine runs elsewhere)"
[[ $engine_pid != *' '* ]] || skip "more than one dockerd runs here"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker 2>/dev/null; then
  skip "dockerd is managed by systemd here; this case restarts it by hand and would fight systemd"
fi
# Its command line, to start it again the same way (setup.sh --docker: setsid dockerd).
mapfile -d '' dockerd_argv <"/proc/$engine_pid/cmdline"
((${#dockerd_argv[@]})) || skip "cannot read dockerd's command line"
dockerd_log=/var/log/dockerd.log

engine_answers() { timeout 5 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
# The processes the engine started (its containerd), noted before a fault.
engine_children=
# dockerd as setup.sh --docker starts it, holding no descriptor of this
# test's: the case runs under `flock /tmp/cagent-e2e.lock`, whose descriptor
# every child inherits, and an engine holding it would keep the lock after
# the test ends.
engine_daemon() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
  done
  exec setsid "${dockerd_argv[@]}" >>"$dockerd_log" 2>&1 </dev/null
}
engine_children_gone() { local p; for p in $engine_children; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
engine_start() {
  if ! pidof dockerd >/dev/null; then
    # A killed dockerd's containerd outlives it for a few seconds; a dockerd
    # started meanwhile finds it "still running", cannot connect to it and
    # gives up ("timeout waiting for containerd to start").
    # shellcheck disable=SC2086
    wait_for "the killed engine's containerd to end" 30 engine_children_gone || kill -KILL $engine_children 2>/dev/null
    ( engine_daemon ) &
  fi
  wait_for "the engine to answer again" 90 engine_answers
}
# Waits until no dockerd process is left (bounded).
engine_gone() {
  local deadline=$((SECONDS + $1))
  while pidof dockerd >/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  ! pidof dockerd >/dev/null
}
# The world's servers (labelled with the run id, no cagent.session label)
# that the restart stopped: started again, then polled until they answer.
world_servers_back() {
  local id stopped=()
  for id in $(docker ps -aq --filter "label=cagent.e2e.run=$RUN_ID" --filter status=exited); do
    [[ -z $(docker inspect -f '{{index .Config.Labels "cagent.session"}}' "$id" 2>/dev/null) ]] && stopped+=("$id")
  done
  ((${#stopped[@]})) && docker start "${stopped[@]}" >/dev/null
  wait_for "web10" 60 curl -sf -m 1 -o /dev/null "http://198.51.100.10/" &&
    wait_for "the world's DNS server" 60 bash -c "kdig +time=1 +retry=0 @$DNS4 allowed.test A | grep -q 'status: NOERROR'"
}
restore_engine() {
  engine_start || say "could not start dockerd again; see $dockerd_log"
  world_servers_back || say "the world's servers did not come back"
}
E2E_EXIT_HOOKS+=("restore_engine")

now_ms() { echo $(($(date +%s%N) / 1000000)); }
timings=()

# A session of $who ($1: root or user), stdin from /dev/null or a pipe
# ($2: plain or pipe), running `sleep $3` once it wrote /workspace/started;
# cagent's status and the time it ended go to $E2E_TMP/end.
start_session() {
  local who=$1 form=$2 marker=$3 label=$4 ws=$5
  local cmd="cat >/dev/null; touch /workspace/started; exec sleep $marker"
  local run=(run_cagent)
  [[ $who == user ]] && run=(user_cagent)
  rm -f "$E2E_TMP/end"
  if [[ $form == plain ]]; then
    ( "${run[@]}" "$ws" --arg="--label=cagent.e2e.cage=$label" -- sh -c "$cmd" </dev/null \
        >"$E2E_TMP/out" 2>"$E2E_TMP/err"
      echo "$? $(now_ms)" >"$E2E_TMP/end" ) &
  else
    ( printf 'from the pipe\n' | "${run[@]}" "$ws" --arg="--label=cagent.e2e.cage=$label" -- sh -c "$cmd" \
        2>"$E2E_TMP/err" | cat >"$E2E_TMP/out"
      echo "${PIPESTATUS[1]} $(now_ms)" >"$E2E_TMP/end" ) &
  fi
  E2E_EXIT_HOOKS+=("kill $! 2>/dev/null")
}
cage_command_running() { pgrep -f "^sleep $1\$" >/dev/null; }
session_processes() { pgrep -f "cagent.e2e.cage[=]$1"; }

workspace_of() {
  local ws
  if [[ $1 == root ]]; then
    new_workspace allowed.test
  else
    ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
    chown_workspace "$ws"
    printf '%s\n' "$ws"
  fi
}
sessions_of() { [[ $1 == root ]] && echo "$E2E_HOME/.cagent/sessions" || echo "$E2E_USER_HOME/.cagent/sessions"; }

for who in root user; do
  # ---- controls: the engine untouched --------------------------------------
  ws=$(workspace_of "$who")
  run=(run_cagent)
  [[ $who == user ]] && run=(user_cagent)
  rc=0; "${run[@]}" "$ws" -- sh -c 'exit 7' </dev/null >/dev/null 2>"$E2E_TMP/err" || rc=$?
  expect_eq "$who: control: the engine untouched, the command's status (7)" "$rc" 7
  expect_no_match "$who: control: …and nothing about the engine" "$(cat "$E2E_TMP/err")" 'engine went away'
  rc=0; "${run[@]}" "$ws" -- sh -c 'exit 125' </dev/null >/dev/null 2>"$E2E_TMP/err" || rc=$?
  expect_eq "$who: control: a command's own 125 is 125" "$rc" 125
  expect_no_match "$who: control: …and is not taken for the engine going away" "$(cat "$E2E_TMP/err")" 'engine went away'

  for fault in kill9 restart down; do
    # Both forms for each fault, across the two users.
    form=plain
    [[ $who/$fault == root/restart || $who/$fault == user/kill9 || $who/$fault == user/down ]] && form=pipe
    what="$who, $fault, $form"
    marker=$((600000 + RANDOM * 8 + ${#timings[@]}))
    label=engine-$who-$fault-$$
    sessions=$(sessions_of "$who")
    ws=$(workspace_of "$who")
    start_session "$who" "$form" "$marker" "$label" "$ws"
    if ! wait_for "the $what cage to start" 120 test -e "$ws/started"; then
      not_ok "$what: the cage started" "$(cat "$E2E_TMP/err")"; continue
    fi
    id=$(docker inspect -f '{{index .Config.Labels "cagent.session"}}' \
      "$(docker ps -q --filter "label=cagent.e2e.cage=$label")" 2>/dev/null)
    expect_ne "$what: control: the cage runs, with its session label" "$id" ""
    expect_true "$what: control: its command runs on the host" cage_command_running "$marker"
    expect_true "$what: control: its session record exists" test -d "$sessions/$id"

    pid=$(pidof dockerd)
    engine_children=$(pgrep -P "$pid" | tr '\n' ' ')
    t0=$(now_ms)
    case $fault in
      kill9 | down) kill -KILL "$pid" ;;
      restart)
        kill -TERM "$pid"
        engine_gone 60 || say "dockerd did not stop within 60 s"
        stop_ms=$(($(now_ms) - t0))
        engine_start || say "dockerd did not come back" ;;
    esac
    wait_for "cagent to end ($what)" 60 test -s "$E2E_TMP/end"
    if [[ ! -s $E2E_TMP/end ]]; then
      not_ok "$what: cagent ended after the engine went away" "$(cat "$E2E_TMP/err")"
      engine_start; continue
    fi
    read -r rc t1 <"$E2E_TMP/end"
    took=$((t1 - t0))
    timings+=("$what: ${took} ms${stop_ms:+ (dockerd itself stopped after ${stop_ms} ms)}")
    unset stop_ms
    err=$(cat "$E2E_TMP/err")
    say "$what: cagent said: $(grep -m1 'cagent: the Docker engine' <<<"$err" || tail -n1 <<<"$err")"
    expect_eq "$what: cagent exits 125" "$rc" 125
    expect_match "$what: …saying the engine went away, and what to do" "$err" \
      'cagent: the Docker engine went away during the session \([^)]*\); the cage stops itself.*run cagent again'
    expect_no_match "$what: …not that docker run failed" "$err" 'docker run failed'
    expect_true "$what: …within 10 s (took ${took} ms)" test "$took" -le 10000
    expect_false "$what: no cagent or docker run process of the session left" session_processes "$label"
    # With the engine still down after kill -9: the owner socket stops the cage.
    wait_for "the cage's command to end" 15 sh -c "! pgrep -f '^sleep $marker\$'"
    expect_false "$what: the cage's command is gone from the host$([[ $fault != restart ]] && echo ', the engine still down')" \
      cage_command_running "$marker"
    expect_false "$what: the session record is gone" test -e "$sessions/$id"
    if [[ $fault == down ]]; then
      sleep 5  # left down a while: nothing comes back or hangs meanwhile
      expect_false "$what: after 5 s with the engine down, still nothing of the session runs" \
        sh -c "pgrep -f '^sleep $marker\$' || pgrep -f 'cagent.e2e.cage[=]$label'"
    fi
    engine_start || { not_ok "$what: the engine came back" "see $dockerd_log"; continue; }
    wait_for "the session's container to be removed" 30 sh -c "[ -z \"\$(docker ps -aq --filter label=cagent.session=$id)\" ]"
    expect_eq "$what: once the engine is back, no container of the session" \
      "$(docker ps -a --filter "label=cagent.session=$id" --format '{{.Names}} {{.Status}}')" ""
  done
done
say "time from the fault to cagent's exit: $(printf '%s; ' "${timings[@]}")"
finish
