#!/usr/bin/env bash
# tests/integration/readme_tour.sh: "A short tour" of README.md works as
# written.
#
# The tour's lines are read from README.md itself, so that it cannot
# drift. Its first line stands for the export line scripts/run prints: it
# must name the same variables, and the line scripts/run really printed
# runs in its place. Then every line runs in one shell, from the clone's
# root, as a newcomer types them, and each must exit 0. Last, what the
# story did must show: its long job canceled by alice after a stop, a
# resume and a second stop; its tree restarted by bob; its export read
# from Kafka.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need python3 redis-server redis-cli kcat
need_jobd
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-tour.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"

# The code block after the heading "## A short tour".
awk '/^## / { in_tour = ($0 == "## A short tour") } in_tour && /^```/ { if (seen++) exit; next } in_tour && seen' \
	"$top_srcdir/README.md" >"$work/tour"
[ "$(wc -l <"$work/tour")" -ge 10 ] || fail "no tour in README.md: $(cat "$work/tour")"
placeholder=$(head -n 1 "$work/tour")
tail -n +2 "$work/tour" >"$work/lines"

start_run "$work"
# The names the export lines set: README's placeholder, the printed line.
names() {
	printf '%s\n' "$1" | grep -o '[A-Z_][A-Z_]*=' | tr -d = | tr '\n' ' '
}
case $placeholder in
export\ *) ;;
*) fail "the tour does not begin with the export line: $placeholder" ;;
esac
assert_eq "$(names "$run_export")" "$(names "${placeholder%%#*}")" \
	"README's export line names what scripts/run's sets"
assert_contains "$(names "$run_export")" "PATH JOBD_REDIS JOBD_CONFIG" \
	"scripts/run's export line"

# Each line as typed, in one shell (the tour's variables carry over),
# from the clone's root, with what scripts/run printed; stdin is no
# terminal. The first line that fails ends it.
cat >"$work/tour.sh" <<'SH'
cd "$1"
eval "$2"
n=1
while IFS= read -r -u 3 line; do
	n=$((n + 1))
	printf '+ %s\n' "$line"
	eval "$line" </dev/null || {
		rc=$?
		echo "README.md tour line $n exited $rc: $line" >&2
		exit 1
	}
done 3<"$3"
# What the story made, for the checks below.
printf '%s\n' "$long" "$tree" >"$4"
SH
rc=0
timeout 300 bash "$work/tour.sh" "$top_srcdir" "$run_export" "$work/lines" "$work/ids" \
	>"$work/tour.out" 2>"$work/tour.err" || rc=$?
[ "$rc" = 0 ] || fail "the tour failed (exit $rc): $(tail -n 5 "$work/tour.err")
$(tail -n 20 "$work/tour.out")"
{ read -r long && read -r tree; } <"$work/ids" || fail "the tour set no \$long and \$tree"

eval "$run_export"
assert_eq canceled "$(redis-cli -s "$JOBD_REDIS" hget "jobd:job:$long" status)" "the long job"
log=$(jobctl logs "$long")
# A stop reaches a running job as a request, a pending one at once, and
# jobctl says which (never "stop done" for a job still Stopping).
grep -qxE "stop requested: job $long is Stopping|job $long stopped" "$work/tour.out" ||
	fail "jobctl stop did not say what happened to job $long: $(grep -E "^\+ jobctl --as alice stop" -A 1 "$work/tour.out")"
assert_eq 2 "$(printf '%s\n' "$log" | grep -cE '(stop requested|stopped) by alice')" \
	"two stops by alice in the long job's log: $log"
assert_contains "$log" "resumed by alice" "the long job's log"
assert_contains "$log" "canceled by alice" "the long job's log"
assert_contains "$(jobctl logs "$tree")" "restarted by bob" "the tree's log"
assert_eq 3 "$(jobctl children "$tree" --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["jobs"]))')" \
	"the tree's children"
# The export arrives through Kafka (the key is its topic and id): wait for
# it, not a time.
tour_exported() {
	jobctl list --type export --run-by alice --json | grep -q '"key":"jobs.records:tour-1"'
}
wait_for 30 "the tour's export to become a job" tour_exported

stop_run TERM
assert_eq 143 "$run_rc" "scripts/run's exit status"
echo "readme_tour.sh: ok"
