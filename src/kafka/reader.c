/*
 * kafka/reader: reading a topic outside a consumer group: the last message
 * of a partition, and a whole topic from its start to the high watermarks
 * of when the read began (export's topic source).
 */
#include "config.h"

#include "kafka/kafka.h"
#include "kafka/kafka_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka.h"
#include "base/util.h"

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
	kconf = kafka_new_conf(conf, brokers, defaults, errstr, errstr_size);
	if (!kconf)
		return -1;
	rk = kafka_new_consumer(kconf, errstr, errstr_size);
	if (!rk)
		return -1;
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
	kconf = kafka_new_conf(conf, brokers, defaults, errstr, errstr_size);
	if (!kconf)
		goto err_free;
	r->rk = kafka_new_consumer(kconf, errstr, errstr_size);
	kconf = NULL; /* owned by rk, or freed */
	if (!r->rk)
		goto err_free;
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
