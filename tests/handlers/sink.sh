#!/bin/sh
# sink.sh DIR: an import sink command for tests/records_kafka.sh (exec
# protocol). Appends each batch (NDJSON on stdin) to DIR/sink.ndjson and
# the sink's name to DIR/sink.name; reports an "error" line for every
# record whose id ends in 13 (the batch still succeeds).
dir=$1
tmp=$(mktemp) || exit 1
cat >"$tmp"
echo "$JOBD_SINK" >>"$dir/sink.name"
cat "$tmp" >>"$dir/sink.ndjson"
sed -n 's/^{"id":"\([^"]*13\)".*/error record \1: rejected by the loader/p' "$tmp"
rm -f "$tmp"
