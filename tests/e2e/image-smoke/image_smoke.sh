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
docker image inspect "$image" >/dev/null 2>&1 || skip "image $image not built (cagent builds it; by hand: see the top of image/Dockerfile)"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
probe=$here/../world/cage_probe.py
[[ -f $probe ]] || { echo "not ok - the in-cage probe $probe is missing"; exit 1; }

tmp=$(mktemp -d /tmp/cage-image.XXXXXX)
name=cagent-smoke-$$
trap 'docker rm -f "$name" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
install -d -o 4242 -g 4242 "$tmp/ws" && install -d "$tmp/logs"
# The netlink probe (the image has no nft binary: cage-init speaks netlink
# itself), and a planted setuid file in the workspace: the control that the
# same find expression finds a setuid file where there is one.
install -o 4242 -g 4242 -m 0644 "$probe" "$tmp/ws/probe.py"
install -o 4242 -g 4242 -m 4755 /dev/null "$tmp/ws/suid-control"
# As cagent runs it: low ports for CAP_NET_BIND_SERVICE only (cage-init refuses to start otherwise).
caps=(--sysctl net.ipv4.ip_unprivileged_port_start=1024 --cap-drop ALL)
for c in NET_ADMIN NET_BIND_SERVICE SETUID SETGID SETPCAP CHOWN DAC_OVERRIDE FOWNER KILL; do caps+=(--cap-add "$c"); done
run() { docker run --rm --init -i --name "$name" "${caps[@]}" -v "$tmp/ws:/workspace" -v "$tmp/logs:/var/log/cagent" \
          -w /workspace "$image" "$@"; }
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# The agent's checks; then it waits (bounded) while root in the same
# container asks nf_tables the same question: the positive control.
run -- bash -c '
  s() { awk -v k="$1:" "\$1 == k { print \$2 }" /proc/self/status; }
  echo "uid=$(id -u) bnd=$(s CapBnd) eff=$(s CapEff) amb=$(s CapAmb) nnp=$(s NoNewPrivs)"
  echo "resolv=$(tr "\n" " " < /etc/resolv.conf)"
  echo "suid=$(find / -xdev -perm /6000 -type f 2>/dev/null | wc -l)"
  echo "files=$(find / -xdev -type f 2>/dev/null | wc -l)"
  echo "suid-control=$(find /workspace -perm /6000 -type f 2>/dev/null | tr "\n" " ")"
  command -v sudo >/dev/null && echo sudo=present || echo sudo=absent
  echo "nft-probe: $(python3 /workspace/probe.py nft-list 2>&1)"
  getent hosts example.com >/dev/null && echo dns=open || echo dns=closed
  echo "dig: $(dig +time=3 +tries=1 @127.0.0.1 example.com A 2>&1 | grep -E "status:|EDE" | tr "\n" " ")"
  for t in git curl less ps rg jq python3 node npm dig; do command -v $t >/dev/null || echo "missing=$t"; done
  touch /workspace/agent-done
  i=0; while [ ! -e /workspace/root-done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  echo end' </dev/null >"$tmp/out" 2>"$tmp/stderr" &
run_pid=$!
deadline=$(( $(now_ms) + 120000 ))
while [[ ! -e $tmp/ws/agent-done ]] && kill -0 "$run_pid" 2>/dev/null && (( $(now_ms) < deadline )); do sleep 0.1; done
root_probe=$(docker exec -u 0 "$name" python3 /workspace/probe.py nft-list 2>&1)
touch "$tmp/ws/root-done"
wait "$run_pid"; rc=$?
out=$(cat "$tmp/out")
echo "$out" | sed 's/^/   | /'
echo "root: $root_probe" | sed 's/^/   | /'
[[ $rc == 0 && $out == *end* ]] && ok "cage started and ran the command" || { bad "cage run (exit $rc)"; sed 's/^/   ! /' "$tmp/stderr"; }
[[ $out == *uid=4242* ]] && ok "agent took the workspace owner's uid" || bad "uid remap"
[[ $out == *"bnd=0000000000000000 eff=0000000000000000 amb=0000000000000000 nnp=1"* ]] && ok "no capabilities, no_new_privs" || bad "capabilities"
[[ $out == *"resolv=nameserver 127.0.0.1 "* ]] && ok "resolv.conf points at dnsguard" || bad "resolv.conf"
files=$(sed -n 's/^files=//p' <<<"$out")
[[ ${files:-0} -gt 1000 ]] && ok "control: find sees the image's files ($files)" || bad "control: find saw ${files:-no} files"
[[ $out == *"suid-control=/workspace/suid-control "* ]] && ok "control: the same find expression finds a planted setuid file" \
  || bad "control: find -perm /6000 missed the planted setuid file"
[[ $out == *suid=0* && $out == *sudo=absent* ]] && ok "no setuid/setgid files, no sudo" || bad "setuid bits or sudo present"
[[ $root_probe == "nft-list ok tables="*cagent* ]] && ok "control: root in the same container lists the cagent table over netlink" \
  || bad "control: root's netlink probe: $root_probe"
[[ $out == *"nft-probe: nft-list denied EPERM"* ]] && ok "agent cannot list the ruleset (netlink: EPERM)" || bad "nft: $(grep nft-probe <<<"$out")"
[[ $out == *"dig: "*"status: NXDOMAIN"*"blocked by cagent policy"* ]] \
  && ok "control: dnsguard answers on 127.0.0.1 (NXDOMAIN, EDE: blocked by cagent policy)" || bad "dnsguard's answer: $(grep '^dig:' <<<"$out")"
[[ $out == *dns=closed* ]] && ok "default policy resolves nothing" || bad "default policy"
[[ $out != *missing=* ]] && ok "agent tools present" || bad "tools missing: $(grep -o 'missing=[^ ]*' <<<"$out" | tr '\n' ' ')"
[[ $(stat -c %u "$tmp/logs") == 4242 ]] && ok "log dir handed back to the workspace owner" || bad "log dir owner $(stat -c %u "$tmp/logs")"
run -- sh -c 'exit 3' 2>/dev/null; rc=$?
[[ $rc == 3 ]] && ok "exit status passes through docker run" || bad "exit status: $rc"
echo "image smoke: $fails failed"
exit $(( fails ? 1 : 0 ))
