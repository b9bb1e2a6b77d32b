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

#include "base/log.h"
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

int jobd_store_sharded_children(struct jobd_store *st, int64_t id,
				int64_t cursor, size_t limit,
				struct jobd_job_list *out)
{
	struct jobd_store *sh = shard_of_id(st, id);
	int rc = jobd_store_children(sh, id, cursor, limit, out);

	return rc < 0 ? failed(st, sh, rc) : rc;
}

int jobd_store_sharded_logs(struct jobd_store *st, int64_t id,
			    const struct jobd_log_query *q,
			    struct jobd_log_result *out)
{
	struct jobd_store *sh = shard_of_id(st, id);
	int rc = jobd_store_logs(sh, id, q, out);

	return rc < 0 ? failed(st, sh, rc) : rc;
}

int jobd_store_sharded_why(struct jobd_store *st, int64_t id,
			   struct jobd_why *w)
{
	struct jobd_store *sh = shard_of_id(st, id);
	int rc = jobd_store_why(sh, id, w);

	return rc < 0 ? failed(st, sh, rc) : rc;
}

/* --- every shard ----------------------------------------------------------
 *
 * Housekeeping (expired leases, cascades, retention, backfills) runs in
 * each shard with the caller's budget, so a call does at most S times the
 * work it asks for; counts add up.
 */

int jobd_store_sharded_expire(struct jobd_store *st, size_t max, size_t *n)
{
	*n = 0;
	for (size_t k = 0; k < st->nsh; k++) {
		size_t m;
		int rc = jobd_store_expire(st->sh[k], max, &m);

		if (rc < 0)
			return failed(st, st->sh[k], rc);
		*n += m;
	}
	return 0;
}

int jobd_store_sharded_cascades_run(struct jobd_store *st, size_t max_calls,
				    size_t *left)
{
	*left = 0;
	for (size_t k = 0; k < st->nsh; k++) {
		size_t m;
		int rc = jobd_store_cascades_run(st->sh[k], max_calls, &m);

		if (rc < 0)
			return failed(st, st->sh[k], rc);
		*left += m;
	}
	return 0;
}

int jobd_store_sharded_counts(struct jobd_store *st,
			      int64_t counts[JOBD_STATUS_COUNT])
{
	memset(counts, 0, sizeof(int64_t) * JOBD_STATUS_COUNT);
	for (size_t k = 0; k < st->nsh; k++) {
		int64_t c[JOBD_STATUS_COUNT];
		int rc = jobd_store_counts(st->sh[k], c);

		if (rc < 0)
			return failed(st, st->sh[k], rc);
		for (int i = 0; i < JOBD_STATUS_COUNT; i++)
			counts[i] += c[i];
	}
	return 0;
}

int jobd_store_sharded_purge(struct jobd_store *st, int64_t cutoff_ms,
			     size_t max, size_t *deleted, bool *more)
{
	*deleted = 0;
	*more = false;
	for (size_t k = 0; k < st->nsh; k++) {
		size_t d;
		bool m;
		int rc = jobd_store_purge(st->sh[k], cutoff_ms, max, &d, &m);

		if (rc < 0)
			return failed(st, st->sh[k], rc);
		*deleted += d;
		*more = *more || m;
	}
	return 0;
}

int jobd_store_sharded_backfill(struct jobd_store *st, size_t max,
				size_t *indexed, size_t *converted,
				size_t *moved, bool *more)
{
	*indexed = *converted = *moved = 0;
	*more = false;
	for (size_t k = 0; k < st->nsh; k++) {
		size_t i, c, m;
		bool left;
		int rc = jobd_store_backfill(st->sh[k], max, &i, &c, &m, &left);

		if (rc < 0)
			return failed(st, st->sh[k], rc);
		*indexed += i;
		*converted += c;
		*moved += m;
		*more = *more || left;
	}
	return 0;
}

