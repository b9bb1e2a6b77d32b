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
 */
#include "config.h"

#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int min_level = JOBD_LOG_INFO;
static atomic_int format = JOBD_LOG_TEXT;
static const char *ident = "jobd";

static const char *level_names[] = { "debug", "info", "warn", "error" };

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

void jobd_log(enum jobd_log_level level, const char *fmt, ...)
{
	char msg[2048], stamp[32], line[2048 * 6 + 256];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t len, sub;

	if ((int)level < atomic_load(&min_level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (atomic_load(&format) == JOBD_LOG_TEXT) {
		/* One fprintf so concurrent lines do not interleave. */
		fprintf(stderr, "%s.%03ldZ %s: %s: %s\n", stamp,
			ts.tv_nsec / 1000000, ident, level_names[level], msg);
		return;
	}
	sub = subsystem_len(msg);
	len = (size_t)snprintf(line, sizeof(line),
			       "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\","
			       "\"ident\":\"%s\",\"subsystem\":\"%.*s\","
			       "\"msg\":\"",
			       stamp, ts.tv_nsec / 1000000, level_names[level],
			       ident, sub ? (int)sub : 4, sub ? msg : "main");
	json_escape(line, sizeof(line) - 3, &len, sub ? msg + sub + 2 : msg);
	fprintf(stderr, "%s\"}\n", line);
}
