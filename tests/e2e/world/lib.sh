# lib.sh — sourced by the e2e world scripts (world_up.sh, world_down.sh, cases/*.sh).
#
# The world is created once by world_up.sh (ctest FIXTURES_SETUP) and described
# in a state file (shell assignments) that every case reads; world_down.sh
# (FIXTURES_CLEANUP) removes what the state file names. Cases never create
# world resources themselves, only temporary workspaces under their own
# temporary directory, which their EXIT trap removes.
#
# Environment (set by CMake for every test):
#   E2E_STATE   the state file (under the build dir)
#   E2E_CAGENT  the cagent binary under test
#   E2E_SRC     this directory (tools, zone, probes)
#   CAGENT_IMAGE  optional: the image tag cagent uses (default cagent-e2e:latest,
#                 never the user's cagent:latest)

set -uo pipefail

E2E_SKIP=77
# The uid/gid that owns every test workspace: not root, so "files the agent
# creates belong to the host user" is a real remapping, not uid 0 by accident.
E2E_UID=23456
E2E_GID=23456
E2E_NAME=${E2E_NAME:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}

say() { printf 'e2e[%s]: %s\n' "$E2E_NAME" "$*" >&2; }
die() { say "error: $*"; exit 1; }
skip() { printf 'skipped: %s\n' "$*"; exit "$E2E_SKIP"; }

# Every script first asks whether an engine answers; without one the whole
# tier is skipped (never passed).
require_docker() {
  command -v docker >/dev/null 2>&1 || skip "no Docker engine (docker CLI not installed)"
  local err
  if ! err=$(timeout 20 docker info --format '{{.ServerVersion}}' 2>&1 >/dev/null); then
    skip "no Docker engine (docker info: ${err//$'\n'/ })"
  fi
}

# ---- temporary files of this script -------------------------------------
E2E_TMP=
e2e_tmp_cleanup() {
  # Workspaces are chowned to the test uid and may hold read-only dirs.
  [[ -n $E2E_TMP && -d $E2E_TMP ]] && { chmod -R u+w "$E2E_TMP" 2>/dev/null; rm -rf "$E2E_TMP"; }
  return 0
}
make_tmp() {
  E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cagent-e2e-$E2E_NAME.XXXXXX") || die "mktemp failed"
  chmod 755 "$E2E_TMP"
  trap 'e2e_on_exit' EXIT
  trap 'exit 130' INT TERM
}
E2E_EXIT_HOOKS=()
e2e_on_exit() {
  local h
  for h in "${E2E_EXIT_HOOKS[@]}"; do eval "$h" || true; done
  e2e_tmp_cleanup
}

# ---- state file ----------------------------------------------------------
state_set() {  # KEY VALUE — appended, so a half-built world can still be torn down
  printf '%s=%q\n' "$1" "$2" >>"$E2E_STATE"
}
load_state() {
  [[ -f ${E2E_STATE:-} ]] || die "no world state at ${E2E_STATE:-<unset>}: the setup test did not run or failed"
  # shellcheck disable=SC1090
  source "$E2E_STATE"
  [[ ${WORLD_SKIPPED:-} ]] && skip "$WORLD_SKIPPED"
  [[ ${WORLD_READY:-0} == 1 ]] || die "the world in $E2E_STATE is incomplete: the setup test failed"
  export_world_env
}
# Every cagent a script starts — through cagent_env or by hand — uses the
# run's own home volumes (prefix HOME_VOLUME_PREFIX), never the user's.
export_world_env() {
  [[ -n ${HOME_VOLUME_PREFIX:-} ]] && export CAGENT_HOME_VOLUME=$HOME_VOLUME_PREFIX
  return 0
}

# Every case starts with this.
case_init() {
  require_docker
  load_state
  [[ -x $E2E_CAGENT ]] || die "cagent binary not built: $E2E_CAGENT"
  make_tmp
}

