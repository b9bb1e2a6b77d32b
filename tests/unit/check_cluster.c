/*
 * check_cluster: the Redis Cluster client (src/store/cluster.c) against a
 * real cluster of 3 primaries with a replica each.
 *
 * tests/unit/check_cluster.sh starts the cluster with scripts/redis
 * cluster-start, exports its seed address and directory, runs this
 * program and stops the cluster. The tests change the cluster (a slot
 * moved, a migration, a primary killed), so each finds the owners it
 * needs at run time, and the failover runs last.
 *
 * tests/unit/check_cluster_tls.sh runs the same suite against a cluster
 * of cluster-start --tls: its seed is rediss://, its nodes have a TLS
 * port only and want a client certificate (DIR/tls), so every call of
 * the client and of these tests goes through TLS; the refusals of a TLS
 * cluster are added.
 */
#include "config.h"

#include "store/cluster.h"

#include "base/conf.h"
#include "store/link.h"
#include "store/store.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#define FAILOVER_MS 20000 /* ms a replica may take to be promoted */

static const char *seed;	  /* $JOBD_TEST_CLUSTER: [rediss://]host:port */
static const char *dir;		  /* $JOBD_TEST_CLUSTER_DIR: scripts/redis's */
static const char *clear_seed;	  /* $JOBD_TEST_CLUSTER_CLEAR: host:port of
				* node1's clear port, when it has one */
static bool tls;		  /* SEED is rediss:// */
static char tls_path[4][512];	  /* DIR/tls/ca.pem, client.pem, client.key,
				 * other.pem */
static struct jobd_conf tls_conf; /* [redis] tls_* of the cluster's CA */
static struct store_tls *tls_ctx; /* from TLS_CONF, for TLS; else NULL */

static struct jobd_cluster *cluster_open(void)
{
	struct jobd_cluster_opts opts = { .tls = tls_ctx };
	char err[512];
	struct jobd_cluster *cl =
		jobd_cluster_new(seed, &opts, err, sizeof(err));

	ck_assert_msg(cl != NULL, "cluster: %s", err);
	return cl;
}

/* The seed's "host:port", without the scheme. */
static const char *seed_addr(void)
{
	return strncmp(seed, "rediss://", 9) == 0 ? seed + 9 : seed;
}

/* "host:port" with the scheme of the cluster, into BUF. */
static const char *with_scheme(const char *addr, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", tls ? "rediss://" : "", addr);
	return buf;
}

/* A connection to the node at ADDR (host:port), as the cluster's seed:
 * NULL with ERR set when it cannot be made. */
static struct store_link *node_link(const char *addr, char *err,
				    size_t err_size)
{
	struct jobd_redis_address a;
	char full[300];

	ck_assert_int_eq(
		jobd_conf_redis_address(with_scheme(addr, full, sizeof(full)),
					&a, err, err_size),
		0);
	return store_link_open(&a, tls_ctx, 5000, err, err_size);
}

/* A command on the node at ADDR alone (no redirects), through TLS for a
 * TLS cluster; fails the test when the node does not answer. Caller
 * frees the reply. */
static redisReply *node_cmd(const char *addr, const char *fmt, ...)
{
	char err[512];
	struct store_link *l = node_link(addr, err, sizeof(err));
	redisReply *r;
	va_list ap;

	ck_assert_msg(l != NULL, "cannot connect to %s: %s", addr, err);
	va_start(ap, fmt);
	r = store_link_vcommand(l, fmt, ap);
	va_end(ap);
	ck_assert_msg(r != NULL, "%s: %s", addr, store_link_errstr(l));
	store_link_free(l);
	return r;
}

/* The node id of the node at ADDR, into ID (41 bytes). */
static void node_id(const char *addr, char *id)
{
	redisReply *r = node_cmd(addr, "CLUSTER MYID");

	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	snprintf(id, 41, "%s", r->str);
	freeReplyObject(r);
}

/* Another primary than ADDR in CL's map, into OTHER. */
static void other_primary(struct jobd_cluster *cl, const char *addr,
			  char *other, size_t size)
{
	for (int s = 0; s < JOBD_CLUSTER_SLOTS; s++) {
		const char *a = jobd_cluster_slot_node(cl, s);

		if (a && strcmp(a, addr) != 0) {
			snprintf(other, size, "%s", a);
			return;
		}
	}
	ck_abort_msg("no primary but %s", addr);
}

static redisReply *cmd(struct jobd_cluster *cl, const char *key, int argc,
		       const char **argv)
{
	size_t lens[8];

	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return jobd_cluster_command(cl, jobd_cluster_key_slot(key, strlen(key)),
				    argc, argv, lens);
}

static void set(struct jobd_cluster *cl, const char *key, const char *value)
{
	const char *argv[] = { "SET", key, value };
	redisReply *r = cmd(cl, key, 3, argv);

	ck_assert_msg(r != NULL, "SET %s: %s", key, jobd_cluster_errstr(cl));
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
}

/* GET KEY through CL equals WANT. */
static void get_is(struct jobd_cluster *cl, const char *key, const char *want)
{
	const char *argv[] = { "GET", key };
	redisReply *r = cmd(cl, key, 2, argv);

	ck_assert_msg(r != NULL, "GET %s: %s", key, jobd_cluster_errstr(cl));
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_str_eq(r->str, want);
	freeReplyObject(r);
}

static int slot_of(const char *key)
{
	return jobd_cluster_key_slot(key, strlen(key));
}

/* The slot Redis itself computes for KEY. */
static long long server_slot(const char *key)
{
	redisReply *r = node_cmd(seed_addr(), "CLUSTER KEYSLOT %s", key);
	long long slot = r->integer;

	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	freeReplyObject(r);
	return slot;
}

