/*
 * kafka: the librdkafka wrapper (see kafka.h for the contract).
 *
 * Consumer: offsets are committed explicitly with the batch that produced
 * the jobs (enable.auto.commit and enable.auto.offset.store off), so a
 * crash between the Redis write and the commit redelivers the batch and the
 * idempotency keys turn the redelivery into "existed". Batches are polled
 * one message at a time with rd_kafka_consumer_poll rather than
 * rd_kafka_consume_batch_queue: the rebalance callback is then always
 * served between batches, never while one is being turned into jobs.
 *
 * Embedded broker: the mock cluster's id is derived from a heap address,
 * so it repeats between runs (always under ASan). Keys of messages without
 * an id must never collide with a previous broker's offsets, so the owner
 * also creates a topic "__jobd.epoch.<random>", and the cluster id used in
 * keys is "<cluster id>.<random>" whenever such a topic exists. Rejected:
 * a second Redis key for the token (one more contract), and the port (it
 * repeats too).
 */
#include "config.h"

#include "kafka/kafka.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store.h"

#define EPOCH_PREFIX "__jobd.epoch."
#define EMBEDDED_PARTITIONS 4
#define SEND_TIMEOUT_MS 10000

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
static int broker_claim(struct jobd_kafka_broker *b, const char *addr,
			int64_t ttl_ms, char *cur, size_t cur_size,
			char *errstr, size_t errstr_size)
{
	int rc = jobd_store_broker_claim(b->st, addr, ttl_ms, cur, cur_size);

	if (rc < 0) {
		snprintf(errstr, errstr_size, "%s", jobd_store_errstr(b->st));
		return -1;
	}
	return addr ? rc : 0;
}

struct jobd_kafka_producer {
	rd_kafka_t *rk;
};

struct jobd_kafka_consumer {
	rd_kafka_t *rk;
	bool paused; /* pause partitions assigned from now on too */
	void (*before_revoke)(void *arg);
	void *before_revoke_arg;
	/* partitions revoked in the poll under way (all: every one) */
	rd_kafka_topic_partition_list_t *revoked;
	bool revoked_all;
};

/* The delivery report of one message of a send. */
struct delivery {
	rd_kafka_resp_err_t err;
	bool done;
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
	enum jobd_log_level l = JOBD_LOG_DEBUG;

	/* syslog levels; notices are mostly config chatter */
	if (level <= 3)
		l = JOBD_LOG_ERROR;
	else if (level == 4)
		l = JOBD_LOG_WARN;
	jobd_log(l, "kafka: %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	jobd_log(rd_kafka_fatal_error(rk, NULL, 0) ? JOBD_LOG_ERROR :
						     JOBD_LOG_WARN,
		 "kafka: %s", reason);
}

static int set(rd_kafka_conf_t *kconf, const char *name, const char *value,
	       char *errstr, size_t errstr_size)
{
	char why[512];

	if (rd_kafka_conf_set(kconf, name, value, why, sizeof(why)) ==
	    RD_KAFKA_CONF_OK)
		return 0;
	snprintf(errstr, errstr_size, "bad kafka property \"%s\": %s", name,
		 why);
	return -1;
}

const char *jobd_kafka_version(void)
{
	return rd_kafka_version_str();
}

/*
 * librdkafka before 2.6.1 appends its nonce twice in the last SCRAM
 * message; Apache Kafka 4 compares it strictly, as RFC 5802 says, and
 * answers "invalid credentials" to the right password. Said once, when a
 * client is configured for SCRAM with such a library.
 */
#define SCRAM_FIXED 0x020601ff

static void check_scram(const rd_kafka_conf_t *kconf)
{
	static atomic_bool said;
	char proto[32] = "", mech[32] = "";
	size_t np = sizeof(proto), nm = sizeof(mech);

	if (rd_kafka_version() >= SCRAM_FIXED)
		return;
	/* What the client will use: the last of every alias set. */
	if (rd_kafka_conf_get(kconf, "security.protocol", proto, &np) !=
		    RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_get(kconf, "sasl.mechanisms", mech, &nm) !=
		    RD_KAFKA_CONF_OK)
		return;
	if (strncasecmp(proto, "sasl_", 5) == 0 &&
	    strncasecmp(mech, "SCRAM-", 6) == 0 &&
	    !atomic_exchange(&said, true))
		jobd_warn("kafka: librdkafka %s has a SCRAM bug that Apache "
			  "Kafka 4 brokers answer with \"invalid credentials\" "
			  "whatever the password (fixed in librdkafka 2.6.1): "
			  "against such a broker use SASL/PLAIN over SSL, or a "
			  "newer librdkafka",
			  rd_kafka_version_str());
}

/*
 * A librdkafka conf: DEFAULTS, then EXTRA (name, value pairs, each
 * NULL-terminated or NULL), then the [kafka] kafka.* properties (they
 * win), then BROKERS.
 */
