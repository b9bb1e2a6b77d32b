/*
 * module_twin_driver: the differential test of jobd's Redis module
 * (tests/equivalence/module_twin.sh, docs/redis-module.md). One seeded
 * random sequence of operations runs through the store API against two
 * Redis servers, one with the module and one without it (the Lua
 * functions alone): creates of roots and children (some with a run time
 * or a delay), claims, finishes done,
 * failed and stopped, reports, heartbeats, hand-backs, lease expiry,
 * every operator operation (with its cascade, or left behind as by an
 * operator that died, and continued later), retention's purge, changes
 * of the types' limits and of the idempotency keys' window, and a clock
 * that moves on. After each step both servers must have answered
 * alike, sent the same keyspace notifications and wake-ups, and hold the
 * same value and expiry time in every key the step changed; every 25
 * steps every key of both is compared, and fsck must find nothing wrong
 * in either (nor after a purge). The first difference stops the run: the
 * seed, the step, what differs (every key of both dumped, by type) and
 * the steps that led there.
 *
 * Both servers read the clock the driver sets (tests/drivers/fakeclock.c,
 * preloaded), so times, leases, stream ids and statistics windows are the
 * same on both: nothing is masked. The store draws the jitter of a retry
 * from random(): it is reseeded alike before each side's call.
 *
 * The keys a step changed are those it notified (Lua notifies every
 * write; a write the module makes alone without one is found by the next
 * comparison of all keys): comparing those by DEBUG DIGEST-VALUE keeps
 * 10,000 steps within a minute, where DEBUG DIGEST of everything, or a
 * dump, costs ten times as much a step. The dump is made when values
 * differ, to say where.
 *
 *   module_twin_driver --lua SOCKET --module SOCKET --clock FILE
 *                      [--seed N] [--steps N] [--fsck-every N]
 *                      [--full-every N] [--replica SOCKET]
 *   module_twin_driver --clock FILE --reset-clock
 *
 * --replica names a replica of the module's Redis that does not load
 * the module: at each comparison of all keys it must hold what its
 * primary holds (the module replicates its writes as their effects).
 *
 * JOBD_CONFIG names the configuration of the types the steps use (sys,
 * fixed, flaky, redo, and capped and paced with a concurrency and a rate
 * limit that a step changes now and then; tests/equivalence/module_twin.sh
 * writes it). The
 * second form creates the clock file at the driver's epoch, for the
 * servers to start on.
 */
#include "config.h"

#include "base/conf.h"
#include "base/log.h"
#include "store/store.h"
#include "store/store_int.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* 2026-01-01 00:00:00 UTC: where every run's clock starts. */
#define EPOCH_MS 1767225600000LL
#define ACTOR "twin"
#define MAX_RUNS 64	 /* claimed runs the driver remembers */
#define HISTORY_SHOWN 40 /* steps printed before a difference */
#define DIFF_SHOWN 30	 /* lines printed of each side's difference */

/* --- text ------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static void buf_vadd(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (b->n + (size_t)n + 1 > b->cap) {
		b->cap = (b->n + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
	b->n += (size_t)n;
}

static void __attribute__((format(printf, 2, 3)))
buf_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vadd(b, fmt, ap);
	va_end(ap);
}

static const char *buf_str(const struct buf *b)
{
	return b->p ? b->p : "";
}

/* Lines, sorted for comparing. */
struct lines {
	char **v;
	size_t n, cap;
};

static void __attribute__((format(printf, 2, 3)))
lines_add(struct lines *l, const char *fmt, ...)
{
	struct buf b = { 0 };
	va_list ap;

	va_start(ap, fmt);
	buf_vadd(&b, fmt, ap);
	va_end(ap);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	l->v[l->n++] = b.p ? b.p : strdup("");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts L; with UNIQ, drops repeated lines. */
static void lines_sort(struct lines *l, bool uniq)
{
	size_t k = 0;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cmp_str);
	for (size_t i = 0; i < l->n; i++) {
		if (uniq && k > 0 && strcmp(l->v[k - 1], l->v[i]) == 0) {
			free(l->v[i]);
			continue;
		}
		l->v[k++] = l->v[i];
	}
	l->n = k;
}

static void lines_release(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Prints the lines of sorted A and B that the other lacks, at most
 * DIFF_SHOWN of each; returns whether there were any. */
static bool lines_diff(const struct lines *a, const struct lines *b,
		       const char *an, const char *bn)
{
	size_t i = 0, j = 0;
	int na = 0, nb = 0;

	while (i < a->n || j < b->n) {
		int c = i == a->n ? 1 :
			j == b->n ? -1 :
				    strcmp(a->v[i], b->v[j]);

		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			if (na++ < DIFF_SHOWN)
				fprintf(stderr, "  only %-6s %s\n", an,
					a->v[i]);
			i++;
		} else {
			if (nb++ < DIFF_SHOWN)
				fprintf(stderr, "  only %-6s %s\n", bn,
					b->v[j]);
			j++;
		}
	}
	if (na > DIFF_SHOWN || nb > DIFF_SHOWN)
		fprintf(stderr, "  (%d and %d lines differ in all)\n", na, nb);
	return na || nb;
}

/* --- the run ------------------------------------------------------------ */

/* splitmix64: the driver's own generator, apart from random(). */
static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int below(int n)
{
	return (int)(rnd() % (uint64_t)n);
}

static bool chance(int percent)
{
	return below(100) < percent;
}

struct side {
	const char *name; /* "lua" or "module" */
	const char *sock;
	struct jobd_conf *conf;
	struct jobd_store *st;
	redisContext *c;     /* the driver's: marks, keys, digests, dumps */
	redisContext *sub;   /* keyspace notifications and wake-ups */
	struct buf ans;	     /* what this step's calls answered */
	struct lines events; /* "KEY EVENT" notified during this step */
};

static struct side sides[2] = { { .name = "lua" }, { .name = "module" } };

/* A run the driver claimed: its job and attempt. */
struct run {
	int64_t id, attempt;
};