START_TEST(test_cluster_key_slot_follows_redis)
{
	static const char *const keys[] = {
		"foo",
		"{user1000}.following",
		"{user1000}.followers",
		"foo{}{bar}",
		"foo{{bar}}zap",
		"{bar",
		"{}",
		"a{b}c{d}",
		"jobd:{17}:job:42",
		"",
	};

	ck_assert_int_eq(slot_of("foo"), 12182);
	ck_assert_int_eq(slot_of("123456789"), 0x31C3 & 16383);
	ck_assert_int_eq(slot_of("{user1000}.following"),
			 slot_of("{user1000}.followers"));
	ck_assert_int_eq(slot_of("{user1000}.following"), slot_of("user1000"));
	ck_assert_int_eq(slot_of("foo{}{bar}"),
			 jobd_cluster_key_slot("foo{}{bar}", 10));
	ck_assert_int_ne(slot_of("foo{}{bar}"), slot_of("bar"));
	ck_assert_int_eq(slot_of("foo{{bar}}zap"), slot_of("{bar"));
	/* Binary keys: the length counts, not a NUL. */
	ck_assert_int_ne(jobd_cluster_key_slot("a\0b", 3), slot_of("a"));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i][0])
			ck_assert_int_eq(slot_of(keys[i]),
					 server_slot(keys[i]));
}
END_TEST

START_TEST(test_cluster_command_reaches_the_owner)
{
	struct jobd_cluster *cl = cluster_open();
	static const char *const keys[] = { "a", "b", "c", "d", "e", "f" };

	ck_assert_int_eq(jobd_cluster_primaries(cl), 3);
	ck_assert_int_eq(jobd_cluster_primary(cl, 3, NULL), -1);
	/* Each primary by its first slot: they answer with their own ids. */
	for (int i = 0; i < 3; i++) {
		const char *addr, *argv[] = { "CLUSTER", "MYID" };
		size_t lens[] = { 7, 4 };
		int slot = jobd_cluster_primary(cl, i, &addr);
		char id[41];
		redisReply *r;

		ck_assert_int_ge(slot, 0);
		ck_assert_str_eq(jobd_cluster_slot_node(cl, slot), addr);
		node_id(addr, id);
		r = jobd_cluster_command(cl, slot, 2, argv, lens);
		ck_assert_ptr_nonnull(r);
		ck_assert_str_eq(r->str, id);
		freeReplyObject(r);
		/* A TLS cluster has no clear port: every call was TLS. */
		r = node_cmd(addr, "CONFIG GET port");
		ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
		ck_assert_uint_eq(r->elements, 2);
		if (tls)
			ck_assert_str_eq(r->element[1]->str, "0");
		else
			ck_assert_str_eq(r->element[1]->str,
					 strrchr(addr, ':') + 1);
		freeReplyObject(r);
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int slot = slot_of(keys[i]);
		const char *owner = jobd_cluster_slot_node(cl, slot);
		redisReply *r;

		ck_assert_ptr_nonnull(owner);
		set(cl, keys[i], keys[i]);
		/* The owner has it and answers itself, no MOVED. */
		r = node_cmd(owner, "GET %s", keys[i]);
		ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
		ck_assert_str_eq(r->str, keys[i]);
		freeReplyObject(r);
	}
	jobd_cluster_free(cl);
}
END_TEST

/* INFO stats' total_connections_received of the node at ADDR (this
 * call's own connection included). */
static long connections_received(const char *addr)
{
	redisReply *r = node_cmd(addr, "INFO stats");
	const char *s = strstr(r->str, "total_connections_received:");
	long n;

	ck_assert_ptr_nonnull(s);
	n = atol(s + strlen("total_connections_received:"));
	freeReplyObject(r);
	return n;
}

START_TEST(test_cluster_keeps_its_connections)
{
	struct jobd_cluster *cl = cluster_open();
	const char *addr;
	int slot = -1;
	char owner[64];
	long before;

	/* A primary that is not the seed: its connection, made last by
	 * jobd_cluster_new, has carried nothing yet. */
	for (int i = 0; i < 3 && slot < 0; i++) {
		slot = jobd_cluster_primary(cl, i, &addr);
		if (strcmp(addr, seed_addr()) == 0)
			slot = -1;
	}
	ck_assert_int_ge(slot, 0);
	snprintf(owner, sizeof(owner), "%s", addr);
	before = connections_received(owner);
	/* Each call checks the idle connection first (over TLS, reading the
	 * session tickets that came after the handshake) and keeps it. */
	for (int i = 0; i < 20; i++) {
		const char *argv[] = { "PING" };
		size_t lens[] = { 4 };
		redisReply *r = jobd_cluster_command(cl, slot, 1, argv, lens);

		ck_assert_msg(r != NULL, "%s", jobd_cluster_errstr(cl));
		ck_assert_str_eq(r->str, "PONG");
		freeReplyObject(r);
		if (i == 9)
			jobd_test_sleep_ms(200);
	}
	/* One more: the connection that asks. */
	ck_assert_int_eq(connections_received(owner), before + 1);
	jobd_cluster_free(cl);
}
END_TEST

START_TEST(test_cluster_pipeline_spans_primaries_in_order)
{
	struct jobd_cluster *cl = cluster_open();
	struct jobd_cluster_pipe *p = jobd_cluster_pipe_new(cl);
	const char *owners[3] = { NULL };
	int nowners = 0;
	enum { N = 300 };
	char key[N][32], val[N][32];

	for (int i = 0; i < N; i++) {
		const char *argv[3] = { "SET", key[i], val[i] };
		size_t lens[3] = { 3 };

		snprintf(key[i], sizeof(key[i]), "pipe:%d", i);
		snprintf(val[i], sizeof(val[i]), "v%d", i * 7);
		lens[1] = strlen(key[i]);
		lens[2] = strlen(val[i]);
		jobd_cluster_pipe_append(p, slot_of(key[i]), 3, argv, lens);
		argv[0] = "GET";
		lens[0] = 3;
		jobd_cluster_pipe_append(p, slot_of(key[i]), 2, argv, lens);
	}
	ck_assert_uint_eq(jobd_cluster_pipe_count(p), 2 * N);
	for (int i = 0; i < N; i++) {
		const char *o = jobd_cluster_slot_node(cl, slot_of(key[i]));
		int j;

		for (j = 0; j < nowners && strcmp(owners[j], o) != 0; j++)
			;
		if (j == nowners)
			owners[nowners++] = o;
	}
	ck_assert_int_eq(nowners, 3);
	ck_assert_int_eq(jobd_cluster_pipe_exec(p), 0);
	for (int i = 0; i < N; i++) {
		redisReply *r = jobd_cluster_pipe_reply(p, 2 * (size_t)i + 1);

		ck_assert_ptr_nonnull(
			jobd_cluster_pipe_reply(p, 2 * (size_t)i));
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
		ck_assert_str_eq(r->str, val[i]);
		ck_assert_str_eq(jobd_cluster_pipe_errstr(p, 2 * (size_t)i + 1),
				 "");
	}
	jobd_cluster_pipe_free(p);
	jobd_cluster_free(cl);
}
END_TEST

