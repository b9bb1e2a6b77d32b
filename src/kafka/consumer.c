/*
 * consumer: Kafka messages -> jobs (the "consume" role, consumer.h).
 *
 * One thread owns everything here but the Kafka view (below): the store
 * connection, the broker handle, the group consumer and the dead-letter
 * producer. A batch goes through three stages, each retried on its own
 * until it succeeds (create in Redis, send dead letters, commit), so a
 * Redis or Kafka outage stalls the batch but never skips a message; only
 * a failed commit is not retried (a rebalance: the next owner gets the
 * messages again, and the keys make them "existed").
 *
 * Batches overlap: the creates of up to JOBD_STORE_CREATES_SENT batches
 * are on their way to Redis (jobd_store_create_send) while the next is
 * polled and decoded; then the oldest's reply is read, its dead letters
 * sent and its offsets committed, and the decoded batch's create is sent.
 * Redis thus goes from one create to the next, and decoding, formatting
 * and committing (a third of a message's time when done in turn) hide
 * behind it. Batches are committed in order, and before a rebalance takes
 * their partitions (on_revoke, inside the poll). A create whose reply says
 * anything but the jobs (connection lost, functions to load) is made
 * again the usual way, with its retries, after the replies of the others
 * on their way were read and before anything new is sent.
 *
 * Dead letters (deadletter.h) are sent once each, on a producer that puts
 * each record in a batch of its own: a retry sends only those not acked;
 * one the broker or librdkafka refuses for itself (too large, invalid)
 * goes again at once with its key and headers but no value, then as a
 * reference record, and a refused reference record is dropped with an
 * error line (the message stays on its topic).
 * Anything else (brokers down, a missing ACL) is retried with the
 * batch's backoff: the batch waits and nothing is lost. Before, one dead
 * letter the broker refused held every later message back for good.
 *
 * Key of a job: "<topic>:<id>" when the message has an id, else
 * "<topic>/<partition>@<offset>@<cluster id>": offsets restart at 0 on a
 * new embedded broker, the cluster id (with its start token, mock_broker.c) does
 * not repeat.
 *
 * Backpressure and the embedded broker's key are checked once a second,
 * not per message.
 *
 * The Kafka view (docs/monitor.md, "Kafka view"): once a second a thread
 * of its own asks the brokers for the committed offset and the
 * watermarks of each partition the consumer holds (the lag is high
 * watermark - committed offset, whatever was read: while paused or
 * wedged, the read position and the cached watermarks stand still) and
 * publishes them with the messages/s, dead letters of the last
 * VIEW_MINUTES minutes and whether the consumer is paused to Redis
 * (jobd_store_kafka_view_put), for VIEW_TTL_MS: a dead instance's view
 * expires, a stopped one's is deleted. That thread has its own Redis
 * connection and its own Kafka handle (jobd_kafka_offsets): a Redis that
 * does not answer or a broker slow to tell its offsets (three requests,
 * up to VIEW_TIMEOUT_MS each) costs the view a refresh, never the
 * consumer a poll; on the consumer's handle, a slow answer would also
 * hold back the fetches behind it on the same connection. The consumer
 * thread only copies, once a second, which partitions it holds and the
 * brokers' address (both local, under the lock). Before, the refresh ran
 * on the consumer thread and a Redis outage or a slow broker held
 * consumption up to 1.5 s of each second.
 */
#include "config.h"

#include "kafka/consumer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "base/log.h"
#include "base/util.h"
#include "kafka/codec.h"
#include "kafka/deadletter.h"
#include "kafka/kafka.h"
#include "store/store.h"

#define POLL_MS 50
#define TICK_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CLUSTER_ID_TIMEOUT_MS 5000
#define VIEW_PARTS 256	    /* partitions of an instance in its view */
#define VIEW_MINUTES 5	    /* dead letters counted over these minutes */
#define VIEW_TIMEOUT_MS 500 /* per request for offsets and watermarks */
#define VIEW_TTL_MS 10000   /* a view lives this long unrefreshed */

/* One partition of the Kafka view (guarded by the consumer's lock). */
struct view_part {
	struct jobd_kafka_partition kp;	   /* offsets as last asked */
	uint64_t messages;		   /* committed by us, since start */
	uint64_t messages_then;		   /* at the refresh before */
	double rate;			   /* messages/s between the two */
	int64_t dead_minute[VIEW_MINUTES]; /* minute (ms/60000) of a slot */
	uint64_t dead[VIEW_MINUTES];	   /* dead letters acked in it */
};

/* One message of the batch on its way to a job. */
struct item {
	struct jobd_request req; /* decoded; zeroed when it failed */
	char source[300];	 /* "topic/partition@offset" */
	char *key;		 /* idempotency key, NULL when not decoded */
	char reason[512];	 /* why it is dead-lettered, "" when not */
	int spec;		 /* index in specs, -1 when none */
	enum jobd_deadletter_form least; /* of its dead letter: whole
					  * (or cut) until one is refused */
	bool dead; /* its dead letter was acked, or dropped */
};

/* A batch of messages on its way to jobs. */
struct batch {
	size_t n;  /* messages */
	size_t ns; /* of them decoded into specs */
	struct jobd_kafka_message msgs[JOBD_CONSUMER_BATCH];
	struct item items[JOBD_CONSUMER_BATCH];
	struct jobd_spec specs[JOBD_CONSUMER_BATCH];
	struct jobd_created out[JOBD_CONSUMER_BATCH];
};

