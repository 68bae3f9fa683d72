#!/usr/bin/env bash
# `ignore` targets read as empty and cannot be written, removed or replaced:
# the default .env (at the root and at depth), an explicit directory pattern
# "secrets/". The host's files keep their content.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
printf 'ignore:\n  - "secrets/"\n' >>"$ws/.cagent.yaml"
echo 'SECRET=hunter2' >"$ws/.env"
mkdir -p "$ws/secrets" "$ws/sub"
echo 'TOKEN=abc123' >"$ws/secrets/token.txt"
echo 'DEEP=xyz' >"$ws/sub/.env"
chown_workspace "$ws"

out=$(cage "$ws" '
  cd /workspace
  echo "env=[$(cat .env 2>&1)]"
  echo "subenv=[$(cat sub/.env 2>&1)]"
  (echo leak >.env) 2>/dev/null; echo "env-write=$?"
  (echo leak >>sub/.env) 2>/dev/null; echo "subenv-write=$?"
  rm -f .env 2>/dev/null; echo "env-rm=$?"
  echo "secrets=[$(ls -A secrets 2>&1)]"
  cat secrets/token.txt >/dev/null 2>&1; echo "token-read=$?"
  touch secrets/new 2>/dev/null; echo "secrets-write=$?"
  ls -la . | grep -c "\.env$" | sed "s/^/env-listed=/"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match ".env reads as empty" "$out" 'env=\[\]'
expect_match "sub/.env (basename pattern at depth) reads as empty" "$out" 'subenv=\[\]'
expect_match ".env cannot be overwritten" "$out" 'env-write=[1-9]'
expect_match "sub/.env cannot be appended to" "$out" 'subenv-write=[1-9]'
expect_match ".env cannot be removed" "$out" 'env-rm=[1-9]'
expect_match "the agent still sees the name .env" "$out" 'env-listed=1'
expect_match "secrets/ lists as empty" "$out" 'secrets=\[\]'
expect_match "secrets/token.txt is not there" "$out" 'token-read=[1-9]'
expect_match "nothing can be created in secrets/" "$out" 'secrets-write=[1-9]'
expect_eq "host .env kept its content" "$(cat "$ws/.env")" 'SECRET=hunter2'
expect_eq "host sub/.env kept its content" "$(cat "$ws/sub/.env")" 'DEEP=xyz'
expect_eq "host secrets/token.txt kept its content" "$(cat "$ws/secrets/token.txt")" 'TOKEN=abc123'
expect_false "no secrets/new appeared on the host" test -e "$ws/secrets/new"
((CAGE_RC == 0)) || cage_err
finish