/* Gives SLOT (empty) to the primary at TO, on every primary of CL. */
/*
 * Waits (10 s at most) until every node of the cluster (DIR/nodes,
 * replicas too) names TO ("host:port") the owner of SLOT in its CLUSTER
 * SLOTS: a node the gossip has not reached yet would answer a map read
 * with the old owner, which the cases after a move do not test.
 */
static void settled(int slot, const char *to)
{
	char path[600], addr[300];

	snprintf(path, sizeof(path), "%s/nodes", dir);
	for (int tries = 0; tries < 200; tries++) {
		FILE *f = fopen(path, "r");
		bool all = true;

		ck_assert_msg(f != NULL, "cannot read %s", path);
		while (all && fscanf(f, "%299s", addr) == 1) {
			redisReply *r = node_cmd(addr, "CLUSTER SLOTS");
			bool here = false;

			for (size_t i = 0;
			     r->type == REDIS_REPLY_ARRAY && i < r->elements;
			     i++) {
				const redisReply *e = r->element[i];
				char at[300];

				if (e->elements < 3 ||
				    e->element[0]->integer > slot ||
				    e->element[1]->integer < slot)
					continue;
				snprintf(at, sizeof(at), "%s:%lld",
					 e->element[2]->element[0]->str,
					 e->element[2]->element[1]->integer);
				here = strcmp(at, to) == 0;
			}
			freeReplyObject(r);
			all = here;
		}
		fclose(f);
		if (all)
			return;
		nanosleep(&(struct timespec){ 0, 50000000L }, NULL);
	}
	ck_abort_msg("the cluster's nodes do not agree that %s owns slot %d "
		     "after 10 s",
		     to, slot);
}

static void move_slot(struct jobd_cluster *cl, int slot, const char *to)
{
	char id[41];
	const char *done[3];
	int ndone = 0;

	node_id(to, id);
	/* The new owner first, as redis-cli --cluster reshard does. */
	freeReplyObject(node_cmd(to, "CLUSTER SETSLOT %d NODE %s", slot, id));
	for (int s = 0; s < JOBD_CLUSTER_SLOTS; s++) {
		const char *a = jobd_cluster_slot_node(cl, s);
		int j;
		redisReply *r;

		for (j = 0; j < ndone && strcmp(done[j], a) != 0; j++)
			;
		if (j < ndone || strcmp(a, to) == 0)
			continue;
		done[ndone++] = a;
		r = node_cmd(a, "CLUSTER SETSLOT %d NODE %s", slot, id);
		ck_assert_msg(r->type == REDIS_REPLY_STATUS,
			      "SETSLOT on %s: %s", a, r->str);
		freeReplyObject(r);
	}
	settled(slot, to);
}

START_TEST(test_cluster_moved_updates_the_map)
{
	struct jobd_cluster *cl = cluster_open();
	struct jobd_cluster *stale = cluster_open();
	int slot = slot_of("{moved}k");
	char from[64], to[64];
	static const char *const keys[] = { "{moved}k", "m1",	    "{moved}k",
					    "m2",	"{moved}k", "m3" };
	struct jobd_cluster_pipe *p;
	redisReply *r;

	snprintf(from, sizeof(from), "%s", jobd_cluster_slot_node(cl, slot));
	other_primary(cl, from, to, sizeof(to));
	for (int i = 1; i < 6; i += 2)
		set(cl, keys[i], "other");
	move_slot(cl, slot, to);
	/* STALE still sends to FROM, which answers MOVED. */
	ck_assert_str_eq(jobd_cluster_slot_node(stale, slot), from);
	set(stale, "{moved}k", "here");
	ck_assert_str_eq(jobd_cluster_slot_node(stale, slot), to);
	r = node_cmd(to, "GET {moved}k");
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
	get_is(stale, "{moved}k", "here");
	jobd_cluster_free(stale);

	/* In a pipeline, only the moved slot's commands are redirected:
	 * SET {moved}k (3 times) and GET of keys elsewhere, interleaved. */
	stale = cluster_open();
	r = node_cmd(to, "DEL {moved}k");
	freeReplyObject(r);
	move_slot(cl, slot, from);
	p = jobd_cluster_pipe_new(stale);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *argv[] = { i % 2 ? "GET" : "SET", keys[i], "back" };
		size_t lens[] = { 3, strlen(keys[i]), 4 };

		jobd_cluster_pipe_append(p, slot_of(keys[i]), i % 2 ? 2 : 3,
					 argv, lens);
	}
	ck_assert_int_eq(jobd_cluster_pipe_exec(p), 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		r = jobd_cluster_pipe_reply(p, i);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->type, i % 2 ? REDIS_REPLY_STRING :
						  REDIS_REPLY_STATUS);
		ck_assert_str_eq(r->str, i % 2 ? "other" : "OK");
	}
	r = node_cmd(from, "GET {moved}k");
	ck_assert_str_eq(r->str, "back");
	freeReplyObject(r);
	ck_assert_str_eq(jobd_cluster_slot_node(stale, slot), from);
	jobd_cluster_pipe_free(p);
	jobd_cluster_free(stale);
	jobd_cluster_free(cl);
}
END_TEST

