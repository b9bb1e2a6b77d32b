/*
 * kafka: the librdkafka wrapper (see kafka.h for the contract): building a
 * client's configuration (kafka_int.h), and the consumer. The embedded
 * broker is in mock_broker.c, the producer in producer.c, the readers of
 * a topic in reader.c.
 *
 * Consumer: offsets are committed explicitly with the batch that produced
 * the jobs (enable.auto.commit and enable.auto.offset.store off), so a
 * crash between the Redis write and the commit redelivers the batch and the
 * idempotency keys turn the redelivery into "existed". Batches are polled
 * one message at a time with rd_kafka_consumer_poll rather than
 * rd_kafka_consume_batch_queue: the rebalance callback is then always
 * served between batches, never while one is being turned into jobs.
 */
#include "config.h"

#include "kafka/kafka.h"
#include "kafka/kafka_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka.h"
#include "base/log.h"
#include "base/util.h"

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

int kafka_set(rd_kafka_conf_t *kconf, const char *name, const char *value,
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

rd_kafka_t *kafka_new_consumer(rd_kafka_conf_t *kconf, char *errstr,
			       size_t errstr_size)
{
	rd_kafka_t *rk =
		rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);

	if (!rk) {
		rd_kafka_conf_destroy(kconf);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
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

rd_kafka_conf_t *kafka_new_conf2(const struct jobd_conf *conf,
				 const char *brokers,
				 const char *const *defaults,
				 const char *const *extra, char *errstr,
				 size_t errstr_size)
{
	rd_kafka_conf_t *kconf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(kconf, log_cb);
	rd_kafka_conf_set_error_cb(kconf, error_cb);
	for (size_t i = 0; defaults && defaults[i]; i += 2)
		if (kafka_set(kconf, defaults[i], defaults[i + 1], errstr,
			      errstr_size) < 0)
			goto err_free_conf;
	for (size_t i = 0; extra && extra[i]; i += 2)
		if (kafka_set(kconf, extra[i], extra[i + 1], errstr,
			      errstr_size) < 0)
			goto err_free_conf;
	for (size_t i = 0; conf && i < conf->kafka_props_count; i++)
		if (kafka_set(kconf, conf->kafka_props[i].key,
			      conf->kafka_props[i].value, errstr,
			      errstr_size) < 0)
			goto err_free_conf;
	check_scram(kconf);
	if (brokers && kafka_set(kconf, "bootstrap.servers", brokers, errstr,
				 errstr_size) < 0)
		goto err_free_conf;
	return kconf;
err_free_conf:
	rd_kafka_conf_destroy(kconf);
	return NULL;
}

rd_kafka_conf_t *kafka_new_conf(const struct jobd_conf *conf,
				const char *brokers,
				const char *const *defaults, char *errstr,
				size_t errstr_size)
{
	return kafka_new_conf2(conf, brokers, defaults, NULL, errstr,
			       errstr_size);
}

struct jobd_kafka_consumer {
	rd_kafka_t *rk;
	bool paused; /* pause partitions assigned from now on too */
	void (*before_revoke)(void *arg);
	void *before_revoke_arg;
	/* partitions revoked in the poll under way (all: every one) */
	rd_kafka_topic_partition_list_t *revoked;
	bool revoked_all;
};

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
		jobd_info("kafka: %d partitions assigned", parts->cnt);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		if (coop)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, NULL);
		jobd_info("kafka: %d partitions revoked", parts->cnt);
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

/* A consumer's conf of GROUP: DEFAULTS, then kafka.*, then group.id. */
static rd_kafka_conf_t *group_conf(const struct jobd_conf *conf,
				   const char *brokers,
				   const char *const *defaults,
				   const char *group, char *errstr,
				   size_t errstr_size)
{
	rd_kafka_conf_t *kconf =
		kafka_new_conf(conf, brokers, defaults, errstr, errstr_size);

	if (kconf &&
	    kafka_set(kconf, "group.id", group, errstr, errstr_size) < 0) {
		rd_kafka_conf_destroy(kconf);
		return NULL;
	}
	return kconf;
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
	kconf = group_conf(conf, brokers, defaults, group, errstr, errstr_size);
	if (!kconf)
		goto err_free;
	rd_kafka_conf_set_rebalance_cb(kconf, rebalance_cb);
	rd_kafka_conf_set_opaque(kconf, kc);
	kc->rk = kafka_new_consumer(kconf, errstr, errstr_size);
	kconf = NULL; /* owned by rk, or freed */
	if (!kc->rk)
		goto err_free;
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
		if (strncmp(md->topics[i].topic, JOBD_KAFKA_EPOCH_PREFIX,
			    strlen(JOBD_KAFKA_EPOCH_PREFIX)) == 0)
			epoch = md->topics[i].topic +
				strlen(JOBD_KAFKA_EPOCH_PREFIX);
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

/*
 * The offsets of LIST at "timestamp" WHEN (RD_KAFKA_OFFSET_END: the high
 * watermarks, _BEGINNING: the low ones), one request per leader for all
 * of them, into the OUT field of PARTS. 0 or -1 with errstr.
 */
static int list_offsets(rd_kafka_t *rk,
			const rd_kafka_topic_partition_list_t *list,
			int64_t when, struct jobd_kafka_partition *parts,
			size_t n, bool high, int timeout_ms, char *errstr,
			size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *q =
		rd_kafka_topic_partition_list_copy(list);
	rd_kafka_resp_err_t err;

	for (int i = 0; i < q->cnt; i++)
		q->elems[i].offset = when;
	err = rd_kafka_offsets_for_times(rk, q, timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size,
			 "cannot read the %s watermarks: %s",
			 high ? "high" : "low", rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(q);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const rd_kafka_topic_partition_t *e = &q->elems[i];
		int64_t off = e->err ? -1 : e->offset;

		if (high)
			parts[i].high = off;
		else
			parts[i].low = off;
	}
	rd_kafka_topic_partition_list_destroy(q);
	return 0;
}

/*
 * The committed offsets (of RK's group) and the watermarks of the N
 * partitions of PARTS, asked now; the lag from them. 0 or -1 with errstr.
 */
static int ask_offsets(rd_kafka_t *rk, struct jobd_kafka_partition *parts,
		       size_t n, int timeout_ms, char *errstr,
		       size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t err;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		parts[i].committed = parts[i].low = parts[i].high =
			parts[i].lag = -1;
	if (n == 0)
		return 0;
	list = rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, parts[i].topic,
						  parts[i].partition);
	/* Three requests however many partitions: a broker that does not
	 * answer costs at most three timeouts a refresh. */
	if (list_offsets(rk, list, RD_KAFKA_OFFSET_END, parts, n, true,
			 timeout_ms, errstr, errstr_size) < 0 ||
	    list_offsets(rk, list, RD_KAFKA_OFFSET_BEGINNING, parts, n, false,
			 timeout_ms, errstr, errstr_size) < 0) {
		rc = -1;
		goto out;
	}
	err = rd_kafka_committed(rk, list, timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size,
			 "cannot read the committed offsets: %s",
			 rd_kafka_err2str(err));
		rc = -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct jobd_kafka_partition *p = &parts[i];
		int64_t off = list->elems[i].offset;

		if (!err && list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			p->committed = off >= 0 ? off : -1;
		if (p->high < 0 || (p->committed < 0 && (err || p->low < 0)))
			continue; /* unknown */
		p->lag = p->high - (p->committed >= 0 ? p->committed : p->low);
		if (p->lag < 0)
			p->lag =
				0; /* a commit seen before the watermark moved */
	}
out:
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

void jobd_kafka_consumer_assignment(struct jobd_kafka_consumer *kc,
				    struct jobd_kafka_partition *parts,
				    size_t max, size_t *n)
{
	rd_kafka_topic_partition_list_t *list = NULL;

	*n = 0;
	if (rd_kafka_assignment(kc->rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    !list)
		return;
	for (int i = 0; i < list->cnt && *n < max; i++) {
		struct jobd_kafka_partition *p = &parts[(*n)++];

		snprintf(p->topic, sizeof(p->topic), "%s",
			 list->elems[i].topic);
		p->partition = list->elems[i].partition;
		p->committed = p->low = p->high = p->lag = -1;
	}
	rd_kafka_topic_partition_list_destroy(list);
}

int jobd_kafka_consumer_partitions(struct jobd_kafka_consumer *kc,
				   struct jobd_kafka_partition *parts,
				   size_t max, size_t *n, int timeout_ms,
				   char *errstr, size_t errstr_size)
{
	jobd_kafka_consumer_assignment(kc, parts, max, n);
	return ask_offsets(kc->rk, parts, *n, timeout_ms, errstr, errstr_size);
}

/* --- offsets asked on a handle of their own ---------------------------- */

struct jobd_kafka_offsets {
	rd_kafka_t *rk; /* a consumer handle that never joins its group */
};

struct jobd_kafka_offsets *
jobd_kafka_offsets_new(const struct jobd_conf *conf, const char *brokers,
		       const char *group, char *errstr, size_t errstr_size)
{
	static const char *const defaults[] = {
		"client.id", "jobd-offsets", "enable.auto.commit",
		"false",     NULL,
	};
	struct jobd_kafka_offsets *o;
	rd_kafka_conf_t *kconf;

	o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	kconf = group_conf(conf, brokers, defaults, group, errstr, errstr_size);
	if (!kconf)
		goto err_free;
	o->rk = kafka_new_consumer(kconf, errstr, errstr_size);
	kconf = NULL; /* owned by rk, or freed */
	if (!o->rk)
		goto err_free;
	return o;
err_free:
	free(o);
	return NULL;
}

int jobd_kafka_offsets_ask(struct jobd_kafka_offsets *o,
			   struct jobd_kafka_partition *parts, size_t n,
			   int timeout_ms, char *errstr, size_t errstr_size)
{
	return ask_offsets(o->rk, parts, n, timeout_ms, errstr, errstr_size);
}

void jobd_kafka_offsets_free(struct jobd_kafka_offsets *o)
{
	if (!o)
		return;
	rd_kafka_destroy(o->rk);
	free(o);
}
