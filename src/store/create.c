/*
 * store/create: jobd_store_create and its pipelined halves (send, then
 * receive): jobs and their children created in batches of
 * JOBD_STORE_BATCH, through the module's JOBD.CREATE where Redis has it,
 * else src/store/lua/create.lua.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

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

bool jobd_store_spec_check(const struct jobd_conf *conf,
			   const struct jobd_spec *sp, char *why,
			   size_t why_size)
{
	if (!sp->type || !jobd_conf_type(conf, sp->type)) {
		snprintf(why, why_size, "unknown type \"%s\"",
			 sp->type ? sp->type : "");
		return false;
	}
	return !sp->payload || sp->payload_checked ||
	       valid_json(sp->payload, why, why_size);
}

/* create.lua's arguments per job, in its order. */
#define CREATE_FIELDS 8

/*
 * The CREATE_FIELDS arguments of job SP into F, in the order create.lua
 * and JOBD.CREATE read them (PARENT holds the parent's id as text, WHEN
 * the run time: "" now, "MS" at MS, "+MS" after a delay of MS). The
 * one place that order is written.
 */
static void create_fields(const struct jobd_spec *sp, char parent[24],
			  char when[24], const char *f[CREATE_FIELDS])
{
	parent[0] = 0;
	if (sp->parent > 0)
		snprintf(parent, 24, "%lld", (long long)sp->parent);
	when[0] = 0;
	if (sp->run_at > 0)
		snprintf(when, 24, "%lld", (long long)sp->run_at);
	else if (sp->delay > 0)
		snprintf(when, 24, "+%lld", (long long)sp->delay);
	f[0] = sp->key;
	f[1] = sp->type;
	f[2] = parent;
	f[3] = sp->run_by;
	f[4] = sp->low_priority ? "1" : "0";
	f[5] = sp->payload ? sp->payload : "{}";
	f[6] = sp->source;
	f[7] = when;
}

/*
 * The SENT jobs of SPECS named by POS into A: for create.lua an argument
 * per field; for JOBD.CREATE (MODULE) one argument, each field as
 * "LEN:BYTES" and a newline per job (src/store/module/create.c
 * parse_jobs()).
 */
static void create_jobs(struct store_args *a, const struct jobd_spec *specs,
			const size_t *pos, size_t sent, bool module)
{
	struct store_list l = { 0 };
	const char *f[CREATE_FIELDS];
	char parent[24], when[24];

	for (size_t k = 0; k < sent; k++) {
		create_fields(&specs[pos[k]], parent, when, f);
		for (int i = 0; i < CREATE_FIELDS; i++) {
			if (module)
				store_list_field(&l, f[i]);
			else if ((i == 2 || i == 7) &&
				 *f[i]) /* a copy: PARENT, WHEN are reused */
				store_args_addf(a, "%s", f[i]);
			else
				store_args_add(a, f[i]);
		}
		if (module)
			store_list_char(&l, '\n');
	}
	if (module)
		store_list_add(&l, a);
}

/*
 * The arguments of create.lua, or with MODULE of JOBD.CREATE, for the N
 * SPECS into A. Specs refused here (unknown type, payload not JSON) get
 * their reason in OUT; the others are sent, the k-th being SPECS[POS[k]].
 * Returns how many are sent.
 */
static size_t create_args(struct jobd_store *st, const char *actor,
			  const struct jobd_spec *specs, size_t n,
			  struct jobd_created *out, size_t *pos,
			  struct store_args *a, bool module)
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
		if (!jobd_store_spec_check(st->conf, sp, out[i].error,
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
	store_args_addf(a, "%lld", (long long)st->conf->retention_stats);
	store_args_add(a, actor);
	store_args_addf(a, "%zu", sent);
	/* The policy of each type in the batch, once (create.lua). */
	store_args_addf(a, "%zu", ntypes);
	for (size_t j = 0; j < ntypes; j++) {
		store_args_add(a, types[j]->name);
		store_args_add(a, types[j]->system ? "1" : "0");
		store_args_add(a, types[j]->stoppable ? "1" : "0");
		store_args_add(a, types[j]->restartable ? "1" : "0");
		store_args_addf(a, "%d", types[j]->retries);
		store_args_addf(a, "%lld", (long long)types[j]->retry_backoff);
	}
	create_jobs(a, specs, pos, sent, module);
	return sent;
}

/* The ids (or refusals) of create reply R into OUT, as create_args sent:
 * the id of each job, negative when it existed (JOBD.CREATE and
 * create.lua alike; create.lua answers {id, 1} for a child's key mapped
 * to no job id). */
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
			c->id = store_reply_i64(e->element[0]);
			c->existed = store_reply_i64(e->element[1]) == 1;
		} else if (e->type == REDIS_REPLY_STRING) {
			snprintf(c->error, sizeof(c->error), "%.*s",
				 (int)e->len, e->str);
		}
	}
}

