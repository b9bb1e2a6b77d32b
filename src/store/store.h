/*
 * store: the job store in Redis. Every hiredis call of jobd is here.
 *
 * Each transition is one Lua function of src/store/lua/, called with FCALL (the
 * library is loaded into Redis when it lacks it), or for create, claim and
 * finish a command of jobd's module where Redis has it (conn.c); hot paths take
 * batches so one call's fixed cost is shared. A store holds one blocking
 * connection with timeouts; it is used by one thread at a time. When Redis is
 * unreachable a call returns JOBD_STORE_ERR_REDIS (retriable: back off and call
 * again; the next call reconnects) and jobd_store_errstr() says why.
 */
#ifndef JOBD_SRC_STORE_STORE_H
#define JOBD_SRC_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"
#include "base/job.h"

#define JOBD_STORE_ERR_REDIS (-1)    /* unreachable or failed: retriable */
#define JOBD_STORE_ERR_NOTFOUND (-2) /* no such job */
#define JOBD_STORE_ERR_INVALID (-3)  /* bad argument: nothing written */

/* Most jobs one script call handles; larger requests are split. */
#define JOBD_STORE_BATCH 500

struct jobd_store;

/*
 * Connects to conf->redis_address (host:port, or a path for a unix
 * socket), authenticates, loads the scripts. CONF is borrowed and must
 * outlive the store. Returns NULL with the reason in errstr.
 */
struct jobd_store *jobd_store_new(const struct jobd_conf *conf, char *errstr,
				  size_t errstr_size);
void jobd_store_free(struct jobd_store *st);

/* The last error of ST ("cannot connect to 127.0.0.1:6379: ..."). */
const char *jobd_store_errstr(const struct jobd_store *st);

/* Whether ST's Redis, when it last connected, had jobd's module loaded in
 * the version this jobd wants (docs/redis-module.md). */
bool jobd_store_has_module(const struct jobd_store *st);

/*
 * From now on, the creates of ST (jobd_store_create and the _send/_recv
 * pair) wait until [redis] wait_replicas replicas of the primary have
 * them (WAIT, at most [redis] wait_timeout) before they return: the
 * Kafka consumer's, whose offsets are committed after the create, so a
 * failover to a replica loses no job whose message was committed
 * (docs/scaling.md, "Durability across a failover").
 */
void jobd_store_set_create_wait(struct jobd_store *st, bool on);

/* Sets per-call timeouts (ms) of the store's connections, those open
 * and those made later (on a cluster, the cluster client's too); default
 * 5000. */
void jobd_store_set_timeout(struct jobd_store *st, int ms);

/* --- creating jobs ----------------------------------------------------- */

struct jobd_spec {
	const char *type; /* must be a type of the conf */
	const char *key;  /* idempotency key, NULL = none (scoped to parent) */
	const char *source;  /* "topic/partition@offset", NULL = none */
	const char *payload; /* JSON text, NULL = "{}" */
	const char *run_by;  /* NULL = nobody; ignored for system types */
	int64_t parent;	     /* 0 = a root job */
	int64_t run_at;	     /* ms since the epoch, 0 = now (run_at wins) */
	int64_t delay;	     /* ms after the Redis clock at creation, 0 = now */
	bool low_priority;
	bool payload_checked; /* the payload is known JSON text: not parsed */
};

struct jobd_created {
	int64_t id;	 /* 0 when refused */
	bool existed;	 /* the key named an existing job: nothing created */
	char error[200]; /* why it was refused, "" when created */
};

/*
 * Whether jobd_store_create would send SP rather than refuse it itself:
 * its type is one of CONF (borrowed) and its payload JSON text. Else
 * false with the reason in WHY ("unknown type \"x\""). Refusals that
 * depend on what Redis holds (the parent ended) are only known there.
 */
bool jobd_store_spec_check(const struct jobd_conf *conf,
			   const struct jobd_spec *sp, char *why,
			   size_t why_size);

/*
 * The actor of the jobs the Kafka consumer creates. A job with a source
 * came from it: its hash stores no created_by (docs/redis-keys.md).
 */
#define JOBD_ACTOR_KAFKA "kafka"

/*
 * Creates N jobs in batches, each with the policy of its type copied in.
 * ACTOR (borrowed) is written in the audit log, unless a spec has a
 * source (then it is JOBD_ACTOR_KAFKA's). Fills OUT[0..n-1].
 * Returns 0 when Redis answered (per-job refusals are in OUT), or
 * JOBD_STORE_ERR_REDIS: then jobs of earlier batches may exist; calling
 * again with the same keys creates no second job.
 */
