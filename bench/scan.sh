#!/usr/bin/env bash
# bench/scan.sh — the workspace scan on node_modules-like trees, against
# `find -name` over the same tree: what cagent adds to every start on a big
# project. Writes the "scan.sh" section of bench/RESULTS.md.
#
#   bench/scan.sh [--build DIR] [--old CAGENT] [--sizes "10000 200000 1000000"]
#                 [--warm N] [--cold N] [--out DIR] [--docker-image IMAGE]
#
# For each size, bench/scan_tree.py makes a JavaScript project with that
# many files under /var/tmp (removed at the end, also on failure or Ctrl-C),
# then times, in one run, each of these cold (sync and drop_caches before
# every run) and warm (after one untimed run), interleaved:
#   find     find . -name .env, in the workspace (what reading the entries costs)
#   cagent   cagent --dry-run -- true, in the workspace: the whole start up
#            to the docker command, the scan being all of it that grows
#            with the tree
#            (its directory listings of earlier runs removed before each run)
#   kept     the same, with the listings the run before it kept
#   old      the same with --old CAGENT (e.g. a build of the commit before)
# and cagent --dry-run in an empty workspace (the fixed part). The dry runs
# get a scratch HOME and a `docker` on PATH that fails at once, so that no
# engine is asked (`docker info`) and what is timed is cagent's own work.
# Medians; every run at nice 19. Each size also checks that cagent hides
# every planted secret and that --old plans the very same mounts.
#
# --docker-image: also time `cagent -- true` (with and without listings
# kept) on the 200 000-file tree (or
# the size closest to it) against a bare `docker run --rm --init
# --entrypoint true IMAGE`, only when IMAGE carries the context hash this
# cagent would build (otherwise it would build the image: it says so and
# skips). A session makes a home volume (prefix cagent-scan-bench-PID):
# removed at the end.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
args=()
build=$top/build
old=
sizes="10000 200000 1000000"
warm=5
cold=3
out=$top/bench
docker_image=
while (($#)); do
  case $1 in
    --build) build=$(cd "$2" && pwd); args+=("$1" "$2"); shift 2 ;;
    --old) old=$2; args+=("$1" "OLD/bin/cagent"); shift 2 ;;
    --sizes) sizes=$2; args+=("$1" "\"$2\""); shift 2 ;;
    --warm) warm=$2; args+=("$1" "$2"); shift 2 ;;
    --cold) cold=$2; args+=("$1" "$2"); shift 2 ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
    --docker-image) docker_image=$2; args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "scan.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command_line="bench/scan.sh${args[*]:+ ${args[*]}}"

say() { printf 'scan: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (the cold runs drop the page cache)"
cagent=$build/bin/cagent
[[ -x $cagent ]] || die "build cagent first (cmake --build $build --target cagent)"
[[ -z $old || -x $old ]] || die "--old $old is not an executable"
for tool in python3 find nice sync; do command -v "$tool" >/dev/null || die "$tool not installed"; done

work=$(mktemp -d /var/tmp/cagent-scan-bench.XXXXXX)
docker_home_volume=  # the prefix of the home volume `cagent -- true` makes
cleanup() {
  if [[ -n $docker_home_volume ]]; then
    docker volume ls -q --filter "name=$docker_home_volume" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/home" "$work/bin" "$work/empty"
printf '#!/bin/sh\nexit 1\n' >"$work/bin/docker"
chmod +x "$work/bin/docker"
times=$work/times.tsv  # size tool mode start end
: >"$times"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# run_tool TOOL DIR: one run, its output to $work/last.out.
run_tool() {
  local tool=$1 dir=$2 bin=$cagent
  [[ $tool == old ]] && bin=$old
  case $tool in
    find) (cd "$dir" && nice -n 19 find . -name .env) ;;
    *) (cd "$dir" && HOME=$work/home PATH=$work/bin:$PATH nice -n 19 "$bin" --dry-run -- true) ;;  # cagent, kept, old
  esac >"$work/last.out" 2>&1
}

# timed SIZE TOOL MODE DIR: one timed run into $times.
timed() {
  local start end
  # cagent: no listings kept from an earlier run (as the first run in a
  # tree); kept: the listings the run before left (every later run).
  [[ $2 == kept ]] || rm -rf "$work/home/.cagent/listings"
  start=$EPOCHREALTIME
  run_tool "$2" "$4" || die "$2 failed in $4: $(tail -3 "$work/last.out")"
  end=$EPOCHREALTIME
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$start" "$end" >>"$times"
}

# The Docker part runs on the tree closest to 200 000 files.
docker_size=$(for size in $sizes; do echo "$(( size > 200000 ? size - 200000 : 200000 - size )) $size"; done |
                sort -n | head -1 | cut -d' ' -f2)
tools=(find cagent kept)  # (cagent, then kept: the one reuses what the other left)
[[ -n $old ]] && tools+=(old)
checks=$work/checks.tsv  # size files directories symlinks planted hidden same_as_old
: >"$checks"

