/*
 * stats: the per-minute statistics producer (see stats_producer.h for the
 * contract, docs/statistics.md for the design and its limits).
 *
 * Each second the thread renews the lease; the holder runs one round:
 *
 *   sync     (new leader, new producer, or after any doubt) the topic's
 *            last message names the last minute published: the marker
 *            moves up to it. This closes the window between a delivery
 *            report and the marker's update that a crash would leave open.
 *   read     the closed minutes after the marker (up to JOBD_STATS_BATCH),
 *            zeros included: every closed minute is one message.
 *   deliver  all of them in order to partition 0 and wait for every
 *            report, renewing the lease meanwhile. The producer is
 *            idempotent and its messages never expire, so a Kafka outage
 *            only makes the wait longer, and librdkafka's retries cannot
 *            duplicate or reorder a minute.
 *   mark     the marker moves to the last acked minute, in a script that
 *            checks the lease (a deposed leader cannot move it).
 *
 * Any failure drops the producer and forces a sync before the next round,
 * after a backoff (100 ms doubling to 5 s). Rejected: Kafka transactions
 * (a transactional.id shared by the instances would fence a deposed
 * leader, but control records take offsets, readers must ask for
 * read_committed, and a single-message publish gains little from them);
 * a marker only (a crash after the ack republishes the minute); the topic
 * only (a new topic, or the embedded broker's restart, would republish
 * the whole retention).
 */
#include "config.h"

#include "kafka/stats_producer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/log.h"
#include "base/util.h"
#include "kafka/kafka.h"
#include "store/stats_marker.h"
#include "store/statsjson.h"
#include "store/store.h"

#define MINUTE_MS 60000
#define TICK_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define TAIL_TIMEOUT_MS 3000 /* reading the topic's last message */
#define STOP_GRACE_MS 5000   /* a delivery's time to finish at stop */

struct jobd_stats_producer {
	const struct jobd_conf *conf; /* borrowed */
	struct jobd_store *st;	      /* this thread's connection */
	struct jobd_kafka_broker *broker;
	struct jobd_kafka_producer *kp; /* NULL until needed, after errors */
	bool leader;	 /* we held the lease at the last renewal */
	bool synced;	 /* the marker includes the topic's end */
	bool redis_down; /* the last renewal got no answer */
	int64_t renewed; /* monotonic ms of the last renewal */
	int64_t backoff; /* ms, 0 after a good round */
	int64_t stop_at; /* monotonic ms when stop was seen, 0 */
	atomic_bool stop;
	pthread_t thread;
};