struct jobd_consumer {
	const struct jobd_conf *conf; /* borrowed */
	struct jobd_store *st;	      /* this thread's connection */
	struct jobd_kafka_broker *broker;
	struct jobd_kafka_consumer *kc;	 /* NULL while reconnecting */
	struct jobd_kafka_producer *dlq; /* NULL while reconnecting */
	char cluster[256];		 /* key component, "" = not yet */
	bool paused;			 /* backpressure is on */
	int64_t pending;		 /* pending jobs: counted each tick,
					  * plus what we created since */
	bool reconnect;			 /* broker address changed */
	bool abandoned; /* a batch was not committed: commit no later one */
	atomic_bool stop;
	pthread_t thread;

	pthread_mutex_t lock; /* guards stats, the view and what follows */
	struct jobd_consumer_stats stats;
	struct view_part view[VIEW_PARTS]; /* the partitions we hold */
	size_t nview;
	int64_t view_at; /* mono ms of the last refresh */
	struct jobd_kafka_partition held[VIEW_PARTS]; /* assigned, as the
						       * consumer saw last */
	size_t nheld;
	char brokers[1024]; /* the consumer's bootstrap list, "" = none */

	/* The view's thread, and what only it uses. */
	pthread_t view_thread;
	struct jobd_store *view_st;	    /* its own Redis connection */
	struct jobd_kafka_offsets *offsets; /* its own Kafka handle */
	char offsets_brokers[1024];	    /* what OFFSETS was made for */

	/*
	 * While Redis creates the jobs of the batches SENT (oldest first),
	 * another is polled and decoded.
	 */
	struct batch batches[JOBD_STORE_CREATES_SENT + 1];
	struct batch *sent[JOBD_STORE_CREATES_SENT];
	size_t nsent;
};