int jobd_store_create(struct jobd_store *st, const char *actor,
		      const struct jobd_spec *specs, size_t n,
		      struct jobd_created *out);

/*
 * jobd_store_create of at most JOBD_STORE_BATCH specs in two halves, so
 * that the caller can work while Redis creates: _send fills OUT with the
 * refusals it finds itself and sends the call; _recv waits for the reply
 * of the oldest call sent and fills its OUT with the rest. Up to
 * JOBD_STORE_CREATES_SENT calls may be on their way at once, so that
 * Redis goes from one to the next without waiting for us; ST takes no
 * other call until every reply was read. Either returns 0 or
 * JOBD_STORE_ERR_REDIS: then make that call again with jobd_store_create
 * (the keys make the repeat harmless), which also handles what the two
 * halves leave to it (Lua functions to load, a module gone since).
 */
#define JOBD_STORE_CREATES_SENT 2
int jobd_store_create_send(struct jobd_store *st, const char *actor,
			   const struct jobd_spec *specs, size_t n,
			   struct jobd_created *out);
int jobd_store_create_recv(struct jobd_store *st, struct jobd_created *out);

/* --- the engine's calls ----------------------------------------------- */

struct jobd_claim {
	int64_t id;
	int64_t attempt; /* fencing token of this run */
	char *type;
	char *payload;	  /* JSON text */
	char *checkpoint; /* JSON text, NULL when none */
	bool low_priority;
	int64_t root;
	double progress;
};

/*
 * Claims up to MAX ready jobs for INSTANCE, at most MAX_LOW of them low
 * priority, leasing them for LEASE_MS. *CLAIMS is a new array of *N (caller
 * frees with jobd_store_claims_free).
 */
int jobd_store_claim(struct jobd_store *st, const char *instance, int max,
		     int max_low, int64_t lease_ms, struct jobd_claim **claims,
		     size_t *n);
void jobd_store_claims_free(struct jobd_claim *claims, size_t n);

enum jobd_result {
	JOBD_RESULT_OK,	      /* written */
	JOBD_RESULT_STOP,     /* written; a stop was requested */
	JOBD_RESULT_FENCED,   /* not the job's attempt any more: abandon it */
	JOBD_RESULT_FINISHED, /* finished */
	JOBD_RESULT_WAITING,  /* handler done, waits for its children */
	JOBD_RESULT_STOPPED,  /* stopped at its checkpoint */
	JOBD_RESULT_RETRY,    /* failed, pending again after a backoff */
	JOBD_RESULT_PENDING,  /* handed back to pending */
};

enum jobd_outcome {
	JOBD_OUTCOME_DONE,
	JOBD_OUTCOME_FAILED,
	JOBD_OUTCOME_STOPPED
};

struct jobd_log_line {
	int level;	 /* enum jobd_log_level */
	const char *msg; /* borrowed */
};

/* What a running handler reported; all pointers borrowed for the call. */
struct jobd_report {
	int64_t id;
	int64_t attempt;
	double progress;	/* 0-100, negative = unchanged */
	int64_t errors;		/* errors reported since the last report */
	const char *checkpoint; /* JSON text, NULL = unchanged */
	const struct jobd_log_line *logs;
	size_t nlogs;
	enum jobd_outcome outcome; /* for jobd_store_finish */
	const char *message;	   /* for a failure: logged at level error */
};

/* Writes progress, checkpoints, errors and logs of N running jobs. */
int jobd_store_report(struct jobd_store *st, const struct jobd_report *r,
		      size_t n, enum jobd_result *results);

/* The handlers of N jobs returned with r[i].outcome (and a last report). */
int jobd_store_finish(struct jobd_store *st, const struct jobd_report *r,
		      size_t n, enum jobd_result *results);

/* N running jobs go back unfinished (shutdown, claimed ahead but waited too
 * long for a worker): REASON logged. */
int jobd_store_handback(struct jobd_store *st, const char *reason,
			const struct jobd_report *r, size_t n,
			enum jobd_result *results);

/* Renews the leases of N running jobs: OK, STOP or FENCED each. */
int jobd_store_heartbeat(struct jobd_store *st, const int64_t *ids,
			 const int64_t *attempts, size_t n, int64_t lease_ms,
			 enum jobd_result *results);

