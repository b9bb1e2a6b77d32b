#!/usr/bin/env bash
# mark.sh FILE: an exec handler whose side effect is a line "ATTEMPT MS"
# (MS: wall clock, ms) appended to FILE every 20 ms, for a minute at most;
# stops on SIGTERM (exit 75). A test compares the lines of two attempts.
set -u
file=$1
cat > /dev/null
trap 'exit 75' TERM
for _ in $(seq 3000); do
	echo "$JOBD_ATTEMPT $(date +%s%3N)" >> "$file"
	sleep 0.02
done
