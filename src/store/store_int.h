/*
 * store_int: for the files of src/store/ only: the Redis connection behind
 * a struct jobd_store, and what the store's files share (conn.c). Every
 * other module uses store.h, so hiredis stays inside the store layer.
 */
#ifndef JOBD_SRC_STORE_STORE_INT_H
#define JOBD_SRC_STORE_STORE_INT_H

#include <hiredis/hiredis.h>

#include "store/link.h"
#include "store/store.h"

/*
 * Runs one command (hiredis format). Returns the reply (caller frees with
 * freeReplyObject) or NULL: then the connection was dropped (the next call
 * reconnects) and jobd_store_errstr() says why. An error reply is returned
 * as a reply.
 */
redisReply *jobd_store_command(struct jobd_store *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The same with a va_list. */
redisReply *jobd_store_vcommand(struct jobd_store *st, const char *fmt,
				va_list ap);

/* The same with an argument vector (binary-safe; all borrowed). */
redisReply *jobd_store_command_argv(struct jobd_store *st, int argc,
				    const char **argv, const size_t *lens);

/* Sends N commands appended with store_link_append... on the returned
 * link (borrowed; NULL with the error set when Redis is unreachable) and
 * reads their replies into REPLIES (caller frees each). */
struct store_link *jobd_store_pipeline(struct jobd_store *st);
int jobd_store_pipeline_read(struct jobd_store *st, size_t n,
			     redisReply **replies);

/*
 * Adds one field of a statistics hash ("created", "created|noop",
 * "wait|noop_min", "h12") to minute M (counters add up, minima and maxima
 * combine, so several hashes can be read into one M); with ONLY set,
 * per-type fields of other types are skipped. The one parser of that
 * layout.
 */
void jobd_store_stats_field(struct jobd_stats_minute *m, const char *field,
			    int64_t v, const char *only);

/* Adds the counters of M, overall and per type, to SUM's. */
void store_stats_minute_add(struct jobd_stats_minute *sum,
			    const struct jobd_stats_minute *m);

/* The key prefix ("jobd"; a shard's, "jobd:{3/64}"). */
const char *jobd_store_prefix(const struct jobd_store *st);

/*
 * A store across SHARDS shards (2 to N_MAX_SHARDS), for conf's prefix
 * (without a hash tag): shard N on PREFIX:{N/SHARDS}, each on the
 * primary of its slot on a cluster (docs/scaling.md, "Shards"); the
 * deployment's own keys, which no transition touches, under shard 0's
 * prefix. What is built is in shards.c; nothing opens one but the
 * tests.
 */
struct jobd_store *store_shards_new(const struct jobd_conf *conf, int shards,
				    char *errstr, size_t errstr_size);

/* The calls of store.h on a store across shards (shards.c): each public
 * function hands such a store (st->nsh > 0) to its twin here. */
int jobd_store_sharded_create(struct jobd_store *st, const char *actor,
			      const struct jobd_spec *specs, size_t n,
			      struct jobd_created *out);
int jobd_store_sharded_get(struct jobd_store *st, int64_t id,
			   struct jobd_job **job, int64_t *now);
int jobd_store_sharded_report(struct jobd_store *st,
			      const struct jobd_report *r, size_t n,
			      enum jobd_result *results);
int jobd_store_sharded_finish(struct jobd_store *st,
			      const struct jobd_report *r, size_t n,
			      enum jobd_result *results);
int jobd_store_sharded_handback(struct jobd_store *st, const char *reason,
				const struct jobd_report *r, size_t n,
				enum jobd_result *results);
int jobd_store_sharded_heartbeat(struct jobd_store *st, const int64_t *ids,
				 const int64_t *attempts, size_t n,
				 int64_t lease_ms, enum jobd_result *results);
int jobd_store_sharded_op(struct jobd_store *st, enum jobd_op op,
			  const char *actor, const int64_t *ids, size_t n,
			  struct jobd_op_result *out);
int jobd_store_sharded_claim(struct jobd_store *st, const char *instance,
			     int max, int max_low, int64_t lease_ms,
			     struct jobd_claim **claims, size_t *n);
int jobd_store_sharded_children(struct jobd_store *st, int64_t id,
				int64_t cursor, size_t limit,
				struct jobd_job_list *out);
int jobd_store_sharded_logs(struct jobd_store *st, int64_t id,
			    const struct jobd_log_query *q,
			    struct jobd_log_result *out);
int jobd_store_sharded_why(struct jobd_store *st, int64_t id,
			   struct jobd_why *w);
int jobd_store_sharded_expire(struct jobd_store *st, size_t max, size_t *n);
int jobd_store_sharded_cascades_run(struct jobd_store *st, size_t max_calls,
				    size_t *left);
int jobd_store_sharded_counts(struct jobd_store *st,
			      int64_t counts[JOBD_STATUS_COUNT]);
int jobd_store_sharded_purge(struct jobd_store *st, int64_t cutoff_ms,
			     size_t max, size_t *deleted, bool *more);
int jobd_store_sharded_backfill(struct jobd_store *st, size_t max,
				size_t *indexed, size_t *converted,
				size_t *moved, bool *more);
int jobd_store_sharded_backfill_pending(struct jobd_store *st);
int jobd_store_sharded_key_window_write(struct jobd_store *st,
					int64_t *replaced);
int jobd_store_sharded_fsck(struct jobd_store *st, bool repair,
			    struct jobd_fsck *f);
int jobd_store_sharded_totals(struct jobd_store *st,
			      struct jobd_stats_minute *out);
int jobd_store_sharded_stats(struct jobd_store *st, int64_t since,
			     const char *type, struct jobd_stats *out);
int jobd_store_sharded_key_ids(struct jobd_store *st, int64_t parent,
			       const char *const *keys, size_t n, int64_t *ids);
int jobd_store_sharded_key_scan(struct jobd_store *st, int64_t parent,
				const char *glob, jobd_store_key_fn fn,
				void *arg);
int jobd_store_sharded_list(struct jobd_store *st, const struct jobd_filter *f,
			    struct jobd_job_list *out);
int store_sharded_subscribe(struct jobd_store *st);

/* --- shared by the files of the store (conn.c) ------------------------------ */

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
	S_BROKER_PUBLISH,
	S_BROKER_RELEASE,
	S_LEASE,
	S_PURGE,
	S_FSCK,
	S_FSCK_REFS,
	S_BACKFILL,
	S_LOGSCAN,
	S_WHY,
	S_SCHEDULE,
	S_LIMITS,
	S_LIMITS_SHOW,
	S_SORT,
	S_KEYS,
	S_KEY_WINDOW,
	S_HOLD,
	S_COUNT,
};

