#!/bin/sh
# action.sh DIR: an action command for tests/jobtypes.sh (exec protocol).
# Reads one JSON record per line; appends each id to DIR/action.ids;
# reports "error" for ids ending in 7 (a per-record failure), sets
# "tag": "vip" on record p001 with an update line, and reports progress.
dir=$1
tmp=$(mktemp) || exit 1
cat >"$tmp"
total=$(grep -c . "$tmp")
i=0
while IFS= read -r line; do
	i=$((i + 1))
	id=$(printf '%s' "$line" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
	echo "$id" >>"$dir/action.ids"
	case $id in
	*7) echo "error record $id: cannot tag it" ;;
	p001) echo "update {\"id\": \"$id\", \"tag\": \"vip\"}" ;;
	esac
	echo "progress $i/$total"
done <"$tmp"
rm -f "$tmp"