static uint64_t seed;
static long step;
static int64_t now;		  /* ms, the servers' clock */
static volatile int64_t *clock_p; /* the mapped clock file */
static struct lines history;	  /* one line per step */
static struct buf desc;		  /* this step's line */
static int64_t *jobs;		  /* every id created */
static size_t njobs, capjobs;
static struct run runs[MAX_RUNS]; /* claimed, perhaps ended since */
static size_t nruns;
static const char *const types[] = { "noop", "sys",    "fixed", "flaky",
				     "redo", "capped", "paced" };
#define NTYPES (int)(sizeof(types) / sizeof(types[0]))

static void __attribute__((noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "module_twin_driver: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void clock_set(int64_t ms)
{
	now = ms;
	__atomic_store_n(clock_p, ms, __ATOMIC_RELEASE);
}

static void clock_open(const char *path, bool reset)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	void *p;

	if (fd < 0 || ftruncate(fd, sizeof(int64_t)) < 0)
		die("cannot open the clock file %s", path);
	p = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 0);
	close(fd);
	if (p == MAP_FAILED)
		die("cannot map the clock file %s", path);
	clock_p = p;
	if (reset)
		clock_set(EPOCH_MS);
}

/* Prints the steps so far (the last HISTORY_SHOWN) and how to repeat. */
static void show_history(void)
{
	size_t from = history.n > HISTORY_SHOWN ? history.n - HISTORY_SHOWN : 0;

	fprintf(stderr, "the last %zu steps of seed %llu:\n", history.n - from,
		(unsigned long long)seed);
	for (size_t i = from; i < history.n; i++)
		fprintf(stderr, "  %s\n", history.v[i]);
	fprintf(stderr,
		"repeat with: TWIN_SEED=%llu TWIN_STEPS=%ld make check "
		"TESTS=tests/equivalence/module_twin.sh\n",
		(unsigned long long)seed, step);
}

static void __attribute__((noreturn)) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "module_twin_driver: seed %llu, step %ld: ",
		(unsigned long long)seed, step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	show_history();
	exit(1);
}

