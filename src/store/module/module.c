/*
 * module/module: the hot path of jobd's state machine as a native Redis
 * module (docs/redis-module.md). Optional: without it every transition
 * runs as a Lua function (src/store/lua/), with it create, claim and finish of
 * the common job (a root job without children) run here, at about half
 * the Redis CPU, and everything else still runs in Lua.
 *
 * Each command writes exactly what its Lua function writes; what it does
 * not handle it hands back, and the client runs the Lua function for that
 * part:
 *
 *   JOBD.VERSION   the version the client must match, else it uses Lua
 *   JOBD.CREATE    create.lua; only batches of root jobs, else "+lua"
 *   JOBD.CLAIM     claim.lua; claims while the next ready entry is a root
 *                  without children and no retry is due, then appends
 *                  "+lua" if it stopped early for the Lua function
 *   JOBD.FINISH    finish.lua for runs done without log lines, listed in
 *                  one argument; per run "lua" for all but a root job
 *                  without children (and for a fractional progress)
 *
 * CLAIM takes the arguments of claim.lua. CREATE takes create.lua's, except
 * that its jobs come in one list argument (parse_jobs()); it answers one id
 * per job, negative when the key had it already, as create.lua does.
 * FINISH takes its runs in one list too (parse_runs()): an argument per
 * field would cost Redis a string made and freed for each.
 *
 * The key API does not ask Redis's ACLs, so each command first checks
 * that the calling user may read and write "PREFIX:*" (prefix_allowed()):
 * a user limited to ~other:* gets NOPERM, as from the Lua functions, and
 * cannot reach another prefix's jobs through the module
 * (docs/security.md, "Redis").
 *
 * Writes go through the key API and are replicated by hand as their
 * effects with literal values (rm_Replicate), as Redis replicates a Lua
 * function's effects: the replica and the AOF never run module code.
 * tests/equivalence/module.sh compares every key written by the module with the Lua
 * functions' on the same work, and a replica's DEBUG DIGEST with the
 * primary's.
 */
#include "store/module/lib.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/module/module.h"
#include "store/scripts.h"

/* The module and the Lua library it mirrors: a client uses the module
 * only when this equals its own (src/store/conn.c). */
static int cmd_version(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	static const char version[] = JOBD_MODULE_REVISION;
	char buf[128];

	(void)argv;
	if (argc != 1)
		return rm_WrongArity(ctx);
	snprintf(buf, sizeof(buf), "%s%s", jobd_library_prefix, version);
	return rm_ReplyWithSimpleString(ctx, buf);
}

/*
 * Whether the user running the command may read and write every key of
 * the prefix ARGV[1]: ACL patterns are globs, and the literal key
 * "PREFIX:*" matches only a pattern that covers all of them. No user (a
 * replica's or the AOF's client) is allowed.
 */
static int prefix_allowed(RedisModuleCtx *ctx, RedisModuleString **argv,
			  int argc)
{
	RedisModuleString *name, *probe;
	RedisModuleUser *user;
	const char *p;
	char *buf;
	size_t len;
	int ok;

	if (argc < 2)
		return 1;
	if (!(name = rm_GetCurrentUserName(ctx)))
		return 1;
	user = rm_GetModuleUserFromUserName(name);
	rm_FreeString(ctx, name);
	if (!user)
		return 0;
	p = rm_StringPtrLen(argv[1], &len);
	buf = rm_Alloc(len + 2);
	memcpy(buf, p, len);
	memcpy(buf + len, ":*", 2);
	probe = rm_CreateString(ctx, buf, len + 2);
	rm_Free(buf);
	ok = rm_ACLCheckKeyPermissions(user, probe,
				       RM_KEY_ACCESS | RM_KEY_UPDATE |
					       RM_KEY_INSERT | RM_KEY_DELETE) ==
	     RM_OK;
	rm_FreeString(ctx, probe);
	rm_FreeModuleUser(user);
	return ok;
}

/*
 * Whether a move of the deployment's slot holds this call (jobctl cluster
 * move, docs/scaling.md "Moving the slot"), as the Lua functions'
 * hold_check(): PREFIX:hold exists, or, on a cluster, this node does not
 * serve it now. The module opens keys without the cluster's checks, so
 * there the key is asked through RM_Call, which makes them: while the
 * slot migrates and the key has gone ahead to the new node, or once the
 * slot is there, the node refuses it ("non local key": the store reads
 * the slot map again). Replies the refusal when it holds; before
 * anything is read or written.
 */