static void nap(struct jobd_consumer *c, int ms)
{
	while (ms > 0 && !atomic_load(&c->stop)) {
		int step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void count(struct jobd_consumer *c, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&c->lock);
	*field += n;
	pthread_mutex_unlock(&c->lock);
}

static void disconnect(struct jobd_consumer *c)
{
	pthread_mutex_lock(&c->lock);
	c->nheld = 0;
	c->brokers[0] = '\0';
	pthread_mutex_unlock(&c->lock);
	jobd_kafka_consumer_free(c->kc);
	jobd_kafka_producer_free(c->dlq);
	c->kc = NULL;
	c->dlq = NULL;
	c->cluster[0] = '\0';
	c->abandoned = false; /* a new consumer starts at the last commit */
}

static void on_revoke(void *arg);

/*
 * The dead-letter producer (idempotent, as every jobd producer): one
 * record a batch, so that a broker that refuses a batch for its size
 * refuses that dead letter only, not the small ones sent with it.
 */
static int connect_dlq(struct jobd_consumer *c, char *errstr,
		       size_t errstr_size)
{
	static const char *const props[] = { "batch.num.messages", "1", NULL };

	c->dlq = jobd_kafka_producer_new_props(
		c->conf, jobd_kafka_broker_address(c->broker), props, errstr,
		errstr_size);
	return c->dlq ? 0 : -1;
}

static int connect_kafka(struct jobd_consumer *c, char *errstr,
			 size_t errstr_size)
{
	const char *topics[] = { c->conf->topic_events, c->conf->topic_records,
				 c->conf->topic_actions };
	const char *brokers = jobd_kafka_broker_address(c->broker);

	c->kc = jobd_kafka_consumer_new(c->conf, brokers, c->conf->group,
					topics, 3, errstr, errstr_size);
	if (!c->kc)
		return -1;
	jobd_kafka_consumer_on_revoke(c->kc, on_revoke, c);
	if (connect_dlq(c, errstr, errstr_size) < 0) {
		disconnect(c);
		return -1;
	}
	if (c->paused)
		jobd_kafka_consumer_pause(c->kc, true);
	pthread_mutex_lock(&c->lock);
	snprintf(c->brokers, sizeof(c->brokers), "%s", brokers);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * Pauses the partitions above pending_limit pending jobs and resumes them
 * below it. The count is Redis's, read once a second, plus the jobs this
 * consumer created since: a fast topic overshoots the limit by one batch
 * at most, not by a second's worth of messages.
 */
static void backpressure(struct jobd_consumer *c)
{
	bool was = c->paused;

	if (!c->paused && c->pending > c->conf->pending_limit) {
		jobd_info("consumer: %lld jobs pending (limit %lld): pausing",
			  (long long)c->pending,
			  (long long)c->conf->pending_limit);
		c->paused = true;
		if (c->kc)
			jobd_kafka_consumer_pause(c->kc, true);
	} else if (c->paused && c->pending <= c->conf->pending_limit) {
		jobd_info("consumer: %lld jobs pending: resuming",
			  (long long)c->pending);
		c->paused = false;
		if (c->kc)
			jobd_kafka_consumer_pause(c->kc, false);
	}
	if (c->paused != was) {
		pthread_mutex_lock(&c->lock);
		c->stats.paused = c->paused;
		pthread_mutex_unlock(&c->lock);
	}
}

/* The view's entry of TOPIC/PARTITION, added when new; NULL when full.
 * Under the lock. */
static struct view_part *view_of(struct jobd_consumer *c, const char *topic,
				 int32_t partition)
{
	struct view_part *v;

	for (size_t i = 0; i < c->nview; i++)
		if (c->view[i].kp.partition == partition &&
		    strcmp(c->view[i].kp.topic, topic) == 0)
			return &c->view[i];
	if (c->nview == VIEW_PARTS)
		return NULL;
	v = &c->view[c->nview++];
	memset(v, 0, sizeof(*v));
	snprintf(v->kp.topic, sizeof(v->kp.topic), "%s", topic);
	v->kp.partition = partition;
	v->kp.committed = v->kp.low = v->kp.high = v->kp.lag = -1;
	return v;
}

/* Whether the consumer holds TOPIC/PARTITION. Under the lock. */
static bool held(const struct jobd_consumer *c, const char *topic,
		 int32_t partition)
{
	for (size_t i = 0; i < c->nheld; i++)
		if (c->held[i].partition == partition &&
		    strcmp(c->held[i].topic, topic) == 0)
			return true;
	return false;
}

/*
 * Adds TOPIC/PARTITION to what the consumer holds, when missing: a
 * message of it came, so it is ours, even before the next tick asks
 * the consumer for its assignment. Without it, a refresh in between
 * took the partition for one no longer held and dropped its counts
 * (the dead letters of a first batch read within a second of the
 * assignment). The next tick's assignment corrects it. Under the lock.
 */
static void held_add(struct jobd_consumer *c, const char *topic,
		     int32_t partition)
{
	struct jobd_kafka_partition *kp;

	if (held(c, topic, partition) || c->nheld == VIEW_PARTS)
		return;
	kp = &c->held[c->nheld++];
	memset(kp, 0, sizeof(*kp));
	snprintf(kp->topic, sizeof(kp->topic), "%s", topic);
	kp->partition = partition;
	kp->committed = kp->low = kp->high = kp->lag = -1;
}

/* Counts the messages of B, committed, per partition. */
static void view_count_batch(struct jobd_consumer *c, const struct batch *b)
{
	struct view_part *v = NULL;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < b->n; i++) {
		const struct jobd_kafka_message *msg = &b->msgs[i];

		if (!v || v->kp.partition != msg->partition ||
		    strcmp(v->kp.topic, msg->topic) != 0) {
			held_add(c, msg->topic, msg->partition);
			v = view_of(c, msg->topic, msg->partition);
		}
		if (v)
			v->messages++;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Counts a dead letter of MSG acked now. */
static void view_count_dead(struct jobd_consumer *c,
			    const struct jobd_kafka_message *msg)
{
	int64_t minute = jobd_util_now_ms() / 60000;
	struct view_part *v;
	size_t slot = (size_t)(minute % VIEW_MINUTES);

	pthread_mutex_lock(&c->lock);
	held_add(c, msg->topic, msg->partition);
	v = view_of(c, msg->topic, msg->partition);
	if (v) {
		if (v->dead_minute[slot] != minute) {
			v->dead_minute[slot] = minute;
			v->dead[slot] = 0;
		}
		v->dead[slot]++;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Copies which partitions KC holds for the view's thread; local. */
static void view_hold(struct jobd_consumer *c)
{
	struct jobd_kafka_partition *kp;
	size_t n = 0;

	kp = calloc(VIEW_PARTS, sizeof(*kp));
	if (!kp)
		return;
	if (c->kc)
		jobd_kafka_consumer_assignment(c->kc, kp, VIEW_PARTS, &n);
	pthread_mutex_lock(&c->lock);
	memcpy(c->held, kp, n * sizeof(*kp));
	c->nheld = n;
	pthread_mutex_unlock(&c->lock);
	free(kp);
}

/*
 * The view's Kafka handle, for the consumer's brokers (BROKERS): made
 * again when they moved (a new embedded broker). NULL when it cannot be.
 */
static struct jobd_kafka_offsets *view_offsets(struct jobd_consumer *c,
					       const char *brokers)
{
	char errstr[512];

	if (c->offsets && strcmp(c->offsets_brokers, brokers) == 0)
		return c->offsets;
	jobd_kafka_offsets_free(c->offsets);
	c->offsets = jobd_kafka_offsets_new(c->conf, brokers, c->conf->group,
					    errstr, sizeof(errstr));
	if (!c->offsets) {
		jobd_debug("consumer: kafka view: %s", errstr);
		return NULL;
	}
	snprintf(c->offsets_brokers, sizeof(c->offsets_brokers), "%s", brokers);
	return c->offsets;
}

/*
 * Asks the brokers for the offsets of the partitions the consumer holds,
 * keeps them in the view (dropping the partitions no longer held) and
 * sums the lag for /metrics. On the view's thread, the lock not held
 * while asking.
 */
static void view_refresh(struct jobd_consumer *c)
{
	struct jobd_kafka_partition *kp;
	struct jobd_kafka_offsets *o;
	int64_t now, lag = -1;
	struct view_part *kept;
	size_t n = 0, nkept = 0;
	char errstr[512], brokers[sizeof(c->brokers)];

	kp = calloc(VIEW_PARTS, sizeof(*kp));
	kept = calloc(VIEW_PARTS, sizeof(*kept));
	if (!kp || !kept)
		goto out;
	pthread_mutex_lock(&c->lock);
	memcpy(kp, c->held, c->nheld * sizeof(*kp));
	n = c->nheld;
	snprintf(brokers, sizeof(brokers), "%s", c->brokers);
	pthread_mutex_unlock(&c->lock);
	if (!brokers[0])
		goto out; /* the consumer is reconnecting */
	o = view_offsets(c, brokers);
	if (!o)
		goto out;
	if (jobd_kafka_offsets_ask(o, kp, n, VIEW_TIMEOUT_MS, errstr,
				   sizeof(errstr)) < 0)
		jobd_debug("consumer: kafka view: %s", errstr);
	now = jobd_util_mono_ms();
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		struct view_part *v = view_of(c, kp[i].topic, kp[i].partition);

		if (!v)
			continue;
		v->kp = kp[i];
		v->rate = c->view_at && now > c->view_at ?
				  (double)(v->messages - v->messages_then) *
					  1000.0 / (double)(now - c->view_at) :
				  0.0;
		v->messages_then = v->messages;
		if (kp[i].lag >= 0)
			lag = (lag < 0 ? 0 : lag) + kp[i].lag;
	}
	/* What is held now: a partition whose first message came while
	 * we asked is kept with its counts, though not asked yet. */
	for (size_t i = 0; i < c->nview; i++)
		if (held(c, c->view[i].kp.topic, c->view[i].kp.partition))
			kept[nkept++] = c->view[i];
	memcpy(c->view, kept, nkept * sizeof(*kept));
	c->nview = nkept;
	c->view_at = now;
	c->stats.lag = lag;
	pthread_mutex_unlock(&c->lock);
out:
	free(kp);
	free(kept);
}

/* The view as JSON text (caller frees with free()), or NULL. */
static char *view_json(struct jobd_consumer *c)
{
	int64_t minute = jobd_util_now_ms() / 60000;
	json_t *o = json_object(), *parts = json_array();
	char iso[JOBD_ISO_SIZE];
	char *s;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nview; i++) {
		const struct view_part *v = &c->view[i];
		json_t *p = json_object();
		uint64_t dead = 0;

		for (size_t k = 0; k < VIEW_MINUTES; k++)
			if (v->dead_minute[k] > minute - VIEW_MINUTES)
				dead += v->dead[k];
		json_object_set_new(p, "topic", json_string(v->kp.topic));
		json_object_set_new(p, "partition",
				    json_integer(v->kp.partition));
		json_object_set_new(p, "committed",
				    v->kp.committed >= 0 ?
					    json_integer(v->kp.committed) :
					    json_null());
		json_object_set_new(p, "high_watermark",
				    v->kp.high >= 0 ? json_integer(v->kp.high) :
						      json_null());
		json_object_set_new(p, "lag",
				    v->kp.lag >= 0 ? json_integer(v->kp.lag) :
						     json_null());
		json_object_set_new(
			p, "messages_per_s",
			json_real((double)(int64_t)(v->rate * 10 + 0.5) /
				  10.0));
		json_object_set_new(p, "dead_letters",
				    json_integer((json_int_t)dead));
		json_array_append_new(parts, p);
	}
	json_object_set_new(o, "instance", json_string(c->conf->instance));
	json_object_set_new(o, "group", json_string(c->conf->group));
	json_object_set_new(o, "paused", json_boolean(c->stats.paused));
	json_object_set_new(o, "lag",
			    c->stats.lag >= 0 ? json_integer(c->stats.lag) :
						json_null());
	pthread_mutex_unlock(&c->lock);
	json_object_set_new(o, "dead_letters_minutes",
			    json_integer(VIEW_MINUTES));
	json_object_set_new(
		o, "updated_at",
		json_string(jobd_util_iso(jobd_util_now_ms(), iso)));
	json_object_set_new(o, "partitions", parts);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* Publishes the view to Redis; a failure waits for the next tick. */
static void view_publish(struct jobd_consumer *c)
{
	char *s = view_json(c);

	if (!s)
		return;
	if (jobd_store_kafka_view_put(c->view_st, c->conf->instance, s,
				      VIEW_TTL_MS) < 0)
		jobd_debug("consumer: cannot publish the kafka view: %s",
			   jobd_store_errstr(c->view_st));
	free(s);
}

/* The view's thread: a refresh and a publish each TICK_MS. */
static void *view_main(void *arg)
{
	struct jobd_consumer *c = arg;

	while (!atomic_load(&c->stop)) {
		int64_t next = jobd_util_mono_ms() + TICK_MS;

		view_refresh(c);
		if (atomic_load(&c->stop))
			break;
		view_publish(c);
		nap(c, (int)(next - jobd_util_mono_ms()));
	}
	return NULL;
}

/* Once a second: what the view needs, the embedded broker's key, then
 * backpressure. */
static void tick(struct jobd_consumer *c)
{
	int64_t counts[JOBD_STATUS_COUNT];
	char errstr[512];
	int rc;

	view_hold(c);
	rc = jobd_kafka_broker_tick(c->broker, errstr, sizeof(errstr));
	if (rc < 0)
		jobd_debug("consumer: cannot check the broker key: %s", errstr);
	else if (rc == 1)
		c->reconnect = true;
	if (jobd_store_counts(c->st, counts) < 0)
		return; /* keep the current state until Redis answers */
	c->pending = counts[JOBD_PENDING];
	backpressure(c);
}

static int topic_kind(const struct jobd_conf *conf, const char *topic)
{
	if (strcmp(topic, conf->topic_events) == 0)
		return JOBD_TOPIC_EVENTS;
	if (strcmp(topic, conf->topic_records) == 0)
		return JOBD_TOPIC_RECORDS;
	if (strcmp(topic, conf->topic_actions) == 0)
		return JOBD_TOPIC_ACTIONS;
	return -1;
}

static void release_items(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		jobd_codec_request_release(&b->items[i].req);
		free(b->items[i].key);
		b->items[i].key = NULL;
	}
}

static char *make_key(const struct jobd_kafka_message *msg,
		      const struct jobd_request *req, const char *cluster)
{
	char *key = NULL;
	int rc;

	if (req->id) {
		/* "TOPIC:ID", once per message: no printf. */
		size_t t = strlen(msg->topic), n = strlen(req->id);

		key = malloc(t + n + 2);
		if (key) {
			memcpy(key, msg->topic, t);
			key[t] = ':';
			memcpy(key + t + 1, req->id, n + 1);
		}
		return key;
	}
	rc = asprintf(&key, "%s/%d@%lld@%s", msg->topic, (int)msg->partition,
		      (long long)msg->offset, cluster);
	return rc < 0 ? NULL : key;
}

/* "TOPIC/PARTITION@OFFSET" of MSG into BUF (SIZE): once per message, so
 * without printf when it fits (a topic name has at most 249 bytes). */
static void source_text(char *buf, size_t size,
			const struct jobd_kafka_message *msg)
{
	size_t t = strlen(msg->topic);

	if (t + 2 * JOBD_I64_SIZE + 3 > size) {
		snprintf(buf, size, "%s/%d@%lld", msg->topic,
			 (int)msg->partition, (long long)msg->offset);
		return;
	}
	memcpy(buf, msg->topic, t);
	buf[t++] = '/';
	t += jobd_util_i64_text(msg->partition, buf + t);
	buf[t++] = '@';
	t += jobd_util_i64_text(msg->offset, buf + t);
	buf[t] = 0;
}

/*
 * Decodes batch B into items and specs (b->ns of them). Returns 0, or -1
 * when it should be retried (out of memory, no cluster id yet).
 */
static int decode(struct jobd_consumer *c, struct batch *b, char *errstr,
		  size_t errstr_size)
{
	b->ns = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct jobd_kafka_message *msg = &b->msgs[i];
		struct item *it = &b->items[i];
		int kind = topic_kind(c->conf, msg->topic);
		char why[300];
		int rc;

		memset(&it->req, 0, sizeof(it->req));
		it->key = NULL;
		it->reason[0] = '\0';
		it->spec = -1;
		it->least = JOBD_DEADLETTER_WHOLE;
		it->dead = false;
		source_text(it->source, sizeof(it->source), msg);
		if (kind < 0) {
			snprintf(it->reason, sizeof(it->reason),
				 "cannot decode request at %s: not an input "
				 "topic",
				 it->source);
			continue;
		}
		if (!msg->value || msg->len == 0) {
			snprintf(it->reason, sizeof(it->reason),
				 "cannot decode request at %s: empty message",
				 it->source);
			continue;
		}
		rc = jobd_codec_decode((enum jobd_topic_kind)kind, msg->value,
				       msg->len, (size_t)c->conf->max_payload,
				       &it->req, why, sizeof(why));
		if (rc == -ENOMEM) {
			snprintf(errstr, errstr_size,
				 "cannot decode request at %s: out of memory",
				 it->source);
			return -1;
		}
		if (rc < 0) {
			snprintf(it->reason, sizeof(it->reason),
				 "cannot decode request at %s: %s", it->source,
				 why);
			continue;
		}
		if (!it->req.id && !c->cluster[0] &&
		    jobd_kafka_consumer_cluster_id(c->kc, CLUSTER_ID_TIMEOUT_MS,
						   c->cluster,
						   sizeof(c->cluster)) < 0) {
			snprintf(errstr, errstr_size,
				 "cannot read the kafka cluster id");
			return -1;
		}
		it->key = make_key(msg, &it->req, c->cluster);
		if (!it->key) {
			snprintf(errstr, errstr_size, "out of memory");
			return -1;
		}
		it->spec = (int)b->ns;
		b->specs[b->ns++] = (struct jobd_spec){
			.type = it->req.type,
			.key = it->key,
			.source = it->source,
			.payload = it->req.payload,
			/* written by the codec, from a parsed tree */
			.payload_checked = true,
			.run_by = it->req.run_by,
			.low_priority = it->req.low_priority,
			.run_at = it->req.run_at,
			.delay = it->req.delay,
		};
	}
	return 0;
}

/*
 * Creates the jobs of the decoded items. Returns 0 or
 * JOBD_STORE_ERR_REDIS (retry the batch).
 */
static int create(struct jobd_consumer *c, struct batch *b, char *errstr,
		  size_t errstr_size)
{
	size_t ns = b->ns;
	int rc;

	if (ns == 0)
		return 0;
	rc = jobd_store_create(c->st, JOBD_ACTOR_KAFKA, b->specs, ns, b->out);
	if (rc == JOBD_STORE_ERR_INVALID) {
		/* One spec is refused as a whole call: find it. */
		for (size_t i = 0; i < ns; i++) {
			rc = jobd_store_create(c->st, JOBD_ACTOR_KAFKA,
					       &b->specs[i], 1, &b->out[i]);
			if (rc == JOBD_STORE_ERR_INVALID) {
				memset(&b->out[i], 0, sizeof(b->out[i]));
				snprintf(b->out[i].error,
					 sizeof(b->out[i].error), "%s",
					 jobd_store_errstr(c->st));
			} else if (rc < 0) {
				break;
			}
		}
		if (rc == JOBD_STORE_ERR_INVALID)
			rc = 0;
	}
	if (rc < 0) {
		snprintf(errstr, errstr_size, "%s", jobd_store_errstr(c->st));
		return JOBD_STORE_ERR_REDIS;
	}
	return 0;
}

/* Items refused by the store become dead letters too. */
static void collect_refusals(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		const struct jobd_created *out;

		if (it->spec < 0)
			continue;
		out = &b->out[it->spec];
		if (out->id == 0)
			snprintf(it->reason, sizeof(it->reason),
				 "cannot create job at %s: %s", it->source,
				 out->error[0] ? out->error : "refused");
	}
}

/*
 * KEEP of a dead-letter delivery: until jobd stops or the broker's
 * address moves (a dead embedded broker). Asked once a second, it also
 * refreshes our embedded broker's key while the delivery waits.
 */
static bool keep_sending(void *arg)
{
	struct jobd_consumer *c = arg;
	char errstr[512];

	if (atomic_load(&c->stop))
		return false;
	if (jobd_kafka_broker_tick(c->broker, errstr, sizeof(errstr)) == 1) {
		c->reconnect = true;
		return false;
	}
	return true;
}

/* Logs what became of dead letter DL of item IT; true when IT is done. */
static bool dead_letter_fate(struct jobd_consumer *c, struct item *it,
			     const struct jobd_deadletter *dl,
			     enum jobd_kafka_fate fate)
{
	const char *dlq = c->conf->topic_dlq;

	switch (fate) {
	case JOBD_KAFKA_UNSENT:
		return false;
	case JOBD_KAFKA_ACKED:
		if (dl->form == JOBD_DEADLETTER_WHOLE)
			jobd_warn("consumer: dead-lettered to %s: %s", dlq,
				  it->reason);
		else if (dl->form != JOBD_DEADLETTER_REFERENCE)
			jobd_warn("consumer: dead-lettered to %s, its value "
				  "cut to %zu of %zu bytes: %s",
				  dlq, dl->out.len, dl->original, it->reason);
		else
			jobd_warn("consumer: dead-lettered to %s as a "
				  "reference record (%zu bytes at %s): %s",
				  dlq, dl->original, it->source, it->reason);
		count(c, &c->stats.dead_lettered, 1);
		return true;
	case JOBD_KAFKA_TOO_LARGE:
	case JOBD_KAFKA_INVALID:
		break;
	}
	if (dl->form != JOBD_DEADLETTER_REFERENCE) {
		/* The key and headers go again without the value, then
		 * without them. */
		it->least = dl->form == JOBD_DEADLETTER_EMPTIED ?
				    JOBD_DEADLETTER_REFERENCE :
				    JOBD_DEADLETTER_EMPTIED;
		jobd_warn("consumer: %s refused the dead letter of %s (%s, %zu "
			  "bytes): sending %s instead",
			  dlq, it->source,
			  fate == JOBD_KAFKA_TOO_LARGE ? "too large" :
							 "invalid record",
			  jobd_deadletter_size(&dl->out),
			  it->least == JOBD_DEADLETTER_EMPTIED ?
				  "its key and headers without the value" :
				  "a reference record");
		return false;
	}
	jobd_error("consumer: %s refused the reference record of %s too (%s): "
		   "dropped; the message stays at %s: %s",
		   dlq, it->source,
		   fate == JOBD_KAFKA_TOO_LARGE ? "too large" :
						  "invalid record",
		   it->source, it->reason);
	return true;
}

/*
 * Builds the dead letters of the items of B not done yet into DLS and
 * OUT, their items' indexes into OF. Returns how many, or -1 (out of
 * memory).
 */
static ssize_t dead_letters(struct jobd_consumer *c, struct batch *b,
			    struct jobd_deadletter *dls,
			    struct jobd_kafka_out *out, size_t *of)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		struct jobd_kafka_header *hdrs;
		size_t nhdrs;
		int rc;

		if (!it->reason[0] || it->dead)
			continue;
		if (jobd_kafka_message_headers(&b->msgs[i], &hdrs, &nhdrs) < 0)
			goto err_release;
		rc = jobd_deadletter_init(&dls[n], c->conf->topic_dlq,
					  &b->msgs[i], hdrs, nhdrs, it->reason,
					  it->source,
					  (size_t)c->conf->dlq_max_bytes,
					  it->least);
		free(hdrs); /* DLS[N] has their names and values */
		if (rc < 0)
			goto err_release;
		out[n] = dls[n].out;
		of[n++] = i;
	}
	return (ssize_t)n;