/* Whether JOBD.CREATE makes the SENT jobs of SPECS named by POS: root
 * jobs to run now only; it hands any other batch to create.lua (its
 * reply "lua"), so that batch goes there at once, with its WAIT once. */
static bool module_makes(const struct jobd_spec *specs, const size_t *pos,
			 size_t sent)
{
	for (size_t k = 0; k < sent; k++) {
		const struct jobd_spec *sp = &specs[pos[k]];

		if (sp->parent > 0 || sp->run_at > 0 || sp->delay > 0)
			return false;
	}
	return true;
}

/*
 * The call went again on a new connection (a MOVED or READONLY after a
 * failover: conn.c run()), so the replicas counted before it were the
 * old primary's, and its WAIT asked for WANT of them. Counted on this
 * connection, which the create was written on: more than WANT are
 * waited for here, a round trip more on this rare path.
 */
static int create_wait_again(struct jobd_store *st, int want)
{
	uint64_t conns = st->conns;
	int now = store_create_replicas(st, true);
	redisReply *w;
	int rc;

	if (now < 0)
		return JOBD_STORE_ERR_REDIS;
	if (now <= want)
		return 0;
	w = jobd_store_command(st, "WAIT %d %lld", now,
			       (long long)st->conf->redis_wait_timeout);
	if (!w)
		return JOBD_STORE_ERR_REDIS;
	rc = store_create_waited(st, w, now);
	freeReplyObject(w);
	if (rc == 0 && st->conns != conns) {
		/* A WAIT on another connection covers nothing of the
		 * create: made again, its keys make it "existed". */
		store_set_err(st,
			      "redis at %s: create: the connection changed "
			      "before its replicas were counted",
			      store_where(st));
		return JOBD_STORE_ERR_REDIS;
	}
	return rc;
}

static int create_batch(struct jobd_store *st, const char *actor,
			const struct jobd_spec *specs, size_t n,
			struct jobd_created *out)
{
	struct store_args a = { 0 };
	size_t pos[JOBD_STORE_BATCH], sent;
	redisReply *r, *w = NULL;
	bool fallback, packed;
	int want, rc = 0;
	uint64_t conns;

