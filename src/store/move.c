/*
 * move: moves the slot of the prefix's hash tag to another primary of the
 * Redis Cluster while jobd runs (jobctl cluster move; docs/scaling.md,
 * "Moving the slot").
 *
 * A function of jobd derives its keys from the prefix and declares none,
 * so Redis checks each key when the function reaches it: while a slot
 * migrates, a function that reaches a key already moved fails there,
 * after the writes it made before. So the calls are held first: P:hold
 * is the first key every function and module command reads (lib.lua
 * hold_check, the module's hold_refuses), and while it exists they stop
 * there, before any write ("HELD ..."; the callers retry as after any
 * Redis error). Then the keys move with MIGRATE, P:hold last: once it has
 * gone ahead, the old node refuses it as a key not here (the function
 * stops at that first read again) and the new one does not serve the
 * slot yet. The slot is given to the new node, which then holds P:hold;
 * hold.lua's release lengthens every lease by the time held (no
 * heartbeat could renew one) and deletes it. Plain commands of the store
 * touch one key each, which Redis moves whole, so they need no hold.
 *
 * Every step can be repeated: a move interrupted (jobctl killed, a node
 * unreachable) is resumed by running it again with the same target; the
 * calls stay held until it is done.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "store/cluster.h"
#include "store/schema.h" /* generated from src/store/schema.def */
#include "store/store_int.h"

#define MOVE_BATCH 1000	 /* keys per MIGRATE */
#define MIGRATE_MS 10000 /* MIGRATE's timeout */

bool jobd_store_held(const struct jobd_store *st, int64_t *since)
{
	const char *p = strstr(st->err, "HELD ");
	const char *s = p ? strstr(p, "since ") : NULL;
	char num[24];
	size_t n;

	if (!s)
		return false;
	s += 6;
	n = strspn(s, "0123456789");
	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, s, n);
	num[n] = '\0';
	return jobd_util_parse_i64(num, since) == 0;
}

/* A node of the move: its link, address and id. */
struct node {
	struct store_link *c;
	char addr[270]; /* host:port */
	struct jobd_redis_address at;
	char id[64];
};

