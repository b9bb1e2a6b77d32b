/*
 * store: jobd's job store in Redis, the only module that calls hiredis.
 *
 * Every state change is one Lua script (src/store/lua/), called with FCALL and
 * the key prefix as first argument; the scripts derive the keys, read the
 * clock with TIME and keep counters, indexes, ready queues and statistics
 * in step. Where Redis has jobd's module (src/store/module/), create, claim and
 * finish call its commands first, with the same arguments; they do the
 * common jobs and leave the rest to the Lua functions. Nothing here reads a value, changes it and writes it back: two
 * jobctl processes and any number of jobd instances can race freely.
 *
 * Connections are blocking with timeouts (hiredis 0.14 has neither TLS nor
 * async timeouts). Any I/O error drops the connection; the next call
 * reconnects and reloads the scripts, so callers only need to back off and
 * retry on JOBD_STORE_ERR_REDIS. Requests larger than JOBD_STORE_BATCH are
 * split so that every script call does bounded work.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/log.h"
#include "base/util.h"
#include "store/module/module.h"
#include "store/scripts.h"

enum script_id {
	S_CREATE,
	S_CLAIM,
	S_FINISH,
	S_HANDBACK,
	S_PROGRESS,
	S_HEARTBEAT,
	S_EXPIRE,
	S_STOP,
	S_RESUME,
	S_FORCE_STOP,
	S_CANCEL,
	S_RESTART,
	S_LOW_PRIORITY,
	S_LIST,
	S_CHILDREN,
	S_SHOW,
	S_CASCADE,
	S_BROKER_CLAIM,
	S_BROKER_RELEASE,
	S_LEASE,
	S_PURGE,
	S_FSCK,
	S_FSCK_REFS,
	S_BACKFILL,
	S_LOGSCAN,
	S_COUNT,
};

static const char *const script_names[S_COUNT] = {
	"create",    "claim",	"finish",	"handback",	  "progress",
	"heartbeat", "expire",	"stop",		"resume",	  "force_stop",
	"cancel",    "restart", "low_priority", "list",		  "children",
	"show",	     "cascade", "broker_claim", "broker_release", "lease",
	"purge",     "fsck",	"fsck_refs",	"backfill",	  "logscan",
};

const char *const jobd_op_names[JOBD_OP_COUNT] = {
	"stop",	   "resume",	   "force-stop",       "cancel",
	"restart", "low-priority", "low-priority-off",
};

struct jobd_store {
	const struct jobd_conf *conf; /* borrowed */
	redisContext *c;	      /* NULL while disconnected */
	redisContext *sub;	      /* subscribed to PREFIX:wake, or NULL */
	char fn[S_COUNT][64];	      /* function names, "jobd_HASH_claim" */
	int timeout_ms;		      /* per-call socket timeout */
	bool module;		      /* Redis has this jobd's module */
	bool warned;		      /* ... in another version: said */
	char err[512];		      /* the last error */
	uint64_t conns; /* connections made: which one a call went on */
	/* jobd_store_create_send's calls whose replies are not read yet:
	 * NSENT of them, the oldest at SENT_HEAD of the ring */
	struct sent_create {
		size_t n;		      /* jobs sent (0: no call made) */
		size_t pos[JOBD_STORE_BATCH]; /* index of each in the specs */
		uint64_t conn;		      /* the connection it went on */
	} sent[JOBD_STORE_CREATES_SENT];
	size_t sent_head, nsent;
};

/*
 * Arguments of one script call: borrowed strings, or numbers formatted
 * into storage owned by the list.
 */
struct args {
	const char **v;
	size_t *len;
	char **owned;
	size_t n, cap;
};

static void args_release(struct args *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->owned[i]);
	free(a->v);
	free(a->len);
	free(a->owned);
	memset(a, 0, sizeof(*a));
}

static void args_grow(struct args *a)
{
	if (a->n < a->cap)
		return;
	a->cap = a->cap ? a->cap * 2 : 64;
	a->v = realloc(a->v, a->cap * sizeof(*a->v));
	a->len = realloc(a->len, a->cap * sizeof(*a->len));
	a->owned = realloc(a->owned, a->cap * sizeof(*a->owned));
	if (!a->v || !a->len || !a->owned)
		abort(); /* out of memory: nothing sensible to do */
}

static void args_add(struct args *a, const char *s)
{
	args_grow(a);
	a->v[a->n] = s ? s : "";
	a->len[a->n] = strlen(a->v[a->n]);
	a->owned[a->n] = NULL;
	a->n++;
}

static void args_addf(struct args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void args_addf(struct args *a, const char *fmt, ...)
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
}

/*
 * One argument written piece by piece: a module command's list. Made for
 * every batch of the hot path, so with no printf (a consumer's create of
 * 500 jobs would spend more on formatting than on decoding them).
 */
struct list {
	char *s;
	size_t n, cap;
};

/* Room for N more bytes. */
static void list_room(struct list *l, size_t n)
{
	if (l->n + n > l->cap) {
		l->cap = (l->n + n) * 2 + 256;
		l->s = realloc(l->s, l->cap);
		if (!l->s)
			abort(); /* out of memory */
	}
}

static void list_put(struct list *l, const char *p, size_t n)
{
	list_room(l, n);
	memcpy(l->s + l->n, p, n);
	l->n += n;
}

static void list_char(struct list *l, char c)
{
	list_put(l, &c, 1);
}

/* Writes decimal integer V. */
static void list_int(struct list *l, long long v)
{
	char buf[JOBD_I64_SIZE];

	list_put(l, buf, jobd_util_i64_text(v, buf));
}

/* Writes S as "LEN:S" (JOBD.CREATE's fields, a checkpoint). */
static void list_field(struct list *l, const char *s)
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

/* Adds list L to A, which owns it from now on. */
static void list_add(struct list *l, struct args *a)
{
	args_grow(a);
	a->v[a->n] = l->s;
	a->len[a->n] = l->n;
	a->owned[a->n] = l->s;
	a->n++;
}

/* Appends the arguments of FROM to A, borrowed (FROM must outlive A). */
static void args_append(struct args *a, const struct args *from)
{
	for (size_t i = 0; i < from->n; i++) {
		args_grow(a);
		a->v[a->n] = from->v[i];
		a->len[a->n] = from->len[i];
		a->owned[a->n] = NULL;
		a->n++;
	}
}

