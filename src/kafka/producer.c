/*
 * kafka/producer: sending messages with per-message delivery reports
 * (kafka.h, "producer"), and the brokers a producer should use.
 */
#include "config.h"

#include "kafka/kafka.h"
#include "kafka/kafka_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka.h"
#include "base/util.h"
#include "store/store.h"

#define SEND_TIMEOUT_MS 10000

struct jobd_kafka_producer {
	rd_kafka_t *rk;
};

/* The delivery report of one message of a send. */
struct delivery {
	rd_kafka_resp_err_t err;
	bool done;
};

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
	kconf = kafka_new_conf2(conf, brokers, defaults, props, errstr,
				errstr_size);
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
	rc = jobd_store_broker_publish(st, NULL, 0, buf, size);
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