/* INFO commandstats' count of ASKING on the node at ADDR. */
static long asking_calls(const char *addr)
{
	redisReply *r = node_cmd(addr, "INFO commandstats");
	const char *s = strstr(r->str, "cmdstat_asking:calls=");
	long n = s ? atol(s + strlen("cmdstat_asking:calls=")) : 0;

	freeReplyObject(r);
	return n;
}

START_TEST(test_cluster_ask_follows_a_migration)
{
	struct jobd_cluster *cl = cluster_open();
	int slot = slot_of("{ask}k");
	char from[64], to[64], from_id[41], to_id[41], host[64];
	long asked;
	redisReply *r;

	snprintf(from, sizeof(from), "%s", jobd_cluster_slot_node(cl, slot));
	other_primary(cl, from, to, sizeof(to));
	node_id(from, from_id);
	node_id(to, to_id);
	set(cl, "{ask}k", "migrated");
	set(cl, "{ask}stays", "put");
	freeReplyObject(
		node_cmd(to, "CLUSTER SETSLOT %d IMPORTING %s", slot, from_id));
	freeReplyObject(
		node_cmd(from, "CLUSTER SETSLOT %d MIGRATING %s", slot, to_id));
	snprintf(host, sizeof(host), "%.*s", (int)(strchr(to, ':') - to), to);
	r = node_cmd(from, "MIGRATE %s %s %b 0 5000 KEYS {ask}k", host,
		     strchr(to, ':') + 1, "", (size_t)0);
	ck_assert_msg(r->type == REDIS_REPLY_STATUS, "MIGRATE: %s", r->str);
	freeReplyObject(r);

	asked = asking_calls(to);
	get_is(cl, "{ask}k", "migrated");
	ck_assert_int_eq(asking_calls(to), asked + 1);
	/* An ASK is for one command: the slot stays FROM's. */
	ck_assert_str_eq(jobd_cluster_slot_node(cl, slot), from);
	get_is(cl, "{ask}stays", "put");
	ck_assert_int_eq(asking_calls(to), asked + 1);
	jobd_cluster_free(cl);
}
END_TEST

/* A conf whose [redis] is the cluster's seed, with PREFIX, the lines
 * EXTRA and, for TLS, the cluster's CA and client certificate; caller
 * frees with jobd_conf_free(). */
static struct jobd_conf *store_conf(const char *prefix, const char *extra)
{
	char text[4096], err[512];
	struct jobd_conf *conf;
	int n;

	n = snprintf(text, sizeof(text),
		     "[redis]\naddress = %s\nprefix = %s\n%s", seed, prefix,
		     extra);
	if (tls)
		snprintf(text + n, sizeof(text) - (size_t)n,
			 "tls_ca = %s\ntls_cert = %s\ntls_key = %s\n",
			 tls_path[0], tls_path[1], tls_path[2]);
	conf = jobd_conf_parse(text, strlen(text), "test.conf", err,
			       sizeof(err));
	ck_assert_msg(conf != NULL, "conf: %s", err);
	return conf;
}

/* A store on the cluster (jobd_store_new) with CONF. */
static struct jobd_store *store_open(const struct jobd_conf *conf)
{
	char err[512];
	struct jobd_store *st = jobd_store_new(conf, err, sizeof(err));

	ck_assert_msg(st != NULL, "store: %s", err);
	return st;
}

/* Gives the slot of PREFIX, emptied of its keys, to another primary than
 * its owner's; the new owner's address into TO. */
static void move_prefix(const char *prefix, char *to, size_t size)
{
	struct jobd_cluster *cl = cluster_open();
	int slot = slot_of(prefix);
	char from[64];
	redisReply *r;

	snprintf(from, sizeof(from), "%s", jobd_cluster_slot_node(cl, slot));
	other_primary(cl, from, to, size);
	r = node_cmd(from, "CLUSTER GETKEYSINSLOT %d 100", slot);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	for (size_t i = 0; i < r->elements; i++)
		freeReplyObject(node_cmd(from, "DEL %b", r->element[i]->str,
					 r->element[i]->len));
	freeReplyObject(r);
	move_slot(cl, slot, to);
	jobd_cluster_free(cl);
}

START_TEST(test_cluster_store_stats_names_a_moved_slot)
{
	struct jobd_conf *conf = store_conf("{stats}", "");
	struct jobd_store *st = store_open(conf);
	struct jobd_stats stats;
	char to[64];

	ck_assert_msg(jobd_store_stats(st, 0, NULL, &stats) == 0, "%s",
		      jobd_store_errstr(st));
	jobd_stats_release(&stats);
	move_prefix("{stats}", to, sizeof(to));
	/* The queued commands of the statistics' MULTI answer MOVED, EXEC
	 * only EXECABORT: the error names the redirect, and the next call
	 * reads the slot map again and reaches the new owner. */
	ck_assert_int_eq(jobd_store_stats(st, 0, NULL, &stats),
			 JOBD_STORE_ERR_REDIS);
	ck_assert_msg(strstr(jobd_store_errstr(st), "MOVED") &&
			      strstr(jobd_store_errstr(st), to),
		      "%s", jobd_store_errstr(st));
	ck_assert_ptr_null(stats.minutes);
	ck_assert_msg(jobd_store_stats(st, 0, NULL, &stats) == 0, "%s",
		      jobd_store_errstr(st));
	ck_assert_uint_gt(stats.n, 0);
	jobd_stats_release(&stats);
	jobd_store_free(st);
	jobd_conf_free(conf);
}
END_TEST

/* CLIENT PAUSE MS ALL on the node at ADDR: it takes connections but
 * answers no command of a client until MS have passed. */
static void pause_node(const char *addr, int ms)
{
	redisReply *r = node_cmd(addr, "CLIENT PAUSE %d ALL", ms);

	ck_assert_msg(r->type == REDIS_REPLY_STATUS, "CLIENT PAUSE on %s: %s",
		      addr, r->str);
	freeReplyObject(r);
}

