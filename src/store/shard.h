/*
 * shard.h: the shard a key prefix names, for the store and jobd's Redis
 * module alike, as lib.lua's shard_parse() reads it (docs/scaling.md,
 * "Shards"). A prefix whose hash tag (the bytes
 * between its first '{' and the next '}') is "N/S", two decimal numbers,
 * is shard N of S: its job ids are SEQ x S + N, SEQ counted by its own
 * P:seq, and each bucket of ids covers N_IX_BUCKET x S ids. Any other
 * prefix is shard 0 of 1, the store as it always was.
 */
#ifndef JOBD_SRC_STORE_SHARD_H
#define JOBD_SRC_STORE_SHARD_H

#include <stddef.h>
#include <string.h>

#include "store/schema.h"

/* The digits at [P, END), at most N_MAX_SHARDS: 0, or -1 (too large, or
 * a leading zero, which would name the same shard in another slot). */
static inline int jobd_shard_number(const char *p, const char *end,
				    long long *v)
{
	if (*p == '0' && end - p > 1)
		return -1;
	for (*v = 0; p < end; p++)
		if ((*v = *v * 10 + (*p - '0')) > N_MAX_SHARDS)
			return -1;
	return 0;
}

/*
 * The shard of prefix P (LEN bytes): 0 with *S and *N set (1 and 0 for a
 * prefix without a shard tag), or -1 when its tag has the form N/S but
 * names no shard (S of 0 or above N_MAX_SHARDS, N not below S, a leading
 * zero); then *S and *N are 1 and 0.
 */
static inline int jobd_shard_of(const char *p, size_t len, long long *s,
				long long *n)
{
	const char *open = memchr(p, '{', len), *close = NULL, *slash = NULL;

	*s = 1;
	*n = 0;
	if (open)
		close = memchr(open + 1, '}', len - (size_t)(open + 1 - p));
	if (close)
		slash = memchr(open + 1, '/', (size_t)(close - open - 1));
	if (!slash || slash == open + 1 || slash + 1 == close)
		return 0;
	for (const char *q = open + 1; q < close; q++)
		if (q != slash && (*q < '0' || *q > '9'))
			return 0;
	if (jobd_shard_number(open + 1, slash, n) < 0 ||
	    jobd_shard_number(slash + 1, close, s) < 0 || *s < 1 || *n >= *s) {
		*s = 1;
		*n = 0;
		return -1;
	}
	return 0;
}

#endif