static int hold_refuses(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	RedisModuleString *k;
	const char *p;
	char *buf;
	size_t len;
	long long since = 0;
	char msg[256];
	int held, here = 1, down = 0;

	if (argc < 2)
		return 0;
	p = rm_StringPtrLen(argv[1], &len);
	buf = rm_Alloc(len + sizeof(K_HOLD));
	memcpy(buf, p, len);
	memcpy(buf + len, K_HOLD, sizeof(K_HOLD));
	k = rm_CreateString(ctx, buf, len + sizeof(K_HOLD) - 1);
	rm_Free(buf);
	if (rm_GetContextFlags(ctx) & RM_CTX_FLAGS_CLUSTER) {
		RedisModuleCallReply *r = rm_Call(ctx, "EXISTS", "s", k);

		here = r != NULL;
		down = !r && (errno == ENETDOWN || errno == EROFS);
		held = r && rm_CallReplyInteger(r) > 0;
		if (r)
			rm_FreeCallReply(r);
	} else {
		held = 1;
	}
	if (here && held) {
		RedisModuleKey *key = rm_OpenKey(ctx, k, RM_READ);
		RedisModuleString *v = NULL;

		held = rm_KeyType(key) != RM_KEYTYPE_EMPTY;
		if (rm_KeyType(key) == RM_KEYTYPE_HASH) {
			RedisModuleString *f = rm_CreateString(ctx, "since", 5);

			rm_HashGet(key, RM_HASH_NONE, f, &v, NULL);
			rm_FreeString(ctx, f);
		}
		if (v) {
			rm_StringToLongLong(v, &since);
			rm_FreeString(ctx, v);
		}
		rm_CloseKey(key);
	}
	rm_FreeString(ctx, k);
	if (down)
		rm_ReplyWithError(ctx, "CLUSTERDOWN jobd: the cluster is down");
	else if (!here)
		rm_ReplyWithError(ctx,
				  "ERR jobd: the slot of the prefix is not "
				  "served here now (migrating or moved): "
				  "refused an access a non local key would be");
	else if (held) {
		/* "since" first: the worker reads it (jobd_store_held),
		 * whatever the prefix's length. */
		snprintf(msg, sizeof(msg),
			 "HELD (since %lld ms) the slot of %.*s is moving "
			 "(jobctl cluster move): calls wait until it is done",
			 since, (int)len, p);
		rm_ReplyWithError(ctx, msg);
	}
	return !here || held;
}

#define NOPERM                                                                \
	"NOPERM this user has no permissions to access one of the keys used " \
	"as arguments"

/*
 * Whether the call is refused before it starts, and then replied to: a
 * user whose ACL rule does not reach the prefix's keys, a prefix whose
 * shard tag names no shard (lib.lua shard_parse), a move of the slot.
 */
static int refused(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	const char *p;
	size_t len;
	long long s, n;
	char msg[256];

	if (!prefix_allowed(ctx, argv, argc)) {
		rm_ReplyWithError(ctx, NOPERM);
		return 1;
	}
	if (argc >= 2) {
		p = rm_StringPtrLen(argv[1], &len);
		if (jobd_shard_of(p, len, &s, &n) < 0) {
			snprintf(
				msg, sizeof(msg),
				"ERR jobd: prefix %.*s: its tag names no shard "
				"(N/S, 0 <= N < S <= %d, without leading "
				"zeros)",
				(int)(len > 128 ? 128 : len), p, N_MAX_SHARDS);
			rm_ReplyWithError(ctx, msg);
			return 1;
		}
	}
	return hold_refuses(ctx, argv, argc);
}

static int acl_create(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	return refused(ctx, argv, argc) ? RM_OK : cmd_create(ctx, argv, argc);
}

static int acl_claim(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	return refused(ctx, argv, argc) ? RM_OK : cmd_claim(ctx, argv, argc);
}

static int acl_finish(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	return refused(ctx, argv, argc) ? RM_OK : cmd_finish(ctx, argv, argc);
}

/* The one symbol Redis looks up (the build hides all others). */
__attribute__((visibility("default"))) int
RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

__attribute__((visibility("default"))) int
RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
	static const struct {
		const char *name;
		rm_cmd_fn fn;
		const char *flags;
	} cmds[] = {
		{ "jobd.version", cmd_version, "readonly fast" },
		{ "jobd.create", acl_create, "write deny-oom" },
		{ "jobd.claim", acl_claim, "write deny-oom" },
		{ "jobd.finish", acl_finish, "write deny-oom" },
	};
	int clock = 0, only_clock = 0;

	if (rm_init(ctx, "jobd", 1) != RM_OK)
		return RM_ERR;
	/* tests/integration/metrics.sh: "test-clock" adds a clock the tests
	 * move, "test-clock-only" leaves jobd's commands out (testclock.c). */
	for (int i = 0; i < argc; i++) {
		const char *a = rm_StringPtrLen(argv[i], NULL);

		if (strcmp(a, "test-clock") == 0) {
			clock = 1;
		} else if (strcmp(a, "test-clock-only") == 0) {
			clock = only_clock = 1;
		} else {
			rm_Log(ctx, "warning",
			       "jobd: unknown argument \"%s\": the module takes "
			       "none (test-clock and test-clock-only are for tests)",
			       a);
			return RM_ERR;
		}
	}
	if (clock && testclock_load(ctx) != RM_OK)
		return RM_ERR;
	if (only_clock)
		return RM_OK;
	for (int i = 0; i < NNAMES; i++) {
		N[i] = str_c(names[i]);
		name_len[i] = strlen(names[i]);
	}
	table_field = str_c("jobd:table");
	table_value = str_c("jobd: a value long enough to make a hash a hash "
			    "table, removed at once");
	skiplist_member = str_c("jobd: a member long enough to make a sorted "
				"set a skip list, removed at once");
	/* Keys are derived from the prefix inside each command, as in the
	 * Lua functions: no key positions (one Redis primary, no cluster;
	 * docs/scaling.md). */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (rm_CreateCommand(ctx, cmds[i].name, cmds[i].fn,
				     cmds[i].flags, 0, 0, 0) != RM_OK)
			return RM_ERR;
	return RM_OK;
}
