/*
 * handler: the API a job handler is written against (docs/design.md,
 * "Execution").
 *
 * A handler is a C function run on a worker thread for one attempt of one
 * job. It reads its input through the context (payload, the checkpoint of
 * an earlier attempt), reports through it (progress, logs, errors,
 * checkpoints, children) and returns how the attempt ended:
 *
 *	static int count(struct jobd_ctx *ctx)
 *	{
 *		for (i = resume_point(ctx); i < n; i++) {
 *			if (jobd_ctx_stop_requested(ctx))
 *				return JOBD_HANDLER_STOPPED;  (checkpoint saved)
 *			do_step(i);
 *			jobd_ctx_save_checkpoint(ctx, "{\"next\": i + 1}");
 *			jobd_ctx_progress_of(ctx, i + 1, n);
 *		}
 *		return JOBD_HANDLER_DONE;
 *	}
 *
 * Reports are buffered by the worker and written to Redis in batches, so
 * calling them often is cheap; they never block on Redis. Everything a
 * handler reports is fenced by the attempt: once the attempt is no longer
 * the job's (force stop, lost lease) the writes are dropped and
 * jobd_ctx_abandoned() turns true; the handler must then return at once
 * (its return value is ignored).
 *
 * A handler returning JOBD_HANDLER_DONE while children it spawned still
 * run does not hold its worker: the job waits In Progress until they are
 * terminal, then finishes (with errors if a child finished with errors).
 *
 * Handlers are found by name in the registry (engine/registry.h): the
 * worker uses a handler registered under the job's type name if there is
 * one (tests and embedders), else the one named by the type's "handler"
 * in the conf. The built-in ones are listed in handlers/builtin.h. Every
 * function below is thread-safe; a ctx is only valid during the handler
 * call it was passed to.
 */
#ifndef JOBD_SRC_ENGINE_HANDLER_H
#define JOBD_SRC_ENGINE_HANDLER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/conf.h"
#include "base/log.h"
#include "store/store.h"

/* What a handler returns. */
#define JOBD_HANDLER_DONE 0    /* the work is done */
#define JOBD_HANDLER_STOPPED 1 /* stopped on request at the last checkpoint */
#define JOBD_HANDLER_FAILED 2  /* failed: one error; retried per type policy */

/* Results of jobd_ctx_spawn(). */
#define JOBD_CTX_ERR_REFUSED (-1)   /* the store refused the child (logged) */
#define JOBD_CTX_ERR_ABANDONED (-2) /* the attempt is abandoned: return */

struct jobd_ctx;

typedef int (*jobd_handler_fn)(struct jobd_ctx *ctx);

/* --- the job ------------------------------------------------------------ */

int64_t jobd_ctx_job_id(const struct jobd_ctx *ctx);
int64_t jobd_ctx_attempt(const struct jobd_ctx *ctx);  /* 1 for the first run */
const char *jobd_ctx_type(const struct jobd_ctx *ctx); /* borrowed */

/* The type's policy (command, timeout...); borrowed from the conf. */
const struct jobd_type_conf *jobd_ctx_type_conf(const struct jobd_ctx *ctx);

/* The whole configuration (data_dir, listeners...); borrowed. */
const struct jobd_conf *jobd_ctx_conf(const struct jobd_ctx *ctx);

/*
 * A store for the handler's own Redis work (records, leases): one per
 * worker thread, kept across jobs, freed when the thread ends. NULL when
 * Redis cannot be reached (the reason is logged). Borrowed: do not free.
 */
struct jobd_store *jobd_ctx_store(struct jobd_ctx *ctx);

/* The payload as JSON text; borrowed for the handler call. */
const char *jobd_ctx_payload(const struct jobd_ctx *ctx);

/*
 * The last checkpoint as JSON text: the one saved by this attempt, else the
 * one an earlier attempt saved, NULL when none. Borrowed until the next
 * jobd_ctx_save_checkpoint() or the end of the handler call.
 */
const char *jobd_ctx_checkpoint(const struct jobd_ctx *ctx);

/* --- reporting (buffered, never blocks on Redis) ------------------------ */

/*
 * Saves JSON (copied; must be valid JSON text) as the checkpoint a resumed
 * or retried attempt starts from.
 */
void jobd_ctx_save_checkpoint(struct jobd_ctx *ctx, const char *json);

/* Own progress, PCT in 0-100 (clamped). */
void jobd_ctx_progress(struct jobd_ctx *ctx, double pct);

/* Own progress as DONE of TOTAL steps (TOTAL <= 0 counts as 0 %). */
void jobd_ctx_progress_of(struct jobd_ctx *ctx, int64_t done, int64_t total);

