/*
 * util: small helpers shared by every module: ISO-8601 times, durations for
 * humans, checked number parsing.
 */
#ifndef JOBD_SRC_BASE_UTIL_H
#define JOBD_SRC_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOBD_ISO_SIZE 32

/* ms since the epoch -> "2026-11-28T14:39:38.123Z" in BUF (JOBD_ISO_SIZE). */
char *jobd_util_iso(int64_t ms, char *buf);

/*
 * "2026-11-28T14:39:38.123Z" (milliseconds and Z optional; a trailing
 * "+00:00" accepted) -> ms since the epoch. Returns 0 or -1.
 */
int jobd_util_parse_iso(const char *s, int64_t *ms);

/* The date, time and optional fraction of S ("2026-11-28T14:39:38.123",
 * or with a space for T) into *MS, as if UTC; returns where the rest
 * (a zone) starts, or NULL. */
const char *jobd_util_parse_iso_prefix(const char *s, int64_t *ms);

/* ms -> "350ms", "4.2s", "3m12s", "2h05m", "3d04h" in BUF of SIZE. */
char *jobd_util_human_ms(int64_t ms, char *buf, size_t size);

#define JOBD_I64_SIZE 21

/* V in decimal into BUF (JOBD_I64_SIZE, not terminated): its length. For
 * hot paths, where snprintf() costs more than the work around it. */
size_t jobd_util_i64_text(int64_t v, char *buf);

/* Whole decimal number, no trailing text. Returns 0 or -1. */
int jobd_util_parse_i64(const char *s, int64_t *v);

/* Local wall clock in ms (for timeouts; job times come from Redis). */
int64_t jobd_util_now_ms(void);

/* Monotonic clock in ms, for intervals; in us, for short ones. */
int64_t jobd_util_mono_ms(void);
int64_t jobd_util_mono_us(void);

/*
 * The pause after one of MS in a backoff: MIN at first (MS below MIN),
 * then doubling up to MAX. The one backoff of jobd's retries.
 */
int64_t jobd_util_backoff(int64_t ms, int64_t min, int64_t max);

/*
 * *PP, the address of an array's pointer, reallocated to N elements of
 * SIZE bytes. Returns 0, or -1 when out of memory or when N * SIZE
 * overflows; the array is then unchanged.
 */
int jobd_util_resize(void *pp, size_t n, size_t size);

/*
 * Room for element N of the array at *PP (SIZE bytes each, *CAP
 * allocated): once N reaches *CAP the array doubles (from FIRST
 * elements the first time) until it holds N + 1. Returns 0, or -1 when out of memory (array and *CAP
 * unchanged). The one way jobd's growing arrays grow.
 */
int jobd_util_grow(void *pp, size_t *cap, size_t n, size_t size, size_t first);

/* Sleeps MS milliseconds, signals or not. */
void jobd_util_sleep_ms(int64_t ms);

/* strdup that aborts when out of memory; NULL stays NULL. */
char *jobd_util_xstrdup(const char *s);

/*
 * Makes S printable ASCII in place: every other byte becomes '?'. For
 * reasons that quote a message's bytes and travel in Kafka headers, log
 * lines and HTTP answers. Returns S.
 */
char *jobd_util_printable(char *s);

#endif