static redisReply *cmd(struct side *s, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(s->c, fmt, ap);
	va_end(ap);
	if (!r)
		fail("%s: redis at %s: %s", s->name, s->sock, s->c->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		fail("%s: redis at %s: %s", s->name, s->sock, r->str);
	return r;
}

/* The reply of the oldest command appended on S's connection. */
static redisReply *reply_of(struct side *s)
{
	redisReply *r;

	if (redisGetReply(s->c, (void **)&r) != REDIS_OK || !r)
		fail("%s: redis at %s: %s", s->name, s->sock, s->c->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		fail("%s: redis at %s: %s", s->name, s->sock, r->str);
	return r;
}

static redisContext *connect_to(const char *sock)
{
	struct timeval tv = { 10, 0 };
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);

	if (!c || c->err)
		die("cannot connect to redis at %s: %s", sock,
		    c ? c->errstr : "out of memory");
	redisSetTimeout(c, tv);
	return c;
}

static int limits_on(struct side *s);

static void side_open(struct side *s, const char *sock)
{
	char err[512];
	redisReply *r;

	s->sock = sock;
	s->c = connect_to(sock);
	freeReplyObject(cmd(s, "FLUSHALL"));
	freeReplyObject(cmd(s, "CONFIG RESETSTAT"));
	/* Keys expire when read, the same way on both: a key that one side
	 * read and the other not expires when the comparison reads it. */
	freeReplyObject(cmd(s, "DEBUG SET-ACTIVE-EXPIRE 0"));
	freeReplyObject(cmd(s, "CONFIG SET notify-keyspace-events KA"));
	s->sub = connect_to(sock);
	r = redisCommand(s->sub, "PSUBSCRIBE __keyspace@0__:*");
	if (!r)
		die("cannot subscribe at %s", sock);
	freeReplyObject(r);
	setenv("JOBD_REDIS", sock, 1);
	s->conf = jobd_conf_load(NULL, err, sizeof(err));
	if (!s->conf)
		die("%s", err);
	r = redisCommand(s->sub, "SUBSCRIBE twin:mark %s:wake",
			 s->conf->prefix);
	if (!r)
		die("cannot subscribe at %s", sock);
	freeReplyObject(r);
	/* The second channel's reply. */
	if (redisGetReply(s->sub, (void **)&r) != REDIS_OK)
		die("cannot subscribe at %s", sock);
	freeReplyObject(r);
	s->st = jobd_store_new(s->conf, err, sizeof(err));
	if (!s->st)
		die("%s", err);
	if (limits_on(s) < 0)
		die("%s: %s", s->name, jobd_store_errstr(s->st));
}

static void side_close(struct side *s)
{
	jobd_store_free(s->st);
	jobd_conf_free(s->conf);
	redisFree(s->c);
	redisFree(s->sub);
	free(s->ans.p);
	lines_release(&s->events);
}

/* --- what each side holds -------------------------------------------- */

/* Every key of S, sorted, each with its expiry time; reading a key
 * expires it when its time has come. */
static void keys_of(struct side *s, struct lines *keys)
{
	unsigned long long cursor = 0;

	do {
		redisReply *r = cmd(s, "SCAN %llu COUNT 1000", cursor);

		cursor = strtoull(r->element[0]->str, NULL, 10);
		for (size_t i = 0; i < r->element[1]->elements; i++) {
			redisReply *k = r->element[1]->element[i];

			lines_add(keys, "%.*s", (int)k->len, k->str);
		}
		freeReplyObject(r);
	} while (cursor != 0);
	lines_sort(keys, true);
	for (size_t i = 0; i < keys->n; i++)
		redisAppendCommand(s->c, "PEXPIRETIME %s", keys->v[i]);
	for (size_t i = 0; i < keys->n; i++) {
		redisReply *r;
		char *line;

		if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
			fail("%s: %s", s->name, s->c->errstr);
		if (r->integer >= 0 && asprintf(&line, "%s expires at %lld",
						keys->v[i], r->integer) > 0) {
			free(keys->v[i]);
			keys->v[i] = line;
		}
		freeReplyObject(r);
	}
}

/* How dump() reads a key of each collection type: its command, and the
 * text between the two elements of a pair (NULL: one element a line,
 * numbered where the order counts). */
static const struct {
	const char *type, *cmd, *pair;
	bool numbered;
} collections[] = {
	{ "hash", "HGETALL %s", " = ", false },
	{ "zset", "ZRANGE %s 0 -1 WITHSCORES", " score ", false },
	{ "list", "LRANGE %s 0 -1", NULL, true },
	{ "set", "SMEMBERS %s", NULL, false },
};

/* The lines of collection K of S, read with C's command. */
static void dump_collection(struct side *s, const char *k, size_t c,
			    struct lines *out)
{
	redisReply *r = cmd(s, collections[c].cmd, k);
	size_t per = collections[c].pair ? 2 : 1;

	for (size_t j = 0; j + per - 1 < r->elements; j += per)
		if (collections[c].pair)
			lines_add(out, "%s %s%s%s", k, r->element[j]->str,
				  collections[c].pair, r->element[j + 1]->str);
		else if (collections[c].numbered)
			lines_add(out, "%s [%zu] %s", k, j, r->element[j]->str);
		else
			lines_add(out, "%s has %s", k, r->element[j]->str);
	freeReplyObject(r);
}

/* The lines of stream K of S: an entry a line. */
static void dump_stream(struct side *s, const char *k, struct lines *out)
{
	redisReply *r = cmd(s, "XRANGE %s - +", k);

	for (size_t j = 0; j < r->elements; j++) {
		redisReply *e = r->element[j], *f = e->element[1];
		struct buf b = { 0 };

		for (size_t x = 0; x + 1 < f->elements; x += 2)
			buf_add(&b, " %s=%s", f->element[x]->str,
				f->element[x + 1]->str);
		lines_add(out, "%s %s%s", k, e->element[0]->str, buf_str(&b));
		free(b.p);
	}
	freeReplyObject(r);
}

/* One line per field, member, element or entry of every key of S, and
 * its expiry time. */
static void dump(struct side *s, struct lines *out)
{
	struct lines keys = { 0 };

	keys_of(s, &keys);
	for (size_t i = 0; i < keys.n; i++) {
		char *k = keys.v[i], *sp = strchr(k, ' ');
		redisReply *t;
		size_t c = 0;

		lines_add(out, "%s", k); /* with its expiry */
		if (sp)
			*sp = 0;
		t = cmd(s, "TYPE %s", k);
		while (c < sizeof(collections) / sizeof(collections[0]) &&
		       strcmp(t->str, collections[c].type) != 0)
			c++;
		if (c < sizeof(collections) / sizeof(collections[0])) {
			dump_collection(s, k, c, out);
		} else if (strcmp(t->str, "stream") == 0) {
			dump_stream(s, k, out);
		} else if (strcmp(t->str, "string") == 0) {
			redisReply *r = cmd(s, "GET %s", k);

			lines_add(out, "%s = %s", k, r->str);
			freeReplyObject(r);
		} else {
			lines_add(out, "%s type %s", k, t->str);
		}
		freeReplyObject(t);
	}
	lines_release(&keys);
	lines_sort(out, false);
}

/*
 * The kind of change an event names: what a listener subscribes to
 * (notify-keyspace-events $, h, z, l, t, g). The two implementations
 * write alike in different commands (the module's HSET of a count where
 * Lua ran HINCRBY), which changes the event's name, not the change.
 */
static const char *event_kind(const char *ev)
{
	static const struct {
		const char *prefix, *kind;
	} kinds[] = {
		{ "set", "string" },	{ "incr", "string" },
		{ "append", "string" }, { "h", "hash" },
		{ "z", "zset" },	{ "l", "list" },
		{ "r", "list" },	{ "x", "stream" },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strncmp(ev, kinds[i].prefix, strlen(kinds[i].prefix)) == 0)
			return kinds[i].kind;
	return ev; /* del, expire, rename_from...: as they are */
}

/* Marks the end of this step in S's notifications (read by
 * events_of(): both sides are asked before either is read). */
static void mark_end(struct side *s)
{
	redisAppendCommand(s->c, "PUBLISH twin:mark %ld", step);
}

/* Reads S's notifications up to the mark of this step. */
static void events_of(struct side *s)
{
	char mark[32];
	size_t plen = strlen(s->conf->prefix);

	snprintf(mark, sizeof(mark), "%ld", step);
	freeReplyObject(reply_of(s));
	for (;;) {
		redisReply *r, *ch, *msg;

		if (redisGetReply(s->sub, (void **)&r) != REDIS_OK || !r)
			fail("%s: notifications: %s", s->name, s->sub->errstr);
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
			freeReplyObject(r);
			continue;
		}
		ch = r->element[r->elements - 2];
		msg = r->element[r->elements - 1];
		if (strcmp(ch->str, "twin:mark") == 0) {
			bool mine = strcmp(msg->str, mark) == 0;

			freeReplyObject(r);
			if (mine)
				break;
			continue;
		}
		if (strncmp(ch->str, s->conf->prefix, plen) == 0 &&
		    strcmp(ch->str + plen, ":wake") == 0)
			lines_add(&s->events, "%s published", ch->str);
		/* Keys expire as they are read, which the two do differently:
		 * what is left is compared, not when it went. */
		else if (strcmp(msg->str, "expired") != 0)
			lines_add(&s->events, "%s %s",
				  ch->str + strlen("__keyspace@0__:"),
				  event_kind(msg->str));
		freeReplyObject(r);
	}
	lines_sort(&s->events, true);
}

/* Prints what A and B hold differently, key by key. */
static void show_dumps(struct side *a, struct side *b)
{
	struct lines da = { 0 }, db = { 0 };

	dump(a, &da);
	dump(b, &db);
	fprintf(stderr, "what the two hold (%zu and %zu lines):\n", da.n, db.n);
	if (!lines_diff(&da, &db, a->name, b->name))
		fprintf(stderr, "  every line alike (the digests differ)\n");
	lines_release(&da);
	lines_release(&db);
}

