#!/usr/bin/env bash
# Issue 11, item 4: each workspace has its own agent home. A session in
# workspace A plants startup code in ~/.bashrc, ~/.profile and a tool hook
# (~/.config/git); a later session in workspace B neither runs nor sees it,
# while A's next session still has its own home.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

wsA=$(new_workspace allowed.test)
wsB=$(new_workspace allowed.test)
cage "$wsA" '
  echo "touch /workspace/PLANTED-bashrc" >>~/.bashrc
  echo "touch /workspace/PLANTED-profile" >>~/.profile
  mkdir -p ~/.config/git && echo "[core] pager = touch /workspace/PLANTED-git" >~/.config/git/config
  echo planted'
expect_eq "session in A exits 0" "$CAGE_RC" 0
((CAGE_RC == 0)) || cage_err

out=$(cage "$wsB" '
  bash -lc true </dev/null; bash -ic true </dev/null >/dev/null 2>&1
  echo "bashrc-lines=$(grep -c PLANTED ~/.bashrc 2>/dev/null)"
  echo "profile-lines=$(grep -c PLANTED ~/.profile 2>/dev/null)"
  test -e ~/.config/git/config && echo git-hook=present || echo git-hook=absent')
expect_eq "session in B exits 0" "$CAGE_RC" 0
expect_match "B's ~/.bashrc has nothing of A's" "$out" 'bashrc-lines=0'
expect_match "B's ~/.profile has nothing of A's" "$out" 'profile-lines=0'
expect_match "B has no ~/.config/git from A" "$out" 'git-hook=absent'
for f in PLANTED-bashrc PLANTED-profile PLANTED-git; do
  expect_false "nothing A planted ran in B ($f)" test -e "$wsB/$f"
done

out=$(cage "$wsA" 'grep -c PLANTED ~/.bashrc')
expect_eq "A's next session still has its own home" "$out" 1
volA=$(home_volume_of "$wsA")
volB=$(home_volume_of "$wsB")
expect_ne "the two workspaces have different home volumes" "$volA" "$volB"
expect_true "A's home volume carries the run's label" \
  test "$(docker volume inspect -f '{{index .Labels "cagent.home"}}' "$volA")" = "$HOME_VOLUME_PREFIX"
expect_true "B's home volume exists" docker volume inspect "$volB"
finish
