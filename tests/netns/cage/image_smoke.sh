#!/usr/bin/env bash
# Smoke test of the built image (label e2e): the real entrypoint under the
# docker run flags cagent uses, with the image's default deny-all policy, so
# no traffic leaves the host. Skips when Docker or the image is missing.
#
#   image_smoke.sh [IMAGE]     (default cagent-e2e:latest, the test suite's own tag)
set -uo pipefail
image=${1:-cagent-e2e:latest}
skip() { echo "skipped: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (to own the test workspace as another uid)"
timeout 10 docker info >/dev/null 2>&1 || skip "no Docker engine"
docker image inspect "$image" >/dev/null 2>&1 || skip "image $image not built (docker build -f image/Dockerfile -t $image .)"

tmp=$(mktemp -d /tmp/cage-image.XXXXXX)
name=cagent-smoke-$$
trap 'docker rm -f "$name" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
install -d -o 4242 -g 4242 "$tmp/ws" && install -d "$tmp/logs"
# As cagent runs it: low ports for CAP_NET_BIND_SERVICE only (cage-init refuses to start otherwise).
caps=(--sysctl net.ipv4.ip_unprivileged_port_start=1024 --cap-drop ALL)
for c in NET_ADMIN NET_BIND_SERVICE SETUID SETGID SETPCAP CHOWN DAC_OVERRIDE FOWNER KILL; do caps+=(--cap-add "$c"); done
run() { docker run --rm --init -i --name "$name" "${caps[@]}" -v "$tmp/ws:/workspace" -v "$tmp/logs:/var/log/cagent" \
          -w /workspace "$image" "$@"; }
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }

out=$(run -- bash -c '
  s() { awk -v k="$1:" "\$1 == k { print \$2 }" /proc/self/status; }
  echo "uid=$(id -u) bnd=$(s CapBnd) eff=$(s CapEff) amb=$(s CapAmb) nnp=$(s NoNewPrivs)"
  echo "resolv=$(tr "\n" " " < /etc/resolv.conf)"
  echo "suid=$(find / -xdev -perm /6000 -type f 2>/dev/null | wc -l)"
  command -v sudo >/dev/null && echo sudo=present || echo sudo=absent
  nft list ruleset >/dev/null 2>&1 && echo nft=allowed || echo nft=denied
  getent hosts example.com >/dev/null && echo dns=open || echo dns=closed
  for t in git curl less ps rg jq python3 node npm dig; do command -v $t >/dev/null || echo "missing=$t"; done
  echo end' 2>"$tmp/stderr"); rc=$?
echo "$out" | sed 's/^/   | /'
[[ $rc == 0 && $out == *end* ]] && ok "cage started and ran the command" || { bad "cage run (exit $rc)"; sed 's/^/   ! /' "$tmp/stderr"; }
[[ $out == *uid=4242* ]] && ok "agent took the workspace owner's uid" || bad "uid remap"
[[ $out == *"bnd=0000000000000000 eff=0000000000000000 amb=0000000000000000 nnp=1"* ]] && ok "no capabilities, no_new_privs" || bad "capabilities"
[[ $out == *"resolv=nameserver 127.0.0.1 "* ]] && ok "resolv.conf points at dnsguard" || bad "resolv.conf"
[[ $out == *suid=0* && $out == *sudo=absent* ]] && ok "no setuid/setgid files, no sudo" || bad "setuid bits or sudo present"
[[ $out == *nft=denied* ]] && ok "agent cannot list the ruleset" || bad "nft"
[[ $out == *dns=closed* ]] && ok "default policy resolves nothing" || bad "default policy"
[[ $out != *missing=* ]] && ok "agent tools present" || bad "tools missing: $(grep -o 'missing=[^ ]*' <<<"$out" | tr '\n' ' ')"
[[ $(stat -c %u "$tmp/logs") == 4242 ]] && ok "log dir handed back to the workspace owner" || bad "log dir owner $(stat -c %u "$tmp/logs")"
run -- sh -c 'exit 3' 2>/dev/null; rc=$?
[[ $rc == 3 ]] && ok "exit status passes through docker run" || bad "exit status: $rc"
echo "image smoke: $fails failed"
exit $(( fails ? 1 : 0 ))