static void set_err(struct jobd_store *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_err(struct jobd_store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

static void drop(redisContext **c)
{
	if (*c)
		redisFree(*c);
	*c = NULL;
}

/* The connection failed (hiredis says why): the error, and a reconnect
 * on the next call. */
static void lost(struct jobd_store *st)
{
	set_err(st, "redis at %s: %s", st->conf->redis_address,
		st->c->errstr[0] ? st->c->errstr : "connection lost");
	drop(&st->c);
}

static redisContext *connect_to(struct jobd_store *st)
{
	const char *addr = st->conf->redis_address;
	struct timeval tv = { st->timeout_ms / 1000,
			      (st->timeout_ms % 1000) * 1000 };
	redisContext *c;
	redisReply *r;

	if (strchr(addr, '/')) {
		c = redisConnectUnixWithTimeout(addr, tv);
	} else {
		char host[256];
		const char *colon = strrchr(addr, ':');
		int port = 6379;
		size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);

		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, addr, hl);
		host[hl] = '\0';
		if (colon)
			port = atoi(colon + 1);
		c = redisConnectWithTimeout(host, port, tv);
	}
	if (!c || c->err) {
		set_err(st, "cannot connect to redis at %s: %s", addr,
			c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	if (st->conf->redis_password) {
		if (st->conf->redis_user)
			r = redisCommand(c, "AUTH %s %s", st->conf->redis_user,
					 st->conf->redis_password);
		else
			r = redisCommand(c, "AUTH %s",
					 st->conf->redis_password);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			set_err(st, "cannot authenticate to redis at %s: %s",
				addr, r ? r->str : c->errstr);
			if (r)
				freeReplyObject(r);
			redisFree(c);
			return NULL;
		}
		freeReplyObject(r);
	}
	/*
	 * Ask before loading scripts: Redis drops an unauthenticated client
	 * that sends large requests, which would only say "connection lost".
	 */
	r = redisCommand(c, "PING");
	if (!r || r->type == REDIS_REPLY_ERROR) {
		set_err(st, "redis at %s refused us: %s%s", addr,
			r ? r->str : c->errstr,
			r && strncmp(r->str, "NOAUTH", 6) == 0 ?
				" (set [redis] password, and user for an ACL user)" :
				"");
		if (r)
			freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

/*
 * Loads the function library. Its name carries the hash of its sources,
 * so "already exists" means this very library is there (another process
 * loaded it): fine.
 */
static int load_library(struct jobd_store *st)
{
	redisReply *r = redisCommand(st->c, "FUNCTION LOAD %s", jobd_library);

	if (!r) {
		lost(st);
		return JOBD_STORE_ERR_REDIS;
	}
	if (r->type == REDIS_REPLY_ERROR && !strstr(r->str, "already exists")) {
		set_err(st, "cannot load jobd's functions into redis at %s: %s",
			st->conf->redis_address, r->str);
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	freeReplyObject(r);
	return 0;
}

static int ensure(struct jobd_store *st)
{
	char want[128];
	redisReply *r;

	if (st->c)
		return 0;
	st->c = connect_to(st);
	if (!st->c)
		return JOBD_STORE_ERR_REDIS;
	st->conns++;
	/* Functions read the log bound from here (first writer wins). */
	r = redisCommand(st->c, "HSETNX %s:conf logs_max_entries %lld",
			 st->conf->prefix,
			 (long long)st->conf->logs_max_entries);
	if (!r)
		goto lost;
	freeReplyObject(r);
	/*
	 * The native module (docs/redis-module.md) runs the hot path when
	 * Redis has it loaded in the version built with these functions;
	 * otherwise (no module, another version, a user without the
	 * permission) everything runs in Lua.
	 */
	r = redisCommand(st->c, "JOBD.VERSION");
	if (!r)
		goto lost; /* not "no module": no answer (Redis stalled) */
	snprintf(want, sizeof(want), "%s%s", jobd_library_prefix,
		 JOBD_MODULE_REVISION);
	st->module = r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0;
	if (r->type == REDIS_REPLY_STATUS && !st->module && !st->warned) {
		jobd_warn("store: the jobd module in redis at %s is version "
			  "%s, this jobd wants %s: using the Lua functions",
			  st->conf->redis_address, r->str, want);
		st->warned = true;
	}
	freeReplyObject(r);
	return 0;
lost:
	lost(st);
	return JOBD_STORE_ERR_REDIS;
}

struct jobd_store *jobd_store_new(const struct jobd_conf *conf, char *errstr,
				  size_t errstr_size)
{
	struct jobd_store *st = calloc(1, sizeof(*st));

	if (!st) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	st->conf = conf;
	st->timeout_ms = 5000;
	for (int i = 0; i < S_COUNT; i++)
		snprintf(st->fn[i], sizeof(st->fn[i]), "%s%s",
			 jobd_library_prefix, script_names[i]);
	if (ensure(st) < 0) {
		snprintf(errstr, errstr_size, "%s", st->err);
		free(st);
		return NULL;
	}
	return st;
}

void jobd_store_free(struct jobd_store *st)
{
	if (!st)
		return;
	drop(&st->c);
	drop(&st->sub);
	free(st);
}

const char *jobd_store_errstr(const struct jobd_store *st)
{
	return st->err;
}

void jobd_store_set_timeout(struct jobd_store *st, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	st->timeout_ms = ms;
	if (st->c)
		redisSetTimeout(st->c, tv);
}

/*
 * Into A, the call with ARGS (borrowed): the module command CMD, or with
 * CMD NULL the Lua function of script ID; the key prefix first either way.
 */
static void call_args(const struct jobd_store *st, const char *cmd,
		      enum script_id id, const struct args *args,
		      struct args *a)
{
	if (cmd) {
		args_add(a, cmd);
	} else {
		args_add(a, "FCALL");
		args_add(a, st->fn[id]);
		args_add(a, "0");
	}
	args_add(a, st->conf->prefix);
	args_append(a, args);
}

/*
 * Runs the module command CMD with the arguments of script ID (ARGS, the
 * prefix prepended), when Redis has the module. Returns the reply (caller
 * frees), or NULL: with *fallback set when the Lua function must do the
 * work instead (no module, or it was unloaded or refused since), else
 * with st->err set (Redis unreachable, or refusing writes). A module
 * command that fails has written nothing.
 */
static redisReply *module_call(struct jobd_store *st, const char *cmd,
			       struct args *args, bool *fallback)
{
	struct args a = { 0 };
	redisReply *r;

	*fallback = true;
	if (ensure(st) < 0) {
		*fallback = false;
		return NULL;
	}
	if (!st->module)
		return NULL;
	call_args(st, cmd, 0, args, &a);
	r = redisCommandArgv(st->c, (int)a.n, a.v, a.len);
	args_release(&a);
	if (!r) {
		lost(st);
		*fallback = false;
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
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
			set_err(st, "redis at %s: %s: %s",
				st->conf->redis_address, cmd, r->str);
			*fallback = false;
		}
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/*
 * Runs script ID with ARGS (the prefix is prepended here). Returns the
 * reply (caller frees) or NULL with st->err set; a script error is an
 * error too, never a reply.
 */
static redisReply *eval(struct jobd_store *st, enum script_id id,
			struct args *args)
{
	struct args a = { 0 };
	redisReply *r = NULL;

	if (ensure(st) < 0)
		return NULL;
	call_args(st, NULL, id, args, &a);
	for (int tries = 0; tries < 2; tries++) {
		r = redisCommandArgv(st->c, (int)a.n, a.v, a.len);
		if (!r) {
			lost(st);
			break;
		}
		if (r->type != REDIS_REPLY_ERROR)
			break;
		if (strstr(r->str, "Function not found") && tries == 0) {
			/* First use on this Redis, or it lost its functions. */
			freeReplyObject(r);
			r = NULL;
			if (load_library(st) < 0)
				break;
			continue;
		}
		set_err(st,
			"redis function %s (src/store/lua/%s.lua) failed: %s",
			st->fn[id], script_names[id], r->str);
		freeReplyObject(r);
		r = NULL;
		break;
	}
	args_release(&a);
	return r;
}

static char *dup_str(const redisReply *r)
{
	if (!r ||
	    (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
		return NULL;
	return strndup(r->str, r->len);
}

static int64_t reply_i64(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

/* --- create ------------------------------------------------------------ */

static bool valid_json(const char *s, char *why, size_t why_size)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);

	if (!j) {
		snprintf(why, why_size,
			 "payload is not valid JSON: %s at byte %d", e.text,
			 e.position);
		return false;
	}
	json_decref(j);
	return true;
}

/*
 * JOBD.CREATE's list of the SENT jobs of SPECS named by POS, in one
 * argument: create.lua's seven arguments per job, each as "LEN:BYTES",
 * and a newline per job (src/store/module/jobd_module.c parse_jobs()).
 */
static void create_list(struct args *a, const struct jobd_spec *specs,
			const size_t *pos, size_t sent)
{
	struct list l = { 0 };
	char parent[24];

	for (size_t k = 0; k < sent; k++) {
		const struct jobd_spec *sp = &specs[pos[k]];

		list_field(&l, sp->key);
		list_field(&l, sp->type);
		parent[0] = 0;
		if (sp->parent > 0) /* the module leaves children to Lua */
			snprintf(parent, sizeof(parent), "%lld",
				 (long long)sp->parent);
		list_field(&l, parent);
		list_field(&l, sp->run_by);
		list_field(&l, sp->low_priority ? "1" : "0");
		list_field(&l, sp->payload ? sp->payload : "{}");
		list_field(&l, sp->source);
		list_char(&l, '\n');
	}
	list_add(&l, a);
}

/*
 * The arguments of create.lua, or with MODULE of JOBD.CREATE, for the N
 * SPECS into A. Specs refused here (unknown type, payload not JSON) get
 * their reason in OUT; the others are sent, the k-th being SPECS[POS[k]].
 * Returns how many are sent.
 */
static size_t create_args(struct jobd_store *st, const char *actor,
			  const struct jobd_spec *specs, size_t n,
			  struct jobd_created *out, size_t *pos, struct args *a,
			  bool module)
{
	/* the distinct types of the batch, whose policies go once */
	const struct jobd_type_conf *types[JOBD_STORE_BATCH];
	size_t sent = 0, ntypes = 0;

	for (size_t i = 0; i < n; i++) {
		const struct jobd_spec *sp = &specs[i];
		const struct jobd_type_conf *ty =
			sp->type ? jobd_conf_type(st->conf, sp->type) : NULL;
		size_t j = 0;

		memset(&out[i], 0, sizeof(out[i]));
		if (!ty) {
			snprintf(out[i].error, sizeof(out[i].error),
				 "unknown type \"%s\"",
				 sp->type ? sp->type : "");
			continue;
		}
		if (sp->payload && !sp->payload_checked &&
		    !valid_json(sp->payload, out[i].error,
				sizeof(out[i].error)))
			continue;
		pos[sent++] = i;
		while (j < ntypes && types[j] != ty)
			j++;
		if (j == ntypes)
			types[ntypes++] = ty;
	}
	if (sent == 0)
		return 0;
	args_addf(a, "%lld", (long long)st->conf->retention_stats);
	args_add(a, actor);
	args_addf(a, "%zu", sent);
	/* The policy of each type in the batch, once (create.lua). */
	args_addf(a, "%zu", ntypes);
	for (size_t j = 0; j < ntypes; j++) {
		args_add(a, types[j]->name);
		args_add(a, types[j]->system ? "1" : "0");
		args_add(a, types[j]->stoppable ? "1" : "0");
		args_add(a, types[j]->restartable ? "1" : "0");
		args_addf(a, "%d", types[j]->retries);
		args_addf(a, "%lld", (long long)types[j]->retry_backoff);
	}
	if (module)
		create_list(a, specs, pos, sent);
	else
		for (size_t k = 0; k < sent; k++) {
			const struct jobd_spec *sp = &specs[pos[k]];

			args_add(a, sp->key);
			args_add(a, sp->type);
			if (sp->parent > 0)
				args_addf(a, "%lld", (long long)sp->parent);
			else
				args_add(a, "");
			args_add(a, sp->run_by);
			args_add(a, sp->low_priority ? "1" : "0");
			args_add(a, sp->payload ? sp->payload : "{}");
			args_add(a, sp->source);
		}
	return sent;
}

/* The ids (or refusals) of create reply R into OUT, as create_args sent:
 * create.lua's {id, existed} per job, or JOBD.CREATE's id, negative when
 * it existed. */
static void create_results(const redisReply *r, const size_t *pos, size_t sent,
			   struct jobd_created *out)
{
	for (size_t k = 0; k < sent && k < r->elements; k++) {
		redisReply *e = r->element[k];
		struct jobd_created *c = &out[pos[k]];

		if (e->type == REDIS_REPLY_INTEGER) {
			c->id = e->integer < 0 ? -e->integer : e->integer;
			c->existed = e->integer < 0;
		} else if (e->type == REDIS_REPLY_ARRAY && e->elements == 2) {
			c->id = reply_i64(e->element[0]);
			c->existed = reply_i64(e->element[1]) == 1;
		} else if (e->type == REDIS_REPLY_STRING) {
			snprintf(c->error, sizeof(c->error), "%.*s",
				 (int)e->len, e->str);
		}
	}
}

static int create_batch(struct jobd_store *st, const char *actor,
			const struct jobd_spec *specs, size_t n,
			struct jobd_created *out)
{
	struct args a = { 0 };
	size_t pos[JOBD_STORE_BATCH], sent;
	redisReply *r;
	bool fallback, packed;
	int rc = 0;

	/* Specs all refused here need no Redis. */
	packed = st->module;
	sent = create_args(st, actor, specs, n, out, pos, &a, packed);
	if (sent == 0)
		goto out;
	if (ensure(st) < 0) {
		rc = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	if (packed != st->module) { /* learnt as it connected */
		args_release(&a);
		packed = st->module;
		create_args(st, actor, specs, n, out, pos, &a, packed);
	}
	r = module_call(st, "JOBD.CREATE", &a, &fallback);
	if (r && r->type == REDIS_REPLY_STATUS) {
		/* Not only root jobs: the module left it to Lua. */
		freeReplyObject(r);
		r = NULL;
	}
	if (!r && fallback) {
		if (packed) {
			args_release(&a);
			create_args(st, actor, specs, n, out, pos, &a, false);
		}
		r = eval(st, S_CREATE, &a);
	}
	if (!r) {
		rc = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	create_results(r, pos, sent, out);
	freeReplyObject(r);
out:
	args_release(&a);
	return rc;
}

int jobd_store_create(struct jobd_store *st, const char *actor,
		      const struct jobd_spec *specs, size_t n,
		      struct jobd_created *out)
{
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		int rc = create_batch(st, actor, specs + off, len, out + off);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int jobd_store_create_send(struct jobd_store *st, const char *actor,
			   const struct jobd_spec *specs, size_t n,
			   struct jobd_created *out)
{
	struct args a = { 0 }, call = { 0 };
	struct sent_create *sc;
	int done = 0, rc = 0;

	if (st->nsent == JOBD_STORE_CREATES_SENT || n > JOBD_STORE_BATCH) {
		set_err(st, "create: %zu jobs, %zu calls on their way", n,
			st->nsent);
		return JOBD_STORE_ERR_REDIS;
	}
	if (ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	sc = &st->sent[(st->sent_head + st->nsent) % JOBD_STORE_CREATES_SENT];
	sc->conn = st->conns;
	sc->n = create_args(st, actor, specs, n, out, sc->pos, &a, st->module);
	if (sc->n == 0)
		goto out; /* all refused here: no call, and no reply */
	call_args(st, st->module ? "JOBD.CREATE" : NULL, S_CREATE, &a, &call);
	/* Sent now, not when the reply is read: Redis works meanwhile. */
	if (redisAppendCommandArgv(st->c, (int)call.n, call.v, call.len) !=
	    REDIS_OK)
		done = -1;
	while (done == 0)
		if (redisBufferWrite(st->c, &done) != REDIS_OK)
			done = -1;
	args_release(&call);
	if (done < 0) {
		lost(st);
		rc = JOBD_STORE_ERR_REDIS;
	}
out:
	if (rc == 0)
		st->nsent++;
	args_release(&a);
	return rc;
}

int jobd_store_create_recv(struct jobd_store *st, struct jobd_created *out)
{
	const struct sent_create *sc = &st->sent[st->sent_head];
	redisReply *r = NULL;

	if (st->nsent == 0) {
		set_err(st, "create: no call on its way");
		return JOBD_STORE_ERR_REDIS;
	}
	st->sent_head = (st->sent_head + 1) % JOBD_STORE_CREATES_SENT;
	st->nsent--;
	if (sc->n == 0)
		return 0;
	if (!st->c || sc->conn != st->conns)
		return JOBD_STORE_ERR_REDIS; /* its reply went with it */
	if (redisGetReply(st->c, (void **)&r) != REDIS_OK || !r) {
		lost(st);
		return JOBD_STORE_ERR_REDIS;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		/*
		 * Left to Lua, the module gone or refused, the functions not
		 * loaded, or Redis refusing writes: jobd_store_create sorts
		 * each out, and the keys make the repeat harmless.
		 */
		set_err(st, "redis at %s: create: %s", st->conf->redis_address,
			r->str ? r->str : "unexpected reply");
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	create_results(r, sc->pos, sc->n, out);
	freeReplyObject(r);
	return 0;
}

/* --- engine ------------------------------------------------------------ */

/* Appends the jobs of claim reply R to CL (*n of them); true when the
 * module stopped early and left the rest to claim.lua. */
static bool claims_from(const redisReply *r, struct jobd_claim *cl, size_t *n,
			int *low)
{
	bool rest = false;

	for (size_t i = 0; i < r->elements; i++) {
		redisReply *e = r->element[i];

		if (e->type == REDIS_REPLY_STATUS && strcmp(e->str, "lua") == 0)
			rest = true;
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 8)
			continue;
		cl[*n].id = reply_i64(e->element[0]);
		cl[*n].attempt = reply_i64(e->element[1]);
		cl[*n].type = dup_str(e->element[2]);
		cl[*n].payload = dup_str(e->element[3]);
		cl[*n].checkpoint =
			e->element[4]->len ? dup_str(e->element[4]) : NULL;
		cl[*n].low_priority = reply_i64(e->element[5]) == 1;
		cl[*n].root = reply_i64(e->element[6]);
		cl[*n].progress = e->element[7]->type == REDIS_REPLY_STRING ?
					  strtod(e->element[7]->str, NULL) :
					  0;
		*low += cl[*n].low_priority;
		(*n)++;
	}
	return rest;
}

static void claim_args(struct jobd_store *st, struct args *a,
		       const char *instance, int64_t lease_ms, int max,
		       int max_low)
{
	args_addf(a, "%lld", (long long)st->conf->retention_stats);
	args_add(a, instance);
	args_addf(a, "%lld", (long long)lease_ms);
	args_addf(a, "%d", max);
	args_addf(a, "%d", max_low);
	args_add(a, "10");
}

int jobd_store_claim(struct jobd_store *st, const char *instance, int max,
		     int max_low, int64_t lease_ms, struct jobd_claim **claims,
		     size_t *n)
{
	struct args a = { 0 };
	struct jobd_claim *cl;
	redisReply *r;
	bool fallback, rest = true;
	int low = 0;

	*claims = NULL;
	*n = 0;
	if (max <= 0)
		return 0;
	cl = calloc((size_t)max, sizeof(*cl));
	if (!cl)
		return JOBD_STORE_ERR_REDIS;
	claim_args(st, &a, instance, lease_ms, max, max_low);
	r = module_call(st, "JOBD.CLAIM", &a, &fallback);
	args_release(&a);
	if (!r && !fallback) {
		free(cl);
		return JOBD_STORE_ERR_REDIS;
	}
	if (r) {
		if (r->type == REDIS_REPLY_ARRAY)
			rest = claims_from(r, cl, n, &low);
		freeReplyObject(r);
	}
	if (rest && (int)*n < max) {
		/* What the module does not claim (a root with children, a
		 * due retry), or no module: claim.lua. */
		memset(&a, 0, sizeof(a));
		claim_args(st, &a, instance, lease_ms, max - (int)*n,
			   max_low > low ? max_low - low : 0);
		r = eval(st, S_CLAIM, &a);
		args_release(&a);
		if (!r) {
			/* The module's claims stand: hand them out. */
			if (*n == 0) {
				free(cl);
				return JOBD_STORE_ERR_REDIS;
			}
		} else {
			if (r->type == REDIS_REPLY_ARRAY)
				claims_from(r, cl, n, &low);
			freeReplyObject(r);
		}
	}
	if (*n == 0) {
		free(cl);
		return 0;
	}
	*claims = cl;
	return 0;
}

void jobd_store_claims_free(struct jobd_claim *claims, size_t n)
{
	if (!claims)
		return;
	for (size_t i = 0; i < n; i++) {
		free(claims[i].type);
		free(claims[i].payload);
		free(claims[i].checkpoint);
	}
	free(claims);
}

static enum jobd_result parse_result(const redisReply *e)
{
	static const struct {
		const char *name;
		enum jobd_result result;
	} map[] = {
		{ "ok", JOBD_RESULT_OK },
		{ "stop", JOBD_RESULT_STOP },
		{ "fenced", JOBD_RESULT_FENCED },
		{ "finished", JOBD_RESULT_FINISHED },
		{ "waiting", JOBD_RESULT_WAITING },
		{ "stopped", JOBD_RESULT_STOPPED },
		{ "retry", JOBD_RESULT_RETRY },
		{ "pending", JOBD_RESULT_PENDING },
	};

	if (e && e->type == REDIS_REPLY_STRING)
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(e->str, map[i].name) == 0)
				return map[i].result;
	return JOBD_RESULT_FENCED;
}

static int results_from(redisReply *r, size_t n, enum jobd_result *results)
{
	for (size_t i = 0; i < n; i++)
		results[i] =
			parse_result(i < r->elements ? r->element[i] : NULL);
	freeReplyObject(r);
	return 0;
}

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static const char *level_name(int level)
{
	if (level < 0 || level > 3)
		return "info";
	return level_names[level];
}

/* A progress as the scripts take it (-1 keeps the job's) in BUF (SIZE,
 * at least 32): "%.4g", with no printf for a whole number. */
static const char *progress_text(char *buf, size_t size, double progress)
{
	if (progress < 0)
		return "-1";
	if (progress <= 9999 && progress == floor(progress))
		buf[jobd_util_i64_text((int64_t)progress, buf)] = '\0';
	else
		snprintf(buf, size, "%.4g", progress);
	return buf;
}

static void add_progress(struct args *a, double progress)
{
	char buf[32];

	args_addf(a, "%s", progress_text(buf, sizeof(buf), progress));
}

int jobd_store_report(struct jobd_store *st, const struct jobd_report *rep,
		      size_t n, enum jobd_result *results)
{
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		struct args a = { 0 };
		redisReply *r;

		args_addf(&a, "%zu", len);
		for (size_t i = off; i < off + len; i++) {
			args_addf(&a, "%lld", (long long)rep[i].id);
			args_addf(&a, "%lld", (long long)rep[i].attempt);
			add_progress(&a, rep[i].progress);
			args_addf(&a, "%lld", (long long)rep[i].errors);
			args_add(&a, rep[i].checkpoint);
			args_addf(&a, "%zu", rep[i].nlogs);
			for (size_t j = 0; j < rep[i].nlogs; j++) {
				args_add(&a, level_name(rep[i].logs[j].level));
				args_add(&a, rep[i].logs[j].msg);
			}
		}
		r = eval(st, S_PROGRESS, &a);
		args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		results_from(r, len, results + off);
	}
	return 0;
}

static void finish_args(struct jobd_store *st, struct args *a,
			const struct jobd_report *rep, const size_t *idx,
			size_t len)
{
	static const char *const outcomes[] = { "done", "failed", "stopped" };

	args_addf(a, "%lld", (long long)st->conf->retention_stats);
	args_addf(a, "%zu", len);
	for (size_t k = 0; k < len; k++) {
		const struct jobd_report *p = &rep[idx[k]];

		args_addf(a, "%lld", (long long)p->id);
		args_addf(a, "%lld", (long long)p->attempt);
		args_add(a, outcomes[p->outcome]);
		add_progress(a, p->progress);
		args_addf(a, "%lld", (long long)p->errors);
		args_add(a, p->checkpoint);
		args_addf(a, "%.4f", (double)random() / RAND_MAX);
		args_add(a, p->message);
		args_addf(a, "%zu", p->nlogs);
		for (size_t j = 0; j < p->nlogs; j++) {
			args_add(a, level_name(p->logs[j].level));
			args_add(a, p->logs[j].msg);
		}
	}
}

static bool is_lua(const redisReply *e)
{
	return e && e->type == REDIS_REPLY_STRING && strcmp(e->str, "lua") == 0;
}

/*
 * JOBD.FINISH's arguments for the LEN runs of REP named by IDX, all done
 * without log lines: their list in one argument, "ID ATTEMPT PROGRESS
 * ERRORS LEN:CHECKPOINT\n" each (src/store/module/jobd_module.c parse_runs()).
 */
static void done_args(struct jobd_store *st, struct args *a,
		      const struct jobd_report *rep, const size_t *idx,
		      size_t len)
{
	char buf[32];
	struct list l = { 0 };

	for (size_t k = 0; k < len; k++) {
		const struct jobd_report *p = &rep[idx[k]];
		const char *pr = progress_text(buf, sizeof(buf), p->progress);

		list_int(&l, (long long)p->id);
		list_char(&l, ' ');
		list_int(&l, (long long)p->attempt);
		list_char(&l, ' ');
		list_put(&l, pr, strlen(pr));
		list_char(&l, ' ');
		list_int(&l, (long long)p->errors);
		list_char(&l, ' ');
		list_field(&l, p->checkpoint);
		list_char(&l, '\n');
	}
	args_addf(a, "%lld", (long long)st->conf->retention_stats);
	list_add(&l, a);
}

/*
 * Finishes the LEN runs of REP named by IDX: the module takes the runs
 * done without log lines that it can, finish.lua the rest (and those
 * the module answered "lua" for).
 */
static int finish_batch(struct jobd_store *st, const struct jobd_report *rep,
			size_t *idx, size_t len, enum jobd_result *results)
{
	struct args a = { 0 };
	redisReply *r;
	size_t done[JOBD_STORE_BATCH], ndone = 0, left = 0;

	for (size_t k = 0; k < len; k++) {
		const struct jobd_report *p = &rep[idx[k]];

		if (p->outcome == JOBD_OUTCOME_DONE && p->nlogs == 0)
			done[ndone++] = idx[k];
		else
			idx[left++] = idx[k];
	}
	if (ndone) {
		bool fallback;

		done_args(st, &a, rep, done, ndone);
		r = module_call(st, "JOBD.FINISH", &a, &fallback);
		args_release(&a);
		if (!r && !fallback)
			return JOBD_STORE_ERR_REDIS;
		for (size_t k = 0; k < ndone; k++) {
			redisReply *e = r && k < r->elements ? r->element[k] :
							       NULL;

			if (!r || is_lua(e))
				idx[left++] = done[k];
			else
				results[done[k]] = parse_result(e);
		}
		freeReplyObject(r);
	}
	if (left == 0)
		return 0;
	finish_args(st, &a, rep, idx, left);
	r = eval(st, S_FINISH, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t k = 0; k < left; k++)
		results[idx[k]] =
			parse_result(k < r->elements ? r->element[k] : NULL);
	freeReplyObject(r);
	return 0;
}

int jobd_store_finish(struct jobd_store *st, const struct jobd_report *rep,
		      size_t n, enum jobd_result *results)
{
	size_t idx[JOBD_STORE_BATCH];

	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		int rc;

		for (size_t k = 0; k < len; k++)
			idx[k] = off + k;
		rc = finish_batch(st, rep, idx, len, results);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int jobd_store_handback(struct jobd_store *st, const char *reason,
			const struct jobd_report *rep, size_t n,
			enum jobd_result *results)
{
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		struct args a = { 0 };
		redisReply *r;

		args_addf(&a, "%lld", (long long)st->conf->retention_stats);
		args_add(&a, reason);
		args_addf(&a, "%zu", len);
		for (size_t i = off; i < off + len; i++) {
			args_addf(&a, "%lld", (long long)rep[i].id);
			args_addf(&a, "%lld", (long long)rep[i].attempt);
			add_progress(&a, rep[i].progress);
			args_add(&a, rep[i].checkpoint);
		}
		r = eval(st, S_HANDBACK, &a);
		args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		results_from(r, len, results + off);
	}
	return 0;
}

int jobd_store_heartbeat(struct jobd_store *st, const int64_t *ids,
			 const int64_t *attempts, size_t n, int64_t lease_ms,
			 enum jobd_result *results)
{
	for (size_t off = 0; off < n || off == 0; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		struct args a = { 0 };
		redisReply *r;

		args_addf(&a, "%lld", (long long)lease_ms);
		args_addf(&a, "%zu", len);
		for (size_t i = off; i < off + len; i++) {
			args_addf(&a, "%lld", (long long)ids[i]);
			args_addf(&a, "%lld", (long long)attempts[i]);
		}
		r = eval(st, S_HEARTBEAT, &a);
		args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		results_from(r, len, results + off);
		if (n == 0)
			break;
	}
	return 0;
}

int jobd_store_expire(struct jobd_store *st, size_t max, size_t *n)
{
	struct args a = { 0 };
	redisReply *r;

	*n = 0;
	args_addf(&a, "%lld", (long long)st->conf->retention_stats);
	args_addf(&a, "%zu", max);
	r = eval(st, S_EXPIRE, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY)
		*n = r->elements;
	freeReplyObject(r);
	return 0;
}

int jobd_store_wait(struct jobd_store *st, int timeout_ms)
{
	redisReply *r = NULL;
	struct pollfd pfd;
	int woken = 0, n;

	if (!st->sub) {
		st->sub = connect_to(st);
		if (!st->sub)
			return JOBD_STORE_ERR_REDIS;
		r = redisCommand(st->sub, "SUBSCRIBE %s:wake",
				 st->conf->prefix);
		if (!r)
			goto err_lost;
		freeReplyObject(r);
		r = NULL;
		/* Jobs may have become ready before we listened. */
		return 1;
	}
	/*
	 * Poll the socket ourselves: a hiredis read timeout would leave the
	 * context unusable and we would miss wake-ups while resubscribing.
	 */
	pfd.fd = st->sub->fd;
	pfd.events = POLLIN;
	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : JOBD_STORE_ERR_REDIS;
	if (n == 0)
		return 0;
	if (redisBufferRead(st->sub) != REDIS_OK)
		goto err_lost;
	/* One wake-up is as good as many: drain what arrived. */
	while (redisGetReplyFromReader(st->sub, (void **)&r) == REDIS_OK && r) {
		freeReplyObject(r);
		r = NULL;
		woken = 1;
	}
	return woken;

err_lost:
	set_err(st, "redis at %s: subscription lost", st->conf->redis_address);
	drop(&st->sub);
	return JOBD_STORE_ERR_REDIS;
}

static int cascade_run(struct jobd_store *st, const char *task)
{
	for (;;) {
		struct args a = { 0 };
		redisReply *r;
		int64_t left;

		args_addf(&a, "%lld", (long long)st->conf->retention_stats);
		args_add(&a, task);
		args_add(&a, "200");
		r = eval(st, S_CASCADE, &a);
		args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		left = reply_i64(r);
		freeReplyObject(r);
		if (left == 0)
			return 0;
	}
}

int jobd_store_cascades_run(struct jobd_store *st, size_t max_calls,
			    size_t *left)
{
	redisReply *r;
	int rc = 0;

	*left = 0;
	if (ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	/* hiredis 0.14 formats no %zu. */
	r = jobd_store_command(st, "ZRANGE %s:cascades 0 %lld",
			       st->conf->prefix,
			       (long long)(max_calls ? max_calls - 1 : 0));
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < r->elements && rc == 0; i++)
		rc = cascade_run(st, r->element[i]->str);
	*left = r->elements;
	freeReplyObject(r);
	return rc;
}

/* --- operations -------------------------------------------------------- */

int jobd_op_parse(const char *name)
{
	for (int i = 0; i < JOBD_OP_COUNT; i++)
		if (strcmp(name, jobd_op_names[i]) == 0)
			return i;
	return -1;
}

static int op_batch(struct jobd_store *st, enum jobd_op op, const char *actor,
		    const int64_t *ids, size_t n, struct jobd_op_result *out)
{
	static const enum script_id scripts[JOBD_OP_COUNT] = {
		S_STOP,	   S_RESUME,	   S_FORCE_STOP,   S_CANCEL,
		S_RESTART, S_LOW_PRIORITY, S_LOW_PRIORITY,
	};
	struct args a = { 0 };
	redisReply *r;
	int rc = 0;

	args_addf(&a, "%lld", (long long)st->conf->retention_stats);
	args_add(&a, actor);
	if (op == JOBD_OP_LOW_PRIORITY || op == JOBD_OP_LOW_PRIORITY_OFF)
		args_add(&a, op == JOBD_OP_LOW_PRIORITY ? "1" : "0");
	for (size_t i = 0; i < n; i++)
		args_addf(&a, "%lld", (long long)ids[i]);
	r = eval(st, scripts[op], &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; i < n; i++) {
		redisReply *e = i < r->elements ? r->element[i] : NULL;

		out[i].id = ids[i];
		out[i].ok = false;
		out[i].error[0] = '\0';
		if (!e || e->type != REDIS_REPLY_STRING) {
			snprintf(out[i].error, sizeof(out[i].error),
				 "no answer from redis");
			continue;
		}
		if (strncmp(e->str, "ok", 2) == 0 &&
		    (e->str[2] == '\0' || e->str[2] == ':')) {
			out[i].ok = true;
			/* Descendants first, before the operator hears "done". */
			if (e->str[2] == ':' && rc == 0)
				rc = cascade_run(st, e->str + 3);
		} else {
			snprintf(out[i].error, sizeof(out[i].error), "%s",
				 e->str);
		}
	}
	freeReplyObject(r);
	return rc;
}

int jobd_store_op(struct jobd_store *st, enum jobd_op op, const char *actor,
		  const int64_t *ids, size_t n, struct jobd_op_result *out)
{
	if ((int)op < 0 || op >= JOBD_OP_COUNT)
		return JOBD_STORE_ERR_INVALID;
	for (size_t off = 0; off < n; off += JOBD_STORE_BATCH) {
		size_t len = n - off < JOBD_STORE_BATCH ? n - off :
							  JOBD_STORE_BATCH;
		int rc = op_batch(st, op, actor, ids + off, len, out + off);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* --- reading ----------------------------------------------------------- */

static struct jobd_job *job_from_reply(const redisReply *e)
{
	const char **names, **values;
	struct jobd_job *job;
	size_t n;

	if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2)
		return NULL;
	n = e->elements / 2;
	names = calloc(n, sizeof(*names));
	values = calloc(n, sizeof(*values));
	if (!names || !values) {
		free(names);
		free(values);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		names[i] = e->element[2 * i]->str;
		values[i] = e->element[2 * i + 1]->str;
	}
	job = jobd_job_from_fields(names, values, n);
	free(names);
	free(values);
	return job;
}

/* Appends the jobs of R's elements from FIRST on to LIST. */
static void append_jobs(struct jobd_job_list *list, const redisReply *r,
			size_t first)
{
	size_t add = r->elements > first ? r->elements - first : 0;
	struct jobd_job **jobs;

	if (add == 0)
		return;
	jobs = realloc(list->jobs, (list->n + add) * sizeof(*jobs));
	if (!jobs)
		return;
	list->jobs = jobs;
	for (size_t i = first; i < r->elements; i++) {
		struct jobd_job *job = job_from_reply(r->element[i]);

		if (job)
			list->jobs[list->n++] = job;
	}
}

int jobd_store_list(struct jobd_store *st, const struct jobd_filter *f,
		    struct jobd_job_list *out)
{
	char classes[16] = "ru";
	size_t limit = f->limit ? f->limit : 50;
	int64_t cursor = f->cursor;
	int64_t deadline = jobd_util_mono_ms() + 2000;

	memset(out, 0, sizeof(*out));
	if (limit > 1000)
		limit = 1000;
	if (f->system)
		strcat(classes, ",rs");
	if (f->all)
		strcat(classes, f->system ? ",cu,cs" : ",cu");
	/* Each call is bounded; call again until the page is full. */
	for (;;) {
		struct args a = { 0 };
		redisReply *r;
		bool more;

		args_add(&a, classes);
		args_add(&a, f->status);
		args_add(&a, f->type);
		args_add(&a, f->run_by);
		args_addf(&a, "%lld", (long long)cursor);
		args_addf(&a, "%zu", limit - out->n);
		args_add(&a, "2000");
		r = eval(st, S_LIST, &a);
		args_release(&a);
		if (!r) {
			jobd_job_list_release(out);
			return JOBD_STORE_ERR_REDIS;
		}
		out->now = reply_i64(r->element[0]);
		cursor = reply_i64(r->element[1]);
		more = reply_i64(r->element[2]) == 1;
		append_jobs(out, r, 3);
		freeReplyObject(r);
		if (!more) {
			out->next = 0;
			break;
		}
		out->next = cursor;
		if (out->n >= limit || jobd_util_mono_ms() > deadline)
			break;
	}
	return 0;
}

int jobd_store_children(struct jobd_store *st, int64_t id, int64_t cursor,
			size_t limit, struct jobd_job_list *out)
{
	struct args a = { 0 };
	redisReply *r;

	memset(out, 0, sizeof(*out));
	if (limit == 0 || limit > 1000)
		limit = limit ? 1000 : 50;
	args_addf(&a, "%lld", (long long)id);
	args_addf(&a, "%lld", (long long)cursor);
	args_addf(&a, "%zu", limit);
	r = eval(st, S_CHILDREN, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_STRING) {
		set_err(st, "%s", r->str);
		freeReplyObject(r);
		return JOBD_STORE_ERR_NOTFOUND;
	}
	out->now = reply_i64(r->element[0]);
	out->next = reply_i64(r->element[1]);
	append_jobs(out, r, 2);
	freeReplyObject(r);
	return 0;
}

int jobd_store_get(struct jobd_store *st, int64_t id, struct jobd_job **job,
		   int64_t *now)
{
	struct args a = { 0 };
	redisReply *r;

	*job = NULL;
	args_addf(&a, "%lld", (long long)id);
	r = eval(st, S_SHOW, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	*now = reply_i64(r->element[0]);
	if (r->elements > 1)
		*job = job_from_reply(r->element[1]);
	freeReplyObject(r);
	if (!*job) {
		set_err(st, "job %lld not found", (long long)id);
		return JOBD_STORE_ERR_NOTFOUND;
	}
	return 0;
}

int jobd_store_counts(struct jobd_store *st, int64_t counts[JOBD_STATUS_COUNT])
{
	redisReply *r;

	r = jobd_store_command(
		st,
		"HMGET %s:count pending in_progress stopping stopped "
		"finished canceled",
		st->conf->prefix);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (int i = 0; i < JOBD_STATUS_COUNT; i++)
		counts[i] = i < (int)r->elements ? reply_i64(r->element[i]) : 0;
	freeReplyObject(r);
	return 0;
}

/* --- logs --------------------------------------------------------------- */

static int level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return 1;
}

void jobd_log_result_release(struct jobd_log_result *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->entries[i].msg);
	free(r->entries);
	memset(r, 0, sizeof(*r));
}

static bool entry_matches(const struct jobd_log_entry *e,
			  const struct jobd_log_query *q)
{
	if (e->level < q->min_level)
		return false;
	if (q->grep && *q->grep && !strcasestr(e->msg, q->grep))
		return false;
	return !q->match || q->match(e, q->match_arg);
}

static int push_entry(struct jobd_log_result *out, size_t *cap,
		      struct jobd_log_entry *e)
{
	if (out->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct jobd_log_entry *v =
			realloc(out->entries, ncap * sizeof(*v));

		if (!v)
			return -1;
		out->entries = v;
		*cap = ncap;
	}
	out->entries[out->n++] = *e;
	return 0;
}

/* Reads one job's stream in chunks, appending matching entries to OUT. */
static int read_log(struct jobd_store *st, int64_t job,
		    const struct jobd_log_query *q, size_t limit,
		    struct jobd_log_result *out, size_t *cap)
{
	char start[48], end[48];

	if (q->after && *q->after)
		snprintf(start, sizeof(start), "(%s", q->after);
	else
		snprintf(start, sizeof(start), "%lld",
			 (long long)(q->since > 0 ? q->since : 0));
	if (q->until > 0)
		snprintf(end, sizeof(end), "%lld", (long long)q->until);
	else
		snprintf(end, sizeof(end), "+");
	for (;;) {
		redisReply *r = jobd_store_command(
			st, "XRANGE %s:log:%lld %s %s COUNT 500",
			st->conf->prefix, (long long)job, start, end);
		size_t i;

		if (!r)
			return JOBD_STORE_ERR_REDIS;
		if (r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return 0;
		}
		for (i = 0; i < r->elements; i++) {
			redisReply *ent = r->element[i];
			redisReply *kv = ent->element[1];
			struct jobd_log_entry e = { .job = job };

			snprintf(e.sid, sizeof(e.sid), "%s",
				 ent->element[0]->str);
			e.ms = strtoll(e.sid, NULL, 10);
			for (size_t k = 0; k + 1 < kv->elements; k += 2) {
				const char *f = kv->element[k]->str;
				const char *v = kv->element[k + 1]->str;

				if (strcmp(f, "level") == 0)
					e.level = level_parse(v);
				else if (strcmp(f, "attempt") == 0)
					e.attempt = strtoll(v, NULL, 10);
				else if (strcmp(f, "msg") == 0)
					e.msg = (char *)v;
			}
			if (!e.msg)
				e.msg = "";
			if (!entry_matches(&e, q))
				continue;
			if (out->n >= limit) {
				out->truncated = true;
				break;
			}
			e.msg = strdup(e.msg);
			if (!e.msg || push_entry(out, cap, &e) < 0) {
				free(e.msg);
				freeReplyObject(r);
				set_err(st, "out of memory reading logs");
				return JOBD_STORE_ERR_REDIS;
			}
		}
		if (r->elements < 500 || out->truncated) {
			freeReplyObject(r);
			return 0;
		}
		snprintf(start, sizeof(start), "(%s",
			 r->element[r->elements - 1]->element[0]->str);
		freeReplyObject(r);
	}
}

/* Compares stream ids "MS-SEQ" as numbers. */
static int cmp_sid(const char *a, const char *b)
{
	unsigned long long ams = strtoull(a, NULL, 10),
			   bms = strtoull(b, NULL, 10);
	const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
	unsigned long long aseq = ad ? strtoull(ad + 1, NULL, 10) : 0;
	unsigned long long bseq = bd ? strtoull(bd + 1, NULL, 10) : 0;

	if (ams != bms)
		return ams < bms ? -1 : 1;
	if (aseq != bseq)
		return aseq < bseq ? -1 : 1;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct jobd_log_entry *x = a, *y = b;
	int c = cmp_sid(x->sid, y->sid);

	if (c)
		return c;
	return x->job < y->job ? -1 : x->job > y->job;
}

/* Appends the ids of the descendants of ID to *IDS (bounded). */
static int descendants(struct jobd_store *st, int64_t id, int64_t **ids,
		       size_t *n, size_t max)
{
	size_t cap = 64, head = 0;
	int64_t *v = malloc(cap * sizeof(*v));

	if (!v)
		return JOBD_STORE_ERR_REDIS;
	v[0] = id;
	*n = 1;
	while (head < *n && *n < max) {
		redisReply *r = jobd_store_command(
			st, "ZRANGE %s:children:%lld 0 -1", st->conf->prefix,
			(long long)v[head++]);

		if (!r) {
			free(v);
			return JOBD_STORE_ERR_REDIS;
		}
		for (size_t i = 0; i < r->elements && *n < max; i++) {
			if (*n == cap) {
				int64_t *nv =
					realloc(v, (cap *= 2) * sizeof(*v));

				if (!nv) {
					freeReplyObject(r);
					free(v);
					return JOBD_STORE_ERR_REDIS;
				}
				v = nv;
			}
			v[(*n)++] = strtoll(r->element[i]->str, NULL, 10);
		}
		freeReplyObject(r);
	}
	*ids = v;
	return 0;
}

/*
 * The lifecycle entries that the job hash records and the hot path does
 * not write to the stream (one write less per transition): created, the
 * current claim, finished. Fills E (their messages in MSG) and returns
 * how many; each entry's sid is "MS-0", before any stream entry of the
 * same millisecond. STEP (NULL: not wanted) gets which entry each one is:
 * 0 created, 1 claimed, 2 finished.
 */
static size_t lifecycle_make(const struct jobd_job *job,
			     struct jobd_log_entry e[3], char msg[3][512],
			     int step[3])
{
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		struct jobd_log_entry *x = &e[n];
		char *m = msg[n];
		const char *by;
		int len;

		memset(x, 0, sizeof(*x));
		x->job = job->id;
		switch (i) {
		case 0:
			by = job->created_by ? job->created_by :
			     job->source     ? JOBD_ACTOR_KAFKA :
			     job->run_by     ? job->run_by :
					       "system";
			len = snprintf(m, 512, "created by %s", by);
			if (job->source)
				len += snprintf(m + len, 512 - len, " from %s",
						job->source);
			if (job->parent)
				snprintf(m + len, 512 - len,
					 " as a child of %lld",
					 (long long)job->parent);
			x->ms = job->created_at;
			x->level = JOBD_LOG_INFO;
			break;
		case 1:
			if (!job->claimed_at || !job->instance)
				continue;
			snprintf(m, 512, "claimed by %s attempt %lld",
				 job->instance, (long long)job->attempt);
			x->ms = job->claimed_at;
			x->level = JOBD_LOG_INFO;
			x->attempt = job->attempt;
			break;
		default:
			if (job->status != JOBD_FINISHED)
				continue;
			snprintf(m, 512, "%s",
				 job->with_errors ? "finished with errors" :
						    "finished");
			x->ms = job->finished_at;
			x->level = job->with_errors ? JOBD_LOG_WARN :
						      JOBD_LOG_INFO;
			x->attempt = job->attempt;
			break;
		}
		snprintf(x->sid, sizeof(x->sid), "%lld-0", (long long)x->ms);
		x->msg = m;
		if (step)
			step[n] = i;
		n++;
	}
	return n;
}

/* The lifecycle entries of job ID that match Q, appended to OUT. */
static int lifecycle_entries(struct jobd_store *st, int64_t id,
			     const struct jobd_log_query *q, size_t limit,
			     struct jobd_log_result *out, size_t *cap)
{
	struct jobd_log_entry e[3];
	struct jobd_job *job;
	char msg[3][512];
	int64_t now;
	int rc = jobd_store_get(st, id, &job, &now);
	size_t ne;
	int n = 0;

	if (rc == JOBD_STORE_ERR_NOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	ne = lifecycle_make(job, e, msg, NULL);
	for (size_t i = 0; i < ne; i++) {
		if ((q->since && e[i].ms < q->since) ||
		    (q->until && e[i].ms > q->until) ||
		    (q->after && *q->after &&
		     cmp_sid(e[i].sid, q->after) <= 0) ||
		    !entry_matches(&e[i], q))
			continue;
		if (out->n >= limit) {
			out->truncated = true;
			break;
		}
		e[i].msg = strdup(msg[i]);
		if (!e[i].msg || push_entry(out, cap, &e[i]) < 0) {
			free(e[i].msg);
			rc = JOBD_STORE_ERR_REDIS;
			break;
		}
		n++;
	}
	jobd_job_free(job);
	return rc < 0 ? rc : n;
}

static int read_logs_of(struct jobd_store *st, const int64_t *ids, size_t nids,
			const struct jobd_log_query *q,
			struct jobd_log_result *out)
{
	size_t limit = q->limit ? q->limit : 1000, cap = 0;
	int rc = 0;

	for (size_t i = 0; i < nids && rc >= 0; i++) {
		/* Each job may fill the page: the merge keeps the oldest. */
		size_t room = nids > 1 ? out->n + limit : limit;

		rc = read_log(st, ids[i], q, room, out, &cap);
		if (rc >= 0)
			rc = lifecycle_entries(st, ids[i], q, room + 3, out,
					       &cap);
	}
	if (rc < 0) {
		jobd_log_result_release(out);
		return rc;
	}
	if (out->n > 1) /* qsort(NULL, 0, ...) is undefined */
		qsort(out->entries, out->n, sizeof(*out->entries), cmp_entry);
	if (out->n > limit) {
		for (size_t i = limit; i < out->n; i++)
			free(out->entries[i].msg);
		out->n = limit;
		out->truncated = true;
	}
	return 0;
}

int jobd_store_logs(struct jobd_store *st, int64_t id,
		    const struct jobd_log_query *q, struct jobd_log_result *out)
{
	int64_t *ids = NULL;
	size_t nids = 1;
	redisReply *r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	r = jobd_store_command(st, "EXISTS %s:job:%lld", st->conf->prefix,
			       (long long)id);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	rc = r->integer == 1 ? 0 : JOBD_STORE_ERR_NOTFOUND;
	freeReplyObject(r);
	if (rc < 0) {
		set_err(st, "job %lld not found", (long long)id);
		return rc;
	}
	/* Entries trimmed by MAXLEN: added so far minus still there. */
	r = jobd_store_command(st, "XINFO STREAM %s:log:%lld", st->conf->prefix,
			       (long long)id);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY) {
		int64_t len = 0, added = 0;

		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			if (strcmp(r->element[i]->str, "length") == 0)
				len = reply_i64(r->element[i + 1]);
			else if (strcmp(r->element[i]->str, "entries-added") ==
				 0)
				added = reply_i64(r->element[i + 1]);
		}
		out->dropped = added > len ? added - len : 0;
	}
	freeReplyObject(r);
	if (q->tree) {
		rc = descendants(st, id, &ids, &nids, 100000);
		if (rc < 0)
			return rc;
		rc = read_logs_of(st, ids, nids, q, out);
		free(ids);
	} else {
		rc = read_logs_of(st, &id, 1, q, out);
	}
	return rc;
}

/*
 * The search across jobs (jobd_store_logs_all) orders what it finds by a
 * key: an entry read through the index by the id of its index entry
 * (MS-SEQ, unique), a lifecycle entry by its time and step (0 created,
 * 1 claimed, 2 finished: a job created and claimed in one millisecond
 * has two) as if they were MS-STEP, before an index entry of the same
 * id, and by job among themselves. A cursor is the key of the last entry
 * delivered, as text: "MS-SEQ" for an index entry, "MS-STEP/JOB" for a
 * lifecycle entry; the next page has every key after it.
 */
struct log_key {
	int64_t ms, seq; /* index entry id; lifecycle: its time (ms), step */
	int kind;	 /* 0 lifecycle, 1 index entry */
	int64_t job;	 /* lifecycle: its job; index entry: INT64_MAX */
};

/* An entry found, with its key. */
struct log_found {
	struct log_key key;
	struct jobd_log_entry e; /* msg owned */
};

static int cmp_key(const struct log_key *a, const struct log_key *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return a->job < b->job ? -1 : a->job > b->job;
}

static int cmp_found(const void *a, const void *b)
{
	return cmp_key(&((const struct log_found *)a)->key,
		       &((const struct log_found *)b)->key);
}

/* Reads "MS-SEQ" or "MS-SEQ/JOB" into *K; false if S is neither. */
static bool key_parse(const char *s, struct log_key *k)
{
	char *end;

	if (!s || !(*s >= '0' && *s <= '9'))
		return false;
	errno = 0;
	k->ms = strtoll(s, &end, 10);
	if (*end != '-' || !(end[1] >= '0' && end[1] <= '9'))
		return false;
	k->seq = strtoll(end + 1, &end, 10);
	k->kind = 1;
	k->job = INT64_MAX;
	if (*end == '/') {
		if (!(end[1] >= '0' && end[1] <= '9'))
			return false;
		k->kind = 0;
		k->job = strtoll(end + 1, &end, 10);
	}
	return *end == '\0' && errno == 0 && k->ms >= 0 && k->seq >= 0 &&
	       k->job >= 0;
}

static void key_text(const struct log_key *k, char *buf, size_t size)
{
	if (k->kind)
		snprintf(buf, size, "%lld-%lld", (long long)k->ms,
			 (long long)k->seq);
	else
		snprintf(buf, size, "%lld-%lld/%lld", (long long)k->ms,
			 (long long)k->seq, (long long)k->job);
}

bool jobd_store_log_cursor_valid(const char *s)
{
	struct log_key k;

	return strlen(s) < JOBD_LOG_CURSOR_SIZE && key_parse(s, &k);
}

/* Growing arrays of the search: the entries found, the jobs met. */
struct log_page {
	struct log_found *found; /* owned, N of CAP used */
	size_t n, cap;		 /* entries */
	struct jobd_job **jobs;	 /* owned, NJOBS of CAPJOBS used */
	size_t njobs, capjobs;	 /* jobs, a job once per logscan call */
};

static void log_page_release(struct log_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->found[i].e.msg);
	free(p->found);
	for (size_t i = 0; i < p->njobs; i++)
		jobd_job_free(p->jobs[i]);
	free(p->jobs);
	memset(p, 0, sizeof(*p));
}

/* Appends E (its msg copied) under key K; -1 when out of memory. */
static int page_add(struct log_page *p, const struct log_key *k,
		    const struct jobd_log_entry *e)
{
	struct log_found *f;

	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;

		f = realloc(p->found, ncap * sizeof(*f));
		if (!f)
			return -1;
		p->found = f;
		p->cap = ncap;
	}
	f = &p->found[p->n];
	f->key = *k;
	f->e = *e;
	f->e.msg = strdup(e->msg ? e->msg : "");
	if (!f->e.msg)
		return -1;
	p->n++;
	return 0;
}

static int page_add_job(struct log_page *p, struct jobd_job *job)
{
	if (p->njobs == p->capjobs) {
		size_t ncap = p->capjobs ? p->capjobs * 2 : 64;
		struct jobd_job **v = realloc(p->jobs, ncap * sizeof(*v));

		if (!v)
			return -1;
		p->jobs = v;
		p->capjobs = ncap;
	}
	p->jobs[p->njobs++] = job;
	return 0;
}

/*
 * The next field of a logscan.lua string at *P (END its end), up to a
 * NUL: copied into BUF of SIZE (cut to fit); false when none is left.
 */
static bool scan_field(const char **p, const char *end, char *buf, size_t size)
{
	const char *z = memchr(*p, '\0', (size_t)(end - *p));
	size_t n;

	if (!z)
		return false;
	n = (size_t)(z - *p) < size ? (size_t)(z - *p) : size - 1;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p = z + 1;
	return true;
}

/*
 * A log entry of logscan.lua's reply, "POSITION\0JOB\0ID\0LEVEL\0ATTEMPT\0
 * MESSAGE": its key into *K, the entry into *E (its msg borrowed from R).
 */
static bool scan_entry(const redisReply *r, struct log_key *k,
		       struct jobd_log_entry *e)
{
	const char *p = r->str, *end = r->str + r->len;
	char pos[48], job[24], level[16], attempt[24];

	memset(e, 0, sizeof(*e));
	if (r->type != REDIS_REPLY_STRING ||
	    !scan_field(&p, end, pos, sizeof(pos)) ||
	    !scan_field(&p, end, job, sizeof(job)) ||
	    !scan_field(&p, end, e->sid, sizeof(e->sid)) ||
	    !scan_field(&p, end, level, sizeof(level)) ||
	    !scan_field(&p, end, attempt, sizeof(attempt)) ||
	    !key_parse(pos, k) || k->kind != 1)
		return false;
	e->job = strtoll(job, NULL, 10);
	e->ms = strtoll(e->sid, NULL, 10);
	e->level = level_parse(level);
	e->attempt = strtoll(attempt, NULL, 10);
	e->msg = (char *)p; /* the rest, up to the reply's own NUL */
	return true;
}

/* logscan.lua's LIFECYCLE, in its order, after the id. */
static const char *const lifecycle_fields[] = {
	"id",	  "created_at",	 "created_by",	"source",   "run_by",
	"parent", "claimed_at",	 "started_at",	"instance", "attempt",
	"status", "finished_at", "with_errors", "type",
};
#define NLIFECYCLE (sizeof(lifecycle_fields) / sizeof(*lifecycle_fields))

/* A job of logscan.lua's reply: its values, each ended by a NUL. */
static struct jobd_job *scan_job(const redisReply *r)
{
	const char *names[NLIFECYCLE], *values[NLIFECYCLE];
	char *buf, *p, *end;
	struct jobd_job *job;
	size_t n = 0;

	if (r->type != REDIS_REPLY_STRING || !(buf = malloc(r->len + 1)))
		return NULL;
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	p = buf;
	end = buf + r->len;
	for (size_t i = 0; i < NLIFECYCLE && p < end; i++) {
		char *z = memchr(p, '\0', (size_t)(end - p));

		if (!z)
			break;
		if (z > p) { /* "" is an absent field */
			names[n] = lifecycle_fields[i];
			values[n++] = p;
		}
		p = z + 1;
	}
	job = jobd_job_from_fields(names, values, n);
	free(buf);
	return job;
}

static int cmp_job_id(const void *a, const void *b)
{
	int64_t x = (*(struct jobd_job *const *)a)->id;
	int64_t y = (*(struct jobd_job *const *)b)->id;

	return x < y ? -1 : x > y;
}

/*
 * The lifecycle entries of the jobs met in the page, those whose keys lie
 * in the part of the timeline the page covers: after FROM, up to END
 * (NULL: to the end of the window).
 */
static int page_lifecycle(struct log_page *p, const struct log_key *from,
			  const struct log_key *end,
			  const struct jobd_log_query *q, int64_t since,
			  int64_t until)
{
	if (p->njobs > 1)
		qsort(p->jobs, p->njobs, sizeof(*p->jobs), cmp_job_id);
	for (size_t i = 0; i < p->njobs; i++) {
		struct jobd_log_entry e[3];
		char msg[3][512];
		int step[3];
		size_t ne;

		if (i > 0 && p->jobs[i]->id == p->jobs[i - 1]->id)
			continue;
		ne = lifecycle_make(p->jobs[i], e, msg, step);
		for (size_t k = 0; k < ne; k++) {
			struct log_key key = { e[k].ms, step[k], 0, e[k].job };

			if (e[k].ms < since || e[k].ms > until ||
			    cmp_key(&key, from) <= 0 ||
			    (end && cmp_key(&key, end) > 0) ||
			    !entry_matches(&e[k], q))
				continue;
			if (page_add(p, &key, &e[k]) < 0)
				return -1;
		}
	}
	return 0;
}

/* Index entries one logscan.lua call reads at most, and at least while
 * the scan bound allows. */
#define LOG_SCAN_CALL 2000
#define LOG_SCAN_MIN 256

int jobd_store_logs_all(struct jobd_store *st, const struct jobd_log_query *q,
			struct jobd_log_result *out)
{
	size_t limit = q->limit ? q->limit : 1000;
	size_t budget = q->scan_max ? q->scan_max : JOBD_LOG_SCAN_MAX;
	size_t matched = 0;
	struct log_page p = { 0 };
	struct log_key from, at, end;
	int64_t until, since;
	bool done = false;
	int rc = JOBD_STORE_ERR_REDIS;

	memset(out, 0, sizeof(*out));
	until = q->until > 0 ? q->until : jobd_util_now_ms() + 60000;
	since = q->since > 0 ? q->since : until - 3600000;
	if (q->cursor && *q->cursor) {
		if (!key_parse(q->cursor, &from)) {
			set_err(st, "bad cursor \"%.40s\"", q->cursor);
			return JOBD_STORE_ERR_INVALID;
		}
		/* A relative since moved on since the first page. */
		since = from.ms;
	} else {
		from = (struct log_key){ since, 0, 0, 0 };
	}
	at = from;
	while (!done && out->scanned < budget && matched < limit) {
		size_t want = budget - out->scanned;
		struct args a = { 0 };
		redisReply *r, *ents, *jobs;

		/* Enough to fill the page if all match, not so few that a
		 * rare match takes many calls. */
		if (want > LOG_SCAN_CALL)
			want = LOG_SCAN_CALL;
		if (want > LOG_SCAN_MIN && want > limit - matched)
			want = limit - matched > LOG_SCAN_MIN ?
				       limit - matched :
				       LOG_SCAN_MIN;
		/* After AT: an index entry's successor, or from a lifecycle
		 * key's millisecond on. */
		args_addf(&a, "%lld-%lld", (long long)at.ms,
			  (long long)(at.kind ? at.seq + 1 : at.seq));
		args_addf(&a, "%lld", (long long)until);
		args_addf(&a, "%zu", want);
		r = eval(st, S_LOGSCAN, &a);
		args_release(&a);
		if (!r)
			goto out;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
			freeReplyObject(r);
			set_err(st, "logscan.lua: unexpected reply");
			goto out;
		}
		ents = r->element[1];
		jobs = r->element[2];
		out->scanned += (size_t)reply_i64(r->element[3]);
		for (size_t i = 0; i < ents->elements; i++) {
			struct jobd_log_entry e;
			struct log_key k;

			if (!scan_entry(ents->element[i], &k, &e) ||
			    !entry_matches(&e, q))
				continue;
			if (page_add(&p, &k, &e) < 0)
				goto oom;
			matched++;
		}
		for (size_t i = 0; i < jobs->elements; i++) {
			struct jobd_job *job = scan_job(jobs->element[i]);

			if (job && page_add_job(&p, job) < 0) {
				jobd_job_free(job);
				goto oom;
			}
		}
		if (r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len == 0)
			done = true;
		else if (!key_parse(r->element[0]->str, &at)) {
			freeReplyObject(r);
			set_err(st, "logscan.lua: bad position");
			goto out;
		}
		freeReplyObject(r);
		continue;
oom:
		freeReplyObject(r);
		set_err(st, "out of memory searching logs");
		goto out;
	}
	end = at;
	if (page_lifecycle(&p, &from, done ? NULL : &end, q, since, until) <
	    0) {
		set_err(st, "out of memory searching logs");
		goto out;
	}
	if (p.n > 1)
		qsort(p.found, p.n, sizeof(*p.found), cmp_found);
	if (p.n > limit) {
		key_text(&p.found[limit - 1].key, out->next, sizeof(out->next));
		for (size_t i = limit; i < p.n; i++)
			free(p.found[i].e.msg);
		p.n = limit;
	} else if (!done) {
		key_text(&end, out->next, sizeof(out->next));
	}
	out->truncated = out->next[0] != '\0';
	out->entries = calloc(p.n ? p.n : 1, sizeof(*out->entries));
	if (!out->entries) {
		set_err(st, "out of memory searching logs");
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		out->entries[i] = p.found[i].e;
		p.found[i].e.msg = NULL;
	}
	out->n = p.n;
	p.n = 0;
	rc = 0;
out:
	log_page_release(&p);
	if (rc < 0)
		jobd_log_result_release(out);
	return rc;
}

/* --- statistics ---------------------------------------------------------- */

void jobd_stats_release(struct jobd_stats *s)
{
	for (size_t i = 0; i < s->n; i++) {
		for (size_t t = 0; t < s->minutes[i].ntypes; t++)
			free(s->minutes[i].types[t].type);
		free(s->minutes[i].types);
	}
	free(s->minutes);
	memset(s, 0, sizeof(*s));
}

int64_t jobd_stats_percentile(const struct jobd_stats_counts *c, double p)
{
	int64_t rank, seen = 0;

	if (c->started <= 0)
		return -1;
	rank = (int64_t)(p / 100.0 * (double)c->started + 0.999999);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < JOBD_STATS_BUCKETS; b++) {
		seen += c->hist[b];
		if (seen >= rank) {
			/* Upper edge of bucket b, within the seen min/max. */
			int64_t edge = (int64_t)(exp2((b + 1) / 4.0) - 1);

			if (edge > c->wait_max)
				edge = c->wait_max;
			if (edge < c->wait_min)
				edge = c->wait_min;
			return edge;
		}
	}
	return c->wait_max;
}

static struct jobd_stats_counts *type_counts(struct jobd_stats_minute *m,
					     const char *type, size_t len)
{
	struct jobd_stats_type *v;

	for (size_t i = 0; i < m->ntypes; i++)
		if (strlen(m->types[i].type) == len &&
		    memcmp(m->types[i].type, type, len) == 0)
			return &m->types[i].c;
	v = realloc(m->types, (m->ntypes + 1) * sizeof(*v));
	if (!v)
		return NULL;
	m->types = v;
	memset(&v[m->ntypes], 0, sizeof(v[0]));
	v[m->ntypes].type = strndup(type, len);
	v[m->ntypes].c.wait_min = -1;
	v[m->ntypes].c.wait_max = -1;
	return &v[m->ntypes++].c;
}

void jobd_store_stats_field(struct jobd_stats_minute *m, const char *f,
			    int64_t v, const char *only)
{
	struct jobd_stats_counts *c = &m->all;
	char name[64];
	const char *bar = strchr(f, '|');
	size_t flen = strlen(f);

	if (bar) {
		const char *ty = bar + 1;
		size_t tlen = strlen(ty);

		/* "wait|TYPE_min": the suffix follows the type. */
		if (strncmp(f, "wait|", 5) == 0 && tlen > 4 &&
		    (strcmp(f + flen - 4, "_min") == 0 ||
		     strcmp(f + flen - 4, "_max") == 0)) {
			tlen -= 4;
			snprintf(name, sizeof(name), "wait%s", f + flen - 4);
		} else {
			snprintf(name, sizeof(name), "%.*s", (int)(bar - f), f);
		}
		if (only && (strlen(only) != tlen || memcmp(only, ty, tlen)))
			return;
		c = type_counts(m, ty, tlen);
		if (!c)
			return;
	} else {
		snprintf(name, sizeof(name), "%s", f);
	}
	/* Added, not set: an hour adds the minutes not rolled into it. */
	if (strcmp(name, "created") == 0)
		c->created += v;
	else if (strcmp(name, "started") == 0)
		c->started += v;
	else if (strcmp(name, "finished") == 0)
		c->finished += v;
	else if (strcmp(name, "errors") == 0)
		c->errors += v;
	else if (strcmp(name, "wait_sum") == 0)
		c->wait_sum += v;
	else if (strcmp(name, "wait_min") == 0) {
		if (c->wait_min < 0 || v < c->wait_min)
			c->wait_min = v;
	} else if (strcmp(name, "wait_max") == 0) {
		if (v > c->wait_max)
			c->wait_max = v;
	} else if (name[0] == 'h' && v > 0) {
		int b = atoi(name + 1);

		if (b >= 0 && b < JOBD_STATS_BUCKETS)
			c->hist[b] += v;
	}
}

/*
 * The hours of OUT (hourly windows from FIRST) hold their minutes once a
 * script has rolled them up (lib.lua, roll_up); the minutes after ROLLED
 * (P:stats:rolled, read with the hours in one transaction), the last few,
 * are added to their hour here: closed minutes no longer change, and one
 * rolled up since was not in the hours read. ROLLED nil: no statistics
 * were written since hours were written directly.
 */
static int add_unrolled(struct jobd_store *st, const redisReply *rolled,
			int64_t first, const char *type, struct jobd_stats *out)
{
	const char *p = st->conf->prefix;
	long long from;
	redisReply *r, **h = NULL;
	int rc = 0;

	if (rolled->type != REDIS_REPLY_STRING)
		return 0;
	from = strtoll(rolled->str, NULL, 10);
	if (from < first - 1)
		from = first - 1;
	if (!(r = jobd_store_command(
		      st, "ZRANGEBYSCORE %s:stats:minutes (%lld +inf", p,
		      from)))
		return JOBD_STORE_ERR_REDIS;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		return 0;
	}
	h = calloc(r->elements, sizeof(*h));
	if (!h)
		abort();
	for (size_t i = 0; i < r->elements; i++)
		redisAppendCommand(st->c, "HGETALL %s:stats:m:%s", p,
				   r->element[i]->str);
	if (jobd_store_pipeline_read(st, r->elements, h) < 0)
		rc = JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; rc == 0 && i < r->elements; i++) {
		long long m = strtoll(r->element[i]->str, NULL, 10);
		int64_t k = (m - m % 3600000 - first) / 3600000;

		if (k < 0 || k >= (int64_t)out->n)
			continue;
		for (size_t f = 0;
		     h[i]->type == REDIS_REPLY_ARRAY && f + 1 < h[i]->elements;
		     f += 2)
			jobd_store_stats_field(
				&out->minutes[k], h[i]->element[f]->str,
				strtoll(h[i]->element[f + 1]->str, NULL, 10),
				type);
	}
	for (size_t i = 0; rc == 0 && i < r->elements; i++)
		freeReplyObject(h[i]);
	free(h);
	freeReplyObject(r);
	return rc;
}

