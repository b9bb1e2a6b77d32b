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
	snprintf(mig, sizeof(mig), "[%d->-", slot);
	snprintf(imp, sizeof(imp), "[%d-<-", slot);
	for (line = r->str; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[8192];

		snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
		if (strstr(buf, "myself")) {
			if ((p = strstr(buf, mig)))
				state = 'm', p += strlen(mig);
			else if ((p = strstr(buf, imp)))
				state = 'i', p += strlen(imp);
			if (state)
				snprintf(peer, peer_size, "%.*s",
					 (int)strcspn(p, "]"), p);
			break;
		}
		line = end ? end + 1 : NULL;
	}
	freeReplyObject(r);
	return state;
}

/*
 * Whether P:hold exists on node N (1, 0; -1 with the error set). During
 * the migration a source answers ASK for a key gone ahead (0: not here),
 * and a target serves one only after ASKING (IMPORTING).
 */
static int hold_on(struct jobd_store *st, struct node *n, bool importing)
{
	redisReply *r;
	int h;

	if (importing) {
		if (!(r = node_call(st, n, "ASKING", "ASKING")))
			return -1;
		freeReplyObject(r);
	}
	r = store_link_command(n->c, "EXISTS %s%s", st->conf->prefix, K_HOLD);
	if (!r) {
		store_set_err(st, "redis at %s: EXISTS of the hold: %s",
			      n->addr, store_link_errstr(n->c));
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR &&
	    jobd_cluster_redirect(r) == JOBD_CLUSTER_ASK) {
		freeReplyObject(r);
		return 0;
	}
	if (r->type != REDIS_REPLY_INTEGER) {
		store_set_err(st, "redis at %s refused EXISTS of the hold: %s",
			      n->addr,
			      r->type == REDIS_REPLY_ERROR ? r->str : "?");
		freeReplyObject(r);
		return -1;
	}
	h = r->integer > 0;
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
	k = strstr(r->str, id) != NULL;
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

	snprintf(hold, sizeof(hold), "%s%s", st->conf->prefix, K_HOLD);
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
	switch (hold_on(st, src, false)) {
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

/* CLUSTER SETSLOT SLOT NODE ID on the target, the source, then every
 * other primary (they learn it by gossip too: a refusal there is said,
 * not an error). */
static int give_slot(struct jobd_store *st, struct node *src, struct node *dst,
		     jobd_store_say fn, void *arg)
{
	char slot[16];
	redisReply *r;

	snprintf(slot, sizeof(slot), "%d", st->slot);
	if (!(r = node_call(st, dst, "CLUSTER SETSLOT NODE",
			    "CLUSTER SETSLOT %d NODE %s", st->slot, dst->id)))
		return -1;
	freeReplyObject(r);
	if (!(r = node_call(st, src, "CLUSTER SETSLOT NODE",
			    "CLUSTER SETSLOT %d NODE %s", st->slot, dst->id)))
		return -1;
	freeReplyObject(r);
	for (int i = 0; i < jobd_cluster_primaries(st->cl); i++) {
		const char *argv[] = { "CLUSTER", "SETSLOT", slot, "NODE",
				       dst->id };
		size_t lens[5];
		const char *addr;
		int s = jobd_cluster_primary(st->cl, i, &addr);

		if (s < 0 || strcmp(addr, src->addr) == 0 ||
		    strcmp(addr, dst->addr) == 0)
			continue;
		for (int k = 0; k < 5; k++)
			lens[k] = strlen(argv[k]);
		r = jobd_cluster_command(st->cl, s, 5, argv, lens);
		if (!r || r->type == REDIS_REPLY_ERROR)
			say(fn, arg,
			    "warning: %s did not take the new owner of slot "
			    "%d (%s): it learns it from the others",
			    addr, st->slot,
			    r ? r->str : jobd_cluster_errstr(st->cl));
		if (r)
			freeReplyObject(r);
	}
	return 0;
}

/* Lets the calls go (hold.lua release) on the slot's owner now. */
static int release(struct jobd_store *st, jobd_store_say fn, void *arg)
{
	struct store_args a = { 0 };
	redisReply *r;

	/* The store's link may still be the old owner's: the next call
	 * reads the slot map again. */
	store_drop(&st->c);
	store_args_add(&a, "release");
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

int jobd_store_move(struct jobd_store *st, const char *to, const char *by,
		    bool dry_run, jobd_store_say fn, void *arg)
{
	struct node src = { 0 }, dst = { 0 };
	char peer[64] = "", tpeer[64] = "";
	int rc = JOBD_STORE_ERR_REDIS, state, tstate;
	long long moved = 0, count = 0;
	struct jobd_redis_address at;
	char owner[sizeof(st->owner)];
	int64_t t0 = jobd_util_mono_ms();
	redisReply *r;

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
	if ((state = slot_state(st, &src, st->slot, peer, sizeof(peer))) < 0 ||
	    (tstate = slot_state(st, &dst, st->slot, tpeer, sizeof(tpeer))) < 0)
		goto out;
	if (state == 'm' && strcmp(peer, dst.id) != 0) {
		store_set_err(st,
			      "slot %d of [redis] prefix \"%s\" is migrating "
			      "from %s to node %s, not to %s: finish that move "
			      "first (jobctl cluster move --to that node)",
			      st->slot, st->conf->prefix, src.addr, peer,
			      dst.addr);
		goto out;
	}
	if (strcmp(src.id, dst.id) == 0) {
		int h = hold_on(st, &dst, false);

		if (h < 0)
			goto out;
		if (!h) {
			say(fn, arg,
			    "slot %d of prefix \"%s\" is at %s already: "
			    "nothing to move",
			    st->slot, st->conf->prefix, dst.addr);
			rc = 0;
			goto out;
		}
		/* Interrupted after the slot moved: what is left. */
		say(fn, arg, "slot %d is at %s; releasing the calls held",
		    st->slot, dst.addr);
		if (!dry_run)
			rc = release(st, fn, arg);
		else
			rc = 0;
		goto out;
	}
	if (!(r = node_call(st, &src, "CLUSTER COUNTKEYSINSLOT",
			    "CLUSTER COUNTKEYSINSLOT %d", st->slot)))
		goto out;
	count = r->integer;
	freeReplyObject(r);
	say(fn, arg, "%s slot %d of prefix \"%s\" (%lld keys) from %s to %s%s",
	    dry_run ? "would move" : "moving", st->slot, st->conf->prefix,
	    count, src.addr, dst.addr,
	    state == 'm' ? ", resuming a move under way" : "");
	if (dry_run) {
		say(fn, arg,
		    "every jobd's calls would wait while the keys move "
		    "(held), and their leases be lengthened by that time");
		rc = 0;
		goto out;
	}
	/* A migration under way without the hold (a reshard by hand) has
	 * let calls run against a slot in pieces: not ours to go on with. */
	if (state == 'm') {
		int h = hold_on(st, &src, false);

		if (h == 0)
			h = hold_on(st, &dst, true);
		if (h < 0)
			goto out;
		if (h == 0) {
			store_set_err(
				st,
				"slot %d of [redis] prefix \"%s\" is "
				"migrating from %s to %s without jobctl "
				"cluster move's hold (a reshard by hand?): "
				"stop every jobd, finish it with "
				"redis-cli --cluster fix, then run "
				"jobctl fsck",
				st->slot, st->conf->prefix, src.addr, dst.addr);
			goto out;
		}
	}
	/* Held first: while the slot is not migrating yet, P:hold is on the
	 * source (a move resumed has it already, maybe gone ahead). */
	if (state != 'm') {
		struct store_args a = { 0 };

		store_args_add(&a, "set");
		store_args_add(&a, dst.addr);
		store_args_add(&a, by);
		r = store_eval(st, S_HOLD, &a);
		store_args_release(&a);
		if (!r)
			goto out;
		freeReplyObject(r);
		say(fn, arg, "calls held");
	}
	if (tstate != 'i' &&
	    !(r = node_call(st, &dst, "CLUSTER SETSLOT IMPORTING",
			    "CLUSTER SETSLOT %d IMPORTING %s", st->slot,
			    src.id)))
		goto out;
	if (tstate != 'i')
		freeReplyObject(r);
	if (state != 'm' &&
	    !(r = node_call(st, &src, "CLUSTER SETSLOT MIGRATING",
			    "CLUSTER SETSLOT %d MIGRATING %s", st->slot,
			    dst.id)))
		goto out;
	if (state != 'm')
		freeReplyObject(r);
	if (move_keys(st, &src, &dst, fn, arg, &moved) < 0 ||
	    give_slot(st, &src, &dst, fn, arg) < 0)
		goto out;
	say(fn, arg, "moved %lld keys; slot %d is at %s", moved, st->slot,
	    dst.addr);
	if ((rc = release(st, fn, arg)) == 0)
		say(fn, arg, "done in %.1f s",
		    (double)(jobd_util_mono_ms() - t0) / 1000.0);
out:
	store_drop(&src.c);
	store_drop(&dst.c);
	return rc;
}
