#!/usr/bin/env bash
# Nested Docker through the whole host path, on a machine without
# sysbox: a `docker` wrapper first in cagent's PATH reports a sysbox-runc
# runtime in `docker info` and drops `--runtime sysbox-runc` from `docker
# run`, so the cage runs under plain runc. What that shows: cagent builds the
# NESTED_DOCKER variant under its own tag (the world image stays without an
# engine), hands cage-init --nested-docker, and the real dockerd starts in
# cage-init's sandbox and answers the agent on its socket, while the agent
# keeps no capability. What it cannot show: anything sysbox itself does, and
# nested containers (they need writable cgroups, which a plain runc
# container on this cgroup v1 host does not have) — see launcher/cage/README.md,
# "Nested Docker".
# The variant build reuses the world image's cached layers (same frozen
# context, same CA), so it costs the engine's one apt layer.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

own_image_home "cagent-e2e-nested-$RUN_ID"
mkdir -p "$E2E_TMP/bin"
ws=$(new_workspace allowed.test)

real_docker=$(command -v docker) || skip "no docker CLI"
cat >"$E2E_TMP/bin/docker" <<EOF
#!/usr/bin/env bash
# Test stand-in: an engine "with sysbox" that runs sysbox cages under runc.
if [[ \$1 == info ]]; then echo '{"runc":{"path":"runc"},"sysbox-runc":{"path":"/usr/bin/sysbox-runc"}}'; exit 0; fi
args=() drop=0
for a in "\$@"; do
  if ((drop)); then drop=0; continue; fi
  if [[ \$1 == run && \$a == --runtime ]]; then drop=1; continue; fi
  args+=("\$a")
done
exec "$real_docker" "\${args[@]}"
EOF
chmod 755 "$E2E_TMP/bin/docker"

rc=0
dns_before=$(dns_log_lines)   # the world's query log is the whole run's: look only at this case's lines
out=$(cd "$ws" && env PATH="$E2E_TMP/bin:$PATH" HOME="$HOME2" CAGENT_HOME="$HOME2/.cagent" CAGENT_IMAGE="$TAG" \
        CAGENT_CONTEXT="$ctx" CAGENT_HOME_VOLUME="$HOME_VOLUME_PREFIX" timeout --kill-after=10 900 "$E2E_CAGENT" \
        --no-update --ca-cert system $(accept_tests_config "$ws") --arg="--network=$NET" --arg="--label=cagent.e2e.run=$RUN_ID" -- sh -c '
  i=0; while [ $i -lt 120 ] && ! docker version >/dev/null 2>&1; do sleep 0.25; i=$((i+1)); done
  echo "DOCKER_HOST=$DOCKER_HOST"
  echo "server=$(docker version --format "{{.Server.Version}}" 2>&1 | head -1)"
  echo "driver=$(docker info --format "{{.Driver}}" 2>&1 | head -1)"
  echo "caps=$(grep CapEff /proc/self/status | tr -d "[:space:]")"
  echo "log=$(grep -c "API listen on /run/cagent-docker/docker.sock" /run/cagent-docker/dockerd.log)"
  # The engine'"'"'s own egress (ADD of a URL is fetched by dockerd, in the
  # sandbox): its lookup goes to dnsguard, its connection through the
  # cage'"'"'s forward chain. No container runs for it.
  fetch() {
    mkdir -p /tmp/b && printf "FROM scratch\nADD http://%s/ /page\n" "$2" >/tmp/b/Dockerfile
    if timeout 60 docker build -q -t "fetched:$1" /tmp/b >/tmp/b.out 2>&1; then echo "fetch-$1=ok"
    else echo "fetch-$1=failed: $(tail -n 1 /tmp/b.out)"; fi
  }
  fetch allowed allowed.test
  fetch denied denied.test
  fetch unresolved 198.51.100.12
  ' </dev/null 2>"$E2E_TMP/err") || rc=$?
err=$(cat "$E2E_TMP/err")
expect_eq "cagent exits 0" "$rc" 0
expect_match "cagent built the variant" "$err" 'building image'
expect_no_match "no nested Docker warning" "$err" 'nested Docker is off|nested Docker is unavailable'
expect_match "the agent's DOCKER_HOST is the engine's socket" "$out" 'DOCKER_HOST=unix:///run/cagent-docker/docker.sock'
expect_match "the real dockerd in the sandbox answers the agent" "$out" 'server=[0-9]+\.[0-9]+'
expect_match "the engine has a storage driver" "$out" 'driver=[a-z0-9]+'
expect_match "the engine listens on the agent's socket" "$out" 'log=1'
expect_match "the agent still has no capability" "$out" 'caps=CapEff:0000000000000000'
expect_match "the engine fetches from an allowed name (dnsguard, forward chain)" "$out" 'fetch-allowed=ok'
expect_match "the engine cannot resolve a denied name" "$out" 'fetch-denied=failed'
expect_match "the engine cannot reach an address nobody resolved" "$out" 'fetch-unresolved=failed'
expect_no_match "the denied name never reached the world's DNS" "$(dns_log | tail -n +$((dns_before + 1)))" 'denied\.test'
expect_match "...while the allowed one did (the log is read)" "$(dns_log | tail -n +$((dns_before + 1)))" 'allowed\.test'
((rc == 0)) || { tail -n 30 "$E2E_TMP/err"; printf '%s\n' "$out"; }
printf '%s\n' "$out" | grep '^fetch-' >&2

# The variant and the default image: different tags, only the variant has an engine.
expect_ne "the variant has its own image" "$(docker image inspect -f '{{.Id}}' "$TAG" 2>&1)" \
  "$(docker image inspect -f '{{.Id}}' "$CAGENT_IMAGE_TAG" 2>&1)"
expect_true "the variant holds dockerd" docker run --rm --entrypoint /usr/sbin/dockerd "$TAG" --version
expect_false "the world's (default) image has no engine" docker run --rm --entrypoint sh "$CAGENT_IMAGE_TAG" -c 'test -e /usr/sbin/dockerd'
expect_true "the variant has no setuid file" docker run --rm --entrypoint sh "$TAG" -c '! find / -xdev -perm /6000 -type f | grep -q .'
finish