say "empty workspace: ${warm} warm runs"
run_tool cagent "$work/empty"
for ((i = 0; i < warm; i++)); do timed 0 cagent warm "$work/empty"; done

for size in $sizes; do
  ws=$work/ws-$size
  say "$size files: making the tree"
  tree=$(nice -n 19 python3 "$top/bench/scan_tree.py" "$ws" "$size")
  # Listings are kept only for directories older than the scan's start less
  # 2 s (listing_cache.hpp): a tree made this instant would keep none.
  sleep 3
  # What cagent must hide: every planted secret is a placeholder mount.
  run_tool cagent "$ws"
  sed -E 's/[0-9a-f]{12}/ID/g' "$work/last.out" | grep '^docker run' >"$work/new.run" || die "no docker run line from cagent --dry-run"
  same=-
  if [[ -n $old ]]; then
    run_tool old "$ws"
    sed -E 's/[0-9a-f]{12}/ID/g' "$work/last.out" | grep '^docker run' >"$work/old.run" || die "no docker run line from --old"
    cmp -s "$work/new.run" "$work/old.run" && same=yes || same=no
  fi
  python3 - "$tree" "$work/new.run" "$size" "$same" >>"$checks" <<'PY'
import json, sys
tree = json.loads(sys.argv[1])
run = open(sys.argv[2]).read()
# A hidden file is an empty placeholder mounted read-only over it.
hidden = sum(1 for p in tree["planted"] if f"/empty-file:/workspace/{p}:ro" in run)
print(sys.argv[3], tree["files"], tree["directories"], tree["symlinks"], len(tree["planted"]), hidden, sys.argv[4], sep="\t")
PY
  for ((i = 0; i < cold; i++)); do
    for tool in "${tools[@]}"; do drop_caches; timed "$size" "$tool" cold "$ws"; done
  done
  for tool in "${tools[@]}"; do run_tool "$tool" "$ws"; done  # warm-up
  for ((i = 0; i < warm; i++)); do
    for tool in "${tools[@]}"; do timed "$size" "$tool" warm "$ws"; done
  done
  # The listings kept give the very same mounts as a scan without them.
  run_tool kept "$ws"
  sed -E 's/[0-9a-f]{12}/ID/g' "$work/last.out" | grep '^docker run' >"$work/kept.run" || die "no docker run line with listings kept"
  cmp -s "$work/new.run" "$work/kept.run" && kept_same=yes || kept_same=no
  sed -i "\$s/\$/\t$kept_same/" "$checks"
  [[ $kept_same == yes ]] || die "with listings kept, cagent planned other mounts in the $size-file tree"
  [[ -n $(ls -A "$work/home/.cagent/listings" 2>/dev/null) ]] || die "no listings were kept for the $size-file tree"
  say "$size files: done ($(awk -F'\t' -v s="$size" '$1 == s {print $6 " of " $5 " planted secrets hidden"}' "$checks"))"
  [[ -n $docker_image && $size == "$docker_size" ]] || rm -rf "$ws"  # (kept for the Docker part)
done

# cagent -- true against a bare docker run, on the size closest to 200 000.
docker_note="not measured: no --docker-image given"
docker_rows=
if [[ -n $docker_image ]]; then
  best=$docker_size
  docker_note="not measured: the image $docker_image"
  if ! command -v docker >/dev/null || ! docker image inspect "$docker_image" >/dev/null 2>&1; then
    docker_note+=" is not there (or no Docker engine answers)"
  else
    have=$(docker image inspect "$docker_image" --format '{{index .Config.Labels "cagent.context-hash"}}')
    want=$(cd "$work/ws-$best" && HOME=$work/home CAGENT_IMAGE=$docker_image "$cagent" --dry-run -- true 2>/dev/null |
             grep -o 'cagent.context-hash=[0-9a-f]*' | head -1 | cut -d= -f2 || true)
    if [[ -z $have || $have != "$want" ]]; then
      docker_note+=" was not built from this tree's image context (label ${have:-none}, this cagent wants ${want:-?}): cagent would build it"
    else
      docker_note=
      docker_home_volume=cagent-scan-bench-$$
      for ((i = 0; i <= warm; i++)); do
        for tool in docker cagent kept; do
          [[ $tool == cagent ]] && rm -rf "$work/home/.cagent/listings"
          start=$EPOCHREALTIME
          if [[ $tool == docker ]]; then
            docker run --rm --init --entrypoint true "$docker_image" >/dev/null 2>&1 || die "docker run failed"
          else
            (cd "$work/ws-$best" && HOME=$work/home CAGENT_IMAGE=$docker_image CAGENT_HOME_VOLUME=$docker_home_volume \
               nice -n 19 "$cagent" --no-update -- true) >/dev/null 2>&1 || die "cagent -- true failed"
          fi
          end=$EPOCHREALTIME
          ((i == 0)) || printf '%s\t%s\t%s\t%s\t%s\n' "$best" "$tool" start "$start" "$end" >>"$times"
        done
      done
    fi
  fi
