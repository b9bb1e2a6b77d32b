/*
 * kafka/mock_broker: the embedded broker (kafka.h, "embedded broker"):
 * librdkafka's mock cluster, hosted by one jobd instance at a time, its
 * address published in Redis (<prefix>:broker) for the others.
 *
 * The mock cluster's id is derived from a heap address,
 * so it repeats between runs (always under ASan). Keys of messages without
 * an id must never collide with a previous broker's offsets, so the owner
 * also creates a topic "__jobd.epoch.<random>", and the cluster id used in
 * keys is "<cluster id>.<random>" whenever such a topic exists. Rejected:
 * a second Redis key for the token (one more contract), and the port (it
 * repeats too).
 */
#include "config.h"

#include "kafka/kafka.h"
#include "kafka/kafka_int.h"

#include <errno.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kafka/kafka.h"
#include "base/log.h"
#include "store/store.h"

#define EMBEDDED_PARTITIONS 4

struct jobd_kafka_broker {
	const struct jobd_conf *conf; /* borrowed */
	char *addr;		      /* current bootstrap list */
	rd_kafka_t *mock_rk;	     /* owns our mock cluster; NULL if joined */
	rd_kafka_mock_cluster_t *mc; /* our embedded broker, NULL if joined */
	struct jobd_store *st; /* for <prefix>:broker; NULL if not embedded */
};

/*
 * One step on <prefix>:broker through the store: publish or refresh ADDR
 * (NULL: only read). Returns 1 when ADDR is live, 0 with the live address
 * (or "") in CUR, -1 with the reason in errstr.
 */
static int broker_publish(struct jobd_kafka_broker *b, const char *addr,
			  int64_t ttl_ms, char *cur, size_t cur_size,
			  char *errstr, size_t errstr_size)
{
	int rc = jobd_store_broker_publish(b->st, addr, ttl_ms, cur, cur_size);

	if (rc < 0) {
		snprintf(errstr, errstr_size, "%s", jobd_store_errstr(b->st));
		return -1;
	}
	return addr ? rc : 0;
}

/* --- embedded broker ---------------------------------------------------- */

static void stop_embedded(struct jobd_kafka_broker *b)
{
	if (b->mc)
		rd_kafka_mock_cluster_destroy(b->mc);
	if (b->mock_rk)
		rd_kafka_destroy(b->mock_rk);
	b->mc = NULL;
	b->mock_rk = NULL;
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *topic,
			int partitions, char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err;

	err = rd_kafka_mock_topic_create(mc, topic, partitions, 1);
	if (!err)
		return 0;
	snprintf(errstr, errstr_size,
		 "cannot create topic \"%s\" on the embedded broker: %s", topic,
		 rd_kafka_err2str(err));
	return -1;
}

/* Starts our mock cluster with jobd's topics; B->addr is not touched. */
static int start_embedded(struct jobd_kafka_broker *b, char *errstr,
			  size_t errstr_size)
{
	const struct jobd_conf *conf = b->conf;
	const char *inputs[] = { conf->topic_events, conf->topic_records,
				 conf->topic_actions, conf->topic_dlq };
	char epoch[64];
	unsigned char rnd[8];
	rd_kafka_conf_t *kconf;

	kconf = kafka_new_conf(NULL, NULL, NULL, errstr, errstr_size);
	if (!kconf)
		return -1;
	b->mock_rk =
		rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
	if (!b->mock_rk) {
		rd_kafka_conf_destroy(kconf);
		return -1;
	}
	kconf = NULL; /* now owned by mock_rk */
	b->mc = rd_kafka_mock_cluster_new(b->mock_rk, 1);
	if (!b->mc) {
		snprintf(errstr, errstr_size,
			 "cannot start the embedded broker");
		goto err_stop;
	}
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		if (create_topic(b->mc, inputs[i], EMBEDDED_PARTITIONS, errstr,
				 errstr_size) < 0)
			goto err_stop;
	/* one partition, so the minutes stay in order */
	if (create_topic(b->mc, conf->topic_stats, 1, errstr, errstr_size) < 0)
		goto err_stop;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(errstr, errstr_size, "getrandom: %s", strerror(errno));
		goto err_stop;
	}
	snprintf(epoch, sizeof(epoch),
		 JOBD_KAFKA_EPOCH_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		 rnd[7]);
	if (create_topic(b->mc, epoch, 1, errstr, errstr_size) < 0)
		goto err_stop;
	return 0;
err_stop:
	stop_embedded(b);
	return -1;
}

static int set_addr(struct jobd_kafka_broker *b, const char *addr)
{
	char *s = strdup(addr);

	if (!s)
		return -1;
	free(b->addr);
	b->addr = s;
	return 0;
}

/*
 * Starts our broker and claims the key. Returns 1 when ours is live, 0
 * when a peer won the race (B follows it, ours is stopped), -1 on error.
 */