	/* Specs all refused here need no Redis. */
	packed = st->module;
	sent = create_args(st, actor, specs, n, out, pos, &a, packed);
	if (sent == 0)
		goto out;
	if (store_ensure(st) < 0) {
		rc = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	if (packed != (st->module && module_makes(specs, pos, sent))) {
		/* learnt as it connected, or not the module's */
		store_args_release(&a);
		packed = !packed;
		create_args(st, actor, specs, n, out, pos, &a, packed);
	}
	/*
	 * The replicas to wait for (WAIT): pipelined right behind the call,
	 * so it covers this create in the same round trip. Fewer replicas
	 * having it within [redis] wait_timeout fail the batch with the
	 * error set, and the caller makes it again (its keys make it
	 * "existed").
	 */
	want = store_create_replicas(st, true);
	if (want < 0) {
		rc = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	conns = st->conns;
	r = NULL;
	fallback = true;
	if (packed)
		r = store_module_call_wait(st, "JOBD.CREATE", &a, &fallback,
					   want, &w);
	if (r && r->type == REDIS_REPLY_STATUS) {
		/* Not only root jobs: the module left it to Lua. */
		freeReplyObject(r);
		r = NULL;
		if (w)
			freeReplyObject(w);
		w = NULL;
	}
	if (!r && fallback) {
		if (packed) {
			store_args_release(&a);
			create_args(st, actor, specs, n, out, pos, &a, false);
		}
		r = store_eval_wait(st, S_CREATE, &a, want, &w);
	}
	if (!r) {
		rc = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	create_results(r, pos, sent, out);
	freeReplyObject(r);
	if (want > 0)
		rc = store_create_waited(st, w, want);
	if (w)
		freeReplyObject(w);
	if (rc == 0 && st->conns != conns)
		rc = create_wait_again(st, want);
out:
	store_args_release(&a);
	return rc;
}

int jobd_store_create(struct jobd_store *st, const char *actor,
		      const struct jobd_spec *specs, size_t n,
		      struct jobd_created *out)
{
	if (st->nsh)
		return jobd_store_sharded_create(st, actor, specs, n, out);
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
	struct store_args a = { 0 }, call = { 0 };
	struct sent_create *sc;
	int rc = 0;

	if (st->nsent == JOBD_STORE_CREATES_SENT || n > JOBD_STORE_BATCH) {
		store_set_err(st, "create: %zu jobs, %zu calls on their way", n,
			      st->nsent);
		return JOBD_STORE_ERR_REDIS;
	}
	/* Across shards, made at once (each shard's part one call): the
	 * reply is there when _recv asks. */
	if (st->nsh) {
		if ((rc = jobd_store_sharded_create(st, actor, specs, n, out)) <
		    0)
			return rc;
		st->nsent++;
		return 0;
	}
	if (store_ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	sc = &st->sent[(st->sent_head + st->nsent) % JOBD_STORE_CREATES_SENT];
	/* The count of replicas is asked only while no reply is due. */
	sc->wait = store_create_replicas(st, st->nsent == 0);
	if (sc->wait < 0)
		return JOBD_STORE_ERR_REDIS;
	sc->conn = st->conns;
	sc->n = create_args(st, actor, specs, n, out, sc->pos, &a, st->module);
	if (sc->n == 0)
		goto out; /* all refused here: no call, and no reply */
	store_call_args(st, st->module ? "JOBD.CREATE" : NULL, S_CREATE, &a,
			&call);
	/* Sent now, not when the reply is read: Redis works meanwhile. */
	store_link_append_argv(st->c, (int)call.n, call.v, call.len);
	store_args_release(&call);
	/* Right behind it, so it covers this create (and those before). */
	if (sc->wait > 0)
		store_link_append(st->c, "WAIT %d %lld", sc->wait,
				  (long long)st->conf->redis_wait_timeout);
	if (store_link_flush(st->c) < 0) {
		store_lost(st);
		rc = JOBD_STORE_ERR_REDIS;
	}
out:
	if (rc == 0)
		st->nsent++;
	store_args_release(&a);
	return rc;
}

int jobd_store_create_recv(struct jobd_store *st, struct jobd_created *out)
{
	const struct sent_create *sc = &st->sent[st->sent_head];
	redisReply *r = NULL, *w = NULL;
	int rc;

	if (st->nsent == 0) {
		store_set_err(st, "create: no call on its way");
		return JOBD_STORE_ERR_REDIS;
	}
	if (st->nsh) {
		(void)out; /* filled by _send */
		st->nsent--;
		return 0;
	}
	st->sent_head = (st->sent_head + 1) % JOBD_STORE_CREATES_SENT;
	st->nsent--;
	if (sc->n == 0)
		return 0;
	if (!st->c || sc->conn != st->conns)
		return JOBD_STORE_ERR_REDIS; /* its reply went with it */
	if (store_link_reply(st->c, &r) < 0 ||
	    (sc->wait > 0 && store_link_reply(st->c, &w) < 0)) {
		if (r)
			freeReplyObject(r);
		store_lost(st);
		return JOBD_STORE_ERR_REDIS;
	}
	if (store_redirected(st, r)) {
		/* Not run: made again on the slot's primary. */
		if (w)
			freeReplyObject(w);
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	rc = sc->wait > 0 ? store_create_waited(st, w, sc->wait) : 0;
	if (w)
		freeReplyObject(w);
	if (r->type != REDIS_REPLY_ARRAY) {
		/*
		 * Left to Lua, the module gone or refused, the functions not
		 * loaded, or Redis refusing writes: jobd_store_create sorts
		 * each out, and the keys make the repeat harmless.
		 */
		store_set_err(st, "redis at %s: create: %s", store_where(st),
			      r->str ? r->str : "unexpected reply");
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	create_results(r, sc->pos, sc->n, out);
	freeReplyObject(r);
	return rc;
}
