#!/usr/bin/env bash
# mark.sh FILE [spawn]: an exec handler whose side effect is a line
# "ATTEMPT MS" (MS: wall clock, ms) appended to FILE every 20 ms, for a
# minute at most; stops on SIGTERM (exit 75). A test compares the lines of
# two attempts. With "spawn" it also asks for a child (a "child" line of
# the exec protocol) every 20 ms, so jobd's thread for it is busy in
# Redis calls of its own.
set -u
file=$1 spawn=${2:-}
cat > /dev/null
trap 'exit 75' TERM
for i in $(seq 3000); do
	echo "$JOBD_ATTEMPT $(date +%s%3N)" >> "$file"
	[ -z "$spawn" ] || echo "child noop a$JOBD_ATTEMPT-$i {}"
	sleep 0.02
done