/* Pauses (PAUSE_MS > 0) every node of the cluster (DIR/nodes), or waits
 * until each answers again (PAUSE_MS 0). */
static void pause_all(int pause_ms)
{
	char path[512], line[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nodes", dir);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (pause_ms > 0)
			pause_node(line, pause_ms);
		else
			freeReplyObject(node_cmd(line, "PING"));
	}
	fclose(f);
}

START_TEST(test_cluster_timeout_applies_to_every_link)
{
	struct jobd_cluster *cl = cluster_open();
	int slot = slot_of("{timeout}k");
	const char *argv[] = { "PING" };
	size_t lens[] = { 4 };
	char owner[64];
	redisReply *r;

	snprintf(owner, sizeof(owner), "%s", jobd_cluster_slot_node(cl, slot));
	jobd_cluster_set_timeout(cl, 300);
	pause_node(owner, 2500);
	/* The connection open before, then the one made after it was lost:
	 * each gives up after 300 ms, long before the pause ends. */
	for (int i = 0; i < 2; i++) {
		r = jobd_cluster_command(cl, slot, 1, argv, lens);
		ck_assert_msg(r == NULL, "call %d: a reply within the pause",
			      i);
		ck_assert_msg(strstr(jobd_cluster_errstr(cl), " 300 ms"),
			      "call %d: %s", i, jobd_cluster_errstr(cl));
	}
	freeReplyObject(node_cmd(owner, "PING"));
	r = jobd_cluster_command(cl, slot, 1, argv, lens);
	ck_assert_msg(r != NULL, "%s", jobd_cluster_errstr(cl));
	ck_assert_str_eq(r->str, "PONG");
	freeReplyObject(r);
	jobd_cluster_free(cl);
}
END_TEST

START_TEST(test_cluster_store_timeout_reaches_the_map)
{
	struct jobd_conf *conf = store_conf("{storetimeout}", "");
	struct jobd_store *st = store_open(conf);
	int64_t now;

	jobd_store_set_timeout(st, 300);
	pause_all(5000);
	/* The store's own connection gives up first; then, connecting anew,
	 * the cluster client's link that reads the slot map gives up as
	 * soon (it waited 5 s, past the pause, with its first timeout). */
	ck_assert_int_eq(jobd_store_time(st, &now), JOBD_STORE_ERR_REDIS);
	ck_assert_msg(strstr(jobd_store_errstr(st), " 300 ms"), "%s",
		      jobd_store_errstr(st));
	ck_assert_int_eq(jobd_store_time(st, &now), JOBD_STORE_ERR_REDIS);
	ck_assert_msg(strstr(jobd_store_errstr(st), "slot map") &&
			      strstr(jobd_store_errstr(st), " 300 ms"),
		      "%s", jobd_store_errstr(st));
	pause_all(0);
	ck_assert_msg(jobd_store_time(st, &now) == 0, "%s",
		      jobd_store_errstr(st));
	jobd_store_free(st);
	jobd_conf_free(conf);
}
END_TEST

/* The pid of the node at ADDR: line N of DIR/nodes is DIR/nodeN. */
static pid_t node_pid(const char *addr)
{
	char path[512], line[64];
	FILE *f;
	int n = 0;
	long pid = 0;

	snprintf(path, sizeof(path), "%s/nodes", dir);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (fgets(line, sizeof(line), f)) {
		n++;
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, addr) == 0)
			break;
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/node%d/redis.pid", dir, n);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	return (pid_t)pid;
}

/* A field of INFO SECTION of the node at ADDR, as a number. */
static long long info_field(const char *addr, const char *section,
			    const char *name)
{
	redisReply *r = node_cmd(addr, "INFO %s", section);
	const char *s = strstr(r->str, name);
	long long n;

	ck_assert_msg(s != NULL, "no %s in INFO %s of %s", name, section, addr);
	n = atoll(s + strlen(name));
	freeReplyObject(r);
	return n;
}

/* Whether INFO SECTION of the node at ADDR has TEXT. */
static bool info_has(const char *addr, const char *section, const char *text)
{
	redisReply *r = node_cmd(addr, "INFO %s", section);
	bool has = r->type == REDIS_REPLY_STRING && strstr(r->str, text);

	freeReplyObject(r);
	return has;
}

/* Creates one job of type "noop" with ST; what jobd_store_create says. */
static int create_one(struct jobd_store *st)
{
	struct jobd_spec spec = { .type = "noop" };
	struct jobd_created out = { 0 };

	return jobd_store_create(st, "test", &spec, 1, &out);
}

