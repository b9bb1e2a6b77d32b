#!/usr/bin/env bash
# tests/integration/https.sh: the monitor over HTTPS ([http] tls_cert and
# tls_key; docs/security.md, "The monitor"). With a certificate made by
# openssl: the page and its assets load through curl verifying the
# certificate, the API runs a job and an operation with the token, TLS
# 1.2 and 1.3 are served and 1.1 and plain HTTP are not; a missing or
# wrong certificate or key stops jobd naming the key and the file; a
# monitor beyond loopback without TLS is a warning at start.
set -euo pipefail
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need curl jq openssl
need_jobd
start_redis
work=$(mktemp -d "/tmp/jobd-https.XXXXXX")
on_exit "rm -rf '$work'"
umask 077

tls() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$work/$1.key" -out "$work/$1.pem" -days 2 -subj "/CN=$1" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null ||
		fail "openssl cannot make a certificate"
}
tls server
tls other
printf 'tok-%s\n' "$RANDOM$RANDOM" >"$work/token"

# write_conf NAME LISTEN HTTP-LINES...
write_conf() {
	local name=$1 listen=$2
	shift 2
	{
		printf '[redis]\naddress = %s\n[engine]\nroles = work,http\nworkers = 2\n' "$JOBD_REDIS"
		printf 'data_dir = %s\n[http]\nlisten = %s\ntoken_file = %s/token\n' "$work" "$listen" "$work"
		printf '%s\n' "$@"
	} >"$work/$name.conf"
}

# https_url LOG: the monitor's https:// address from jobd's log.
https_url() {
	local url
	poll 10 grep -q 'http: monitor on https://' "$1" ||
		fail "no https monitor in $1: $(cat "$1")"
	url=$(sed -n 's|.*http: monitor on \(https://[^ ]*\).*|\1|p' "$1" | head -n 1)
	echo "$url"
}

write_conf tls 127.0.0.1:0 "tls_cert = $work/server.pem" "tls_key = $work/server.key"
start_jobd tls "$work"
url=$(https_url "$work/tls.log")
c=(curl -s --cacert "$work/server.pem")

# The page and its assets, over a verified connection.
code=$("${c[@]}" -o "$work/index" -w '%{http_code}' "$url")
assert_eq 200 "$code" "GET / over HTTPS"
grep -q '<html' "$work/index" || fail "no page: $(head -c 300 "$work/index")"
for asset in $(grep -o '\(src\|href\)="/[^"]*"' "$work/index" | sed 's/.*="\/\(.*\)"/\1/'); do
	code=$("${c[@]}" -o /dev/null -w '%{http_code}' "$url$asset")
	assert_eq 200 "$code" "GET /$asset over HTTPS"
done
"${c[@]}" -f "${url}api/types" | jq -e '.types | length > 0' >/dev/null || fail "GET /api/types over HTTPS"

# A job and an operation through the API, with the token.
auth=(-H "Authorization: Bearer $(cat "$work/token")")
code=$("${c[@]}" -o "$work/post" -w '%{http_code}' -X POST "${auth[@]}" \
	--data-binary '{"type": "noop", "payload": {"steps": 1000, "sleep_ms": 100}}' "${url}api/jobs")
assert_eq 201 "$code" "POST /api/jobs over HTTPS: $(cat "$work/post")"
id=$(jq -r '.ids[0]' "$work/post")
wait_job 20 "$id" '.status == "in_progress"'
code=$("${c[@]}" -o "$work/ops" -w '%{http_code}' -X POST "${auth[@]}" \
	--data-binary "{\"op\": \"stop\", \"ids\": [$id]}" "${url}api/jobs/ops")
assert_eq 200 "$code" "stop over HTTPS: $(cat "$work/ops")"
wait_job 20 "$id" '.status == "stopped"'

# The certificate is checked by the client: another CA fails.
"${c[@]/$work\/server.pem/$work/other.pem}" -o /dev/null "$url" && fail "verified with the wrong CA"

# TLS 1.2 and 1.3, not 1.1; no plain HTTP on the port.
hostport=${url#https://}
hostport=${hostport%/}
for v in tls1_2 tls1_3; do
	out=$(openssl s_client -connect "$hostport" -"$v" -CAfile "$work/server.pem" </dev/null 2>&1) ||
		fail "$v refused: $out"
	assert_contains "$out" "Verify return code: 0 (ok)" "$v handshake"
done
out=$(openssl s_client -connect "$hostport" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1) &&
	fail "TLS 1.1 accepted: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$hostport/api/types" || true)
[ "$code" != 200 ] || fail "plain HTTP answered on the TLS port"
# Chromium trusts nothing here but the page's own certificate (its SPKI
# hash): the page loads, its script runs and fills the job list.
if [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
	spki=$(openssl x509 -in "$work/server.pem" -pubkey -noout |
		openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
	timeout 60 "${CHROMIUM:-/usr/bin/chromium}" --headless --no-sandbox --disable-gpu \
		--user-data-dir="$work/chromium" --ignore-certificate-errors-spki-list="$spki" \
		--virtual-time-budget=10000 --dump-dom "$url" >"$work/dom" 2>"$work/chromium.err" ||
		fail "chromium: $(tail -5 "$work/chromium.err")"
	grep -q "<tr[^>]*data-id=\"$id\"" "$work/dom" ||
		fail "the page over HTTPS shows no job $id: $(grep -o '<tbody id="jobs-body">.\{0,300\}' "$work/dom")"
elif [ "${CI:-}" = true ]; then
	fail "chromium not found (CI=true)"
else
	echo "chromium not found: the page is checked with curl only" >&2
fi
stop_jobd tls
! grep -q "warning" "$work/tls.log" || fail "warnings: $(cat "$work/tls.log")"

# refuses NAME MESSAGE: jobd -c NAME.conf exits 1 at once, saying MESSAGE.
refuses() {
	local rc=0
	timeout 20 "$top_builddir/src/jobd" -c "$work/$1.conf" >"$work/$1.log" 2>&1 || rc=$?
	assert_eq 1 "$rc" "jobd's exit with $1.conf"
	assert_contains "$(cat "$work/$1.log")" "$2" "jobd's message with $1.conf"
}

# A missing certificate, a key that is not its key: jobd stops at once.
write_conf missing 127.0.0.1:0 "tls_cert = $work/nowhere.pem" "tls_key = $work/server.key"
refuses missing "cannot read [http] tls_cert \"$work/nowhere.pem\": No such file or directory"
write_conf mismatch 127.0.0.1:0 "tls_cert = $work/server.pem" "tls_key = $work/other.key"
refuses mismatch "[http] tls_key \"$work/other.key\" is not the key of tls_cert \"$work/server.pem\""

# Beyond loopback: without TLS a warning, with TLS none.
write_conf open 0.0.0.0:0
start_jobd open "$work"
monitor_url "$work/open.log" >/dev/null
stop_jobd open
assert_contains "$(cat "$work/open.log")" "beyond loopback, without TLS" "warning for plain HTTP on 0.0.0.0"
write_conf opentls 0.0.0.0:0 "tls_cert = $work/server.pem" "tls_key = $work/server.key"
start_jobd opentls "$work"
https_url "$work/opentls.log" >/dev/null
stop_jobd opentls
! grep -q "warning" "$work/opentls.log" || fail "warning with TLS: $(cat "$work/opentls.log")"
echo "PASS: https"
