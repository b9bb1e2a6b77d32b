/*
 * store/cluster: a small Redis Cluster client on hiredis 0.14 (which has
 * none): the slot map, one connection per primary (a store_link: clear
 * or TLS), MOVED and ASK, and pipelining per node. For the store only;
 * the store decides which slot a call goes to (the hash tag of its keys)
 * and calls these.
 *
 *	struct jobd_cluster *cl = jobd_cluster_new("rediss://127.0.0.1:7000",
 *						   &opts, err, sizeof(err));
 *	r = jobd_cluster_command(cl, jobd_cluster_key_slot("{7}q", 4),
 *				 argc, argv, lens);
 *
 *	struct jobd_cluster_pipe *p = jobd_cluster_pipe_new(cl);
 *	jobd_cluster_pipe_append(p, slot, argc, argv, lens);	(many times)
 *	rc = jobd_cluster_pipe_exec(p);
 *	r = jobd_cluster_pipe_reply(p, i);	(in the order appended)
 */
#ifndef JOBD_STORE_CLUSTER_H
#define JOBD_STORE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#define JOBD_CLUSTER_SLOTS 16384
#define JOBD_CLUSTER_ERR_REDIS (-1)	/* unreachable or lost: retriable */
#define JOBD_CLUSTER_ERR_CROSSSLOT (-2) /* keys in several slots: a bug */
#define JOBD_CLUSTER_ERR_INVALID (-3)	/* a slot out of range: a bug */

struct store_tls;
struct jobd_redis_address;

struct jobd_cluster_opts {
	const char *user;     /* ACL user (with a password), or NULL; copied */
	const char *password; /* or NULL; copied */
	int timeout_ms;	      /* connect and per-call socket timeout; 0: 5000 */
	int max_redirects;    /* MOVED, ASK and retries per command; 0: 5 */
	struct store_tls *tls; /* for rediss:// seeds (store_tls_new), borrowed
				* until the cluster is freed; NULL in clear */
	bool map_only;	       /* read the map only: connect to no primary, and
			* accept slots without one (the store, which wants
			* the owner of one slot: jobd_cluster_slot_at) */
};

struct jobd_cluster;
struct jobd_cluster_pipe;

/* What a reply says about where its command runs (jobd_cluster_redirect). */
enum jobd_cluster_redirect {
	JOBD_CLUSTER_HERE,  /* not a redirect: the command's own reply */
	JOBD_CLUSTER_MOVED, /* "MOVED slot host:port": the slot moved */
	JOBD_CLUSTER_ASK,   /* "ASK slot host:port": this key is migrating */
	JOBD_CLUSTER_RETRY  /* TRYAGAIN or CLUSTERDOWN: a migration or a
			     * failover under way, nothing ran */
};

/* Whether R (borrowed; NULL is JOBD_CLUSTER_HERE) is an error reply that
 * sends its command elsewhere or later: the one test of the cluster
 * client and of the store's own links (conn.c). */
enum jobd_cluster_redirect jobd_cluster_redirect(const redisReply *r);

/*
 * The hash slot of KEY (LEN bytes) as Redis computes it: CRC16 (XMODEM)
 * mod 16384 of the hash tag, the bytes between the first '{' and the next
 * '}' when there are any, else of the whole key (also for "{}").
 */
int jobd_cluster_key_slot(const char *key, size_t len);

/*
 * Connects to the cluster of SEEDS ("host:port", "redis://host:port" or
 * "rediss://host:port", several separated by commas, all in clear or all
 * TLS; borrowed), reads its slot map (CLUSTER SHARDS, or CLUSTER SLOTS on
 * an older Redis) and connects to every primary. Every node, those of the
 * map and of redirects too, is reached as the seeds are: through TLS with
 * OPTS->tls for rediss://, each node's certificate verified against
 * [redis] tls_server_name, else the host the map names it by. With
 * OPTS->map_only it connects to the node that gave the map only. Returns
 * NULL with the reason in ERRSTR: a seed that is not host:port, no seed
 * answering, a Redis not in cluster mode, a primary unreachable or its
 * certificate refused (named host:port, with the TLS reason). Caller
 * frees with jobd_cluster_free().
 */
