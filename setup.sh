#!/usr/bin/env bash
# setup.sh — put this machine in a state to build, run and test cagent.
#
#   ./setup.sh            packages + build (idempotent; fast when nothing changed)
#   ./setup.sh --docker   also: Docker engine running and a base image present
#   ./setup.sh --test-tools  also: the tools the test tiers drive (nft, dig, dnsperf, …)
#   ./setup.sh --cagent-only build only cagent (and its man page), not tests/benchmarks
#
# Everything the project needs on a fresh Debian 12 machine is installed from
# here and nowhere else, so CI on a clean machine sees what a developer sees.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=${CAGENT_BUILD_DIR:-$top/build}
want_docker=0 want_test_tools=0 cagent_only=0
for arg in "$@"; do
  case $arg in
    --docker) want_docker=1 ;;
    --test-tools) want_test_tools=1 ;;
    --cagent-only) cagent_only=1 ;;
    *) echo "setup.sh: unknown option: $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }

# dpkg-dev, file: `cpack -G DEB` reads the binary's library dependencies
# with dpkg-shlibdeps, which needs both.
build_pkgs=(build-essential cmake pkg-config libldns-dev libnftnl-dev libmnl-dev
            libboost1.81-dev libtomlplusplus-dev libyaml-cpp-dev doctest-dev libcap-dev libpsl-dev
            dpkg-dev file)
# libssl-dev: the secret relay's TLS and session CA (launcher/relay).
build_pkgs+=(libssl-dev)
# util-linux: unshare, setpriv, taskset, flock; passwd: useradd (the netns
# cage test); openssl, git: the e2e world's test CA and its git-over-HTTPS repo;
# zsh, groff-base: the generated zsh completion and man page, read by them.
# podman, catatonit (its pause binary): `cagent kube`'s Pod played by
# `podman kube play` (tests/e2e/kube).
test_pkgs=(nftables iproute2 knot-dnsutils dnsperf dnsmasq-base curl python3 gnuplot-nox
           procps util-linux libcap2-bin passwd openssl git zsh groff-base podman catatonit)
docker_pkgs=(docker.io debootstrap)

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "missing packages: ${missing[*]} — run as root or install them"; exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  ((apt_updated)) || apt-get update -qq >/dev/null
  apt_updated=1
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
apt_updated=0

# The Docker engine's packages first, on their own: the engine, the base
# image and the image's slow layers (below) then start while the rest
# installs and compiles.
((want_docker)) && apt_install "${docker_pkgs[@]}"

# The Docker engine, the base image and the cage image's slow layers
# (image/prepare-layers.sh: the workbench's packages, which wait on the
# network and the disk, and beside them the builder's compile) run while
# the host installs its build packages and compiles cagent. The layers are
# only a head start for cagent's image build (which makes them itself
# otherwise), so their failure is said and does not stop setup; the
# engine's does.
# The builder's compile only for a new build tree (a first run, CI): later,
# a changed source would make every setup wait for it, even before a
# `cagent --help`; cagent compiles what a session needs.
docker_pid=
if ((want_docker)); then
  docker_log=$build_dir/docker-setup.log
  prepare_args=()
  [[ -f $build_dir/CMakeCache.txt ]] || prepare_args=(--builder)
  mkdir -p "$build_dir"
  say "starting the Docker engine and the image's slow layers meanwhile (log: $docker_log)"
  # A session of its own, so that a failed setup can stop it whole (dockerd
  # itself is started in a session of its own by docker-setup.sh, and stays).
  setsid bash -c '"$1" || exit 1
    "$2" "${@:3}" || echo "setup: preparing the image'"'"'s layers failed; cagent builds them itself" >&2' \
    docker-part "$top/image/docker-setup.sh" "$top/image/prepare-layers.sh" "${prepare_args[@]}" \
    >"$docker_log" 2>&1 </dev/null &
  docker_pid=$!
