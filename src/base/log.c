/*
 * log: one line per call on stderr, with a UTC timestamp so lines from
 * several instances can be merged by time.
 */
#include "config.h"

#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum jobd_log_level min_level = JOBD_LOG_INFO;
static const char *ident = "jobd";

static const char *level_names[] = { "debug", "info", "warn", "error" };

void jobd_log_set_level(enum jobd_log_level level)
{
	min_level = level;
}

void jobd_log_set_ident(const char *name)
{
	ident = name;
}

void jobd_log(enum jobd_log_level level, const char *fmt, ...)
{
	char msg[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf so concurrent lines do not interleave. */
	fprintf(stderr, "%s.%03ldZ %s: %s: %s\n", stamp, ts.tv_nsec / 1000000,
		ident, level_names[level], msg);
}