START_TEST(test_cluster_store_create_waits_in_its_round_trip)
{
	struct jobd_conf *conf = store_conf("{wait}", "wait_timeout = 200ms\n");
	struct jobd_store *st = store_open(conf);
	int slot = slot_of("{wait}");
	struct jobd_cluster *cl = cluster_open();
	char owner[64], replica[64], id[41];
	long long waits, reads;
	int rc;
	pid_t pid;
	redisReply *r;
	enum { N = 40 };

	snprintf(owner, sizeof(owner), "%s", jobd_cluster_slot_node(cl, slot));
	jobd_cluster_free(cl);
	jobd_store_set_create_wait(st, true);
	/* Loads the functions and counts the replicas. */
	ck_assert_msg(create_one(st) == 0, "%s", jobd_store_errstr(st));
	waits = info_field(owner, "commandstats", "cmdstat_wait:calls=");
	reads = info_field(owner, "stats", "total_reads_processed:");
	for (int i = 0; i < N; i++)
		ck_assert_msg(create_one(st) == 0, "%s", jobd_store_errstr(st));
	ck_assert_int_eq(info_field(owner, "commandstats",
				    "cmdstat_wait:calls="),
			 waits + N);
	/*
	 * Each create and its WAIT come in one read, and the replica's
	 * acknowledgement in another: 2 reads a create, 3 when the WAIT is
	 * a round trip of its own; the INFO calls here and the replica's
	 * acknowledgement once a second add a few.
	 */
	reads = info_field(owner, "stats", "total_reads_processed:") - reads;
	ck_assert_msg(reads < N * 5 / 2, "%lld reads on %s for %d creates",
		      reads, owner, N);

	/* A replica that does not acknowledge within [redis] wait_timeout
	 * (stopped) fails the create, saying so. */
	node_id(owner, id);
	r = node_cmd(owner, "CLUSTER REPLICAS %s", id);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_ge(r->elements, 1);
	ck_assert_int_eq(sscanf(r->element[0]->str, "%*s %63[^@]", replica), 1);
	freeReplyObject(r);
	pid = node_pid(replica);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	/* Under cluster-node-timeout (1 s): no node marks it failing. The
	 * replica runs again before any check, so a failed one leaves no
	 * node stopped for the cases after it. */
	rc = create_one(st);
	ck_assert_int_eq(kill(pid, SIGCONT), 0);
	ck_assert_int_eq(rc, JOBD_STORE_ERR_REDIS);
	ck_assert_msg(strstr(jobd_store_errstr(st), "0 of 1 replicas") &&
			      strstr(jobd_store_errstr(st), "200 ms"),
		      "%s", jobd_store_errstr(st));
	/* The replica, running again, may take more than 200 ms to catch
	 * up on a loaded machine: a few tries. */
	for (int i = 0; i < 20 && (rc = create_one(st)) != 0; i++)
		jobd_test_sleep_ms(100);
	ck_assert_msg(rc == 0, "%s", jobd_store_errstr(st));
	jobd_store_free(st);
	jobd_conf_free(conf);
}
END_TEST

START_TEST(test_cluster_crossslot_names_the_keys)
{
	struct jobd_cluster *cl = cluster_open();
	const char *argv[] = { "MSET", "alpha", "1", "beta", "2" };
	size_t lens[] = { 4, 5, 1, 4, 1 };
	char want[64];
	redisReply *r;

	ck_assert_int_ne(slot_of("alpha"), slot_of("beta"));
	r = jobd_cluster_command(cl, slot_of("alpha"), 5, argv, lens);
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(jobd_cluster_errstr(cl), "CROSSSLOT") &&
			      strstr(jobd_cluster_errstr(cl), "'alpha'") &&
			      strstr(jobd_cluster_errstr(cl), "'beta'"),
		      "%s", jobd_cluster_errstr(cl));
	snprintf(want, sizeof(want), "'beta' (slot %d)", slot_of("beta"));
	ck_assert_msg(strstr(jobd_cluster_errstr(cl), want), "%s",
		      jobd_cluster_errstr(cl));
	jobd_cluster_free(cl);
}
END_TEST

START_TEST(test_cluster_new_names_a_bad_seed)
{
	static const struct {
		const char *seeds, *want[2];
	} cases[] = {
		{ "nonsense", { "'nonsense'", "host:port" } },
		{ "127.0.0.1:99999", { "'127.0.0.1:99999'", "host:port" } },
		{ "127.0.0.1:1", { "127.0.0.1:1", "refused" } },
		{ "no-such-host.invalid:7000",
		  { "no-such-host.invalid:7000", "cannot connect" } },
		{ "rediss://127.0.0.1:1,127.0.0.1:2",
		  { "mix TLS and clear", "rediss:// on every seed" } },
		{ "redis://127.0.0.1:1,rediss://127.0.0.1:2",
		  { "mix TLS and clear", "127.0.0.1:2" } },
		{ "rediss://127.0.0.1",
		  { "'rediss://127.0.0.1'", "host:port" } },
		/* No TLS settings given. */
		{ "rediss://127.0.0.1:1",
		  { "rediss://127.0.0.1:1", "no TLS settings" } },
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		ck_assert_ptr_null(jobd_cluster_new(cases[i].seeds, NULL, err,
						    sizeof(err)));
		for (int j = 0; j < 2; j++)
			ck_assert_msg(strstr(err, cases[i].want[j]),
				      "seed '%s': '%s' lacks '%s'",
				      cases[i].seeds, err, cases[i].want[j]);
	}
}
END_TEST

/* Whether the node at ADDR accepts connections. */
static bool node_up(const char *addr)
{
	char err[512];
	struct store_link *l = node_link(addr, err, sizeof(err));

	store_link_free(l);
	return l != NULL;
}

/*
 * A create that goes again on a new primary (MOVED after a manual
 * failover: conn.c run()) waits for that primary's replicas, not for
 * those counted on the old one before the call. Its count is a second
 * old when the create starts, so it asks the old primary, now a replica
 * with none (0: no WAIT behind the call); the new primary has one, the
 * old, and gets a WAIT for it. ({waitnew} is in node1's slots, as the
 * next case's key: the cases before leave a slot of node3's half
 * migrated, which a failover there would not settle.)
 */