int jobd_store_stats(struct jobd_store *st, int64_t since, const char *type,
		     struct jobd_stats *out)
{
	int64_t now, span, first, nspans;
	redisReply *r;

	memset(out, 0, sizeof(*out));
	if (ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	r = redisCommand(st->c, "TIME");
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		if (r)
			freeReplyObject(r);
		set_err(st, "redis at %s: no TIME", st->conf->redis_address);
		drop(&st->c);
		return JOBD_STORE_ERR_REDIS;
	}
	now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
	      strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	out->now = now;
	if (since <= 0 || since > now)
		since = now - 3600000;
	/* Minutes up to six hours; hourly rollups for longer windows. */
	span = now - since > 6 * 3600000LL ? 3600000 : 60000;
	first = since - since % span;
	nspans = (now - first) / span + 1;
	out->minutes = calloc((size_t)nspans, sizeof(*out->minutes));
	if (!out->minutes)
		return JOBD_STORE_ERR_REDIS;
	/* The windows and the roll-up mark in one transaction (see
	 * add_unrolled): MULTI, GET, NSPANS HGETALL, EXEC. */
	redisAppendCommand(st->c, "MULTI");
	redisAppendCommand(st->c, "GET %s:stats:rolled", st->conf->prefix);
	for (int64_t i = 0; i < nspans; i++)
		redisAppendCommand(st->c, "HGETALL %s:stats:%s:%lld",
				   st->conf->prefix, span == 60000 ? "m" : "h",
				   (long long)(first + i * span));
	redisAppendCommand(st->c, "EXEC");
	for (int64_t i = 0; i < nspans + 3; i++) {
		if (redisGetReply(st->c, (void **)&r) != REDIS_OK) {
			lost(st);
			free(out->minutes);
			out->minutes = NULL;
			return JOBD_STORE_ERR_REDIS;
		}
		if (i < nspans + 2)
			freeReplyObject(r);
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)nspans + 1) {
		set_err(st, "redis at %s: statistics transaction failed",
			st->conf->redis_address);
		freeReplyObject(r);
		free(out->minutes);
		out->minutes = NULL;
		return JOBD_STORE_ERR_REDIS;
	}
	for (int64_t i = 0; i < nspans; i++) {
		struct jobd_stats_minute *m = &out->minutes[i];
		const redisReply *h = r->element[i + 1];

		m->minute = first + i * span;
		m->closed = m->minute + span <= now;
		m->all.wait_min = m->all.wait_max = -1;
		for (size_t k = 0;
		     h->type == REDIS_REPLY_ARRAY && k + 1 < h->elements;
		     k += 2)
			jobd_store_stats_field(m, h->element[k]->str,
					       strtoll(h->element[k + 1]->str,
						       NULL, 10),
					       type);
	}
	out->n = (size_t)nspans;
	if (span == 3600000 &&
	    add_unrolled(st, r->element[0], first, type, out) < 0) {
		freeReplyObject(r);
		jobd_stats_release(out);
		return JOBD_STORE_ERR_REDIS;
	}
	freeReplyObject(r);
	return 0;
}