struct jobd_store {
	const struct jobd_conf *conf; /* borrowed */
	char *prefix;		      /* the keys': conf's, or a shard's */
	/* A store across shards (docs/scaling.md, "Shards"; shards.c):
	 * NSH stores of one shard each, on PREFIX:{N/NSH}; this one then
	 * keeps the deployment's own keys, under shard 0's prefix. 0 for
	 * a store of one shard. */
	struct jobd_store **sh;
	size_t nsh;
	size_t rr; /* the shard a root without a key goes to next */
	struct jobd_store *top;		/* a shard's: the store across shards */
	struct jobd_redis_address addr; /* conf's redis_address, parsed */
	struct store_tls *tls;		/* for rediss://, else NULL */
	struct store_link *c;		/* NULL while disconnected */
	struct store_link *sub;		/* subscribed to PREFIX:wake, or NULL */
	struct jobd_cluster *cl; /* the slot map when Redis is a cluster, else
				  * NULL: every link goes to the primary of
				  * SLOT */
	int slot;		 /* slot of the prefix's hash tag (cluster) */
	char owner[270];	 /* "host:port" of that primary, last asked */
	/* The node a MOVED named for the slot, and the one that said it:
	 * used when the map read next still names the latter (a node
	 * that had not heard of the move yet answered the map). */
	char moved_to[270], moved_from[270];
	bool create_wait;     /* creates WAIT for replicas (consumer) */
	int replicas;	      /* replicas of the primary, as last seen */
	int64_t replicas_at;  /* ms (monotonic) when seen; 0: never */
	bool no_info;	      /* INFO refused (ACL): no replica waited for */
	char fn[S_COUNT][64]; /* function names, "jobd_HASH_claim" */
	int timeout_ms;	      /* per-call socket timeout */
	bool module;	      /* Redis has this jobd's module */
	bool warned;	      /* ... in another version: said */
	bool warned_wake;     /* SSUBSCRIBE refused: said */
	char err[512];	      /* the last error */
	uint64_t conns;	      /* connections made: which one a call went on */
	/* jobd_store_create_send's calls whose replies are not read yet:
	 * NSENT of them, the oldest at SENT_HEAD of the ring */
	struct sent_create {
		size_t n;		      /* jobs sent (0: no call made) */
		size_t pos[JOBD_STORE_BATCH]; /* index of each in the specs */
		uint64_t conn;		      /* the connection it went on */
		int wait;		      /* replicas its WAIT asks, or 0 */
	} sent[JOBD_STORE_CREATES_SENT];
	size_t sent_head, nsent;
};

