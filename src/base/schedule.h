/*
 * schedule: a job's run time as users write it, on jobctl's command line,
 * in a Kafka message and in the HTTP API (docs/design.md, "Scheduled
 * jobs"). run_at is an absolute time: RFC 3339 with its offset
 * ("2026-12-06T10:00:00Z", "2026-12-06T11:00:00+01:00"; a time without
 * an offset is refused, it would depend on the reader's zone) or
 * milliseconds since the epoch. delay is a duration after the Redis clock
 * of the job's creation ("30s", "5m", "2h", "1500ms"; in JSON also a
 * whole number of milliseconds). The store compares both with the Redis
 * clock, so every instance agrees when a job is due.
 *
 * Pure: no I/O, no globals.
 */
#ifndef JOBD_SRC_BASE_SCHEDULE_H
#define JOBD_SRC_BASE_SCHEDULE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* What a refusal of run_at or delay suggests. */
#define JOBD_SCHEDULE_RUN_AT_HINT                                             \
	"use RFC 3339 with an offset (2026-12-06T10:00:00Z) or milliseconds " \
	"since the epoch"
#define JOBD_SCHEDULE_DELAY_HINT \
	"use a number with ms, s, m, h or d (30s, 5m, 2h)"

/* S as a run time in ms since the epoch (> 0). Returns 0 or -1. */
int jobd_schedule_parse_run_at(const char *s, int64_t *ms);

/* S as a delay in ms (>= 0). Returns 0 or -1. */
int jobd_schedule_parse_delay(const char *s, int64_t *ms);

/*
 * The members "run_at" and "delay" of JSON object O (borrowed) into
 * *RUN_AT and *DELAY (ms; 0 when absent or null). run_at is a string
 * (above) or a positive integer (ms since the epoch); delay a string or
 * a non-negative integer (ms). Giving both is refused. Returns 0, or
 * -EINVAL with the reason, naming the member, in ERRSTR (may be NULL).
 */
int jobd_schedule_from_json(json_t *o, int64_t *run_at, int64_t *delay,
			    char *errstr, size_t errstr_size);

#endif