static int take_over(struct jobd_kafka_broker *b, char *errstr,
		     size_t errstr_size)
{
	char cur[256];
	const char *ours;
	int rc;

	if (start_embedded(b, errstr, errstr_size) < 0)
		return -1;
	ours = rd_kafka_mock_cluster_bootstraps(b->mc);
	rc = broker_publish(b, ours, JOBD_KAFKA_BROKER_TTL_MS, cur, sizeof(cur),
			    errstr, errstr_size);
	if (rc == 1 && set_addr(b, ours) == 0) {
		jobd_info("kafka: embedded broker at %s", ours);
		return 1;
	}
	if (rc == 1) {
		snprintf(errstr, errstr_size, "out of memory");
		jobd_store_broker_release(b->st, ours);
		rc = -1;
	}
	stop_embedded(b);
	if (rc < 0)
		return -1;
	if (set_addr(b, cur) < 0) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	jobd_info("kafka: joining the embedded broker at %s", cur);
	return 0;
}

struct jobd_kafka_broker *jobd_kafka_broker_new(const struct jobd_conf *conf,
						char *errstr,
						size_t errstr_size)
{
	struct jobd_kafka_broker *b;
	char cur[256];
	int rc;

	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	b->conf = conf;
	if (strcmp(conf->brokers, "embedded") != 0) {
		if (set_addr(b, conf->brokers) < 0) {
			snprintf(errstr, errstr_size, "out of memory");
			goto err_free;
		}
		return b;
	}
	b->st = jobd_store_new(conf, errstr, errstr_size);
	if (!b->st)
		goto err_free;
	rc = broker_publish(b, NULL, 0, cur, sizeof(cur), errstr, errstr_size);
	if (rc < 0)
		goto err_free;
	if (cur[0]) {
		if (set_addr(b, cur) < 0) {
			snprintf(errstr, errstr_size, "out of memory");
			goto err_free;
		}
		jobd_info("kafka: joining the embedded broker at %s", cur);
		return b;
	}
	if (take_over(b, errstr, errstr_size) < 0)
		goto err_free;
	return b;
err_free:
	jobd_store_free(b->st);
	free(b->addr);
	free(b);
	return NULL;
}

const char *jobd_kafka_broker_address(const struct jobd_kafka_broker *b)
{
	return b->addr;
}

bool jobd_kafka_broker_owned(const struct jobd_kafka_broker *b)
{
	return b->mc != NULL;
}

int jobd_kafka_broker_tick(struct jobd_kafka_broker *b, char *errstr,
			   size_t errstr_size)
{
	char cur[256];
	int rc;

	if (strcmp(b->conf->brokers, "embedded") != 0)
		return 0;
	rc = broker_publish(b, b->mc ? b->addr : NULL, JOBD_KAFKA_BROKER_TTL_MS,
			    cur, sizeof(cur), errstr, errstr_size);
	if (rc < 0)
		return -1;
	if (rc == 1)
		return 0;
	if (b->mc) {
		/* Our key lapsed (Redis was away) and a peer claimed it:
		 * everyone else follows the key, so we do too. */
		jobd_warn("kafka: embedded broker %s lost its key to %s: "
			  "stopping it",
			  b->addr, cur);
		stop_embedded(b);
	} else if (!cur[0]) {
		jobd_warn("kafka: embedded broker at %s is gone: taking over",
			  b->addr);
		rc = take_over(b, errstr, errstr_size);
		return rc < 0 ? -1 : 1;
	}
	if (strcmp(cur, b->addr) == 0)
		return 0;
	if (set_addr(b, cur) < 0) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	jobd_info("kafka: joining the embedded broker at %s", cur);
	return 1;
}

int jobd_kafka_broker_delay(struct jobd_kafka_broker *b, int16_t api_key,
			    int rtt_ms, size_t n)
{
	size_t have = 0;

	if (!b->mc)
		return -1;
	/* broker 1: the embedded cluster has one */
	if (rd_kafka_mock_broker_error_stack_cnt(b->mc, 1, api_key, &have) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;
	for (; have < n; have++)
		if (rd_kafka_mock_broker_push_request_error_rtts(
			    b->mc, 1, api_key, 1, RD_KAFKA_RESP_ERR_NO_ERROR,
			    rtt_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
			return -1;
	return 0;
}

void jobd_kafka_broker_free(struct jobd_kafka_broker *b)
{
	if (!b)
		return;
	if (b->mc && jobd_store_broker_release(b->st, b->addr) < 0)
		jobd_warn("kafka: cannot release the embedded broker's key: "
			  "%s",
			  jobd_store_errstr(b->st));
	stop_embedded(b);
	jobd_store_free(b->st);
	free(b->addr);
	free(b);
}
