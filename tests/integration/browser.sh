#!/usr/bin/env bash
# tests/integration/browser.sh: the monitor page in headless Chromium (Debian's
# chromium driven by playwright-core from npm; never `playwright install`).
# Starts redis-server, the monitor (tests/drivers/http_driver) and its scripted
# worker, and a consumer for the Kafka view, then runs
# tests/integration/browser/monitor.test.mjs. Screenshots go to
# tests/integration/browser/screenshots/ (git-ignored); with DOCS_SCREENSHOTS=1
# also those of docs/monitor.md, into docs/img/monitor-*.png. Skips (77) when
# chromium, node or npm is missing, unless CI=true.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

DRIVER=${HTTP_DRIVER:-$top_builddir/tests/drivers/http_driver}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
dir=$top_srcdir/tests/integration/browser
[ -x "$DRIVER" ] || fail "$DRIVER not built"
[ -x "$CHROMIUM" ] || skip_or_fail "chromium not found at $CHROMIUM (run scripts/bootstrap)"
need node
if [ ! -d "$dir/node_modules/playwright-core" ]; then
	need npm
	(cd "$dir" && npm install --no-audit --no-fund --silent) ||
		skip_or_fail "cannot install playwright-core from npm"
fi

start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-browser.XXXXXX")
on_exit "rm -rf '$work'"
printf '%s\n' "[redis]" "address = $JOBD_REDIS" "[http]" "listen = 127.0.0.1:0" \
	"[type.import]" "handler = noop" "restartable = yes" \
	"[type.refactor]" "handler = noop" "system = yes" \
	"[type.fixed]" "handler = noop" "stoppable = no" \
	"[type.later]" "handler = noop" "retries = 1" "retry_backoff = 1h" \
	"[schedule.nightly]" "cron = 30 2 * * *" "timezone = Europe/Paris" "type = import" \
	"[schedule.paused]" "cron = @hourly" "type = import" "enabled = no" >"$work/jobd.conf"

start() { # NAME ARGS...
	local name=$1 i
	shift
	"$DRIVER" "$work/jobd.conf" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	echo $! >"$work/$name.pid"
	on_exit "kill \$(cat '$work/$name.pid') 2>/dev/null || true"
	for i in $(seq 100); do
		grep -q 'listening\|worker ready' "$work/$name.out" 2>/dev/null && return 0
		kill -0 "$(cat "$work/$name.pid")" 2>/dev/null ||
			fail "$name exited: $(cat "$work/$name.err")"
		sleep 0.1
	done
	fail "$name did not start"
}
start http
start worker --worker
BASE=http://$(awk '/listening/ { print $2 }' "$work/http.out")

# The Kafka view: a consumer (tests/drivers/kafka_driver, the consume role
# on the embedded broker) publishes its partitions; three messages that
# cannot become jobs give it dead letters (and no job to disturb the list).
need kcat
printf '%s\n' "[redis]" "address = $JOBD_REDIS" "[engine]" "instance = kview" \
	>"$work/kafka.conf"
start_kafka_driver kview "$work" -c "$work/kafka.conf"
broker=$(embedded_broker) || exit
for bad in 'not json' '[1,2]' '{"id":"x"}'; do
	printf '%s' "$bad" | kcat -b "$broker" -t jobs.events -p 0 -P ||
		fail "kcat cannot produce to jobs.events on $broker"
done

mkdir -p "$dir/screenshots"
BASE=$BASE JOBD_REDIS=$JOBD_REDIS CHROMIUM=$CHROMIUM SCREENSHOTS=$dir/screenshots USER_DATA=$work/chrome \
	DOCS_SCREENSHOTS=${DOCS_SCREENSHOTS:-} DOCS_IMG=$top_srcdir/docs/img \
	timeout 180 node "$dir/monitor.test.mjs" ||
	fail "browser test failed (monitor log: $(tail -5 "$work/http.err"))"
echo "PASS: browser"