/* Hands back up to MAX jobs whose lease expired; *N = how many. */
int jobd_store_expire(struct jobd_store *st, size_t max, size_t *n);

/*
 * Blocks until jobs may be ready (a create, resume, hand-back or finish
 * published a wake-up) or TIMEOUT_MS passed. Uses a second connection in
 * subscribe mode. Returns 1 woken, 0 timeout, or JOBD_STORE_ERR_REDIS.
 */
int jobd_store_wait(struct jobd_store *st, int timeout_ms);

/* Continues cascade tasks left by an operator that died; *left = tasks. */
int jobd_store_cascades_run(struct jobd_store *st, size_t max_calls,
			    size_t *left);

/* --- operations ------------------------------------------------------- */

enum jobd_op {
	JOBD_OP_STOP,
	JOBD_OP_RESUME,
	JOBD_OP_FORCE_STOP,
	JOBD_OP_CANCEL,
	JOBD_OP_RESTART,
	JOBD_OP_LOW_PRIORITY,
	JOBD_OP_LOW_PRIORITY_OFF,
	JOBD_OP_COUNT,
};

/* "force-stop" -> JOBD_OP_FORCE_STOP, -1 when unknown. */
int jobd_op_parse(const char *name);
extern const char *const jobd_op_names[JOBD_OP_COUNT];

struct jobd_op_result {
	int64_t id;
	bool ok;
	int status; /* ok: enum jobd_status right after the operation (a stop
		     * of a running job leaves it stopping); -1 unknown */
	char error[200]; /* "job 42 is finished: stop needs pending or in_progress" */
};

/*
 * Applies OP to N jobs as ACTOR, then cascades it to their descendants in
 * bounded batches before returning: once this returns, no job of a
 * stopped subtree can be claimed.
 */
int jobd_store_op(struct jobd_store *st, enum jobd_op op, const char *actor,
		  const int64_t *ids, size_t n, struct jobd_op_result *out);

/* --- reading ---------------------------------------------------------- */

struct jobd_filter {
	const char *status; /* NULL = any */
	const char *type;   /* NULL = any */
	const char *run_by; /* NULL = any */
	bool system;	    /* include system jobs */
	bool all;	    /* include children */
	int64_t cursor;	    /* 0 = from the newest */
	size_t limit;	    /* page size, at most 1000 */
	/* Another order (src/store/lua/sort.lua): NULL = newest first, else
	 * "created", "started", "waiting", "duration" or "status" */
	const char *sort;
	bool desc;	   /* ... highest first */
	const char *after; /* ... the cursor a page returned, NULL = first */
	size_t window;	   /* ... index entries read at most; 0 =
			    * JOBD_SORT_WINDOW */
};

/*
 * Index entries a sorted page reads at most. Created is id order, which
 * the indexes hold: such a page reads them from its cursor on, like the
 * newest first list. No index holds the other keys: those sort the
 * JOBD_SORT_WINDOW newest matching jobs, and say so (complete = false)
 * when there are older ones (docs/monitor.md, "Sorting").
 */
#define JOBD_SORT_WINDOW 5000

/*
 * One page of jobs, newest first, or in F's sort order (then OUT->sorted
 * and OUT->after is the next page's cursor). OUT is released with
 * jobd_job_list_release.
 */
int jobd_store_list(struct jobd_store *st, const struct jobd_filter *f,
		    struct jobd_job_list *out);

/* One page of the direct children of ID, oldest first. */
int jobd_store_children(struct jobd_store *st, int64_t id, int64_t cursor,
			size_t limit, struct jobd_job_list *out);

/* One job; JOBD_STORE_ERR_NOTFOUND when there is none. *NOW = Redis clock. */
int jobd_store_get(struct jobd_store *st, int64_t id, struct jobd_job **job,
		   int64_t *now);

/* How many jobs are in each status (from the status counters). */
int jobd_store_counts(struct jobd_store *st, int64_t counts[JOBD_STATUS_COUNT]);

/* --- logs --------------------------------------------------------------- */

struct jobd_log_entry {
	char sid[32]; /* stream entry id, "1764340000000-0": resume after it */
	int64_t job;  /* the job that logged it */
	int64_t ms;   /* ms since epoch, Redis clock */
	int level;    /* enum jobd_log_level */
	int64_t attempt; /* 0 = before the first claim */
	char *msg;
};

