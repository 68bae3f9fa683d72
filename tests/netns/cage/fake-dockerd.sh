#!/usr/bin/env bash
# Stands in for dockerd in the whole-cage netns test (no sysbox here, so no
# real engine): cage-init starts it exactly where it would start dockerd —
# in the sandbox, as the sandbox's root — and it records, as TAP lines in
# the socket directory, what root there can and cannot do. It then writes
# "done" and stays up like an engine until cage-init ends it.
#
#   fake-dockerd.sh --host unix://DIR/docker.sock [other dockerd flags]
#
# Environment (from inner.sh, through cage-init): CAGE_TMP CAGE_STAGE
# CAGE_WS HTTP_PORT CAGE_AGENT_UID CAGE_NS_NET CAGE_NS_PID CAGE_NS_MNT CAGE_NS_USER
set -u
dir='' dns='' group=''
while (( $# )); do
  case $1 in
    --host) dir=${2#unix://}; dir=${dir%/docker.sock}; shift ;;
    --dns) dns=$2; shift ;;
    --group) group=$2; shift ;;
  esac
  shift
done
out=$dir/results
: > "$out"
ok() { echo "ok - sandbox: $*" >> "$out"; }
bad() { echo "not ok - sandbox: $*" >> "$out"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }
refuse() { local what=$1; shift; if "$@" >/dev/null 2>&1; then bad "$what (it succeeded)"; else ok "$what"; fi; }

[[ $dns == 100.127.255.253 ]] && ok "--dns is the cage's end of the link" || bad "--dns is $dns"
[[ -n $group ]] && ok "--group $group" || bad "no --group"
[[ $(id -u) == 0 ]] && ok "runs as the sandbox's root" || bad "runs as uid $(id -u)"
for ns in net pid mnt user; do
  var=CAGE_NS_${ns^^}
  # The cage's id must be known (an empty one differs from everything).
  [[ ${!var} == "$ns:["[0-9]*"]" ]] && ok "the cage's $ns namespace id is known (${!var})" \
    || bad "no id for the cage's $ns namespace: '${!var}'"
  [[ $(readlink /proc/self/ns/$ns) != "${!var}" ]] && ok "own $ns namespace" \
    || bad "shares the cage's $ns namespace (${!var})"
done
# The sandbox's root is the agent outside; the cage's root is not mapped.
[[ $(awk 'NR == 1 { print $1, $2, $3 }' /proc/self/uid_map) == "0 $CAGE_AGENT_UID 1" ]] \
  && ok "the sandbox's root is the agent's uid outside" || bad "uid map: $(cat /proc/self/uid_map | tr '\n' ';')"
awk '$2 == 0 { bad = 1 } END { exit bad }' /proc/self/uid_map && ok "the cage's root is not mapped in here" \
  || bad "the cage's root is mapped: $(cat /proc/self/uid_map | tr '\n' ';')"
# dnsguard's uid and gid are not mapped either: they own the log directory,
# and the agent could hand the sandbox an fd of it (a unix socket in the
# workspace); a process here with dnsguard's id could then replace the
# decision record or plant a control socket of its own.
dg=$(cat "$CAGE_TMP/dnsguard.uid") dgg=$(cat "$CAGE_TMP/dnsguard.gid")
[[ $dg =~ ^[1-9][0-9]*$ && $dgg =~ ^[1-9][0-9]*$ ]] && ok "dnsguard's uid/gid are known ($dg/$dgg)" \
  || bad "dnsguard's uid/gid unknown: '$dg'/'$dgg'"
awk -v id="$dg" '$2 <= id && id < $2 + $3 { bad = 1 } END { exit bad }' /proc/self/uid_map \
  && ok "dnsguard's uid is not mapped in here" || bad "dnsguard's uid $dg is mapped: $(cat /proc/self/uid_map | tr '\n' ';')"
awk -v id="$dgg" '$2 <= id && id < $2 + $3 { bad = 1 } END { exit bad }' /proc/self/gid_map \
  && ok "dnsguard's gid is not mapped in here" || bad "dnsguard's gid $dgg is mapped: $(cat /proc/self/gid_map | tr '\n' ';')"
[[ $(stat -c %u /etc/passwd) == 65534 ]] && ok "the cage's root-owned files show as nobody" \
  || bad "/etc/passwd owner $(stat -c %u /etc/passwd)"
refuse "read a root-only file of the cage (/etc/shadow)" cat /etc/shadow

# Hidden: the log directory (control socket, decision record) and cage-init's runtime dir.
[[ -d $CAGE_TMP/log && -z $(ls -A "$CAGE_TMP/log" 2>&1) ]] && ok "the log directory is empty here" \
  || bad "log directory shows: $(ls -A "$CAGE_TMP/log" 2>&1 | tr '\n' ' ')"
[[ -z $(ls -A "$CAGE_TMP/run" 2>&1) ]] && ok "cage-init's runtime dir is empty here" \
  || bad "runtime dir shows: $(ls -A "$CAGE_TMP/run" 2>&1 | tr '\n' ' ')"
