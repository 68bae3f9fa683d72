#!/usr/bin/env bash
# package.sh BUILD_DIR — the Debian package, end to end:
#
#   1. cpack -G DEB in the build tree: the .deb, its declared dependencies
#      and its files (binary, image context, man page, completions);
#   2. a clean debian:bookworm-slim container (no Docker engine in it):
#      `apt-get install ./cagent_*.deb` pulls the declared dependencies from
#      Debian's archive, then cagent --version / --help, man -w cagent, the
#      completions (bash completes with them), ldd, and --dry-run in a
#      workspace;
#   3. on the host, the packaged cagent (dpkg -x, so nothing of the build
#      tree is near it) runs `cagent -- true` for the first time with an
#      image tag of its own: it builds the image from the installed context
#      (the image's label is the hash of exactly that context) and the cage
#      runs. That build uses a fresh test CA and no agent CLIs, so its npm
#      stage is new on every run (a real rebuild of a throwaway stage, without
#      npm's network) while the rest comes from Docker's cache: the check
#      that cagent's builds leave no untagged images behind is never vacuous.
#
# Everything it creates — the container, the image tags of its own
# repository, the home volumes, temporary files — is removed at exit.
# Exits 77 only when no Docker engine answers.
E2E_NAME=package
source "$(dirname "${BASH_SOURCE[0]}")/../world/lib.sh"
build=$(cd "${1:?usage: package.sh BUILD_DIR}" && pwd)

require_docker
make_tmp
started=$SECONDS
base=debian:bookworm-slim
repo=cagent-e2e-pkg-$$
container=cagent-e2e-pkg-$$
volumes=cagent-e2e-pkg-home-$$
E2E_EXIT_HOOKS+=("docker rm -f $container >/dev/null 2>&1")
E2E_EXIT_HOOKS+=("docker images --format '{{.Repository}}:{{.Tag}}' $repo | xargs -r docker rmi >/dev/null 2>&1")
E2E_EXIT_HOOKS+=("docker volume ls -q --filter label=cagent.home=$volumes | xargs -r docker volume rm >/dev/null 2>&1")
docker image inspect "$base" >/dev/null 2>&1 || die "base image $base missing (setup.sh --docker creates it)"
dangling() { docker images -q --no-trunc --filter dangling=true | sort -u; }
dangling_before=$(dangling)

# ---- 1. the package ---------------------------------------------------------
pkg=$E2E_TMP/pkg
t0=$SECONDS
(cd "$build" && cpack -G DEB -B "$pkg") >"$E2E_TMP/cpack.log" 2>&1 || { tail -n 30 "$E2E_TMP/cpack.log" >&2; die "cpack -G DEB failed"; }
deb=$(find "$pkg" -maxdepth 1 -name 'cagent_*.deb' | head -n1)
[[ -f $deb ]] || die "cpack made no cagent_*.deb: $(ls "$pkg")"
say "cpack: ${deb##*/}, $(($(stat -c %s "$deb") / 1024)) KiB, in $((SECONDS - t0))s"
version=$("$build/bin/cagent" --version)
expect_eq "package version is the binary's" "$(dpkg-deb -f "$deb" Version)" "${version#cagent }"
depends=$(dpkg-deb -f "$deb" Depends)
say "Depends: $depends"
expect_match "declares the docker CLI (Debian's or Docker CE's)" "$depends" 'docker\.io \| docker-ce'
declared=$(tr ',|' '\n\n' <<<"$depends" | sed 's/(.*//; s/[[:space:]]//g')
expect_line() {  # DESC TEXT LINE — TEXT has LINE as one of its lines
  if grep -qxF -- "$3" <<<"$2"; then ok "$1"; else not_ok "$1" "no line '$3' in:" "$(head -c 2000 <<<"$2")"; fi
}
# Every library the binary itself needs (its NEEDED entries, where ldd
# finds them) comes from a package the .deb declares (dpkg-shlibdeps reads
# them off the binary; this is the cross-check). What those libraries need
# in turn (libpsl's libidn2) comes with their own packages' dependencies.
needed=$(objdump -p "$build/bin/cagent" | awk '$1 == "NEEDED" {print $2}')
[[ -n $needed ]] || not_ok "objdump lists the binary's NEEDED libraries"
for lib in $(ldd "$build/bin/cagent" | awk -v needed="$needed" '
    BEGIN { n = split(needed, names, "\n"); for (i = 1; i <= n; i++) want[names[i]] = 1 }
    $3 ~ /^\// && ($1 in want) {print $3}'); do
  owner=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1)
  [[ -n $owner ]] || owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1)
  [[ -n $owner ]] || { not_ok "a package owns $lib"; continue; }
  expect_line "declares $owner (${lib##*/})" "$declared" "$owner"
done
# The default config trusts the host's CA bundle ("system").
expect_line "declares ca-certificates" "$declared" ca-certificates
files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/cagent ./usr/share/cagent/context/image/Dockerfile ./usr/share/cagent/context/image/builder.Dockerfile \
         ./usr/share/cagent/context/CMakeLists.txt \
         ./usr/share/man/man1/cagent.1 ./usr/share/bash-completion/completions/cagent \
         ./usr/share/zsh/vendor-completions/_cagent; do
  expect_line "the package holds ${f#.}" "$files" "$f"
done

# ---- 2. a clean Debian 12 -----------------------------------------------------
# The official slim image drops man pages (path-exclude in dpkg.cfg.d); a
# Debian 12 system keeps them, so those excludes go first. The container is
# on Docker's default network (Debian's archive); it has no Docker engine.
t0=$SECONDS
docker run -d --name "$container" --label "cagent.e2e.package=$$" -v "$pkg:/pkg:ro" "$base" sleep 3600 >/dev/null ||
  die "cannot start a $base container"
