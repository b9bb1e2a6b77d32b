#!/usr/bin/env bash
# The bash completion (config/bash-completion/jobctl) offers every command
# of src/jobctl.c and every option of each, read from the source: a command
# or option added to jobctl without its completion fails here. Also the
# values of --status, --level and --type, and submit's types from the
# configuration.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

# shellcheck source=/dev/null
. "$top_srcdir/config/bash-completion/jobctl" || fail "cannot source the completion"
[ "$(complete -p jobctl)" = "complete -F _jobctl jobctl" ] || fail "no completion for jobctl"

# complete WORD...: COMPREPLY for the command line "jobctl WORD..." with the
# cursor on the last word, one per line.
complete_line() {
	COMP_WORDS=(jobctl "$@")
	COMP_CWORD=$#
	COMPREPLY=()
	_jobctl
	printf '%s\n' "${COMPREPLY[@]}"
}

# offers WHAT WORD...: the completion of "jobctl WORD..." includes WHAT.
offers() {
	local what=$1
	shift
	complete_line "$@" | grep -qxF -- "$what" ||
		fail "'jobctl $* <TAB>' does not offer $what (offers: $(complete_line "$@" | paste -sd ' '))"
}

commands=$(jobctl_commands)
[ "$(wc -l <<<"$commands")" -ge 14 ] || fail "found only these commands in src/jobctl.c: $commands"
for c in $commands; do
	offers "$c" ""
done
n=0
while read -r cmd opt; do
	if [ "$cmd" = jobctl ]; then
		offers "--$opt" -
	else
		offers "--$opt" "$cmd" --
	fi
	n=$((n + 1))
done < <(jobctl_options)
[ "$n" -ge 37 ] || fail "found only $n options in src/jobctl.c"

# Options name what they take; a stop has no --off; -c is skipped.
offers in_progress list --status ""
offers warn logs 1 --level w
offers stopped -c /x.conf list --status s
assert_eq "" "$(complete_line stop 1 --)" "stop takes no options"
dir=$(mktemp -d /tmp/jobd-completion.XXXXXX) || fail "cannot make a temp dir"
on_exit "rm -rf '$dir'"
printf '[type.report]\nhandler = noop\n' >"$dir/jobd.conf"
offers report -c "$dir/jobd.conf" submit r
offers report --config="$dir/jobd.conf" list --type ""
JOBD_CONFIG=$dir/jobd.conf offers report submit ""
offers noop submit ""
assert_eq "" "$(complete_line submit noop "")" "nothing after submit's type"
echo "PASS: completion"