fi

section=$(python3 - "$times" "$checks" "$command_line" "$docker_note" "$(nproc)" "$(uname -r)" <<'PY'
import statistics, sys, time
times_path, checks_path, command, docker_note, cpus, kernel = sys.argv[1:7]
runs = {}
for line in open(times_path):
    size, tool, mode, start, end = line.split("\t")
    runs.setdefault((int(size), tool, mode), []).append(float(end) - float(start))
med = lambda k: statistics.median(runs[k]) if k in runs else None
def cell(k):
    if k not in runs:
        return "—"
    v = runs[k]
    return f"{statistics.median(v):.3f}" + (f" ({min(v):.3f}–{max(v):.3f})" if len(v) > 1 else "")
checks = [line.rstrip("\n").split("\t") for line in open(checks_path)]
has_old = any(tool == "old" for (_, tool, _) in runs)
num = lambda n: f"{int(n):,}".replace(",", " ")
empty_warm = med((0, "cagent", "warm"))
rows, verdicts = [], []
for size, files, dirs, links, planted, hidden, same, kept_same in checks:
    s = int(size)
    find, whole, kept = med((s, "find", "warm")), med((s, "cagent", "warm")), med((s, "kept", "warm"))
    ratio, alone = whole / find, (whole - empty_warm) / find
    kept_ratio = kept / find
    rows.append(f"| {num(files)} files, {num(dirs)} dirs, {num(links)} symlinks"
                f" | {cell((s, 'find', 'cold'))} | {cell((s, 'cagent', 'cold'))} | {cell((s, 'kept', 'cold'))} |" +
                (f" {cell((s, 'old', 'cold'))} |" if has_old else "") +
                f" {cell((s, 'find', 'warm'))} | {cell((s, 'cagent', 'warm'))} | {cell((s, 'kept', 'warm'))} |" +
                (f" {cell((s, 'old', 'warm'))} |" if has_old else "") +
                f" {ratio:.2f}× ({alone:.2f}×) | {kept_ratio:.2f}× | {hidden} of {planted}; same mounts with listings kept: {kept_same}" +
                (f"; same mounts as old: {same}" if has_old else "") + " |")
    verdicts.append(f"| warm scan ≤ 1.5× `find`, {num(files)} files, no listings kept | {ratio:.2f}× "
                    f"| {'met' if ratio <= 1.5 else '**missed**'} |")
head = ("| tree | find cold | cagent cold | kept cold |" + (" old cold |" if has_old else "") +
        " find warm | cagent warm | kept warm |" + (" old warm |" if has_old else "") +
        " cagent ÷ find, warm (scan alone) | kept ÷ find, warm | secrets hidden |")
sep = "|---|" + "---:|" * (3 + has_old) + "---:|" * (3 + has_old) + "---:|---:|---|"
empty = cell((0, "cagent", "warm"))
docker = docker_note
if not docker_note:
    size = next(s for (s, t, m) in runs if t == "docker")
    d, c, k = med((size, "docker", "start")), med((size, "cagent", "start")), med((size, "kept", "start"))
    docker = (f"`cagent -- true` in the {num(size)}-file tree, with the listings the run before kept "
              f"(every run but a tree's first): {cell((size, 'kept', 'start'))} s against "
              f"{cell((size, 'docker', 'start'))} s for a bare `docker run --rm --init --entrypoint true` "
              f"(medians, interleaved): **{k / d:.2f}×** ({'met' if k / d <= 1.3 else '**missed**'}; target 1.3×). "
              f"With no listings kept (a tree's first run): {cell((size, 'cagent', 'start'))} s, {c / d:.2f}×.")
stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
print(f"""## Workspace scan ({stamp})

Reproduce: `{command}` (as root, after building `cagent`; bench/README.md says
what it does). Seconds, median (min–max) of the timed runs; every run at nice 19 on
{cpus} CPUs (kernel {kernel}), sharing them with whatever else ran. *cagent* is
`cagent --dry-run -- true` in the workspace (the start up to the docker command,
with no engine to ask) with no directory listings kept from an earlier run, *kept*
the same with the listings the run before it kept (listing_cache.hpp: what every
run but a tree's first finds), *old* the same of the build before the fast scan, *find*
`find . -name .env`; cold: after `sync; echo 3 > /proc/sys/vm/drop_caches`.
The same dry run in an empty workspace takes {empty} s: that part does not grow
with the tree; "scan alone" takes it off cagent's time before dividing.

{head}
{sep}
""" + "\n".join(rows) + f"""

| target | measured | status |
|---|---:|---|
""" + "\n".join(verdicts) + f"""

Start-up with the engine: {docker}
""")
PY
)
printf '%s\n' "$section"
python3 "$top/bench/results_section.py" "$out/RESULTS.md" scan.sh "$section"
say "written to $out/RESULTS.md"
