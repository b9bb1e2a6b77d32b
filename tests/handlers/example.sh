#!/bin/sh
# example.sh: a jobd exec handler (docs/exec-protocol.md). Counts to
# "steps" (default 10), one step per "sleep_ms" (default 100), saving a
# checkpoint after each step; resumes from it; stops on SIGTERM (exit 75).
payload=$(cat)
field() { printf '%s' "$2" | sed -n "s/.*\"$1\": *\([0-9][0-9]*\).*/\1/p"; }
steps=$(field steps "$payload"); steps=${steps:-10}
ms=$(field sleep_ms "$payload"); ms=${ms:-100}
i=$(field next "$JOBD_CHECKPOINT"); i=${i:-0}
stop=0
trap 'stop=1' TERM
echo "log info job $JOBD_JOB_ID attempt $JOBD_ATTEMPT starts at step $i of $steps"
while [ "$i" -lt "$steps" ]; do
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	# A step cut short by the stop did not happen: the checkpoint stays.
	[ "$stop" = 1 ] && { echo "log info stopping at step $i"; exit 75; }
	i=$((i + 1))
	echo "checkpoint {\"next\": $i}"
	echo "progress $i/$steps"
done
echo "log info done after $steps steps"
