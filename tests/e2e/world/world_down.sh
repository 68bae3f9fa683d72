#!/usr/bin/env bash
# world_down.sh — remove the e2e test world (ctest FIXTURES_CLEANUP; ctest runs
# it also when the setup or cases failed). Removes what the state file names:
# every container labelled with this run (world servers and any cage a case
# left behind), the network, the world image tag, the run's home volumes
# (labelled cagent.home=<its prefix>; a user's are never touched), and the
# temporary root. Then checks that nothing of
# the run is left, and fails if something is.
E2E_NAME=cleanup
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v docker >/dev/null 2>&1 || ! timeout 20 docker info >/dev/null 2>&1; then
  # No engine: nothing of the world can exist; still drop our temporary root.
  if [[ -f ${E2E_STATE:-} ]]; then
    # shellcheck disable=SC1090
    source "$E2E_STATE"
    [[ -n ${ROOT:-} && -d $ROOT ]] && { chmod -R u+w "$ROOT" 2>/dev/null; rm -rf "$ROOT"; }
    rm -f "$E2E_STATE"
  fi
  require_docker
fi
if [[ ! -f ${E2E_STATE:-} ]]; then
  echo "nothing to clean: no world state"
  exit 0
fi
# shellcheck disable=SC1090
source "$E2E_STATE"

left=()
ids=$(docker ps -aq --filter "label=cagent.e2e.run=$RUN_ID")
if [[ -n $ids ]]; then
  # Stray cages first: a failed case may have left one running.
  docker rm -f $ids >/dev/null 2>&1 || true
fi
if [[ -n ${NET:-} ]] && docker network inspect "$NET" >/dev/null 2>&1; then
  docker network rm "$NET" >/dev/null 2>&1 || left+=("network $NET")
fi
[[ -n ${WORLD_IMAGE:-} ]] && docker rmi "$WORLD_IMAGE" >/dev/null 2>&1
home_volumes() {
  [[ -n ${HOME_VOLUME_PREFIX:-} ]] || return 0
  docker volume ls -q --filter "label=cagent.home=$HOME_VOLUME_PREFIX"
}
vols=$(home_volumes)
[[ -n $vols ]] && { docker volume rm -f $vols >/dev/null 2>&1 || true; }
[[ -n ${ROOT:-} && -d $ROOT ]] && { chmod -R u+w "$ROOT" 2>/dev/null; rm -rf "$ROOT"; }
if [[ ${USER_CREATED:-0} == 1 && -n ${E2E_USER:-} ]]; then
  pkill -KILL -u "$E2E_USER" 2>/dev/null
  userdel "$E2E_USER" >/dev/null 2>&1 || left+=("account $E2E_USER")
  # userdel takes the user's own group along where USERGROUPS_ENAB says so.
  if [[ ${USER_GROUP_CREATED:-0} == 1 ]] && getent group "$E2E_USER" >/dev/null; then
    groupdel "$E2E_USER" >/dev/null 2>&1 || left+=("group $E2E_USER")
  fi
fi

# Verify: nothing of this run remains.
rest=$(docker ps -aq --filter "label=cagent.e2e.run=$RUN_ID")
[[ -n $rest ]] && left+=("containers: $rest")
[[ -n ${NET:-} ]] && docker network inspect "$NET" >/dev/null 2>&1 && left+=("network $NET")
[[ -n ${WORLD_IMAGE:-} ]] && docker image inspect "$WORLD_IMAGE" >/dev/null 2>&1 && left+=("image $WORLD_IMAGE")
[[ -n ${ROOT:-} && -e $ROOT ]] && left+=("directory $ROOT")
vols=$(home_volumes)
[[ -n $vols ]] && left+=("volumes: $vols")
rm -f "$E2E_STATE"
if ((${#left[@]})); then
  say "left behind: ${left[*]}"
  exit 1
fi
echo "world ${NET:-?} removed"