/* Decides whether an entry matches (e.g. a regex); borrowed for the call. */
typedef bool (*jobd_log_match_fn)(const struct jobd_log_entry *e, void *arg);

struct jobd_log_query {
	int min_level;		 /* entries of this level and above */
	const char *grep;	 /* case-insensitive substring, NULL = any */
	jobd_log_match_fn match; /* extra test, NULL = none */
	void *match_arg;
	int64_t since;	    /* ms, 0 = from the first entry (all jobs: 1 h) */
	int64_t until;	    /* ms, 0 = to the last entry */
	const char *after;  /* stream id: only entries after it (follow) */
	bool tree;	    /* include every descendant's log */
	size_t limit;	    /* most entries returned, 0 = 1000 */
	const char *cursor; /* all jobs: a result's next, to continue */
	size_t scan_max;    /* all jobs: most index entries read, 0 = default */
};

/* Index entries a search across jobs reads per call at most by default. */
#define JOBD_LOG_SCAN_MAX 5000
/* Room for a cursor of the search across jobs, its NUL included. */
#define JOBD_LOG_CURSOR_SIZE 64

struct jobd_log_result {
	struct jobd_log_entry *entries; /* owned, by time */
	size_t n;
	int64_t dropped; /* entries trimmed from the job's log (not the tree's) */
	bool truncated; /* more entries matched than limit (all jobs: more
			 * may follow next) */
	char next[JOBD_LOG_CURSOR_SIZE]; /* all jobs: the cursor that
					  * continues, "" = the window is done */
	size_t scanned; /* all jobs: index entries read (log entries written
			 * in the window, matching or not) */
};

/*
 * Entries of job ID's log (and its descendants' with q->tree) matching Q,
 * oldest first. Reads the stream in chunks within the time range, so a
 * 10,000-entry log is never loaded whole. Release with
 * jobd_log_result_release. JOBD_STORE_ERR_NOTFOUND when there is no job.
 */
int jobd_store_logs(struct jobd_store *st, int64_t id,
		    const struct jobd_log_query *q,
		    struct jobd_log_result *out);

/*
 * One page of the entries of all jobs between q->since (default an hour
 * before q->until) and q->until (default now), matching Q, in the order
 * they were written, read through the index P:logix (docs/redis-keys.md).
 * A call reads at most q->scan_max index entries (JOBD_LOG_SCAN_MAX) in
 * a few Redis calls, and returns at most q->limit entries, whatever the
 * window holds: OUT->next is then the cursor to pass as q->cursor (with
 * the same other fields) for the rest, "" when the window is done. Each
 * entry comes once over the pages. The lifecycle entries of a job
 * (created, claimed, finished: lifecycle_make()) come with the page that
 * read an entry of that job and covers their time.
 * JOBD_STORE_ERR_INVALID for a cursor that is not one.
 */
int jobd_store_logs_all(struct jobd_store *st, const struct jobd_log_query *q,
			struct jobd_log_result *out);

/* True when S has the form of a cursor of jobd_store_logs_all. */
bool jobd_store_log_cursor_valid(const char *s);
void jobd_log_result_release(struct jobd_log_result *r);

/* --- why a job waits (store/why.c) --------------------------------------- */

#define JOBD_WHY_MAX 8

struct jobd_why_reason {
	const char *code; /* "turn", "ahead", "busy", ... (docs/design.md) */
	char text[256];	  /* one line for a person */
};

struct jobd_why {
	int64_t id, root, now; /* now: the Redis clock, ms */
	int status;	       /* enum jobd_status, -1 unknown */
	char type[128];
	bool low_priority;
	int64_t since; /* ms: waiting since (queued_at, else created_at) */
	int instances, workers, busy, busy_low, low_cap; /* live work roles */
	int serving; /* of the instances, those that know the type */
	struct jobd_why_reason reasons[JOBD_WHY_MAX]; /* first = strongest */
	size_t n;
};

/*
 * Why job ID has not started: the reasons from the store's state and the
 * instances' published views, strongest first; a job that is not pending
 * has one reason, "not_pending". Returns 0, JOBD_STORE_ERR_NOTFOUND or
 * JOBD_STORE_ERR_REDIS.
 */
int jobd_store_why(struct jobd_store *st, int64_t id, struct jobd_why *w);

/* The JSON of GET /api/jobs/ID/why (caller decrefs). */
json_t *jobd_why_to_json(const struct jobd_why *w);

