#!/usr/bin/env bash
# The manuals render without a groff warning and have an entry for every
# configuration section and key of src/base/conf.c (jobd.conf.5), every
# command and option of src/jobctl.c (jobctl.1) and every option of
# src/jobd.c (jobd.8), read from the sources: a key, command or option
# added without its entry fails here.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need groff
# The build writes the manuals from man/*.in with the version of AC_INIT.
man=$top_builddir/man
missing=()

version=$(sed -n 's/^AC_INIT(\[jobd\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
[ -n "$version" ] || fail "no version in configure.ac's AC_INIT"
for page in jobd.8 jobctl.1 jobd.conf.5; do
	[ -f "$man/$page" ] || fail "missing $man/$page (configure writes it from man/$page.in)"
	th=$(grep -m 1 '^\.TH ' "$man/$page")
	assert_contains "$th" "\"jobd $version\"" "$page: the version of configure.ac in .TH"
	# A number written in the source would go stale at the next release.
	assert_contains "$(grep -m 1 '^\.TH ' "$top_srcdir/man/$page.in")" \
		'"jobd @PACKAGE_VERSION@"' "man/$page.in: .TH takes the version from configure"
done

for page in jobd.8 jobctl.1 jobd.conf.5; do
	out=$(groff -man -ww -z -Tutf8 "$man/$page" 2>&1) || fail "groff failed on $page: $out"
	[ -z "$out" ] || fail "groff warns on $page: $out"
done

# man_entries PAGE HEADING: "HEADING-ARGUMENT ENTRY" for each .TP entry
# whose tag line is .B/.BR/.BI/.IB; the tag's words with \- as -, each
# option's "--" dropped. HEADING is SH or SS.
man_entries() {
	awk -v h=".$2" '
	$1 == h { sec = $0; sub(/^\.S[HS] +/, "", sec); gsub(/"/, "", sec); next }
	tp && /^\.(B|BR|BI|IB) / {
		line = $0; sub(/^\.[A-Z]+ +/, "", line); gsub(/\\-/, "-", line); gsub(/"/, " ", line)
		n = split(line, w, /[ ,]+/)
		for (i = 1; i <= n; i++) if (w[i] != "") { o = w[i]; sub(/^--/, "", o); print sec "\t" o }
	}
	{ tp = $1 == ".TP" }
	' "$man/$1"
}

# has PAGE HEADING SECTION ENTRY
has() {
	man_entries "$1" "$2" | grep -qxF "$3"$'\t'"$4"
}

# --- jobd.conf.5: every section and key -------------------------------------
conf_c=$top_srcdir/src/base/conf.c
sections=$(awk '/^static int enter_section\(/ { e = 1 } e && /^}/ { e = 0 }
	e && /\{ "[a-z.]+", S_[A-Z]+ \}/ {
		s = $0
		while (match(s, /"[a-z.]+"/)) {
			n = substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH)
			print (n ~ /\.$/ ? n "NAME" : n)
		}
	}' "$conf_c")
[ "$(wc -w <<<"$sections")" -ge 14 ] || fail "found only these sections in conf.c: $sections"
for s in $sections; do
	grep -qxF ".SH [$s]" "$man/jobd.conf.5" || missing+=("jobd.conf.5: section [$s]")
done
keys=$(awk '/^static const struct key [a-z]+_keys\[\]/ { match($0, /key [a-z]+_keys/); t = substr($0, RSTART + 4, RLENGTH - 9) }
	t && /^\t\{ "[a-z_]+", K_/ { match($0, /"[a-z_]+"/); print t, substr($0, RSTART + 1, RLENGTH - 2) }
	/^};/ { t = "" }' "$conf_c")
[ "$(wc -l <<<"$keys")" -ge 50 ] || fail "found only these keys in conf.c: $keys"
while read -r t key; do
	s=$t
	grep -qxF ".SH [$t]" "$man/jobd.conf.5" || s=$t.NAME
	has jobd.conf.5 SH "[$s]" "$key" || missing+=("jobd.conf.5: [$s] $key")
done <<<"$keys"
has jobd.conf.5 SH "[kafka]" "kafka." || missing+=("jobd.conf.5: [kafka] kafka.*")

# --- jobctl.1: every command with each of its options -----------------------
# .SS "stop, resume" headings name several commands.
jobctl_entries() {
	man_entries jobctl.1 SS | awk -F'\t' '{ n = split($1, c, /, */); for (i = 1; i <= n; i++) print c[i] "\t" $2 }'
}
for c in $(jobctl_commands); do
	grep -qE "^\.SS (.*, )?$c(,|$)" "$man/jobctl.1" || missing+=("jobctl.1: command $c")
done
while read -r cmd opt; do
	if [ "$cmd" = jobctl ]; then
		has jobctl.1 SH OPTIONS "$opt" || missing+=("jobctl.1: option --$opt")
	else
		jobctl_entries | grep -qxF "$cmd"$'\t'"$opt" || missing+=("jobctl.1: $cmd --$opt")
	fi
done < <(jobctl_options)

# --- jobd.8: every option ------------------------------------------------------
for opt in $(awk '/^int main\(/ { m = 1 } m && /\{ "[a-z-]+", (no|required|optional)_argument/ {
		match($0, /"[a-z-]+"/); print substr($0, RSTART + 1, RLENGTH - 2) }' "$top_srcdir/src/jobd.c"); do
	has jobd.8 SH OPTIONS "$opt" || missing+=("jobd.8: option --$opt")
done

[ ${#missing[@]} -eq 0 ] || fail "no manual entry for: $(printf '\n  %s' "${missing[@]}")"
echo "PASS: manuals"
