#!/usr/bin/env bash
# Each workspace directory has its own agent home. A session in workspace A
# plants startup code in ~/.bashrc, ~/.profile and a tool hook
# (~/.config/git); a later session in workspace B neither runs nor sees it,
# and neither does a new directory made at A's very path after A is deleted
# (the home was once named after the path). Positive control: the same
# directory keeps its home from one session to the next.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

wsA=$(new_workspace allowed.test)
wsB=$(new_workspace allowed.test)
cage "$wsA" '
  echo "touch /workspace/PLANTED-bashrc" >>~/.bashrc
  echo "touch /workspace/PLANTED-profile" >>~/.profile
  mkdir -p ~/.config/git && echo "[core] pager = touch /workspace/PLANTED-git" >~/.config/git/config
  echo kept >~/session1-file
  echo planted'
expect_eq "session in A exits 0" "$CAGE_RC" 0
((CAGE_RC == 0)) || cage_err

# expect_none_of_A WS WHO — a session in WS runs a login and an interactive
# shell: it finds nothing of A's home, and nothing A planted runs.
expect_none_of_A() {
  local out
  out=$(cage "$1" '
    bash -lc true </dev/null; bash -ic true </dev/null >/dev/null 2>&1
    echo "bashrc-lines=$(grep -c PLANTED ~/.bashrc 2>/dev/null)"
    echo "profile-lines=$(grep -c PLANTED ~/.profile 2>/dev/null)"
    test -e ~/.config/git/config && echo git-hook=present || echo git-hook=absent
    test -e ~/session1-file && echo a-file=present || echo a-file=absent')
  expect_eq "session in $2 exits 0" "$CAGE_RC" 0
  expect_match "$2: ~/.bashrc has nothing of A's" "$out" 'bashrc-lines=0'
  expect_match "$2: ~/.profile has nothing of A's" "$out" 'profile-lines=0'
  expect_match "$2: no ~/.config/git from A" "$out" 'git-hook=absent'
  expect_match "$2: none of A's files" "$out" 'a-file=absent'
  local f
  for f in PLANTED-bashrc PLANTED-profile PLANTED-git; do
    expect_false "$2: nothing A planted ran ($f)" test -e "$1/$f"
  done
}
expect_none_of_A "$wsB" "B"

out=$(cage "$wsA" 'grep -c PLANTED ~/.bashrc; cat ~/session1-file')
expect_eq "A's next session still has its own home (the same directory keeps it)" "$out" "$(printf '1\nkept')"
volA=$(home_volume_of "$wsA")
volB=$(home_volume_of "$wsB")
expect_ne "cagent names a home volume for A" "$volA" ""
expect_ne "the two workspaces have different home volumes" "$volA" "$volB"
expect_true "A's home volume carries the run's label" \
  test "$(docker volume inspect -f '{{index .Labels "cagent.home"}}' "$volA")" = "$HOME_VOLUME_PREFIX"
expect_eq "…and the path it was made for" \
  "$(docker volume inspect -f '{{index .Labels "cagent.workspace"}}' "$volA")" "$(cd "$wsA" && pwd -P)"
expect_true "B's home volume exists" docker volume inspect "$volB"

# A is deleted and an unrelated project is made at the same path (ext4
# even hands it the same inode number): it must start with a fresh home.
inode_before=$(stat -c %i "$wsA")
rm -rf "$wsA"
mkdir "$wsA"
init_workspace "$wsA" allowed.test
say "inode of A's path: $inode_before before, $(stat -c %i "$wsA") after (the same number is the hard case)"
volA2=$(home_volume_of "$wsA")
expect_ne "the new directory at A's path gets another home volume" "$volA2" "$volA"
expect_none_of_A "$wsA" "the new directory at A's path"
finish
