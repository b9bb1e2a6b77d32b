/*
 * cron: parsing into bit sets, and the next tick.
 *
 * The next tick is searched in local civil time, day by day (the day
 * fields rule out most days at once, so "0 0 29 2 *" takes a few
 * thousand cheap steps, not millions of minutes), then hour by hour and
 * minute by minute within a matching day. Each local time found is
 * mapped back to UTC with the offsets a day before and a day after it:
 * two different valid answers are a repeated time (the earlier wins), no
 * valid answer a skipped one. No DST rule of any zone moves the clock
 * twice within two days.
 */
#include "config.h"

#include "base/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEARCH_DAYS (28 * 366) /* a whole cycle of weekdays and leap years */

struct field {
	const char *what; /* "minute" */
	int min, max;
	const char *const *names; /* names of min.. (NULL = none) */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may",
					   "jun", "jul", "aug", "sep", "oct",
					   "nov", "dec", NULL };
static const char *const wday_names[] = { "sun", "mon", "tue", "wed",
					  "thu", "fri", "sat", NULL };

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL },	     { "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },     { "month", 1, 12, month_names },
	{ "day of week", 0, 7, wday_names },
};

static void set_error(char *errstr, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(char *errstr, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errstr, size, fmt, ap);
	va_end(ap);
}

/* A number or a name of F at *S; advances *S. Returns 0 or -1. */
static int parse_value(const struct field *f, const char **s, int *v)
{
	const char *p = *s;
	long n = 0;

	if (*p >= '0' && *p <= '9') {
		while (*p >= '0' && *p <= '9' && n < 1000)
			n = n * 10 + (*p++ - '0');
		*v = (int)n;
		*s = p;
		return 0;
	}
	for (int i = 0; f->names && f->names[i]; i++) {
		if (strncasecmp(p, f->names[i], 3) == 0 &&
		    !((p[3] >= 'a' && p[3] <= 'z') ||
		      (p[3] >= 'A' && p[3] <= 'Z'))) {
			*v = f->min + i;
			*s = p + 3;
			return 0;
		}
	}
	return -1;
}

/*
 * One field TEXT (LEN bytes) of EXPR into *BITS. Returns 0 or -1 with
 * errstr set.
 */
