/*
 * store/cluster: the Redis Cluster client the store routes its calls
 * through (docs/scaling.md, "Cluster client").
 *
 * The client keeps a map of the 16384 slots to their primaries, read
 * from CLUSTER SHARDS (CLUSTER SLOTS on a Redis older than 7.0), and one
 * blocking connection per node it talked to: a store_link (link.c), the
 * store's own transport, so a cluster of rediss:// seeds is reached
 * through verified TLS on every node, with the TLS settings of one Redis.
 * A node the map or a redirect names is reached as the seeds are (the
 * map gives a TLS client the nodes' TLS ports). A command names its slot;
 * the caller computes it from the hash tag of its keys with
 * jobd_cluster_key_slot(), so a Lua function or module command whose
 * keys share a tag is routed without the client knowing its key specs.
 *
 * A pipeline runs in rounds: every command still without a reply goes to
 * the node the map (or an ASK) names, each node gets all of its commands
 * in one write, then the replies are read node by node and put back in
 * the order of the commands. A MOVED fixes that slot in the map and asks
 * for a full refresh after the round; an ASK sends that one command to
 * the importing node next round, prefixed with ASKING, and leaves the map
 * alone; TRYAGAIN and CLUSTERDOWN (a migration or a failover under way)
 * back off and retry. Every command has at most max_redirects extra
 * rounds.
 *
 * A node that cannot be reached costs a refresh and another round (its
 * replica may take over); nothing was sent, so the retry is safe. Before
 * writing, a connection whose peer has closed it (a node killed or
 * restarted since the last call) is replaced, for the same reason. A
 * connection lost after a command was written is not retried: the
 * command may have run, and only the caller knows whether running it
 * again is harmless (the store's calls are made to be retried by their
 * callers, as on one Redis).
 *
 * Rejected: hiredis-cluster or hiredis-vip (not packaged in Debian 12 and
 * they bring their own hiredis); parsing COMMAND key specs to find a
 * command's slot (the store knows its hash tags, and COMMAND GETKEYS is
 * only asked to explain a CROSSSLOT).
 */
#include "config.h"

#include "store/cluster.h"

#include "base/conf.h"
#include "store/link.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_REDIRECTS 5
#define BACKOFF_MS 100 /* ms times the round, before retrying a node */

struct node {
	struct jobd_redis_address at; /* host as the map or the seed list
				       * names it, port, TLS as the seeds */
	char addr[270];		      /* "host:port", for messages */
	struct store_link *l;	      /* NULL while disconnected */
	size_t nsent;		      /* commands written to it in this round */
	bool down;		      /* could not connect in this round */
	char err[512];		      /* ... why */
	bool asked;		      /* for the map in this refresh */
};

struct jobd_cluster {
	struct node **nodes;			/* every node seen; owned */
	size_t nnodes;				/* ... how many */
	struct node *slots[JOBD_CLUSTER_SLOTS]; /* primary of each slot */
	char *user;				/* ACL user, or NULL; owned */
	char *password;				/* or NULL; owned */
	bool tls;				/* rediss:// seeds */
	struct store_tls *tls_ctx;		/* for TLS; borrowed */
	int timeout_ms;				/* per call, and connect */
	int max_redirects;			/* extra rounds per command */
	bool map_only;				/* opts->map_only */
	char err[512];				/* the last error */
};

struct cmd {
	int slot;	   /* 0 to 16383 */
	int argc;	   /* arguments */
	char **argv;	   /* ARGC pointers into the same block; owned */
	size_t *lens;	   /* in that block too */
	redisReply *reply; /* the reply, once done; owned */
	struct node *to;   /* node of this round, or NULL */
	struct node *ask;  /* an ASK sends it there next round */
	/* A MOVED of this round: the node it named, and the one that said
	 * it (the map read after the round may be older than the MOVED) */
	struct node *moved, *moved_from;
	bool asking;	/* sent with ASKING before it this round */
	bool done;	/* has its reply or its final error */
	bool crossslot; /* refused with CROSSSLOT: err names keys */
	int rounds;	/* extra rounds taken */
	int rc;		/* 0, or JOBD_CLUSTER_ERR_* once done */
	char err[512];	/* why it has no reply, or "" */
};

struct jobd_cluster_pipe {
	struct jobd_cluster *cl; /* borrowed */
	struct cmd *cmds;	 /* in the order appended; owned */
	size_t n, cap;		 /* used, allocated */
	bool run;		 /* exec was called */
};

