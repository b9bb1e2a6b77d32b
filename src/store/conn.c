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
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "store/module/module.h"
#include "store/scripts.h"

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
	"keys",		  "key_window",
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

void store_lost(struct jobd_store *st)
{
	store_set_err(st, "redis at %s: %s", st->conf->redis_address,
		      store_link_errstr(st->c));
	store_drop(&st->c);
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
	store_set_err(st, "cannot %s redis at %s: %s%s", step,
		      st->conf->redis_address, why,
		      tls_port ? " (is it a TLS port? then write "
				 "rediss://host:port)" :
				 "");
	return NULL;
}

struct store_link *store_connect_to(struct jobd_store *st)
{
	const char *addr = st->conf->redis_address;
	struct store_link *c;
	redisReply *r;
	char err[512];

	c = store_link_open(&st->addr, st->tls, st->timeout_ms, err,
			    sizeof(err));
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
			st->conf->redis_address, r->str,
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

int store_ensure(struct jobd_store *st)
{
	char want[128];
	redisReply *r;

	if (st->c)
		return 0;
	st->c = store_connect_to(st);
	if (!st->c)
		return JOBD_STORE_ERR_REDIS;
	st->conns++;
	/* Functions read the log bound from here (first writer wins). */
	r = store_link_command(st->c, "HSETNX %s:conf logs_max_entries %lld",
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
	r = store_link_command(st->c, "JOBD.VERSION");
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
	store_lost(st);
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
	if (jobd_conf_redis_address(conf->redis_address, &st->addr, errstr,
				    errstr_size) < 0)
		goto err_free;
	if (st->addr.tls &&
	    !(st->tls = store_tls_new(conf, errstr, errstr_size)))
		goto err_free;
	if (store_ensure(st) < 0) {
		snprintf(errstr, errstr_size, "%s", st->err);
		goto err_free;
	}
	return st;

err_free:
	store_tls_free(st->tls);
	free(st);
	return NULL;
}

void jobd_store_free(struct jobd_store *st)
{
	if (!st)
		return;
	store_drop(&st->c);
	store_drop(&st->sub);
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

void jobd_store_set_timeout(struct jobd_store *st, int ms)
{
	st->timeout_ms = ms;
	if (st->c)
		store_link_set_timeout(st->c, ms);
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
	store_args_add(a, st->conf->prefix);
	args_append(a, args);
}

redisReply *store_module_call(struct jobd_store *st, const char *cmd,
			      struct store_args *args, bool *fallback)
{
	struct store_args a = { 0 };
	redisReply *r;

	*fallback = true;
	if (store_ensure(st) < 0) {
		*fallback = false;
		return NULL;
	}
	if (!st->module)
		return NULL;
	store_call_args(st, cmd, 0, args, &a);
	r = store_link_command_argv(st->c, (int)a.n, a.v, a.len);
	store_args_release(&a);
	if (!r) {
		store_lost(st);
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
			store_set_err(st, "redis at %s: %s: %s",
				      st->conf->redis_address, cmd, r->str);
			*fallback = false;
		}
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

redisReply *store_eval(struct jobd_store *st, enum script_id id,
		       struct store_args *args)
{
	struct store_args a = { 0 };
	redisReply *r = NULL;

	if (store_ensure(st) < 0)
		return NULL;
	store_call_args(st, NULL, id, args, &a);
	for (int tries = 0; tries < 2; tries++) {
		r = store_link_command_argv(st->c, (int)a.n, a.v, a.len);
		if (!r) {
			store_lost(st);
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
	redisReply *r;

	if (store_ensure(st) < 0)
		return NULL;
	r = store_link_vcommand(st->c, fmt, ap);
	if (!r)
		store_lost(st);
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
	redisReply *r;

	if (store_ensure(st) < 0)
		return NULL;
	r = store_link_command_argv(st->c, argc, argv, lens);
	if (!r)
		store_lost(st);
	return r;
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
	return 0;
}

const char *jobd_store_prefix(const struct jobd_store *st)
{
	return st->conf->prefix;
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