/* --- embedded broker -------------------------------------------------------- */

int jobd_store_broker_claim(struct jobd_store *st, const char *addr,
			    int64_t ttl_ms, char *current, size_t size)
{
	struct args a = { 0 };
	redisReply *r;
	int won;

	args_add(&a, addr);
	args_addf(&a, "%lld", (long long)ttl_ms);
	r = eval(st, S_BROKER_CLAIM, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	won = reply_i64(r->element[0]) == 1;
	snprintf(current, size, "%.*s", (int)r->element[1]->len,
		 r->element[1]->str);
	freeReplyObject(r);
	return won;
}

int jobd_store_broker_release(struct jobd_store *st, const char *addr)
{
	struct args a = { 0 };
	redisReply *r;
	int rc;

	args_add(&a, addr);
	r = eval(st, S_BROKER_RELEASE, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	rc = (int)reply_i64(r);
	freeReplyObject(r);
	return rc;
}

/* --- leader leases ------------------------------------------------------------ */

int jobd_store_lease(struct jobd_store *st, const char *name,
		     const char *holder, int64_t ttl_ms)
{
	struct args a = { 0 };
	redisReply *r;
	int held;

	args_add(&a, name);
	args_add(&a, holder);
	args_addf(&a, "%lld", (long long)ttl_ms);
	r = eval(st, S_LEASE, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	held = reply_i64(r) == 1;
	freeReplyObject(r);
	return held;
}

/* --- the store layer's own calls (store_int.h) ---------------------------------- */

redisReply *jobd_store_command(struct jobd_store *st, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	if (ensure(st) < 0)
		return NULL;
	va_start(ap, fmt);
	r = redisvCommand(st->c, fmt, ap);
	va_end(ap);
	if (!r) {
		lost(st);
	}
	return r;
}

redisReply *jobd_store_command_argv(struct jobd_store *st, int argc,
				    const char **argv, const size_t *lens)
{
	redisReply *r;

	if (ensure(st) < 0)
		return NULL;
	r = redisCommandArgv(st->c, argc, argv, lens);
	if (!r) {
		lost(st);
	}
	return r;
}

redisContext *jobd_store_pipeline(struct jobd_store *st)
{
	return ensure(st) < 0 ? NULL : st->c;
}

int jobd_store_pipeline_read(struct jobd_store *st, size_t n,
			     redisReply **replies)
{
	for (size_t i = 0; i < n; i++)
		replies[i] = NULL;
	for (size_t i = 0; i < n; i++) {
		if (redisGetReply(st->c, (void **)&replies[i]) != REDIS_OK) {
			lost(st);
			for (size_t k = 0; k < i; k++) {
				freeReplyObject(replies[k]);
				replies[k] = NULL;
			}
			return JOBD_STORE_ERR_REDIS;
		}
	}
	return 0;
}

const char *jobd_store_prefix(const struct jobd_store *st)
{
	return st->conf->prefix;
}

/* --- retention ---------------------------------------------------------------- */

int jobd_store_purge(struct jobd_store *st, int64_t cutoff_ms, size_t max,
		     size_t *deleted, bool *more)
{
	struct args a = { 0 };
	redisReply *r;

	*deleted = 0;
	*more = false;
	args_addf(&a, "%lld", (long long)cutoff_ms);
	args_addf(&a, "%zu", max ? max : 200);
	r = eval(st, S_PURGE, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		*deleted = (size_t)reply_i64(r->element[0]);
		*more = reply_i64(r->element[1]) == 1;
	}
	freeReplyObject(r);
	return 0;
}

int jobd_store_backfill(struct jobd_store *st, size_t max, size_t *indexed,
			size_t *converted, bool *more)
{
	struct args a = { 0 };
	redisReply *r;

	*indexed = *converted = 0;
	*more = false;
	args_addf(&a, "%zu", max ? max : 500);
	r = eval(st, S_BACKFILL, &a);
	args_release(&a);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
		*more = reply_i64(r->element[0]) == 1;
		*indexed = (size_t)reply_i64(r->element[1]);
		*converted = (size_t)reply_i64(r->element[2]);
	}
	freeReplyObject(r);
	return 0;
}

int jobd_store_backfill_pending(struct jobd_store *st)
{
	const char *p = st->conf->prefix;
	redisReply *r =
		jobd_store_command(st, "HMGET %s:backfill ended logs", p);
	int pending = 0;

	if (!r)
		return JOBD_STORE_ERR_REDIS;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    strcmp(r->element[i]->str, "done") != 0)
			pending = 1;
	freeReplyObject(r);
	if (!pending)
		return 0;
	/* A store without a job yet has nothing of an earlier version. */
	r = jobd_store_command(st, "EXISTS %s:seq", p);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	pending = r->type != REDIS_REPLY_INTEGER || r->integer != 0;
	freeReplyObject(r);
	if (pending)
		return 1;
	r = jobd_store_command(st, "HSET %s:backfill ended done logs done", p);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	freeReplyObject(r);
	return 0;
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

/* --- fsck ------------------------------------------------------------------- */

static void fsck_add(struct jobd_fsck *f, const redisReply *list)
{
	for (size_t i = 0; list && i < list->elements; i++) {
		char **v;

		if (f->nviolations == JOBD_FSCK_MAX_REPORTED) {
			f->more_violations++;
			continue;
		}
		v = realloc(f->violations, (f->nviolations + 1) * sizeof(*v));
		if (!v)
			return;
		f->violations = v;
		v[f->nviolations++] =
			strndup(list->element[i]->str, list->element[i]->len);
	}
}

void jobd_fsck_release(struct jobd_fsck *f)
{
	for (size_t i = 0; i < f->nviolations; i++)
		free(f->violations[i]);
	free(f->violations);
	memset(f, 0, sizeof(*f));
}

int jobd_store_fsck(struct jobd_store *st, bool repair, struct jobd_fsck *f)
{
	static const char *const structures[] = { "leases", "delayed",
						  "roots",  "roots_low",
						  "ended",  "logix:minutes" };
	int64_t seen[JOBD_STATUS_COUNT] = { 0 }, counts[JOBD_STATUS_COUNT];
	int64_t next = 1;
	redisReply *r;

	memset(f, 0, sizeof(*f));
	/* Every job, from its hash. */
	while (next > 0) {
		struct args a = { 0 };

		args_addf(&a, "%lld", (long long)next);
		args_add(&a, "500");
		args_add(&a, repair ? "1" : "0");
		r = eval(st, S_FSCK, &a);
		args_release(&a);
		if (!r)
			return JOBD_STORE_ERR_REDIS;
		next = reply_i64(r->element[0]);
		f->fixed += (size_t)reply_i64(r->element[1]);
		fsck_add(f, r->element[2]);
		for (size_t i = 0; i + 1 < r->element[3]->elements; i += 2) {
			int s = jobd_status_parse(
				r->element[3]->element[i]->str);

			if (s >= 0)
				seen[s] += reply_i64(
					r->element[3]->element[i + 1]);
		}
		freeReplyObject(r);
	}
	/* The scheduling structures, from their entries. */
	for (size_t k = 0; k < sizeof(structures) / sizeof(*structures); k++) {
		for (int64_t start = 0;;) {
			struct args a = { 0 };

			args_add(&a, structures[k]);
			args_addf(&a, "%lld", (long long)start);
			args_add(&a, "500");
			args_add(&a, repair ? "1" : "0");
			r = eval(st, S_FSCK_REFS, &a);
			args_release(&a);
			if (!r)
				return JOBD_STORE_ERR_REDIS;
			start = reply_i64(r->element[0]);
			f->fixed += (size_t)reply_i64(r->element[1]);
			fsck_add(f, r->element[2]);
			freeReplyObject(r);
			if (start == 0)
				break;
		}
	}
	/* The status counters, from the jobs seen. */
	if (jobd_store_counts(st, counts) < 0)
		return JOBD_STORE_ERR_REDIS;
	for (int s = 0; s < JOBD_STATUS_COUNT; s++) {
		char msg[160];

		f->jobs += (size_t)seen[s];
		if (counts[s] == seen[s])
			continue;
		snprintf(msg, sizeof(msg),
			 "status counter %s is %lld, the jobs say %lld",
			 jobd_status_names[s], (long long)counts[s],
			 (long long)seen[s]);
		if (f->nviolations < JOBD_FSCK_MAX_REPORTED) {
			char **v = realloc(f->violations,
					   (f->nviolations + 1) * sizeof(*v));

			if (v) {
				f->violations = v;
				v[f->nviolations++] = strdup(msg);
			}
		}
		if (repair) {
			r = jobd_store_command(st, "HSET %s:count %s %lld",
					       st->conf->prefix,
					       jobd_status_names[s],
					       (long long)seen[s]);
			if (!r)
				return JOBD_STORE_ERR_REDIS;
			freeReplyObject(r);
			f->fixed++;
		}
	}
	return 0;
}