/* --- key slots ------------------------------------------------------------ */

/* CRC16-CCITT (XMODEM): polynomial 0x1021, initial 0, as Redis's crc16.c. */
static uint16_t crc16(const char *p, size_t n)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)((unsigned char)p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) :
					     (uint16_t)(crc << 1);
	}
	return crc;
}

int jobd_cluster_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);
	const char *close;

	if (open) {
		close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
		if (close && close > open + 1)
			return crc16(open + 1, (size_t)(close - open - 1)) &
			       (JOBD_CLUSTER_SLOTS - 1);
	}
	return crc16(key, len) & (JOBD_CLUSTER_SLOTS - 1);
}

/* --- nodes ---------------------------------------------------------------- */

static void set_err(struct jobd_cluster *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(struct jobd_cluster *cl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cl->err, sizeof(cl->err), fmt, ap);
	va_end(ap);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The node HOST (N bytes) : PORT, added to CL's list if new; NULL if out
 * of memory or the host is too long. */
static struct node *node_get(struct jobd_cluster *cl, const char *host,
			     size_t n, int port)
{
	struct node *node, **nodes;

	if (n >= sizeof(node->at.host))
		return NULL;
	for (size_t i = 0; i < cl->nnodes; i++) {
		node = cl->nodes[i];
		if (node->at.port == port && strlen(node->at.host) == n &&
		    memcmp(node->at.host, host, n) == 0)
			return node;
	}
	nodes = realloc(cl->nodes, (cl->nnodes + 1) * sizeof(*nodes));
	if (!nodes)
		return NULL;
	cl->nodes = nodes;
	node = calloc(1, sizeof(*node));
	if (!node)
		return NULL;
	memcpy(node->at.host, host, n);
	node->at.port = port;
	node->at.tls = cl->tls;
	snprintf(node->addr, sizeof(node->addr), "%s:%d", node->at.host, port);
	cl->nodes[cl->nnodes++] = node;
	return node;
}

/* "host:port" in S (N bytes) into the node; NULL when it is not one. */
static struct node *node_parse(struct jobd_cluster *cl, const char *s, size_t n)
{
	const char *colon = NULL;
	char *end;
	long port;
	char digits[8];

	for (size_t i = 0; i < n; i++)
		if (s[i] == ':')
			colon = s + i;
	if (!colon || colon == s ||
	    n - (size_t)(colon + 1 - s) >= sizeof(digits))
		return NULL;
	memcpy(digits, colon + 1, n - (size_t)(colon + 1 - s));
	digits[n - (size_t)(colon + 1 - s)] = '\0';
	port = strtol(digits, &end, 10);
	if (!digits[0] || *end || port < 1 || port > 65535)
		return NULL;
	return node_get(cl, s, (size_t)(colon - s), (int)port);
}

/* A hint after NODE's error: a clear client of a TLS port. */
static const char *tls_hint(const struct node *node)
{
	return node->l && !node->at.tls && store_link_looks_tls(node->l) ?
		       " (is it a TLS port? then write rediss://host:port)" :
		       "";
}

static void node_drop(struct node *node)
{
	store_link_free(node->l);
	node->l = NULL;
}

/*
 * A new connection to NODE, authenticated: the one place that connects.
 * 0, or JOBD_CLUSTER_ERR_REDIS with the error set naming the node and
 * why (the TLS reason with TLS).
 */
static int node_connect(struct jobd_cluster *cl, struct node *node)
{
	char err[512];
	redisReply *r;

	node_drop(node);
	node->l = store_link_open(&node->at, cl->tls_ctx, cl->timeout_ms, err,
				  sizeof(err));
	if (!node->l) {
		set_err(cl, "cannot connect to redis cluster node %s: %s",
			node->addr, err);
		return JOBD_CLUSTER_ERR_REDIS;
	}
	if (!cl->password)
		return 0;
	if (cl->user)
		r = store_link_command(node->l, "AUTH %s %s", cl->user,
				       cl->password);
	else
		r = store_link_command(node->l, "AUTH %s", cl->password);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		set_err(cl,
			"cannot authenticate to redis cluster node %s: %s%s",
			node->addr, r ? r->str : store_link_errstr(node->l),
			r ? "" : tls_hint(node));
		if (r)
			freeReplyObject(r);
		node_drop(node);
		return JOBD_CLUSTER_ERR_REDIS;
	}
	freeReplyObject(r);
	return 0;
}

