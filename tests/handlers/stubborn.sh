#!/bin/sh
# stubborn.sh DIR: an exec handler for tests/exec.sh that ignores SIGTERM.
# Writes its pid to DIR/JOB.pid, reports a log line, an error, a stderr
# line and a bad line, then sleeps until killed. With "exit": N in the
# payload it exits N at once instead.
payload=$(cat)
code=$(printf '%s' "$payload" | sed -n 's/.*"exit": *\([0-9][0-9]*\).*/\1/p')
echo "log warn stubborn job $JOBD_JOB_ID"
echo "error something went wrong"
echo "this is not a command"
echo "complaint on stderr" >&2
[ -n "$code" ] && exit "$code"
trap '' TERM
echo $$ > "$1/$JOBD_JOB_ID.pid"
echo "progress 12.5"
while :; do sleep 1; done
