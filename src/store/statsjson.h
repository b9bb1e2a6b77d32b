/*
 * statsjson: the JSON form of per-minute statistics (the contract of
 * docs/statistics.md), shared by `jobctl stats --json` and GET /api/stats.
 */
#ifndef JOBD_SRC_STORE_STATSJSON_H
#define JOBD_SRC_STORE_STATSJSON_H

#include <jansson.h>

#include "store/store.h"

/*
 * {"minutes": [{"minute": ISO, "closed", "created", "started",
 * "finished", "errors", "wait_avg_ms", "wait_min_ms", "wait_max_ms",
 * "wait_p95_ms", "by_type": {TYPE: {same counts}}}], "span_ms": N}.
 * Waits are null in a span with no start. span_ms is the length of each
 * entry (60000, or 3600000 when the store answered with hourly rollups
 * for a window over six hours). S is borrowed; caller owns the result.
 */
json_t *jobd_stats_to_json(const struct jobd_stats *s);

/* The count fields of one minute or type (no "minute"/"by_type"). */
json_t *jobd_stats_counts_to_json(const struct jobd_stats_counts *c);

/*
 * One minute object of the contract, as published on the stats topic:
 * {"minute", "closed", "created", ..., "by_type"}. M is borrowed; caller
 * owns the result.
 */
json_t *jobd_stats_minute_to_json(const struct jobd_stats_minute *m);

/*
 * The same object as a msgpack map (keys in the same order). *BUF is new
 * (caller frees with free()) of *LEN bytes. Returns 0, or -1 when out of
 * memory.
 */
int jobd_stats_minute_to_msgpack(const struct jobd_stats_minute *m, char **buf,
				 size_t *len);

#endif