/*
 * Whether NODE's connection is still open: a peer that closed it (a
 * killed node) has left an end of file to read. Checked before writing,
 * so a dead connection is replaced while nothing was sent on it.
 */
static bool node_alive(const struct node *node)
{
	return node->l && store_link_alive(node->l);
}

static int node_ensure(struct jobd_cluster *cl, struct node *node)
{
	return node_alive(node) ? 0 : node_connect(cl, node);
}

/* --- the slot map ----------------------------------------------------------- */

static bool is_str(const redisReply *r, const char *s)
{
	return r &&
	       (r->type == REDIS_REPLY_STRING ||
		r->type == REDIS_REPLY_STATUS) &&
	       strcmp(r->str, s) == 0;
}

/* The value of field NAME in a flat RESP2 map M, or NULL. */
static const redisReply *field(const redisReply *m, const char *name)
{
	if (!m || m->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < m->elements; i += 2)
		if (is_str(m->element[i], name))
			return m->element[i + 1];
	return NULL;
}

/* A node's address: HOST (the replying node's, FROM, when empty or "?",
 * as Redis writes an unknown endpoint) and PORT. */
static struct node *map_node(struct jobd_cluster *cl, const struct node *from,
			     const redisReply *host, long long port)
{
	const char *h = from->at.host;

	if (host && host->type == REDIS_REPLY_STRING && host->len > 0 &&
	    strcmp(host->str, "?") != 0)
		h = host->str;
	if (port < 1 || port > 65535)
		return NULL;
	return node_get(cl, h, strlen(h), (int)port);
}

static bool map_range(struct node **map, const redisReply *lo,
		      const redisReply *hi, struct node *node)
{
	if (!node || !lo || !hi || lo->type != REDIS_REPLY_INTEGER ||
	    hi->type != REDIS_REPLY_INTEGER || lo->integer < 0 ||
	    hi->integer >= JOBD_CLUSTER_SLOTS || lo->integer > hi->integer)
		return false;
	for (long long s = lo->integer; s <= hi->integer; s++)
		map[s] = node;
	return true;
}

/*
 * CLUSTER SHARDS (7.0): the primary of each shard that has slots, the
 * one that is online (a failed one stays listed until it is forgotten).
 * A TLS client takes the "tls-port" (a cluster with tls-cluster yes
 * gives it; "port" is then the clear one), a clear client "port". False
 * with *WHY set when a node has no port for us.
 */
static bool map_shards(struct jobd_cluster *cl, const struct node *from,
		       const redisReply *r, struct node **map, const char **why)
{
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *slots = field(r->element[i], "slots");
		const redisReply *nodes = field(r->element[i], "nodes");
		struct node *primary = NULL; /* none while failing over */

		if (!slots || !nodes || slots->type != REDIS_REPLY_ARRAY ||
		    nodes->type != REDIS_REPLY_ARRAY)
			return false;
		for (size_t j = 0; j < nodes->elements && !primary; j++) {
			const redisReply *n = nodes->element[j];
			const redisReply *port =
				field(n, cl->tls ? "tls-port" : "port");
			const redisReply *ep = field(n, "endpoint");

			if (!is_str(field(n, "role"), "master") ||
			    !is_str(field(n, "health"), "online"))
				continue;
			if (!port || port->type != REDIS_REPLY_INTEGER) {
				*why = cl->tls ?
					       "a primary has no TLS port (a "
					       "cluster for TLS clients needs "
					       "tls-cluster yes)" :
					       "a primary has no clear port "
					       "(a TLS-only cluster: write "
					       "rediss://)";
				return false;
			}
			if (ep && is_str(ep, "?"))
				ep = field(n, "ip");
			primary = map_node(cl, from, ep, port->integer);
		}
		for (size_t j = 0; primary && j + 1 < slots->elements; j += 2)
			if (!map_range(map, slots->element[j],
				       slots->element[j + 1], primary))
				return false;
	}
	return true;
}

/* CLUSTER SLOTS: [start, end, [host, port, id], replicas...] each. */
static bool map_slots(struct jobd_cluster *cl, const struct node *from,
		      const redisReply *r, struct node **map)
{
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const redisReply *p;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
			return false;
		p = e->element[2];
		if (p->type != REDIS_REPLY_ARRAY || p->elements < 2 ||
		    p->element[1]->type != REDIS_REPLY_INTEGER)
			return false;
		if (!map_range(map, e->element[0], e->element[1],
			       map_node(cl, from, p->element[0],
					p->element[1]->integer)))
			return false;
	}
	return true;
}

