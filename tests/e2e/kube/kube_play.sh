#!/usr/bin/env bash
# The Pod that `cagent kube` prints, played by a real consumer of Kubernetes
# YAML: `podman kube play` (Debian's podman 4.3). Podman has no native
# sidecars (an init container with restartPolicy: Always is run to its end),
# so the manifest played is the --classic-sidecar form: the same containers,
# dnsguard beside the agent instead of among the init containers.
#
#   kube_play.sh PATH/TO/cagent
#
# Everything podman keeps is private to this run (its own containers.conf,
# storage, run, volume and network directories under one temp root), so the
# Docker engine and any other podman user are never touched. The image is
# the one cagent builds (the e2e tag, refreshed here through cagent itself),
# handed to podman with docker save | podman load.
#
# The world: a podman network on TEST-NET-3 (203.0.113.0/24) with no way out,
# a fake upstream DNS (tests/tools/fake_dns.py, its query log read here) and
# two web servers (tests/e2e/world/http_echo.py): .10 is allowed.test, .11 is
# a name nobody resolves in the cage. Checked inside the played Pod, as the
# agent, each with its control:
#   - the agent holds no capability (every set empty, no_new_privs), is uid
#     1000, and cannot read or change the firewall (netlink refused) — while
#     the dnsguard container, root with NET_ADMIN, lists the cagent table;
#   - an allowed name resolves and connects (the web server's body);
#   - a denied name does not resolve and is never forwarded (the upstream's
#     query log has allowed.test and not denied.test);
#   - an address nobody resolved is refused at once — while the same
#     server answers a container outside the cage;
#   - DNS sent to another resolver (the upstream's own address) is answered
#     by dnsguard (its Extended DNS Error text), the allowed name through it too;
#   - the Pod fails closed: played again with NET_ADMIN withheld from the
#     guard, the guard fails and the agent's command never runs — while the
#     first play's command did.
# Exits 77 ("skipped: …") only when podman, catatonit or a Docker engine with
# which to build the image is missing.
set -uo pipefail
cagent=$(realpath "${1:?usage: kube_play.sh PATH/TO/cagent}")
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=$src/../../tools
world=$src/../world

skip() { echo "skipped: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (podman kube play with NET_ADMIN containers)"
command -v podman >/dev/null || skip "podman is not installed (setup.sh --test-tools installs it)"
command -v catatonit >/dev/null || [[ -x /usr/libexec/podman/catatonit ]] || skip "catatonit is not installed (podman's pause binary)"
timeout 20 docker info >/dev/null 2>&1 || skip "no Docker engine to build the cagent image with (docker info failed)"

net=cagent-kube-$$
subnet=203.0.113.0/24
dns=203.0.113.53 web_allowed=203.0.113.10 web_unresolved=203.0.113.11
# A network on a documentation range must not capture a route the host needs.
if ip -o route show | grep -q '^203\.0\.113\.'; then skip "$subnet is already routed on this host"; fi

# runc when it is there: podman takes crun whenever that is installed too
# (a package removed and put back can leave both), and crun refuses hosts
# with hybrid cgroups, such as these machines, before any container starts.
runtime_line=
if command -v runc >/dev/null; then runtime_line='runtime = "runc"'; fi
root=$(mktemp -d /var/tmp/cagent-kube.XXXXXX) || exit 1
mkdir -p "$root"/{storage,run,tmp,volumes,networks,libpod,dns,ws/kubews}
cat >"$root/containers.conf" <<EOF
[containers]
# runc here refuses podman's default rlimits.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
$runtime_line
tmp_dir = "$root/tmp"
volume_path = "$root/volumes"
static_dir = "$root/libpod"
[network]
network_config_dir = "$root/networks"
EOF
cat >"$root/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$root/storage"
runroot = "$root/run"
EOF
export CONTAINERS_CONF=$root/containers.conf CONTAINERS_STORAGE_CONF=$root/storage.conf
pm() { podman --root "$root/storage" --runroot "$root/run" "$@"; }

cleanup() {
  pm pod rm -f -a >/dev/null 2>&1
  pm rm -f -a >/dev/null 2>&1
  pm network rm -f "$net" >/dev/null 2>&1
  pm volume rm -f -a >/dev/null 2>&1
  pm system reset -f >/dev/null 2>&1  # unmounts what the private storage still holds
  rm -rf "$root"
}
trap cleanup EXIT

failures=0 passes=0
ok() { echo "ok - $*"; passes=$((passes + 1)); }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }
die() { echo "FAIL: $*" >&2; exit 1; }

# ---- the image: built by cagent from this tree, loaded into podman ------------
image=${CAGENT_IMAGE:-cagent-e2e:latest}
mkdir -p "$root/build-ws" "$root/home"
(cd "$root/build-ws" && CAGENT_HOME=$root/home CAGENT_IMAGE=$image CAGENT_HOME_VOLUME=cagent-kube-home-$$ \
   "$cagent" --ca-cert system -- true </dev/null >"$root/build.out" 2>&1) || {
  tail -n 20 "$root/build.out" >&2; die "cagent could not build $image"; }