# Control for the umount/remount refusals here and below: root here can
# mount, remount and unmount a mount of its own, so a refusal is about the
# locked mounts, not a missing capability or tool.
ctl=$dir/mount-control
mkdir -p "$ctl"
check "control: mount a tmpfs of its own" mount -t tmpfs -o ro cagent-ctl "$ctl"
check "control: remount it read-write" mount -o remount,rw "$ctl"
check "control: umount it" umount "$ctl"
rmdir "$ctl" 2>/dev/null
refuse "umount of the covered log directory" umount "$CAGE_TMP/log"
refuse "lazy umount of the covered log directory" umount -l "$CAGE_TMP/log"
refuse "umount of /proc (the cage's is gone, this one is locked)" umount -l /proc
[[ -z $(ls /run/netns 2>/dev/null) ]] && ok "no named network namespaces under /run" || bad "/run/netns visible"

# Read-only: the cage's programs cannot be replaced (the host runs the
# cage's dnsguard as root for `cagent allow`).
refuse "write into the cage's binaries" sh -c "echo x >> '$CAGE_STAGE/dnsguard'"
refuse "create a file next to them" touch "$CAGE_STAGE/planted"
refuse "remount / read-write" mount -o remount,rw /
refuse "remount the binaries' directory read-write" mount -o remount,bind,rw "$CAGE_STAGE"
check "the workspace is writable (nested containers build it)" touch "$CAGE_WS/from-sandbox"
# Its images' other ids exist here (unpacking them works) but land on the
# cage's shifted block: a setgid-`disk` (6) or setuid-1001 program made
# here is group 60006 / user 61001 outside (inner.sh checks), and ids
# outside the map cannot be given at all.
check "chown to an image's user (1001)" sh -c "touch '$CAGE_WS/as-1001' && chown 1001 '$CAGE_WS/as-1001' && chmod 4755 '$CAGE_WS/as-1001'"
check "chgrp to an image's group (6, disk)" sh -c "touch '$CAGE_WS/as-disk' && chgrp 6 '$CAGE_WS/as-disk' && chmod 2755 '$CAGE_WS/as-disk'"
refuse "chown to an id outside the map (70000)" chown 70000 "$CAGE_WS/from-sandbox"

# No cage process is visible: only this PID namespace's.
procs=$(ls /proc | grep -c '^[0-9]')
(( procs < 10 )) && ok "$procs processes visible" || bad "$procs processes visible"
for comm in /proc/[0-9]*/comm; do
  [[ $(cat "$comm" 2>/dev/null) == dnsguard ]] && bad "dnsguard visible at $comm"
done
[[ $(cat /proc/1/comm) == cage-init ]] && ok "pid 1 is cage-init's sandbox init" || bad "pid 1 is $(cat /proc/1/comm)"
refuse "open pid 1's fds (not dumpable)" readlink /proc/1/fd/0
refuse "read pid 1's environment" cat /proc/1/environ
refuse "enter pid 1's root" ls /proc/1/root/

# The firewall is out of reach: this namespace has none of the cage's,
# and flushing its own changes nothing in the cage (the agent checks).
[[ -z $(nft list tables 2>&1 | grep cagent) ]] && ok "no cagent table in this namespace" || bad "cagent table visible"
check "nft flush ruleset (here only)" nft flush ruleset

# DNS through dnsguard, on the link's address and wherever else it is sent.
a=$(kdig +short +time=3 +retry=0 @100.127.255.253 nested.allowed.test A 2>&1)
[[ $a == 192.0.2.83 ]] && ok "allowed name answered through the link" || bad "allowed name: $a"
a=$(getent ahostsv4 nested.allowed.test 2>&1)
[[ $a == *192.0.2.83* ]] && ok "the engine's own lookups (resolv.conf) go to dnsguard" || bad "getent: $a"
a=$(kdig +time=3 +retry=0 @192.0.2.53 nested.allowed.test A 2>&1)
[[ $a == *"status: NOERROR"* && $a == *192.0.2.83* ]] && ok "a query to another resolver lands on dnsguard too" || bad "redirect: $a"
a=$(kdig +time=3 +retry=0 @100.127.255.253 denied.test A 2>&1)
[[ $a == *"status: NXDOMAIN"* ]] && ok "denied name refused" || bad "denied name: $a"
a=$(kdig +time=3 +retry=0 @192.0.2.53 secret.denied.test A 2>&1)
[[ $a == *"status: NXDOMAIN"* ]] && ok "denied name sent elsewhere refused too" || bad "denied elsewhere: $a"
a=$(kdig +time=3 +retry=0 +tcp @192.0.2.53 secret.denied.test A 2>&1)
[[ $a == *"status: NXDOMAIN"* ]] && ok "denied name over TCP refused" || bad "denied over TCP: $a"

# Connections go through the cage's forward chain: allowed address (just
# resolved, so in allow4) yes; any other refused at once.
body=$(curl -s --max-time 5 "http://192.0.2.83:$HTTP_PORT/" 2>&1)
[[ $body == "hello from the world" ]] && ok "TCP to the resolved address goes through" || bad "TCP to allowed: $body"
start=$(date +%s%N)
if curl -s --max-time 5 "http://192.0.2.81:$HTTP_PORT/" >/dev/null 2>&1; then
  bad "TCP to an unresolved address went through"
else
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  (( ms < 2000 )) && ok "TCP to an unresolved address refused (${ms} ms)" || bad "unresolved address: timed out (${ms} ms)"
fi
touch "$dir/docker.sock"   # what the agent looks for
touch "$dir/done"
exec sleep 300