/* Reads the map from NODE into CL; 0 or an error naming the node. */
static int refresh_from(struct jobd_cluster *cl, struct node *node)
{
	struct node **map = calloc(JOBD_CLUSTER_SLOTS, sizeof(*map));
	redisReply *r;
	const char *why = "unexpected reply";
	bool ok;

	if (!map) {
		set_err(cl, "out of memory");
		return JOBD_CLUSTER_ERR_REDIS;
	}
	if (node_ensure(cl, node) < 0)
		goto err_free_map;
	r = store_link_command(node->l, "CLUSTER SHARDS");
	if (r && r->type == REDIS_REPLY_ERROR &&
	    strstr(r->str, "nknown subcommand")) {
		freeReplyObject(r);
		r = store_link_command(node->l, "CLUSTER SLOTS");
	}
	if (!r) {
		set_err(cl, "redis cluster node %s: %s%s", node->addr,
			store_link_errstr(node->l), tls_hint(node));
		node_drop(node);
		goto err_free_map;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		set_err(cl, "cannot read the slot map from %s: %s%s",
			node->addr,
			r->type == REDIS_REPLY_ERROR ? r->str : "not an array",
			r->type == REDIS_REPLY_ERROR &&
					strstr(r->str,
					       "cluster support disabled") ?
				" (not a cluster: set cluster-enabled yes)" :
				"");
		freeReplyObject(r);
		goto err_free_map;
	}
	ok = r->elements > 0 && (field(r->element[0], "slots") ?
					 map_shards(cl, node, r, map, &why) :
					 map_slots(cl, node, r, map));
	freeReplyObject(r);
	if (!ok) {
		set_err(cl, "cannot read the slot map from %s: %s", node->addr,
			why);
		goto err_free_map;
	}
	memcpy(cl->slots, map, sizeof(cl->slots));
	free(map);
	return 0;
err_free_map:
	free(map);
	return JOBD_CLUSTER_ERR_REDIS;
}

int jobd_cluster_refresh(struct jobd_cluster *cl)
{
	char first[sizeof(cl->err)] = "";

	for (size_t i = 0; i < cl->nnodes; i++)
		cl->nodes[i]->asked = false;
	/*
	 * Connected nodes first: a node known but gone (a primary that failed
	 * over, a seed that is down) costs a connect, maybe a timeout. Nodes
	 * appended during the loop (from a map) are tried too.
	 */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < cl->nnodes; i++) {
			struct node *node = cl->nodes[i];

			if (node->asked || (pass == 0 && !node->l))
				continue;
			node->asked = true;
			if (refresh_from(cl, node) == 0)
				return 0;
			if (!first[0])
				snprintf(first, sizeof(first), "%s", cl->err);
		}
	set_err(cl, "%s", first[0] ? first : "no redis cluster node known");
	return JOBD_CLUSTER_ERR_REDIS;
}

