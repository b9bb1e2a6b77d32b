#!/usr/bin/env bash
# tree.sh TAG DIR: an exec handler that starts a tree of processes which
# would outlive it: a child, a grandchild, and a daemon (double fork and
# setsid, so it leaves the process group and its parent). Each is a sleep
# whose argv[0] is "jobd-tree-TAG", so a test finds them with pgrep; all
# ignore SIGTERM (a stop cannot end them). Then it writes the number of
# those processes to DIR/started.ID (it fails when fewer than 3 came up)
# and, with payload {"exit": true}, exits at once, leaving the tree
# behind; else it becomes a sleep of the same name itself.
set -u
tag=$1 dir=$2
payload=$(cat)
name=jobd-tree-$tag
trap '' TERM

# A child with a grandchild of its own.
bash -c "(exec -a $name sleep 300) & exec -a $name sleep 300" &
# A daemon: setsid in a subshell that exits, so init (or a subreaper)
# adopts it.
(setsid bash -c "exec -a $name sleep 300" </dev/null >/dev/null 2>&1 &)
for _ in $(seq 200); do
	n=$(pgrep -c -f "^$name")
	[ "$n" -ge 3 ] && break
	sleep 0.05
done
echo "$n" >"$dir/started.$JOBD_JOB_ID"
[ "$n" -ge 3 ] || { echo "tree.sh: only $n of 3 processes started" >&2; exit 1; }
case $payload in
*'"exit": true'*) exit 0 ;;
esac
exec -a "$name" sleep 300