/* A replica of the module's Redis that does not load the module, or no
 * c: it must follow what the module replicates. */
static struct side replica = { .name = "replica" };

/* The replica holds what the module's Redis, of DIGEST, holds. */
static void replica_check(const char *digest)
{
	redisReply *r = cmd(&sides[1], "WAIT 1 5000");
	bool same;

	if (r->integer != 1)
		fail("the replica did not acknowledge the writes");
	freeReplyObject(r);
	r = cmd(&replica, "DEBUG DIGEST");
	same = strcmp(r->str, digest) == 0;
	freeReplyObject(r);
	if (!same) {
		show_dumps(&sides[1], &replica);
		fail("the replica differs from the module's Redis (above): "
		     "the module replicated what it did not write");
	}
}

/* Asks S for the value digest and expiry time of each of the N keys
 * KEYS (values_of() reads the answers). */
static void values_ask(struct side *s, char **keys, size_t n)
{
	const char **argv = calloc(n + 2, sizeof(*argv));

	if (!argv)
		abort();
	argv[0] = "DEBUG";
	argv[1] = "DIGEST-VALUE";
	for (size_t i = 0; i < n; i++)
		argv[i + 2] = keys[i];
	redisAppendCommandArgv(s->c, (int)n + 2, argv, NULL);
	for (size_t i = 0; i < n; i++)
		redisAppendCommand(s->c, "PEXPIRETIME %s", keys[i]);
	free(argv);
}

/* The answers to values_ask(), one line per key. */
static void values_of(struct side *s, char **keys, size_t n, struct lines *out)
{
	redisReply *r = reply_of(s);

	if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
		fail("%s: DEBUG DIGEST-VALUE answered no list", s->name);
	for (size_t i = 0; i < n; i++) {
		redisReply *e = reply_of(s);

		lines_add(out, "%s value %s expires %lld", keys[i],
			  r->element[i]->str, e->integer);
		freeReplyObject(e);
	}
	freeReplyObject(r);
}

/*
 * Compares what the two sides answered and notified this step, and the
 * keys the step changed (those notified: a write that one side makes
 * alone, it notifies alone). With FULL, every key: the list of keys and
 * their expiry times, and DEBUG DIGEST of all values, which also finds a
 * key written without a notification (at most a full check late).
 */
static void compare(bool full)
{
	struct lines changed = { 0 }, v[2] = { { 0 } };

	if (strcmp(buf_str(&sides[0].ans), buf_str(&sides[1].ans)) != 0)
		fail("the answers differ:\n  lua:    %s\n  module: %s",
		     buf_str(&sides[0].ans), buf_str(&sides[1].ans));
	for (int i = 0; i < 2; i++)
		mark_end(&sides[i]);
	for (int i = 0; i < 2; i++)
		events_of(&sides[i]);
	if (lines_diff(&sides[0].events, &sides[1].events, sides[0].name,
		       sides[1].name))
		fail("the keyspace notifications differ (above)");
	for (size_t i = 0; i < sides[0].events.n; i++) {
		const char *e = sides[0].events.v[i];

		if (!strstr(e, " published"))
			lines_add(&changed, "%.*s", (int)(strrchr(e, ' ') - e),
				  e);
	}
	lines_sort(&changed, true);
	if (changed.n > 0) {
		for (int i = 0; i < 2; i++)
			values_ask(&sides[i], changed.v, changed.n);
		for (int i = 0; i < 2; i++)
			values_of(&sides[i], changed.v, changed.n, &v[i]);
		if (lines_diff(&v[0], &v[1], sides[0].name, sides[1].name)) {
			show_dumps(&sides[0], &sides[1]);
			fail("the keys changed differ (above)");
		}
	}
	if (full) {
		struct lines keys[2] = { { 0 } };
		redisReply *dg[2];

		for (int i = 0; i < 2; i++) {
			keys_of(&sides[i], &keys[i]);
			dg[i] = cmd(&sides[i], "DEBUG DIGEST");
		}
		if (lines_diff(&keys[0], &keys[1], sides[0].name,
			       sides[1].name))
			fail("the keys differ (above)");
		if (strcmp(dg[0]->str, dg[1]->str) != 0) {
			show_dumps(&sides[0], &sides[1]);
			fail("the values differ (above)");
		}
		if (replica.c)
			replica_check(dg[1]->str);
		for (int i = 0; i < 2; i++) {
			lines_release(&keys[i]);
			freeReplyObject(dg[i]);
		}
	}
	lines_release(&changed);
	for (int i = 0; i < 2; i++) {
		lines_release(&v[i]);
		lines_release(&sides[i].events);
		sides[i].ans.n = 0;
		if (sides[i].ans.p)
			sides[i].ans.p[0] = 0;
	}
}

/* fsck of the first N sides: nothing may be wrong. */
static void fsck_sides(int n)
{
	for (int i = 0; i < n; i++) {
		struct jobd_fsck f;

		if (jobd_store_fsck(sides[i].st, false, &f) < 0)
			fail("%s: fsck: %s", sides[i].name,
			     jobd_store_errstr(sides[i].st));
		if (f.nviolations > 0) {
			for (size_t j = 0; j < f.nviolations; j++)
				fprintf(stderr, "  %s\n", f.violations[j]);
			fail("fsck found %zu things wrong on %s (above)",
			     f.nviolations + f.more_violations, sides[i].name);
		}
		jobd_fsck_release(&f);
	}
}

/* Set by a step whose aftermath fsck should see at once (a purge: what
 * it leaves wrong, a claim may clear before the next periodic fsck). */
static bool fsck_now;

/* --- choosing ----------------------------------------------------------- */

static void job_add(int64_t id)
{
	for (size_t i = njobs; i-- > 0 && i + 8 >= njobs;)
		if (jobs[i] == id)
			return;
	if (njobs == capjobs) {
		capjobs = capjobs ? capjobs * 2 : 256;
		jobs = realloc(jobs, capjobs * sizeof(*jobs));
		if (!jobs)
			abort();
	}
	jobs[njobs++] = id;
}