docker volume ls -q --filter "label=cagent.home=cagent-kube-home-$$" | xargs -r docker volume rm >/dev/null 2>&1
docker save "$image" | pm load -q >/dev/null || die "podman load of $image failed"
pm image exists "$image" || pm image exists "localhost/$image" || die "$image is not in podman's storage"
echo "# image $image loaded into podman"

# ---- the world ------------------------------------------------------------------
pm network create --internal --subnet "$subnet" "$net" >/dev/null || die "podman network create failed"
cat >"$root/zone.json" <<EOF
{"names": {
  "allowed.test": {"ttl": 300, "A": ["$web_allowed"]},
  "denied.test":  {"ttl": 300, "A": ["$web_unresolved"]}
}}
EOF
pm run -d --name "$net-dns" --network "$net" --ip "$dns" --entrypoint /usr/bin/python3 \
  -v "$tools/fake_dns.py:/t/fake_dns.py:ro" -v "$root/zone.json:/t/zone.json:ro" -v "$root/dns:/log" \
  "$image" /t/fake_dns.py --listen "$dns:53" --zone /t/zone.json --log /log/queries.log --ready /log/ready >/dev/null ||
  die "the fake DNS server did not start"
for ip in $web_allowed $web_unresolved; do
  pm run -d --name "$net-web-${ip##*.}" --network "$net" --ip "$ip" --entrypoint /usr/bin/python3 \
    -v "$world/http_echo.py:/t/http_echo.py:ro" "$image" /t/http_echo.py "web${ip##*.}" >/dev/null ||
    die "web server $ip did not start"
done
for _ in $(seq 1 100); do [[ -f $root/dns/ready ]] && break; sleep 0.1; done
[[ -f $root/dns/ready ]] || die "the fake DNS server is not ready"

# ---- the workspace and the manifest -------------------------------------------------
ws=$root/ws/kubews
cp "$src/pod_checks.sh" "$world/cage_probe.py" "$ws/"
cat >"$root/cagent.yaml" <<EOF
domains: [allowed.test]
dns_resolvers: [$dns]
EOF
claim=cagent-kube-ws-$$
kube() { (cd "$ws" && CAGENT_HOME=$root/home "$cagent" kube -c "$root/cagent.yaml" --no-update \
            --classic-sidecar --claim "$claim" --image "$image" "$@"); }
kube -- /bin/bash /workspace/pod_checks.sh "$web_allowed" "$web_unresolved" "$dns" >"$root/pod.yaml" 2>"$root/kube.err" ||
  { cat "$root/kube.err" >&2; die "cagent kube failed"; }
# The claim: podman makes a named volume of it; the test fills it first.
# Podman gives a volume the owner of the image's mount point (root's
# /workspace) on its first use and ignores the Pod's fsGroup, where a
# cluster makes the claim group 1000's: one throwaway use first, then the
# workspace handed to the agent's uid as a CI runner's checkout would be.
pm volume create "$claim" >/dev/null || die "podman volume create failed"
pm run --rm -v "$claim:/workspace" --entrypoint /bin/true "$image" || die "first use of the claim failed"
vol=$(pm volume inspect "$claim" --format '{{.Mountpoint}}')
cp -a "$ws/." "$vol/"
chown -R 1000:1000 "$vol"

# ---- play 1: the cage ------------------------------------------------------------------
pod=cagent-kubews
if ! timeout 120 podman --root "$root/storage" --runroot "$root/run" kube play --network "$net" "$root/pod.yaml" \
     >"$root/play1.out" 2>&1; then
  cat "$root/play1.out" >&2
  pm logs "$pod-guard" >&2 2>&1
  die "podman kube play failed"
fi
status=$(timeout 120 podman --root "$root/storage" --runroot "$root/run" wait "$pod-agent" 2>&1) || die "the agent container did not end: $status"
pm logs "$pod-agent" >"$root/agent.log" 2>&1
echo "# the agent's checks (exit $status):"
sed 's/^/#   /' "$root/agent.log"
while IFS= read -r line; do
  case $line in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) not_ok "${line#not ok - }" ;;
  esac
done <"$root/agent.log"
grep -q '^checks done$' "$root/agent.log" && ok "the agent's command ran to its end (status $status)" ||
  not_ok "the agent's checks did not finish (status $status)"
[[ $status == 0 ]] || not_ok "the agent's checks exited $status"

# Positive control of the firewall probe: root with NET_ADMIN (the dnsguard
# container) lists the table the agent could not see.
if out=$(pm exec -i "$pod-dnsguard" /usr/bin/python3 - nft-list <"$world/cage_probe.py" 2>&1) &&
   grep -q 'nft-list ok.*cagent' <<<"$out"; then
  ok "control: root with NET_ADMIN in the Pod lists the cagent table ($(grep -m1 -o 'nft-list ok.*' <<<"$out"))"
else
  not_ok "control: the dnsguard container could not list the cagent table: $out"
