/*
 * schedule: run_at and delay as users write them (schedule.h). The
 * store does the rest: a job whose time is later than the Redis clock
 * waits in P:delayed (src/store/lua/create.lua).
 */
#include "config.h"

#include "base/schedule.h"

#include "base/conf.h"
#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Two digits at P into *V. */
static int two_digits(const char *p, int *v)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	*v = (p[0] - '0') * 10 + (p[1] - '0');
	return 0;
}

int jobd_schedule_parse_run_at(const char *s, int64_t *ms)
{
	const char *p;
	int64_t t;
	int hh, mm, sign;

	if (!s || !*s)
		return -1;
	if (strspn(s, "0123456789") == strlen(s))
		return jobd_util_parse_i64(s, ms) < 0 || *ms <= 0 ? -1 : 0;
	/* RFC 3339: a T between date and time, and an offset. */
	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T')
		return -1;
	p = jobd_util_parse_iso_prefix(s, &t);
	if (!p)
		return -1;
	if (*p == 'Z' && p[1] == 0) {
		*ms = t;
		return t > 0 ? 0 : -1;
	}
	if (*p != '+' && *p != '-')
		return -1; /* no offset: which zone? */
	sign = *p == '-' ? -1 : 1;
	p++;
	if (two_digits(p, &hh) < 0)
		return -1;
	p += 2;
	if (*p == ':')
		p++;
	if (two_digits(p, &mm) < 0 || p[2] != 0 || hh > 23 || mm > 59)
		return -1;
	t -= sign * ((int64_t)hh * 3600000 + (int64_t)mm * 60000);
	*ms = t;
	return t > 0 ? 0 : -1;
}

int jobd_schedule_parse_delay(const char *s, int64_t *ms)
{
	return jobd_conf_parse_duration(s, ms);
}

static int refuse(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	if (errstr && errstr_size) {
		va_start(ap, fmt);
		vsnprintf(errstr, errstr_size, fmt, ap);
		va_end(ap);
		/* It may quote the message's own bytes. */
		jobd_util_printable(errstr);
	}
	return -EINVAL;
}

static int run_at_of(json_t *a, int64_t *run_at, char *errstr,
		     size_t errstr_size)
{
	if (json_is_integer(a)) {
		*run_at = json_integer_value(a);
		if (*run_at <= 0)
			return refuse(errstr, errstr_size,
				      "\"run_at\" is not a time: %lld: %s",
				      (long long)*run_at,
				      JOBD_SCHEDULE_RUN_AT_HINT);
		return 0;
	}
	if (!json_is_string(a))
		return refuse(errstr, errstr_size,
			      "\"run_at\" must be a string or an integer: %s",
			      JOBD_SCHEDULE_RUN_AT_HINT);
	if (jobd_schedule_parse_run_at(json_string_value(a), run_at) < 0)
		return refuse(errstr, errstr_size,
			      "\"run_at\" is not a time: \"%.64s\": %s",
			      json_string_value(a), JOBD_SCHEDULE_RUN_AT_HINT);
	return 0;
}

static int delay_of(json_t *d, int64_t *delay, char *errstr, size_t errstr_size)
{
	if (json_is_integer(d)) {
		*delay = json_integer_value(d);
		if (*delay < 0)
			return refuse(errstr, errstr_size,
				      "\"delay\" is negative: %lld",
				      (long long)*delay);
		return 0;
	}
	if (!json_is_string(d))
		return refuse(errstr, errstr_size,
			      "\"delay\" must be a string or an integer of "
			      "ms: %s",
			      JOBD_SCHEDULE_DELAY_HINT);
	if (json_string_value(d)[0] == '-')
		return refuse(errstr, errstr_size,
			      "\"delay\" is negative: \"%.64s\"",
			      json_string_value(d));
	if (jobd_schedule_parse_delay(json_string_value(d), delay) < 0)
		return refuse(errstr, errstr_size,
			      "\"delay\" is not a duration: \"%.64s\": %s",
			      json_string_value(d), JOBD_SCHEDULE_DELAY_HINT);
	return 0;
}

int jobd_schedule_from_json(json_t *o, int64_t *run_at, int64_t *delay,
			    char *errstr, size_t errstr_size)
{
	json_t *a = json_object_get(o, "run_at");
	json_t *d = json_object_get(o, "delay");

	*run_at = 0;
	*delay = 0;
	if (a && json_is_null(a))
		a = NULL;
	if (d && json_is_null(d))
		d = NULL;
	if (a && d)
		return refuse(errstr, errstr_size,
			      "\"run_at\" and \"delay\" exclude each other: "
			      "give one");
	if (a)
		return run_at_of(a, run_at, errstr, errstr_size);
	if (d)
		return delay_of(d, delay, errstr, errstr_size);
	return 0;
}