/* A job to act on: mostly a recent one, sometimes any, or none. */
static int64_t pick_job(void)
{
	if (njobs == 0 || chance(3))
		return (int64_t)njobs + 1 + below(3);
	if (chance(70))
		return jobs[njobs - 1 -
			    (size_t)below(njobs < 30 ? (int)njobs : 30)];
	return jobs[below((int)njobs)];
}

static void run_add(int64_t id, int64_t attempt)
{
	if (nruns == MAX_RUNS) {
		memmove(runs, runs + 1, (MAX_RUNS - 1) * sizeof(*runs));
		nruns--;
	}
	runs[nruns++] = (struct run){ id, attempt };
}

static void run_forget(int64_t id, int64_t attempt)
{
	for (size_t i = 0; i < nruns; i++)
		if (runs[i].id == id && runs[i].attempt == attempt) {
			memmove(runs + i, runs + i + 1,
				(nruns - i - 1) * sizeof(*runs));
			nruns--;
			return;
		}
}

/* Up to MAX distinct runs into OUT (an attempt now and then a wrong
 * one: fenced); returns how many. */
static size_t pick_runs(struct run *out, size_t max)
{
	size_t n = 0;

	for (size_t tries = 0; n < max && nruns > 0 && tries < 3 * max;
	     tries++) {
		struct run r = runs[below((int)nruns)];
		bool dup = false;

		for (size_t i = 0; i < n; i++)
			dup |= out[i].id == r.id;
		if (dup)
			continue;
		if (chance(4))
			r.attempt += chance(50) ? 1 : -1;
		out[n++] = r;
	}
	return n;
}

static double pick_progress(void)
{
	static const double v[] = { -1, -1, 0, 25, 50, 100, 100, 33.5, 150 };

	return v[below((int)(sizeof(v) / sizeof(v[0])))];
}

static const char *result_names[] = { "ok",	  "stop",    "fenced",
				      "finished", "waiting", "stopped",
				      "retry",	  "pending" };

/* Calls F on each side (random() reseeded alike: the retry jitter),
 * failing on a store error. */
#define BOTH(s, call)                                                      \
	for (int side_ = 0; side_ < 2; side_++) {                          \
		struct side *s = &sides[side_];                            \
                                                                           \
		srandom((unsigned)(seed * 1000003 + (uint64_t)step));      \
		if ((call) < 0)                                            \
			fail("%s: %s", s->name, jobd_store_errstr(s->st)); \
	}

/* --- the steps ---------------------------------------------------------- */

static int create_on(struct side *s, const struct jobd_spec *specs, size_t n,
		     bool piped, struct jobd_created *out)
{
	int rc = 0;

	if (piped) {
		/* As the consumer does: what the halves leave to it (a batch
		 * with children, on the module), a whole create. */
		rc = jobd_store_create_send(s->st, ACTOR, specs, n, out);
		if (rc == 0)
			rc = jobd_store_create_recv(s->st, out);
	}
	if (!piped || rc < 0)
		rc = jobd_store_create(s->st, ACTOR, specs, n, out);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (out[i].error[0])
			buf_add(&s->ans, " [%s]", out[i].error);
		else
			buf_add(&s->ans, " %lld%s", (long long)out[i].id,
				out[i].existed ? " (existed)" : "");
	return rc;
}

/* Roots (the module's part when all are), children, keys that repeat. */
static void step_create(void)
{
	static const char *const users[] = { NULL, "alice", "bob", ACTOR };
	struct jobd_spec specs[5];
	struct jobd_created out[5];
	char keys[5][160], payloads[5][32], sources[5][32];
	size_t n = 1 + (size_t)below(chance(20) ? 5 : 2);
	bool roots = chance(40), piped = chance(25);

	buf_add(&desc, "create%s", piped ? " (piped)" : "");
	for (size_t i = 0; i < n; i++) {
		struct jobd_spec *sp = &specs[i];

		memset(sp, 0, sizeof(*sp));
		sp->type = types[below(NTYPES)];
		if (!roots && chance(60))
			sp->parent = pick_job();
		if (chance(40)) {
			/* Some longer than a bucket's field (their digest) and
			 * than the 64 bytes lib.lua hashes at a time. */
			int k = below(14);

			if (k < 12)
				snprintf(keys[i], sizeof(keys[i]), "k%d", k);
			else
				snprintf(keys[i], sizeof(keys[i]), "%0*d",
					 k == 12 ? 65 : 150, k);
			sp->key = keys[i];
		}
		sp->run_by = users[below(4)];
		sp->low_priority = chance(25);
		if (chance(50)) {
			snprintf(payloads[i], sizeof(payloads[i]), "{\"n\":%d}",
				 below(1000));
			sp->payload = payloads[i];
		}
		if (chance(10)) {
			snprintf(sources[i], sizeof(sources[i]),
				 "jobs.events/0@%d", below(100000));
			sp->source = sources[i];
		}
		/* A run time: later (scheduled), just now, past; or a delay. */
		if (chance(12))
			sp->run_at = now - 2000 + below(20000);
		else if (chance(8))
			sp->delay = below(20000);
		buf_add(&desc,
			" [%s parent=%lld key=%s by=%s%s%s%s at=%+lld delay=%lld]",
			sp->type, (long long)sp->parent,
			sp->key ? sp->key : "-", sp->run_by ? sp->run_by : "-",
			sp->low_priority ? " low" : "",
			sp->payload ? " payload" : "",
			sp->source ? " source" : "",
			(long long)(sp->run_at ? sp->run_at - now : 0),
			(long long)sp->delay);
	}
	BOTH(s, create_on(s, specs, n, piped, out));
	for (size_t i = 0; i < n; i++)
		if (out[i].id > 0)
			job_add(out[i].id);
}

