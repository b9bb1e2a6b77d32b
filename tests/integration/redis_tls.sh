#!/usr/bin/env bash
# tests/integration/redis_tls.sh: jobd and jobctl reach Redis through TLS
# ([redis] address = rediss://..., tls_ca, tls_cert, tls_key,
# tls_server_name; docs/security.md, "Redis in transit"). Certificates
# made by openssl (scripts/redis tls-certs): a CA, a server certificate
# for 127.0.0.1 and localhost, a client certificate. redis-server listens
# on a TLS port only, with --tls-auth-clients yes: a job goes its whole
# way (jobctl submit, a worker runs it, jobctl show and list, the
# monitor's API), an idle worker is woken promptly for a new job (the
# wake-up subscription over TLS), and a restart of Redis mid-run is
# recovered. Then each misconfiguration
# stops jobd at start with a message naming the address and the reason:
# another CA, another server name, plain redis:// to the TLS port, no
# client certificate, a missing certificate file. With --tls-auth-clients
# optional a client without a certificate gets in.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need redis-server redis-cli openssl jq curl python3
need_jobd
# Not ldd | grep -q: with pipefail, grep quitting early fails the pipe.
case $(ldd "$(command -v redis-server)" 2>/dev/null) in
*libssl*) ;;
*) skip_or_fail "this redis-server has no TLS" ;;
esac
work=$(mktemp -d "/tmp/jobd-rtls.XXXXXX")
on_exit "rm -rf '$work'"
umask 077

# --- certificates -----------------------------------------------------------

# ca.pem, server.pem for 127.0.0.1 and localhost, client.pem, and
# other.pem, a CA that signed none of them (with their keys).
"$top_srcdir/scripts/redis" tls-certs "$work" || fail "cannot make the certificates"

# --- redis-server on a TLS port ---------------------------------------------

port=$(free_port)
rdir=$(mktemp -d "/tmp/jobd-rtls-redis.XXXXXX")
on_exit "'$top_srcdir/scripts/redis' stop '$rdir'; rm -rf '$rdir'"
# redis_tls AUTH: scripts/redis with the TLS port (its unix socket stays,
# for the test's own redis-cli); AUTH is yes or optional.
redis_tls() {
	cat >"$work/redis-tls.conf" <<EOF
tls-port $port
tls-cert-file $work/server.pem
tls-key-file $work/server.key
tls-ca-cert-file $work/ca.pem
tls-auth-clients $1
appendonly yes
EOF
	# shellcheck disable=SC2046
	sock=$("$top_srcdir/scripts/redis" start "$rdir" --conf "$work/redis-tls.conf" $(module_args)) ||
		fail "cannot start redis-server with TLS (log: $rdir/redis.log)"
}
redis_tls yes
JOBD_REDIS=$sock
rcli() {
	redis-cli -s "$sock" "$@"
}
# The TLS port is the only TCP port: plain clients have nothing else.
rcli config get port | grep -qx 0 || fail "redis has a plain TCP port"

# write_conf NAME ADDRESS [REDIS-LINES...]: a config in $work (relative
# certificate paths: the config file's directory).
write_conf() {
	local name=$1 address=$2
	shift 2
	{
		printf '[redis]\naddress = %s\n' "$address"
		printf '%s\n' "$@"
		printf '[engine]\nroles = work,http\nworkers = 2\ndata_dir = %s\n' "$work"
		printf '[http]\nlisten = 127.0.0.1:0\n'
	} >"$work/$name.conf"
}
tls_lines=("tls_ca = ca.pem" "tls_cert = client.pem" "tls_key = client.key")
write_conf tls "rediss://127.0.0.1:$port" "${tls_lines[@]}"

# jobctl reads the same configuration.
tctl() {
	env -u JOBD_REDIS "$top_builddir/src/jobctl" -c "$work/tls.conf" "$@"
}
job_is_tls() {
	[ "$(tctl show "$1" --json | jq -r "$2")" = true ]
}
wait_job_tls() {
	poll "$1" job_is_tls "$2" "$3" ||
		fail "job $2: '$3' still false after $1 s: $(tctl show "$2" --json)"
}

# --- a job's whole way over TLS ---------------------------------------------

# From /: the certificate paths are the config file's directory's.
env -C / -u JOBD_REDIS "$top_builddir/src/jobd" -c "$work/tls.conf" >>"$work/tls.log" 2>&1 &
jobd_pids[tls]=$!
on_exit "kill -KILL ${jobd_pids[tls]} 2>/dev/null"
url=$(monitor_url "$work/tls.log")
id=$(tctl submit noop --payload '{"steps": 2}') || fail "jobctl submit over TLS: $(cat "$work/tls.log")"
wait_job_tls 20 "$id" '.status == "finished"'
tctl list --json | jq -e --argjson id "$id" '[.jobs[] | select(.id == $id)] | length == 1' >/dev/null ||
	fail "jobctl list over TLS misses job $id"
curl -sf "${url}api/jobs/$id" | jq -e '.status == "finished"' >/dev/null ||
	fail "the monitor over TLS does not show job $id: $(curl -s "${url}api/jobs/$id")"
# Every connection of jobd is a TLS one: redis counts no plain client
# on its TCP side (the unix socket is this test's).
clients=$(rcli client list | grep -v 'laddr=/' | grep -c . || true)
[ "$clients" -ge 3 ] || fail "only $clients TCP clients: $(rcli client list)"
tls_port_clients=$(rcli client list | grep -c "laddr=127.0.0.1:$port" || true)
assert_eq "$clients" "$tls_port_clients" "clients on the TLS port"

