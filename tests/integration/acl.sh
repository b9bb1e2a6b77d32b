#!/usr/bin/env bash
# tests/integration/acl.sh: least privilege in Redis (docs/security.md,
# "Redis"). On a private redis-server, once with the Lua functions alone
# and once with jobd's module, jobd (every role, the monitor too) and
# jobctl run as an ACL user with exactly the rule of docs/security.md,
# read from there: jobs run end to end, the API answers, and Redis logs
# no refusal. A second ACL user with another prefix runs its own jobs but
# cannot read or change the first one's: not by commands, not through the
# Lua functions, not through the module. A user with the rule of an
# earlier jobd (no SPUBLISH, no SSUBSCRIBE) still runs jobs: the wake-up
# falls back to the classic channel.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli curl jq
need_jobd
work=$(mktemp -d "/tmp/jobd-acl.XXXXXX")
on_exit "rm -rf '$work'"
umask 077

# rule NAME PREFIX PASSWORD MODULE: the ACL SETUSER arguments of
# docs/security.md for user NAME on PREFIX; with MODULE=yes the module's
# commands too.
rule() {
	local doc=$top_srcdir/docs/security.md base extra
	base=$(grep -m1 '^ACL SETUSER jobd reset ' "$doc") ||
		fail "no ACL rule in $doc"
	extra=$(grep -m1 '^ACL SETUSER jobd +jobd\.' "$doc") ||
		fail "no rule for the module in $doc"
	[ "$4" = yes ] && base="$base ${extra#ACL SETUSER jobd }"
	base=${base#ACL SETUSER jobd }
	base=${base//jobd:\*/$2:*}
	echo "${base/>PASSWORD/>$3}"
}

# refused TEXT WHAT: TEXT is Redis's refusal by ACL (NOPERM, or a
# function's "can't access").
refused() {
	case $1 in
	*NOPERM* | *"user executing the script can't access"*) ;;
	*) fail "$2: not refused by the ACL: $1" ;;
	esac
}

# as USER PASSWORD ARGS...: redis-cli as an ACL user.
as() {
	local u=$1 p=$2
	shift 2
	redis-cli -s "$sock" --user "$u" --pass "$p" --no-auth-warning "$@"
}

admin() {
	redis-cli -s "$sock" --pass "$admin_pw" --no-auth-warning "$@"
}

# write_conf NAME USER PREFIX
write_conf() {
	cat >"$dir/$1.conf" <<CONF
[redis]
address = $sock
user = $2
password_file = $dir/$2.pw
prefix = $3
[kafka]
brokers = embedded
[engine]
workers = 2
data_dir = $dir
lease = 2s
heartbeat = 200ms
[http]
listen = 127.0.0.1:0
token_file = $dir/http.token
[type.slow]
handler = noop
CONF
}