/*
 * An instance with the work role publishes its workers every heartbeat
 * (JSON: instance, workers, busy, busy_low, low_cap, types), kept TTL_MS;
 * jobd_store_workers reads the live ones like jobd_store_kafka_views
 * (freed with jobd_store_kafka_views_free).
 */
int jobd_store_workers_put(struct jobd_store *st, const char *instance,
			   const char *json, int64_t ttl_ms);
int jobd_store_workers_drop(struct jobd_store *st, const char *instance);
int jobd_store_workers(struct jobd_store *st, char ***views, size_t *n);

/* --- statistics ---------------------------------------------------------- */

#define JOBD_STATS_BUCKETS 96 /* log-scale waiting-time buckets, 4 per 2x */

struct jobd_stats_counts {
	int64_t created, started, finished, errors;
	int64_t wait_sum, wait_min, wait_max; /* ms; min/max -1 = no start */
	int64_t hist[JOBD_STATS_BUCKETS];     /* starts per waiting bucket */
};

struct jobd_stats_type {
	char *type;
	struct jobd_stats_counts c;
};

struct jobd_stats_minute {
	int64_t minute; /* ms since epoch, start of the minute */
	bool closed;	/* the minute is over (Redis clock) */
	struct jobd_stats_counts all;
	struct jobd_stats_type *types; /* owned */
	size_t ntypes;
};

struct jobd_stats {
	struct jobd_stats_minute *minutes; /* owned, oldest first */
	size_t n;
	int64_t now; /* ms, Redis clock */
};

/*
 * Per-minute statistics from SINCE (ms) to now, the open minute included;
 * minutes without activity are included with zero counts. TYPE (NULL =
 * all) keeps only that type in by_type.
 */
int jobd_store_stats(struct jobd_store *st, int64_t since, const char *type,
		     struct jobd_stats *out);
void jobd_stats_release(struct jobd_stats *s);

/*
 * The counters since the store began (P:stats:total, docs/metrics.md):
 * created, started, finished, errors, wait_sum and the waiting-time
 * histogram per type in OUT->types, their sums in OUT->all (no minima or
 * maxima: -1; minute 0). They only grow, whatever the clock does. OUT is
 * the caller's, released with jobd_stats_minute_release() (also after an
 * error).
 */
int jobd_store_totals(struct jobd_store *st, struct jobd_stats_minute *out);
void jobd_stats_minute_release(struct jobd_stats_minute *m);

/* The waiting-time percentile P (0-100) of counts C in ms; -1 = no start. */
int64_t jobd_stats_percentile(const struct jobd_stats_counts *c, double p);

/* Adds the counts C into SUM (a window's total): sums, min, max, buckets. */
void jobd_stats_counts_add(struct jobd_stats_counts *sum,
			   const struct jobd_stats_counts *c);

/* --- embedded broker -------------------------------------------------------- */

/*
 * Publishes ADDR as the live embedded broker in PREFIX:broker for TTL_MS
 * when the key is free or already ADDR's (one script: two instances
 * starting together cannot both win). Returns 1 when ADDR is the published
 * one (TTL refreshed), 0 when another is live or ADDR is NULL (the live
 * address, or "", copied into CURRENT of SIZE), or JOBD_STORE_ERR_REDIS.
 */
int jobd_store_broker_publish(struct jobd_store *st, const char *addr,
			      int64_t ttl_ms, char *current, size_t size);

/* Deletes PREFIX:broker if it still holds ADDR: 1 deleted, 0 not ours. */
int jobd_store_broker_release(struct jobd_store *st, const char *addr);

/* --- the Kafka view ------------------------------------------------------------ */

/*
 * Publishes JSON (an instance's Kafka view, borrowed) as INSTANCE's for
 * TTL_MS: P:kafka:view:INSTANCE, and INSTANCE in P:kafka:views. Returns 0
 * or JOBD_STORE_ERR_REDIS.
 */
int jobd_store_kafka_view_put(struct jobd_store *st, const char *instance,
			      const char *json, int64_t ttl_ms);

/* Deletes INSTANCE's view (a clean stop). 0 or JOBD_STORE_ERR_REDIS. */
int jobd_store_kafka_view_drop(struct jobd_store *st, const char *instance);

