/*
 * module/testclock: a clock that tests can move, for the tests that
 * cross a minute, an hour or a day (tests/integration/metrics.sh). Off
 * unless the module is loaded with the argument "test-clock" (or
 * "test-clock-only": the clock without jobd's commands, so that every
 * transition runs in Lua); a production Redis never has it, and then the
 * module reads Redis' clock exactly as before (testclock_offset is 0).
 *
 * Every clock of the store is Redis': the Lua functions and jobd read
 * TIME, the module's commands RedisModule_Milliseconds(). With the test
 * clock on, a command filter turns every TIME (a client's, and a Lua
 * function's) into JOBD.TESTTIME, which answers Redis' time plus the
 * offset, and call_begin() adds the same offset. JOBD.TESTCLOCK MS moves
 * the clock to MS (ms since the epoch; 0: back to Redis' time), from
 * where it runs on at the real pace. Key expiries and Redis' own timers
 * keep the real clock.
 *
 * Rejected: libfaketime under redis-server (Debian's redis-server, with
 * jemalloc, does not start under it: recursive clock_gettime() at load),
 * and an offset key read by every Lua call (a read more on every
 * transition of a production store).
 */
#include "store/module/lib.h"

#include <stdio.h>
#include <strings.h>
#include <time.h>

long long testclock_offset; /* ms added to Redis' clock */

static long long real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* JOBD.TESTTIME: TIME's answer (seconds, microseconds), moved. */
static int cmd_testtime(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	long long us = real_us() + testclock_offset * 1000;
	char s[32], u[16];

	(void)argv;
	if (argc != 1)
		return rm_WrongArity(ctx);
	snprintf(s, sizeof(s), "%lld", us / 1000000);
	snprintf(u, sizeof(u), "%lld", us % 1000000);
	rm_ReplyWithArray(ctx, 2);
	rm_ReplyWithStringBuffer(ctx, s, strlen(s));
	rm_ReplyWithStringBuffer(ctx, u, strlen(u));
	return RM_OK;
}

/* JOBD.TESTCLOCK MS: the clock jumps to MS; 0 sets it back. */
static int cmd_testclock(RedisModuleCtx *ctx, RedisModuleString **argv,
			 int argc)
{
	long long ms;

	if (argc != 2)
		return rm_WrongArity(ctx);
	if (rm_StringToLongLong(argv[1], &ms) != RM_OK || ms < 0)
		return rm_ReplyWithError(
			ctx, "ERR bad time: use ms since the epoch, or 0");
	testclock_offset = ms ? ms - real_us() / 1000 : 0;
	return rm_ReplyWithLongLong(ctx, testclock_offset);
}

static void time_filter(RedisModuleCommandFilterCtx *fctx)
{
	size_t len;
	const char *cmd;

	if (rm_CommandFilterArgsCount(fctx) != 1)
		return;
	cmd = rm_StringPtrLen(rm_CommandFilterArgGet(fctx, 0), &len);
	if (len == 4 && strncasecmp(cmd, "time", 4) == 0)
		rm_CommandFilterArgReplace(fctx, 0, str_c("jobd.testtime"));
}

int testclock_load(RedisModuleCtx *ctx)
{
	if (rm_CreateCommand(ctx, "jobd.testtime", cmd_testtime,
			     "readonly fast", 0, 0, 0) != RM_OK ||
	    rm_CreateCommand(ctx, "jobd.testclock", cmd_testclock, "fast", 0, 0,
			     0) != RM_OK ||
	    !rm_RegisterCommandFilter(ctx, time_filter, 0))
		return RM_ERR;
	return RM_OK;
}
