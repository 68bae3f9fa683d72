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
# Controls: plain files next to the hidden ones, in the same directories.
echo 'PLAIN=visible' >"$ws/plain.txt"
echo 'NEIGHBOUR=visible' >"$ws/sub/neighbour.txt"
echo 'remove me' >"$ws/removable.txt"
chown_workspace "$ws"

out=$(cage "$ws" '
  cd /workspace
  echo "yaml=[$(head -n1 .cagent.yaml 2>&1)]"
  echo "plain=[$(cat plain.txt 2>&1)]"
  echo "neighbour=[$(cat sub/neighbour.txt 2>&1)]"
  (echo written-in-cage >plain.txt) 2>/dev/null; echo "plain-write=$?"
  (echo appended-in-cage >>sub/neighbour.txt) 2>/dev/null; echo "neighbour-write=$?"
  (echo new-in-cage >sub/new.txt) 2>/dev/null; echo "sub-create=$?"
  rm -f removable.txt 2>/dev/null; echo "plain-rm=$?"
  echo "sub=[$(ls -A sub 2>&1 | tr "\n" " ")]"
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
# The controls first: in the same cage, what is not ignored reads, is
# written, created and removed — so the refusals below are the ignore
# mounts', not a workspace the agent cannot use.
expect_match "control: .cagent.yaml reads" "$out" 'yaml=\[domains:\]'
expect_match "control: plain.txt (next to .env) reads with its content" "$out" 'plain=\[PLAIN=visible\]'
expect_match "control: sub/neighbour.txt (next to sub/.env) reads with its content" "$out" 'neighbour=\[NEIGHBOUR=visible\]'
expect_match "control: plain.txt can be overwritten" "$out" 'plain-write=0'
expect_match "control: sub/neighbour.txt can be appended to" "$out" 'neighbour-write=0'
expect_match "control: a new file can be created in sub/" "$out" 'sub-create=0'
expect_match "control: removable.txt (next to .env) can be removed" "$out" 'plain-rm=0'
expect_match "control: sub/ lists its files" "$out" 'sub=\[.*neighbour\.txt'
expect_eq "control: the host sees the write to plain.txt" "$(cat "$ws/plain.txt")" 'written-in-cage'
expect_eq "control: the host sees the append to sub/neighbour.txt" "$(cat "$ws/sub/neighbour.txt")" $'NEIGHBOUR=visible\nappended-in-cage'
expect_eq "control: the host sees sub/new.txt" "$(cat "$ws/sub/new.txt" 2>&1)" 'new-in-cage'
expect_false "control: removable.txt is gone on the host" test -e "$ws/removable.txt"
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
