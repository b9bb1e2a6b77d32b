#!/bin/sh
# listener.sh DIR NAME: an event listener for tests/jobtypes.sh (exec
# protocol). Appends "NAME SERVICE EVENT" to DIR/events.log; when the
# event's data has "sleep": N it writes DIR/NAME.started and sleeps N
# seconds first. It does not trap SIGTERM: jobd must not send it one while
# a listener runs (listeners are uninterruptible).
dir=$1 name=$2
payload=$(cat)
secs=$(printf '%s' "$payload" | sed -n 's/.*"sleep": *\([0-9][0-9]*\).*/\1/p')
if [ -n "$secs" ]; then
	: >"$dir/$name.started"
	sleep "$secs"
fi
echo "$name $JOBD_SERVICE $JOBD_EVENT" >>"$dir/events.log"
echo "progress 100"
echo "log info listener $name saw $JOBD_EVENT"
