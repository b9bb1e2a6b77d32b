/*
 * log: one line per call on stderr, with a UTC timestamp so lines from
 * several instances can be merged by time.
 *
 * Text lines read "STAMP IDENT: LEVEL: SUBSYSTEM: message" (the subsystem
 * is the message's own "store: " prefix, where it has one), so grep and
 * journald see the level and subsystem first. JSON lines are one object
 * each, {"ts", "level", "ident", "subsystem", "msg"}, for log shippers; the
 * subsystem is the message's leading lowercase word before ": ", or
 * "main" when it has none. Level and format are atomics: SIGHUP changes
 * them while other threads log.
 *
 * Lines logged while the configuration is read (jobd_log_hold) are kept,
 * with their time, and written once jobd_log_release() knows the
 * format: a JSON log never starts with a text line, whatever the
 * loader warns about. Rejected: applying [log] first, since a warning
 * can come before the [log] section is read, or from a file that fails
 * to load.
 */
#include "config.h"

#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HELD_MAX 64 /* lines kept while held; more are counted */

/* A line logged while held. */
struct held {
	enum jobd_log_level level;
	struct timespec ts; /* CLOCK_REALTIME when logged */
	char *msg;	    /* malloc'd */
};

static atomic_int min_level = JOBD_LOG_INFO;
static atomic_int format = JOBD_LOG_TEXT;
static const char *ident = "jobd";

static const char *level_names[] = { "debug", "info", "warn", "error" };

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static bool holding;		   /* under held_lock */
static struct held held[HELD_MAX]; /* under held_lock */
static size_t nheld;		   /* under held_lock */
static size_t dropped;		   /* lines past HELD_MAX, under held_lock */

void jobd_log_set_level(enum jobd_log_level level)
{
	atomic_store(&min_level, (int)level);
}

void jobd_log_set_format(enum jobd_log_format fmt)
{
	atomic_store(&format, (int)fmt);
}

void jobd_log_set_ident(const char *name)
{
	ident = name;
}

int jobd_log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(*level_names));
	     i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *jobd_log_level_name(enum jobd_log_level level)
{
	return level_names[level];
}

/* Length of the valid UTF-8 sequence at S (1 to 4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 :
		   s[0] >= 0xe0			? 3 :
		   s[0] >= 0xc2 && s[0] < 0xe0	? 2 :
						  0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * Appends S to BUF (of SIZE, at *LEN) as the inside of a JSON string;
 * a byte that is not UTF-8 becomes U+FFFD, so every line parses.
 */
static void json_escape(char *buf, size_t size, size_t *len, const char *s)
{
	for (; *s && *len + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;
		size_t n;

		if (c >= 0x80) {
			n = utf8_len((const unsigned char *)s);
			if (n == 0) {
				*len += (size_t)snprintf(
					buf + *len, size - *len, "\\ufffd");
				continue;
			}
			memcpy(buf + *len, s, n);
			*len += n;
			s += n - 1;
		} else if (c == '"' || c == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = (char)c;
		} else if (c < 0x20) {
			*len += (size_t)snprintf(buf + *len, size - *len,
						 "\\u%04x", c);
		} else {
			buf[(*len)++] = (char)c;
		}
	}
	buf[*len] = '\0';
}

/* Length of MSG's "subsystem: " prefix (a lowercase word), or 0. */
static size_t subsystem_len(const char *msg)
{
	size_t n = strspn(msg, "abcdefghijklmnopqrstuvwxyz_");

	return n > 0 && msg[n] == ':' && msg[n + 1] == ' ' ? n : 0;
}

/* Writes MSG, logged at TS, as one line in the current format. */
static void emit(enum jobd_log_level level, const struct timespec *ts,
		 const char *msg)
{
	char stamp[32], line[2048 * 6 + 256];
	struct tm tm;
	size_t len, sub;

	gmtime_r(&ts->tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (atomic_load(&format) == JOBD_LOG_TEXT) {
		/* One fprintf so concurrent lines do not interleave. */
		fprintf(stderr, "%s.%03ldZ %s: %s: %s\n", stamp,
			ts->tv_nsec / 1000000, ident, level_names[level], msg);
		return;
	}
	sub = subsystem_len(msg);
	len = (size_t)snprintf(line, sizeof(line),
			       "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\","
			       "\"ident\":\"%s\",\"subsystem\":\"%.*s\","
			       "\"msg\":\"",
			       stamp, ts->tv_nsec / 1000000, level_names[level],
			       ident, sub ? (int)sub : 4, sub ? msg : "main");
	json_escape(line, sizeof(line) - 3, &len, sub ? msg + sub + 2 : msg);
	fprintf(stderr, "%s\"}\n", line);
}

/* Keeps MSG for jobd_log_release() when holding; false when not. */
static bool hold(enum jobd_log_level level, const struct timespec *ts,
		 const char *msg)
{
	bool kept = false;

	pthread_mutex_lock(&held_lock);
	if (holding) {
		kept = true;
		if (nheld < HELD_MAX &&
		    (held[nheld].msg = strdup(msg)) != NULL) {
			held[nheld].level = level;
			held[nheld].ts = *ts;
			nheld++;
		} else {
			dropped++;
		}
	}
	pthread_mutex_unlock(&held_lock);
	return kept;
}

void jobd_log_hold(void)
{
	pthread_mutex_lock(&held_lock);
	holding = true;
	pthread_mutex_unlock(&held_lock);
}

void jobd_log_release(void)
{
	struct timespec now;

	pthread_mutex_lock(&held_lock);
	for (size_t i = 0; i < nheld; i++) {
		emit(held[i].level, &held[i].ts, held[i].msg);
		free(held[i].msg);
	}
	if (dropped) {
		char msg[128];

		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(msg, sizeof(msg),
			 "%zu lines logged while reading the configuration "
			 "were dropped",
			 dropped);
		emit(JOBD_LOG_WARN, &now, msg);
	}
	nheld = dropped = 0;
	holding = false;
	pthread_mutex_unlock(&held_lock);
}

void jobd_log(enum jobd_log_level level, const char *fmt, ...)
{
	char msg[2048];
	struct timespec ts;
	va_list ap;

	/* The level as it is now; a held line waits only for the format. */
	if ((int)level < atomic_load(&min_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!hold(level, &ts, msg))
		emit(level, &ts, msg);
}