fi
# Waits for the engine part, if any: its failure stops setup.
wait_docker() {
  [[ -n $docker_pid ]] || return 0
  local status=0
  wait "$docker_pid" || status=$?
  docker_pid=
  cat "$docker_log" >&2
  ((status == 0)) || { say "Docker setup failed (log: $docker_log)"; exit 1; }
}
# On a failure (or Ctrl-C) before that, the engine part is stopped, not
# waited for: it may be in the middle of a compile.
on_exit() {
  local status=$?
  [[ -n $docker_pid ]] || return 0
  if ((status != 0)); then
    say "stopping the Docker engine part (its log: $docker_log)"
    kill -TERM -- "-$docker_pid" 2>/dev/null || true
  fi
  wait "$docker_pid" 2>/dev/null || true
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pkgs=("${build_pkgs[@]}")
((want_test_tools)) && pkgs+=("${test_pkgs[@]}")
apt_install "${pkgs[@]}"

# The Kubernetes schema for the check of `cagent kube`'s manifests
# (tests/unit/launcher/kube_schema.sh): kubernetes-models (the API's
# OpenAPI schema as validators and type declarations) and a YAML parser,
# from the npm registry, pinned. Node itself from Debian when there is none.
if ((want_test_tools)); then
  node_dir=${CAGENT_TEST_NODE_DIR:-/var/lib/cagent-test-tools/node}
  if [[ ! -d $node_dir/node_modules/kubernetes-models || ! -d $node_dir/node_modules/yaml ]]; then
    command -v npm >/dev/null || apt_install nodejs npm
    say "installing kubernetes-models (the Kubernetes schema) into $node_dir"
    mkdir -p "$node_dir"
    # Behind a TLS-intercepting proxy npm needs the host's CAs.
    NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt} \
      npm install --prefix "$node_dir" --no-audit --no-fund --save-exact kubernetes-models@5.1.0 yaml@2.9.1 \
      >"$node_dir/npm-install.log" 2>&1 || {
      tail -n 20 "$node_dir/npm-install.log" >&2; say "npm install of kubernetes-models failed"; exit 1; }
  fi
fi

# Build (incremental). CAGENT_CMAKE_ARGS lets CI add -DCAGENT_WERROR=ON etc.
# Configured every time, so the arguments also reach an existing build tree
# (cheap when nothing changed); the build type is only a first-time default.
jobs=$(nproc 2>/dev/null || echo 2)
cmake_args=()
if [[ ! -f $build_dir/CMakeCache.txt ]]; then
  cmake_args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
  # A tree made by ./cagent's first use: the same -O2 code without debug
  # info, which is a third of the compile's time there (reconfigure with
  # -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g -DNDEBUG" to debug in it).
  ((cagent_only)) && cmake_args+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG")
fi
# shellcheck disable=SC2206  # CAGENT_CMAKE_ARGS is a word list by design
cmake_args+=(${CAGENT_CMAKE_ARGS:-})
say "configuring $build_dir${CAGENT_CMAKE_ARGS:+ ($CAGENT_CMAKE_ARGS)}"
mkdir -p "$build_dir"
cmake -S "$top" -B "$build_dir" "${cmake_args[@]}" >"$build_dir/configure.log" 2>&1 || {
  tail -n 40 "$build_dir/configure.log" >&2; say "configure failed (full log: $build_dir/configure.log)"; exit 1; }
# --cagent-only (./cagent on its first run): cagent and what `cmake
# --install` puts next to it (man page, completions), not the test tiers
# and benchmarks, which the test suite builds when it runs.
targets=()
((cagent_only)) && targets=(--target cagent cagent_docs)
say "building${targets[*]:+ ${targets[*]:1}}"
cmake --build "$build_dir" -j "$jobs" "${targets[@]}" >"$build_dir/build.log" 2>&1 || {
  tail -n 40 "$build_dir/build.log" >&2; say "build failed (full log: $build_dir/build.log)"; exit 1; }

wait_docker
say "ready"