/* A line of the job's log at LEVEL. */
void jobd_ctx_log(struct jobd_ctx *ctx, enum jobd_log_level level,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Counts an error of the job and logs the text at level error. */
void jobd_ctx_error(struct jobd_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Sets the failure message (logged at level error with the one error that
 * a failure counts) and returns JOBD_HANDLER_FAILED, for
 * "return jobd_ctx_fail(ctx, "exited with status %d", st);". The first
 * call of a run sets it; a later one is logged ("also: ...") and leaves
 * the first as the cause.
 */
int jobd_ctx_fail(struct jobd_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Creates a child job of TYPE with idempotency KEY (required, scoped to
 * this job) and PAYLOAD (JSON text, NULL = "{}"); all borrowed. A resumed
 * handler spawning the same KEY again gets the existing child. Blocks until
 * Redis answered (retrying while it is unreachable). Returns 0 with
 * *CHILD_ID set (CHILD_ID may be NULL), JOBD_CTX_ERR_REFUSED (the reason is
 * in the job's log) or JOBD_CTX_ERR_ABANDONED.
 */
int jobd_ctx_spawn(struct jobd_ctx *ctx, const char *type, const char *key,
		   const char *payload, int64_t *child_id);

/*
 * jobd_ctx_spawn of a child scheduled DELAY ms after the Redis clock of
 * its creation (0: at once): it stays Pending, shown as Scheduled, until
 * then (docs/design.md, "Scheduled jobs"). A child spawned again with
 * the same KEY keeps its first run time. The parent, once its handler
 * returned, waits for it holding no worker.
 */
int jobd_ctx_spawn_later(struct jobd_ctx *ctx, const char *type,
			 const char *key, const char *payload, int64_t delay,
			 int64_t *child_id);

/* A child for jobd_ctx_spawn_many(); its strings are borrowed. */
struct jobd_ctx_child {
	const char *type;    /* a type of the conf */
	const char *key;     /* idempotency key within the parent, required */
	const char *payload; /* JSON text, NULL = "{}" */
	int64_t run_at;	     /* ms since the epoch, 0 = now; not with delay */
	int64_t delay;	     /* ms after the Redis clock at creation, 0 = now */
	bool low_priority;   /* low even when the parent is not */
};

/*
 * The N CHILDREN as N calls of jobd_ctx_spawn_later would create them
 * (same keys, counters, run times; the parent's stop and end apply the
 * same way), in as few Redis calls as the store's batches allow
 * (JOBD_STORE_BATCH children per call). IDS (N entries, may be NULL)
 * gets each child's id, 0 for one not created.
 *
 * Every child is checked first (a key, a type of the conf, a payload of
 * JSON text, not both a run_at and a delay): the first bad one is logged
 * in the job's log with its index, counted from 0 ("cannot create
 * children: child 3 (\"k3\") of type \"x\": unknown type \"x\"; none
 * created"), *BAD (may be NULL) is set to that index, and nothing is
 * created: JOBD_CTX_ERR_REFUSED. Children the store
 * refuses (the parent finished or was canceled meanwhile) are logged each
 * as jobd_ctx_spawn logs them, *BAD is the first of them and the others
 * exist: JOBD_CTX_ERR_REFUSED too. Returns 0 when all exist, or
 * JOBD_CTX_ERR_ABANDONED (the batches before it exist).
 */
int jobd_ctx_spawn_many(struct jobd_ctx *ctx,
			const struct jobd_ctx_child *children, size_t n,
			int64_t *ids, size_t *bad);

/*
 * Whether jobd_ctx_spawn_many would take CHILD (borrowed) rather than
 * refuse it before any Redis call: false with the reason in WHY ("no
 * key", "unknown type \"x\"", "payload is not valid JSON: ...").
 * It makes no Redis call.
 */
bool jobd_ctx_child_check(const struct jobd_ctx *ctx,
			  const struct jobd_ctx_child *child, char *why,
			  size_t why_size);

/* --- stopping ----------------------------------------------------------- */

/*
 * True once the handler should save a checkpoint and return
 * JOBD_HANDLER_STOPPED: an operator stopped the job or jobd shuts down (the
 * job is then handed back and resumes elsewhere). Also true when the
 * attempt is abandoned.
 */
bool jobd_ctx_stop_requested(const struct jobd_ctx *ctx);

/* True when the attempt was fenced off: return now, writes are dropped. */
bool jobd_ctx_abandoned(const struct jobd_ctx *ctx);

/*
 * Between begin and end (nestable) a stop request is held back: the job
 * stays Stopping and jobd_ctx_stop_requested() stays false until the
 * outermost end. A force stop is not held back.
 */
void jobd_ctx_uninterruptible_begin(struct jobd_ctx *ctx);
void jobd_ctx_uninterruptible_end(struct jobd_ctx *ctx);

/*
 * A nonblocking eventfd that becomes readable when a stop is delivered or
 * the attempt is abandoned, for handlers that poll(); then check
 * jobd_ctx_stop_requested() and jobd_ctx_abandoned(). A handler may read()
 * it to reset it, so it wakes poll() again at the next event. Borrowed:
 * do not close it. Made on the first call; -1 when it cannot be made (a
 * warning said why): then poll with a timeout and check those two.
 */
int jobd_ctx_event_fd(struct jobd_ctx *ctx);

/*
 * FD, the write end of a pipe whose other end a process outside jobd
 * watches (exec's reaper: docs/exec-protocol.md), is written one byte the
 * moment the attempt is abandoned (its lease running out, a force stop,
 * shutdown), by whichever thread abandons it: what that process runs then
 * ends without waiting for the handler's thread, which may be blocked
 * elsewhere. Written at once when the attempt is abandoned already. -1
 * unregisters; unregister before closing FD.
 */
void jobd_ctx_kill_fd(struct jobd_ctx *ctx, int fd);

/*
 * Sleeps MS milliseconds. Returns true after the full time, false early
 * when a stop was delivered or the attempt was abandoned.
 */
bool jobd_ctx_sleep(struct jobd_ctx *ctx, int64_t ms);

#endif
