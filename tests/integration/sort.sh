#!/usr/bin/env bash
# tests/integration/sort.sh: GET /api/jobs?sort=KEY orders all matching
# jobs, not one page (src/store/lua/sort.lua, docs/monitor.md "Sorting").
#
# 40 jobs of different durations, waits and statuses; each order walked
# page by page with its cursor must give every matching job once, in
# order across the pages, and the same as one big page. By created it
# follows the indexes (no limit); by the other keys it reads at most
# [http] sort_window jobs and says so (complete: false) when older ones
# exist. Bad sorts and cursors are refused by name.
set -euo pipefail

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need curl python3 redis-cli
need_jobd
start_redis
work=$(mktemp -d "${TMPDIR:-/tmp}/jobd-sort.XXXXXX") || fail "cannot create a temp dir"
on_exit rm -rf "$work"

port_conf() { # NAME ROLES [EXTRA]
	printf '[engine]\nroles = %s\nworkers = 4\n[http]\nlisten = 127.0.0.1:0\n%s\n' \
		"$2" "${3:-}" >"$work/$1.conf"
}
base_of() { # NAME: the monitor's address from its log
	local a
	a=$(sed -n 's|.*monitor on http://\([0-9.:]*\)/.*|\1|p' "$work/$1.log" | head -n 1)
	[ -n "$a" ] && echo "http://$a"
}
export JOBD_CONFIG=$work/work.conf

# Jobs that finish with different durations, then, with no worker, some
# pending and some stopped: no status changes while the orders are read.
port_conf work work
start_jobd work
ids=()
for i in $(seq 1 30); do
	ids+=("$(jobctl submit noop --payload "{\"steps\": $((i % 6 + 1)), \"sleep_ms\": $((i % 5 * 10))}")")
done
for id in "${ids[@]}"; do wait_job 60 "$id" '.status == "finished"'; done
stop_jobd work
for i in $(seq 1 10); do
	id=$(jobctl --as sorter submit noop)
	[ $((i % 3)) -eq 0 ] && jobctl stop "$id" >/dev/null
done

for w in big small; do
	extra=
	[ "$w" = small ] && extra='sort_window = 15'
	port_conf "$w" http "$extra"
	JOBD_CONFIG=$work/$w.conf start_jobd "$w"
	poll 20 base_of "$w" >/dev/null || fail "jobd $w serves no monitor: $(cat "$work/$w.log")"
done
big=$(base_of big)
small=$(base_of small)

python3 - "$big" "$small" <<'EOF' || fail "sorted pages are wrong"
import json, sys, urllib.error, urllib.parse, urllib.request
big, small = sys.argv[1], sys.argv[2]

def get(base, **q):
    url = base + "/api/jobs?" + urllib.parse.urlencode(q)
    with urllib.request.urlopen(url) as r:
        return json.load(r)

ORDER = ["pending", "in_progress", "stopping", "stopped", "finished", "canceled"]
def ms(t):
    from datetime import datetime
    return int(datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000) if t else None
KEY = {
    "created": lambda j: j["id"],
    "started": lambda j: ms(j["started_at"]),
    "waiting": lambda j: j["waiting_ms"],
    "duration": lambda j: j["duration_ms"] if j["started_at"] or j["duration_ms"] else None,
    "status": lambda j: ORDER.index(j["status"]),
}

def walk(base, sort, limit, **q):
    jobs, cursor, pages = [], None, 0
    while True:
        args = dict(q, sort=sort, limit=limit)
        if cursor:
            args["cursor"] = cursor
        d = get(base, **args)
        jobs += d["jobs"]
        pages += 1
        assert pages < 100, f"{sort}: no end of pages"
        cursor = d["next"]
        if not cursor:
            return jobs, d

everyone = {j["id"]: j for j in get(big, limit=1000, all=1, system=1)["jobs"]}
users = {i: j for i, j in everyone.items() if not j["system"] and j["parent"] is None}
assert len(users) == 40, len(users)

for key in KEY:
    for desc in (False, True):
        sort = ("-" if desc else "") + key
        jobs, last = walk(big, sort, 7)
        got = [j["id"] for j in jobs]
        assert sorted(got) == sorted(users), f"{sort}: every job once: {got}"
        # Jobs without the value last, then by the key, ties newest first.
        vals = [KEY[key](j) for j in jobs]
        have = [v for v in vals if v is not None]
        assert vals[:len(have)] == have, f"{sort}: unset values last: {vals}"
        # A pending job's waiting grows while the pages are read: the
        # order is checked among those whose value stays (docs/monitor.md).
        fixed = [j for j in jobs if not (key == "waiting" and j["status"] == "pending")]
        want = sorted(fixed, key=lambda j: (KEY[key](j) is None,
            -(KEY[key](j) or 0) if desc else (KEY[key](j) or 0), -j["id"]))
        assert [j["id"] for j in fixed] == [j["id"] for j in want], f"{sort}: across pages {vals}"
        one = [j["id"] for j in get(big, sort=sort, limit=1000)["jobs"]]
        assert got == one, f"{sort}: pages of 7 and one page agree"
        if key != "created":
            assert last["complete"] is True, f"{sort}: the whole store fits the window"
print("orders ok")

# The newest first list does not change shape.
d = get(big, limit=5)
assert isinstance(d["next"], int) and "complete" not in d, d

# With sort_window = 15: the 15 newest jobs, and it says so.
jobs, last = walk(small, "-duration", 4)
newest = sorted(users, reverse=True)[:15]
assert sorted(j["id"] for j in jobs) == sorted(newest), [j["id"] for j in jobs]
assert last["complete"] is False and last["examined"] == 15, last
# Created follows the indexes: every job, whatever the window.
jobs, last = walk(small, "created", 4)
assert [j["id"] for j in jobs] == sorted(users), [j["id"] for j in jobs]
# Filters hold in a sort.
jobs, _ = walk(big, "status", 3, status="stopped")
assert jobs and all(j["status"] == "stopped" for j in jobs), jobs
jobs, _ = walk(big, "-waiting", 3, run_by="sorter")
assert len(jobs) == 10 and all(j["run_by"] == "sorter" for j in jobs), jobs

for q, msg in [({"sort": "bogus"}, 'bad sort "bogus"'),
               ({"sort": "-status", "cursor": "abc"}, 'bad cursor "abc" for sort status'),
               ({"sort": "created", "cursor": "1:2"}, 'bad cursor "1:2" for sort created')]:
    try:
        get(big, **q)
        raise AssertionError(f"{q} accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400, (q, e.code)
        body = json.load(e)
        assert msg in body["error"], (q, body)
print("window and refusals ok")
EOF
stop_jobd big
stop_jobd small
echo "sort.sh: ok"