fi
# The native sidecar's startup probe (podman does not run it): its command
# answers 0 once dnsguard answers, and fails for a dnsguard that is not there
# (the same probe against a port nothing listens on, as the control).
probe=(/usr/local/bin/cage-init --mode probe --policy /etc/cagent/policy.toml --ready-timeout 2000)
if out=$(pm exec "$pod-dnsguard" "${probe[@]}" 2>&1); then
  ok "the startup probe's command succeeds against the running dnsguard"
else
  not_ok "the startup probe failed against the running dnsguard: $out"
fi
# cage-init exits 125 when its step fails (anything else: the copy failed).
control=0
pm exec "$pod-dnsguard" sh -c 'sed "s/\"127.0.0.1:53\", \"\[::1\]:53\"/\"127.0.0.1:5399\"/" /etc/cagent/policy.toml >/tmp/p.toml &&
  grep -q 127.0.0.1:5399 /tmp/p.toml && exec "$@"' probe "${probe[0]}" --mode probe --policy /tmp/p.toml \
  --ready-timeout 1000 >"$root/probe-control.out" 2>&1 || control=$?
if [[ $control == 125 ]] && grep -q 'wait-for-dnsguard' "$root/probe-control.out"; then
  ok "control: the startup probe fails where no dnsguard answers ($(head -n 1 "$root/probe-control.out"))"
else
  not_ok "control: the startup probe with no dnsguard on its port exited $control: $(head -c 300 "$root/probe-control.out")"
fi
# The upstream saw the allowed name and never the denied one.
queries=$root/dns/queries.log
if grep -q ' allowed\.test ' "$queries" 2>/dev/null; then
  ok "control: the upstream was asked for allowed.test"
else
  not_ok "the upstream never saw allowed.test (log: $(head -c 300 "$queries" 2>/dev/null))"
fi
if grep -qi 'denied\.test' "$queries" 2>/dev/null; then
  not_ok "denied.test was forwarded upstream: $(grep -i 'denied\.test' "$queries" | head -n 3 | tr '\n' ';')"
else
  ok "denied.test never reached the upstream ($(wc -l <"$queries") queries logged)"
fi
# The address nobody resolved is alive: a container outside the cage gets its page.
if out=$(pm run --rm --network "$net" --entrypoint /usr/bin/curl "$image" -sS -m 5 "http://$web_unresolved/" 2>&1) &&
   [[ $out == "cagent-e2e web${web_unresolved##*.}" ]]; then
  ok "control: $web_unresolved answers outside the cage ($out)"
else
  not_ok "control: $web_unresolved did not answer outside the cage: $out"
fi
[[ -f $vol/agent-ran ]] && ok "control: the first play's command ran (its marker is in the claim)" ||
  not_ok "the first play left no marker in the claim"
pm pod rm -f "$pod" >/dev/null 2>&1

# ---- play 2: the guard cannot install the ruleset -------------------------------------
# The same generator's manifest, with NET_ADMIN taken from the guard (and
# only from it): the Pod must stop at the guard, the command never run.
kube -- /usr/bin/touch /workspace/closed-ran >"$root/pod2.yaml" 2>>"$root/kube.err" || die "cagent kube failed (play 2)"
awk '
  /^    - name: /        { in_guard = ($3 == "guard") }
  in_guard && /^            - NET_ADMIN$/ { next }
  { print }' "$root/pod2.yaml" >"$root/pod2-closed.yaml"
if cmp -s "$root/pod2.yaml" "$root/pod2-closed.yaml"; then die "could not take NET_ADMIN from the guard in the manifest"; fi
grep -q -- '- NET_ADMIN' "$root/pod2-closed.yaml" || die "NET_ADMIN was taken from dnsguard too"
play2=0
timeout 120 podman --root "$root/storage" --runroot "$root/run" kube play --network "$net" "$root/pod2-closed.yaml" \
  >"$root/play2.out" 2>&1 || play2=$?
guard_log=$(pm logs "$pod-guard" 2>&1)
guard_exit=$(pm inspect "$pod-guard" --format '{{.State.ExitCode}}' 2>&1)
agent_state=$(pm inspect "$pod-agent" --format '{{.State.Status}}' 2>&1)
echo "# play 2: kube play exit $play2; guard exit $guard_exit; agent $agent_state"
echo "# guard: $guard_log"
if [[ $guard_exit != 0 ]] && grep -q 'install-ruleset' <<<"$guard_log"; then
  ok "without NET_ADMIN the guard fails at install-ruleset (exit $guard_exit)"
else
  not_ok "the guard did not fail at install-ruleset (exit $guard_exit): $guard_log"
fi
# Never started (podman: "created") is what proves it: a started agent
# container could still be about to run the command.
if [[ -e $vol/closed-ran ]]; then
  not_ok "the agent's command ran although the guard failed"
elif [[ $agent_state != created && $agent_state != configured ]]; then
  not_ok "the agent container was started although the guard failed ($agent_state)"
else
  ok "the Pod failed closed: the agent container never started ($agent_state), its command never ran"
fi

echo "# $passes passed, $failures failed"
echo "$passes passed, $failures failed"
[[ $failures -eq 0 ]]
