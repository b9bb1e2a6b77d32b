/*
 * store/conn: the store's connection to Redis, and what every file of the
 * store shares (store_int.h): the calls' argument lists, running a Lua
 * function (FCALL, loading the library on first use) or a module command,
 * and the errors.
 *
 * Every state change is one Lua function (src/store/lua/), called with
 * FCALL and the key prefix as first argument; the functions derive the
 * keys, read the clock with TIME and keep counters, indexes, ready queues
 * and statistics in step. Where Redis has jobd's module
 * (src/store/module/), create, claim and finish call its commands first,
 * with the same arguments; they do the common jobs and leave the rest to
 * the Lua functions. Nothing in the store reads a value, changes it and
 * writes it back: two jobctl processes and any number of jobd instances
 * can race freely.
 *
 * Connections are blocking with timeouts, in clear or through TLS
 * (link.c: hiredis formats and parses, the link moves the bytes; hiredis
 * 0.14 has no TLS). Any I/O error drops the connection; the next call
 * reconnects and reloads the functions, so callers only need to back off
 * and retry on JOBD_STORE_ERR_REDIS. A TLS setting that cannot work (a
 * certificate file, a server that cannot be verified) fails
 * jobd_store_new, so jobd and jobctl stop at start saying why, and never
 * fall back to plain text. Requests larger than JOBD_STORE_BATCH are split
 * so that every call does bounded work.
 *
 * On a Redis Cluster (the configured node says cluster_enabled:1, or
 * [redis] cluster_seeds is set) every key of the deployment carries the
 * hash tag of the prefix ("{jobd}:job:7"), so all of them are in one
 * slot and every call, a Lua function or a module command deriving its
 * keys from the prefix, runs on the one primary that owns it. Each link
 * the store opens (its calls, the wake-up subscriber) goes to that
 * primary, found in the slot map of the cluster client (cluster.c) read
 * again at every connect, so a promoted replica is found after a
 * failover. A reply that says the command did not run here (MOVED: the
 * slot moved or a replica took over; ASK, TRYAGAIN, CLUSTERDOWN: a
 * migration or a failover under way) is retried, after reading the map
 * again for MOVED, after a backoff for the others; a lost connection is
 * the callers' retry as on one Redis. Calls are routed by the slot of
 * the prefix's tag, the shape the sharded layout keeps (docs/scaling.md,
 * "On a Redis Cluster today"), where the prefix of a call is its shard's.
 */
#include "config.h"

#include "store/shard.h"
#include "store/store.h"
#include "store/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "store/cluster.h"
#include "store/module/module.h"
#include "store/scripts.h"

/* Rounds a command redirected or refused for the moment takes (cluster),
 * and the backoff before each but MOVED's first: up to 2.75 s in all,
 * about what a one-slot migration takes; then the caller's retry. */
#define REDIRECTS 10
#define REDIRECT_BACKOFF_MS 50

static const char *const script_names[S_COUNT] = {
	"create",	  "claim",	 "finish",
	"handback",	  "progress",	 "heartbeat",
	"expire",	  "stop",	 "resume",
	"force_stop",	  "cancel",	 "restart",
	"low_priority",	  "list",	 "children",
	"show",		  "cascade",	 "broker_publish",
	"broker_release", "lease",	 "purge",
	"fsck",		  "fsck_refs",	 "backfill",
	"logscan",	  "why",	 "schedule",
	"limits",	  "limits_show", "sort",
	"keys",		  "key_window",	 "hold",
};

void store_args_release(struct store_args *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->owned[i]);
	free(a->v);
	free(a->len);
	free(a->owned);
	memset(a, 0, sizeof(*a));
}

static void args_grow(struct store_args *a)
{
	size_t cap = a->cap ? a->cap * 2 : 64;

	if (a->n < a->cap)
		return;
	if (jobd_util_resize(&a->v, cap, sizeof(*a->v)) < 0 ||
	    jobd_util_resize(&a->len, cap, sizeof(*a->len)) < 0 ||
	    jobd_util_resize(&a->owned, cap, sizeof(*a->owned)) < 0)
		abort(); /* out of memory: nothing sensible to do */
	a->cap = cap;
}

void store_args_add(struct store_args *a, const char *s)
{
	args_grow(a);
	a->v[a->n] = s ? s : "";
	a->len[a->n] = strlen(a->v[a->n]);
	a->owned[a->n] = NULL;
	a->n++;
}

