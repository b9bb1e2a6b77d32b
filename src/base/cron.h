/*
 * cron: the cron expressions of [schedule.NAME] (docs/schedules.md), and
 * when they fire in a time zone.
 *
 * Five fields, minute hour day-of-month month day-of-week, each "*", a
 * number, a range "1-5", a step "*" "/15" or "1-30/5" or "5/10" (5 to the
 * end), or a list of these "1,15,30-40"; months JAN-DEC and days SUN-SAT
 * by name (any case), day 7 = Sunday too. Or a shorthand: @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
 *
 * As in Vixie cron, when both day fields are restricted (neither starts
 * with '*') a day matches if EITHER does ("0 0 1,15 * MON": the 1st, the
 * 15th and every Monday); when one starts with '*', both must.
 *
 * Times are local wall-clock times of the zone. A local time that a DST
 * change skips (02:30 on the spring-forward night in Paris) does not
 * fire that day; one that happens twice (the fall-back night) fires
 * once, at its first occurrence.
 */
#ifndef JOBD_SRC_BASE_CRON_H
#define JOBD_SRC_BASE_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/tz.h"

struct jobd_cron {
	uint64_t minutes; /* bit i: minute i (0-59) */
	uint32_t hours;	  /* bit i: hour i (0-23) */
	uint32_t mdays;	  /* bit i: day of month i (1-31) */
	uint16_t months;  /* bit i: month i (1-12) */
	uint8_t wdays;	  /* bit i: weekday i (0 = Sunday - 6) */
	bool mday_star;	  /* day-of-month field starts with '*' */
	bool wday_star;	  /* day-of-week field starts with '*' */
};

/*
 * Parses EXPR into CRON. Returns 0, or -1 with the reason in errstr
 * ("minute 61 out of range 0-59 in \"61 * * * *\""). An expression that
 * can never fire ("0 0 30 2 *") is refused too.
 */
int jobd_cron_parse(const char *expr, struct jobd_cron *cron, char *errstr,
		    size_t errstr_size);

/*
 * The first tick of CRON in zone TZ strictly after AFTER (ms since the
 * epoch), in ms since the epoch (a whole minute); -1 when there is none
 * within 28 years (only an expression that never fires).
 */
int64_t jobd_cron_next(const struct jobd_cron *cron, const struct jobd_tz *tz,
		       int64_t after);

#endif