struct jobd_cluster *jobd_cluster_new(const char *seeds,
				      const struct jobd_cluster_opts *opts,
				      char *errstr, size_t errstr_size)
{
	struct jobd_cluster *cl = calloc(1, sizeof(*cl));
	const char *s = seeds, *comma;

	if (!cl) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	cl->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms :
							DEFAULT_TIMEOUT_MS;
	cl->max_redirects = opts && opts->max_redirects > 0 ?
				    opts->max_redirects :
				    DEFAULT_REDIRECTS;
	if (opts && opts->password) {
		cl->password = strdup(opts->password);
		cl->user = opts->user ? strdup(opts->user) : NULL;
	}
	cl->tls_ctx = opts ? opts->tls : NULL;
	cl->map_only = opts && opts->map_only;
	do {
		size_t n, skip = 0;
		bool tls = false;

		comma = strchr(s, ',');
		n = comma ? (size_t)(comma - s) : strlen(s);
		if (n >= 9 && strncmp(s, "rediss://", 9) == 0) {
			tls = true;
			skip = 9;
		} else if (n >= 8 && strncmp(s, "redis://", 8) == 0) {
			skip = 8;
		}
		if (s == seeds) {
			cl->tls = tls;
		} else if (tls != cl->tls) {
			snprintf(errstr, errstr_size,
				 "redis cluster seeds '%s' mix TLS and clear: "
				 "write rediss:// on every seed or on none",
				 seeds);
			goto err_free;
		}
		if (!node_parse(cl, s + skip, n - skip)) {
			snprintf(errstr, errstr_size,
				 "bad redis cluster seed '%.*s' in '%s': "
				 "want host:port, redis://host:port or "
				 "rediss://host:port",
				 (int)n, s, seeds);
			goto err_free;
		}
		s = comma + 1;
	} while (comma);
	if (cl->tls && !cl->tls_ctx) {
		snprintf(errstr, errstr_size,
			 "redis cluster seeds '%s' are rediss:// but no TLS "
			 "settings were given",
			 seeds);
		goto err_free;
	}
	if (jobd_cluster_refresh(cl) < 0)
		goto err_copy;
	for (int slot = 0; slot < JOBD_CLUSTER_SLOTS && !cl->map_only; slot++) {
		struct node *node = cl->slots[slot];

		if (!node) {
			set_err(cl,
				"redis cluster has no primary for slot %d "
				"(is every slot assigned?)",
				slot);
			goto err_copy;
		}
		if (!node->l && node_connect(cl, node) < 0)
			goto err_copy;
	}
	return cl;
err_copy:
	snprintf(errstr, errstr_size, "%s", cl->err);
err_free:
	jobd_cluster_free(cl);
	return NULL;
}

void jobd_cluster_free(struct jobd_cluster *cl)
{
	if (!cl)
		return;
	for (size_t i = 0; i < cl->nnodes; i++) {
		node_drop(cl->nodes[i]);
		free(cl->nodes[i]);
	}
	free(cl->nodes);
	free(cl->user);
	free(cl->password);
	free(cl);
}

void jobd_cluster_set_timeout(struct jobd_cluster *cl, int ms)
{
	cl->timeout_ms = ms;
	for (size_t i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i]->l)
			store_link_set_timeout(cl->nodes[i]->l, ms);
}

const char *jobd_cluster_errstr(const struct jobd_cluster *cl)
{
	return cl->err;
}

const char *jobd_cluster_slot_node(const struct jobd_cluster *cl, int slot)
{
	if (slot < 0 || slot >= JOBD_CLUSTER_SLOTS || !cl->slots[slot])
		return NULL;
	return cl->slots[slot]->addr;
}

const struct jobd_redis_address *
jobd_cluster_slot_at(const struct jobd_cluster *cl, int slot)
{
	if (slot < 0 || slot >= JOBD_CLUSTER_SLOTS || !cl->slots[slot])
		return NULL;
	return &cl->slots[slot]->at;
}

/* Slot S is the first of its primary's. */
static bool first_slot(const struct jobd_cluster *cl, int s)
{
	for (int t = 0; t < s; t++)
		if (cl->slots[t] == cl->slots[s])
			return false;
	return cl->slots[s] != NULL;
}

int jobd_cluster_primary(const struct jobd_cluster *cl, int i,
			 const char **addr)
{
	for (int s = 0; s < JOBD_CLUSTER_SLOTS; s++)
		if (cl->slots[s] &&
		    (s == 0 || cl->slots[s] != cl->slots[s - 1]) &&
		    first_slot(cl, s) && i-- == 0) {
			if (addr)
				*addr = cl->slots[s]->addr;
			return s;
		}
	return -1;
}

int jobd_cluster_primaries(const struct jobd_cluster *cl)
{
	int n = 0;

	while (jobd_cluster_primary(cl, n, NULL) >= 0)
		n++;
	return n;
}

/* --- pipelines -------------------------------------------------------------- */

struct jobd_cluster_pipe *jobd_cluster_pipe_new(struct jobd_cluster *cl)
{
	struct jobd_cluster_pipe *p = calloc(1, sizeof(*p));

	if (p)
		p->cl = cl;
	return p;
}

void jobd_cluster_pipe_free(struct jobd_cluster_pipe *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		if (p->cmds[i].reply)
			freeReplyObject(p->cmds[i].reply);
		free(p->cmds[i].argv);
	}
	free(p->cmds);
	free(p);
}