static int parse_field(const struct field *f, const char *text, size_t len,
		       uint64_t *bits, const char *expr, char *errstr,
		       size_t errstr_size)
{
	char buf[128];
	const char *s;

	if (len >= sizeof(buf)) {
		set_error(errstr, errstr_size, "%s field too long in \"%s\"",
			  f->what, expr);
		return -1;
	}
	memcpy(buf, text, len);
	buf[len] = 0;
	*bits = 0;
	s = buf;
	for (;;) {
		const char *elem = s;
		int lo, hi, step = 1;
		bool range = false;

		if (*s == '*') {
			lo = f->min;
			hi = f->max == 7 ? 6 : f->max;
			s++;
			range = true;
		} else {
			if (parse_value(f, &s, &lo) < 0)
				goto bad;
			hi = lo;
			if (*s == '-') {
				s++;
				if (parse_value(f, &s, &hi) < 0)
					goto bad;
				range = true;
			}
		}
		if (*s == '/') {
			long n = 0;

			s++;
			if (*s < '1' || *s > '9')
				goto bad;
			while (*s >= '0' && *s <= '9' && n < 1000)
				n = n * 10 + (*s++ - '0');
			step = (int)n;
			/* "5/10": from 5 to the end, as cronie reads it. */
			if (!range)
				hi = f->max == 7 ? 6 : f->max;
		}
		if (*s != ',' && *s != 0)
			goto bad;
		if (lo < f->min || lo > f->max || hi < f->min || hi > f->max) {
			set_error(errstr, errstr_size,
				  "%s %d out of range %d-%d in \"%s\"", f->what,
				  lo < f->min || lo > f->max ? lo : hi, f->min,
				  f->max, expr);
			return -1;
		}
		if (lo > hi) {
			set_error(errstr, errstr_size,
				  "%s range %d-%d goes backwards in \"%s\"",
				  f->what, lo, hi, expr);
			return -1;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= UINT64_C(1) << (f->max == 7 && v == 7 ? 0 : v);
		if (*s == 0)
			return 0;
		s++;
		continue;
bad:
		while (*s && *s != ',')
			s++;
		set_error(errstr, errstr_size,
			  "bad %s \"%.*s\" in \"%s\": use *, a number%s, a "
			  "range a-b, a step */n or a-b/n, or a list of these",
			  f->what, (int)(s - elem), elem, expr,
			  f->names == month_names ? " or JAN-DEC" :
			  f->names == wday_names  ? " or SUN-SAT" :
						    "");
		return -1;
	}
}

static const struct {
	const char *name, *expr;
} shorthands[] = {
	{ "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

int jobd_cron_parse(const char *expr, struct jobd_cron *cron, char *errstr,
		    size_t errstr_size)
{
	const char *s = expr, *start[5];
	size_t len[5], n = 0;
	uint64_t bits[5];
	struct jobd_tz *utc;
	int64_t next;
	char why[64];

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '@') {
		for (size_t i = 0;
		     i < sizeof(shorthands) / sizeof(shorthands[0]); i++)
			if (strcasecmp(s, shorthands[i].name) == 0)
				return jobd_cron_parse(shorthands[i].expr, cron,
						       errstr, errstr_size);
		set_error(errstr, errstr_size,
			  "unknown cron shorthand \"%s\": use @yearly, "
			  "@monthly, @weekly, @daily or @hourly",
			  expr);
		return -1;
	}
	while (*s) {
		if (n < 5) {
			start[n] = s;
			len[n] = strcspn(s, " \t");
		}
		s += strcspn(s, " \t");
		n++;
		while (*s == ' ' || *s == '\t')
			s++;
	}
	if (n != 5) {
		set_error(errstr, errstr_size,
			  "cron expression \"%s\" has %zu fields: use 5 "
			  "(minute hour day-of-month month day-of-week) or a "
			  "shorthand like @daily",
			  expr, n);
		return -1;
	}
	for (size_t i = 0; i < 5; i++)
		if (parse_field(&fields[i], start[i], len[i], &bits[i], expr,
				errstr, errstr_size) < 0)
			return -1;
	cron->minutes = bits[0];
	cron->hours = (uint32_t)bits[1];
	cron->mdays = (uint32_t)bits[2];
	cron->months = (uint16_t)bits[3];
	cron->wdays = (uint8_t)bits[4];
	cron->mday_star = *start[2] == '*';
	cron->wday_star = *start[4] == '*';

	/* "0 0 31 2 *" is well formed and never fires. */
	utc = jobd_tz_load("UTC", why, sizeof(why));
	if (!utc) {
		set_error(errstr, errstr_size, "%s", why);
		return -1;
	}
	next = jobd_cron_next(cron, utc, 0);
	jobd_tz_free(utc);
	if (next < 0) {
		set_error(errstr, errstr_size,
			  "cron expression \"%s\" never fires: no month has "
			  "that day",
			  expr);
		return -1;
	}
	return 0;
}

/* --- the next tick ---------------------------------------------------- */

static void civil_from_days(int64_t z, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
}

static bool day_matches(const struct jobd_cron *cron, int64_t day)
{
	int m, d, wd = (int)(((day + 4) % 7 + 7) % 7);
	bool md, wm;

	civil_from_days(day, &m, &d);
	if (!(cron->months & (1u << m)))
		return false;
	md = cron->mdays & (UINT32_C(1) << d);
	wm = cron->wdays & (1u << wd);
	if (cron->mday_star || cron->wday_star)
		return md && wm;
	return md || wm;
}

/*
 * The instant (s) of local time L (s, as if UTC) in TZ, or INT64_MIN when
 * the clocks skip it; of a repeated local time, the first.
 */
static int64_t local_to_utc(const struct jobd_tz *tz, int64_t l)
{
	int64_t a = l - jobd_tz_offset(tz, l - 86400);
	int64_t b = l - jobd_tz_offset(tz, l + 86400);
	bool va = a + jobd_tz_offset(tz, a) == l;
	bool vb = b + jobd_tz_offset(tz, b) == l;

	if (va && vb)
		return a < b ? a : b;
	return va ? a : vb ? b : INT64_MIN;
}

int64_t jobd_cron_next(const struct jobd_cron *cron, const struct jobd_tz *tz,
		       int64_t after)
{
	int64_t t = (after >= 0 ? after / 1000 : -((-after + 999) / 1000));
	/* From the local minute of AFTER: an earlier local time may still be
	 * a later instant (fall back), so look a day back too. */
	int64_t l0 = t + jobd_tz_offset(tz, t) - 86400;
	int64_t day = (l0 >= 0 ? l0 : l0 - 86399) / 86400;

	for (int64_t i = 0; i < SEARCH_DAYS + 2; i++, day++) {
		if (!day_matches(cron, day))
			continue;
		for (int h = 0; h < 24; h++) {
			if (!(cron->hours & (1u << h)))
				continue;
			for (int m = 0; m < 60; m++) {
				int64_t l, u;

				if (!(cron->minutes & (UINT64_C(1) << m)))
					continue;
				l = day * 86400 + h * 3600 + m * 60;
				if (l < l0)
					continue;
				u = local_to_utc(tz, l);
				/* Skipped, or its first occurrence is past
				 * (a repeated time fires once). */
				if (u == INT64_MIN || u * 1000 <= after)
					continue;
				return u * 1000;
			}
		}
	}
	return -1;
}