int jobd_store_sharded_backfill_pending(struct jobd_store *st)
{
	int pending = 0;

	for (size_t k = 0; k < st->nsh; k++) {
		int rc = jobd_store_backfill_pending(st->sh[k]);

		if (rc < 0)
			return failed(st, st->sh[k], rc);
		pending = pending || rc;
	}
	return pending;
}

int jobd_store_sharded_key_window_write(struct jobd_store *st,
					int64_t *replaced)
{
	*replaced = 0;
	for (size_t k = 0; k < st->nsh; k++) {
		int64_t r;
		int rc = jobd_store_key_window_write(st->sh[k], &r);

		if (rc < 0)
			return failed(st, st->sh[k], rc);
		if (r > *replaced)
			*replaced = r;
	}
	return 0;
}

/* Each shard checked in turn; its violations named by its prefix, at most
 * JOBD_FSCK_MAX_REPORTED in all, as for one shard. */
int jobd_store_sharded_fsck(struct jobd_store *st, bool repair,
			    struct jobd_fsck *f)
{
	memset(f, 0, sizeof(*f));
	for (size_t k = 0; k < st->nsh; k++) {
		struct jobd_fsck one;
		char **v;
		int rc = jobd_store_fsck(st->sh[k], repair, &one);

		if (rc < 0) {
			jobd_fsck_release(&one);
			jobd_fsck_release(f);
			return failed(st, st->sh[k], rc);
		}
		f->jobs += one.jobs;
		f->fixed += one.fixed;
		f->stale += one.stale;
		f->more_violations += one.more_violations;
		f->counters_moved = f->counters_moved || one.counters_moved;
		v = realloc(f->violations, (f->nviolations + one.nviolations +
					    1) * sizeof(*v));
		for (size_t i = 0; i < one.nviolations; i++) {
			if (v && f->nviolations < JOBD_FSCK_MAX_REPORTED &&
			    asprintf(&v[f->nviolations], "%s: %s",
				     jobd_store_prefix(st->sh[k]),
				     one.violations[i]) >= 0)
				f->nviolations++;
			else
				f->more_violations++;
		}
		if (v)
			f->violations = v;
		jobd_fsck_release(&one);
	}
	return 0;
}

int jobd_store_sharded_totals(struct jobd_store *st,
			      struct jobd_stats_minute *out)
{
	memset(out, 0, sizeof(*out));
	out->all.wait_min = out->all.wait_max = -1;
	for (size_t k = 0; k < st->nsh; k++) {
		struct jobd_stats_minute m;
		int rc = jobd_store_totals(st->sh[k], &m);

		if (rc < 0) {
			jobd_stats_minute_release(out);
			return failed(st, st->sh[k], rc);
		}
		store_stats_minute_add(out, &m);
		jobd_stats_minute_release(&m);
	}
	return 0;
}

/*
 * Per-minute statistics: each shard's minutes added into the first's by
 * their start (counters and histograms add up, so percentiles stay
 * right). A shard read as a minute began has one minute more: it is
 * added to the end.
 */
int jobd_store_sharded_stats(struct jobd_store *st, int64_t since,
			     const char *type, struct jobd_stats *out)
{
	int64_t now;
	int rc;

	/* One start for every shard (the last hour by default, from one
	 * clock), so that their series begin at the same minute. */
	if (since <= 0) {
		if ((rc = jobd_store_time(st, &now)) < 0)
			return rc;
		since = now - 3600000;
	}
	if ((rc = jobd_store_stats(st->sh[0], since, type, out)) < 0)
		return failed(st, st->sh[0], rc);
	for (size_t k = 1; k < st->nsh; k++) {
		struct jobd_stats s;
		size_t at = 0;

		if ((rc = jobd_store_stats(st->sh[k], since, type, &s)) < 0) {
			jobd_stats_release(out);
			return failed(st, st->sh[k], rc);
		}
		for (size_t i = 0; i < s.n; i++) {
			struct jobd_stats_minute *m;

			while (at < out->n &&
			       out->minutes[at].minute < s.minutes[i].minute)
				at++;
			if (at < out->n &&
			    out->minutes[at].minute == s.minutes[i].minute) {
				store_stats_minute_add(&out->minutes[at],
						       &s.minutes[i]);
				continue;
			}
			if (at < out->n)
				continue; /* before the first's first */
			m = realloc(out->minutes,
				    (out->n + 1) * sizeof(*out->minutes));
			if (!m)
				break;
			out->minutes = m;
			memset(&m[out->n], 0, sizeof(*m));
			m[out->n].minute = s.minutes[i].minute;
			m[out->n].closed = s.minutes[i].closed;
			m[out->n].all.wait_min = m[out->n].all.wait_max = -1;
			store_stats_minute_add(&m[out->n++], &s.minutes[i]);
		}
		if (s.now > out->now)
			out->now = s.now;
		jobd_stats_release(&s);
	}
	return 0;
}