static void nap(struct jobd_stats_producer *p, int64_t ms)
{
	while (ms > 0 && !atomic_load(&p->stop)) {
		int64_t step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, (long)step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void drop_producer(struct jobd_stats_producer *p)
{
	jobd_kafka_producer_free(p->kp);
	p->kp = NULL;
	p->synced = false;
}

/*
 * Takes or renews the lease. Returns 1 when we hold it, 0 when a peer
 * does, -1 when Redis did not answer (leadership unchanged).
 */
static int renew(struct jobd_stats_producer *p)
{
	int rc = jobd_store_lease(p->st, JOBD_STATS_LEASE, p->conf->instance,
				  JOBD_STATS_LEASE_MS);

	if (rc < 0) {
		if (!p->redis_down)
			jobd_warn("stats: cannot renew the lease: %s",
				  jobd_store_errstr(p->st));
		p->redis_down = true;
		/* A peer may lead meanwhile and crash after an ack: the
		 * next round must look at the topic's end again. */
		p->synced = false;
		return -1;
	}
	if (p->redis_down)
		jobd_info("stats: redis answers again");
	p->redis_down = false;
	if (rc == 1) {
		p->renewed = jobd_util_mono_ms();
		if (!p->leader)
			jobd_info("stats: leading the stats producers "
				  "(instance %s)",
				  p->conf->instance);
		p->leader = true;
		return 1;
	}
	if (p->leader) {
		jobd_info("stats: another instance leads the stats "
			  "producers now");
		drop_producer(p);
	}
	p->leader = false;
	return 0;
}

/* Asked while a delivery waits: keep waiting while we are the leader. */
static bool keep_waiting(void *arg)
{
	struct jobd_stats_producer *p = arg;
	int64_t now = jobd_util_mono_ms();

	if (atomic_load(&p->stop)) {
		if (!p->stop_at)
			p->stop_at = now;
		if (now - p->stop_at >= STOP_GRACE_MS)
			return false;
	}
	switch (renew(p)) {
	case 1:
		return true;
	case 0:
		return false;
	default:
		/* Redis is away: a peer may take the lease once it expires,
		 * so give up well before that. */
		return now - p->renewed < JOBD_STATS_LEASE_MS / 2;
	}
}

/*
 * Moves the marker up to the minute of the topic's last message. Returns
 * 0, or -1 (Kafka or Redis unreachable, the lease lost) with errstr.
 */
static int sync_marker(struct jobd_stats_producer *p, char *errstr,
		       size_t errstr_size)
{
	const char *topic = p->conf->topic_stats;
	int64_t offset, minute;
	char *key = NULL;
	int rc;

	rc = jobd_kafka_last_message(p->conf,
				     jobd_kafka_broker_address(p->broker),
				     topic, 0, TAIL_TIMEOUT_MS, &key, &offset,
				     errstr, errstr_size);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		jobd_debug("stats: %s is empty", topic);
		p->synced = true;
		return 0;
	}
	if (!key || jobd_util_parse_iso(key, &minute) < 0) {
		/* Not ours: nothing to learn from it, nothing to fix. */
		jobd_warn("stats: the last message of %s/0@%lld has no minute "
			  "as its key (\"%s\"): ignored",
			  topic, (long long)offset, key ? key : "");
		free(key);
		p->synced = true;
		return 0;
	}
	jobd_debug("stats: %s ends with minute %s (offset %lld)", topic, key,
		   (long long)offset);
	free(key);
	rc = jobd_stats_marker_advance(p->st, p->conf->instance, minute);
	if (rc < 0) {
		snprintf(errstr, errstr_size, "%s", jobd_store_errstr(p->st));
		return -1;
	}
	if (rc == 0) {
		snprintf(errstr, errstr_size, "lost the lease");
		p->leader = false;
		return -1;
	}
	p->synced = true;
	return 0;
}

static int64_t ceil_minute(int64_t ms)
{
	return (ms + MINUTE_MS - 1) / MINUTE_MS * MINUTE_MS;
}

/*
 * The first minute to publish into *NEXT. Returns 1, 0 when there is
 * nothing yet (no statistics at all), or -1 (Redis).
 */
static int next_minute(struct jobd_stats_producer *p, int64_t *next,
		       char *errstr, size_t errstr_size)
{
	int64_t marker = 0, oldest = 0, now = 0, floor_ms;
	int has_marker, has_oldest;
	char a[JOBD_ISO_SIZE], b[JOBD_ISO_SIZE];

	has_marker = jobd_stats_marker_get(p->st, &marker);
	if (has_marker >= 0)
		has_oldest = jobd_stats_marker_first(p->st, &oldest, &now);
	if (has_marker < 0 || has_oldest < 0) {
		snprintf(errstr, errstr_size, "%s", jobd_store_errstr(p->st));
		return -1;
	}
	/* Minutes before this have expired from Redis with the retention. */
	floor_ms = ceil_minute(now - p->conf->retention_stats);
	if (has_marker)
		*next = marker + MINUTE_MS;
	else if (has_oldest)
		*next = oldest;
	else
		return 0;
	if (*next < floor_ms) {
		if (has_marker)
			jobd_warn("stats: minutes %s to %s are past the stats "
				  "retention: not published",
				  jobd_util_iso(*next, a),
				  jobd_util_iso(floor_ms - MINUTE_MS, b));
		*next = floor_ms;
	}
	return 1;
}

/*
 * Publishes the closed minutes after the marker, up to JOBD_STATS_BATCH.
 * Returns 1 when a full batch went out (more may be waiting), 0 when all
 * closed minutes are published, -1 on an error (errstr).
 */
static int publish(struct jobd_stats_producer *p, char *errstr,
		   size_t errstr_size)
{
	static const char *const props[] = {
		/* never expire: retries keep their sequence numbers */
		"message.timeout.ms", "0", NULL
	};
	struct jobd_kafka_out msgs[JOBD_STATS_BATCH];
	char keys[JOBD_STATS_BATCH][JOBD_ISO_SIZE];
	char *values[JOBD_STATS_BATCH] = { NULL };
	struct jobd_stats s;
	size_t acked = 0;
	int64_t next;
	int rc;

	if (!p->kp) {
		p->kp = jobd_kafka_producer_new_props(
			p->conf, jobd_kafka_broker_address(p->broker), props,
			errstr, errstr_size);
		if (!p->kp)
			return -1;
		p->synced = false;
	}
	if (!p->synced && sync_marker(p, errstr, errstr_size) < 0)
		return -1;
	rc = next_minute(p, &next, errstr, errstr_size);
	if (rc <= 0)
		return rc;
	if (jobd_stats_marker_minutes(p->st, next, JOBD_STATS_BATCH,
				      JOBD_STATS_GRACE_MS, &s) < 0) {
		snprintf(errstr, errstr_size, "%s", jobd_store_errstr(p->st));
		return -1;
	}
	if (s.n == 0)
		return 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct jobd_stats_minute *m = &s.minutes[i];
		size_t len = 0;
		int err = 0;

		jobd_util_iso(m->minute, keys[i]);
		if (p->conf->stats_msgpack) {
			err = jobd_stats_minute_to_msgpack(m, &values[i], &len);
		} else {
			json_t *j = jobd_stats_minute_to_json(m);

			values[i] = j ? json_dumps(j, JSON_COMPACT) : NULL;
			len = values[i] ? strlen(values[i]) : 0;
			json_decref(j);
			err = values[i] ? 0 : -1;
		}
		if (err < 0) {
			snprintf(errstr, errstr_size, "out of memory");
			rc = -1;
			goto out;
		}
		msgs[i] = (struct jobd_kafka_out){
			.topic = p->conf->topic_stats,
			.partition = 0,
			.key = keys[i],
			.key_len = strlen(keys[i]),
			.value = values[i],
			.len = len,
		};
	}
	/* A deposed leader must not send: make sure we hold the lease now. */
	if (renew(p) != 1) {
		snprintf(errstr, errstr_size, "cannot renew the lease");
		rc = -1;
		goto out;
	}
	rc = jobd_kafka_producer_deliver(p->kp, msgs, s.n, keep_waiting, p,
					 &acked, errstr, errstr_size);
	if (rc < 0)
		drop_producer(p);
	if (acked > 0) {
		int mrc = jobd_stats_marker_advance(
			p->st, p->conf->instance, s.minutes[acked - 1].minute);

		if (mrc != 1) {
			/* The topic has them: the next sync finds them. */
			if (rc == 0)
				snprintf(errstr, errstr_size,
					 "cannot move the marker: %s",
					 mrc < 0 ? jobd_store_errstr(p->st) :
						   "lost the lease");
			p->synced = false;
			rc = -1;
		}
		if (acked == 1)
			jobd_info("stats: published minute %s", keys[0]);
		else
			jobd_info("stats: published minutes %s to %s", keys[0],
				  keys[acked - 1]);
	}
	if (rc == 0)
		rc = s.n == JOBD_STATS_BATCH;
out:
	for (size_t i = 0; i < s.n; i++)
		free(values[i]);
	jobd_stats_release(&s);
	return rc;
}