# Wake-ups over TLS: idle workers wait on their subscription for up to
# 1 s between looks; woken, they start a new job at once. Five jobs, each
# at another moment of that second: without wake-ups some would wait.
sleep 2
assert_woken "over TLS" "tctl submit noop" "rcli hget" wait_job_tls

# A restart of Redis mid-run: jobd reconnects through TLS and goes on.
id=$(tctl submit noop --payload '{"steps": 30, "sleep_ms": 100}')
wait_job_tls 20 "$id" '.status == "in_progress"'
sleep 0.5
"$top_srcdir/scripts/redis" stop "$rdir" >/dev/null
sleep 1
redis_tls yes
id2=$(tctl submit noop) || fail "jobctl after the restart"
wait_job_tls 60 "$id" '.status == "finished"'
wait_job_tls 30 "$id2" '.status == "finished"'
kill -0 "${jobd_pids[tls]}" || fail "jobd died with the restart: $(tail -20 "$work/tls.log")"
stop_jobd tls
grep -q "redis at rediss://127.0.0.1:$port" "$work/tls.log" ||
	fail "the restart left no trace in jobd's log: $(tail -20 "$work/tls.log")"

# --- refusals: clear errors at start ---------------------------------------

# refuses NAME MESSAGE...: jobd -c NAME.conf exits 1 within the timeout,
# saying each MESSAGE; so does jobctl with it.
refuses() {
	local name=$1 rc=0 out
	shift
	timeout 30 env -u JOBD_REDIS "$top_builddir/src/jobd" -c "$work/$name.conf" >"$work/$name.log" 2>&1 || rc=$?
	assert_eq 1 "$rc" "jobd's exit with $name.conf ($(cat "$work/$name.log"))"
	for m; do
		assert_contains "$(cat "$work/$name.log")" "$m" "jobd's message with $name.conf"
	done
	rc=0
	out=$(timeout 30 env -u JOBD_REDIS "$top_builddir/src/jobctl" -c "$work/$name.conf" list 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "jobctl with $name.conf succeeded: $out"
	assert_contains "$out" "$1" "jobctl's message with $name.conf"
}
addr="rediss://127.0.0.1:$port"

write_conf wrongca "$addr" "tls_ca = other.pem" "tls_cert = client.pem" "tls_key = client.key"
refuses wrongca "cannot connect to redis at $addr" "cannot verify the server's certificate" \
	"tls_ca \"$work/other.pem\""

write_conf wrongname "$addr" "${tls_lines[@]}" "tls_server_name = redis.example"
refuses wrongname "cannot connect to redis at $addr" \
	"the server's certificate is not for \"redis.example\" (it is for DNS:localhost, IP:127.0.0.1)"

# By name, the same certificate is fine (SNI and DNS name checked).
write_conf byname "rediss://localhost:$port" "${tls_lines[@]}"
env -u JOBD_REDIS "$top_builddir/src/jobctl" -c "$work/byname.conf" list >/dev/null ||
	fail "rediss://localhost refused"

write_conf plain "redis://127.0.0.1:$port"
refuses plain "redis at redis://127.0.0.1:$port" "rediss://"

write_conf nocert "$addr" "tls_ca = ca.pem"
refuses nocert "redis at $addr" "client certificate" "tls_cert and tls_key"

write_conf missing "$addr" "tls_ca = nowhere/ca.pem"
refuses missing "cannot read [redis] tls_ca \"$work/nowhere/ca.pem\": No such file or directory"
write_conf missingkey "$addr" "tls_ca = ca.pem" "tls_cert = client.pem" "tls_key = nowhere.key"
refuses missingkey "cannot read [redis] tls_key \"$work/nowhere.key\""
write_conf mismatch "$addr" "tls_ca = ca.pem" "tls_cert = client.pem" "tls_key = server.key"
refuses mismatch "[redis] tls_key \"$work/server.key\" is not the key of tls_cert \"$work/client.pem\""
write_conf tlsplain "127.0.0.1:$port" "tls_ca = ca.pem"
refuses tlsplain "[redis] tls_ca is set but address \"127.0.0.1:$port\" is not TLS"

# JOBD_REDIS takes rediss:// too, and may not turn a TLS config to plain.
out=$(JOBD_REDIS="127.0.0.1:$port" "$top_builddir/src/jobctl" -c "$work/tls.conf" list 2>&1) &&
	fail "JOBD_REDIS plain over a TLS config: $out"
assert_contains "$out" "address from \$JOBD_REDIS" "JOBD_REDIS plain over tls keys"
JOBD_REDIS="rediss://localhost:$port" "$top_builddir/src/jobctl" -c "$work/tls.conf" list >/dev/null ||
	fail "JOBD_REDIS=rediss://localhost:$port"

# --- tls-auth-clients optional: no client certificate needed ----------------

"$top_srcdir/scripts/redis" stop "$rdir" >/dev/null
redis_tls optional
write_conf optional "$addr" "tls_ca = ca.pem"
env -C / -u JOBD_REDIS "$top_builddir/src/jobd" -c "$work/optional.conf" >>"$work/optional.log" 2>&1 &
jobd_pids[optional]=$!
on_exit "kill -KILL ${jobd_pids[optional]} 2>/dev/null"
id=$(env -u JOBD_REDIS "$top_builddir/src/jobctl" -c "$work/optional.conf" submit noop) ||
	fail "submit without a client certificate (optional)"
poll 20 sh -c "redis-cli -s '$sock' hget jobd:job:$id status | grep -qx finished" ||
	fail "job $id did not finish with tls-auth-clients optional: $(cat "$work/optional.log")"
stop_jobd optional
echo "PASS: redis_tls"