void store_args_pipe(struct store_link *c, struct store_args *a)
{
	store_link_append_argv(c, (int)a->n, a->v, a->len);
	for (size_t i = 0; i < a->n; i++)
		free(a->owned[i]);
	a->n = 0;
}

const char *store_args_addf(struct store_args *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	args_grow(a);
	a->v[a->n] = s;
	a->len[a->n] = strlen(s);
	a->owned[a->n] = s;
	a->n++;
	return s;
}

/* Room for N more bytes. */
static void list_room(struct store_list *l, size_t n)
{
	if (l->n + n > l->cap) {
		l->cap = (l->n + n) * 2 + 256;
		l->s = realloc(l->s, l->cap);
		if (!l->s)
			abort(); /* out of memory */
	}
}

void store_list_put(struct store_list *l, const char *p, size_t n)
{
	list_room(l, n);
	memcpy(l->s + l->n, p, n);
	l->n += n;
}

void store_list_char(struct store_list *l, char c)
{
	store_list_put(l, &c, 1);
}

void store_list_int(struct store_list *l, long long v)
{
	char buf[JOBD_I64_SIZE];

	store_list_put(l, buf, jobd_util_i64_text(v, buf));
}

void store_list_field(struct store_list *l, const char *s)
{
	size_t n;

	s = s ? s : "";
	n = strlen(s);
	list_room(l, n + JOBD_I64_SIZE + 1);
	l->n += jobd_util_i64_text((int64_t)n, l->s + l->n);
	l->s[l->n++] = ':';
	memcpy(l->s + l->n, s, n);
	l->n += n;
}

void store_list_add(struct store_list *l, struct store_args *a)
{
	args_grow(a);
	a->v[a->n] = l->s;
	a->len[a->n] = l->n;
	a->owned[a->n] = l->s;
	a->n++;
}

/* Appends the arguments of FROM to A, borrowed (FROM must outlive A). */
static void args_append(struct store_args *a, const struct store_args *from)
{
	for (size_t i = 0; i < from->n; i++) {
		args_grow(a);
		a->v[a->n] = from->v[i];
		a->len[a->n] = from->len[i];
		a->owned[a->n] = NULL;
		a->n++;
	}
}

