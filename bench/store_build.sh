# Sourced by bench/store and bench/store-instr: builds, into the directory
# $1, bench/store_bench.c with the store's sources (-O2, no sanitizers, as
# configure is not needed) as $1/store_bench, and, when $2 is "yes", jobd's
# module as $1/jobd.so. Needs $top, the tree's top directory.
#
# The sources are the store's and what they call: when a store or base
# file starts calling another file, add that file here (both benches broke
# once when conf.c began to parse cron lines and time zones).

store_build() {
	local tmp=$1 module=$2 f scripts=(lib.lua) sources=()

	# lib.lua first, then every script of src/store/lua (as the build embeds them).
	for f in "$top"/src/store/lua/*.lua; do
		f=${f##*/}
		[ "$f" = lib.lua ] || scripts+=("$f")
	done
	sh "$top/build-aux/lua2c.sh" "$top/src/store/lua" "${scripts[@]}" >"$tmp/scripts.c"
	mkdir -p "$tmp/store"
	sh "$top/build-aux/schema.sh" header "$top/src/store/schema.def" >"$tmp/store/schema.h"
	# What configure would put in config.h that these files need.
	printf '#define _GNU_SOURCE 1\n' >"$tmp/config.h"
	for f in conn link cluster create transitions query joblog stats lease retention fsck \
		shards why kafka_view; do
		sources+=("$top/src/store/$f.c")
	done
	for f in job util log conf cron tz; do
		sources+=("$top/src/base/$f.c")
	done
	# shellcheck disable=SC2046
	gcc -O2 -I"$tmp" -I"$top" -I"$top/src" "$top/bench/store_bench.c" "${sources[@]}" \
		"$tmp/scripts.c" $(pkg-config --cflags --libs hiredis jansson libssl libcrypto) -lm \
		-o "$tmp/store_bench"
	[ "$module" = yes ] || return 0
	gcc -O2 -fPIC -shared -fvisibility=hidden -I"$top/src" -I"$tmp" \
		"$top"/src/store/module/*.c "$tmp/scripts.c" -lm \
		-o "$tmp/jobd.so"
}