/*
 * The views of every instance whose view has not expired, as *N JSON
 * texts in *VIEWS (caller frees with jobd_store_kafka_views_free);
 * forgets the instances whose view expired. Returns 0,
 * JOBD_STORE_ERR_REDIS or -ENOMEM.
 */
int jobd_store_kafka_views(struct jobd_store *st, char ***views, size_t *n);

/* Frees what jobd_store_kafka_views returned. NULL is a no-op. */
void jobd_store_kafka_views_free(char **views, size_t n);

/* --- leader leases ------------------------------------------------------------ */

/*
 * Takes or renews the lease NAME for HOLDER (an instance name) for TTL_MS;
 * TTL_MS 0 releases it if HOLDER has it. Returns 1 when HOLDER holds it,
 * 0 when another does (or after a release), or JOBD_STORE_ERR_REDIS.
 */
int jobd_store_lease(struct jobd_store *st, const char *name,
		     const char *holder, int64_t ttl_ms);

/* --- retention ---------------------------------------------------------------- */

/*
 * Deletes the trees of root jobs that finished or were canceled in a
 * minute that ended by CUTOFF_MS (retention's index is kept per minute),
 * with every key they own, visiting at most MAX jobs (0 = 200).
 * *DELETED = jobs deleted by this call; *MORE = call again. Any number of
 * processes may call it; the work list lives in Redis.
 */
int jobd_store_purge(struct jobd_store *st, int64_t cutoff_ms, size_t max,
		     size_t *deleted, bool *more);

/*
 * Builds the indexes that a store written by an earlier version lacks
 * (src/store/lua/backfill.lua: the listing index buckets from the sorted
 * sets P:ix:*, retention's index from the terminal roots or from the
 * sorted set P:ended of r7 to r9, P:logix from the
 * per-minute log sets) and moves its idempotency keys (P:key:*) into
 * this version's layout, visiting at most MAX ids, minutes or keys.
 * *INDEXED = roots indexed, *CONVERTED = log minutes converted, *MOVED =
 * keys moved by this call; *MORE = call again. Progress is kept in Redis
 * (P:backfill): any process may continue it.
 */
int jobd_store_backfill(struct jobd_store *st, size_t max, size_t *indexed,
			size_t *converted, size_t *moved, bool *more);

/* 1 when jobd_store_backfill has work left, 0 when not, or an error. */
int jobd_store_backfill_pending(struct jobd_store *st);

/* The Redis clock, ms since the epoch. */
int jobd_store_time(struct jobd_store *st, int64_t *now);

/* --- schedules ------------------------------------------------------------- */

/* What P:schedule:NAME holds (docs/redis-keys.md, "Schedules"). */
struct jobd_schedule_state {
	int64_t tick;	/* ms: ticks up to here are handled; 0 = never seen */
	int64_t fired;	/* ms: the tick of the last job fired; 0 = none */
	int64_t job;	/* id of that job; 0 = none */
	int64_t missed; /* ticks skipped by the catch-up policy, in all */
};

/* The state of schedule NAME (all zero when it has none). 0 or
 * JOBD_STORE_ERR_REDIS. */
int jobd_store_schedule_get(struct jobd_store *st, const char *name,
			    struct jobd_schedule_state *out);

/*
 * Records a step of schedule NAME's ticker: ticks up to TICK handled,
 * MISSED of them skipped, and when FIRED > 0, job JOB fired for the tick
 * FIRED. The tick only moves forward (an older step changes nothing, nor
 * counts its MISSED). Returns 1 when it moved, 0 when not, or
 * JOBD_STORE_ERR_REDIS.
 */
int jobd_store_schedule_mark(struct jobd_store *st, const char *name,
			     int64_t tick, int64_t fired, int64_t job,
			     int64_t missed);

/* --- fsck ------------------------------------------------------------------- */

#define JOBD_FSCK_MAX_REPORTED 1000

struct jobd_fsck {
	size_t jobs;	   /* jobs checked */
	char **violations; /* owned, at most JOBD_FSCK_MAX_REPORTED */
	size_t nviolations;
	size_t more_violations; /* found beyond those reported */
	size_t fixed;		/* repairs made (with repair) */
	size_t stale; /* stale entries in the lists of roots without children
		       * (not a violation: claims drop them) */
	bool counters_moved; /* jobs changed status during the check: the
			      * status counters were not compared */
};