static int claim_on(struct side *s, int max, int max_low, int64_t lease)
{
	struct jobd_claim *cl;
	size_t n;

	if (jobd_store_claim(s->st, "i1", max, max_low, lease, &cl, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		buf_add(&s->ans, " %lld.%lld(%s%s root %lld at %g %s %s)",
			(long long)cl[i].id, (long long)cl[i].attempt,
			cl[i].type, cl[i].low_priority ? " low" : "",
			(long long)cl[i].root, cl[i].progress, cl[i].payload,
			cl[i].checkpoint ? cl[i].checkpoint : "-");
		/* Both sides claim the same runs, or the answers differ. */
		if (s == &sides[1])
			run_add(cl[i].id, cl[i].attempt);
	}
	jobd_store_claims_free(cl, n);
	return 0;
}

static const int64_t leases[] = { 2000, 10000, 60000 };

static void step_claim(void)
{
	int max = 1 + below(5), max_low = below(3);
	int64_t lease = leases[below(3)];

	buf_add(&desc, "claim %d/%d lease %lld", max, max_low,
		(long long)lease);
	BOTH(s, claim_on(s, max, max_low, lease));
}

/* The runs' results, by name, as S's answer. */
static void results_add(struct side *s, const struct run *r, size_t n,
			const enum jobd_result *res)
{
	for (size_t i = 0; i < n; i++)
		buf_add(&s->ans, " %lld.%lld:%s", (long long)r[i].id,
			(long long)r[i].attempt, result_names[res[i]]);
}

/* The calls that take the reports of runs. */
enum report_call { FINISH, REPORT, HANDBACK };

/* Sends the N reports REP (of runs R) to S with CALL. */
static int reports_on(struct side *s, enum report_call call,
		      const struct jobd_report *rep, const struct run *r,
		      size_t n)
{
	enum jobd_result res[4];
	int rc;

	if (call == FINISH)
		rc = jobd_store_finish(s->st, rep, n, res);
	else if (call == REPORT)
		rc = jobd_store_report(s->st, rep, n, res);
	else
		rc = jobd_store_handback(s->st, "shutdown", rep, n, res);
	if (rc == 0)
		results_add(s, r, n, res);
	return rc;
}

static const struct jobd_log_line log_lines[] = {
	{ JOBD_LOG_INFO, "half way" },
	{ JOBD_LOG_WARN, "slow disk" },
};

/*
 * Reports of running jobs (progress, errors, a checkpoint, log lines),
 * their hand-back (which takes the progress and checkpoint) or their
 * finish: done (the module's part, but for log lines, a fractional
 * progress, children, a charge), or failed and stopped (Lua's). Never
 * both in one finish: the store sends the module its part first, so a
 * mixed call would order the log search index's entries differently,
 * and the Lua-only side draws random() for the done runs too.
 */
static void step_reports(enum report_call call)
{
	static const char *const names[] = { "finish", "report", "handback" };
	struct jobd_report rep[4];
	struct run r[4];
	char cps[4][24];
	size_t n = pick_runs(r, 1 + (size_t)below(call == FINISH ? 4 : 3));
	bool done = chance(70);

	buf_add(&desc, "%s%s", names[call],
		call != FINISH ? "" :
		done	       ? " done" :
				 " failed/stopped");
	for (size_t i = 0; i < n; i++) {
		struct jobd_report *p = &rep[i];

		memset(p, 0, sizeof(*p));
		p->id = r[i].id;
		p->attempt = r[i].attempt;
		p->progress = pick_progress();
		p->errors = chance(80) ? 0 : 1 + below(3);
		if (chance(30)) {
			snprintf(cps[i], sizeof(cps[i]), "{\"at\":%d}",
				 below(100));
			p->checkpoint = cps[i];
		}
		if (chance(15)) {
			p->logs = log_lines;
			p->nlogs = 1 + (size_t)below(2);
		}
		if (call == FINISH && !done)
			p->outcome = chance(70) ? JOBD_OUTCOME_FAILED :
						  JOBD_OUTCOME_STOPPED;
		if (p->outcome == JOBD_OUTCOME_FAILED && chance(70))
			p->message = "boom";
		buf_add(&desc, " %lld.%lld(%g%s%s%s%s)", (long long)p->id,
			(long long)p->attempt, p->progress,
			p->errors ? " errors" : "",
			p->checkpoint ? " checkpoint" : "",
			p->nlogs ? " logs" : "",
			p->outcome == JOBD_OUTCOME_STOPPED ? " stopped" : "");
	}
	if (n)
		BOTH(s, reports_on(s, call, rep, r, n));
	for (size_t i = 0; call != REPORT && i < n; i++)
		run_forget(r[i].id, r[i].attempt);
}

static int heartbeat_on(struct side *s, const struct run *r, size_t n,
			int64_t lease)
{
	int64_t ids[4], attempts[4];
	enum jobd_result res[4];

	for (size_t i = 0; i < n; i++) {
		ids[i] = r[i].id;
		attempts[i] = r[i].attempt;
	}
	if (jobd_store_heartbeat(s->st, ids, attempts, n, lease, res) < 0)
		return -1;
	results_add(s, r, n, res);
	return 0;
}

static void step_heartbeat(void)
{
	struct run r[4];
	size_t n = pick_runs(r, 1 + (size_t)below(4));
	int64_t lease = leases[below(3)];

	buf_add(&desc, "heartbeat lease %lld", (long long)lease);
	for (size_t i = 0; i < n; i++)
		buf_add(&desc, " %lld.%lld", (long long)r[i].id,
			(long long)r[i].attempt);
	if (n)
		BOTH(s, heartbeat_on(s, r, n, lease));
}

/* Housekeeping's calls that answer how many. */
enum count_call { EXPIRE, CASCADES };

static int count_on(struct side *s, enum count_call call, size_t max)
{
	size_t n;
	int rc = call == EXPIRE ? jobd_store_expire(s->st, max, &n) :
				  jobd_store_cascades_run(s->st, max, &n);

	if (rc == 0)
		buf_add(&s->ans, " %zu", n);
	return rc;
}

/* Leases that ran out (the clock jumps now and then) go back; the
 * cascades operators left are continued. */
static void step_count(enum count_call call)
{
	size_t max = 1 + (size_t)below(call == EXPIRE ? 8 : 2);

	buf_add(&desc, "%s %zu", call == EXPIRE ? "expire" : "cascades", max);
	BOTH(s, count_on(s, call, max));
}

static int op_on(struct side *s, enum jobd_op op, const int64_t *ids, size_t n)
{
	struct jobd_op_result out[3];

	if (jobd_store_op(s->st, op, ACTOR, ids, n, out) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		buf_add(&s->ans, " %lld:%s", (long long)ids[i],
			out[i].ok ? "ok" : out[i].error);
	return 0;
}

/*
 * The operation's function alone, as an operator that died before the
 * cascade would have called it: the task stays in P:cascades for
 * housekeeping (step_count(CASCADES)), and every other step may come between.
 */
static int op_dies_on(struct side *s, enum jobd_op op, const int64_t *ids,
		      size_t n)
{
	static const enum script_id scripts[JOBD_OP_COUNT] = {
		S_STOP,	   S_RESUME,	   S_FORCE_STOP,   S_CANCEL,
		S_RESTART, S_LOW_PRIORITY, S_LOW_PRIORITY,
	};
	struct store_args a = { 0 };
	redisReply *r;

	store_args_addf(&a, "%lld", (long long)s->conf->retention_stats);
	store_args_add(&a, ACTOR);
	if (op == JOBD_OP_LOW_PRIORITY || op == JOBD_OP_LOW_PRIORITY_OFF)
		store_args_add(&a, op == JOBD_OP_LOW_PRIORITY ? "1" : "0");
	for (size_t i = 0; i < n; i++)
		store_args_addf(&a, "%lld", (long long)ids[i]);
	r = store_eval(s->st, scripts[op], &a);
	store_args_release(&a);
	if (!r)
		return -1;
	for (size_t i = 0; i < r->elements; i++)
		buf_add(&s->ans, " %s", r->element[i]->str);
	freeReplyObject(r);
	return 0;
}

/* Stop, resume, force-stop, cancel, restart, low priority on and off. */
static void step_op(bool dies)
{
	static const enum jobd_op ops[] = {
		JOBD_OP_STOP,	      JOBD_OP_STOP,
		JOBD_OP_STOP,	      JOBD_OP_RESUME,
		JOBD_OP_RESUME,	      JOBD_OP_RESUME,
		JOBD_OP_FORCE_STOP,   JOBD_OP_CANCEL,
		JOBD_OP_CANCEL,	      JOBD_OP_CANCEL,
		JOBD_OP_RESTART,      JOBD_OP_RESTART,
		JOBD_OP_LOW_PRIORITY, JOBD_OP_LOW_PRIORITY_OFF,
	};
	enum jobd_op op = ops[below((int)(sizeof(ops) / sizeof(ops[0])))];
	int64_t ids[3];
	size_t n = chance(80) ? 1 : 2 + (size_t)below(2);

	/* A cancel's window is the one that matters most: until its
	 * cascade, the canceled root's descendants are as they were. */
	if (dies && chance(50))
		op = JOBD_OP_CANCEL;
	buf_add(&desc, "%s%s", jobd_op_names[op],
		dies ? " (the operator dies before the cascade)" : "");
	for (size_t i = 0; i < n; i++) {
		ids[i] = pick_job();
		buf_add(&desc, " %lld", (long long)ids[i]);
	}
	if (dies) {
		BOTH(s, op_dies_on(s, op, ids, n));
	} else {
		BOTH(s, op_on(s, op, ids, n));
	}
}

/* The configuration's limits into S's store. */
static int limits_on(struct side *s)
{
	bool changed;

	return jobd_store_limits_write(s->st, "twin", &changed, NULL, 0);
}

static int purge_on(struct side *s, int64_t cutoff, size_t max)
{
	size_t deleted;
	bool more;

	if (jobd_store_purge(s->st, cutoff, max, &deleted, &more) < 0)
		return -1;
	buf_add(&s->ans, " %zu%s", deleted, more ? " more" : "");
	fsck_now |= deleted > 0;
	return 0;
}

/* Retention: trees that ended a while ago go, a few jobs a call. */
static void step_purge(void)
{
	static const int64_t ages[] = { 0, 5000, 60000, 600000 };
	int64_t cutoff = now - ages[below(4)];
	size_t max = 1 + (size_t)below(20);

	buf_add(&desc, "purge before %lld, %zu", (long long)(now - cutoff),
		max);
	BOTH(s, purge_on(s, cutoff, max));
}

/* Moves the clock on: mostly a little, sometimes past every lease or
 * into a later hour (statistics roll up and expire). */
static void clock_step(void)
{
	int64_t d;

	if (chance(70))
		d = below(1500);
	else if (chance(80))
		d = 1500 + below(15000);
	else if (chance(85))
		d = 20000 + below(120000);
	else
		d = 600000 + (int64_t)below(3) * 3600000;
	clock_set(now + d);
	buf_add(&desc, "+%lldms: ", (long long)d);
}

/* Changes the limits of capped and paced, as a reload of another
 * configuration would (limits.lua): to none, to a tighter or a looser
 * one, with jobs held or running. */
static void step_limits(void)
{
	static const int conc[] = { 0, 1, 2, 3 };
	static const struct jobd_rate rates[] = {
		{ 0, 0 }, { 1, 2000 }, { 2, 5000 }, { 4, 60000 }
	};
	int c = conc[below(4)];
	struct jobd_rate r = rates[below(4)];

	buf_add(&desc, "limits capped %d, paced %lld/%lldms", c, (long long)r.n,
		(long long)r.per_ms);
	for (int i = 0; i < 2; i++) {
		struct jobd_conf *conf = sides[i].conf;

		for (size_t k = 0; k < conf->types_count; k++) {
			if (strcmp(conf->types[k].name, "capped") == 0)
				conf->types[k].concurrency = c;
			if (strcmp(conf->types[k].name, "paced") == 0)
				conf->types[k].rate = r;
		}
	}
	BOTH(s, limits_on(s));
}

/* Changes the idempotency keys' window, as a reload of another
 * configuration would (key_window.lua): the keys made under the old one
 * are looked for in its buckets too, for two of its windows. Windows
 * that share starts (10m, 20m, 1h, 24h) make a bucket of both. The store
 * keeps one old window: a second change before the first one's keys
 * have expired is not made (docs/redis-keys.md, "Idempotency keys"). */
static int key_window_on(struct side *s)
{
	int64_t was;

	return jobd_store_key_window_write(s->st, &was);
}

static void step_key_window(void)
{
	static const int64_t windows[] = { 600000, 1200000, 3600000, 86400000 };
	static int64_t until; /* the old window's keys live until, ms */
	int64_t w = windows[below(4)], was = sides[0].conf->key_window;

	if (now < until || w == was) {
		buf_add(&desc, "key_window %lldms kept", (long long)was);
		return;
	}
	buf_add(&desc, "key_window %lldms", (long long)w);
	until = now + 2 * was;
	for (int i = 0; i < 2; i++)
		sides[i].conf->key_window = w;
	BOTH(s, key_window_on(s));
}

/* One step, chosen by weight (in percent): mostly creates, claims and
 * finishes, as jobd's own work is. */
static void run_step(void)
{
	int w = below(100);

	if (w < 22)
		step_create();
	else if (w < 42)
		step_claim();
	else if (w < 60)
		step_reports(FINISH);
	else if (w < 65)
		step_reports(REPORT);
	else if (w < 69)
		step_heartbeat();
	else if (w < 72)
		step_reports(HANDBACK);
	else if (w < 76)
		step_count(EXPIRE);
	else if (w < 89)
		step_op(false);
	else if (w < 92)
		step_op(true);
	else if (w < 95)
		step_count(CASCADES);
	else if (w < 96 && chance(50))
		step_limits();
	else if (w < 96)
		step_key_window();
	else
		step_purge();
}

/* The number of calls of command NAME in S's INFO commandstats. */
static long long calls_of(struct side *s, const char *name)
{
	redisReply *r = cmd(s, "INFO commandstats");
	char want[64];
	const char *p;
	long long n = 0;

	snprintf(want, sizeof(want), "cmdstat_%s:calls=", name);
	p = strstr(r->str, want);
	if (p)
		n = strtoll(p + strlen(want), NULL, 10);
	freeReplyObject(r);
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: module_twin_driver --lua SOCKET --module SOCKET "
		"--clock FILE [--seed N] [--steps N] [--fsck-every N] [--full-every N] "
		"[--replica SOCKET]\n"
		"       module_twin_driver --clock FILE --reset-clock\n");
	exit(2);
}

/* A whole number from option NAME's argument V. */
static long long number(const char *name, const char *v)
{
	char *end;
	long long n = strtoll(v, &end, 10);

	if (!*v || *end || n < 0)
		die("bad number \"%s\" for %s", v, name);
	return n;
}

int main(int argc, char **argv)
{
	const char *lua = NULL, *mod = NULL, *clock = NULL;
	long steps = 1000, fsck_every = 25, full_every = 25;
	bool reset = false;
	long long ran[3];

	seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--reset-clock") == 0) {
			reset = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(o, "--lua") == 0)
			lua = v;
		else if (strcmp(o, "--module") == 0)
			mod = v;
		else if (strcmp(o, "--clock") == 0)
			clock = v;
		else if (strcmp(o, "--seed") == 0)
			seed = (uint64_t)number(o, v);
		else if (strcmp(o, "--steps") == 0)
			steps = (long)number(o, v);
		else if (strcmp(o, "--fsck-every") == 0)
			fsck_every = (long)number(o, v);
		else if (strcmp(o, "--full-every") == 0)
			full_every = (long)number(o, v);
		else if (strcmp(o, "--replica") == 0)
			replica.sock = v;
		else
			usage();
	}
	if (!clock || (!reset && (!lua || !mod)) || full_every == 0)
		usage();
	clock_open(clock, true);
	if (reset)
		return 0;
	jobd_log_set_level(JOBD_LOG_ERROR);
	rng = seed;
	/* Every seed starts at its own second of the first hour. */
	clock_set(EPOCH_MS + (int64_t)below(3600) * 1000);
	side_open(&sides[0], lua);
	side_open(&sides[1], mod);
	if (replica.sock)
		replica.c = connect_to(replica.sock);
	if (sides[0].st->module || !sides[1].st->module)
		die("%s must be a Redis without jobd's module and %s one "
		    "with it, of this build",
		    lua, mod);
	for (step = 1; step <= steps; step++) {
		desc.n = 0;
		buf_add(&desc, "%ld ", step);
		clock_step();
		run_step();
		lines_add(&history, "%s", buf_str(&desc));
		compare(step % full_every == 0 || step == steps);
		/* The two hold the same: one fsck tells for both, but
		 * now and then both are asked. */
		if (fsck_every > 0 && step % fsck_every == 0)
			fsck_sides(2);
		else if (fsck_now)
			fsck_sides(1);
		fsck_now = false;
	}
	step--;
	fsck_sides(2);
	if (calls_of(&sides[0], "jobd.create") > 0)
		die("the Lua-only Redis ran JOBD.CREATE");
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = { "create", "claim",
						     "finish" };
		char name[16];

		snprintf(name, sizeof(name), "jobd.%s", names[i]);
		ran[i] = calls_of(&sides[1], name);
		/* Else the run compared Lua with Lua. */
		if (steps >= 200 && ran[i] == 0)
			die("seed %llu: the module never ran JOBD.%s in %ld "
			    "steps",
			    (unsigned long long)seed, names[i], steps);
	}
	printf("seed %llu: %ld steps alike, %zu jobs; the module ran "
	       "JOBD.CREATE %lld, JOBD.CLAIM %lld, JOBD.FINISH %lld times\n",
	       (unsigned long long)seed, steps, njobs, ran[0], ran[1], ran[2]);
	for (int i = 0; i < 2; i++)
		side_close(&sides[i]);
	redisFree(replica.c);
	lines_release(&history);
	free(desc.p);
	free(jobs);
	return 0;
}
