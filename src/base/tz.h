/*
 * tz: IANA time zones (Europe/Paris) read from the system's TZif files,
 * for the schedules of [schedule.NAME] (base/cron.h).
 *
 * Not localtime_r() with setenv("TZ"): TZ is one per process, and
 * changing it while other threads call localtime() or strftime() is a
 * data race. A struct jobd_tz is read once and never changes after, so any
 * number of threads may use one at once.
 */
#ifndef JOBD_SRC_BASE_TZ_H
#define JOBD_SRC_BASE_TZ_H

#include <stddef.h>
#include <stdint.h>

/* Where the TZif files are; JOBD_ZONEINFO overrides it (tests). */
#define JOBD_TZ_DIR "/usr/share/zoneinfo"

struct jobd_tz;

/*
 * Loads zone NAME ("UTC", "Europe/Paris", "America/New_York") from
 * JOBD_TZ_DIR/NAME. "UTC" needs no file. Returns a new zone (caller frees
 * with jobd_tz_free) or NULL with the reason in errstr ("unknown time zone
 * \"Europe/Pariss\": no file /usr/share/zoneinfo/Europe/Pariss").
 */
struct jobd_tz *jobd_tz_load(const char *name, char *errstr,
			     size_t errstr_size);
void jobd_tz_free(struct jobd_tz *tz);

/* The zone's name as loaded; borrowed from TZ. */
const char *jobd_tz_name(const struct jobd_tz *tz);

/* The UTC offset of local time at instant T (s since the epoch), in
 * seconds east of Greenwich (Paris in summer: 7200). */
int32_t jobd_tz_offset(const struct jobd_tz *tz, int64_t t);

#endif