err_release:
	while (n > 0)
		jobd_deadletter_release(&dls[--n]);
	return -1;
}

/*
 * Sends the dead letters of batch B that are not done yet, each once: a
 * retry sends only those not acked. One refused for itself (too large
 * for the broker or the topic, invalid) goes again at once without its
 * value, then as a reference record; a refused reference record is
 * dropped. Returns 0
 * when each is done, or -1 (retry later) with errstr.
 */
static int dead_letter(struct jobd_consumer *c, struct batch *b, char *errstr,
		       size_t errstr_size)
{
	struct jobd_deadletter *dls = NULL;
	struct jobd_kafka_out *out = NULL;
	enum jobd_kafka_fate *fates = NULL;
	size_t *of = NULL, todo = 0;
	bool again;
	int rc = -1;

	for (size_t i = 0; i < b->n; i++)
		todo += b->items[i].reason[0] && !b->items[i].dead;
	if (todo == 0)
		return 0; /* most batches: nothing allocated */
	dls = calloc(todo, sizeof(*dls));
	out = calloc(todo, sizeof(*out));
	fates = calloc(todo, sizeof(*fates));
	of = calloc(todo, sizeof(*of));
	if (!dls || !out || !fates || !of) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	do {
		ssize_t n = dead_letters(c, b, dls, out, of);

		again = false;
		if (n < 0) {
			snprintf(errstr, errstr_size, "out of memory");
			rc = -1;
			break;
		}
		if (!c->dlq && connect_dlq(c, errstr, errstr_size) < 0) {
			for (ssize_t k = 0; k < n; k++)
				fates[k] = JOBD_KAFKA_UNSENT;
			rc = -1;
		} else {
			rc = jobd_kafka_producer_send(c->dlq, out, (size_t)n,
						      keep_sending, c, fates,
						      errstr, errstr_size);
		}
		if (rc == -2) {
			/* librdkafka's fatal error: a new producer */
			jobd_kafka_producer_free(c->dlq);
			c->dlq = NULL;
		}
		for (ssize_t k = 0; k < n; k++) {
			struct item *it = &b->items[of[k]];
			enum jobd_deadletter_form least = it->least;

			it->dead = dead_letter_fate(c, it, &dls[k], fates[k]);
			if (fates[k] == JOBD_KAFKA_ACKED)
				view_count_dead(c, &b->msgs[of[k]]);
			again |= it->least != least;
			jobd_deadletter_release(&dls[k]);
		}
	} while (again);
out:
	free(dls);
	free(out);
	free(fates);
	free(of);
	return rc < 0 ? -1 : 0;
}

