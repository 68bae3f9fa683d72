#!/usr/bin/env bash
# world_up.sh — create the e2e test world (ctest FIXTURES_SETUP).
#
#   the image     built through cagent itself (a first `cagent -- true`), so the
#                 tier tests the image users get; tagged again for the world
#   the network   user-defined, --internal (no route anywhere), 198.51.100.0/24
#                 and 2001:db8:e2e::/64 (IPv6 optional: if the engine refuses
#                 it, the IPv6 case reports skipped with the reason)
#   the internet  from the same image with --entrypoint python3: an
#                 authoritative DNS server (tests/tools/fake_dns.py, zone.json)
#                 at .53 whose query log lands in a host directory, and HTTP
#                 servers (http_echo.py) on fixed addresses
#   a user        an ordinary account in the docker group (the workspace
#                 owner's uid), with cagent installed for it the way the
#                 README says (cmake --install, into a prefix it can read)
#
# Every resource is written to the state file the moment it exists, so
# world_down.sh can remove a half-built world too.
E2E_NAME=setup
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_docker
# A previous run whose cleanup never ran (interrupted ctest): tear it down first.
[[ -f $E2E_STATE ]] && { bash "$E2E_SRC/world_down.sh" >&2 || true; }
rm -f "$E2E_STATE"

RUN_ID=$(date +%s)-$$
NET=cagent-e2e-$RUN_ID
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/cagent-e2e-world.XXXXXX") || die "mktemp failed"
chmod 755 "$ROOT"
E2E_HOME=$ROOT/home
# Never the user's cagent:latest: the tests' own tag unless CAGENT_IMAGE says.
CAGENT_IMAGE_TAG=${CAGENT_IMAGE:-cagent-e2e:latest}
WORLD_IMAGE=cagent-e2e-world:$RUN_ID
SUBNET4=198.51.100.0/24
SUBNET6=2001:db8:e2e::/64
DNS4=198.51.100.53
DNS6=2001:db8:e2e::53
DNS_LOG=$ROOT/dns/queries.log
state_set RUN_ID "$RUN_ID"
state_set ROOT "$ROOT"
state_set NET "$NET"
state_set E2E_HOME "$E2E_HOME"
state_set CAGENT_IMAGE_TAG "$CAGENT_IMAGE_TAG"
state_set DNS4 "$DNS4"
state_set DNS6 "$DNS6"
state_set DNS_LOG "$DNS_LOG"
state_set SUBNET4 "$SUBNET4"
state_set SUBNET6 "$SUBNET6"
started=$SECONDS

# ---- leftovers of an earlier run that could not clean up (killed CI job) ---
# They hold the same subnet, so a new network could not be created next to them.
for old in $(docker network ls --filter label=cagent.e2e.world --format '{{.Name}}'); do
  old_run=$(docker network inspect -f '{{index .Labels "cagent.e2e.world"}}' "$old" 2>/dev/null)
  say "removing the leftover world $old"
  ids=$(docker ps -aq --filter "label=cagent.e2e.run=$old_run")
  [[ -n $ids ]] && docker rm -f $ids >/dev/null
  docker network rm "$old" >/dev/null || die "cannot remove leftover network $old"
done
# Home volumes of killed runs (their prefix is cagent-e2e-home-<run>); one
# still in use by a running cage is left alone (rm fails).
for vol in $(docker volume ls -q --filter label=cagent.home); do
  [[ $vol == cagent-e2e-home-* ]] && docker volume rm "$vol" >/dev/null 2>&1
done
for img in $(docker images --filter reference='cagent-e2e-world' --format '{{.Repository}}:{{.Tag}}'); do
  docker rmi "$img" >/dev/null 2>&1 || true
done

# The cages' home volumes (one per workspace) carry this run's own prefix:
# a user's cagent-home-* volumes are never mounted, changed or removed.
HOME_VOLUME_PREFIX=cagent-e2e-home-$RUN_ID
state_set HOME_VOLUME_PREFIX "$HOME_VOLUME_PREFIX"
export_world_env

# ---- the network ---------------------------------------------------------
common=(--label "cagent.e2e.world=$RUN_ID" --internal --subnet "$SUBNET4")
if err=$(docker network create "${common[@]}" --ipv6 --subnet "$SUBNET6" "$NET" 2>&1 >/dev/null); then
  state_set IPV6 1