# Every command a Lua function calls is in the rule: a function runs
# with its caller's permissions, and a path this test does not walk
# (a repair, an upgrade) would otherwise meet NOPERM in production first.
lua_commands_in_rule() {
	local granted missing=
	granted=" $(rule x jobd pw no | tr ' ' '\n' | sed -n 's/^+//p' | tr '\n' ' ') "
	for c in $(grep -oh "redis\.p\{0,1\}call('[A-Z]*'" "$top_srcdir"/src/store/lua/*.lua |
		sed "s/.*('//; s/'//" | tr 'A-Z' 'a-z' | sort -u); do
		case $granted in *" $c "*) ;; *) missing="$missing $c" ;; esac
	done
	[ -z "$missing" ] || fail "the Lua functions call what docs/security.md's rule does not grant:$missing"
}
lua_commands_in_rule

# wakes WHAT: idle workers are woken (tests/lib.sh assert_woken).
wakes() {
	sleep 1.2
	assert_woken "$1" "jobctl submit noop" "admin HGET" wait_job
}

# run_mode lua|module
run_mode() {
	local mode=$1 module=no args=() id id2 url code n
	dir=$work/$mode
	mkdir -p "$dir/redis"
	if [ "$mode" = module ]; then
		module=yes
		args=(--module "$top_builddir/src/store/module/jobd.so")
		[ -f "${args[1]}" ] || fail "missing ${args[1]} (make builds it)"
	fi
	admin_pw=admin-$RANDOM$RANDOM
	printf 'requirepass %s\n' "$admin_pw" >"$dir/redis.conf"
	sock=$("$top_srcdir/scripts/redis" start "$dir/redis" --conf "$dir/redis.conf" "${args[@]}") ||
		fail "cannot start redis-server ($mode)"
	on_exit "'$top_srcdir/scripts/redis' stop '$dir/redis' >/dev/null 2>&1"
	unset JOBD_REDIS JOBD_CONFIG

	printf 'pw-a-%s\n' "$RANDOM$RANDOM" >"$dir/teama.pw"
	printf 'pw-b-%s\n' "$RANDOM$RANDOM" >"$dir/teamb.pw"
	printf 'tok-%s\n' "$RANDOM$RANDOM" >"$dir/http.token"
	printf 'ignored\n' >"$dir/default.pw"
	# shellcheck disable=SC2046
	admin ACL SETUSER teama $(rule teama jobd "$(cat "$dir/teama.pw")" $module) >/dev/null ||
		fail "ACL SETUSER teama"
	# shellcheck disable=SC2046
	admin ACL SETUSER teamb $(rule teamb other "$(cat "$dir/teamb.pw")" $module) >/dev/null ||
		fail "ACL SETUSER teamb"
	assert_eq OK "$(admin ACL SETUSER teama)" "the rule is accepted again"

	write_conf a teama jobd
	write_conf b teamb other
	cat >"$dir/admin.conf" <<CONF
[redis]
address = $sock
password = $admin_pw
CONF
	chmod 600 "$dir/admin.conf"

	# The rule has no FUNCTION LOAD: without the library, a clear error.
	err=$(jobctl -c "$dir/a.conf" list 2>&1 >/dev/null) && fail "list before the library is loaded"
	assert_contains "$err" "NOPERM" "FUNCTION LOAD refused ($mode)"
	assert_contains "$err" "an admin loads them" "the hint ($mode)"
	jobctl -c "$dir/admin.conf" fsck >/dev/null || fail "the admin loads the library"
	admin ACL LOG RESET >/dev/null

	# jobd and jobctl as teama: every role, the embedded broker, the monitor.
	start_jobd a "$dir"
	url=$(monitor_url "$dir/a.log")
	export JOBD_CONFIG=$dir/a.conf
	wakes "teama ($mode)"
	id=$(jobctl submit noop --payload '{"steps": 3, "sleep_ms": 10}') || fail "submit as teama ($mode)"
	wait_job 20 "$id" '.status == "finished"'
	id2=$(jobctl submit slow --payload '{"steps": 1000, "sleep_ms": 100}')
	wait_job 20 "$id2" '.status == "in_progress"'
	jobctl stop "$id2" >/dev/null || fail "stop as teama"
	wait_job 20 "$id2" '.status == "stopped"'
	jobctl resume "$id2" >/dev/null || fail "resume as teama"
	wait_job 20 "$id2" '.status == "in_progress"'
	jobctl stop "$id2" >/dev/null || fail "stop again as teama"
	wait_job 20 "$id2" '.status == "stopped"'
	jobctl cancel "$id2" >/dev/null || fail "cancel as teama"
	wait_job 20 "$id2" '.status == "canceled"'
	jobctl list --all --json >/dev/null || fail "list as teama"
	jobctl logs "$id" --tree >/dev/null || fail "logs as teama"
	jobctl logs --all --since 1h >/dev/null || fail "logs --all as teama"
	jobctl children "$id" >/dev/null || fail "children as teama"
	jobctl why "$id2" >/dev/null || fail "why as teama"
	jobctl stats --since 1h >/dev/null || fail "stats as teama"
	jobctl fsck >/dev/null || fail "fsck as teama ($mode)"
	for path in api/jobs "api/jobs/$id" "api/jobs/$id/logs?tree=1" "api/jobs/$id/children" \
		api/logs api/stats api/counts api/types metrics; do
		code=$(curl -s -o "$dir/get" -w '%{http_code}' "$url$path")
		assert_eq 200 "$code" "GET /$path as teama ($mode): $(cat "$dir/get")"
	done
	code=$(curl -s -o "$dir/post" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $(cat "$dir/http.token")" \
		--data-binary '{"type": "noop", "payload": {"steps": 1}}' "${url}api/jobs")
	assert_eq 201 "$code" "POST /api/jobs as teama ($mode): $(cat "$dir/post")"
	wait_job 20 "$(jq -r '.ids[0]' "$dir/post")" '.status == "finished"'
	if [ "$mode" = module ]; then
		n=$(admin INFO commandstats | tr -d '\r' |
			sed -n 's/^cmdstat_jobd\.claim:calls=\([0-9]*\).*/\1/p')
		[ "${n:-0}" -gt 0 ] || fail "the module was not used: $(admin INFO commandstats)"
	fi
	stop_jobd a
	# A job left pending, for teamb to try to claim.
	id3=$(jobctl submit noop) || fail "submit as teama ($mode)"
	assert_eq 0 "$(admin ACL LOG | grep -c '^reason$' || true)" \
		"refusals of teama ($mode): $(admin ACL LOG)"

	# teamb runs its own jobs on its own prefix...
	export JOBD_CONFIG=$dir/b.conf
	idb=$(jobctl submit noop) || fail "submit as teamb ($mode)"
	assert_eq 1 "$(jobctl list --json | jq '.jobs | length')" "teamb sees its one job ($mode)"
	[ -n "$(admin HGETALL "other:job:$idb")" ] || fail "teamb's job under its prefix"

	# ...and cannot reach teama's: by commands,
	pb=$(cat "$dir/teamb.pw")
	set -f # the commands' * are Redis's
	for cmd in "HGETALL jobd:job:$id" "GET jobd:seq" "ZRANGE jobd:ready 0 -1" \
		"XRANGE jobd:log:$id - +" "HSET jobd:job:$id status pending" "KEYS *" \
		"SUBSCRIBE jobd:wake" "FUNCTION LOAD x" "CONFIG GET *"; do
		# shellcheck disable=SC2086
		out=$(timeout 5 redis-cli -s "$sock" --user teamb --pass "$pb" --no-auth-warning $cmd 2>&1 || true)
		refused "$out" "teamb: $cmd ($mode)"
	done
	set +f
	# through jobd's functions and the module, with teama's prefix,
	sed -i 's/^prefix = other$/prefix = jobd/' "$dir/b.conf"
	for cmd in "show $id" "list" "logs $id" "stop $id2" "submit noop"; do
		# shellcheck disable=SC2086
		out=$(jobctl $cmd 2>&1) && fail "teamb: jobctl $cmd on teama's prefix ($mode): $out"
		refused "$out" "teamb: jobctl $cmd ($mode)"
	done
	if [ "$mode" = module ]; then
		# A claim with good arguments: without the module's own check
		# it would take teama's pending job.
		for cmd in "JOBD.CLAIM jobd 2592000000 teamb 10000 1 0 10" \
			"JOBD.CREATE jobd x" "JOBD.FINISH jobd x"; do
			# shellcheck disable=SC2086
			out=$(as teamb "$pb" $cmd 2>&1 || true)
			refused "$out" "teamb: $cmd"
		done
	fi
	# and teama's jobs are as they were.
	assert_eq finished "$(JOBD_CONFIG=$dir/a.conf jobctl show "$id" --json | jq -r .status)" "teama's job"
	assert_eq canceled "$(JOBD_CONFIG=$dir/a.conf jobctl show "$id2" --json | jq -r .status)" "teama's job"
	assert_eq pending "$(JOBD_CONFIG=$dir/a.conf jobctl show "$id3" --json | jq -r .status)" "teama's pending job"

	# A rule from before the wake-up's shard channel (no SPUBLISH, no
	# SSUBSCRIBE): the functions fall back to the classic channel, jobd
	# listens there, and the calls go through.
	printf 'pw-c-%s\n' "$RANDOM$RANDOM" >"$dir/teamc.pw"
	# shellcheck disable=SC2046
	admin ACL SETUSER teamc $(rule teamc jobd "$(cat "$dir/teamc.pw")" $module |
		sed 's/ +spublish//; s/ +ssubscribe//') >/dev/null || fail "ACL SETUSER teamc"
	admin ACL LOG RESET >/dev/null
	write_conf c teamc jobd
	start_jobd c "$dir"
	export JOBD_CONFIG=$dir/c.conf
	wakes "the older rule ($mode)"
	stop_jobd c
	out=$(admin ACL LOG)
	assert_contains "$out" ssubscribe "jobd's SSUBSCRIBE refused by the older rule ($mode)"
	# (the module publishes through its API, which no ACL rule checks)
	[ "$mode" = module ] ||
		assert_contains "$out" spublish "a function's SPUBLISH refused by the older rule"
	"$top_srcdir/scripts/redis" stop "$dir/redis" >/dev/null 2>&1
}

run_mode lua
run_mode module
echo "PASS: acl"