/* S_CREATED: the jobs are in Redis, refusals not yet collected. */
enum stage { S_DECODE, S_CREATE, S_CREATED, S_DLQ, S_DONE };

/* Runs batch B from STAGE on; returns the stage reached. */
static enum stage run(struct jobd_consumer *c, struct batch *b,
		      enum stage stage, char *errstr, size_t errstr_size)
{
	switch (stage) {
	case S_DECODE:
		release_items(b);
		if (decode(c, b, errstr, errstr_size) < 0)
			return S_DECODE;
		/* fall through */
	case S_CREATE:
		if (create(c, b, errstr, errstr_size) < 0)
			return S_CREATE;
		/* fall through */
	case S_CREATED:
		collect_refusals(b);
		/* fall through */
	case S_DLQ:
		if (dead_letter(c, b, errstr, errstr_size) < 0)
			return S_DLQ;
		/* fall through */
	case S_DONE:
		break;
	}
	return S_DONE;
}

/* Takes batch B from STAGE to its commit, then releases it. */
static void handle_batch(struct jobd_consumer *c, struct batch *b,
			 enum stage stage)
{
	int backoff = BACKOFF_MIN_MS;
	char errstr[512];
	uint64_t created = 0, existed = 0;

	for (;;) {
		stage = run(c, b, stage, errstr, sizeof(errstr));
		if (stage == S_DONE)
			break;
		jobd_warn("consumer: %s: retrying the batch of %zu in %d ms",
			  errstr, b->n, backoff);
		count(c, &c->stats.retries, 1);
		nap(c, backoff);
		if (atomic_load(&c->stop))
			goto abandon; /* uncommitted: consumed again later */
		backoff = (int)jobd_util_backoff(backoff, BACKOFF_MIN_MS,
						 BACKOFF_MAX_MS);
		/* a dead peer broker can stall the dead letters for good */
		if (c->reconnect ||
		    jobd_kafka_broker_tick(c->broker, errstr, sizeof(errstr)) ==
			    1) {
			c->reconnect = true;
			goto abandon;
		}
	}
	/* Not past an earlier batch that was not committed. */
	if (c->abandoned)
		goto out;
	for (size_t i = 0; i < b->ns; i++) {
		if (b->out[i].id && b->out[i].existed)
			existed++;
		else if (b->out[i].id)
			created++;
	}
	if (jobd_kafka_consumer_commit(c->kc, b->msgs, b->n, errstr,
				       sizeof(errstr)) < 0)
		jobd_warn("consumer: %s (the batch will be consumed again)",
			  errstr);
	view_count_batch(c, b);
	pthread_mutex_lock(&c->lock);
	c->stats.messages += b->n;
	c->stats.created += created;
	c->stats.existed += existed;
	pthread_mutex_unlock(&c->lock);
	c->pending += (int64_t)created;
	backpressure(c);
	goto out;
abandon:
	/*
	 * The batches after it, decoded or sent, are not committed either
	 * (a commit of theirs would pass over this one's offsets): the
	 * consumer, once reconnected or restarted, gets them all again.
	 */
	c->abandoned = true;
out:
	release_items(b);
	jobd_kafka_messages_release(b->msgs, b->n);
	b->n = b->ns = 0;
}