/*
 * Checks every invariant of the store, job by job and then the
 * scheduling structures and status counters, in bounded calls. With
 * REPAIR, rebuilds what is wrong from the job hashes, which are the
 * truth. The counters are compared with the jobs seen only when they
 * did not change while the jobs were read: on a live store a job may
 * change status between two calls, so a difference then proves nothing
 * (F->counters_moved). Release F with jobd_fsck_release.
 */
int jobd_store_fsck(struct jobd_store *st, bool repair, struct jobd_fsck *f);
void jobd_fsck_release(struct jobd_fsck *f);

/* --- per-type limits (docs/job-types.md, "Limits") -------------------------- */

/*
 * Writes the limits of the configuration's types into the store for every
 * instance (limits.lua): the last writer wins. *CHANGED says whether they
 * differ from those there; BY gets the instance that wrote those ("" if
 * none).
 */
int jobd_store_limits_write(struct jobd_store *st, const char *instance,
			    bool *changed, char *by, size_t by_size);

/*
 * Writes the configuration's [retention] key_window into P:conf, where
 * the functions and the module read it (docs/redis-keys.md, "Idempotency
 * keys"): the last writer wins, so every instance needs the same one.
 * *REPLACED gets the window it replaced (ms) when the keys written under
 * that one are kept: found until two of its windows have passed
 * (key_window.lua); 0 when the window stays or the store has no jobs.
 */
int jobd_store_key_window_write(struct jobd_store *st, int64_t *replaced);

/*
 * Whether the last call failed because a move of the slot holds the calls
 * (jobctl cluster move: "HELD ..."); *SINCE gets when the hold began (ms,
 * Redis's clock), which names it: Redis lengthens every lease by the time
 * held when it lets the calls go, so a worker may count the time a hold
 * surely lasted as renewed.
 */
bool jobd_store_held(const struct jobd_store *st, int64_t *since);

/* What jobd_store_move says as it goes: one line, without its newline. */
typedef void (*jobd_store_say)(void *arg, const char *line);

/*
 * Moves the slot of [redis] prefix's hash tag to the primary TO
 * ("host:port") of the same Redis Cluster while jobd runs (jobctl cluster
 * move; docs/scaling.md, "Moving the slot"): the calls of every jobd are
 * held (P:hold, BY saying who moves it) while MIGRATE moves the keys,
 * then the slot is given to TO and the calls go on, every lease
 * lengthened by the time held. SAY (may be NULL) gets each step. With
 * DRY_RUN it says what it would move and moves nothing. A move
 * interrupted is resumed by calling again with the same TO; the calls
 * stay held until then. 0, or JOBD_STORE_ERR_REDIS with the error set
 * (not a cluster, TO not a primary of it, the slot migrating elsewhere,
 * a node that cannot be reached or refuses a step, named).
 */
int jobd_store_move(struct jobd_store *st, const char *to, const char *by,
		    bool dry_run, jobd_store_say say, void *arg);

/*
 * The job each of the N idempotency KEYS names (docs/redis-keys.md,
 * "Idempotency keys"), as creating a job with it would find it: root
 * keys with PARENT 0, else the keys of PARENT's children in its current
 * run. IDS[i] = 0 when KEYS[i] names no job.
 */
int jobd_store_key_ids(struct jobd_store *st, int64_t parent,
		       const char *const *keys, size_t n, int64_t *ids);

/* One key and its job, for jobd_store_key_scan; KEY borrowed for the call. */
typedef void (*jobd_store_key_fn)(const char *key, int64_t id, void *arg);

/*
 * Calls FN for every root key (PARENT 0) or every key of PARENT's
 * children that matches GLOB ('*' and '?'), in no order, reading the
 * store a bounded step per call.
 */
int jobd_store_key_scan(struct jobd_store *st, int64_t parent, const char *glob,
			jobd_store_key_fn fn, void *arg);

/* Where a limited type stands. */
struct jobd_type_limit {
	char *type;
	int64_t concurrency; /* 0 = none */
	int64_t rate;	     /* starts per rate_ms, 0 = none */
	int64_t rate_ms;
	int64_t running; /* slots taken: jobs of the type whose handler runs */
	int64_t held;	 /* pending jobs held back by the limit */
	int64_t started; /* starts in the last rate_ms */
};

/* Every type the store has limits for (limits_show.lua). */
int jobd_store_limits(struct jobd_store *st, struct jobd_type_limit **out,
		      size_t *n);
void jobd_store_limits_release(struct jobd_type_limit *l, size_t n);

#endif