START_TEST(test_cluster_store_create_after_failover_waits_for_the_new_replicas)
{
	struct jobd_conf *conf = store_conf("{waitnew}", "wait_timeout = 5s\n");
	struct jobd_store *st = store_open(conf);
	struct jobd_cluster *cl = cluster_open();
	int slot = slot_of("{waitnew}");
	char owner[64], replica[64], id[41];
	long long waits;
	redisReply *r;
	int waited = 0;

	snprintf(owner, sizeof(owner), "%s", jobd_cluster_slot_node(cl, slot));
	jobd_cluster_free(cl);
	jobd_store_set_create_wait(st, true);
	ck_assert_msg(create_one(st) == 0, "%s", jobd_store_errstr(st));
	node_id(owner, id);
	r = node_cmd(owner, "CLUSTER REPLICAS %s", id);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_ge(r->elements, 1);
	ck_assert_int_eq(sscanf(r->element[0]->str, "%*s %63[^@]", replica), 1);
	freeReplyObject(r);
	freeReplyObject(node_cmd(replica, "CLUSTER FAILOVER"));
	/* The old primary follows the new one as its replica. */
	while (!info_has(replica, "replication", "connected_slaves:1") ||
	       !info_has(owner, "replication", "master_link_status:up")) {
		ck_assert_msg(waited < FAILOVER_MS, "%s did not take over",
			      replica);
		jobd_test_sleep_ms(100);
		waited += 100;
	}
	jobd_test_sleep_ms(1100); /* the store's count of replicas expires */
	/* (no field: WAIT never ran there) */
	waits = info_has(replica, "commandstats", "cmdstat_wait:") ?
			info_field(replica, "commandstats",
				   "cmdstat_wait:calls=") :
			0;
	ck_assert_msg(create_one(st) == 0, "%s", jobd_store_errstr(st));
	ck_assert_msg(info_has(replica, "commandstats", "cmdstat_wait:") &&
			      info_field(replica, "commandstats",
					 "cmdstat_wait:calls=") > waits,
		      "no WAIT on the new primary %s", replica);
	jobd_store_free(st);
	jobd_conf_free(conf);
	/* The seed's map names the new primary before the next case reads
	 * it (the failover reaches the other nodes a little later). */
	for (waited = 0;; waited += 100) {
		struct jobd_cluster_opts opts = { .tls = tls_ctx };
		char err[512];
		bool moved = false;

		cl = jobd_cluster_new(seed, &opts, err, sizeof(err));
		if (cl) {
			moved = strcmp(jobd_cluster_slot_node(cl, slot),
				       replica) == 0;
			jobd_cluster_free(cl);
		}
		if (moved)
			break;
		ck_assert_msg(waited < FAILOVER_MS,
			      "the seed's map does not name %s: %s", replica,
			      cl ? "another primary" : err);
		jobd_test_sleep_ms(100);
	}
}
END_TEST

START_TEST(test_cluster_failover_is_followed)
{
	struct jobd_cluster *cl = cluster_open();
	int slot = slot_of("{failover}k");
	char primary[64], replica[64], id[41], err[512], full[80];
	struct jobd_cluster_opts opts = { .tls = tls_ctx };
	struct jobd_cluster *other;
	redisReply *r;
	int waited = 0;

	snprintf(primary, sizeof(primary), "%s",
		 jobd_cluster_slot_node(cl, slot));
	set(cl, "{failover}k", "kept");
	node_id(primary, id);
	r = node_cmd(seed_addr(), "CLUSTER REPLICAS %s", id);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_ge(r->elements, 1);
	/* "<id> 127.0.0.1:PORT@BUS slave <primary id> ..." */
	ck_assert_int_eq(sscanf(r->element[0]->str, "%*s %63[^@]", replica), 1);
	freeReplyObject(r);
	/* The replica has the key before its primary dies. */
	freeReplyObject(node_cmd(primary, "WAIT 1 5000"));

	ck_assert_int_eq(kill(node_pid(primary), SIGKILL), 0);
	while (node_up(primary))
		jobd_test_sleep_ms(10);
	/* Until the replica takes over (a cluster-node-timeout at least), a
	 * new client reads a map that still names the dead primary, cannot
	 * reach it, and says which it is. */
	other = jobd_cluster_new(with_scheme(replica, full, sizeof(full)),
				 &opts, err, sizeof(err));
	ck_assert_ptr_null(other);
	ck_assert_msg(strstr(err, primary) && strstr(err, "refused"), "%s",
		      err);
	for (;;) {
		const char *argv[] = { "GET", "{failover}k" };
		size_t lens[] = { 3, 11 };

		r = jobd_cluster_command(cl, slot, 2, argv, lens);
		if (r)
			break;
		ck_assert_msg(waited < FAILOVER_MS, "no failover: %s",
			      jobd_cluster_errstr(cl));
		jobd_test_sleep_ms(100);
		waited += 100;
	}
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_str_eq(r->str, "kept");
	freeReplyObject(r);
	ck_assert_str_eq(jobd_cluster_slot_node(cl, slot), replica);
	set(cl, "{failover}k", "after");
	get_is(cl, "{failover}k", "after");
	jobd_cluster_free(cl);
}
END_TEST

/*
 * Whether a cluster client with [redis] tls_ca CA (tls_server_name NAME,
 * or NULL) and the cluster's client certificate connects; if not, the
 * reason is in ERR.
 */
static bool opens_with(const char *ca, const char *name, char *err,
		       size_t err_size)
{
	struct jobd_conf conf = tls_conf;
	struct jobd_cluster_opts opts = { 0 };
	struct jobd_cluster *cl;

	conf.redis_tls_ca = (char *)ca;
	conf.redis_tls_server_name = (char *)name;
	opts.tls = store_tls_new(&conf, err, err_size);
	ck_assert_msg(opts.tls != NULL, "%s", err);
	cl = jobd_cluster_new(seed, &opts, err, err_size);
	jobd_cluster_free(cl);
	store_tls_free(opts.tls);
	return cl != NULL;
}

