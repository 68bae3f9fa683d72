#!/usr/bin/env bash
# check.sh bash|zsh|man SHARE CAGENT — the rendered files under SHARE (the
# build tree's share/, laid out as installed), read by their programs.
# CAGENT is the built binary: the options its --help lists are the ones the
# completions must offer.
set -uo pipefail
kind=${1:?} share=$(cd "${2:?}" && pwd) cagent=${3:?}
fails=0 checks=0
ok() { checks=$((checks + 1)); printf 'ok - %s\n' "$1"; }
not_ok() { checks=$((checks + 1)); fails=$((fails + 1)); printf 'not ok - %s\n' "$1"; shift; printf '    %s\n' "$@"; }
finish() { ((checks)) || { echo "no checks ran"; exit 1; }; ((fails == 0)) || { echo "$fails of $checks checks failed"; exit 1; }; exit 0; }

# The long options of the main command line, as --help prints them.
main_options() {
  "$cagent" --help | sed -n '/^options:/,/^$/p' | grep -o -- '--[a-z][a-z-]*' | sort -u
}

case $kind in
bash)
  file=$share/bash-completion/completions/cagent
  [[ -f $file ]] || { echo "missing $file"; exit 1; }
  # shellcheck disable=SC1090
  source "$file"
  # complete WORD… — the candidates for the last word (the one being typed).
  complete_words() {
    COMP_WORDS=("$@") COMP_CWORD=$(($# - 1)) COMPREPLY=()
    _cagent
    printf '%s\n' "${COMPREPLY[@]}"
  }
  expect() {  # DESC WANT(newline-separated, sorted) WORD…
    local desc=$1 want=$2; shift 2
    local got; got=$(complete_words "$@" | sort)
    if [[ $got == "$want" ]]; then ok "$desc"; else not_ok "$desc" "got:  ${got//$'\n'/ }" "want: ${want//$'\n'/ }"; fi
  }
  expect_has() {  # DESC WANT WORD…
    local desc=$1 want=$2; shift 2
    if complete_words "$@" | grep -qxF -- "$want"; then ok "$desc"; else not_ok "$desc" "no $want in: $(complete_words "$@" | tr '\n' ' ')"; fi
  }
  all=$(complete_words cagent --)
  missing=$(comm -23 <(main_options) <(sort <<<"$all"))
  if [[ -z $missing ]]; then ok "every option --help lists is completed"; else not_ok "options --help lists that bash does not offer" "$missing"; fi
  expect "first word: subcommands and --" $'--\nallow\ncheck\ndeny\nkube\nlog\nps\nwatch' cagent ''
  expect "check's option" $'--name' cagent check --na
  expect "kube's options" $'--claim\n--classic-sidecar' cagent kube --cl
  expect "prefix of an option" $'--config' cagent --con
  expect "allow's options" $'--save\n--session' cagent allow pypi.org --s
  expect "log's options" $'--follow\n--json' cagent log --
  expect "log's short option" $'-f' cagent log -f
  expect "no subcommand options on the main line" '' cagent --sess
  expect "--reset VALUE" $'c\nci\ncivd\nd\ni\nv' cagent --reset ''
  expect "--reset=VALUE, split at '='" $'c\nci\ncivd\nd\ni\nv' cagent --reset = ''
  expect "--reset -…: options again" $'--yes' cagent --reset --y
  expect "--save=VALUE" $'global\nworkspace' cagent allow a.example --save = ''
  expect "a domain: nothing to offer" '' cagent -d ''
  tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
  touch "$tmp/corp-root.pem"
  expect "--ca-cert: files" "$tmp/corp-root.pem" cagent --ca-cert "$tmp/corp"
  expect "--ca-cert: the word system" 'system' cagent --ca-cert sys
  expect "-c FILE" "$tmp/corp-root.pem" cagent -c "$tmp/c"
  expect "--config=FILE in one word" "--config=$tmp/corp-root.pem" cagent "--config=$tmp/c"
  expect_has "after --: commands" 'true' cagent -d x -- tru
  expect "a word after the options: nothing" '' cagent --dry-run x
  finish
  ;;
zsh)
  file=$share/zsh/vendor-completions/_cagent
  [[ -f $file ]] || { echo "missing $file"; exit 1; }
  command -v zsh >/dev/null || { echo "skipped: zsh is not installed (setup.sh --test-tools installs it)"; exit 77; }
  if err=$(zsh -n "$file" 2>&1); then ok "zsh parses _cagent"; else not_ok "zsh parses _cagent" "$err"; fi
  # compinit reads #compdef from the file in fpath and binds it to cagent.
  got=$(zsh -f -c 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- ${_comps[cagent]}' \
          zsh "${file%/*}" 2>&1)
  [[ $got == _cagent ]] && ok "compinit binds _cagent to cagent" || not_ok "compinit binds _cagent to cagent" "got: $got"
  # Completion for real: one interactive zsh on a pseudo-terminal
  # (zsh_complete.zsh) completes every line below.
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
  touch "$tmp/corp-root.pem"
  descs=() lines=() wants=()
  case_zsh() { descs+=("$1"); lines+=("$2"); shift 2; wants+=("$*"); }  # DESC LINE WANT…
  case_zsh "every option --help lists" 'cagent --' $(main_options)
  case_zsh "short options" 'cagent -' -d -i -r -c -y -h
  case_zsh "subcommands" 'cagent ' allow deny ps log check kube
  case_zsh "kube's options" 'cagent kube --' --job --claim --image --classic-sidecar
  case_zsh "check's option" 'cagent check --' --name
  case_zsh "allow's options" 'cagent allow pypi.org --' --session --save
  case_zsh "log's options" 'cagent log -' -f --follow --json
  case_zsh "--reset=VALUE" 'cagent --reset=' ci civd
  case_zsh "--save=VALUE" 'cagent allow a.example --save=' workspace global
  case_zsh "--ca-cert: the word system and files" 'cagent --ca-cert ' system corp-root.pem
  case_zsh "-c FILE" 'cagent -c ' corp-root.pem
  case_zsh "after --: commands" 'cagent -d x -- tru' true
  mkdir "$tmp/out"
  err=$(cd "$tmp" && zsh -f "$here/zsh_complete.zsh" "${file%/*}" "$tmp/out" "${lines[@]}" 2>&1) ||
    not_ok "zsh completes on a terminal" "$err"
  for i in "${!lines[@]}"; do
    got=$(cat "$tmp/out/$((i + 1))" 2>/dev/null) missing=
    for w in ${wants[i]}; do grep -qxF -- "$w" <<<"$got" || missing+=" $w"; done
    if [[ -z $missing ]]; then ok "${descs[i]}"; else not_ok "${descs[i]}" "missing:$missing" "got: ${got//$'\n'/ }"; fi
  done
  finish
  ;;
man)
  file=$share/man/man1/cagent.1
  [[ -f $file ]] || { echo "missing $file"; exit 1; }
  command -v groff >/dev/null || { echo "skipped: groff is not installed (setup.sh --test-tools installs groff-base)"; exit 77; }
  err=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$file" 2>&1)
  [[ -z $err ]] && ok "groff formats cagent.1 without warnings" || not_ok "groff warnings" "$err"
  text=$(LC_ALL=C.UTF-8 groff -man -Tascii -P-cbou "$file" 2>/dev/null)
  missing=$(comm -23 <(main_options) <(grep -o -- '--[a-z][a-z-]*' <<<"$text" | sort -u))
  [[ -z $missing ]] && ok "every option --help lists is in the formatted page" || not_ok "options missing from the man page" "$missing"
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS SUBCOMMANDS ENVIRONMENT FILES 'EXIT STATUS'; do
    grep -qx "$section" <<<"$text" && ok "section $section" || not_ok "section $section missing"
  done
  version=$("$cagent" --version)
  grep -qF "${version#cagent }" <<<"$text" && ok "the page names the binary's version" || not_ok "version ${version#cagent } not in the page"
  finish
  ;;
*) echo "usage: check.sh bash|zsh|man SHARE CAGENT" >&2; exit 2 ;;
esac
