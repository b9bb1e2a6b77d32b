#!/bin/sh
# side.sh FILE: an exec handler for tests/crash.sh. Works for "sleep_ms"
# (default 200), then appends "ID ATTEMPT" to FILE: the side effect whose
# count shows whether a job completed twice.
payload=$(cat)
ms=$(printf '%s' "$payload" | sed -n 's/.*"sleep_ms": *\([0-9][0-9]*\).*/\1/p')
ms=${ms:-200}
sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
echo "$JOBD_JOB_ID $JOBD_ATTEMPT" >> "$1"
echo "progress 100"
