/*
 * tz: a TZif file (RFC 8536) read into a table of transitions, and its
 * footer's POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3") for the times
 * after the last one: a "slim" file (zic -b slim) lists no transition
 * after 2007 and leaves the rest to the rule, a "fat" one stops in 2037.
 *
 * Only the 64-bit data of a version 2+ file is read (a version 1 file,
 * from before 2005, has 32-bit data only, which is read instead). Leap
 * seconds ("right/" zones) are not applied: a schedule's minutes are
 * civil minutes. A rule in the Julian forms (Jn, n) rather than Mm.w.d,
 * which no current zone uses, leaves the last transition's offset in
 * force.
 */
#include "config.h"

#include "base/tz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_MAX_FILE (1 << 20) /* bytes; the largest real zone has ~5 KB */

struct rule_date {
	int month;    /* 1-12 */
	int week;     /* 1-5, 5 = the last */
	int wday;     /* 0 = Sunday */
	int32_t secs; /* local time of day of the change, s (may be < 0) */
};

struct jobd_tz {
	char *name;
	int64_t *times;	  /* transitions, s since the epoch, ascending */
	int32_t *offsets; /* offset in force from times[i] on */
	size_t n;	  /* transitions */
	int32_t first;	  /* offset before times[0] (or always, n = 0) */
	bool has_rule;	  /* the footer gives a rule after times[n-1] */
	int32_t std_off;  /* rule: standard offset, s east */
	int32_t dst_off;  /* rule: daylight offset, s east */
	bool has_dst;	  /* rule: it has a daylight period */
	struct rule_date start, end; /* rule: daylight from start to end */
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Days since 1970-01-01 of civil date Y-M-D (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t year_of(int64_t t)
{
	int64_t z = (t >= 0 ? t : t - 86399) / 86400 + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	return yoe + era * 400 + (mp >= 10);
}

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The local instant (s, as if UTC) of rule date R in year Y. */
static int64_t rule_local(const struct rule_date *r, int64_t y)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	int64_t first = days_from_civil(y, r->month, 1);
	int wd1 = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01: Thu */
	int len = mdays[r->month - 1] + (r->month == 2 && leap(y));
	int d = 1 + (r->wday - wd1 + 7) % 7 + (r->week - 1) * 7;

	while (d > len)
		d -= 7;
	return (first + d - 1) * 86400 + r->secs;
}

static int32_t rule_offset(const struct jobd_tz *tz, int64_t t)
{
	int64_t y, start, end;

	if (!tz->has_dst)
		return tz->std_off;
	y = year_of(t);
	/* The start is written in standard time, the end in daylight. */
	start = rule_local(&tz->start, y) - tz->std_off;
	end = rule_local(&tz->end, y) - tz->dst_off;
	if (start < end)
		return t >= start && t < end ? tz->dst_off : tz->std_off;
	return t >= end && t < start ? tz->std_off : tz->dst_off;
}

int32_t jobd_tz_offset(const struct jobd_tz *tz, int64_t t)
{
	size_t lo = 0, hi = tz->n;

	if (tz->n == 0 || t < tz->times[0])
		return tz->n == 0 && tz->has_rule ? rule_offset(tz, t) :
						    tz->first;
	if (t >= tz->times[tz->n - 1] && tz->has_rule)
		return rule_offset(tz, t);
	/* The last transition at or before T. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (tz->times[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->offsets[lo];
}

const char *jobd_tz_name(const struct jobd_tz *tz)
{
	return tz->name;
}

/* --- the footer's POSIX TZ rule ------------------------------------------ */

static const char *rule_name(const char *s)
{
	if (*s == '<') {
		const char *e = strchr(s, '>');
		return e ? e + 1 : NULL;
	}
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
		s++;
	return s;
}

/* [+-]hh[:mm[:ss]] -> seconds; NULL on a bad one. */
static const char *rule_time(const char *s, int32_t *secs)
{
	int sign = 1, part = 0;
	int32_t v[3] = { 0, 0, 0 };

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (*s < '0' || *s > '9')
		return NULL;
	for (;;) {
		while (*s >= '0' && *s <= '9' && v[part] < 1000)
			v[part] = v[part] * 10 + (*s++ - '0');
		if (*s != ':' || part == 2)
			break;
		s++;
		part++;
	}
	*secs = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
	return s;
}

static const char *rule_date(const char *s, struct rule_date *r)
{
	char *end;
	long m, w, d;

	if (*s != 'M')
		return NULL; /* Jn and n: not used by any current zone */
	m = strtol(s + 1, &end, 10);
	if (*end != '.')
		return NULL;
	w = strtol(end + 1, &end, 10);
	if (*end != '.')
		return NULL;
	d = strtol(end + 1, &end, 10);
	if (m < 1 || m > 12 || w < 1 || w > 5 || d < 0 || d > 6)
		return NULL;
	r->month = (int)m;
	r->week = (int)w;
	r->wday = (int)d;
	r->secs = 7200; /* 02:00 by default */
	s = end;
	if (*s == '/')
		s = rule_time(s + 1, &r->secs);
	return s;
}

/* Parses the footer RULE into TZ; false when it is not understood. */
static bool parse_rule(struct jobd_tz *tz, const char *s)
{
	int32_t off;

	if (!(s = rule_name(s)) || !(s = rule_time(s, &off)))
		return false;
	tz->std_off = -off; /* POSIX counts west of Greenwich */
	tz->has_dst = false;
	if (!*s)
		return true;
	if (!(s = rule_name(s)))
		return false;
	tz->dst_off = tz->std_off + 3600;
	if (*s && *s != ',') {
		if (!(s = rule_time(s, &off)))
			return false;
		tz->dst_off = -off;
	}
	if (*s != ',' || !(s = rule_date(s + 1, &tz->start)) || *s != ',' ||
	    !(s = rule_date(s + 1, &tz->end)) || *s)
		return false;
	tz->has_dst = true;
	return true;
}

/* --- the TZif file ----------------------------------------------------------- */

/* A name that stays below JOBD_TZ_DIR: no "..", no leading '/'. */
static bool valid_name(const char *name)
{
	const char *c;

	if (!*name || *name == '/' || strstr(name, ".."))
		return false;
	for (c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("/_+-", *c)))
			return false;
	return true;
}

static int read_all(const char *path, unsigned char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 4096;
	unsigned char *b, *grown;

	if (!f)
		return -errno;
	b = malloc(cap);
	while (b) {
		n += fread(b + n, 1, cap - n, f);
		if (n < cap || cap >= TZ_MAX_FILE)
			break;
		grown = realloc(b, cap * 2);
		if (!grown) {
			free(b);
			b = NULL;
			break;
		}
		b = grown;
		cap *= 2;
	}
	fclose(f);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*len = n;
	return 0;
}

/*
 * The data block at P (of LEFT bytes) with times of TSIZE bytes: fills TZ
 * and *USED (bytes of the block). Returns 0 or -1 when it is cut short.
 */
static int parse_block(struct jobd_tz *tz, const unsigned char *p, size_t left,
		       size_t tsize, size_t *used)
{
	uint32_t isut, isstd, leapcnt, timecnt, typecnt, charcnt;
	const unsigned char *idx, *types;
	size_t need;

	if (left < 44 || memcmp(p, "TZif", 4) != 0)
		return -1;
	isut = be32(p + 20);
	isstd = be32(p + 24);
	leapcnt = be32(p + 28);
	timecnt = be32(p + 32);
	typecnt = be32(p + 36);
	charcnt = be32(p + 40);
	if (typecnt == 0 || typecnt > 256 || timecnt > 100000 ||
	    leapcnt > 100000 || charcnt > 100000 || isut > 256 || isstd > 256)
		return -1;
	need = 44 + (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 +
	       charcnt + (size_t)leapcnt * (tsize + 4) + isstd + isut;
	if (left < need)
		return -1;
	free(tz->times);
	free(tz->offsets);
	tz->times = calloc(timecnt ? timecnt : 1, sizeof(*tz->times));
	tz->offsets = calloc(timecnt ? timecnt : 1, sizeof(*tz->offsets));
	if (!tz->times || !tz->offsets)
		return -1;
	idx = p + 44 + (size_t)timecnt * tsize;
	types = idx + timecnt;
	for (uint32_t i = 0; i < timecnt; i++) {
		const unsigned char *t = p + 44 + (size_t)i * tsize;

		if (idx[i] >= typecnt)
			return -1;
		tz->times[i] = tsize == 8 ? be64(t) : (int32_t)be32(t);
		tz->offsets[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
	}
	tz->n = timecnt;
	tz->first = (int32_t)be32(types);
	*used = need;
	return 0;
}

struct jobd_tz *jobd_tz_load(const char *name, char *errstr, size_t errstr_size)
{
	const char *dir = getenv("JOBD_ZONEINFO");
	struct jobd_tz *tz;
	unsigned char *buf = NULL;
	char path[4096];
	size_t len = 0, used;
	int rc;

	if (!dir || !*dir)
		dir = JOBD_TZ_DIR;
	tz = calloc(1, sizeof(*tz));
	if (!tz || !(tz->name = strdup(name))) {
		snprintf(errstr, errstr_size, "out of memory");
		goto err;
	}
	if (strcmp(name, "UTC") == 0)
		return tz;
	if (!valid_name(name)) {
		snprintf(errstr, errstr_size,
			 "bad time zone \"%s\": use an IANA name such as "
			 "Europe/Paris or UTC",
			 name);
		goto err;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = read_all(path, &buf, &len);
	if (rc < 0) {
		snprintf(errstr, errstr_size,
			 "unknown time zone \"%s\": cannot read %s: %s", name,
			 path, strerror(-rc));
		goto err;
	}
	if (parse_block(tz, buf, len, 4, &used) < 0)
		goto err_bad;
	if (buf[4] >= '2') {
		size_t v1 = used;

		if (parse_block(tz, buf + v1, len - v1, 8, &used) < 0)
			goto err_bad;
		used += v1;
		/* The footer: "\nRULE\n". */
		if (used < len && buf[used] == '\n') {
			char rule[256];
			const unsigned char *end =
				memchr(buf + used + 1, '\n', len - used - 1);
			size_t n = end ? (size_t)(end - buf - used - 1) : 0;

			if (end && n > 0 && n < sizeof(rule)) {
				memcpy(rule, buf + used + 1, n);
				rule[n] = 0;
				tz->has_rule = parse_rule(tz, rule);
			}
		}
	}
	free(buf);
	return tz;

err_bad:
	snprintf(errstr, errstr_size,
		 "bad time zone \"%s\": %s is not a TZif file", name, path);
err:
	free(buf);
	jobd_tz_free(tz);
	return NULL;
}

void jobd_tz_free(struct jobd_tz *tz)
{
	if (!tz)
		return;
	free(tz->name);
	free(tz->times);
	free(tz->offsets);
	free(tz);
}