/*
 * Arguments of one script call: borrowed strings, or numbers formatted
 * into storage owned by the list.
 */
struct store_args {
	const char **v;
	size_t *len;
	char **owned;
	size_t n, cap;
};

/*
 * One argument written piece by piece: a module command's list. Made for
 * every batch of the hot path, so with no printf (a consumer's create of
 * 500 jobs would spend more on formatting than on decoding them).
 */
struct store_list {
	char *s;
	size_t n, cap;
};

/* Frees what A owns and empties it. */
void store_args_release(struct store_args *a);

/* Adds S (borrowed; NULL adds ""). */
void store_args_add(struct store_args *a, const char *s);

/* Appends A as one command to C's pipeline (store_link_append_argv) and
 * empties A for the next command, keeping its room. */
void store_args_pipe(struct store_link *c, struct store_args *a);

/* Adds a formatted argument, owned by A, and returns it (valid until A is
 * released or piped). */
const char *store_args_addf(struct store_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends N bytes at P. */
void store_list_put(struct store_list *l, const char *p, size_t n);

/* Appends C. */
void store_list_char(struct store_list *l, char c);

/* Writes decimal integer V. */
void store_list_int(struct store_list *l, long long v);

/* Writes S as "LEN:S" (JOBD.CREATE's fields, a checkpoint). */
void store_list_field(struct store_list *l, const char *s);

/* Adds list L to A, which owns it from now on. */
void store_list_add(struct store_list *l, struct store_args *a);

/* Sets the error jobd_store_errstr() returns. */
void store_set_err(struct jobd_store *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The address of the primary that owns the prefix's slot, from the slot
 * map read again (its "host:port" in st->owner); 0, or -1 with the error
 * set. On a cluster only. */
int store_owner_find(struct jobd_store *st, struct jobd_redis_address *at);

/* A new link to the node AT (called ADDR in errors), authenticated as
 * the store's own and answering PING; NULL with the error set. */
struct store_link *store_link_at(struct jobd_store *st,
				 const struct jobd_redis_address *at,
				 const char *addr);

/* Frees connection *C, if any, and sets it NULL. */
void store_drop(struct store_link **c);

/* The connection failed (the link says why): the error, and a reconnect
 * on the next call. */
void store_lost(struct jobd_store *st);

/*
 * How many replicas a create made now waits for (WAIT) before it counts
 * as done: 0 unless jobd_store_set_create_wait() asked for it, else
 * [redis] wait_replicas, at most the replicas connected to the primary
 * (INFO replication, asked again once a second when ASK is set: call it
 * so only with no reply on its way). -1 with the error set when Redis
 * is unreachable.
 */
int store_create_replicas(struct jobd_store *st, bool ask);

/*
 * Reads the reply of a create's WAIT for WANT replicas; 0, or
 * JOBD_STORE_ERR_REDIS with the error set when fewer had the create
 * within [redis] wait_timeout (the replica count is asked again next
 * time) or the connection was lost.
 */
int store_create_waited(struct jobd_store *st, redisReply *r, int want);

/* The Redis the store talks to, for messages: [redis] address, or on a
 * cluster the primary of the prefix's slot ("host:port"). Borrowed. */
const char *store_where(const struct jobd_store *st);

/*
 * On a cluster, whether R (borrowed) is a redirect (MOVED, ASK; for a
 * call without keys READONLY or a script's "non local key") or a
 * refusal for the moment (TRYAGAIN, CLUSTERDOWN): the command did not
 * run (but for a function refused a key during a migration, which may
 * have written before: docs/scaling.md). Then the error is set, the connection dropped (the next call
 * reads the slot map again and connects to the slot's primary) and true
 * returned; the caller retries or fails with JOBD_STORE_ERR_REDIS.
 */
bool store_redirected(struct jobd_store *st, const redisReply *r);

/* A new connection to [redis] address (through TLS for rediss://),
 * authenticated, with the call timeout; NULL with the error set. */
struct store_link *store_connect_to(struct jobd_store *st);

/* Connects if not connected (and checks for the module once a
 * connection); 0, or -1 with the error set. */
int store_ensure(struct jobd_store *st);

/*
 * Into A, the call with ARGS (borrowed): the module command CMD, or with
 * CMD NULL the Lua function of script ID; the key prefix first either way.
 */
void store_call_args(const struct jobd_store *st, const char *cmd,
		     enum script_id id, const struct store_args *args,
		     struct store_args *a);

/*
 * Runs the module command CMD with the arguments of script ID (ARGS, the
 * prefix prepended), when Redis has the module. Returns the reply (caller
 * frees), or NULL: with *fallback set when the Lua function must do the
 * work instead (no module, or it was unloaded or refused since), else
 * with st->err set (Redis unreachable, or refusing writes). A module
 * command that fails has written nothing.
 */
redisReply *store_module_call(struct jobd_store *st, const char *cmd,
			      struct store_args *args, bool *fallback);

/*
 * store_module_call() with, when WANT > 0, WAIT WANT [redis] wait_timeout
 * pipelined right behind the command: when the command's reply is
 * returned, WAIT's is in *WAITED (caller frees), else *WAITED is NULL.
 */
redisReply *store_module_call_wait(struct jobd_store *st, const char *cmd,
				   struct store_args *args, bool *fallback,
				   int want, redisReply **waited);

/*
 * Runs script ID with ARGS (the prefix is prepended here). Returns the
 * reply (caller frees) or NULL with st->err set; a script error is an
 * error too, never a reply.
 */
redisReply *store_eval(struct jobd_store *st, enum script_id id,
		       struct store_args *args);

/* store_eval() with WAIT behind it, as store_module_call_wait(). */
redisReply *store_eval_wait(struct jobd_store *st, enum script_id id,
			    struct store_args *args, int want,
			    redisReply **waited);

/*
 * An instance's published view of itself (store/kafka_view.c): JSON at
 * P:STEM INSTANCE with a TTL, INSTANCE in the set P:SET. store_views
 * reads the live ones and forgets the expired.
 */
int store_view_put(struct jobd_store *st, const char *stem, const char *set,
		   const char *instance, const char *json, int64_t ttl_ms);
int store_view_drop(struct jobd_store *st, const char *stem, const char *set,
		    const char *instance);
int store_views(struct jobd_store *st, const char *stem, const char *set,
		char ***views, size_t *n);

/* A copy of a string or status reply (caller frees), else NULL. */
char *store_dup_str(const redisReply *r);

/* An integer reply, or a string one read as a number; else 0. */
int64_t store_reply_i64(const redisReply *r);

/* A log level's name as the store writes it ("info" if out of range). */
const char *store_level_name(int level);

/* The level named S; info (1) for a name it does not know. */
int store_level_parse(const char *s);

#endif