/* The create of batch B did not go through: it is made again. */
static void create_again(struct jobd_consumer *c, const struct batch *b)
{
	jobd_warn("consumer: %s: creating the batch of %zu again",
		  jobd_store_errstr(c->st), b->n);
	count(c, &c->stats.retries, 1);
}

/*
 * Reads the reply of the oldest batch sent and takes it to its commit.
 * When its create did not go through, reads the replies of the others
 * sent too, then makes the creates that did not go through again, in
 * order (handle_batch, with its retries).
 */
static void finish_oldest(struct jobd_consumer *c)
{
	bool ok[JOBD_STORE_CREATES_SENT];
	struct batch *b[JOBD_STORE_CREATES_SENT];
	size_t n = c->nsent;

	memcpy(b, c->sent, n * sizeof(*b));
	ok[0] = jobd_store_create_recv(c->st, b[0]->out) == 0;
	if (ok[0]) {
		memmove(c->sent, c->sent + 1, --c->nsent * sizeof(*b));
		handle_batch(c, b[0], S_CREATED);
		return;
	}
	create_again(c, b[0]);
	for (size_t i = 1; i < n; i++)
		ok[i] = jobd_store_create_recv(c->st, b[i]->out) == 0;
	c->nsent = 0;
	for (size_t i = 0; i < n; i++)
		handle_batch(c, b[i], ok[i] ? S_CREATED : S_CREATE);
}