START_TEST(test_cluster_tls_refuses_another_ca)
{
	char err[512], want[600];

	ck_assert(!opens_with(tls_path[3], NULL, err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "cannot connect to redis cluster node %s:", seed_addr());
	ck_assert_msg(strstr(err, want), "'%s' lacks '%s'", err, want);
	ck_assert_msg(strstr(err, "TLS: cannot verify the server's "
				  "certificate") &&
			      strstr(err, tls_path[3]),
		      "%s", err);
}
END_TEST

START_TEST(test_cluster_tls_refuses_another_name)
{
	char err[512];

	ck_assert(!opens_with(tls_path[0], "redis.example", err, sizeof(err)));
	ck_assert_msg(strstr(err, seed_addr()) &&
			      strstr(err, "not for \"redis.example\"") &&
			      strstr(err, "IP:127.0.0.1"),
		      "%s", err);
	/* A name the certificate holds is verified on every node. */
	ck_assert_msg(opens_with(tls_path[0], "localhost", err, sizeof(err)),
		      "%s", err);
}
END_TEST

START_TEST(test_cluster_tls_port_refuses_clear)
{
	struct jobd_cluster_opts opts = { .tls = tls_ctx };
	char err[512];

	/* The TLS seed's port, in clear: the node is named, with the hint. */
	ck_assert_ptr_null(
		jobd_cluster_new(seed_addr(), &opts, err, sizeof(err)));
	ck_assert_msg(strstr(err, seed_addr()) && strstr(err, "rediss://"),
		      "%s", err);
}
END_TEST

/* The clients of the node at ADDR whose local address is 127.0.0.1:PORT. */
static int clients_on(const char *addr, const char *port)
{
	redisReply *r = node_cmd(addr, "CLIENT LIST");
	char want[64];
	int n = 0;

	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	snprintf(want, sizeof(want), "laddr=127.0.0.1:%s ", port);
	for (const char *p = r->str; (p = strstr(p, want)); p++)
		n++;
	freeReplyObject(r);
	return n;
}

START_TEST(test_cluster_seeds_keep_their_scheme)
{
	struct jobd_cluster *cl = cluster_open();
	struct jobd_cluster *clear;
	char err[512];

	/* Every node has a TLS and a clear port: the map and the redirects
	 * name both kinds, and each client takes its seeds' kind. */
	clear = jobd_cluster_new(clear_seed, NULL, err, sizeof(err));
	ck_assert_msg(clear != NULL, "%s", err);
	ck_assert_int_eq(jobd_cluster_primaries(cl), 3);
	ck_assert_int_eq(jobd_cluster_primaries(clear), 3);
	for (int i = 0; i < 3; i++) {
		const char *a, *argv[] = { "PING" };
		size_t lens[] = { 4 };
		char t[64], c[64];
		int slot = jobd_cluster_primary(cl, i, &a);
		redisReply *r;

		snprintf(t, sizeof(t), "%s", a);
		ck_assert_int_eq(jobd_cluster_primary(clear, i, &a), slot);
		snprintf(c, sizeof(c), "%s", a);
		ck_assert_str_ne(t, c);
		r = node_cmd(t, "CONFIG GET port");
		ck_assert_str_eq(r->element[1]->str, strchr(c, ':') + 1);
		freeReplyObject(r);
		r = jobd_cluster_command(cl, slot, 1, argv, lens);
		ck_assert_msg(r != NULL, "%s", jobd_cluster_errstr(cl));
		freeReplyObject(r);
		r = jobd_cluster_command(clear, slot, 1, argv, lens);
		ck_assert_msg(r != NULL, "%s", jobd_cluster_errstr(clear));
		freeReplyObject(r);
		/* The clear client alone is on the clear port; the TLS one
		 * (and this test's own connection) on the TLS port. */
		ck_assert_int_eq(clients_on(t, strchr(c, ':') + 1), 1);
		ck_assert_int_eq(clients_on(t, strchr(t, ':') + 1), 2);
	}
	jobd_cluster_free(clear);
	jobd_cluster_free(cl);
}
END_TEST

static Suite *cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = jobd_test_tcase(s, "cluster", NULL, NULL, 30);

	tcase_add_test(tc, test_cluster_key_slot_follows_redis);
	tcase_add_test(tc, test_cluster_command_reaches_the_owner);
	tcase_add_test(tc, test_cluster_keeps_its_connections);
	tcase_add_test(tc, test_cluster_pipeline_spans_primaries_in_order);
	tcase_add_test(tc, test_cluster_moved_updates_the_map);
	tcase_add_test(tc, test_cluster_ask_follows_a_migration);
	tcase_add_test(tc, test_cluster_crossslot_names_the_keys);
	tcase_add_test(tc, test_cluster_store_stats_names_a_moved_slot);
	tcase_add_test(tc, test_cluster_timeout_applies_to_every_link);
	tcase_add_test(tc, test_cluster_store_timeout_reaches_the_map);
	tcase_add_test(tc, test_cluster_store_create_waits_in_its_round_trip);
	tcase_add_test(tc, test_cluster_new_names_a_bad_seed);
	if (tls) {
		tcase_add_test(tc, test_cluster_tls_refuses_another_ca);
		tcase_add_test(tc, test_cluster_tls_refuses_another_name);
		tcase_add_test(tc, test_cluster_tls_port_refuses_clear);
	}
	/* A cluster with both ports (check_cluster.sh runs this case alone
	 * on one). */
	if (tls && clear_seed) {
		tc = jobd_test_tcase(s, "both-ports", NULL, NULL, 30);
		tcase_add_test(tc, test_cluster_seeds_keep_their_scheme);
	}
	/* Last: it kills a primary. */
	tc = jobd_test_tcase(s, "failover", NULL, NULL, 60);
	tcase_add_test(
		tc,
		test_cluster_store_create_after_failover_waits_for_the_new_replicas);
	tcase_add_test(tc, test_cluster_failover_is_followed);
	return s;
}

int main(void)
{
	int rc;

	seed = getenv("JOBD_TEST_CLUSTER");
	dir = getenv("JOBD_TEST_CLUSTER_DIR");
	if (!seed || !*seed || !dir || !*dir)
		jobd_test_skip_or_fail("no redis cluster: run "
				       "tests/unit/check_cluster.sh, which "
				       "starts one");
	tls = strncmp(seed, "rediss://", 9) == 0;
	clear_seed = getenv("JOBD_TEST_CLUSTER_CLEAR");
	if (tls) {
		static const char *const files[] = { "ca.pem", "client.pem",
						     "client.key",
						     "other.pem" };
		char err[512];

		for (int i = 0; i < 4; i++)
			snprintf(tls_path[i], sizeof(tls_path[i]), "%s/tls/%s",
				 dir, files[i]);
		tls_conf.redis_tls_ca = tls_path[0];
		tls_conf.redis_tls_cert = tls_path[1];
		tls_conf.redis_tls_key = tls_path[2];
		tls_ctx = store_tls_new(&tls_conf, err, sizeof(err));
		if (!tls_ctx) {
			fprintf(stderr, "check_cluster: %s\n", err);
			return 1;
		}
	}
	rc = jobd_test_run_suite(cluster_suite());
	store_tls_free(tls_ctx);
	return rc;
}