# ---- checks ----------------------------------------------------------------
E2E_FAILS=0
E2E_CHECKS=0
ok() { E2E_CHECKS=$((E2E_CHECKS + 1)); printf 'ok - %s\n' "$1"; }
not_ok() {
  E2E_CHECKS=$((E2E_CHECKS + 1)); E2E_FAILS=$((E2E_FAILS + 1))
  printf 'not ok - %s\n' "$1"; shift
  local line; for line in "$@"; do printf '    %s\n' "$line"; done
}
expect_eq() {  # DESC GOT WANT
  if [[ $2 == "$3" ]]; then ok "$1"; else not_ok "$1" "got:  $(printf %q "$2")" "want: $(printf %q "$3")"; fi
}
expect_ne() {  # DESC GOT UNWANTED
  if [[ $2 != "$3" ]]; then ok "$1"; else not_ok "$1" "got the unwanted value $(printf %q "$2")"; fi
}
expect_match() {  # DESC TEXT ERE
  if [[ $2 =~ $3 ]]; then ok "$1"; else not_ok "$1" "no match for /$3/ in:" "$(head -c 3000 <<<"$2")"; fi
}
expect_no_match() {  # DESC TEXT ERE
  if [[ ! $2 =~ $3 ]]; then ok "$1"; else not_ok "$1" "unexpected match for /$3/ in:" "$(head -c 3000 <<<"$2")"; fi
}
expect_true() {  # DESC CMD… — the command must succeed
  local d=$1; shift
  local out; if out=$("$@" 2>&1); then ok "$d"; else not_ok "$d" "command failed: $*" "$out"; fi
}
expect_false() {  # DESC CMD… — the command must fail
  local d=$1; shift
  local out; if out=$("$@" 2>&1); then not_ok "$d" "command succeeded: $*" "$out"; else ok "$d"; fi
}
finish() {
  if ((E2E_CHECKS == 0)); then say "no checks ran"; exit 1; fi
  if ((E2E_FAILS)); then say "$E2E_FAILS of $E2E_CHECKS checks failed"; exit 1; fi
  say "all $E2E_CHECKS checks passed"
  exit 0
}

# ---- workspaces and cages ---------------------------------------------------
# new_workspace [DOMAIN…] — prints the path of a fresh workspace (see
# init_workspace). Callers may add files, then call chown_workspace again.
new_workspace() {
  # (mktemp, not a counter: callers use $(new_workspace), a subshell)
  local ws
  ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
  init_workspace "$ws" "$@"
  printf '%s\n' "$ws"
}
# init_workspace DIR [DOMAIN…] — a .cagent.yaml that allows the given names
# (default allowed.test; the test wrote it, so run_cagent approves it), the
# in-cage probe script, everything owned by the test uid. dnsguard's upstream, the world's DNS server, is in the global
# config world_up.sh wrote ($E2E_HOME/.cagent/config.yaml): a workspace's
# dns_resolvers count only when the workspace is trusted.
init_workspace() {
  local ws=$1 d; shift
  {
    printf 'domains:\n'
    for d in "${@:-allowed.test}"; do printf '  - "%s"\n' "$d"; done
  } >"$ws/.cagent.yaml"
  cp "$E2E_SRC/cage_probe.py" "$ws/probe.py"
  chown_workspace "$ws"
}
# chown_workspace WS — hands WS to the test uid once the test has finished
# writing it, and notes the .cagent.yaml the test wrote (tests_config).
chown_workspace() {
  chown -R "$E2E_UID:$E2E_GID" "$1"
  note_tests_config "$1"
}

# ---- the workspace .cagent.yaml the test wrote ------------------------------
# cagent uses a workspace .cagent.yaml only once the user approved its exact
# content for that very directory (--accept-workspace-config, or "y" on a
# terminal). A case is the user: for a .cagent.yaml the test itself wrote,
# it gives its word the way a user does, on cagent's command line. What the
# test wrote is noted outside the workspace (sha256 in $E2E_TMP/tests-config/)
# when it hands the workspace over; the flag is passed only while the file
# still has exactly that content, never for what an agent wrote.
tests_config_note() {  # WS — where the note of WS lives
  printf '%s/tests-config/%s\n' "$E2E_TMP" "$(printf '%s' "$(cd "$1" && pwd -P)" | sha256sum | cut -c1-32)"
}
note_tests_config() {  # WS
  local note; note=$(tests_config_note "$1")
  mkdir -p "${note%/*}"
  if [[ -f $1/.cagent.yaml ]]; then sha256sum <"$1/.cagent.yaml" | cut -d' ' -f1 >"$note"; else rm -f "$note"; fi
}
# Prints --accept-workspace-config when WS's .cagent.yaml is exactly what
# the test wrote, else nothing (for `cagent … $(accept_tests_config WS) …`).
accept_tests_config() {  # WS
  local note; note=$(tests_config_note "$1")
  [[ -f $note && -f $1/.cagent.yaml ]] || return 0
  [[ $(sha256sum <"$1/.cagent.yaml" | cut -d' ' -f1) == "$(cat "$note")" ]] && printf '%s\n' --accept-workspace-config
  return 0
}