static void *thread_main(void *arg)
{
	struct jobd_stats_producer *p = arg;
	char errstr[512];

	while (!atomic_load(&p->stop)) {
		int64_t started = jobd_util_mono_ms();
		int rc;

		rc = jobd_kafka_broker_tick(p->broker, errstr, sizeof(errstr));
		if (rc < 0)
			jobd_debug("stats: cannot check the broker key: %s",
				   errstr);
		else if (rc == 1)
			drop_producer(p); /* the embedded broker moved */
		rc = renew(p);
		rc = rc == 1 ? publish(p, errstr, sizeof(errstr)) : 0;
		if (rc < 0) {
			p->backoff = jobd_util_backoff(
				p->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
			jobd_warn("stats: %s (retrying in %lld ms)", errstr,
				  (long long)p->backoff);
			nap(p, p->backoff);
			continue;
		}
		p->backoff = 0;
		if (rc == 0)
			nap(p, TICK_MS - (jobd_util_mono_ms() - started));
	}
	return NULL;
}

struct jobd_stats_producer *
jobd_stats_producer_start(const struct jobd_conf *conf, char *errstr,
			  size_t errstr_size)
{
	struct jobd_stats_producer *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	p->conf = conf;
	atomic_init(&p->stop, false);
	p->st = jobd_store_new(conf, errstr, errstr_size);
	if (!p->st)
		goto err_free;
	p->broker = jobd_kafka_broker_new(conf, errstr, errstr_size);
	if (!p->broker)
		goto err_free_store;
	err = pthread_create(&p->thread, NULL, thread_main, p);
	if (err) {
		snprintf(errstr, errstr_size, "cannot start a thread: %s",
			 strerror(err));
		goto err_free_broker;
	}
	jobd_info("stats: publishing closed minutes to %s on %s as %s",
		  conf->topic_stats, jobd_kafka_broker_address(p->broker),
		  conf->stats_msgpack ? "msgpack" : "json");
	return p;
err_free_broker:
	jobd_kafka_broker_free(p->broker);
err_free_store:
	jobd_store_free(p->st);
err_free:
	free(p);
	return NULL;
}

void jobd_stats_producer_stop(struct jobd_stats_producer *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	jobd_kafka_producer_free(p->kp);
	/* Release the lease only now: nothing of ours is in flight. */
	if (p->leader &&
	    jobd_store_lease(p->st, JOBD_STATS_LEASE, p->conf->instance, 0) < 0)
		jobd_warn("stats: cannot release the lease: %s",
			  jobd_store_errstr(p->st));
	jobd_kafka_broker_free(p->broker);
	jobd_store_free(p->st);
	free(p);
}