else
  say "IPv6 network refused ($err); continuing IPv4-only"
  state_set IPV6 0
  state_set IPV6_SKIP_REASON "the Docker engine refused an IPv6 network: ${err//$'\n'/ }"
  docker network create "${common[@]}" "$NET" >/dev/null || die "docker network create $NET failed"
fi
state_set NET_CREATED 1
source "$E2E_STATE"

# ---- the image, through cagent -----------------------------------------
[[ -x $E2E_CAGENT ]] || die "cagent binary not built: $E2E_CAGENT (build target cagent)"
mkdir -p "$E2E_HOME/.cagent" "$ROOT/dns" "$ROOT/bootstrap"
chmod 755 "$E2E_HOME"
# The global config: the built-in default with the world's DNS server as
# dnsguard's upstream. A machine's resolvers belong here: from an untrusted
# workspace .cagent.yaml, dns_resolvers are ignored.
default_config=$E2E_SRC/../../../config-default.yaml
grep -qx 'dns_resolvers: \[\]' "$default_config" || die "config-default.yaml has no 'dns_resolvers: []' line to replace"
sed "s/^dns_resolvers: \[\]\$/dns_resolvers: [\"$DNS4\"]/" "$default_config" >"$E2E_HOME/.cagent/config.yaml"
# (Written here, so approved here: --accept-workspace-config below.)
printf 'domains: ["allowed.test"]\n' >"$ROOT/bootstrap/.cagent.yaml"
chown -R "$E2E_UID:$E2E_GID" "$ROOT/bootstrap"
# Build machines behind a TLS-intercepting egress (CI's does this) trust its
# CA only in the host's bundle: the npm stage of the image build needs it — the ca_certificates feature,
# the way a user behind such a proxy would use it (same as the cagent-smoke
# test, so both ask for the same image hash and neither forces a rebuild).
ca_args=(--ca-cert system)
say "building/checking the image $CAGENT_IMAGE_TAG through cagent (first build: several minutes)"
# On the world network (no server runs there yet): this run only builds the
# image and proves a cage starts; nothing it does leaves the cage.
if ! (cd "$ROOT/bootstrap" && env HOME="$E2E_HOME" CAGENT_HOME="$E2E_HOME/.cagent" CAGENT_IMAGE="$CAGENT_IMAGE_TAG" \
        CAGENT_HOME_VOLUME="$HOME_VOLUME_PREFIX" \
        timeout 2400 "$E2E_CAGENT" "${ca_args[@]}" --accept-workspace-config \
        --arg="--network=$NET" --arg="--label=cagent.e2e.run=$RUN_ID" -- true \
        </dev/null >"$ROOT/bootstrap.log" 2>&1); then
  tail -n 40 "$ROOT/bootstrap.log" >&2
  die "cagent -- true (image build + first cage) failed; log above"
fi
say "image ready after $((SECONDS - started))s"
docker tag "$CAGENT_IMAGE_TAG" "$WORLD_IMAGE" || die "cannot tag $WORLD_IMAGE"
state_set WORLD_IMAGE "$WORLD_IMAGE"

# ---- an ordinary user ------------------------------------------------------
# Users run cagent as themselves, in the docker group, from an installed
# copy (the checkout may sit in a 0700 home no other uid can enter). The
# account takes the workspace owner's uid, so its workspaces are its own.
E2E_USER=cagent-e2e-user
if getent passwd "$E2E_USER" >/dev/null; then
  [[ $(id -u "$E2E_USER") == "$E2E_UID" ]] || die "account $E2E_USER exists with another uid than $E2E_UID"
elif getent passwd "$E2E_UID" >/dev/null; then
  die "uid $E2E_UID is taken by $(getent passwd "$E2E_UID" | cut -d: -f1); the e2e user needs it"
else
  getent group docker >/dev/null || die "no docker group: the Docker engine's socket group is needed for the e2e user"
  getent group "$E2E_GID" >/dev/null || { groupadd -g "$E2E_GID" "$E2E_USER" || die "groupadd $E2E_USER"; state_set USER_GROUP_CREATED 1; }
  useradd -M -u "$E2E_UID" -g "$E2E_GID" -G docker -d "$ROOT/user-home" -s /bin/bash "$E2E_USER" || die "useradd $E2E_USER"
  state_set USER_CREATED 1