/* Finishes every batch sent: the store is free for other calls. */
static void finish_sent(struct jobd_consumer *c)
{
	while (c->nsent > 0)
		finish_oldest(c);
}

/*
 * Partitions are about to go (a rebalance, inside a poll): the batches
 * sent are committed while they are still ours, as a batch is before the
 * next poll when none is on its way.
 */
static void on_revoke(void *arg)
{
	finish_sent(arg);
}

/* Sends the create of decoded batch B, or takes B through at once. */
static void send_batch(struct jobd_consumer *c, struct batch *b)
{
	if (c->nsent == JOBD_STORE_CREATES_SENT)
		finish_oldest(c);
	if (b->ns > 0 && !atomic_load(&c->stop) && !c->reconnect) {
		if (jobd_store_create_send(c->st, JOBD_ACTOR_KAFKA, b->specs,
					   b->ns, b->out) == 0) {
			c->sent[c->nsent++] = b;
			return;
		}
		create_again(c, b);
	}
	finish_sent(c); /* in order */
	handle_batch(c, b, b->ns > 0 ? S_CREATE : S_CREATED);
}

/* A batch neither sent nor being decoded. */
static struct batch *free_batch(struct jobd_consumer *c)
{
	for (size_t i = 0;; i++) {
		size_t j = 0;

		while (j < c->nsent && c->sent[j] != &c->batches[i])
			j++;
		if (j == c->nsent)
			return &c->batches[i];
	}
}

