#!/usr/bin/env bash
# Extra CA certificates in the test world: secure.test serves HTTPS with a certificate from
# a CA the setup generated. Inside the cage curl, python3, node and git
# (dumb-HTTP clone) all fail without that CA and all succeed with it, given
# either as --ca-cert FILE or as the config key ca_certificates (from a
# workspace .cagent.yaml only once the workspace is trusted); the runtimes'
# variables point at a bundle the agent can read but not change.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

write_fetch() {  # the in-cage script: one "<tool>=<exit status>" line each
  cat >"$1/fetch.sh" <<'SH'
curl -sS -m 10 https://secure.test/ >/dev/null 2>&1; echo "curl=$?"
python3 -c 'import urllib.request; urllib.request.urlopen("https://secure.test/", timeout=10).read()' >/dev/null 2>&1
echo "python=$?"
node -e 'require("https").get("https://secure.test/", r => { r.resume(); r.on("end", () => process.exit(r.statusCode === 200 ? 0 : 3)); }).on("error", () => process.exit(1));' >/dev/null 2>&1
echo "node=$?"
rm -rf /tmp/clone; git clone -q https://secure.test/repo.git /tmp/clone >/dev/null 2>&1 && grep -q 'fetched over https' /tmp/clone/README
echo "git=$?"
for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO PIP_CERT CARGO_HTTP_CAINFO; do
  eval "f=\${$v:-}"; echo "env $v=${f:-unset} readable=$(test -r "${f:-/nonexistent}" && echo 1 || echo 0) writable=$(test -w "${f:-/nonexistent}" && echo 1 || echo 0)"
done
(echo tamper >>/etc/ssl/certs/ca-certificates.crt) 2>/dev/null; echo "system-bundle-write=$?"
echo "control writable=$(test -w /workspace/fetch.sh && echo 1 || echo 0)"
(echo '# appended' >>/workspace/fetch.sh) 2>/dev/null; echo "workspace-write=$?"
SH
  chown_workspace "$1"
}

ws=$(new_workspace secure.test)
write_fetch "$ws"
out=$(run_cagent "$ws" -- sh /workspace/fetch.sh </dev/null 2>"$E2E_TMP/err")
expect_match "without the CA: curl fails certificate verification (exit 60)" "$out" 'curl=60'
for t in python node git; do
  expect_match "without the CA: $t fails" "$out" "$t=[1-9]"
done

out=$(run_cagent "$ws" --ca-cert "$TLS_CA" -- sh /workspace/fetch.sh </dev/null 2>"$E2E_TMP/err")
for t in curl python node git; do
  expect_match "with --ca-cert: $t succeeds" "$out" "$t=0"
done
for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO PIP_CERT CARGO_HTTP_CAINFO; do
  expect_match "with --ca-cert: $v names a readable, read-only bundle" "$out" "env $v=/[^ ]* readable=1 writable=0"
done
expect_match "the system bundle is not writable by the agent" "$out" 'system-bundle-write=[1-9]'
# Controls for writable=0 and the refused write: the same probe and the same
# append succeed on a workspace file in the same run.
expect_match "control: the writable probe says 1 for a workspace file" "$out" 'control writable=1'
expect_match "control: the agent can append to a workspace file" "$out" 'workspace-write=0'
((${#out} > 0)) || cat "$E2E_TMP/err"

# ca_certificates in a workspace .cagent.yaml move the cage's trust anchors:
# ignored (with the hint) until the workspace is trusted.
ws2=$(new_workspace secure.test)
printf 'ca_certificates: ["%s"]\n' "$TLS_CA" >>"$ws2/.cagent.yaml"
write_fetch "$ws2"
out=$(run_cagent "$ws2" -- sh /workspace/fetch.sh </dev/null 2>"$E2E_TMP/err")
expect_match "untrusted workspace: its ca_certificates are not used (curl exit 60)" "$out" 'curl=60'
expect_match "…and cagent says why and how to trust it" "$(cat "$E2E_TMP/err")" \
  "ignoring ca_certificates .*not trusted.*trusted"
trust_workspace "$ws2"
out=$(run_cagent "$ws2" -- sh /workspace/fetch.sh </dev/null 2>"$E2E_TMP/err")
for t in curl python node git; do
  expect_match "trusted workspace, ca_certificates in .cagent.yaml: $t succeeds" "$out" "$t=0"
done
finish