fi
id -nG "$E2E_USER" | tr ' ' '\n' | grep -qx docker || usermod -aG docker "$E2E_USER" || die "usermod -aG docker $E2E_USER"
install -d -o "$E2E_UID" -g "$E2E_GID" -m 0700 "$ROOT/user-home"
build_tree=$(cd "$(dirname "$E2E_CAGENT")/.." && pwd)
cmake --install "$build_tree" --prefix "$ROOT/prefix" >"$ROOT/install.log" 2>&1 || {
  tail -n 20 "$ROOT/install.log" >&2; die "cmake --install into $ROOT/prefix failed"; }
chmod -R a+rX "$ROOT/prefix"
state_set E2E_USER "$E2E_USER"
state_set E2E_USER_HOME "$ROOT/user-home"
state_set E2E_USER_CAGENT "$ROOT/prefix/bin/cagent"

# ---- the internet --------------------------------------------------------
fake_dns=$E2E_SRC/../../tools/fake_dns.py
[[ -f $fake_dns ]] || die "tests/tools/fake_dns.py is missing"
fake_dns=$(cd "$(dirname "$fake_dns")" && pwd)/fake_dns.py

world_run() {  # NAME LAST-OCTET [docker args…] -- python args…
  local name=$1 host=$2; shift 2
  local ip6=()
  ((IPV6)) && ip6=(--ip6 "2001:db8:e2e::$host")
  docker run -d --name "cagent-e2e-$RUN_ID-$name" --label "cagent.e2e.run=$RUN_ID" \
    --network "$NET" --ip "198.51.100.$host" "${ip6[@]}" --user 0 --entrypoint python3 \
    -v "$E2E_SRC:/e2e:ro" "$@" >/dev/null || die "cannot start world container $name"
}

chmod 777 "$ROOT/dns"
listen6=()
((IPV6)) && listen6=(--listen "[$DNS6]:53")
world_run dns 53 -v "$fake_dns:/tools/fake_dns.py:ro" -v "$ROOT/dns:/log" \
  "$WORLD_IMAGE" /tools/fake_dns.py --listen "$DNS4:53" "${listen6[@]}" \
    --zone /e2e/zone.json --log /log/queries.log
# Web servers (body "cagent-e2e webNN"), see zone.json for the names:
#   10 allowed.test   12 *.wild.test, extra.test, one/two.github.io   13 CNAME target
#   14 15 16 rot.test (rotating)   17 v6.test (AAAA only)
#   19 no name at all: the "never resolved" address   20 secure.test (HTTPS, below)
#   21 api.github.com, github.com, echo.test, wrong.test (secrets, below)
web_hosts=(10 12 13 14 15 16 17 19)
for h in "${web_hosts[@]}"; do
  # web13 also has a network alias: a name Docker's embedded resolver
  # answers itself (cages without dns_resolvers ask it).
  alias=()
  [[ $h == 13 ]] && alias=(--network-alias peer.allowed.test)
  world_run "web$h" "$h" "${alias[@]}" "$WORLD_IMAGE" /e2e/http_echo.py "web$h"
done

# HTTPS: a CA generated here, a certificate for secure.test
# signed by it, static content incl. a bare repository for git's dumb HTTP.
tls=$ROOT/tls site=$ROOT/site
mkdir -p "$tls" "$site"
command -v openssl >/dev/null || die "openssl is needed to make the test CA"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cagent e2e test CA $RUN_ID" \
  -keyout "$tls/ca.key" -out "$tls/ca.pem" >/dev/null 2>&1 || die "openssl: test CA"