in_box() { docker exec -e DEBIAN_FRONTEND=noninteractive -w /root "$container" bash -c "$1" 2>&1; }
if ! out=$(in_box 'grep -l "^path-exclude" /etc/dpkg/dpkg.cfg.d/* 2>/dev/null | xargs -r rm -f
                   apt-get update -qq && apt-get install -y -qq --no-install-recommends /pkg/'"${deb##*/}"' man-db'); then
  tail -n 30 <<<"$out" >&2
  die "apt-get install ./${deb##*/} failed in a clean $base container (does it reach Debian's archive?)"
fi
say "installed with its dependencies in $((SECONDS - t0))s"
expect_eq "cagent --version in the container" "$(in_box 'cagent --version')" "$version"
expect_match "cagent --help" "$(in_box 'cagent --help')" '^usage: cagent \[options\]'
expect_eq "man -w cagent" "$(in_box 'man -w cagent')" /usr/share/man/man1/cagent.1
expect_match "man cagent renders" "$(in_box 'MANPAGER=cat MANWIDTH=80 man cagent 2>/dev/null')" 'OPTIONS'
expect_eq "ldd finds every library" "$(in_box 'ldd /usr/bin/cagent | grep -c "not found"')" 0
expect_eq "bash completes with the installed file" \
  "$(in_box '. /usr/share/bash-completion/completions/cagent; COMP_WORDS=(cagent --dry); COMP_CWORD=1; _cagent; echo "${COMPREPLY[*]}"')" \
  --dry-run
expect_true "the zsh completion is installed" docker exec "$container" test -s /usr/share/zsh/vendor-completions/_cagent
# --dry-run needs no engine: it prints the docker commands.
dry=$(in_box 'mkdir -p /root/ws && cd /root/ws && cagent --dry-run -- true')
expect_match "--dry-run prints the image build" "$dry" "docker build -f [^ ]*/image/Dockerfile --target npm"
expect_match "--dry-run prints the builder's build" "$dry" "docker build -f [^ ]*/image/builder.Dockerfile --target builder"
expect_match "--dry-run prints docker run" "$dry" "docker run .* -- true"
docker rm -f "$container" >/dev/null

# ---- 3. the first real run builds from the installed context ---------------
root=$E2E_TMP/root
dpkg -x "$deb" "$root"
ws=$E2E_TMP/ws
mkdir -p "$ws" "$E2E_TMP/home"
chown 1000:1000 "$ws"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=cagent package test CA $$" \
  -keyout "$E2E_TMP/ca.key" -out "$E2E_TMP/ca.pem" >/dev/null 2>&1 || die "openssl: test CA"
pkg_cagent() {
  (cd "$ws" && env HOME="$E2E_TMP/home" CAGENT_HOME="$E2E_TMP/home/.cagent" CAGENT_IMAGE="$repo:latest" \
     CAGENT_HOME_VOLUME="$volumes" CAGENT_NPM_PACKAGES= timeout --kill-after=10 1800 \
     "$root/usr/bin/cagent" --ca-cert "$E2E_TMP/ca.pem" "$@" </dev/null)
}
hash_of() { grep -o 'cagent\.context-hash=[0-9a-f]*' | head -n1 | cut -d= -f2; }
installed=$(pkg_cagent --dry-run -- true | hash_of)
chosen=$(CAGENT_CONTEXT="$root/usr/share/cagent/context" pkg_cagent --dry-run -- true | hash_of)
expect_ne "the installed cagent hashes a context" "$installed" ""
expect_eq "…the installed one (same hash as CAGENT_CONTEXT=<installed context>)" "$installed" "$chosen"
t0=$SECONDS
status=0
pkg_cagent -- true >"$E2E_TMP/run1.out" 2>"$E2E_TMP/run1.err" || status=$?
build_secs=$((SECONDS - t0))
if [[ $status -eq 0 ]]; then ok "first run: image built from the installed context, cage ran (${build_secs}s)"; else
  not_ok "first run exited $status" "$(tail -n 20 "$E2E_TMP/run1.err")" \
    "$(tail -n 30 "$E2E_TMP"/home/.cagent/logs/build-*.log 2>/dev/null)"
fi
expect_match "it said it builds" "$(cat "$E2E_TMP/run1.err")" 'cagent: building image'
label=$(docker image inspect -f '{{index .Config.Labels "cagent.context-hash"}}' "$repo:latest" 2>&1)
expect_eq "the image is labelled with the installed context's hash" "$label" "$installed"
tags=$(docker images --format '{{.Tag}}' "$repo" | sort | tr '\n' ' ')
expect_match "only cagent's tags: latest, ctx-*, stage-npm, stage-builder" "$tags" \
  '^ctx-[0-9a-f]{16} latest stage-builder stage-npm $'
new_dangling=$(comm -13 <(echo "$dangling_before") <(dangling))
expect_eq "the build left no untagged image behind" "$new_dangling" ""
t0=$SECONDS
pkg_cagent -- true >/dev/null 2>"$E2E_TMP/run2.err"
expect_no_match "a second run does not rebuild ($((SECONDS - t0))s)" "$(cat "$E2E_TMP/run2.err")" 'building'

# ---- cleanup leaves nothing either -------------------------------------------
docker images --format '{{.Repository}}:{{.Tag}}' "$repo" | xargs -r docker rmi >/dev/null 2>&1
expect_eq "no image of the test's repository left" "$(docker images -q "$repo")" ""
expect_eq "no untagged image left by the test" "$(comm -13 <(echo "$dangling_before") <(dangling))" ""
say "package test took $((SECONDS - started))s (image build ${build_secs}s)"
finish
