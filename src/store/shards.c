/*
 * shards: a store across shards (docs/scaling.md, "Shards"). A store made
 * by store_shards_new() holds S stores of one shard each, on the prefixes
 * PREFIX:{N/S}, whose ids name their shard (id mod S). The calls of
 * store.h that concern jobs by id go to their shards, creates are placed
 * (a child in its parent's shard, a root by its key, or in turn), and a
 * claim takes from every shard in turn; each public function sends such
 * a store here first (its jobd_store_sharded_* call).
 *
 * A batch is split by shard, each part sent as one call, and the answers
 * put back in the caller's order. A part that fails fails the batch, as a
 * call fails on one shard today: the caller retries it whole (what that
 * repeats in the shards that took their part, and the calls not built
 * yet, are in docs/scaling.md, "What the store across shards must
 * solve").
 */
#include "config.h"

#include "store/schema.h"
#include "store/store.h"
#include "store/store_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shard of job ID. */
static struct jobd_store *shard_of_id(const struct jobd_store *st, int64_t id)
{
	return st->sh[(uint64_t)id % st->nsh];
}

/* A part failed: its error is the store's. */
static int failed(struct jobd_store *st, const struct jobd_store *part, int rc)
{
	store_set_err(st, "%s: %s", jobd_store_prefix(part),
		      jobd_store_errstr(part));
	return rc;
}

/*
 * The shard of a new job: its parent's; for a root with a key, a hash of
 * the key, from other bits than the ones that choose its bucket within
 * the shard (FNV-1a, as lib.lua key_bucket: the bucket is the hash mod
 * N_KEY_BUCKETS, a power of two), so that the keys of one shard still
 * fill all its buckets; else the next shard in turn.
 */