static rd_kafka_conf_t *new_conf2(const struct jobd_conf *conf,
				  const char *brokers,
				  const char *const *defaults,
				  const char *const *extra, char *errstr,
				  size_t errstr_size)
{
	rd_kafka_conf_t *kconf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(kconf, log_cb);
	rd_kafka_conf_set_error_cb(kconf, error_cb);
	for (size_t i = 0; defaults && defaults[i]; i += 2)
		if (set(kconf, defaults[i], defaults[i + 1], errstr,
			errstr_size) < 0)
			goto err_free_conf;
	for (size_t i = 0; extra && extra[i]; i += 2)
		if (set(kconf, extra[i], extra[i + 1], errstr, errstr_size) < 0)
			goto err_free_conf;
	for (size_t i = 0; conf && i < conf->kafka_props_count; i++)
		if (set(kconf, conf->kafka_props[i].key,
			conf->kafka_props[i].value, errstr, errstr_size) < 0)
			goto err_free_conf;
	check_scram(kconf);
	if (brokers &&
	    set(kconf, "bootstrap.servers", brokers, errstr, errstr_size) < 0)
		goto err_free_conf;
	return kconf;
err_free_conf:
	rd_kafka_conf_destroy(kconf);
	return NULL;
}

/*
 * A librdkafka conf: DEFAULTS (name, value pairs, NULL-terminated), then
 * the [kafka] kafka.* properties (they win), then BROKERS.
 */
static rd_kafka_conf_t *new_conf(const struct jobd_conf *conf,
				 const char *brokers,
				 const char *const *defaults, char *errstr,
				 size_t errstr_size)
{
	return new_conf2(conf, brokers, defaults, NULL, errstr, errstr_size);
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

	kconf = new_conf(NULL, NULL, NULL, errstr, errstr_size);
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
		 EPOCH_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
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
	rc = broker_claim(b, ours, JOBD_KAFKA_BROKER_TTL_MS, cur, sizeof(cur),
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
	rc = broker_claim(b, NULL, 0, cur, sizeof(cur), errstr, errstr_size);
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
	rc = broker_claim(b, b->mc ? b->addr : NULL, JOBD_KAFKA_BROKER_TTL_MS,
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

/* --- producer ----------------------------------------------------------- */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage,
		      void *opaque)
{
	struct delivery *d = rkmessage->_private;

	d->err = rkmessage->err;
	d->done = true;
}

struct jobd_kafka_producer *
jobd_kafka_producer_new(const struct jobd_conf *conf, const char *brokers,
			char *errstr, size_t errstr_size)
{
	return jobd_kafka_producer_new_props(conf, brokers, NULL, errstr,
					     errstr_size);
}

struct jobd_kafka_producer *
jobd_kafka_producer_new_props(const struct jobd_conf *conf, const char *brokers,
			      const char *const *props, char *errstr,
			      size_t errstr_size)
{
	static const char *const defaults[] = {
		"client.id",
		"jobd",
		"linger.ms",
		"5",
		"message.timeout.ms",
		"30000",
		"enable.idempotence",
		"true",
		NULL,
	};
	struct jobd_kafka_producer *p;
	rd_kafka_conf_t *kconf;

	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	kconf = new_conf2(conf, brokers, defaults, props, errstr, errstr_size);
	if (!kconf)
		goto err_free;
	rd_kafka_conf_set_dr_msg_cb(kconf, dr_msg_cb);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
	if (!p->rk) {
		rd_kafka_conf_destroy(kconf);
		goto err_free;
	}
	return p;
err_free:
	free(p);
	return NULL;
}

static rd_kafka_resp_err_t
produce(rd_kafka_t *rk, const struct jobd_kafka_out *m, struct delivery *d)
{
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_resp_err_t err;

	if (m->nheaders) {
		hdrs = rd_kafka_headers_new(m->nheaders);
		for (size_t i = 0; i < m->nheaders; i++)
			rd_kafka_header_add(hdrs, m->headers[i].name, -1,
					    m->headers[i].value,
					    (ssize_t)m->headers[i].len);
	}
	for (;;) {
		err = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(m->topic),
			RD_KAFKA_V_PARTITION(m->partition < 0 ?
						     RD_KAFKA_PARTITION_UA :
						     m->partition),
			RD_KAFKA_V_KEY(m->key, m->key ? m->key_len : 0),
			RD_KAFKA_V_VALUE((void *)m->value, m->len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(d),
			RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(rk, 100);
	}
	if (err && hdrs)
		rd_kafka_headers_destroy(hdrs); /* not taken on failure */
	return err;
}

/* Whether every one of the first N deliveries has its report. */
static bool all_done(const struct delivery *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!d[i].done)
			return false;
	return true;
}

/*
 * Serves delivery reports until each of the N of D has its own, asking
 * KEEP(ARG) about once a second (KEEP NULL: never gives up). Returns
 * true when KEEP gave up: what was not acked then was purged.
 */
static bool wait_reports(struct jobd_kafka_producer *p, struct delivery *d,
			 size_t n, jobd_kafka_wait_fn keep, void *arg)
{
	int64_t next_ask = jobd_util_mono_ms() + 1000;

	while (!all_done(d, n)) {
		rd_kafka_poll(p->rk, 100);
		if (!keep || jobd_util_mono_ms() < next_ask)
			continue;
		next_ask = jobd_util_mono_ms() + 1000;
		if (keep(arg))
			continue;
		/* Purged messages get a delivery report, so D is not
		 * referenced once every report has been served. */
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE |
					      RD_KAFKA_PURGE_F_INFLIGHT);
		while (!all_done(d, n))
			rd_kafka_poll(p->rk, 100);
		return true;
	}
	return false;
}

/*
 * What ERR, librdkafka's verdict on one message, means for it. Only a
 * refusal of the record itself is final: librdkafka's own size check
 * (message.max.bytes) reports the broker's code, and a broker refuses a
 * record batch over its message.max.bytes or the topic's
 * max.message.bytes. A refused ACL or an unknown topic is retried, as an
 * outage is: an operator can fix both, and dropping the message instead
 * would lose it.
 */
static enum jobd_kafka_fate fate_of(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return JOBD_KAFKA_ACKED;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		return JOBD_KAFKA_TOO_LARGE;
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
		return JOBD_KAFKA_INVALID;
	default:
		return JOBD_KAFKA_UNSENT;
	}
}

