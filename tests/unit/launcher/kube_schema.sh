#!/usr/bin/env bash
# cagent kube's manifests against the Kubernetes schema (Pod, Job and their
# ConfigMap), offline: kube_schema.mjs with kubernetes-models, which
# setup.sh --test-tools installs. What is checked: the goldens, and what the
# real cagent prints for a workspace (native sidecar, Job, classic sidecar).
# The control: the same manifest with a misspelt field and a mistyped one
# must be refused, so a pass is the schema's word and not a checker that
# accepts anything.
#   kube_schema.sh PATH/TO/cagent GOLDEN_DIR
set -uo pipefail
cagent=$(realpath "${1:?usage: kube_schema.sh PATH/TO/cagent GOLDEN_DIR}")
golden=${2:?usage: kube_schema.sh PATH/TO/cagent GOLDEN_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
node_dir=${CAGENT_TEST_NODE_DIR:-/var/lib/cagent-test-tools/node}
command -v node >/dev/null || { echo "skipped: node is not installed (setup.sh --test-tools)"; exit 77; }
[[ -d $node_dir/node_modules/kubernetes-models && -d $node_dir/node_modules/yaml ]] ||
  { echo "skipped: no kubernetes-models in $node_dir (setup.sh --test-tools installs it)"; exit 77; }

tmp=$(mktemp -d /tmp/cagent-kube-schema.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/ws/demo/secrets" "$tmp/ws/demo/.git"
echo x >"$tmp/ws/demo/.env"
echo k >"$tmp/ws/demo/secrets/key"
echo 'ref: refs/heads/main' >"$tmp/ws/demo/.git/HEAD"
cat >"$tmp/cagent.yaml" <<'YAML'
domains: [github.com, "*.githubusercontent.com"]
ignore: [.env, secrets/]
dns_resolvers: [10.96.0.10]
YAML
kube() { (cd "$tmp/ws/demo" && HOME=$tmp/home CAGENT_HOME=$tmp/home "$cagent" kube -c "$tmp/cagent.yaml" --no-update "$@"); }
kube -- make test >"$tmp/pod.yaml" 2>"$tmp/err" || { cat "$tmp/err"; echo "FAIL: cagent kube"; exit 1; }
kube --job --claim ci-checkout-42 -- make test >"$tmp/job.yaml" 2>>"$tmp/err" || { cat "$tmp/err"; exit 1; }
kube --job --classic-sidecar >"$tmp/classic.yaml" 2>>"$tmp/err" || { cat "$tmp/err"; exit 1; }
grep -q 'kind: Pod' "$tmp/pod.yaml" && grep -q 'kind: Job' "$tmp/job.yaml" || { echo "FAIL: not a Pod and a Job"; exit 1; }

status=0
node "$here/kube_schema.mjs" "$node_dir" "$golden/kube_pod.yaml" "$golden/kube_job.yaml" \
  "$tmp/pod.yaml" "$tmp/job.yaml" "$tmp/classic.yaml" || status=1

# The control: a field the schema lacks and a wrong type are both found.
sed 's/readOnly: true/readonly: true/; s/runAsUser: 1000/runAsUser: "1000"/' "$tmp/pod.yaml" >"$tmp/broken.yaml"
out=$(node "$here/kube_schema.mjs" "$node_dir" "$tmp/broken.yaml")
if grep -q 'readonly: no such field' <<<"$out" && grep -q 'runAsUser must be integer' <<<"$out"; then
  echo "control: the misspelt readOnly and the string runAsUser are refused"
else
  echo "FAIL: the checker accepted a broken manifest: $out"
  status=1
fi
exit $status