void jobd_cluster_pipe_append(struct jobd_cluster_pipe *p, int slot, int argc,
			      const char **argv, const size_t *lens)
{
	struct cmd *cmd;
	size_t size = (size_t)argc * (sizeof(char *) + sizeof(size_t));
	char *data;

	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->cmds = realloc(p->cmds, p->cap * sizeof(*p->cmds));
		if (!p->cmds)
			abort(); /* out of memory: nothing sensible to do */
	}
	cmd = &p->cmds[p->n++];
	memset(cmd, 0, sizeof(*cmd));
	for (int i = 0; i < argc; i++)
		size += lens[i];
	/* One block: the pointers, the lengths, then the bytes. */
	cmd->argv = malloc(size ? size : 1);
	if (!cmd->argv)
		abort();
	cmd->lens = (size_t *)(cmd->argv + argc);
	data = (char *)(cmd->lens + argc);
	for (int i = 0; i < argc; i++) {
		memcpy(data, argv[i], lens[i]);
		cmd->argv[i] = data;
		cmd->lens[i] = lens[i];
		data += lens[i];
	}
	cmd->argc = argc;
	cmd->slot = slot;
	if (slot < 0 || slot >= JOBD_CLUSTER_SLOTS) {
		cmd->done = true;
		cmd->rc = JOBD_CLUSTER_ERR_INVALID;
		snprintf(cmd->err, sizeof(cmd->err),
			 "bad slot %d for a redis cluster command", slot);
	}
}

size_t jobd_cluster_pipe_count(const struct jobd_cluster_pipe *p)
{
	return p->n;
}

static void cmd_fail(struct cmd *cmd, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cmd_fail(struct cmd *cmd, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd->err, sizeof(cmd->err), fmt, ap);
	va_end(ap);
	cmd->rc = rc;
	cmd->done = true;
}

/*
 * CMD was refused with CROSSSLOT by NODE: name its keys (COMMAND GETKEYS)
 * and their slots in CMD's error.
 */
static void explain_crossslot(struct node *node, struct cmd *cmd)
{
	const char **argv = malloc((size_t)(cmd->argc + 2) * sizeof(*argv));
	size_t *lens = malloc((size_t)(cmd->argc + 2) * sizeof(*lens));
	redisReply *r = NULL;
	int n;

	n = snprintf(cmd->err, sizeof(cmd->err),
		     "redis cluster node %s refused '%.*s' (CROSSSLOT): keys",
		     node->addr, (int)(cmd->lens[0] < 32 ? cmd->lens[0] : 32),
		     cmd->argv[0]);
	if (argv && lens && node_alive(node)) {
		argv[0] = "COMMAND";
		lens[0] = 7;
		argv[1] = "GETKEYS";
		lens[1] = 7;
		for (int i = 0; i < cmd->argc; i++) {
			argv[i + 2] = cmd->argv[i];
			lens[i + 2] = cmd->lens[i];
		}
		r = store_link_command_argv(node->l, cmd->argc + 2, argv, lens);
	}
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY &&
			   i < r->elements && n < (int)sizeof(cmd->err);
	     i++) {
		const redisReply *k = r->element[i];

		n += snprintf(cmd->err + n, sizeof(cmd->err) - (size_t)n,
			      "%s '%.*s' (slot %d)", i ? "," : "",
			      (int)(k->len < 64 ? k->len : 64), k->str,
			      jobd_cluster_key_slot(k->str, k->len));
	}
	if (n < (int)sizeof(cmd->err))
		snprintf(cmd->err + n, sizeof(cmd->err) - (size_t)n,
			 "%s are in different slots: give them one hash tag",
			 r && r->type == REDIS_REPLY_ARRAY ? "" : " (unknown)");
	if (r)
		freeReplyObject(r);
	free(argv);
	free(lens);
}

enum jobd_cluster_redirect jobd_cluster_redirect(const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ERROR)
		return JOBD_CLUSTER_HERE;
	if (strncmp(r->str, "MOVED ", 6) == 0)
		return JOBD_CLUSTER_MOVED;
	if (strncmp(r->str, "ASK ", 4) == 0)
		return JOBD_CLUSTER_ASK;
	if (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
	    strncmp(r->str, "CLUSTERDOWN", 11) == 0)
		return JOBD_CLUSTER_RETRY;
	return JOBD_CLUSTER_HERE;
}

/*
 * A reply R to CMD from NODE: keeps it, or reads a redirect or a retry
 * from it (and frees it). Sets *REFRESH when the map is stale, *BACKOFF
 * when the cluster asks to wait.
 */