static void *thread_main(void *arg)
{
	struct jobd_consumer *c = arg;
	int64_t next_tick = 0;
	char errstr[512];
	struct batch *b;

	while (!atomic_load(&c->stop)) {
		if (jobd_util_mono_ms() >= next_tick) {
			finish_sent(c); /* the store is ours again */
			tick(c);
			next_tick = jobd_util_mono_ms() + TICK_MS;
		}
		if (c->reconnect) {
			finish_sent(c); /* its messages are the consumer's */
			disconnect(c);
			c->reconnect = false;
		}
		if (!c->kc && connect_kafka(c, errstr, sizeof(errstr)) < 0) {
			jobd_warn("consumer: %s", errstr);
			nap(c, TICK_MS);
			continue;
		}
		b = free_batch(c);
		/* With creates on their way, take what is there and go on. */
		jobd_kafka_consumer_poll(c->kc, b->msgs, JOBD_CONSUMER_BATCH,
					 &b->n, c->nsent ? 1 : POLL_MS);
		if (b->n == 0) {
			finish_sent(c);
			continue;
		}
		if (decode(c, b, errstr, sizeof(errstr)) < 0) {
			finish_sent(c);
			handle_batch(c, b, S_DECODE);
			continue;
		}
		send_batch(c, b);
	}
	finish_sent(c);
	return NULL;
}

struct jobd_consumer *jobd_consumer_start(const struct jobd_conf *conf,
					  char *errstr, size_t errstr_size)
{
	struct jobd_consumer *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	c->conf = conf;
	atomic_init(&c->stop, false);
	pthread_mutex_init(&c->lock, NULL);
	c->st = jobd_store_new(conf, errstr, errstr_size);
	if (!c->st)
		goto err_free;
	/* Offsets are committed after the create: it must survive a
	 * failover to a replica first ([redis] wait_replicas). */
	jobd_store_set_create_wait(c->st, true);
	c->view_st = jobd_store_new(conf, errstr, errstr_size);
	if (!c->view_st)
		goto err_free_store;
	c->broker = jobd_kafka_broker_new(conf, errstr, errstr_size);
	if (!c->broker)
		goto err_free_view_store;
	if (connect_kafka(c, errstr, errstr_size) < 0)
		goto err_free_broker;
	err = pthread_create(&c->thread, NULL, thread_main, c);
	if (err) {
		snprintf(errstr, errstr_size, "cannot start a thread: %s",
			 strerror(err));
		goto err_disconnect;
	}
	err = pthread_create(&c->view_thread, NULL, view_main, c);
	if (err) {
		snprintf(errstr, errstr_size, "cannot start a thread: %s",
			 strerror(err));
		atomic_store(&c->stop, true);
		pthread_join(c->thread, NULL);
		goto err_disconnect;
	}
	jobd_info("consumer: group \"%s\" on %s, topics %s, %s, %s",
		  conf->group, jobd_kafka_broker_address(c->broker),
		  conf->topic_events, conf->topic_records, conf->topic_actions);
	return c;
err_disconnect:
	disconnect(c);
err_free_broker:
	jobd_kafka_broker_free(c->broker);
err_free_view_store:
	jobd_store_free(c->view_st);
err_free_store:
	jobd_store_free(c->st);
err_free:
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

void jobd_consumer_stats(struct jobd_consumer *c,
			 struct jobd_consumer_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}

void jobd_consumer_stop(struct jobd_consumer *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
	pthread_join(c->view_thread, NULL);
	/* gone at once, not a TTL later */
	if (jobd_store_kafka_view_drop(c->view_st, c->conf->instance) < 0)
		jobd_debug("consumer: cannot delete the kafka view: %s",
			   jobd_store_errstr(c->view_st));
	disconnect(c);
	jobd_kafka_offsets_free(c->offsets);
	jobd_kafka_broker_free(c->broker);
	jobd_store_free(c->view_st);
	jobd_store_free(c->st);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