struct jobd_cluster *jobd_cluster_new(const char *seeds,
				      const struct jobd_cluster_opts *opts,
				      char *errstr, size_t errstr_size);

/* Closes every connection and frees CL; NULL is a no-op. */
void jobd_cluster_free(struct jobd_cluster *cl);

/* Sets the connect and per-call socket timeout (ms, > 0) of CL's
 * connections, those open and those made later. */
void jobd_cluster_set_timeout(struct jobd_cluster *cl, int ms);

/* The last error (borrowed, valid until the next call on CL). */
const char *jobd_cluster_errstr(const struct jobd_cluster *cl);

/* Reads the slot map again from any node that answers; 0 or
 * JOBD_CLUSTER_ERR_REDIS with the error set. */
int jobd_cluster_refresh(struct jobd_cluster *cl);

/* "host:port" of the primary that owns SLOT in the current map, or NULL;
 * borrowed until the next call on CL. */
const char *jobd_cluster_slot_node(const struct jobd_cluster *cl, int slot);

/* The address of the primary that owns SLOT in the current map,
 * reached as the seeds are (TLS or clear), or NULL; borrowed until the
 * next call on CL. */
const struct jobd_redis_address *
jobd_cluster_slot_at(const struct jobd_cluster *cl, int slot);

/* Number of primaries in the current map. */
int jobd_cluster_primaries(const struct jobd_cluster *cl);

/*
 * The first slot of primary I (0 to jobd_cluster_primaries() - 1, in
 * slot order), with its "host:port" in *ADDR (borrowed until the next
 * call on CL) when ADDR is not NULL; -1 when there is no such primary.
 * A command for that slot reaches that primary: for what every primary
 * needs (FUNCTION LOAD, checking for the module) or reads across them.
 */
int jobd_cluster_primary(const struct jobd_cluster *cl, int i,
			 const char **addr);

/*
 * Runs one command (ARGC arguments ARGV of LENS bytes; borrowed) on the
 * primary of SLOT (0 to 16383), following MOVED and ASK. Returns the
 * reply (caller frees with freeReplyObject; an error reply such as
 * WRONGTYPE is a reply) or NULL with jobd_cluster_errstr() set: the node
 * unreachable, the connection lost with the command sent (it may have
 * run), too many redirects, or CROSSSLOT (the message names the keys).
 */
redisReply *jobd_cluster_command(struct jobd_cluster *cl, int slot, int argc,
				 const char **argv, const size_t *lens);

/* An empty pipeline on CL (borrowed: CL outlives it); NULL if out of
 * memory. Free with jobd_cluster_pipe_free(). */
struct jobd_cluster_pipe *jobd_cluster_pipe_new(struct jobd_cluster *cl);

/* Frees P and the replies it holds; NULL is a no-op. */
void jobd_cluster_pipe_free(struct jobd_cluster_pipe *p);

/* Appends a command for SLOT; the arguments are copied. */
void jobd_cluster_pipe_append(struct jobd_cluster_pipe *p, int slot, int argc,
			      const char **argv, const size_t *lens);

/* Number of commands appended. */
size_t jobd_cluster_pipe_count(const struct jobd_cluster_pipe *p);

/*
 * Sends every command, grouped by primary (one write and one read per
 * node and round), follows each reply's MOVED or ASK and reads the
 * replies. Returns 0 when every command has a reply, else the error of
 * the first that has none (jobd_cluster_pipe_errstr says why for each).
 * Run it once per pipeline.
 */
int jobd_cluster_pipe_exec(struct jobd_cluster_pipe *p);

/* Command I's reply (borrowed until the pipeline is freed), or NULL. */
redisReply *jobd_cluster_pipe_reply(const struct jobd_cluster_pipe *p,
				    size_t i);

/* Command I's reply, now the caller's (frees with freeReplyObject). */
redisReply *jobd_cluster_pipe_take(struct jobd_cluster_pipe *p, size_t i);

/* Why command I has no reply ("" when it has one); borrowed. */
const char *jobd_cluster_pipe_errstr(const struct jobd_cluster_pipe *p,
				     size_t i);

#endif