static void take_reply(struct jobd_cluster *cl, struct node *node,
		       struct cmd *cmd, redisReply *r, bool *refresh,
		       bool *backoff)
{
	enum jobd_cluster_redirect kind = jobd_cluster_redirect(r);
	bool moved = kind == JOBD_CLUSTER_MOVED;
	const char *addr;
	struct node *to;
	long slot;

	if (moved || kind == JOBD_CLUSTER_ASK) {
		/* "MOVED 3999 127.0.0.1:6381"; the host may be empty, then
		 * it is NODE's. */
		slot = strtol(r->str + (moved ? 6 : 4), NULL, 10);
		addr = strchr(r->str + (moved ? 6 : 4), ' ');
		to = NULL;
		if (addr && strrchr(addr, ':') == addr + 1) {
			char full[sizeof(node->addr)];

			snprintf(full, sizeof(full), "%s%s", node->at.host,
				 addr + 1);
			to = node_parse(cl, full, strlen(full));
		} else if (addr) {
			to = node_parse(cl, addr + 1, strlen(addr + 1));
		}
		if (!to || slot < 0 || slot >= JOBD_CLUSTER_SLOTS) {
			cmd_fail(cmd, JOBD_CLUSTER_ERR_REDIS,
				 "bad redirect from redis cluster node %s: %s",
				 node->addr, r->str);
		} else if (moved) {
			cl->slots[slot] = to;
			cmd->moved = to;
			cmd->moved_from = node;
			*refresh = true;
			snprintf(cmd->err, sizeof(cmd->err), "%s (from %s)",
				 r->str, node->addr);
		} else {
			cmd->ask = to;
			snprintf(cmd->err, sizeof(cmd->err), "%s (from %s)",
				 r->str, node->addr);
		}
		freeReplyObject(r);
		return;
	}
	if (kind == JOBD_CLUSTER_RETRY) {
		snprintf(cmd->err, sizeof(cmd->err), "%s (from %s)", r->str,
			 node->addr);
		*backoff = *refresh = true;
		freeReplyObject(r);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "CROSSSLOT", 9) == 0) {
		cmd->crossslot = true;
		cmd_fail(cmd, JOBD_CLUSTER_ERR_CROSSSLOT, "%s", r->str);
		freeReplyObject(r);
		return;
	}
	cmd->reply = r;
	cmd->err[0] = '\0';
	cmd->done = true;
}

/* Reads NODE's replies, in the order its commands were written. */
static void read_node(struct jobd_cluster *cl, struct jobd_cluster_pipe *p,
		      struct node *node, bool *refresh, bool *backoff)
{
	bool lost = false;
	redisReply *v;

	for (size_t i = 0; i < p->n; i++) {
		struct cmd *cmd = &p->cmds[i];

		if (cmd->to != node)
			continue;
		cmd->to = NULL;
		if (!lost && cmd->asking) {
			/* ASKING's +OK */
			lost = store_link_reply(node->l, &v) < 0;
			if (!lost)
				freeReplyObject(v);
		}
		if (!lost && store_link_reply(node->l, &v) == 0) {
			take_reply(cl, node, cmd, v, refresh, backoff);
			continue;
		}
		if (!lost) {
			set_err(cl,
				"connection to redis cluster node %s lost: %s%s",
				node->addr, store_link_errstr(node->l),
				tls_hint(node));
			lost = true;
		}
		cmd_fail(cmd, JOBD_CLUSTER_ERR_REDIS,
			 "%s (the command was sent and may have run)", cl->err);
	}
	if (lost) {
		node_drop(node);
		*refresh = true;
	}
}

