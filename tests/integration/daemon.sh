#!/usr/bin/env bash
# jobd under a service manager: sd_notify to a fake NOTIFY_SOCKET (READY=1
# once it serves, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 last;
# a path and an abstract '@' socket), SIGHUP reloading job types, tokens
# and the log level (a broken file refused and the running configuration
# kept, a key needing a restart named), and JSON log lines that jq parses.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need jq curl python3
need_jobd
start_redis
dir=$(mktemp -d /tmp/jobd-daemon.XXXXXX) || fail "cannot make a temp dir"
on_exit "rm -rf '$dir'"
port=$(free_port)
base=http://127.0.0.1:$port

# listen ADDRESS OUT: a fake service manager, one line in OUT per datagram
# (its newlines as ';'); waits until it is bound.
listen() {
	python3 -c '
import socket, sys
addr, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
with open(out, "a", buffering=1) as f:
    f.write("bound\n")
    while True:
        f.write(s.recv(4096).decode().replace("\n", ";") + "\n")
' "$1" "$2" &
	on_exit "kill $! 2>/dev/null"
	wait_for 10 "notify listener on $1" grep -sqx bound "$2"
}

# at_least N PATTERN FILE: FILE has N lines matching PATTERN (grep -E).
at_least() {
	[ "$(grep -cE "$2" "$3")" -ge "$1" ]
}

# conf TYPE-SECTION TOKEN LEVEL WORKERS [BROKEN]: writes daemon.conf,
# mode 644 though it holds a token: the warning that it is readable comes
# while the file is read, at start and at each reload, before [log]
# format = json applies, and must be JSON too.
conf() {
	install -m 644 /dev/null "$dir/daemon.conf"
	cat >"$dir/daemon.conf" <<CONF
[engine]
roles = work,http
workers = $4
$5
[http]
listen = 127.0.0.1:$port
token = $2
[log]
format = json
level = $3
$1
CONF
}

# post TOKEN TYPE: sets CODE and BODY of POST /api/jobs.
post() {
	CODE=$(curl -s -o "$dir/body" -w '%{http_code}' -H "Authorization: Bearer $1" \
		-H 'Content-Type: application/json' --data-binary "{\"type\": \"$2\"}" "$base/api/jobs")
	BODY=$(cat "$dir/body")
}

# logged JQ-FILTER: some line of jobd's log matches.
logged() {
	jq -e -s "map(select($1)) | length > 0" "$dir/daemon.log" >/dev/null 2>&1
}

# --- READY=1, WATCHDOG=1 ------------------------------------------------
listen "$dir/notify.sock" "$dir/notify.log"
conf "" tok1 info 2
NOTIFY_SOCKET=$dir/notify.sock WATCHDOG_USEC=400000 start_jobd daemon "$dir"
wait_for 20 "READY=1 from jobd" grep -q 'READY=1' "$dir/notify.log"
# Ready means serving: the monitor answers at once.
curl -sf "$base/api/types" >/dev/null || fail "READY=1 before the monitor served"
assert_eq "bound READY=1;STATUS=running" "$(head -n 2 "$dir/notify.log" | paste -sd ' ')" \
	"READY=1 first"
wait_for 10 "three WATCHDOG=1 pings" at_least 3 '^WATCHDOG=1$' "$dir/notify.log"
# The warning of the loader, before [log] was read, is a JSON line.
readable='.level == "warn" and (.msg | contains("daemon.conf:7: warning: a secret in a file that group or others may read (mode 0644)"))'
logged "$readable" || fail "no JSON warning for the readable token: $(head -n 3 "$dir/daemon.log")"

# --- SIGHUP: a new type, new tokens, a key that needs a restart ----------
post tok1 report
assert_eq 400 "$CODE" "report before the reload: $BODY"
assert_contains "$BODY" 'unknown type \"report\"' "report before the reload"
conf "$(printf '[type.report]\nhandler = noop\n[users]\ntok3 = alice')" tok2 info 3
kill -HUP "${jobd_pids[daemon]}"
wait_for 10 "the reload logged" logged '.msg | startswith("reloaded ")'
logged '.level == "info" and (.msg | contains("added: report") and contains("an admin token, 1 user tokens"))' ||
	fail "reload outcome: $(grep reloaded "$dir/daemon.log")"
logged '.level == "warn" and (.msg | endswith("[engine] workers changed: needs a restart; keeping the running value"))' ||
	fail "no restart warning for workers: $(cat "$dir/daemon.log")"
wait_for 5 "READY=1 after RELOADING=1" grep -qx 'READY=1' "$dir/notify.log"
assert_eq "RELOADING=1 READY=1" "$(grep -v WATCHDOG "$dir/notify.log" | tail -n 2 | paste -sd ' ')" \
	"reload notifications"
post tok1 report
assert_eq 401 "$CODE" "the old token after the reload: $BODY"
post tok3 report
assert_eq 201 "$CODE" "alice's new token, the new type: $BODY"
id=$(jq -r '.ids[0]' <<<"$BODY")
wait_job 20 "$id" '.status == "finished"'
assert_eq alice "$(jobctl show "$id" --json | jq -r .run_by)" "alice made it"
curl -sf "$base/api/types" | jq -e '.types | map(.name) | index("report")' >/dev/null ||
	fail "report not in /api/types after the reload"