void store_set_err(struct jobd_store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

void store_drop(struct store_link **c)
{
	store_link_free(*c);
	*c = NULL;
}

const char *store_where(const struct jobd_store *st)
{
	return st->cl && st->owner[0] ? st->owner : st->conf->redis_address;
}

void store_lost(struct jobd_store *st)
{
	store_set_err(st, "redis at %s: %s", store_where(st),
		      store_link_errstr(st->c));
	store_drop(&st->c);
}

bool store_redirected(struct jobd_store *st, const redisReply *r)
{
	enum jobd_cluster_redirect kind = jobd_cluster_redirect(r);

	if (!st->cl || !r || r->type != REDIS_REPLY_ERROR)
		return false;
	/*
	 * A call that names no key (FCALL with 0 keys, a module command) is
	 * never redirected: a primary turned replica (a manual failover)
	 * refuses it as a write (READONLY), a node that lost the slot
	 * refuses the function's first key (nothing ran; but during a
	 * migration a later key, after writes: see run()).
	 */
	if (kind == JOBD_CLUSTER_MOVED ||
	    strncmp(r->str, "READONLY ", 9) == 0 ||
	    strstr(r->str, "access a non local key")) {
		const char *to = kind == JOBD_CLUSTER_MOVED ?
					 strrchr(r->str, ' ') :
					 NULL;

		/* "MOVED 7650 127.0.0.1:24255" (an empty host: this node's) */
		if (to && to[1] != ':' && strchr(to, ':')) {
			snprintf(st->moved_to, sizeof(st->moved_to), "%s",
				 to + 1);
			snprintf(st->moved_from, sizeof(st->moved_from), "%s",
				 store_where(st));
		}
		store_set_err(st,
			      "redis cluster: slot %d of [redis] prefix \"%s\" "
			      "is no longer at %s (%s): reading the slot map "
			      "again",
			      st->slot, st->prefix, store_where(st), r->str);
		store_drop(&st->c);
		return true;
	}
	/* A function names no key, so a cluster that is down refuses it
	 * from inside the script, at its first key, before any write. */
	if (kind == JOBD_CLUSTER_ASK || kind == JOBD_CLUSTER_RETRY ||
	    strstr(r->str, "while the cluster is down")) {
		store_set_err(st,
			      "redis cluster at %s: slot %d of [redis] prefix "
			      "\"%s\" is migrating or failing over: %s",
			      store_where(st), st->slot, st->prefix, r->str);
		return true;
	}
	return false;
}

/*
 * Runs the first command CMD on the new link C (hiredis format): its
 * reply, or NULL with the error set (what STEP was, and a hint when a
 * server that never answered looks like one speaking TLS).
 */
static redisReply *first_call(struct jobd_store *st, struct store_link *c,
			      const char *step, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static redisReply *first_call(struct jobd_store *st, struct store_link *c,
			      const char *step, const char *fmt, ...)
{
	const char *why;
	redisReply *r;
	bool tls_port;
	va_list ap;

	va_start(ap, fmt);
	r = store_link_vcommand(c, fmt, ap);
	va_end(ap);
	if (r)
		return r;
	why = store_link_errstr(c);
	tls_port = !st->addr.tls && !st->addr.unix_socket &&
		   store_link_looks_tls(c);
	store_set_err(st, "cannot %s redis at %s: %s%s", step, store_where(st),
		      why,
		      tls_port ? " (is it a TLS port? then write "
				 "rediss://host:port)" :
				 "");
	return NULL;
}

/*
 * The address of the primary that owns the prefix's slot, from the slot
 * map read again (a failover may have promoted a replica since); 0, or
 * -1 with the error set (no node answering, or none owning the slot yet:
 * a failover under way).
 */
int store_owner_find(struct jobd_store *st, struct jobd_redis_address *at)
{
	const struct jobd_redis_address *owner;

	if (jobd_cluster_refresh(st->cl) < 0) {
		store_set_err(st,
			      "cannot read the slot map of the redis "
			      "cluster: %s",
			      jobd_cluster_errstr(st->cl));
		return -1;
	}
	owner = jobd_cluster_slot_at(st->cl, st->slot);
	if (!owner) {
		store_set_err(st,
			      "redis cluster has no primary for slot %d of "
			      "[redis] prefix \"%s\" (a failover under way?)",
			      st->slot, st->prefix);
		return -1;
	}
	*at = *owner;
	snprintf(st->owner, sizeof(st->owner), "%s",
		 jobd_cluster_slot_node(st->cl, st->slot));
	/* The map came from a node that has not heard of the move a MOVED
	 * just named: the MOVED is the newer word. */
	if (st->moved_to[0] && strcmp(st->owner, st->moved_from) == 0) {
		const char *colon = strrchr(st->moved_to, ':');

		if (colon &&
		    (size_t)(colon - st->moved_to) < sizeof(at->host)) {
			snprintf(at->host, sizeof(at->host), "%.*s",
				 (int)(colon - st->moved_to), st->moved_to);
			at->port = atoi(colon + 1);
			snprintf(st->owner, sizeof(st->owner), "%s",
				 st->moved_to);
		}
	}
	st->moved_to[0] = st->moved_from[0] = '\0';
	return 0;
}

struct store_link *store_connect_to(struct jobd_store *st)
{
	struct jobd_redis_address at = st->addr;

	if (st->cl && store_owner_find(st, &at) < 0)
		return NULL;
	return store_link_at(st, &at, store_where(st));
}

struct store_link *store_link_at(struct jobd_store *st,
				 const struct jobd_redis_address *at,
				 const char *addr)
{
	struct store_link *c;
	redisReply *r;
	char err[512];

	c = store_link_open(at, st->tls, st->timeout_ms, err, sizeof(err));
	if (!c) {
		store_set_err(st, "cannot connect to redis at %s: %s", addr,
			      err);
		return NULL;
	}
	if (st->conf->redis_password) {
		if (st->conf->redis_user)
			r = first_call(st, c, "authenticate to", "AUTH %s %s",
				       st->conf->redis_user,
				       st->conf->redis_password);
		else
			r = first_call(st, c, "authenticate to", "AUTH %s",
				       st->conf->redis_password);
		if (!r)
			goto err_free;
		if (r->type == REDIS_REPLY_ERROR) {
			store_set_err(st,
				      "cannot authenticate to redis at %s: %s",
				      addr, r->str);
			freeReplyObject(r);
			goto err_free;
		}
		freeReplyObject(r);
	}
	/*
	 * Ask before loading scripts: Redis drops an unauthenticated client
	 * that sends large requests, which would only say "connection lost".
	 */
	r = first_call(st, c, "talk to", "PING");
	if (!r)
		goto err_free;
	if (r->type == REDIS_REPLY_ERROR) {
		store_set_err(
			st, "redis at %s refused us: %s%s", addr, r->str,
			strncmp(r->str, "NOAUTH", 6) == 0 ?
				" (set [redis] password, and user for an ACL user)" :
				"");
		freeReplyObject(r);
		goto err_free;
	}
	freeReplyObject(r);
	return c;

err_free:
	store_link_free(c);
	return NULL;
}

/*
 * Loads the function library. Its name carries the hash of its sources,
 * so "already exists" means this very library is there (another process
 * loaded it): fine.
 */
static int load_library(struct jobd_store *st)
{
	redisReply *r =
		store_link_command(st->c, "FUNCTION LOAD %s", jobd_library);

	if (!r) {
		store_lost(st);
		return JOBD_STORE_ERR_REDIS;
	}
	if (r->type == REDIS_REPLY_ERROR && !strstr(r->str, "already exists")) {
		store_set_err(
			st,
			"cannot load jobd's functions into redis at %s: %s%s",
			store_where(st), r->str,
			strncmp(r->str, "NOPERM", 6) == 0 ?
				" (an admin loads them: docs/security.md, "
				"\"Redis\")" :
				"");
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	freeReplyObject(r);
	return 0;
}

/* What a new connection st->c needs before the store's calls: the log
 * bound, and whether Redis has the module. 0, or -1 with the error set
 * and the connection dropped. */
static int conn_setup(struct jobd_store *st)
{
	char want[128];
	redisReply *r;

	st->conns++;
	/* A new connection may be to a new primary (a failover): its
	 * replicas are counted again before the next create waits. */
	st->replicas_at = 0;
	/* Functions read the log bound from here (first writer wins). */
	r = store_link_command(st->c, "HSETNX %s:conf logs_max_entries %lld",
			       st->prefix,
			       (long long)st->conf->logs_max_entries);
	if (!r)
		goto lost;
	if (store_redirected(st, r)) {
		/* The map was stale: the caller's retry connects anew. */
		freeReplyObject(r);
		store_drop(&st->c);
		return JOBD_STORE_ERR_REDIS;
	}
	freeReplyObject(r);
	/*
	 * The native module (docs/redis-module.md) runs the hot path when
	 * Redis has it loaded in the version built with these functions;
	 * otherwise (no module, another version, a user without the
	 * permission) everything runs in Lua.
	 */
	r = store_link_command(st->c, "JOBD.VERSION");
	if (!r)
		goto lost; /* not "no module": no answer (Redis stalled) */
	snprintf(want, sizeof(want), "%s%s", jobd_library_prefix,
		 JOBD_MODULE_REVISION);
	st->module = r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0;
	if (r->type == REDIS_REPLY_STATUS && !st->module && !st->warned) {
		jobd_warn("store: the jobd module in redis at %s is version "
			  "%s, this jobd wants %s: using the Lua functions",
			  store_where(st), r->str, want);
		st->warned = true;
	}
	freeReplyObject(r);
	return 0;
lost:
	store_lost(st);
	return JOBD_STORE_ERR_REDIS;
}

int store_ensure(struct jobd_store *st)
{
	if (st->c)
		return 0;
	st->c = store_connect_to(st);
	if (!st->c)
		return JOBD_STORE_ERR_REDIS;
	return conn_setup(st);
}

/* PREFIX has a hash tag: a '{' with a '}' after it and something in
 * between, so every key that starts with it is in the tag's slot. */
static bool prefix_tagged(const char *prefix)
{
	const char *open = strchr(prefix, '{');
	const char *close = open ? strchr(open + 1, '}') : NULL;

	return close && close > open + 1;
}

/*
 * Whether the store is on a cluster: [redis] cluster_seeds is set, or
 * the node at [redis] address says mode cluster (HELLO; a Redis older
 * than 6.0 refuses it and is taken for one Redis). Then the prefix must
 * have a hash tag, and the slot map is read from the address and the
 * seeds. 0, or -1 with ERRSTR set; on one Redis the connection that
 * asked is kept in st->c, not set up yet.
 */
static int cluster_detect(struct jobd_store *st, char *errstr,
			  size_t errstr_size)
{
	const struct jobd_conf *conf = st->conf;
	struct jobd_cluster_opts opts = { 0 };
	bool cluster = conf->redis_cluster_seeds != NULL;
	char seeds[2048];
	redisReply *r;

	if (!cluster) {
		struct store_link *c = store_connect_to(st);

		if (!c) {
			snprintf(errstr, errstr_size, "%s", st->err);
			return -1;
		}
		/* HELLO, unlike INFO, needs no ACL permission. */
		r = store_link_command(c, "HELLO 2");
		if (!r) {
			snprintf(errstr, errstr_size, "redis at %s: %s",
				 conf->redis_address, store_link_errstr(c));
			store_link_free(c);
			return -1;
		}
		for (size_t i = 0;
		     r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
		     i += 2)
			if (r->element[i]->type == REDIS_REPLY_STRING &&
			    strcmp(r->element[i]->str, "mode") == 0 &&
			    r->element[i + 1]->type == REDIS_REPLY_STRING)
				cluster = strcmp(r->element[i + 1]->str,
						 "cluster") == 0;
		freeReplyObject(r);
		if (!cluster) {
			st->c = c;
			return 0;
		}
		store_link_free(c);
	}
	if (!prefix_tagged(st->prefix)) {
		snprintf(errstr, errstr_size,
			 "[redis] prefix \"%s\" has no hash tag, and redis at "
			 "%s is a cluster: every key of jobd must be in one "
			 "slot, so write the prefix with a tag, for example "
			 "prefix = {%s}",
			 st->prefix,
			 conf->redis_cluster_seeds ? conf->redis_cluster_seeds :
						     conf->redis_address,
			 strpbrk(st->prefix, "{}") ? "jobd" : st->prefix);
		return -1;
	}
	if ((size_t)snprintf(
		    seeds, sizeof(seeds), "%s%s%s",
		    st->addr.unix_socket ? "" : conf->redis_address,
		    !st->addr.unix_socket && conf->redis_cluster_seeds ? "," :
									 "",
		    conf->redis_cluster_seeds ? conf->redis_cluster_seeds :
						"") >= sizeof(seeds)) {
		snprintf(errstr, errstr_size,
			 "[redis] cluster_seeds: the address and the seeds are "
			 "longer than %zu bytes in all",
			 sizeof(seeds) - 1);
		return -1;
	}
	opts.user = conf->redis_user;
	opts.password = conf->redis_password;
	opts.timeout_ms = st->timeout_ms;
	opts.tls = st->tls;
	opts.map_only = true;
	st->cl = jobd_cluster_new(seeds, &opts, errstr, errstr_size);
	if (!st->cl)
		return -1;
	st->slot = jobd_cluster_key_slot(st->prefix, strlen(st->prefix));
	return 0;
}

/* A store of one shard on PREFIX (jobd_store_new: conf's). */
static struct jobd_store *store_new(const struct jobd_conf *conf,
				    const char *prefix, char *errstr,
				    size_t errstr_size)
{
	struct jobd_store *st = calloc(1, sizeof(*st));
	long long shards, shard;

	if (!st || !(st->prefix = strdup(prefix))) {
		snprintf(errstr, errstr_size, "out of memory");
		free(st);
		return NULL;
	}
	st->conf = conf;
	st->timeout_ms = 5000;
	if (jobd_shard_of(prefix, strlen(prefix), &shards, &shard) < 0) {
		snprintf(errstr, errstr_size,
			 "[redis] prefix = %s: a hash tag {N/S} is shard N of "
			 "S, with 0 <= N < S <= %d and no leading zeros "
			 "(docs/scaling.md, \"Shards\")",
			 prefix, N_MAX_SHARDS);
		goto err_free;
	}
	for (int i = 0; i < S_COUNT; i++)
		snprintf(st->fn[i], sizeof(st->fn[i]), "%s%s",
			 jobd_library_prefix, script_names[i]);
	if (jobd_conf_redis_address(conf->redis_address, &st->addr, errstr,
				    errstr_size) < 0)
		goto err_free;
	if (st->addr.tls &&
	    !(st->tls = store_tls_new(conf, errstr, errstr_size)))
		goto err_free;
	if (cluster_detect(st, errstr, errstr_size) < 0)
		goto err_free;
	if ((st->c ? conn_setup(st) : store_ensure(st)) < 0) {
		snprintf(errstr, errstr_size, "%s", st->err);
		goto err_free;
	}
	return st;

err_free:
	jobd_cluster_free(st->cl);
	store_tls_free(st->tls);
	free(st->prefix);
	free(st);
	return NULL;
}

struct jobd_store *jobd_store_new(const struct jobd_conf *conf, char *errstr,
				  size_t errstr_size)
{
	return store_new(conf, conf->prefix, errstr, errstr_size);
}

struct jobd_store *store_shards_new(const struct jobd_conf *conf, int shards,
				    char *errstr, size_t errstr_size)
{
	struct jobd_store *st;
	char prefix[512];

	if (shards < 2 || shards > N_MAX_SHARDS || strchr(conf->prefix, '{') ||
	    strlen(conf->prefix) > sizeof(prefix) - 16) {
		snprintf(errstr, errstr_size,
			 "a store across shards takes 2 to %d shards and a "
			 "prefix without a hash tag of at most %zu bytes, not "
			 "%d and \"%s\"",
			 N_MAX_SHARDS, sizeof(prefix) - 16, shards,
			 conf->prefix);
		return NULL;
	}
	/* The deployment's own keys (leader leases, views, schedules, the
	 * broker's address), which no transition touches, are shard 0's:
	 * the store itself works on its prefix. */
	snprintf(prefix, sizeof(prefix), "%s:{0/%d}", conf->prefix, shards);
	if (!(st = store_new(conf, prefix, errstr, errstr_size)))
		return NULL;
	if (!(st->sh = calloc((size_t)shards, sizeof(*st->sh)))) {
		snprintf(errstr, errstr_size, "out of memory");
		jobd_store_free(st);
		return NULL;
	}
	for (st->nsh = 0; st->nsh < (size_t)shards; st->nsh++) {
		snprintf(prefix, sizeof(prefix), "%s:{%zu/%d}", conf->prefix,
			 st->nsh, shards);
		st->sh[st->nsh] = store_new(conf, prefix, errstr, errstr_size);
		if (!st->sh[st->nsh]) {
			jobd_store_free(st);
			return NULL;
		}
		st->sh[st->nsh]->top = st;
	}
	return st;
}

void jobd_store_free(struct jobd_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->nsh; i++)
		jobd_store_free(st->sh[i]);
	free(st->sh);
	free(st->prefix);
	store_drop(&st->c);
	store_drop(&st->sub);
	jobd_cluster_free(st->cl);
	store_tls_free(st->tls);
	free(st);
}

const char *jobd_store_errstr(const struct jobd_store *st)
{
	return st->err;
}

bool jobd_store_has_module(const struct jobd_store *st)
{
	return st->module;
}

void jobd_store_set_create_wait(struct jobd_store *st, bool on)
{
	st->create_wait = on;
	st->replicas_at = 0;
	for (size_t k = 0; k < st->nsh; k++)
		jobd_store_set_create_wait(st->sh[k], on);
}

int store_create_replicas(struct jobd_store *st, bool ask)
{
	int64_t now = jobd_util_mono_ms();
	const char *p;
	redisReply *r;

	if (!st->create_wait || st->conf->redis_wait_replicas == 0 ||
	    st->no_info)
		return 0;
	if (ask && (st->replicas_at == 0 || now - st->replicas_at >= 1000)) {
		r = jobd_store_command(st, "INFO replication");
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		p = r->type == REDIS_REPLY_STRING ?
			    strstr(r->str, "connected_slaves:") :
			    NULL;
		st->replicas = p ? atoi(p + 17) : 0;
		st->replicas_at = now;
		if (r->type == REDIS_REPLY_ERROR && !st->no_info) {
			/* Not asked again: each refusal is in the ACL log. */
			jobd_warn(
				"store: redis at %s refused INFO (%s): creates "
				"wait for no replica (docs/security.md, on a "
				"cluster)",
				store_where(st), r->str);
			st->no_info = true;
		}
		freeReplyObject(r);
	}
	return st->replicas < st->conf->redis_wait_replicas ?
		       st->replicas :
		       st->conf->redis_wait_replicas;
}

int store_create_waited(struct jobd_store *st, redisReply *r, int want)
{
	long long got = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	if (got >= want)
		return 0;
	st->replicas_at = 0; /* a replica gone: count them again */
	store_set_err(st,
		      "redis at %s: create: %lld of %d replicas have it after "
		      "[redis] wait_timeout %lld ms%s%s",
		      store_where(st), got < 0 ? 0 : got, want,
		      (long long)st->conf->redis_wait_timeout,
		      r && r->type == REDIS_REPLY_ERROR ? ": " : "",
		      r && r->type == REDIS_REPLY_ERROR ? r->str : "");
	return JOBD_STORE_ERR_REDIS;
}

void jobd_store_set_timeout(struct jobd_store *st, int ms)
{
	st->timeout_ms = ms;
	if (st->c)
		store_link_set_timeout(st->c, ms);
	/* The cluster client's links read the slot map at every connect:
	 * a node that stalls must not hold the call longer. */
	if (st->cl)
		jobd_cluster_set_timeout(st->cl, ms);
	for (size_t k = 0; k < st->nsh; k++)
		jobd_store_set_timeout(st->sh[k], ms);
}

/*
 * Runs one command on the store's connection, connecting first: its
 * reply (an error reply too), or NULL with the error set. On a cluster a
 * command that did not run (store_redirected) goes again, at once after
 * a MOVED (to the primary of the map read again), else after a backoff,
 * REDIRECTS times at most. ARGV, or else FMT with *AP (copied each time).
 * With WANT > 0, WAIT WANT [redis] wait_timeout goes right behind the
 * command, in the same write, and its reply is put into *WAITED when the
 * command's is returned (so it covers the command: one round trip).
 */
static redisReply *run(struct jobd_store *st, int argc, const char **argv,
		       const size_t *lens, const char *fmt, va_list *ap,
		       int want, redisReply **waited)
{
	for (int round = 0;; round++) {
		redisReply *r = NULL, *w = NULL;
		va_list aq;
		bool partial;

		if (store_ensure(st) < 0)
			return NULL;
		if (argv) {
			store_link_append_argv(st->c, argc, argv, lens);
		} else {
			va_copy(aq, *ap);
			store_link_vappend(st->c, fmt, aq);
			va_end(aq);
		}
		if (want > 0)
			store_link_append(
				st->c, "WAIT %d %lld", want,
				(long long)st->conf->redis_wait_timeout);
		if (store_link_reply(st->c, &r) < 0 ||
		    (want > 0 && store_link_reply(st->c, &w) < 0)) {
			if (r)
				freeReplyObject(r);
			store_lost(st);
			return NULL;
		}
		if (!store_redirected(st, r)) {
			if (waited)
				*waited = w;
			return r;
		}
		if (w)
			freeReplyObject(w);
		/*
		 * A function refused a key that is not here may have written
		 * before it reached one: during a migration of the slot
		 * (docs/scaling.md, "Moving the slot"). Not again at once;
		 * after a failover or a migration done, the caller's retry
		 * finds the new primary.
		 */
		partial = strstr(r->str, "non local key") != NULL;
		freeReplyObject(r);
		if (round == REDIRECTS || partial)
			return NULL; /* the error says what is under way */
		if (st->c || round > 0)
			jobd_util_sleep_ms(REDIRECT_BACKOFF_MS * (round + 1));
	}
}

/* run() with an argument vector, and WAIT behind it when WANT > 0. */
static redisReply *run_argv(struct jobd_store *st, int argc, const char **argv,
			    const size_t *lens, int want, redisReply **waited)
{
	return run(st, argc, argv, lens, NULL, NULL, want, waited);
}

void store_call_args(const struct jobd_store *st, const char *cmd,
		     enum script_id id, const struct store_args *args,
		     struct store_args *a)
{
	if (cmd) {
		store_args_add(a, cmd);
	} else {
		store_args_add(a, "FCALL");
		store_args_add(a, st->fn[id]);
		store_args_add(a, "0");
	}
	store_args_add(a, st->prefix);
	args_append(a, args);
}

redisReply *store_module_call_wait(struct jobd_store *st, const char *cmd,
				   struct store_args *args, bool *fallback,
				   int want, redisReply **waited)
{
	struct store_args a = { 0 };
	redisReply *r, *w = NULL;

	*fallback = true;
	*waited = NULL;
	if (store_ensure(st) < 0) {
		*fallback = false;
		return NULL;
	}
	if (!st->module)
		return NULL;
	store_call_args(st, cmd, 0, args, &a);
	r = run_argv(st, (int)a.n, a.v, a.len, want, &w);
	store_args_release(&a);
	if (!r) {
		*fallback = false;
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		if (w)
			freeReplyObject(w);
		if (strncmp(r->str, "ERR unknown command", 19) == 0 ||
		    strncmp(r->str, "NOPERM", 6) == 0 ||
		    strstr(r->str, "wrong number of arguments")) {
			/* Unloaded since, or refused: Lua from now on. */
			jobd_warn("store: redis module command %s failed, "
				  "using the Lua functions: %s",
				  cmd, r->str);
			st->module = false;
		} else {
			/* Out of memory, loading, busy, read-only: the Lua
			 * function would fail the same way; the caller
			 * retries (the module wrote nothing). */
			store_set_err(st, "redis at %s: %s: %s",
				      store_where(st), cmd, r->str);
			*fallback = false;
		}
		freeReplyObject(r);
		return NULL;
	}
	*waited = w;
	return r;
}

redisReply *store_module_call(struct jobd_store *st, const char *cmd,
			      struct store_args *args, bool *fallback)
{
	redisReply *w;

	return store_module_call_wait(st, cmd, args, fallback, 0, &w);
}

redisReply *store_eval_wait(struct jobd_store *st, enum script_id id,
			    struct store_args *args, int want,
			    redisReply **waited)
{
	struct store_args a = { 0 };
	redisReply *r = NULL, *w = NULL;

	*waited = NULL;
	if (store_ensure(st) < 0)
		return NULL;
	store_call_args(st, NULL, id, args, &a);
	for (int tries = 0; tries < 2; tries++) {
		r = run_argv(st, (int)a.n, a.v, a.len, want, &w);
		if (!r)
			break;
		if (r->type != REDIS_REPLY_ERROR) {
			*waited = w;
			break;
		}
		if (w)
			freeReplyObject(w);
		if (strstr(r->str, "Function not found") && tries == 0) {
			/* First use on this Redis, or it lost its functions. */
			freeReplyObject(r);
			r = NULL;
			if (load_library(st) < 0)
				break;
			continue;
		}
		store_set_err(
			st,
			"redis function %s (src/store/lua/%s.lua) failed: %s",
			st->fn[id], script_names[id], r->str);
		freeReplyObject(r);
		r = NULL;
		break;
	}
	store_args_release(&a);
	return r;
}

redisReply *store_eval(struct jobd_store *st, enum script_id id,
		       struct store_args *args)
{
	redisReply *w;

	return store_eval_wait(st, id, args, 0, &w);
}

char *store_dup_str(const redisReply *r)
{
	if (!r ||
	    (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
		return NULL;
	return strndup(r->str, r->len);
}

int64_t store_reply_i64(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

static const char *const level_names[] = { "debug", "info", "warn", "error" };

const char *store_level_name(int level)
{
	if (level < 0 || level > 3)
		return "info";
	return level_names[level];
}

int store_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return 1;
}

/* --- the store layer's own calls (store_int.h) ---------------------------------- */

redisReply *jobd_store_vcommand(struct jobd_store *st, const char *fmt,
				va_list ap)
{
	va_list aq;
	redisReply *r;

	va_copy(aq, ap);
	r = run(st, 0, NULL, NULL, fmt, &aq, 0, NULL);
	va_end(aq);
	return r;
}

redisReply *jobd_store_command(struct jobd_store *st, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = jobd_store_vcommand(st, fmt, ap);
	va_end(ap);
	return r;
}

redisReply *jobd_store_command_argv(struct jobd_store *st, int argc,
				    const char **argv, const size_t *lens)
{
	return run_argv(st, argc, argv, lens, 0, NULL);
}

struct store_link *jobd_store_pipeline(struct jobd_store *st)
{
	return store_ensure(st) < 0 ? NULL : st->c;
}

int jobd_store_pipeline_read(struct jobd_store *st, size_t n,
			     redisReply **replies)
{
	for (size_t i = 0; i < n; i++)
		replies[i] = NULL;
	for (size_t i = 0; i < n; i++) {
		if (store_link_reply(st->c, &replies[i]) < 0) {
			store_lost(st);
			for (size_t k = 0; k < i; k++) {
				freeReplyObject(replies[k]);
				replies[k] = NULL;
			}
			return JOBD_STORE_ERR_REDIS;
		}
	}
	/*
	 * One slot, one node: a command that did not run says the others
	 * did not either, or ran before the slot moved; the caller retries
	 * the whole, as after a connection lost midway.
	 */
	for (size_t i = 0; i < n; i++)
		if (store_redirected(st, replies[i])) {
			for (size_t k = 0; k < n; k++) {
				freeReplyObject(replies[k]);
				replies[k] = NULL;
			}
			return JOBD_STORE_ERR_REDIS;
		}
	return 0;
}

const char *jobd_store_prefix(const struct jobd_store *st)
{
	return st->prefix;
}

int jobd_store_time(struct jobd_store *st, int64_t *now)
{
	redisReply *r = jobd_store_command(st, "TIME");

	if (!r)
		return JOBD_STORE_ERR_REDIS;
	*now = 0;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		*now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
		       strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	return 0;
}

int jobd_store_key_window_write(struct jobd_store *st, int64_t *replaced)
{
	struct store_args a = { 0 };
	redisReply *r;

	if (st->nsh)
		return jobd_store_sharded_key_window_write(st, replaced);
	*replaced = 0;
	store_args_addf(&a, "%lld", (long long)st->conf->key_window);
	r = store_eval(st, S_KEY_WINDOW, &a);
	store_args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	*replaced = store_reply_i64(r);
	freeReplyObject(r);
	return 0;
}
