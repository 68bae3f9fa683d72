#!/usr/bin/env bash
# bench/image_steps.sh — a cold build of the cage image, step by step: where
# the first run's image build spends its time (bench/first_run.sh times a
# whole first run).
#
#   bench/image_steps.sh [--rev REV] [--npm "PKGS"] [--prepare] [--base-as-is] [--keep] [--out FILE]
#
# Builds image/Dockerfile and image/builder.Dockerfile of the commit REV
# (default: the work tree) the way cagent does (npm with --target and the
# builder side by side, then the final image; the same build args), as on a
# fresh machine: from a copy of the
# base image with an ID of its own (a label added), so that no layer of an
# earlier build is reused while each build reuses what the one before it
# made. Its tags (cagent-steps-PID:*) are removed at the end. Every output line of the legacy builder is time-stamped; a step's
# time runs from its "Step N/M" line to the next one. Prints one TSV line
# per step: build, stage, step, seconds, instruction (shortened), and the
# total per build, and each group's wall time (builds side by side). The extra CA of the npm stage is the host's bundle (what
# a user behind a TLS-intercepting proxy gives cagent). --prepare: first
# what image/prepare-layers.sh builds, as setup.sh runs it while the host
# compiles (its own "prepare" build in the output). --base-as-is: build on
# the base image itself, so that what is built stays cache for cagent's own
# builds (then a step that an earlier build on this engine already ran, such
# as the os stage's, comes from the cache: say so). --keep: leave the
# images (tagged cagent-steps-PID:*) instead of removing them.
# Needs a Docker engine and the base image; take /tmp/cagent-e2e.lock
# around it when tests share the engine.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=
npm="@anthropic-ai/claude-code @openai/codex"
out=/dev/stdout
prepare=0 base_as_is=0 keep=0
while (($#)); do
  case $1 in
    --rev) rev=$2; shift 2 ;;
    --npm) npm=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --prepare) prepare=1; shift ;;
    --base-as-is) base_as_is=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "image_steps.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
say() { printf 'image_steps: %s\n' "$*" >&2; }
work=$(mktemp -d /var/tmp/cagent-image-steps.XXXXXX)
repo=cagent-steps-$$
pids=()
cleanup() {
  # Builds still running (Ctrl-C: background jobs ignore SIGINT) first.
  if ((${#pids[@]})); then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  # By tag, never by ID: with --base-as-is the base's ID is debian's own.
  ((keep)) || docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo" | xargs -r docker image rm >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctx=$work/context
mkdir -p "$ctx"
if [[ -n $rev ]]; then
  git -C "$top" archive "$rev" | tar -C "$ctx" -x
else
  (cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$ctx")
fi
mkdir -p "$ctx/image/build-ca"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/image/build-ca/extra-ca.pem"

base=debian:bookworm-slim
if ((base_as_is)); then
  docker tag "$base" "$repo:base"
else
  printf 'FROM %s\nLABEL cagent.steps=%s\n' "$base" "$repo" | docker build -q -t "$repo:base" - >/dev/null
fi
args=(--force-rm --build-arg BASE="$repo:base" --build-arg "AGENT_NPM_PACKAGES=$npm")
mkdir -p "$work/empty"
: >"$work/steps.tsv"
# build NAME DOCKERFILE CONTEXT [ARGS...]: one docker build, its output
# time-stamped into $work/NAME.log, its steps appended to steps.tsv.
build() {
  local b=$1 file=$2 bctx=$3 start end
  shift 3
  start=$EPOCHREALTIME
  if ! docker build -f "$ctx/image/$file" -t "$repo:$b" "$@" "$bctx" 2>&1 |
    while IFS= read -r line; do printf '%s\t%s\n' "$EPOCHREALTIME" "$line"; done >"$work/$b.log"; then
    tail -20 "$work/$b.log" >&2; say "build $b failed"; return 1
  fi
  end=$EPOCHREALTIME
  python3 - "$b" "$work/$b.log" "$start" "$end" >"$work/$b.tsv" <<'PY'
import re, sys
build, log, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
steps, stage = [], "?"
for line in open(log):
    t, _, text = line.rstrip("\n").partition("\t")
    m = re.match(r"Step (\d+)/\d+ : (.*)", text)
    if m:
        ins = m.group(2)
        f = re.match(r"FROM \S+ AS (\S+)", ins, re.I)
        if f:
            stage = f.group(1)
        steps.append([float(t), stage, int(m.group(1)), ins])
for i, (t, stage, n, ins) in enumerate(steps):
    nxt = steps[i + 1][0] if i + 1 < len(steps) else end
    ins = re.sub(r"\s+", " ", ins)
    print(build, stage, n, f"{nxt - t:.1f}", ins[:70], sep="\t")
print(build, "total", "-", f"{end - start:.1f}", "", sep="\t")
PY
}
# together NAME...: the builds started by the lines before, waited for;
# a group's wall time as its own line.
group() {
  local name=$1 start=$2 status=0
  shift 2
  for pid in "$@"; do wait "$pid" || status=1; done
  ((status == 0)) || exit 1
  printf '%s\tgroup\t-\t%.1f\t\n' "$name" "$(python3 -c "print($EPOCHREALTIME - $start)")" >>"$work/steps.tsv"
}
if ((prepare)); then
  # What image/prepare-layers.sh runs (without -q, for the step lines).
  say "building prepare-tools and prepare-builder side by side"
  t0=$EPOCHREALTIME
  build prepare-tools Dockerfile "$work/empty" --target tools --force-rm --build-arg BASE="$repo:base" & p1=$!
  build prepare-builder builder.Dockerfile "$ctx" --force-rm --build-arg BASE="$repo:base" & p2=$!
  pids=("$p1" "$p2")
  group prepare "$t0" "$p1" "$p2"
  pids=()
fi
# As cagent builds (kThrowawayStages, image.cpp): npm and the builder side
# by side, then the image on both.
say "building npm and builder side by side"
t0=$EPOCHREALTIME
build npm Dockerfile "$ctx" --target npm "${args[@]}" & p1=$!
build builder builder.Dockerfile "$ctx" --force-rm --build-arg BASE="$repo:base" & p2=$!
pids=("$p1" "$p2")
group stages "$t0" "$p1" "$p2"
pids=()
say "building final"
t0=$EPOCHREALTIME
build final Dockerfile "$ctx" "${args[@]}" --build-arg BUILDER_IMAGE="$repo:builder"
group final "$t0"
for b in prepare-tools prepare-builder npm builder final; do
  [[ -f $work/$b.tsv ]] && cat "$work/$b.tsv" >>"$work/steps.tsv"
done
cat "$work/steps.tsv" >"$out"