# --- a broken file: refused, the running configuration stays -------------
conf "" tok9 info 2 "lease = 5x"
kill -HUP "${jobd_pids[daemon]}"
wait_for 10 "the refusal logged" logged '.msg | startswith("reload refused")'
logged '.level == "error" and (.msg | endswith("daemon.conf:4: bad duration \"5x\" for [engine] lease: use a number with ms, s, m, h or d"))' ||
	fail "refusal without file:line: $(grep refused "$dir/daemon.log")"
post tok9 report
assert_eq 401 "$CODE" "a token of the refused file"
post tok2 report
assert_eq 201 "$CODE" "the running token and type after a refused reload: $BODY"

# --- the log level: warn drops the info line of the next reload ---------
conf "$(printf '[type.report]\nhandler = noop')" tok2 warn 2
kill -HUP "${jobd_pids[daemon]}"
wait_for 10 "READY=1 after the third reload" at_least 3 '^READY=1$' "$dir/notify.log"
conf "$(printf '[type.report]\nhandler = noop')" tok2 warn 3
kill -HUP "${jobd_pids[daemon]}"
wait_for 10 "the restart warning at level warn" at_least 2 'workers changed' "$dir/daemon.log"
assert_eq 2 "$(grep -c '"reloaded ' "$dir/daemon.log")" "info lines dropped at level warn"
# At start and at each of the four reloads but the refused one.
assert_eq 4 "$(jq -c "select($readable)" "$dir/daemon.log" | wc -l)" \
	"readable-token warnings, start and reloads"

# --- STOPPING=1 last; every line is one JSON object -----------------------
stop_jobd daemon
wait_for 5 "STOPPING=1" grep -qx 'STOPPING=1' "$dir/notify.log"
assert_eq STOPPING=1 "$(tail -n 1 "$dir/notify.log")" "STOPPING=1 last"
lines=$(wc -l <"$dir/daemon.log")
[ "$lines" -ge 5 ] || fail "only $lines log lines"
assert_eq "$lines" "$(jq -c 'select((.ts | test("^[0-9-]+T[0-9:.]+Z$")) and .level and .subsystem and .ident == "jobd" and .msg)' \
	"$dir/daemon.log" | wc -l)" "JSON log lines: $(cat "$dir/daemon.log")"
logged '.subsystem == "http" and (.msg | startswith("monitor on "))' ||
	fail "no http subsystem in the JSON lines"

# --- an abstract socket; --log-format json over a text config -------------
abstract=@jobd-test-$$-$RANDOM
listen "$abstract" "$dir/abstract.log"
# an unknown key: a warning while the file is read, before --log-format
# could apply if it were not held
printf '[engine]\nroles = work\nworkers = 1\nbogus = 1\n' >"$dir/abstract.conf"
NOTIFY_SOCKET=$abstract "$jobd_bin" -c "$dir/abstract.conf" --log-format json \
	>"$dir/abstract.out" 2>&1 &
pid=$!
on_exit "kill -KILL $pid 2>/dev/null"
wait_for 20 "READY=1 on the abstract socket" grep -q '^READY=1' "$dir/abstract.log"
kill -TERM "$pid"
wait "$pid" || fail "jobd exited with $? at SIGTERM: $(cat "$dir/abstract.out")"
assert_eq STOPPING=1 "$(tail -n 1 "$dir/abstract.log")" "STOPPING=1 on the abstract socket"
jq -e -s 'length > 2 and all(.level and .msg)' "$dir/abstract.out" >/dev/null ||
	fail "--log-format json: $(cat "$dir/abstract.out")"
jq -e -s 'any(.level == "warn" and (.msg | endswith("abstract.conf:4: warning: unknown key \"bogus\" in [engine]; ignored")))' \
	"$dir/abstract.out" >/dev/null 2>&1 ||
	fail "--log-format json: no JSON warning for the unknown key: $(head -n 3 "$dir/abstract.out")"
# A file that does not load: its error follows --log-format too.
printf '[engine]\nlease = 5x\n' >"$dir/broken.conf"
"$jobd_bin" -c "$dir/broken.conf" --log-format json 2>"$dir/broken.out" &&
	fail "a broken file accepted"
jq -e -s 'length == 1 and .[0].level == "error" and (.[0].msg | endswith("broken.conf:2: bad duration \"5x\" for [engine] lease: use a number with ms, s, m, h or d"))' \
	"$dir/broken.out" >/dev/null 2>&1 || fail "--log-format json, a broken file: $(cat "$dir/broken.out")"
"$jobd_bin" --log-format yaml 2>"$dir/usage.out" && fail "--log-format yaml accepted"
assert_contains "$(cat "$dir/usage.out")" 'bad --log-format "yaml": use text or json' "bad format"
echo "PASS: daemon"