static void say(jobd_store_say fn, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(jobd_store_say fn, void *arg, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fn(arg, line);
}

/* Runs FMT on node N: its reply, or NULL with the error set (the node
 * named; an error reply is one too). */
static redisReply *node_call(struct jobd_store *st, struct node *n,
			     const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static redisReply *node_call(struct jobd_store *st, struct node *n,
			     const char *what, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = store_link_vcommand(n->c, fmt, ap);
	va_end(ap);
	if (!r) {
		store_set_err(st, "redis at %s: %s: %s", n->addr, what,
			      store_link_errstr(n->c));
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		store_set_err(st, "redis at %s refused %s: %s", n->addr, what,
			      r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* Connects node N at ADDR and reads its id; 0 or -1 with the error set. */
static int node_open(struct jobd_store *st, struct node *n, const char *addr)
{
	char err[512];
	redisReply *r;

	snprintf(n->addr, sizeof(n->addr), "%s", addr);
	if (jobd_conf_redis_address(addr, &n->at, err, sizeof(err)) < 0) {
		store_set_err(st, "jobctl cluster move: the node \"%s\": %s",
			      addr, err);
		return -1;
	}
	n->at.tls = st->addr.tls;
	if (!(n->c = store_link_at(st, &n->at, n->addr)))
		return -1;
	if (!(r = node_call(st, n, "CLUSTER MYID", "CLUSTER MYID")))
		return -1;
	snprintf(n->id, sizeof(n->id), "%s", r->str ? r->str : "");
	freeReplyObject(r);
	return 0;
}

/*
 * What node N says of SLOT in its own line of CLUSTER NODES: 'm' when it
 * is migrating it (to the node id put in PEER), 'i' when importing it
 * (from PEER), 0 when neither; -1 with the error set.
 */
static int slot_state(struct jobd_store *st, struct node *n, int slot,
		      char *peer, size_t peer_size)
{
	char mig[32], imp[32];
	const char *line, *p;
	redisReply *r;
	int state = 0;

	if (!(r = node_call(st, n, "CLUSTER NODES", "CLUSTER NODES")))
		return -1;
	if (r->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		store_set_err(st, "redis at %s: CLUSTER NODES: not a text",
			      n->addr);
		return -1;
	}
	snprintf(mig, sizeof(mig), "[%d->-", slot);
	snprintf(imp, sizeof(imp), "[%d-<-", slot);
	for (line = r->str; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		/* The whole line: a node's slot ranges come before its
		 * marks, however many. */
		char *buf = strndup(line, len);

		if (!buf) {
			freeReplyObject(r);
			store_set_err(st, "out of memory");
			return -1;
		}
		if (strstr(buf, "myself")) {
			if ((p = strstr(buf, mig)))
				state = 'm', p += strlen(mig);
			else if ((p = strstr(buf, imp)))
				state = 'i', p += strlen(imp);
			if (state)
				snprintf(peer, peer_size, "%.*s",
					 (int)strcspn(p, "]"), p);
			free(buf);
			break;
		}
		free(buf);
		line = end ? end + 1 : NULL;
	}
	freeReplyObject(r);
	return state;
}

/*
 * Whether P:hold exists on node N: 1 with its "since" in *SINCE, 0, or -1
 * with the error set. During the migration a source answers ASK for a key
 * gone ahead (0: not here), and a target serves one only after ASKING
 * (IMPORTING).
 */
static int hold_on(struct jobd_store *st, struct node *n, bool importing,
		   int64_t *since)
{
	redisReply *r;
	int h = 0;

	*since = 0;
	if (importing) {
		if (!(r = node_call(st, n, "ASKING", "ASKING")))
			return -1;
		freeReplyObject(r);
	}
	r = store_link_command(n->c, "HGET %s%s since", st->prefix, K_HOLD);
	if (!r) {
		store_set_err(st, "redis at %s: HGET of the hold: %s", n->addr,
			      store_link_errstr(n->c));
		return -1;
	}
	if (r->type == REDIS_REPLY_STRING) {
		h = 1;
		if (jobd_util_parse_i64(r->str, since) < 0)
			*since = 0;
	} else if (r->type == REDIS_REPLY_ERROR &&
		   jobd_cluster_redirect(r) != JOBD_CLUSTER_ASK) {
		store_set_err(st, "redis at %s refused HGET of the hold: %s",
			      n->addr, r->str);
		h = -1;
	}
	freeReplyObject(r);
	return h;
}

/* Whether node N knows node ID (CLUSTER NODES): 1, 0, -1 with the error
 * set. */
static int knows(struct jobd_store *st, struct node *n, const char *id)
{
	redisReply *r = node_call(st, n, "CLUSTER NODES", "CLUSTER NODES");
	int k;

	if (!r)
		return -1;
	k = r->type == REDIS_REPLY_STRING && strstr(r->str, id) != NULL;
	freeReplyObject(r);
	return k;
}

/* MIGRATE of the keys of KEYS (N of them) from SRC to DST. */
static int migrate(struct jobd_store *st, struct node *src, struct node *dst,
		   redisReply *keys, size_t n)
{
	const char **argv = calloc(n + 12, sizeof(*argv));
	size_t *lens = calloc(n + 12, sizeof(*lens));
	char port[16], timeout[16];
	int argc = 0, rc = -1;
	redisReply *r;

	if (!argv || !lens) {
		store_set_err(st, "out of memory");
		goto out;
	}
	snprintf(port, sizeof(port), "%d", dst->at.port);
	snprintf(timeout, sizeof(timeout), "%d", MIGRATE_MS);
	argv[argc++] = "MIGRATE";
	argv[argc++] = dst->at.host;
	argv[argc++] = port;
	argv[argc++] = "";
	argv[argc++] = "0";
	argv[argc++] = timeout;
	argv[argc++] = "REPLACE";
	if (st->conf->redis_password && st->conf->redis_user) {
		argv[argc++] = "AUTH2";
		argv[argc++] = st->conf->redis_user;
		argv[argc++] = st->conf->redis_password;
	} else if (st->conf->redis_password) {
		argv[argc++] = "AUTH";
		argv[argc++] = st->conf->redis_password;
	}
	argv[argc++] = "KEYS";
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	for (size_t i = 0; i < n; i++) {
		argv[argc] = keys->element[i]->str;
		lens[argc++] = keys->element[i]->len;
	}
	r = store_link_command_argv(src->c, argc, argv, lens);
	if (!r) {
		store_set_err(st, "redis at %s: MIGRATE to %s: %s", src->addr,
			      dst->addr, store_link_errstr(src->c));
		goto out;
	}
	if (r->type == REDIS_REPLY_ERROR)
		store_set_err(st, "redis at %s refused MIGRATE to %s: %s",
			      src->addr, dst->addr, r->str);
	else
		rc = 0;
	freeReplyObject(r);
out:
	free(argv);
	free(lens);
	return rc;
}

/*
 * Moves the keys of the slot from SRC to DST, P:hold last; *MOVED counts
 * them. 0 or -1 with the error set.
 */
static int move_keys(struct jobd_store *st, struct node *src, struct node *dst,
		     jobd_store_say fn, void *arg, long long *moved)
{
	char hold[512];

	snprintf(hold, sizeof(hold), "%s%s", st->prefix, K_HOLD);
	for (;;) {
		redisReply *r = node_call(st, src, "CLUSTER GETKEYSINSLOT",
					  "CLUSTER GETKEYSINSLOT %d %d",
					  st->slot, MOVE_BATCH + 1);
		size_t n = 0;

		if (!r)
			return -1;
		/* P:hold stays until the rest has moved. */
		for (size_t i = 0; i < r->elements; i++) {
			redisReply *k = r->element[i];

			if (k->len == strlen(hold) &&
			    memcmp(k->str, hold, k->len) == 0)
				continue;
			/* (swapped, so each is freed once with R) */
			r->element[i] = r->element[n];
			r->element[n++] = k;
		}
		if (n > MOVE_BATCH)
			n = MOVE_BATCH;
		if (n == 0) {
			freeReplyObject(r);
			break;
		}
		if (migrate(st, src, dst, r, n) < 0) {
			freeReplyObject(r);
			return -1;
		}
		*moved += (long long)n;
		freeReplyObject(r);
		if (*moved % (MOVE_BATCH * 100) == 0)
			say(fn, arg, "moved %lld keys", *moved);
	}
	int64_t since;

	switch (hold_on(st, src, false, &since)) {
	case -1:
		return -1;
	case 1: {
		redisReply k = { .type = REDIS_REPLY_STRING,
				 .str = hold,
				 .len = strlen(hold) };
		redisReply *e[1] = { &k };
		redisReply keys = { .type = REDIS_REPLY_ARRAY,
				    .elements = 1,
				    .element = e };

		if (migrate(st, src, dst, &keys, 1) < 0)
			return -1;
		(*moved)++;
	}
	}
	return 0;
}

/* Whether the comma-separated FLAGS of a CLUSTER NODES line hold FLAG. */
static bool has_flag(const char *flags, const char *flag)
{
	size_t n = strlen(flag);

	for (const char *p = flags; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, flag, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

/* The primaries of the cluster but the target, as the move found them. */
struct masters {
	struct node *v;
	int *state; /* 'm', 'i' or 0: the node's mark of the slot */
	char (*peer)[64];
	long long *keys; /* its keys of the slot */
	size_t n;
};

static void masters_free(struct masters *m)
{
	for (size_t i = 0; i < m->n; i++)
		store_drop(&m->v[i].c);
	free(m->v);
	free(m->state);
	free(m->peer);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

/*
 * Every primary DST's CLUSTER NODES names, but DST: connected (through a
 * link of its own, at the address CLUSTER NODES gives), with its mark of
 * the slot and its keys of it. A primary flagged failed is passed over
 * (said); one that cannot be reached fails the survey. 0 or -1 with the
 * error set.
 */
static int survey(struct jobd_store *st, struct node *dst, struct masters *m,
		  jobd_store_say fn, void *arg)
{
	char *text = NULL;
	const char *line;
	redisReply *r;
	size_t cap = 0;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (!(r = node_call(st, dst, "CLUSTER NODES", "CLUSTER NODES")))
		return -1;
	if (r->type == REDIS_REPLY_STRING)
		text = strdup(r->str);
	freeReplyObject(r);
	if (!text) {
		store_set_err(st, "redis at %s: CLUSTER NODES: no text",
			      dst->addr);
		return -1;
	}
	for (line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *buf = strndup(line, len), id[64], addr[300], flags[256];
		struct node n = { 0 };
		size_t k;

		line = end ? end + 1 : line + len;
		if (!buf) {
			store_set_err(st, "out of memory");
			goto out;
		}
		k = (size_t)sscanf(buf, "%63s %299s %255s", id, addr, flags);
		free(buf);
		if (k != 3 || !has_flag(flags, "master") ||
		    has_flag(flags, "myself") || has_flag(flags, "noaddr"))
			continue;
		addr[strcspn(addr, "@")] = '\0';
		if (has_flag(flags, "fail")) {
			say(fn, arg,
			    "warning: %s (node %s) is failed: passed over",
			    addr, id);
			continue;
		}
		if (m->n == cap) {
			cap = cap ? cap * 2 : 8;
			if (jobd_util_resize(&m->v, cap, sizeof(*m->v)) < 0 ||
			    jobd_util_resize(&m->state, cap,
					     sizeof(*m->state)) < 0 ||
			    jobd_util_resize(&m->peer, cap, sizeof(*m->peer)) <
				    0 ||
			    jobd_util_resize(&m->keys, cap, sizeof(*m->keys)) <
				    0) {
				store_set_err(st, "out of memory");
				goto out;
			}
		}
		if (node_open(st, &n, addr) < 0) {
			store_drop(&n.c);
			goto out;
		}
		m->v[m->n] = n;
		m->peer[m->n][0] = '\0';
		if ((m->state[m->n] = slot_state(st, &m->v[m->n], st->slot,
						 m->peer[m->n],
						 sizeof(m->peer[0]))) < 0) {
			m->n++;
			goto out;
		}
		r = node_call(st, &m->v[m->n], "CLUSTER COUNTKEYSINSLOT",
			      "CLUSTER COUNTKEYSINSLOT %d", st->slot);
		m->n++;
		if (!r)
			goto out;
		m->keys[m->n - 1] =
			r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
		freeReplyObject(r);
		if (m->keys[m->n - 1] < 0) {
			store_set_err(st,
				      "%s: CLUSTER COUNTKEYSINSLOT: not a "
				      "number",
				      addr);
			goto out;
		}
	}
	rc = 0;
out:
	free(text);
	return rc;
}

/*
 * Refuses when a primary of M but SRC holds keys of the slot (a move to
 * it cut off, by a failover of its source say: given away, they would be
 * lost). 0 or -1 with the error set.
 */
static int keys_elsewhere(struct jobd_store *st, const struct masters *m,
			  const struct node *src, const struct node *dst)
{
	for (size_t i = 0; i < m->n; i++) {
		if ((src && strcmp(m->v[i].id, src->id) == 0) ||
		    m->keys[i] == 0)
			continue;
		store_set_err(st,
			      "%s holds %lld keys of slot %d, which is at %s: "
			      "a move to %s was cut off (a failover of its "
			      "source?): stop every jobd, finish it with "
			      "redis-cli --cluster fix, then run jobctl fsck",
			      m->v[i].addr, m->keys[i], st->slot, dst->addr,
			      m->v[i].addr);
		return -1;
	}
	return 0;
}

/*
 * Gives the slot to DST: CLUSTER SETSLOT NODE on DST, then on every
 * primary of M (the source among them, a primary without slots too),
 * after SETSLOT STABLE on those marked importing (NODE clears a
 * MIGRATING mark, and DST's own, but not another node's IMPORTING).
 * Gossip clears no mark: a source left marked would answer ASK for every
 * key it lacks once the slot came back, and a node left importing would
 * hold the move. Then checks that no primary marks the slot. 0 or -1
 * with the error set (the calls stay held: run the move again).
 */
static int settle(struct jobd_store *st, struct node *dst, struct masters *m)
{
	char peer[64];
	redisReply *r;
	int state;

	if (!(r = node_call(st, dst, "CLUSTER SETSLOT NODE",
			    "CLUSTER SETSLOT %d NODE %s", st->slot, dst->id)))
		return -1;
	freeReplyObject(r);
	for (size_t i = 0; i < m->n; i++) {
		struct node *n = &m->v[i];

		if (m->state[i] == 'i') {
			if (!(r = node_call(st, n, "CLUSTER SETSLOT STABLE",
					    "CLUSTER SETSLOT %d STABLE",
					    st->slot)))
				return -1;
			freeReplyObject(r);
		}
		if (!(r = node_call(st, n, "CLUSTER SETSLOT NODE",
				    "CLUSTER SETSLOT %d NODE %s", st->slot,
				    dst->id)))
			return -1;
		freeReplyObject(r);
	}
	for (size_t i = 0; i <= m->n; i++) {
		struct node *n = i < m->n ? &m->v[i] : dst;

		if ((state = slot_state(st, n, st->slot, peer, sizeof(peer))) <
		    0)
			return -1;
		if (state) {
			store_set_err(st,
				      "%s still marks slot %d as %s: run the "
				      "move again",
				      n->addr, st->slot,
				      state == 'm' ? "migrating" : "importing");
			return -1;
		}
	}
	return 0;
}

/*
 * Lets the calls go (hold.lua release) on the slot's owner now: the hold
 * of a move to TO ("" for any), its leases lengthened by the time held
 * as the owner's clock counts it, and at least MIN_HELD ms (as the
 * source's counted it: the clocks of two nodes may differ).
 */
static int release(struct jobd_store *st, const char *to, int64_t min_held,
		   jobd_store_say fn, void *arg)
{
	struct store_args a = { 0 };
	redisReply *r;

	/* The store's link may still be the old owner's: the next call
	 * reads the slot map again. */
	store_drop(&st->c);
	store_args_add(&a, "release");
	store_args_add(&a, to);
	store_args_addf(&a, "%lld", (long long)min_held);
	r = store_eval(st, S_HOLD, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->integer >= 0)
		say(fn, arg,
		    "calls released; %lld leases lengthened by the time held",
		    r->integer);
	freeReplyObject(r);
	return 0;
}

/* Node N's clock (TIME), ms; -1 with the error set. */
static int64_t node_time(struct jobd_store *st, struct node *n)
{
	redisReply *r = node_call(st, n, "TIME", "TIME");
	int64_t ms = -1;

	if (!r)
		return -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
		     strtoll(r->element[1]->str, NULL, 10) / 1000;
	else
		store_set_err(st, "redis at %s: TIME: not two numbers",
			      n->addr);
	freeReplyObject(r);
	return ms;
}

/*
 * The keys of node N whose name starts with PREFIX (SCAN MATCH, the
 * glob's special characters escaped): compared with the slot's count,
 * it tells whether the slot also holds keys of another deployment,
 * which the hold does not hold. -1 with the error set.
 */
static long long prefix_keys(struct jobd_store *st, struct node *n)
{
	char pat[600], cursor[32] = "0";
	const char *p = st->prefix;
	long long count = 0;
	size_t k = 0;

	for (; *p && k < sizeof(pat) - 3; p++) {
		if (strchr("*?[]\\", *p))
			pat[k++] = '\\';
		pat[k++] = *p;
	}
	pat[k++] = '*';
	pat[k] = '\0';
	do {
		redisReply *r = node_call(st, n, "SCAN",
					  "SCAN %s MATCH %s COUNT 10000",
					  cursor, pat);

		if (!r)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			store_set_err(st, "redis at %s: SCAN: bad reply",
				      n->addr);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		count += (long long)r->element[1]->elements;
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return count;
}

/* Field I of hold.lua's reply to set ({to, by, since, node}), or "?". */
static const char *hold_field(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_STRING)
		return "?";
	return r->element[i]->str;
}

int jobd_store_move(struct jobd_store *st, const char *to, const char *by,
		    bool dry_run, jobd_store_say fn, void *arg)
{
	struct node src = { 0 }, dst = { 0 };
	struct masters m = { 0 };
	char peer[64] = "", tpeer[64] = "";
	int rc = JOBD_STORE_ERR_REDIS, state, tstate, h;
	long long moved = 0, count = 0, ours = 0;
	struct jobd_redis_address at;
	char owner[sizeof(st->owner)];
	int64_t t0 = jobd_util_mono_ms(), since = 0, now;
	redisReply *r;

	if (st->nsh) {
		store_set_err(st, "moving the shards of a store across shards "
				  "is not built yet (docs/scaling.md, "
				  "\"Shards\")");
		return JOBD_STORE_ERR_INVALID;
	}

	if (!st->cl) {
		store_set_err(st,
			      "redis at %s is not a cluster: jobctl cluster "
			      "move moves the slot of [redis] prefix between "
			      "the primaries of a Redis Cluster",
			      st->conf->redis_address);
		return JOBD_STORE_ERR_REDIS;
	}
	if (store_owner_find(st, &at) < 0)
		return JOBD_STORE_ERR_REDIS;
	snprintf(owner, sizeof(owner), "%s", st->owner);
	if (node_open(st, &dst, to) < 0 || node_open(st, &src, owner) < 0)
		goto out;
	if (!(r = node_call(st, &dst, "ROLE", "ROLE")))
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    strcmp(r->element[0]->str, "master") != 0) {
		store_set_err(st,
			      "jobctl cluster move: %s is not a primary "
			      "(ROLE): the slot can only go to a primary",
			      dst.addr);
		freeReplyObject(r);
		goto out;
	}
	freeReplyObject(r);
	switch (knows(st, &src, dst.id)) {
	case -1:
		goto out;
	case 0:
		store_set_err(st,
			      "jobctl cluster move: %s (node %s) is not in the "
			      "cluster of %s",
			      dst.addr, dst.id, src.addr);
		goto out;
	}
	/* Every primary reached before anything is held: one that cannot
	 * be would keep the calls held at the end. */
	if ((state = slot_state(st, &src, st->slot, peer, sizeof(peer))) < 0 ||
	    (tstate = slot_state(st, &dst, st->slot, tpeer, sizeof(tpeer))) <
		    0 ||
	    survey(st, &dst, &m, fn, arg) < 0)
		goto out;
	if (strcmp(src.id, dst.id) == 0) {
		/* Nothing to move; what an interrupted move left: marks on
		 * the other primaries (settled), the calls held. A move
		 * from here under way is not to be undone so. */
		if (state) {
			store_set_err(st,
				      "%s marks slot %d as %s node %s: a move "
				      "is under way; go on with it (jobctl "
				      "cluster move --to that node)",
				      dst.addr, st->slot,
				      state == 'm' ? "migrating to" :
						     "importing from",
				      peer);
			goto out;
		}
		if (keys_elsewhere(st, &m, NULL, &dst) < 0 ||
		    (h = hold_on(st, &dst, false, &since)) < 0)
			goto out;
		if (!h)
			say(fn, arg,
			    "slot %d of prefix \"%s\" is at %s already: "
			    "nothing to move",
			    st->slot, st->prefix, dst.addr);
		else
			say(fn, arg, "slot %d is at %s; %s the calls held",
			    st->slot, dst.addr,
			    dry_run ? "would release" : "releasing");
		if (dry_run)
			rc = 0;
		else if (settle(st, &dst, &m) == 0)
			rc = h ? release(st, "", 0, fn, arg) : 0;
		goto out;
	}
	if (state == 'm' && strcmp(peer, dst.id) != 0) {
		store_set_err(st,
			      "slot %d of [redis] prefix \"%s\" is migrating "
			      "from %s to node %s, not to %s: finish that move "
			      "first (jobctl cluster move --to that node)",
			      st->slot, st->prefix, src.addr, peer, dst.addr);
		goto out;
	}
	if (tstate == 'm') {
		store_set_err(st,
			      "%s marks slot %d as migrating to node %s, left "
			      "by an earlier move: run jobctl cluster move "
			      "--to %s to settle it first",
			      dst.addr, st->slot, tpeer, src.addr);
		goto out;
	}
	if (tstate == 'i' && strcmp(tpeer, src.id) != 0) {
		store_set_err(st,
			      "%s marks slot %d as importing from node %s, not "
			      "from %s: a move cut off (a failover of its "
			      "source?): stop every jobd, finish it with "
			      "redis-cli --cluster fix, then run jobctl fsck",
			      dst.addr, st->slot, tpeer, src.addr);
		goto out;
	}
	if (keys_elsewhere(st, &m, &src, &dst) < 0)
		goto out;
	if (!(r = node_call(st, &src, "CLUSTER COUNTKEYSINSLOT",
			    "CLUSTER COUNTKEYSINSLOT %d", st->slot)))
		goto out;
	count = r->integer;
	freeReplyObject(r);
	/* Keys of another deployment in the slot (its tag hashes alike)
	 * would move unheld: their calls would fail half way. */
	if (state != 'm' && (ours = prefix_keys(st, &src)) >= 0 &&
	    ours < count) {
		store_set_err(st,
			      "slot %d at %s holds %lld keys that do not "
			      "start with [redis] prefix \"%s\": another "
			      "deployment's, which this move would not hold; "
			      "stop it first",
			      st->slot, src.addr, count - ours, st->prefix);
		goto out;
	} else if (state != 'm' && ours < 0) {
		goto out;
	}
	say(fn, arg, "%s slot %d of prefix \"%s\" (%lld keys) from %s to %s%s",
	    dry_run ? "would move" : "moving", st->slot, st->prefix, count,
	    src.addr, dst.addr,
	    state == 'm' || tstate == 'i' ? ", resuming a move under way" : "");
	if (dry_run) {
		say(fn, arg,
		    "every jobd's calls would wait while the keys move "
		    "(held), and their leases be lengthened by that time");
		rc = 0;
		goto out;
	}
	if (state == 'm' || tstate == 'i') {
		/* A migration under way without the hold (a reshard by
		 * hand, or the source failed over in the middle of a
		 * move) has let calls run against a slot in pieces: not
		 * ours to go on with. */
		h = hold_on(st, &src, false, &since);
		if (h == 0)
			h = hold_on(st, &dst, true, &since);
		if (h < 0)
			goto out;
		if (h == 0) {
			store_set_err(
				st,
				"slot %d of [redis] prefix \"%s\" is "
				"migrating from %s to %s without jobctl "
				"cluster move's hold (a reshard by hand, or a "
				"failover of %s during a move?): stop every "
				"jobd, finish it with redis-cli --cluster fix, "
				"then run jobctl fsck",
				st->slot, st->prefix, src.addr, dst.addr,
				src.addr);
			goto out;
		}
	} else {
		/* Held first: while the slot is not migrating yet, P:hold
		 * is on the source. A hold there already is another move's
		 * unless it names this target. */
		struct store_args a = { 0 };
		bool theirs;

		store_args_add(&a, "set");
		store_args_add(&a, dst.addr);
		store_args_add(&a, by);
		store_args_add(&a, dst.id);
		r = store_eval(st, S_HOLD, &a);
		store_args_release(&a);
		if (!r)
			goto out;
		theirs = r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
			 r->element[3]->type != REDIS_REPLY_STRING ||
			 strcmp(r->element[3]->str, dst.id) != 0;
		if (!theirs && r->element[2]->type == REDIS_REPLY_STRING)
			jobd_util_parse_i64(r->element[2]->str, &since);
		if (theirs)
			store_set_err(
				st,
				"the calls are held by another move, to %s "
				"by %s: finish it (jobctl cluster move --to "
				"that node) or let it go (--to %s)",
				hold_field(r, 0), hold_field(r, 1), src.addr);
		freeReplyObject(r);
		if (theirs)
			goto out;
		say(fn, arg, "calls held");
	}
	if (tstate != 'i') {
		if (!(r = node_call(st, &dst, "CLUSTER SETSLOT IMPORTING",
				    "CLUSTER SETSLOT %d IMPORTING %s", st->slot,
				    src.id)))
			goto out;
		freeReplyObject(r);
	}
	if (state != 'm') {
		if (!(r = node_call(st, &src, "CLUSTER SETSLOT MIGRATING",
				    "CLUSTER SETSLOT %d MIGRATING %s", st->slot,
				    dst.id)))
			goto out;
		freeReplyObject(r);
	}
	if (move_keys(st, &src, &dst, fn, arg, &moved) < 0 ||
	    (now = node_time(st, &src)) < 0 || settle(st, &dst, &m) < 0)
		goto out;
	say(fn, arg, "moved %lld keys; slot %d is at %s", moved, st->slot,
	    dst.addr);
	if ((rc = release(st, dst.id, since > 0 ? now - since : 0, fn, arg)) ==
	    0)
		say(fn, arg, "done in %.1f s",
		    (double)(jobd_util_mono_ms() - t0) / 1000.0);
out:
	masters_free(&m);
	store_drop(&src.c);
	store_drop(&dst.c);
	return rc;
}
