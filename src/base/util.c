/*
 * util: formatting and parsing that several modules share. Times are
 * always UTC: jobd stores ms since the epoch from the Redis clock and
 * formats them only for output.
 */
#include "config.h"

#include "base/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *jobd_util_iso(int64_t ms, char *buf)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, JOBD_ISO_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, JOBD_ISO_SIZE - n, ".%03dZ", (int)(ms % 1000));
	return buf;
}

const char *jobd_util_parse_iso_prefix(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *p;
	int frac = 0, digits = 0;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p) {
		memset(&tm, 0, sizeof(tm));
		p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	}
	if (!p)
		return NULL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		if (digits == 0)
			return NULL;
		for (; digits < 3; digits++)
			frac *= 10;
	}
	*ms = (int64_t)timegm(&tm) * 1000 + frac;
	return p;
}

int jobd_util_parse_iso(const char *s, int64_t *ms)
{
	int64_t t;
	const char *p = jobd_util_parse_iso_prefix(s, &t);

	if (!p)
		return -1;
	if (*p == 'Z')
		p++;
	else if (strcmp(p, "+00:00") == 0)
		p += 6;
	if (*p)
		return -1;
	*ms = t;
	return 0;
}

char *jobd_util_human_ms(int64_t ms, char *buf, size_t size)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(buf, size, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(buf, size, "%.1fs", ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, size, "%lldm%02llds", (long long)(ms / 60000),
			 (long long)(ms / 1000 % 60));
	else if (ms < 86400000)
		snprintf(buf, size, "%lldh%02lldm", (long long)(ms / 3600000),
			 (long long)(ms / 60000 % 60));
	else
		snprintf(buf, size, "%lldd%02lldh", (long long)(ms / 86400000),
			 (long long)(ms / 3600000 % 24));
	return buf;
}

int jobd_util_parse_i64(const char *s, int64_t *v)
{
	char *end;
	long long n;

	if (!s || !*s)
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*v = n;
	return 0;
}

int64_t jobd_util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jobd_util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t jobd_util_mono_ms(void)
{
	return jobd_util_mono_us() / 1000;
}

size_t jobd_util_i64_text(int64_t v, char *buf)
{
	char tmp[JOBD_I64_SIZE], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t n;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(buf, p, n);
	return n;
}

int jobd_util_resize(void *pp, size_t n, size_t size)
{
	void **p = pp;
	void *v;

	if (size && n > SIZE_MAX / size)
		return -1;
	v = realloc(*p, n && size ? n * size : 1);
	if (!v)
		return -1;
	*p = v;
	return 0;
}

int jobd_util_grow(void *pp, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t want;

	if (n < *cap)
		return 0;
	want = *cap ? *cap : first ? first : 1;
	while (want <= n) {
		if (want > SIZE_MAX / 2)
			return -1;
		want *= 2;
	}
	if (jobd_util_resize(pp, want, size) < 0)
		return -1;
	*cap = want;
	return 0;
}

int64_t jobd_util_backoff(int64_t ms, int64_t min, int64_t max)
{
	if (ms < min)
		return min;
	return ms > max / 2 ? max : ms * 2;
}

void jobd_util_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

char *jobd_util_xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		abort(); /* out of memory: nothing sensible to do */
	return d;
}

char *jobd_util_printable(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	return s;
}