static size_t placed(struct jobd_store *st, const struct jobd_spec *sp)
{
	uint32_t h = 2166136261u;

	if (sp->parent > 0)
		return (size_t)((uint64_t)sp->parent % st->nsh);
	if (!sp->key || !*sp->key)
		return st->rr++ % st->nsh;
	for (const unsigned char *p = (const unsigned char *)sp->key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return (size_t)(h / N_KEY_BUCKETS % st->nsh);
}

/*
 * The parts of a batch of N, by shard: SHARD[i] is position i's. Calls
 * EACH once per shard that has positions, with them in POS[0..M) in the
 * batch's order, and stops at the first that fails (its error is the
 * store's). 0, or the failed part's error.
 */
typedef int (*part_fn)(struct jobd_store *sh, const size_t *pos, size_t m,
		       void *arg);

static int by_shard(struct jobd_store *st, const size_t *shard, size_t n,
		    part_fn each, void *arg)
{
	size_t *pos = malloc((n ? n : 1) * sizeof(*pos));
	size_t *first = calloc(st->nsh + 1, sizeof(*first));
	size_t *fill = calloc(st->nsh, sizeof(*fill));
	int rc = 0;

	if (!pos || !first || !fill) {
		store_set_err(st, "out of memory");
		rc = JOBD_STORE_ERR_REDIS;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		first[shard[i] + 1]++;
	for (size_t k = 0; k < st->nsh; k++)
		first[k + 1] += first[k];
	for (size_t i = 0; i < n; i++)
		pos[first[shard[i]] + fill[shard[i]]++] = i;
	for (size_t k = 0; k < st->nsh && rc == 0; k++)
		if (first[k + 1] > first[k] &&
		    (rc = each(st->sh[k], pos + first[k],
			       first[k + 1] - first[k], arg)) < 0)
			failed(st, st->sh[k], rc);
out:
	free(pos);
	free(first);
	free(fill);
	return rc;
}

/* SHARD[i] of the batch of N jobs whose ids are ID(ARG, i): a new array
 * (NULL, with the error set, when out of memory). */
static size_t *shards_of(struct jobd_store *st, size_t n,
			 int64_t (*id)(const void *arg, size_t i),
			 const void *arg)
{
	size_t *shard = malloc((n ? n : 1) * sizeof(*shard));

	if (!shard) {
		store_set_err(st, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		shard[i] = (size_t)((uint64_t)id(arg, i) % st->nsh);
	return shard;
}

/* A batch split by shard: the caller's arrays, and room for one part. */
struct batch {
	const void *in;	   /* the caller's inputs (specs, reports, ids) */
	const void *in2;   /* ... a second array (heartbeat's attempts) */
	void *out;	   /* the caller's answers, in its order */
	void *part_in;	   /* one part's inputs */
	void *part_in2;	   /* ... second array */
	void *part_out;	   /* one part's answers */
	size_t in_size;	   /* bytes of an input */
	size_t out_size;   /* bytes of an answer */
	const char *actor; /* create, op: who; handback: the reason */
	enum jobd_op op;
	int64_t lease_ms;
	int (*call)(struct jobd_store *sh, struct batch *b, size_t m);
};

/* A part: its inputs gathered, its call, its answers put back. */
static int batch_part(struct jobd_store *sh, const size_t *pos, size_t m,
		      void *arg)
{
	struct batch *b = arg;
	int rc;

	for (size_t i = 0; i < m; i++) {
		memcpy((char *)b->part_in + i * b->in_size,
		       (const char *)b->in + pos[i] * b->in_size, b->in_size);
		if (b->in2)
			memcpy((char *)b->part_in2 + i * sizeof(int64_t),
			       (const char *)b->in2 + pos[i] * sizeof(int64_t),
			       sizeof(int64_t));
	}
	if ((rc = b->call(sh, b, m)) < 0)
		return rc;
	for (size_t i = 0; i < m; i++)
		memcpy((char *)b->out + pos[i] * b->out_size,
		       (const char *)b->part_out + i * b->out_size,
		       b->out_size);
	return 0;
}

/* Runs batch B of N jobs on their shards SHARD (freed here). */
static int batch_run(struct jobd_store *st, struct batch *b, size_t n,
		     size_t *shard)
{
	size_t k = n ? n : 1;
	int rc = JOBD_STORE_ERR_REDIS;

	b->part_in = malloc(k * b->in_size);
	b->part_in2 = b->in2 ? malloc(k * sizeof(int64_t)) : NULL;
	b->part_out = malloc(k * b->out_size);
	if (!shard || !b->part_in || (b->in2 && !b->part_in2) || !b->part_out) {
		if (shard)
			store_set_err(st, "out of memory");
	} else {
		rc = by_shard(st, shard, n, batch_part, b);
	}
	free(b->part_in);
	free(b->part_in2);
	free(b->part_out);
	free(shard);
	return rc;
}

static int call_create(struct jobd_store *sh, struct batch *b, size_t m)
{
	return jobd_store_create(sh, b->actor, b->part_in, m, b->part_out);
}

int jobd_store_sharded_create(struct jobd_store *st, const char *actor,
			      const struct jobd_spec *specs, size_t n,
			      struct jobd_created *out)
{
	struct batch b = { .in = specs,
			   .out = out,
			   .in_size = sizeof(*specs),
			   .out_size = sizeof(*out),
			   .actor = actor,
			   .call = call_create };
	size_t *shard = malloc((n ? n : 1) * sizeof(*shard));

	if (shard)
		for (size_t i = 0; i < n; i++)
			shard[i] = placed(st, &specs[i]);
	else
		store_set_err(st, "out of memory");
	return batch_run(st, &b, n, shard);
}

int jobd_store_sharded_get(struct jobd_store *st, int64_t id,
			   struct jobd_job **job, int64_t *now)
{
	struct jobd_store *sh = shard_of_id(st, id);
	int rc = jobd_store_get(sh, id, job, now);

	return rc < 0 ? failed(st, sh, rc) : rc;
}

static int64_t report_id(const void *arg, size_t i)
{
	return ((const struct jobd_report *)arg)[i].id;
}

static int64_t id_at(const void *arg, size_t i)
{
	return ((const int64_t *)arg)[i];
}

static int call_report(struct jobd_store *sh, struct batch *b, size_t m)
{
	return jobd_store_report(sh, b->part_in, m, b->part_out);
}

static int call_finish(struct jobd_store *sh, struct batch *b, size_t m)
{
	return jobd_store_finish(sh, b->part_in, m, b->part_out);
}

static int call_handback(struct jobd_store *sh, struct batch *b, size_t m)
{
	return jobd_store_handback(sh, b->actor, b->part_in, m, b->part_out);
}

static int call_heartbeat(struct jobd_store *sh, struct batch *b, size_t m)
{
	return jobd_store_heartbeat(sh, b->part_in, b->part_in2, m, b->lease_ms,
				    b->part_out);
}

static int call_op(struct jobd_store *sh, struct batch *b, size_t m)
{
	return jobd_store_op(sh, b->op, b->actor, b->part_in, m, b->part_out);
}

/* Reports (report, finish, handback) by their jobs' shards. */
static int by_report(struct jobd_store *st, const struct jobd_report *r,
		     size_t n, enum jobd_result *results,
		     int (*call)(struct jobd_store *, struct batch *, size_t),
		     const char *reason)
{
	struct batch b = { .in = r,
			   .out = results,
			   .in_size = sizeof(*r),
			   .out_size = sizeof(*results),
			   .actor = reason,
			   .call = call };

	return batch_run(st, &b, n, shards_of(st, n, report_id, r));
}

int jobd_store_sharded_report(struct jobd_store *st,
			      const struct jobd_report *r, size_t n,
			      enum jobd_result *results)
{
	return by_report(st, r, n, results, call_report, NULL);
}

int jobd_store_sharded_finish(struct jobd_store *st,
			      const struct jobd_report *r, size_t n,
			      enum jobd_result *results)
{
	return by_report(st, r, n, results, call_finish, NULL);
}

int jobd_store_sharded_handback(struct jobd_store *st, const char *reason,
				const struct jobd_report *r, size_t n,
				enum jobd_result *results)
{
	return by_report(st, r, n, results, call_handback, reason);
}

int jobd_store_sharded_heartbeat(struct jobd_store *st, const int64_t *ids,
				 const int64_t *attempts, size_t n,
				 int64_t lease_ms, enum jobd_result *results)
{
	struct batch b = { .in = ids,
			   .in2 = attempts,
			   .out = results,
			   .in_size = sizeof(*ids),
			   .out_size = sizeof(*results),
			   .lease_ms = lease_ms,
			   .call = call_heartbeat };

	return batch_run(st, &b, n, shards_of(st, n, id_at, ids));
}

int jobd_store_sharded_op(struct jobd_store *st, enum jobd_op op,
			  const char *actor, const int64_t *ids, size_t n,
			  struct jobd_op_result *out)
{
	struct batch b = { .in = ids,
			   .out = out,
			   .in_size = sizeof(*ids),
			   .out_size = sizeof(*out),
			   .actor = actor,
			   .op = op,
			   .call = call_op };

	return batch_run(st, &b, n, shards_of(st, n, id_at, ids));
}

/*
 * Up to MAX jobs (MAX_LOW of them low priority) from the shards in turn,
 * starting one further each call, so that no shard is always asked first
 * (fairness between roots holds within each shard; across shards, each
 * gets its turn to fill a claim).
 */
int jobd_store_sharded_claim(struct jobd_store *st, const char *instance,
			     int max, int max_low, int64_t lease_ms,
			     struct jobd_claim **claims, size_t *n)
{
	struct jobd_claim *all = NULL;
	size_t start = st->rr++ % st->nsh;
	int low = 0;

	*claims = NULL;
	*n = 0;
	for (size_t k = 0; k < st->nsh && (int)*n < max; k++) {
		struct jobd_store *sh = st->sh[(start + k) % st->nsh];
		struct jobd_claim *got, *grown;
		size_t m;
		int rc = jobd_store_claim(sh, instance, max - (int)*n,
					  max_low > low ? max_low - low : 0,
					  lease_ms, &got, &m);

		if (rc < 0) {
			/* What the shards before gave is the caller's: it
			 * runs them, as a claim that stopped half way would. */
			if (*n)
				break;
			return failed(st, sh, rc);
		}
		if (!m)
			continue;
		grown = realloc(all, (*n + m) * sizeof(*all));
		if (!grown) {
			/* Leased and not handed over: their leases expire
			 * and hand them back (as after a crash). */
			jobd_store_claims_free(got, m);
			break;
		}
		all = grown;
		memcpy(all + *n, got, m * sizeof(*got));
		for (size_t i = 0; i < m; i++)
			low += got[i].low_priority;
		free(got); /* its strings are ALL's now */
		*n += m;
	}
	*claims = all;
	return 0;
}
