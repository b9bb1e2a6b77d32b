/*
 * fakeclock: a clock that a test sets, for the redis-servers of
 * tests/equivalence/module_twin.sh. Preloaded into a redis-server
 * (LD_PRELOAD) with JOBD_FAKECLOCK naming a file of 8 bytes, the time in
 * ms since the epoch in the machine's byte order, it answers that time to
 * every gettimeofday(), time() and clock_gettime(CLOCK_REALTIME) of the
 * server: Redis's TIME (the Lua functions' clock), RedisModule_Milliseconds
 * (the module's), stream ids, key expiry, and the timeouts of replication
 * (all three, or a replica would compare one clock with another and time
 * out at once). The file is mapped shared, so
 * the test moves the clock of every server at once by writing it; the
 * time stands still between two writes. Without the variable or the file,
 * the real clock.
 *
 * Redis's timers (the monotonic clock) keep real time: only what Redis
 * writes into its data follows this clock. A thread that waits until a
 * time of this clock (pthread_cond_timedwait: the kernel reads the real
 * one) finds it past and spins; jemalloc's background thread does, which
 * module_twin.sh turns off. Nothing of jobd itself reads this clock: it
 * exists for tests only.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const volatile int64_t *fake_ms; /* the mapped file, NULL: real */

__attribute__((constructor)) static void fakeclock_map(void)
{
	const char *path = getenv("JOBD_FAKECLOCK");
	struct stat sb;
	void *p;
	int fd;

	if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if (fstat(fd, &sb) == 0 && sb.st_size >= (off_t)sizeof(int64_t)) {
		p = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED)
			fake_ms = p;
	}
	close(fd);
}

static int64_t now_ms(void)
{
	return __atomic_load_n(fake_ms, __ATOMIC_ACQUIRE);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int64_t ms;

	if (!fake_ms || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE))
		return (int)syscall(SYS_clock_gettime, id, ts);
	ms = now_ms();
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000;
	return 0;
}

time_t time(time_t *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	int64_t ms;

	if (!fake_ms)
		return (int)syscall(SYS_gettimeofday, tv, tz);
	ms = now_ms();
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (long)(ms % 1000) * 1000;
	return 0;
}