# The environment every cagent run gets: a private home (so the user's real
# ~/.cagent is never read or written), the image under test, the run's own
# home volumes (never the user's cagent-home-*).
cagent_env() {
  env HOME="$E2E_HOME" CAGENT_HOME="$E2E_HOME/.cagent" CAGENT_IMAGE="$CAGENT_IMAGE_TAG" \
    CAGENT_HOME_VOLUME="$HOME_VOLUME_PREFIX" "$@"
}
# The home volume cagent gives workspace WS, as cagent itself names it (from
# its --dry-run: the test and the product cannot disagree); "" without one.
home_volume_of() {
  local out
  out=$(cd "$1" && cagent_env "$E2E_CAGENT" --dry-run --no-update -- true 2>/dev/null) || return 1
  grep -o 'type=volume,source=[^,]*' <<<"$out" | head -n1 | sed 's/.*source=//'
}
# trust_workspace WS — list WS in the run's ~/.cagent/trusted.
trust_workspace() {
  mkdir -p "$E2E_HOME/.cagent"
  (cd "$1" && pwd -P) >>"$E2E_HOME/.cagent/trusted"
}

# run_cagent WS [cagent args…] — runs cagent in WS on the world network with
# --no-update, labelled with this run's id (so cleanup finds strays), stdin
# from /dev/null unless redirected by the caller; approves the .cagent.yaml
# the test wrote (accept_tests_config). Output: stdout and stderr of cagent
# as usual; the exit status is cagent's. Bounded by E2E_CAGE_TIMEOUT.
run_cagent() {
  local ws=$1; shift
  local accept; accept=$(accept_tests_config "$ws")
  (cd "$ws" && cagent_env timeout --kill-after=10 "${E2E_CAGE_TIMEOUT:-180}" "$E2E_CAGENT" --no-update \
      ${accept:+"$accept"} --arg="--network=$NET" --arg="--label=cagent.e2e.run=$RUN_ID" "$@")
}

