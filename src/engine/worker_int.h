/*
 * worker_int: for the files of the worker pool only (worker.c, ctx.c):
 * an attempt (struct jobd_ctx), the pool, and what both use.
 */
#ifndef JOBD_SRC_ENGINE_WORKER_INT_H
#define JOBD_SRC_ENGINE_WORKER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/handler.h"
#include "engine/worker.h"
#include "store/store.h"

#define LOGS_MAX 10000	    /* buffered lines kept while Redis is away */
#define BACKOFF_MIN_MS 100  /* the first pause after a Redis error */
#define BACKOFF_MAX_MS 5000 /* the longest */

enum run_state {
	RUN_QUEUED,  /* claimed, waiting for a worker */
	RUN_RUNNING, /* a worker runs its handler */
	RUN_DONE,    /* handler returned; finish or hand-back queued */
};

enum end_kind {
	END_FINISH,   /* jobd_store_finish with ctx->outcome */
	END_HANDBACK, /* jobd_store_handback, reason back_why */
	END_DROP,     /* fenced: write nothing */
};

struct line {
	int level; /* enum jobd_log_level */
	char *msg; /* owned */
};

/* What a handler reported and Redis has not seen yet. */
struct out {
	double progress;   /* 0-100, negative = unchanged */
	int64_t errors;	   /* errors since the last write */
	char *checkpoint;  /* JSON text, owned; NULL = unchanged */
	struct line *logs; /* owned */
	size_t nlogs, cap;
	size_t dropped; /* lines dropped beyond LOGS_MAX */
};

struct jobd_ctx {
	struct jobd_workers *w;	 /* the pool */
	struct jobd_claim claim; /* owned strings; id and attempt fence */
	const struct jobd_type_conf *tc; /* borrowed from conf, NULL if unknown */
	jobd_handler_fn fn;		 /* NULL: cannot run (why) */
	char why[160];			 /* why fn is NULL */
	int efd;	 /* eventfd: stop delivered or abandoned; -1 */
	int kill_fd;	 /* jobd_ctx_kill_fd(), under w->mu; -1 */
	bool efd_failed; /* ... and could not be made */
	/* Below: under w->mu. */
	char *last_ck; /* latest checkpoint, owned, NULL = claim's */
	enum run_state state;
	int64_t queued_at;    /* monotonic ms of the claim */
	int64_t lease_until;  /* monotonic ms the lease surely lasts: from
			       * before the claim or renewal that set it */
	const char *back_why; /* hand-back reason; NULL: "shutdown" */
	bool stop;	      /* a stop was delivered to the handler */
	bool stop_held;	      /* a stop waits for the uninterruptible end */
	bool shutdown;	      /* jobd shuts down, or it waited too long: back */
	bool abandoned;	      /* must return now */
	bool fenced;	      /* not the job's attempt any more */
	int uninterruptible;  /* nesting depth */
	struct out out;
	enum end_kind end;	      /* when RUN_DONE */
	enum jobd_outcome outcome;    /* for END_FINISH */
	char *message;		      /* failure message, owned */
	struct jobd_ctx *prev, *next; /* live list */
	struct jobd_ctx *qnext;	      /* work queue or done queue */
};

struct jobd_workers {
	const struct jobd_conf *conf; /* borrowed */
	struct jobd_store *st_claim;  /* dispatcher's */
	struct jobd_store *st_flush;  /* flusher's */
	struct jobd_store *st_beat;   /* heartbeat's */
	struct jobd_store *st_spawn;  /* handlers', under spawn_mu */
	pthread_mutex_t spawn_mu;
	pthread_mutex_t mu;	 /* everything below */
	pthread_cond_t work_cv;	 /* queue not empty, or quit */
	pthread_cond_t idle_cv;	 /* a worker became idle, or closing */
	pthread_cond_t flush_cv; /* something to write, or quit */
	pthread_cond_t beat_cv;	 /* quit */
	pthread_cond_t guard_cv; /* an earlier lease end, or quit */
	pthread_t dispatcher, flusher, beat, guard;
	pthread_t *threads; /* conf->workers */
	int nthreads;	    /* started */
	bool dispatcher_up, flusher_up, beat_up, guard_up;
	struct jobd_ctx *live; /* every attempt not yet written off */
	struct jobd_ctx *queue, *queue_tail; /* claimed, not started */
	struct jobd_ctx *done, *done_tail;   /* returned, not written */
	int busy;			     /* queued + running handlers */
	int queued;			     /* of them queued */
	int64_t run_us;			     /* mean run time (EWMA), or -1 */
	int idle_wanted; /* idle_cv waits for this many idle workers (0: none) */
	int busy_low;	 /* of them low priority */
	int queued_low;	 /* of the queued ones low priority */
	int low_cap;	 /* most low-priority handlers at once */
	bool closing;	 /* stop claiming, hand back */
	bool workers_quit;     /* workers exit when the queue is empty */
	bool flush_now;	       /* a buffer is large */
	bool flush_quit;       /* write what is left, then exit */
	int64_t flush_give_up; /* monotonic ms: stop retrying at quit */
	bool beat_quit;
	bool guard_quit;
	int64_t guard_at; /* monotonic ms the guard wakes at */
	struct jobd_workers_stats stats;
};

/* ctx.c: an attempt, as the pool and its handler signal each other. */

/* Under w->mu: a stop or abandon for CTX's handler, on its event fd if
 * it has one (ctx_event_fd() signals one made later). */
void ctx_notify(struct jobd_ctx *ctx);

/* Buffers log line MSG (taken) at LEVEL in O; beyond LOGS_MAX lines
 * it is dropped and counted instead. */
void ctx_out_add_line(struct out *o, int level, char *msg);

/* Delivers a stop now, or after the uninterruptible section. */
void ctx_deliver_stop(struct jobd_ctx *ctx);

/*
 * The event fd of CTX, made on first use: most handlers never wait on it,
 * and an eventfd per job cost two system calls a job. Made under w->mu,
 * so a stop or abandon delivered before it existed is signalled on it at
 * once. -1 when it cannot be made (a warning said why).
 */
int ctx_event_fd(struct jobd_ctx *ctx);

/* A worker thread ends: frees the store its handlers used (ctx.c). */
void ctx_thread_end(void);

#endif