/* Keys by the shard their roots were placed in (or their parent's). */
int jobd_store_sharded_key_ids(struct jobd_store *st, int64_t parent,
			       const char *const *keys, size_t n, int64_t *ids)
{
	for (size_t i = 0; i < n; i++) {
		struct jobd_spec sp = { .parent = parent, .key = keys[i] };
		struct jobd_store *sh;
		int rc;

		if (!keys[i] || !*keys[i]) {
			ids[i] = 0;
			continue;
		}
		sh = st->sh[placed(st, &sp)];
		if ((rc = jobd_store_key_ids(sh, parent, &keys[i], 1,
					     &ids[i])) < 0)
			return failed(st, sh, rc);
	}
	return 0;
}

int jobd_store_sharded_key_scan(struct jobd_store *st, int64_t parent,
				const char *glob, jobd_store_key_fn fn,
				void *arg)
{
	for (size_t k = 0; k < st->nsh; k++) {
		int rc;

		if (parent > 0 && st->sh[k] != shard_of_id(st, parent))
			continue;
		if ((rc = jobd_store_key_scan(st->sh[k], parent, glob, fn,
					      arg)) < 0)
			return failed(st, st->sh[k], rc);
	}
	return 0;
}

static int by_id_desc(const void *a, const void *b)
{
	int64_t x = (*(struct jobd_job *const *)a)->id;
	int64_t y = (*(struct jobd_job *const *)b)->id;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * A page newest first: each shard's page below the cursor, merged by id.
 * A shard whose page is full, or cut short by its time budget (2 s), has
 * read its ids down to its own next cursor only: the merged page stops
 * there too, at the highest such cursor, so the next page, which starts
 * below the last id given, skips none of that shard's jobs. Ids across shards
 * follow creation as far as the shards grow alike (docs/scaling.md, "Ids
 * across shards"). Other orders are not built across shards yet.
 */
int jobd_store_sharded_list(struct jobd_store *st, const struct jobd_filter *f,
			    struct jobd_job_list *out)
{
	size_t limit = f->limit ? f->limit : 50;
	int64_t floor = 0;
	struct jobd_job **all = NULL;
	size_t n = 0, keep = 0;

	memset(out, 0, sizeof(*out));
	if (f->sort && !(strcmp(f->sort, "created") == 0 && f->desc)) {
		store_set_err(st,
			      "sorting by %s across shards is not built "
			      "yet (docs/scaling.md, \"Shards\")",
			      f->sort);
		return JOBD_STORE_ERR_INVALID;
	}
	if (limit > 1000)
		limit = 1000;
	for (size_t k = 0; k < st->nsh; k++) {
		struct jobd_job_list page;
		struct jobd_job **grown;
		int rc = jobd_store_list(st->sh[k], f, &page);

		if (rc < 0) {
			for (size_t i = 0; i < n; i++)
				jobd_job_free(all[i]);
			free(all);
			return failed(st, st->sh[k], rc);
		}
		if (page.next > floor)
			floor = page.next;
		if (page.now > out->now)
			out->now = page.now;
		grown = realloc(all, (n + page.n + 1) * sizeof(*all));
		if (!grown) {
			jobd_job_list_release(&page);
			for (size_t i = 0; i < n; i++)
				jobd_job_free(all[i]);
			free(all);
			store_set_err(st, "out of memory");
			return JOBD_STORE_ERR_REDIS;
		}
		all = grown;
		if (page.n)
			memcpy(all + n, page.jobs, page.n * sizeof(*all));
		n += page.n;
		free(page.jobs); /* its jobs are ALL's now */
	}
	qsort(all, n, sizeof(*all), by_id_desc);
	while (keep < n && keep < limit && all[keep]->id >= floor)
		keep++;
	for (size_t i = keep; i < n; i++)
		jobd_job_free(all[i]);
	out->jobs = all;
	out->n = keep;
	/* Full: more may follow below its last id; cut at a shard's
	 * cursor: below that; else every shard is read to its end. */
	if (keep == limit && keep > 0)
		out->next = all[keep - 1]->id;
	else
		out->next = floor;
	return 0;
}

/*
 * The wake-up link of a store across shards on one Redis: every shard's
 * channel PREFIX:{N/S}:wake, shard and classic (jobd_store_wait), in one
 * SSUBSCRIBE and one SUBSCRIBE, on the store's own link; the waiting is
 * jobd_store_wait's. 1 (jobs may have become ready before it listened),
 * or JOBD_STORE_ERR_REDIS.
 */
int store_sharded_subscribe(struct jobd_store *st)
{
	const char **argv = calloc(st->nsh + 1, sizeof(*argv));
	char **chan = calloc(st->nsh, sizeof(*chan));
	size_t ss = 0, sub = 0;
	bool ss_refused = false, refused = false;
	redisReply *r = NULL;
	int rc = JOBD_STORE_ERR_REDIS;

	if (!argv || !chan) {
		store_set_err(st, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < st->nsh; k++)
		if (asprintf(&chan[k], "%s:wake",
			     jobd_store_prefix(st->sh[k])) < 0) {
			store_set_err(st, "out of memory");
			goto out;
		}
	if (!(st->sub = store_connect_to(st)))
		goto out;
	memcpy(argv + 1, chan, st->nsh * sizeof(*chan));
	argv[0] = "SSUBSCRIBE";
	store_link_append_argv(st->sub, (int)st->nsh + 1, argv, NULL);
	argv[0] = "SUBSCRIBE";
	store_link_append_argv(st->sub, (int)st->nsh + 1, argv, NULL);
	/* SSUBSCRIBE's answers first (a confirmation a channel, or one
	 * refusal), then SUBSCRIBE's; messages may come between them
	 * (dropped: the caller claims at once anyway). */
	while ((ss < st->nsh && !ss_refused) || (sub < st->nsh && !refused)) {
		bool err;

		if (store_link_reply(st->sub, &r) < 0) {
			store_set_err(st, "redis at %s: subscription lost: %s",
				      store_where(st),
				      store_link_errstr(st->sub));
			store_drop(&st->sub);
			goto out;
		}
		err = r->type == REDIS_REPLY_ERROR;
		if (err && !st->warned_wake) {
			jobd_warn("store: redis at %s refused to subscribe to "
				  "the shards' wake-ups (%s): idle workers "
				  "look for work once a second",
				  store_where(st), r->str);
			st->warned_wake = true;
		}
		if (err && (ss < st->nsh && !ss_refused))
			ss_refused = true;
		else if (err)
			refused = true;
		else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
			 r->element[0]->type == REDIS_REPLY_STRING) {
			ss += strcmp(r->element[0]->str, "ssubscribe") == 0;
			sub += strcmp(r->element[0]->str, "subscribe") == 0;
		}
		freeReplyObject(r);
	}
	rc = 1;
out:
	for (size_t k = 0; chan && k < st->nsh; k++)
		free(chan[k]);
	free(chan);
	free(argv);
	return rc;
}