static bool is_purged(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	       err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

int jobd_kafka_producer_send(struct jobd_kafka_producer *p,
			     const struct jobd_kafka_out *msgs, size_t n,
			     jobd_kafka_wait_fn keep, void *arg,
			     enum jobd_kafka_fate *fates, char *errstr,
			     size_t errstr_size)
{
	struct delivery *d;
	size_t failed = n, refused = n;

	if (n == 0)
		return 0;
	d = calloc(n, sizeof(*d));
	if (!d) {
		for (size_t i = 0; fates && i < n; i++)
			fates[i] = JOBD_KAFKA_UNSENT;
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	/* One refused message does not hold up the others. */
	for (size_t i = 0; i < n; i++) {
		d[i].err = produce(p->rk, &msgs[i], &d[i]);
		d[i].done = d[i].err != RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	wait_reports(p, d, n, keep, arg);
	for (size_t i = 0; i < n; i++) {
		enum jobd_kafka_fate fate = fate_of(d[i].err);

		if (fates)
			fates[i] = fate;
		if (fate == JOBD_KAFKA_UNSENT && failed == n)
			failed = i;
		else if (fate != JOBD_KAFKA_ACKED && refused == n)
			refused = i;
	}
	if (failed == n)
		failed = refused;
	if (failed < n)
		snprintf(errstr, errstr_size, "cannot deliver to \"%s\": %s",
			 msgs[failed].topic,
			 is_purged(d[failed].err) ?
				 "gave up waiting for the broker" :
				 rd_kafka_err2str(d[failed].err));
	free(d);
	if (failed == n)
		return 0;
	return rd_kafka_fatal_error(p->rk, NULL, 0) ? -2 : -1;
}

void jobd_kafka_producer_free(struct jobd_kafka_producer *p)
{
	if (!p)
		return;
	rd_kafka_flush(p->rk, 5000);
	rd_kafka_destroy(p->rk);
	free(p);
}

int jobd_kafka_producer_deliver(struct jobd_kafka_producer *p,
				const struct jobd_kafka_out *msgs, size_t n,
				jobd_kafka_wait_fn keep, void *arg,
				size_t *acked, char *errstr, size_t errstr_size)
{
	struct delivery *d;
	size_t sent = 0;
	bool gave_up;
	int rc = 0;

	*acked = 0;
	if (n == 0)
		return 0;
	d = calloc(n, sizeof(*d));
	if (!d) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	/* Stop at the first refusal: a later message must not overtake it. */
	for (; sent < n; sent++) {
		d[sent].err = produce(p->rk, &msgs[sent], &d[sent]);
		if (d[sent].err)
			break;
	}
	gave_up = wait_reports(p, d, sent, keep, arg);
	while (*acked < sent && !d[*acked].err)
		(*acked)++;
	if (*acked < n) {
		snprintf(errstr, errstr_size, "cannot deliver to \"%s\": %s",
			 msgs[*acked].topic,
			 gave_up ? "gave up waiting for the broker" :
				   rd_kafka_err2str(d[*acked].err));
		rc = gave_up ? -2 : -1;
	}
	free(d);
	return rc;
}

int jobd_kafka_brokers(const struct jobd_conf *conf, struct jobd_store *st,
		       char *buf, size_t size, char *errstr, size_t errstr_size)
{
	struct jobd_store *own = NULL;
	int rc;

	if (strcmp(conf->brokers, "embedded") != 0) {
		if ((size_t)snprintf(buf, size, "%s", conf->brokers) >= size) {
			snprintf(errstr, errstr_size,
				 "[kafka] brokers is over %zu bytes", size - 1);
			return -1;
		}
		return 0;
	}
	if (!st) {
		own = jobd_store_new(conf, errstr, errstr_size);
		if (!own)
			return -1;
		st = own;
	}
	/* Only reads the key: this never starts a broker. */
	rc = jobd_store_broker_claim(st, NULL, 0, buf, size);
	if (rc < 0)
		snprintf(errstr, errstr_size, "%s", jobd_store_errstr(st));
	jobd_store_free(own);
	if (rc < 0)
		return -1;
	if (!buf[0]) {
		snprintf(errstr, errstr_size,
			 "no embedded broker is running (redis key "
			 "\"%s:broker\" is not set): start jobd with "
			 "the consume role",
			 conf->prefix);
		return -1;
	}
	return 0;
}

/* KEEP of a send that gives up at *ARG, a monotonic time in ms. */
static bool before_deadline(void *arg)
{
	return jobd_util_mono_ms() < *(const int64_t *)arg;
}

int jobd_kafka_send(const struct jobd_conf *conf, const char *topic,
		    const void *buf, size_t len, char *errstr,
		    size_t errstr_size)
{
	struct jobd_kafka_out msg = {
		.topic = topic, .partition = -1, .value = buf, .len = len
	};
	struct jobd_kafka_producer *p;
	char brokers[4096];
	int64_t deadline;
	int rc;

	if (jobd_kafka_brokers(conf, NULL, brokers, sizeof(brokers), errstr,
			       errstr_size) < 0)
		return -1;
	p = jobd_kafka_producer_new(conf, brokers, errstr, errstr_size);
	if (!p)
		return -1;
	deadline = jobd_util_mono_ms() + SEND_TIMEOUT_MS;
	rc = jobd_kafka_producer_send(p, &msg, 1, before_deadline, &deadline,
				      NULL, errstr, errstr_size);
	jobd_kafka_producer_free(p);
	return rc;
}

/* --- reading the end of a partition ---------------------------------- */

/* How many offsets below the high watermark are tried for a message. */
#define TAIL_STEPS 10

/*
 * Fetches the message at OFFSET into *KEY and *OFFSET. Returns 1, 0 when
 * the partition ended before a message (OFFSET held none), or -1 when the
 * DEADLINE (monotonic ms) passed.
 */
static int fetch_at(rd_kafka_t *rk, const char *topic, int32_t partition,
		    int64_t at, int64_t deadline, char **key, int64_t *offset,
		    char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;

	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = at;
	err = rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		snprintf(errstr, errstr_size, "cannot read %s/%d@%lld: %s",
			 topic, (int)partition, (long long)at,
			 rd_kafka_err2str(err));
		return -1;
	}
	snprintf(errstr, errstr_size, "cannot read %s/%d@%lld: timed out",
		 topic, (int)partition, (long long)at);
	for (;;) {
		int64_t left = deadline - jobd_util_mono_ms();
		rd_kafka_message_t *rkm;
		int rc = 1;

		if (left <= 0)
			return -1;
		rkm = rd_kafka_consumer_poll(rk, (int)left);
		if (!rkm)
			continue;
		if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rc = 0;
		} else if (rkm->err) {
			/* e.g. the broker is restarting: try until DEADLINE */
			snprintf(errstr, errstr_size,
				 "cannot read %s/%d@%lld: %s", topic,
				 (int)partition, (long long)at,
				 rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			continue;
		} else {
			*offset = rkm->offset;
			*key = rkm->key ? strndup(rkm->key, rkm->key_len) :
					  NULL;
			if (rkm->key && !*key) {
				snprintf(errstr, errstr_size, "out of memory");
				rc = -1;
			}
		}
		rd_kafka_message_destroy(rkm);
		return rc;
	}
}

/*
 * Asks the broker about TOPIC (a consumer's metadata request creates no
 * topic). Returns 1 when it exists, 0 when the broker says it does not
 * (nothing was ever published), -1 when the broker did not answer.
 */
static int topic_exists(rd_kafka_t *rk, const char *topic, int timeout_ms,
			char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t err;
	int rc;

	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (!rkt) {
		snprintf(errstr, errstr_size, "bad topic \"%s\": %s", topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (!err && md->topic_cnt == 1)
		err = md->topics[0].err;
	if (md)
		rd_kafka_metadata_destroy(md);
	if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		return 0;
	rc = err ? -1 : 1;
	if (err)
		snprintf(errstr, errstr_size,
			 "cannot read the metadata of \"%s\": %s", topic,
			 rd_kafka_err2str(err));
	return rc;
}

int jobd_kafka_last_message(const struct jobd_conf *conf, const char *brokers,
			    const char *topic, int32_t partition,
			    int timeout_ms, char **key, int64_t *offset,
			    char *errstr, size_t errstr_size)
{
	static const char *const defaults[] = {
		"client.id",
		"jobd",
		/* needed by the consumer API; never joined (no subscribe) */
		"group.id",
		"jobd-tail",
		"enable.auto.commit",
		"false",
		"enable.auto.offset.store",
		"false",
		"enable.partition.eof",
		"true",
		"fetch.wait.max.ms",
		"50",
		/* an export holds a page, not librdkafka's 64 MiB prefetch */
		"queued.max.messages.kbytes",
		"2048",
		NULL,
	};
	int64_t deadline = jobd_util_mono_ms() + timeout_ms;
	int64_t lo = 0, hi = 0;
	rd_kafka_conf_t *kconf;
	rd_kafka_resp_err_t err;
	rd_kafka_t *rk;
	int rc = 0;

	*key = NULL;
	*offset = -1;
	kconf = new_conf(conf, brokers, defaults, errstr, errstr_size);
	if (!kconf)
		return -1;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
	if (!rk) {
		rd_kafka_conf_destroy(kconf);
		return -1;
	}
	kconf = NULL; /* now owned by rk */
	rd_kafka_poll_set_consumer(rk);
	rc = topic_exists(rk, topic, timeout_ms, errstr, errstr_size);
	if (rc == 1) {
		rc = 0;
		err = rd_kafka_query_watermark_offsets(rk, topic, partition,
						       &lo, &hi, timeout_ms);
		if (err) {
			snprintf(errstr, errstr_size,
				 "cannot read the offsets of %s/%d: %s", topic,
				 (int)partition, rd_kafka_err2str(err));
			rc = -1;
		}
	}
	for (int64_t at = hi - 1; rc == 0 && at >= lo && at >= hi - TAIL_STEPS;
	     at--)
		rc = fetch_at(rk, topic, partition, at, deadline, key, offset,
			      errstr, errstr_size);
	rd_kafka_assign(rk, NULL);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

/* --- reading a whole topic --------------------------------------------- */

struct jobd_kafka_reader {
	rd_kafka_t *rk;
	char *topic;
};

/*
 * TOPIC's partition count from a metadata request for all topics: a
 * request naming the topic makes the mock cluster (the embedded broker)
 * create it. Returns 1, 0 when it does not exist, -1 (no answer).
 */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms,
			    int32_t *nparts, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int rc = 0;

	err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size,
			 "cannot read the metadata of \"%s\": %s", topic,
			 rd_kafka_err2str(err));
		return -1;
	}
	for (int i = 0; i < md->topic_cnt && rc == 0; i++) {
		if (strcmp(md->topics[i].topic, topic) != 0)
			continue;
		if (md->topics[i].err) {
			snprintf(errstr, errstr_size,
				 "cannot read the metadata of \"%s\": %s",
				 topic, rd_kafka_err2str(md->topics[i].err));
			rc = -1;
		} else {
			*nparts = md->topics[i].partition_cnt;
			rc = 1;
		}
	}
	rd_kafka_metadata_destroy(md);
	return rc;
}

struct jobd_kafka_reader *
jobd_kafka_reader_new(const struct jobd_conf *conf, const char *brokers,
		      const char *topic, int timeout_ms, int32_t *nparts,
		      char *errstr, size_t errstr_size)
{
	static const char *const defaults[] = {
		"client.id",
		"jobd",
		/* needed by the consumer API; never joined (no subscribe) */
		"group.id",
		"jobd-reader",
		"enable.auto.commit",
		"false",
		"enable.auto.offset.store",
		"false",
		"enable.partition.eof",
		"true",
		"auto.offset.reset",
		"earliest",
		"fetch.wait.max.ms",
		"50",
		NULL,
	};
	struct jobd_kafka_reader *r;
	rd_kafka_conf_t *kconf;
	int rc;

	*nparts = 0;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->topic = strdup(topic))) {
		free(r);
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	kconf = new_conf(conf, brokers, defaults, errstr, errstr_size);
	if (!kconf)
		goto err_free;
	r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
	if (!r->rk) {
		rd_kafka_conf_destroy(kconf);
		goto err_free;
	}
	kconf = NULL; /* now owned by rk */
	rd_kafka_poll_set_consumer(r->rk);
	rc = topic_partitions(r->rk, topic, timeout_ms, nparts, errstr,
			      errstr_size);
	if (rc == 0)
		snprintf(errstr, errstr_size, "topic \"%s\" does not exist",
			 topic);
	if (rc == 1 && *nparts <= 0) {
		snprintf(errstr, errstr_size, "topic \"%s\" has no partitions",
			 topic);
		rc = 0;
	}
	if (rc != 1)
		goto err_destroy;
	return r;
err_destroy:
	rd_kafka_destroy(r->rk);
err_free:
	free(r->topic);
	free(r);
	return NULL;
}

int jobd_kafka_reader_watermarks(struct jobd_kafka_reader *r, int32_t partition,
				 int timeout_ms, int64_t *low, int64_t *high,
				 char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err;

	err = rd_kafka_query_watermark_offsets(r->rk, r->topic, partition, low,
					       high, timeout_ms);
	if (!err)
		return 0;
	snprintf(errstr, errstr_size, "cannot read the offsets of %s/%d: %s",
		 r->topic, (int)partition, rd_kafka_err2str(err));
	return -1;
}

int jobd_kafka_reader_seek(struct jobd_kafka_reader *r, int32_t partition,
			   int64_t offset, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;

	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, r->topic, partition)->offset =
		offset;
	err = rd_kafka_assign(r->rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (!err)
		return 0;
	snprintf(errstr, errstr_size, "cannot read %s/%d@%lld: %s", r->topic,
		 (int)partition, (long long)offset, rd_kafka_err2str(err));
	return -1;
}

int jobd_kafka_reader_next(struct jobd_kafka_reader *r,
			   struct jobd_kafka_message *msg, int timeout_ms,
			   char *errstr, size_t errstr_size)
{
	int64_t deadline = jobd_util_mono_ms() + timeout_ms;

	snprintf(errstr, errstr_size, "cannot read %s: timed out", r->topic);
	for (;;) {
		int64_t left = deadline - jobd_util_mono_ms();
		rd_kafka_message_t *rkm;

		if (left <= 0)
			return -1;
		rkm = rd_kafka_consumer_poll(r->rk, (int)left);
		if (!rkm)
			continue;
		if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			*msg = (struct jobd_kafka_message){
				.topic = r->topic,
				.partition = rkm->partition,
				.offset = rkm->offset,
			};
			rd_kafka_message_destroy(rkm);
			return 0;
		}
		if (rkm->err) {
			/* e.g. the broker is restarting: try until the
			 * deadline, keeping the last reason */
			snprintf(errstr, errstr_size, "cannot read %s/%d: %s",
				 r->topic, (int)rkm->partition,
				 rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			continue;
		}
		*msg = (struct jobd_kafka_message){
			.topic = r->topic,
			.partition = rkm->partition,
			.offset = rkm->offset,
			.value = rkm->payload,
			.len = rkm->len,
			.key = rkm->key,
			.key_len = rkm->key_len,
			.priv = rkm,
		};
		return 1;
	}
}

void jobd_kafka_reader_free(struct jobd_kafka_reader *r)
{
	if (!r)
		return;
	rd_kafka_assign(r->rk, NULL);
	rd_kafka_consumer_close(r->rk);
	rd_kafka_destroy(r->rk);
	free(r->topic);
	free(r);
}

/* --- consumer ----------------------------------------------------------- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct jobd_kafka_consumer *kc = opaque;
	bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		/* The batches taken so far are committed while ours. */
		if (kc->before_revoke)
			kc->before_revoke(kc->before_revoke_arg);
		if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
			if (!kc->revoked)
				kc->revoked = rd_kafka_topic_partition_list_new(
					parts->cnt);
			for (int i = 0; i < parts->cnt; i++)
				rd_kafka_topic_partition_list_add(
					kc->revoked, parts->elems[i].topic,
					parts->elems[i].partition);
		} else {
			kc->revoked_all = true;
		}
	}
	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		if (coop)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, parts);
		/* a partition assigned during backpressure starts paused */
		if (kc->paused)
			rd_kafka_pause_partitions(rk, parts);
		jobd_debug("kafka: %d partitions assigned", parts->cnt);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		if (coop)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, NULL);
		jobd_debug("kafka: %d partitions revoked", parts->cnt);
		break;
	default:
		jobd_warn("kafka: rebalance failed: %s", rd_kafka_err2str(err));
		aerr = rd_kafka_assign(rk, NULL);
		break;
	}
	if (error) {
		jobd_warn("kafka: cannot apply the rebalance: %s",
			  rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	} else if (aerr) {
		jobd_warn("kafka: cannot apply the rebalance: %s",
			  rd_kafka_err2str(aerr));
	}
}