# user_cagent WS [cagent args…] — like run_cagent, but as the world's
# ordinary docker-group user (E2E_USER, the workspace owner's uid) running
# its installed cagent, with its own home (~/.cagent: the built-in default
# config on first use) and a clean environment (plus the VAR=VALUE entries
# of E2E_USER_ENV, e.g. a secret's source).
E2E_USER_ENV=()
user_cagent() {
  local ws=$1; shift
  [[ -n ${E2E_USER:-} ]] || die "the world has no e2e user (world_up.sh creates it)"
  (cd "$ws" && runuser -u "$E2E_USER" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$E2E_USER_HOME" \
      LANG=C.UTF-8 CAGENT_IMAGE="$CAGENT_IMAGE_TAG" CAGENT_HOME_VOLUME="$HOME_VOLUME_PREFIX" "${E2E_USER_ENV[@]}" \
      timeout --kill-after=10 "${E2E_CAGE_TIMEOUT:-180}" "$E2E_USER_CAGENT" --no-update \
      --arg="--network=$NET" --arg="--label=cagent.e2e.run=$RUN_ID" "$@")
}
# user_cage WS [cagent args…] -- CMD — one shell command line in a cage of
# the e2e user; stdout to stdout, stderr to $E2E_TMP/cage.err; sets CAGE_RC.
user_cage() {
  local ws=$1; shift
  local args=()
  while (($#)) && [[ $1 != -- ]]; do args+=("$1"); shift; done
  shift
  CAGE_RC=0
  user_cagent "$ws" "${args[@]}" -- sh -c "$*" </dev/null 2>"$E2E_TMP/cage.err" || CAGE_RC=$?
  return 0
}

# cage WS CMD… — run one shell command line in a cage: stdout to stdout,
# cagent's stderr into $E2E_TMP/cage.err (shown by callers on failure).
# Sets CAGE_RC.
CAGE_RC=0
cage() {
  local ws=$1; shift
  CAGE_RC=0
  run_cagent "$ws" -- sh -c "$*" </dev/null 2>"$E2E_TMP/cage.err" || CAGE_RC=$?
  return 0
}
cage_err() { cat "$E2E_TMP/cage.err" 2>/dev/null; }

# Containers of this run that carry a cagent session label (the cages).
session_containers() {
  docker ps -a --filter "label=cagent.e2e.run=$RUN_ID" --filter label=cagent.session --format '{{.Names}}'
}

# wait_for DESC SECONDS CMD… — poll CMD until it succeeds, at most SECONDS.
wait_for() {
  local desc=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  say "timed out after ${secs}s waiting for: $desc"
  return 1
}

# Lines the world's DNS server logged (one per query it received).
dns_log() { cat "$DNS_LOG" 2>/dev/null; }
dns_log_lines() { wc -l <"$DNS_LOG" 2>/dev/null || echo 0; }

# ---- cages in the background (cases that act on a running cage) -------------
# cage_bg WS CMD — start a cage running `sh -c CMD` in the background, its
# container labelled cagent.e2e.cage=<unique>; sets CAGE_PID and CAGE_LABEL.
# The EXIT trap kills the cagent process if the case ends early.
CAGE_PID=
CAGE_LABEL=
cage_bg() {
  local ws=$1; shift
  CAGE_LABEL=$E2E_NAME-$$-$RANDOM
  run_cagent "$ws" --arg="--label=cagent.e2e.cage=$CAGE_LABEL" -- sh -c "$*" \
    </dev/null >"$E2E_TMP/bg.out" 2>"$E2E_TMP/bg.err" &
  CAGE_PID=$!
  E2E_EXIT_HOOKS+=("kill $CAGE_PID 2>/dev/null")
}
# The name of the running container of the last cage_bg, once it exists.
cage_bg_container() {
  docker ps --filter "label=cagent.e2e.cage=$CAGE_LABEL" --format '{{.Names}}' | head -n1
}
# wait_cage_bg SECONDS — wait for the background cagent to exit; sets CAGE_RC
# (124 when it had to be killed).
wait_cage_bg() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$CAGE_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$CAGE_PID" 2>/dev/null; then
    kill "$CAGE_PID" 2>/dev/null; wait "$CAGE_PID" 2>/dev/null; CAGE_RC=124; return 1
  fi
  CAGE_RC=0; wait "$CAGE_PID" || CAGE_RC=$?
  return 0
}

# Inside the cage, sh: wait until /workspace/$1 exists (bounded: 120 s).
# A case that builds images of its own (img_*): sets TAG (its own image
# tag, every tag of that repository removed at exit), HOME2 (a cagent home
# with the world's global config) and ctx (a frozen copy of the image
# context: "unchanged" must mean unchanged even while someone edits the
# checkout; COPY caching is by content, so the copy still reuses the world
# image's layers).
own_image_home() {  # REPOSITORY
  TAG=$1:latest
  HOME2=$E2E_TMP/home
  mkdir -p "$HOME2/.cagent"
  chmod 755 "$HOME2"
  E2E_EXIT_HOOKS+=("docker images --format '{{.Repository}}:{{.Tag}}' '$1' | xargs -r docker rmi -f >/dev/null 2>&1")
  cp "$E2E_HOME/.cagent/config.yaml" "$HOME2/.cagent/config.yaml"
  ctx=$E2E_TMP/context
  mkdir -p "$ctx"
  tar -C "$E2E_SRC/../../.." --exclude=./.git --exclude='./build*' --exclude=./tests --exclude=./.cache -c . \
    | tar -C "$ctx" -x || die "cannot copy the image context"
}

cage_wait_file() { printf 'i=0; while [ ! -e /workspace/%s ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done' "$1"; }

# Container creations by this run since a point in time (seconds since epoch,
# from `date +%s.%N`): proves a command started no container.
containers_created_since() {
  docker events --since "$1" --until "$(date +%s.%N)" --filter type=container --filter event=create \
    --format '{{.Actor.Attributes.name}}'
}

# In-cage snippet: time a command in ms; prints "rc=N ms=M".
timed() { printf 's=$(date +%%s%%N); %s >/dev/null 2>&1; rc=$?; e=$(date +%%s%%N); echo "rc=$rc ms=$(( (e-s)/1000000 ))"' "$1"; }
