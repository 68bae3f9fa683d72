# zsh_complete.zsh DIR OUT LINE… — writes to OUT/N, one per line, the
# candidates that zsh offers for the end of the Nth LINE with the completion
# functions in DIR, the way an interactive zsh on a terminal would: one zsh
# on a pseudo-terminal (zpty) runs compinit, each LINE is typed with a Tab,
# and compadd is wrapped to record what it is given. Each step is polled for
# a marker, bounded to 10 s.
emulate -L zsh
dir=$1 outdir=$2
shift 2
zmodload zsh/zpty || { print -u2 "zsh_complete: no zsh/zpty module"; exit 1 }
zpty z zsh -f -i
wait_for() {  # MARKER — read the terminal until MARKER appears
  local buf= chunk deadline=$(( SECONDS + 10 ))
  while (( SECONDS < deadline )); do
    while zpty -rt z chunk; do buf+=$chunk; done
    [[ $buf == *$1* ]] && return 0
    sleep 0.05
  done
  print -u2 "zsh_complete: timed out waiting for $1"
  return 1
}
# The markers are typed split by quotes, so only their output matches.
zpty -w z "PS1= RPS1=; fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D; zstyle ':completion:*' menu no"
# Calls that only compute (-O/-A/-D: into an array) are not offers.
# ($__out names the file of the line being completed.)
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a m; builtin compadd -O m "$@"; (( $#m )) && print -rl -- $m >>$__out; builtin compadd "$@"; }'
zpty -w z "print -r -- __rea''dy__"
wait_for __ready__ || exit 1
integer n=0
for line in "$@"; do
  (( ++n ))
  : >$outdir/$n
  zpty -w z "__out=${(q)outdir}/$n; print -r -- __li''ne${n}__"
  wait_for __line${n}__ || exit 1
  zpty -n -w z "$line"$'\t'
  zpty -w z $'\C-u'"print -r -- __do''ne${n}__"
  wait_for __done${n}__ || exit 1
done
zpty -d z