struct jobd_kafka_consumer *
jobd_kafka_consumer_new(const struct jobd_conf *conf, const char *brokers,
			const char *group, const char *const *topics,
			size_t ntopics, char *errstr, size_t errstr_size)
{
	static const char *const defaults[] = {
		"client.id",
		"jobd",
		"enable.auto.commit",
		"false",
		"enable.auto.offset.store",
		"false",
		"auto.offset.reset",
		"earliest",
		"fetch.wait.max.ms",
		"50",
		/* the mock cluster's rebalances wait session.timeout - 1 s */
		"session.timeout.ms",
		"6000",
		"heartbeat.interval.ms",
		"1000",
		/* every member of a group must use the same (the mock
		 * aborts otherwise): this is librdkafka's default, pinned */
		"partition.assignment.strategy",
		"range,roundrobin",
		NULL,
	};
	struct jobd_kafka_consumer *kc;
	rd_kafka_topic_partition_list_t *subs;
	rd_kafka_conf_t *kconf;
	rd_kafka_resp_err_t err;

	kc = calloc(1, sizeof(*kc));
	if (!kc) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	kconf = new_conf(conf, brokers, defaults, errstr, errstr_size);
	if (!kconf)
		goto err_free;
	if (set(kconf, "group.id", group, errstr, errstr_size) < 0) {
		rd_kafka_conf_destroy(kconf);
		goto err_free;
	}
	rd_kafka_conf_set_rebalance_cb(kconf, rebalance_cb);
	rd_kafka_conf_set_opaque(kconf, kc);
	kc->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
	if (!kc->rk) {
		rd_kafka_conf_destroy(kconf);
		goto err_free;
	}
	kconf = NULL; /* now owned by rk */
	rd_kafka_poll_set_consumer(kc->rk);
	subs = rd_kafka_topic_partition_list_new((int)ntopics);
	for (size_t i = 0; i < ntopics; i++)
		rd_kafka_topic_partition_list_add(subs, topics[i],
						  RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(kc->rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (err) {
		snprintf(errstr, errstr_size, "cannot subscribe: %s",
			 rd_kafka_err2str(err));
		goto err_destroy;
	}
	return kc;
err_destroy:
	rd_kafka_destroy(kc->rk);
err_free:
	free(kc);
	return NULL;
}

/*
 * Drops the messages among MSGS (*N of them) of partitions revoked while
 * they were taken: they are another member's now, or ours again from the
 * last commit on, and a commit of theirs would fail or pass over them.
 */
static void drop_revoked(struct jobd_kafka_consumer *kc,
			 struct jobd_kafka_message *msgs, size_t *n)
{
	size_t kept = 0;

	for (size_t i = 0; i < *n; i++) {
		if (kc->revoked_all ||
		    (kc->revoked &&
		     rd_kafka_topic_partition_list_find(
			     kc->revoked, msgs[i].topic, msgs[i].partition))) {
			rd_kafka_message_destroy(msgs[i].priv);
			continue;
		}
		msgs[kept++] = msgs[i];
	}
	if (kept < *n)
		jobd_debug("kafka: %zu messages of revoked partitions dropped",
			   *n - kept);
	*n = kept;
	if (kc->revoked)
		rd_kafka_topic_partition_list_destroy(kc->revoked);
	kc->revoked = NULL;
	kc->revoked_all = false;
}

void jobd_kafka_consumer_poll(struct jobd_kafka_consumer *kc,
			      struct jobd_kafka_message *msgs, size_t max,
			      size_t *n, int timeout_ms)
{
	int64_t deadline = jobd_util_mono_ms() + timeout_ms;

	*n = 0;
	while (*n < max) {
		int64_t left = deadline - jobd_util_mono_ms();
		rd_kafka_message_t *rkm;

		if (*n == 0 && left <= 0)
			break;
		rkm = rd_kafka_consumer_poll(kc->rk, *n == 0 ? (int)left : 0);
		if (kc->revoked || kc->revoked_all)
			drop_revoked(kc, msgs, n);
		if (!rkm) {
			if (*n > 0)
				break;
			continue;
		}
		if (rkm->err) {
			if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				jobd_warn("kafka: consume: %s",
					  rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			continue;
		}
		msgs[*n] = (struct jobd_kafka_message){
			.topic = rd_kafka_topic_name(rkm->rkt),
			.partition = rkm->partition,
			.offset = rkm->offset,
			.value = rkm->payload,
			.len = rkm->len,
			.key = rkm->key,
			.key_len = rkm->key_len,
			.priv = rkm,
		};
		(*n)++;
	}
}

void jobd_kafka_consumer_on_revoke(struct jobd_kafka_consumer *kc,
				   void (*fn)(void *arg), void *arg)
{
	kc->before_revoke = fn;
	kc->before_revoke_arg = arg;
}

void jobd_kafka_messages_release(struct jobd_kafka_message *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rd_kafka_message_destroy(msgs[i].priv);
		msgs[i].priv = NULL;
	}
}

int jobd_kafka_message_headers(const struct jobd_kafka_message *msg,
			       struct jobd_kafka_header **hdrs, size_t *n)
{
	rd_kafka_headers_t *rh = NULL;
	const char *name;
	const void *value;
	size_t cnt, size;

	*hdrs = NULL;
	*n = 0;
	/* __NOENT: none. A header block librdkafka cannot parse was
	 * accepted by the broker; it is left out rather than stop here. */
	if (!msg->priv || rd_kafka_message_headers(msg->priv, &rh) !=
				  RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	cnt = rd_kafka_header_cnt(rh);
	if (cnt == 0)
		return 0;
	*hdrs = calloc(cnt, sizeof(**hdrs));
	if (!*hdrs)
		return -ENOMEM;
	while (*n < cnt &&
	       rd_kafka_header_get_all(rh, *n, &name, &value, &size) ==
		       RD_KAFKA_RESP_ERR_NO_ERROR) {
		(*hdrs)[*n] = (struct jobd_kafka_header){ name, value, size };
		(*n)++;
	}
	return 0;
}

int jobd_kafka_consumer_commit(struct jobd_kafka_consumer *kc,
			       const struct jobd_kafka_message *msgs, size_t n,
			       char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *offsets;
	rd_kafka_resp_err_t err;
	int rc = 0;

	if (n == 0)
		return 0;
	offsets = rd_kafka_topic_partition_list_new(8);
	for (size_t i = 0; i < n; i++) {
		rd_kafka_topic_partition_t *tp;

		tp = rd_kafka_topic_partition_list_find(offsets, msgs[i].topic,
							msgs[i].partition);
		if (!tp)
			tp = rd_kafka_topic_partition_list_add(
				offsets, msgs[i].topic, msgs[i].partition);
		if (tp->offset < msgs[i].offset + 1)
			tp->offset = msgs[i].offset + 1;
	}
	/*
	 * Asynchronous: the jobs are in Redis already, so a commit that
	 * fails or is lost only makes the batch come again, and its keys
	 * create nothing twice. Waiting for the broker here would hold up
	 * the next batch by a round trip.
	 */
	err = rd_kafka_commit(kc->rk, offsets, 1);
	if (err) {
		snprintf(errstr, errstr_size, "cannot commit offsets: %s",
			 rd_kafka_err2str(err));
		rc = -1;
	}
	rd_kafka_topic_partition_list_destroy(offsets);
	return rc;
}

int jobd_kafka_consumer_pause(struct jobd_kafka_consumer *kc, bool pause)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t err;

	kc->paused = pause;
	err = rd_kafka_assignment(kc->rk, &parts);
	if (!err)
		err = pause ? rd_kafka_pause_partitions(kc->rk, parts) :
			      rd_kafka_resume_partitions(kc->rk, parts);
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		jobd_warn("kafka: cannot %s partitions: %s",
			  pause ? "pause" : "resume", rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

int jobd_kafka_consumer_cluster_id(struct jobd_kafka_consumer *kc,
				   int timeout_ms, char *buf, size_t size)
{
	const struct rd_kafka_metadata *md = NULL;
	const char *epoch = NULL;
	char *id;

	id = rd_kafka_clusterid(kc->rk, timeout_ms);
	if (!id)
		return -1;
	if (rd_kafka_metadata(kc->rk, 1, NULL, &md, timeout_ms) != 0) {
		rd_kafka_mem_free(kc->rk, id);
		return -1;
	}
	for (int i = 0; i < md->topic_cnt; i++)
		if (strncmp(md->topics[i].topic, EPOCH_PREFIX,
			    strlen(EPOCH_PREFIX)) == 0)
			epoch = md->topics[i].topic + strlen(EPOCH_PREFIX);
	if (epoch)
		snprintf(buf, size, "%s.%s", id, epoch);
	else
		snprintf(buf, size, "%s", id);
	rd_kafka_metadata_destroy(md);
	rd_kafka_mem_free(kc->rk, id);
	return 0;
}

void jobd_kafka_consumer_free(struct jobd_kafka_consumer *kc)
{
	rd_kafka_resp_err_t err;

	if (!kc)
		return;
	err = rd_kafka_consumer_close(kc->rk);
	if (err)
		jobd_debug("kafka: consumer close: %s", rd_kafka_err2str(err));
	if (kc->revoked)
		rd_kafka_topic_partition_list_destroy(kc->revoked);
	rd_kafka_destroy(kc->rk);
	free(kc);
}

int64_t jobd_kafka_consumer_lag(struct jobd_kafka_consumer *kc)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	int64_t lag = 0;

	if (rd_kafka_assignment(kc->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    !parts)
		return -1;
	if (parts->cnt == 0) {
		rd_kafka_topic_partition_list_destroy(parts);
		return -1;
	}
	rd_kafka_position(kc->rk, parts);
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &parts->elems[i];
		int64_t lo, hi;

		if (rd_kafka_get_watermark_offsets(kc->rk, p->topic,
						   p->partition, &lo, &hi) !=
			    RD_KAFKA_RESP_ERR_NO_ERROR ||
		    hi < 0)
			continue;
		lag += hi - (p->offset >= 0 ? p->offset : lo);
	}
	rd_kafka_topic_partition_list_destroy(parts);
	return lag;
}
