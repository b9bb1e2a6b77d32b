#!/usr/bin/env bash
# make install DESTDIR=...: jobd, jobctl, the Redis module under pkglibdir,
# the example jobd.conf and redis.conf in sysconfdir (a changed one kept
# over a second install), the manuals, the systemd unit and the bash
# completion. The installed jobd and jobctl then run a job on a private
# redis-server that loaded the installed module, through it.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need make jq
dest=$(mktemp -d /tmp/jobd-install.XXXXXX) || fail "cannot make a temp dir"
on_exit "rm -rf '$dest'"

# mk ARGS: make in the build dir, on its own (not a part of the make check
# that runs this test: no jobserver, no "Entering directory").
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$top_builddir" "$@"
}

# dir VAR: the Makefile's value of VAR (bindir, pkglibdir...), expanded.
dir() {
	printf 'print-dir:\n\t@echo $(%s)\n' "$1" | mk -f Makefile -f - print-dir
}

mk install DESTDIR="$dest" >"$dest.log" 2>&1 ||
	fail "make install failed: $(tail -n 20 "$dest.log")"
on_exit "rm -f '$dest.log'"
bindir=$dest$(dir bindir)
pkglibdir=$dest$(dir pkglibdir)
etc=$dest$(dir sysconfdir)/jobd
mandir=$dest$(dir mandir)
unitdir=$dest$(dir systemdsystemunitdir)
compdir=$dest$(dir bashcompletiondir)
for f in "$bindir/jobd" "$bindir/jobctl"; do
	[ -x "$f" ] || fail "not installed: $f"
done
for f in "$pkglibdir/jobd.so" "$etc/jobd.conf" "$etc/redis.conf" "$mandir/man8/jobd.8" \
	"$mandir/man1/jobctl.1" "$mandir/man5/jobd.conf.5" "$unitdir/jobd.service" "$compdir/jobctl"; do
	[ -f "$f" ] || fail "not installed: $f (installed: $(cd "$dest" && find . -type f | sort))"
done
cmp -s "$top_srcdir/config/jobd.conf" "$etc/jobd.conf" || fail "$etc/jobd.conf is not config/jobd.conf"
grep -qx "loadmodule $(dir pkglibdir)/jobd.so" "$etc/redis.conf" ||
	fail "the installed redis.conf does not load the installed module: $(grep loadmodule "$etc/redis.conf")"
grep -qx "ExecStart=$(dir bindir)/jobd -c $(dir sysconfdir)/jobd/jobd.conf" "$unitdir/jobd.service" ||
	fail "the unit does not run the installed jobd: $(grep ExecStart "$unitdir/jobd.service")"
grep -qx "Type=notify" "$unitdir/jobd.service" || fail "the unit is not Type=notify"
# systemd's own check, of a copy that runs the jobd under DESTDIR.
if command -v systemd-analyze >/dev/null 2>&1; then
	sed "s|^ExecStart=$(dir bindir)/jobd|ExecStart=$bindir/jobd|" "$unitdir/jobd.service" >"$dest/jobd.service"
	out=$(systemd-analyze verify --man=no "$dest/jobd.service" 2>&1)
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
	rm "$dest/jobd.service"
fi

# A second install keeps an operator's jobd.conf and puts the new one beside.
echo "# mine" >>"$etc/jobd.conf"
mk install DESTDIR="$dest" >"$dest.log" 2>&1 ||
	fail "second make install failed: $(tail -n 20 "$dest.log")"
[ "$(tail -n 1 "$etc/jobd.conf")" = "# mine" ] || fail "make install overwrote a changed jobd.conf"
cmp -s "$top_srcdir/config/jobd.conf" "$etc/jobd.conf.dist" || fail "no jobd.conf.dist beside the changed one"
assert_contains "$(cat "$dest.log")" "keeping $etc/jobd.conf" "the second install says so"

# The installed programs, on a Redis with the installed module.
JOBD_TEST_MODULE_SO=$pkglibdir/jobd.so start_redis
rcli MODULE LIST | grep -qx jobd || fail "redis did not load $pkglibdir/jobd.so"
printf '[engine]\nroles = work\nworkers = 2\ndata_dir = %s\n' "$dest" >"$dest/run.conf"
JOBD_BIN=$bindir/jobd start_jobd run "$dest"
id=$("$bindir/jobctl" -c "$dest/run.conf" submit noop --payload '{"steps": 2}') || fail "installed jobctl submit"
wait_for 20 "job $id finished by the installed jobd" \
	eval '[ "$("$bindir/jobctl" -c "$dest/run.conf" show "$id" --json | jq -r .status)" = finished ]'
rcli INFO commandstats | grep -q '^cmdstat_jobd\.claim:calls=[1-9]' ||
	fail "the installed jobd did not claim through the module: $(rcli INFO commandstats | grep jobd)"
stop_jobd run
grep -q "no jobd module" "$dest/run.log" && fail "jobd says the module is missing: $(cat "$dest/run.log")"

# make uninstall leaves nothing but the changed jobd.conf.
mk uninstall DESTDIR="$dest" >"$dest.log" 2>&1 ||
	fail "make uninstall failed: $(tail -n 20 "$dest.log")"
rm -f "$dest"/run.*
left=$(cd "$dest" && find . -type f | sort)
assert_eq "./$(dir sysconfdir | sed 's|^/||')/jobd/jobd.conf" "$left" "left after make uninstall"
echo "PASS: install"
