#!/usr/bin/env bash
# `readonly` targets are readable and not writable (an explicit "docs/" and
# the default .cagent.yaml); an ignore pattern inside a readonly directory
# still hides its target.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace allowed.test)
printf 'readonly:\n  - "docs/"\n' >>"$ws/.cagent.yaml"
mkdir -p "$ws/docs"
echo 'the guide' >"$ws/docs/guide.md"
echo 'PRIVATE' >"$ws/docs/signing.key"
chown_workspace "$ws"
cfg_before=$(cat "$ws/.cagent.yaml")

out=$(cage "$ws" '
  cd /workspace
  echo "guide=[$(cat docs/guide.md 2>&1)]"
  (echo more >>docs/guide.md) 2>/dev/null; echo "guide-write=$?"
  touch docs/new 2>/dev/null; echo "docs-create=$?"
  rm -f docs/guide.md 2>/dev/null; echo "guide-rm=$?"
  echo "key=[$(cat docs/signing.key 2>&1)]"
  grep -q domains .cagent.yaml; echo "cfg-read=$?"
  (echo "extra_args: [--privileged]" >>.cagent.yaml) 2>/dev/null; echo "cfg-write=$?"
  echo ok >plain.txt; echo "plain-write=$?"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "docs/guide.md is readable" "$out" 'guide=\[the guide\]'
expect_match "docs/guide.md cannot be appended to" "$out" 'guide-write=[1-9]'
expect_match "no file can be created in docs/" "$out" 'docs-create=[1-9]'
expect_match "docs/guide.md cannot be removed" "$out" 'guide-rm=[1-9]'
expect_match "docs/signing.key (ignored inside readonly) reads as empty" "$out" 'key=\[\]'
expect_match ".cagent.yaml is readable" "$out" 'cfg-read=0'
expect_match ".cagent.yaml is not writable" "$out" 'cfg-write=[1-9]'
expect_match "control: the rest of the workspace is writable" "$out" 'plain-write=0'
expect_eq "host docs/guide.md unchanged" "$(cat "$ws/docs/guide.md")" 'the guide'
expect_eq "host .cagent.yaml unchanged" "$(cat "$ws/.cagent.yaml")" "$cfg_before"
((CAGE_RC == 0)) || cage_err
finish