/* One round: sends every command without a reply and reads the replies. */
static void round_run(struct jobd_cluster *cl, struct jobd_cluster_pipe *p,
		      bool *refresh, bool *backoff)
{
	for (size_t i = 0; i < cl->nnodes; i++) {
		cl->nodes[i]->nsent = 0;
		cl->nodes[i]->down = false;
	}
	for (size_t i = 0; i < p->n; i++) {
		struct cmd *cmd = &p->cmds[i];
		struct node *node = cmd->ask ? cmd->ask : cl->slots[cmd->slot];

		cmd->to = NULL;
		cmd->asking = cmd->ask != NULL;
		cmd->ask = NULL;
		if (cmd->done)
			continue;
		if (!node) {
			snprintf(cmd->err, sizeof(cmd->err),
				 "no redis cluster primary for slot %d",
				 cmd->slot);
			*refresh = *backoff = true;
			continue;
		}
		/* The first command for a node checks its connection. */
		if (!node->down && node->nsent == 0 &&
		    node_ensure(cl, node) < 0) {
			node->down = true;
			snprintf(node->err, sizeof(node->err), "%s", cl->err);
			*refresh = *backoff = true;
		}
		if (node->down) {
			snprintf(cmd->err, sizeof(cmd->err), "%s", node->err);
			continue;
		}
		if (cmd->asking)
			store_link_append(node->l, "ASKING");
		store_link_append_argv(node->l, cmd->argc,
				       (const char **)cmd->argv, cmd->lens);
		cmd->to = node;
		node->nsent++;
	}
	/* All writes first, so that the nodes work in parallel. */
	for (size_t i = 0; i < cl->nnodes; i++) {
		struct node *node = cl->nodes[i];

		if (node->nsent && store_link_flush(node->l) < 0)
			set_err(cl,
				"connection to redis cluster node %s lost: %s",
				node->addr, store_link_errstr(node->l));
	}
	for (size_t i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i]->nsent)
			read_node(cl, p, cl->nodes[i], refresh, backoff);
}

int jobd_cluster_pipe_exec(struct jobd_cluster_pipe *p)
{
	struct jobd_cluster *cl = p->cl;
	int rc = 0;

	if (p->run) {
		set_err(cl, "a redis cluster pipeline runs once");
		return JOBD_CLUSTER_ERR_REDIS;
	}
	p->run = true;
	for (int round = 0;; round++) {
		bool refresh = false, backoff = false, pending = false;

		round_run(cl, p, &refresh, &backoff);
		for (size_t i = 0; i < p->n; i++) {
			struct cmd *cmd = &p->cmds[i];

			if (cmd->crossslot) {
				explain_crossslot(cl->slots[cmd->slot] ?
							  cl->slots[cmd->slot] :
							  cl->nodes[0],
						  cmd);
				cmd->crossslot = false;
			}
			if (cmd->done)
				continue;
			if (++cmd->rounds > cl->max_redirects) {
				char last[sizeof(cmd->err)];

				snprintf(last, sizeof(last), "%s", cmd->err);
				cmd_fail(cmd, JOBD_CLUSTER_ERR_REDIS,
					 "no reply from redis cluster after %d "
					 "redirects or retries; last: %.400s",
					 cl->max_redirects, last);
				continue;
			}
			pending = true;
		}
		if (!pending)
			break;
		if (backoff)
			sleep_ms(BACKOFF_MS * (round + 1));
		if (refresh)
			jobd_cluster_refresh(cl);
		/* A map read from a node that has not heard of a move yet (a
		 * replica, a primary the gossip reaches later) names the node
		 * that has just answered MOVED: the MOVED is newer. */
		for (size_t i = 0; i < p->n; i++) {
			struct cmd *cmd = &p->cmds[i];

			if (cmd->moved &&
			    cl->slots[cmd->slot] == cmd->moved_from)
				cl->slots[cmd->slot] = cmd->moved;
			cmd->moved = cmd->moved_from = NULL;
		}
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->cmds[i].rc < 0) {
			set_err(cl, "%s", p->cmds[i].err);
			rc = p->cmds[i].rc;
			break;
		}
	return rc;
}

redisReply *jobd_cluster_pipe_reply(const struct jobd_cluster_pipe *p, size_t i)
{
	return i < p->n ? p->cmds[i].reply : NULL;
}

redisReply *jobd_cluster_pipe_take(struct jobd_cluster_pipe *p, size_t i)
{
	redisReply *r = jobd_cluster_pipe_reply(p, i);

	if (r)
		p->cmds[i].reply = NULL;
	return r;
}

const char *jobd_cluster_pipe_errstr(const struct jobd_cluster_pipe *p,
				     size_t i)
{
	return i < p->n ? p->cmds[i].err : "";
}

redisReply *jobd_cluster_command(struct jobd_cluster *cl, int slot, int argc,
				 const char **argv, const size_t *lens)
{
	struct jobd_cluster_pipe *p = jobd_cluster_pipe_new(cl);
	redisReply *r;

	if (!p) {
		set_err(cl, "out of memory");
		return NULL;
	}
	jobd_cluster_pipe_append(p, slot, argc, argv, lens);
	jobd_cluster_pipe_exec(p);
	r = jobd_cluster_pipe_take(p, 0);
	jobd_cluster_pipe_free(p);
	return r;
}