server_cert() {  # FILE-STEM NAME… — $tls/STEM.{key,pem} for these DNS names, signed by the test CA
  local stem=$1 sans; shift
  sans=$(printf 'DNS:%s,' "$@")
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" \
    -keyout "$tls/$stem.key" -out "$tls/$stem.csr" >/dev/null 2>&1 || die "openssl: $stem key"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "${sans%,}" >"$tls/$stem.cnf"
  openssl x509 -req -in "$tls/$stem.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 2 -extfile "$tls/$stem.cnf" -out "$tls/$stem.pem" >/dev/null 2>&1 || die "openssl: $stem cert"
  chmod 644 "$tls"/*
}
server_cert server secure.test
echo "cagent-e2e web20" >"$site/index.html"
git -c safe.directory='*' init -q --bare "$site/repo.git"
seed=$(mktemp -d "$ROOT/seed.XXXXXX")
git -C "$seed" init -q -b main
echo 'fetched over https' >"$seed/README"
git -C "$seed" add README
git -C "$seed" -c user.name=e2e -c user.email=e2e@example.invalid commit -q -m 'e2e https repo'
git -C "$seed" push -q "$site/repo.git" main:main || die "cannot seed the https repo"
git -C "$site/repo.git" symbolic-ref HEAD refs/heads/main
git -C "$site/repo.git" update-server-info
chmod -R a+rX "$site"
state_set TLS_CA "$tls/ca.pem"
world_run web20 20 -v "$tls:/tls:ro" -v "$site:/site:ro" \
  "$WORLD_IMAGE" /e2e/https_static.py /tls/server.pem /tls/server.key /site

# The secrets' world (web21): tests/tools/echo_server.py with a certificate
# from the same CA for api.github.com, github.com and echo.test — world names
# standing in for GitHub, and an allowed site that is no secret's host —
# but not for wrong.test (same address: a secret's host whose certificate
# names other sites). HTTP on port 80 too. /private/ is a bare repository
# (dumb HTTP) for the Basic password GITHUB_REAL_TOKEN only: the host's
# "real" GitHub token, which a cage must never see. Its request log (every
# header, real values included) lands on the host for the cases to read.
server_cert web21 api.github.com github.com echo.test
GITHUB_REAL_TOKEN=ghp_e2e$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
state_set GITHUB_REAL_TOKEN "$GITHUB_REAL_TOKEN"
private=$ROOT/private
mkdir -p "$private" "$ROOT/web21"
chmod 777 "$ROOT/web21"
git -c safe.directory='*' clone -q --bare "$site/repo.git" "$private/repo.git" || die "cannot make the private repo"
git -C "$private/repo.git" -c safe.directory='*' update-server-info
chmod -R a+rX "$private"
echo_server=$(cd "$E2E_SRC/../../tools" && pwd)/echo_server.py
WEB21_LOG=$ROOT/web21/requests.jsonl
state_set WEB21_LOG "$WEB21_LOG"
world_run web21 21 -v "$echo_server:/tools/echo_server.py:ro" -v "$tls:/tls:ro" -v "$private:/private:ro" \
  -v "$ROOT/web21:/log" "$WORLD_IMAGE" /tools/echo_server.py \
    --site 198.51.100.21,/tls/web21.pem,/tls/web21.key --http 198.51.100.21 \
    --log /log/requests.jsonl --ready /log/ready \
    --private-dir /private --private-token "$GITHUB_REAL_TOKEN"

# Ready when every server answers from the host (the bridge's own address):
# polled, never slept on.
for h in "${web_hosts[@]}"; do
  wait_for "web$h" 30 curl -sf -m 1 -o /dev/null "http://198.51.100.$h/" || {
    docker logs "cagent-e2e-$RUN_ID-web$h" 2>&1 | tail -n 20 >&2; die "web$h did not come up"; }
done
wait_for "web20 (https)" 30 curl -sf -m 1 -o /dev/null --cacert "$tls/ca.pem" \
  --resolve secure.test:443:198.51.100.20 https://secure.test/ || {
  docker logs "cagent-e2e-$RUN_ID-web20" 2>&1 | tail -n 20 >&2; die "web20 (https) did not come up"; }
wait_for "web21 (secrets' echo server)" 30 curl -sf -m 1 --http1.1 -o /dev/null --cacert "$tls/ca.pem" \
  --resolve echo.test:443:198.51.100.21 https://echo.test/echo || {
  docker logs "cagent-e2e-$RUN_ID-web21" 2>&1 | tail -n 20 >&2; die "web21 (https) did not come up"; }
wait_for "the DNS server" 30 bash -c "kdig +time=1 +retry=0 @$DNS4 allowed.test A | grep -q 'status: NOERROR'" || {
  docker logs "cagent-e2e-$RUN_ID-dns" 2>&1 | tail -n 20 >&2; die "the world DNS server did not come up"; }
state_set WORLD_READY 1
say "world $NET ready in $((SECONDS - started))s (IPv6: $IPV6)"
