#!/usr/bin/env bash
# The image's extension points, through the automatic rebuild:
# a package listed in the global config's image_packages is in the next cage;
# a layer from ~/.cagent/Dockerfile is applied, and removing the file goes
# back to the context's image (kept under its ctx-<hash> tag: no build). Uses its own home and image tag so
# the shared world image is never rebuilt; every build reuses the world
# image's cached layers (same context, same CA), so each costs the extra
# layer only.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

# Its image, home and frozen context (every tag of it removed at exit).
own_image_home "cagent-e2e-img-$RUN_ID"
# bc is not in the default image: its presence proves the rebuild.
ws=$(new_workspace allowed.test)

# A bad package name is a config error naming file:line, before any build.
cp "$HOME2/.cagent/config.yaml" "$E2E_TMP/good.yaml"
printf '\nimage_packages:\n  - "bc; rm -rf /"\n' >>"$HOME2/.cagent/config.yaml"
rc=0; out=$(cd "$ws" && env HOME="$HOME2" CAGENT_HOME="$HOME2/.cagent" CAGENT_IMAGE="$TAG" CAGENT_CONTEXT="$ctx" \
              timeout 60 "$E2E_CAGENT" -- true </dev/null 2>&1) || rc=$?
expect_ne "a bad package name fails" "$rc" 0
expect_match "the error names file:line and the entry" "$out" "config.yaml:[0-9]+:[0-9]+: bad image_packages entry 'bc; rm -rf /'"
expect_false "nothing was built" docker image inspect "$TAG"
cp "$E2E_TMP/good.yaml" "$HOME2/.cagent/config.yaml"
printf '\nimage_packages:\n  - bc\n' >>"$HOME2/.cagent/config.yaml"

run2() {  # like run_cagent, with this case's home and tag, and update checks on
  (cd "$ws" && env HOME="$HOME2" CAGENT_HOME="$HOME2/.cagent" CAGENT_IMAGE="$TAG" CAGENT_CONTEXT="$ctx" \
      CAGENT_HOME_VOLUME="$HOME_VOLUME_PREFIX" timeout --kill-after=10 900 "$E2E_CAGENT" --ca-cert system $(accept_tests_config "$ws") \
      --arg="--network=$NET" --arg="--label=cagent.e2e.run=$RUN_ID" \
      -- sh -c 'command -v bc >/dev/null && echo "bc=yes" || echo "bc=no"; cat /etc/cagent-user-layer 2>/dev/null || echo "layer=none"' \
      </dev/null 2>"$E2E_TMP/err")
}

rc=0; out=$(run2) || rc=$?
expect_eq "cagent with image_packages exits 0" "$rc" 0
expect_match "it built the image" "$(cat "$E2E_TMP/err")" 'building image'
expect_match "the listed package is installed" "$out" 'bc=yes'
expect_match "no user layer yet" "$out" 'layer=none'
((rc == 0)) || tail -n 30 "$E2E_TMP/err"

printf 'ARG CAGENT_BASE_IMAGE\nFROM ${CAGENT_BASE_IMAGE}\nRUN echo user-layer-applied >/etc/cagent-user-layer\n' \
  >"$HOME2/.cagent/Dockerfile"
rc=0; out=$(run2) || rc=$?
expect_eq "cagent with ~/.cagent/Dockerfile exits 0" "$rc" 0
expect_match "it rebuilt with the user Dockerfile" "$(cat "$E2E_TMP/err")" 'rebuilding image .* with ~/.cagent/Dockerfile'
expect_match "the user layer is applied" "$out" 'user-layer-applied'
expect_match "the configured package is still there" "$out" 'bc=yes'
((rc == 0)) || tail -n 30 "$E2E_TMP/err"

rc=0; out=$(run2) || rc=$?
expect_eq "unchanged: cagent exits 0" "$rc" 0
expect_no_match "unchanged: no rebuild" "$(cat "$E2E_TMP/err")" 'building image|built earlier'

rm "$HOME2/.cagent/Dockerfile"
rc=0; out=$(run2) || rc=$?
expect_eq "cagent after removing the Dockerfile exits 0" "$rc" 0
# The image of that configuration is still kept under its ctx-<hash> tag.
expect_match "back to the image of the first run, without a build" "$(cat "$E2E_TMP/err")" 'using the image built earlier'
expect_no_match "no build" "$(cat "$E2E_TMP/err")" 'building image'
expect_match "the user layer is gone" "$out" 'layer=none'
expect_match "the configured package remains" "$out" 'bc=yes'
((rc == 0)) || tail -n 30 "$E2E_TMP/err"
finish
