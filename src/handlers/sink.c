/*
 * handlers/sink: the destinations of an import (sink.h).
 *
 * A batch (at most JOBD_HANDLERS_BATCH records) goes to each sink in the
 * payload's order, and the chunk checkpoints only when all took it, so a
 * resumed or retried chunk sends the batch again to all of them:
 *
 * - collection: replaced whole by id in one MULTI (records.c), so a
 *   repeat changes nothing; Redis errors are retried while it is away.
 * - topic: one message per record, keyed by the record id (so a record
 *   always lands on the same partition and compaction keeps its latest
 *   value), the value {"id", fields...}. The batch is produced with the
 *   idempotent producer and every delivery report awaited; a failed
 *   delivery retries the whole batch with a new producer (the brokers are
 *   resolved again: the embedded broker may have moved) after a pause
 *   that doubles up to 30 s, for as long as it takes or until the job is
 *   stopped. Delivery is at-least-once: a
 *   batch repeated after a crash, a failure or a retry is published again,
 *   so readers see duplicates keyed by the same id. Rejected: Kafka
 *   transactions with offsets in the checkpoint (needs a transactional id
 *   per chunk and read_committed readers; librdkafka's mock cluster
 *   supports them only partly).
 * - command: [sink.NAME] gets the batch as NDJSON on stdin (exec
 *   protocol); its "error" lines are job errors, its exit status decides
 *   the batch. It runs in an uninterruptible section: a stop waits for it
 *   to end, so a stop never makes it see a batch twice.
 */
#include "config.h"

#include "handlers/sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "handlers/common.h"
#include "handlers/csv.h"
#include "handlers/exec.h"
#include "handlers/ndjson.h"
#include "handlers/relation.h"
#include "kafka/kafka.h"

#define TOPIC_RETRY_MS 1000	 /* first pause between deliveries, doubled */
#define TOPIC_RETRY_MAX_MS 30000 /* up to this */
#define BROKERS_MAX 4096	 /* bytes of a bootstrap list */

enum sink_kind {
	SINK_COLLECTION,
	SINK_TOPIC,
	SINK_COMMAND,
};

struct sink {
	enum sink_kind kind;
	char *name; /* collection, topic or sink name */
	const struct jobd_sink_conf *command; /* SINK_COMMAND: borrowed */
};

struct jobd_sinks {
	const struct jobd_conf *conf; /* borrowed */
	struct sink *v;
	size_t n;
	char *describe;			      /* "collection a, topic b" */
	struct jobd_kafka_producer *producer; /* made at the first publish */
};

static const char *const kind_names[] = { "collection", "topic", "command" };

static bool valid_topic(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > JOBD_SINK_TOPIC_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return false;
	return strspn(name,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_.-") == len;
}

static bool listed(const struct jobd_conf *conf, const char *name)
{
	for (char **t = conf->topics_allowed; t && *t; t++) {
		size_t len = strlen(*t);

		if (len && (*t)[len - 1] == '*' ?
			    strncmp(*t, name, len - 1) == 0 :
			    strcmp(*t, name) == 0)
			return true;
	}
	return false;
}

bool jobd_sinks_topic_allowed(const struct jobd_conf *conf, const char *name,
			      char *why, size_t why_size)
{
	const char *own;

	if (!valid_topic(name))
		snprintf(why, why_size,
			 "bad topic \"%s\": use 1-249 of A-Z a-z 0-9 _ . -",
			 name ? name : "");
	else if ((own = jobd_conf_own_topic(conf, name)))
		snprintf(why, why_size,
			 "topic \"%s\" is jobd's %s topic ([topics] %s): "
			 "jobs may not read or write it",
			 name, own, own);
	else if (strncmp(name, "__", 2) == 0)
		snprintf(why, why_size,
			 "topic \"%s\" is internal to Kafka: jobs may not "
			 "read or write it",
			 name);
	else if (!listed(conf, name))
		snprintf(why, why_size,
			 "topic \"%s\" is not in [topics] allowed: add it "
			 "there (a name, or a prefix ending in *) to let jobs "
			 "read or write it",
			 name);
	else
		return true;
	return false;
}

/* Adds the sink KIND NAME; 0, or -1 with WHY. */
static int add(struct jobd_sinks *s, enum sink_kind kind, const char *name,
	       char *why, size_t why_size)
{
	const struct jobd_sink_conf *cmd = NULL;
	struct sink *v;
	char *d;

	switch (kind) {
	case SINK_COLLECTION:
		if (!jobd_records_valid_collection(name)) {
			snprintf(why, why_size,
				 "bad collection \"%s\": use 1-200 of A-Z a-z "
				 "0-9 _ . -",
				 name);
			return -1;
		}
		break;
	case SINK_TOPIC:
		if (!jobd_sinks_topic_allowed(s->conf, name, why, why_size))
			return -1;
		break;
	case SINK_COMMAND:
		for (size_t i = 0; i < s->conf->sinks_count; i++)
			if (strcmp(s->conf->sinks[i].name, name) == 0)
				cmd = &s->conf->sinks[i];
		if (!cmd) {
			snprintf(why, why_size,
				 "unknown sink command \"%s\": no [sink.%s] in "
				 "the conf",
				 name, name);
			return -1;
		}
		break;
	}
	v = realloc(s->v, (s->n + 1) * sizeof(*s->v));
	if (!v)
		abort();
	s->v = v;
	s->v[s->n] = (struct sink){ .kind = kind, .command = cmd };
	s->v[s->n].name = strdup(name);
	if (asprintf(&d, "%s%s%s %s", s->describe ? s->describe : "",
		     s->describe ? ", " : "", kind_names[kind], name) < 0 ||
	    !s->v[s->n].name)
		abort();
	s->n++;
	free(s->describe);
	s->describe = d;
	return 0;
}

/* One element of "sink" (AT names it in messages); 0 or -1 with WHY. */
static int add_object(struct jobd_sinks *s, const json_t *o, const char *at,
		      char *why, size_t why_size)
{
	const char *name = NULL;
	int kind = -1;

	if (!json_is_object(o)) {
		snprintf(why, why_size,
			 "%s is not an object like {\"topic\": \"name\"}", at);
		return -1;
	}
	for (int k = 0; k < 3; k++) {
		const json_t *v = json_object_get(o, kind_names[k]);

		if (!v)
			continue;
		if (kind >= 0 || !json_is_string(v)) {
			snprintf(why, why_size,
				 "%s needs exactly one of \"collection\", "
				 "\"topic\" or \"command\", a string",
				 at);
			return -1;
		}
		kind = k;
		name = json_string_value(v);
	}
	if (kind < 0) {
		snprintf(why, why_size,
			 "%s names no \"collection\", \"topic\" or "
			 "\"command\"",
			 at);
		return -1;
	}
	return add(s, (enum sink_kind)kind, name, why, why_size);
}

struct jobd_sinks *jobd_sinks_new(const struct jobd_conf *conf,
				  const json_t *payload, char *why,
				  size_t why_size)
{
	struct jobd_sinks *s = calloc(1, sizeof(*s));
	const json_t *coll = json_object_get(payload, "collection");
	const json_t *sink = json_object_get(payload, "sink");
	char at[64];
	size_t i;
	json_t *v;

	if (!s)
		abort();
	s->conf = conf;
	if (coll && !json_is_string(coll)) {
		snprintf(why, why_size, "\"collection\" is not a string");
		goto err;
	}
	if (coll &&
	    add(s, SINK_COLLECTION, json_string_value(coll), why, why_size) < 0)
		goto err;
	if (json_is_array(sink)) {
		json_array_foreach(sink, i, v)
		{
			snprintf(at, sizeof(at), "\"sink\"[%zu]", i);
			if (add_object(s, v, at, why, why_size) < 0)
				goto err;
		}
	} else if (sink && add_object(s, sink, "\"sink\"", why, why_size) < 0) {
		goto err;
	}
	if (s->n == 0) {
		snprintf(why, why_size,
			 "no \"collection\" or \"sink\" to import into");
		goto err;
	}
	return s;
err:
	jobd_sinks_free(s);
	return NULL;
}

const char *jobd_sinks_describe(const struct jobd_sinks *s)
{
	return s->describe;
}

/* --- collection ------------------------------------------------------------ */

static bool has_relations(const struct jobd_conf *conf, const char *coll)
{
	for (size_t i = 0; i < conf->relations_count; i++)
		if (strcmp(conf->relations[i].source, coll) == 0)
			return true;
	return false;
}

static int write_collection(struct jobd_ctx *ctx, struct jobd_store *st,
			    const char *coll, const struct jobd_record *recs,
			    size_t n, const char *key_base)
{
	struct jobd_record *olds = NULL;
	char **ids = NULL;
	int64_t backoff = 0;
	int ret = 0;

	if (has_relations(jobd_ctx_conf(ctx), coll)) {
		ids = calloc(n, sizeof(*ids));
		if (!ids)
			abort();
		for (size_t i = 0; i < n; i++)
			ids[i] = recs[i].id;
		while (jobd_records_get(st, coll, ids, n, &olds) ==
		       JOBD_STORE_ERR_REDIS)
			if (!jobd_handlers_retry(ctx, st, &backoff)) {
				ret = JOBD_HANDLER_STOPPED;
				goto out;
			}
	}
	for (;;) {
		int rc = jobd_records_put(st, coll, recs, n, NULL, NULL);

		if (rc == 0)
			break;
		if (rc != JOBD_STORE_ERR_REDIS) {
			jobd_ctx_error(ctx,
				       "cannot write %zu records to %s: redis "
				       "refused them (see the jobd log)",
				       n, coll);
			break;
		}
		if (!jobd_handlers_retry(ctx, st, &backoff)) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
	}
	if (olds &&
	    !jobd_handlers_relations(ctx, st, coll, olds, recs, n, key_base))
		ret = JOBD_HANDLER_STOPPED;
out:
	jobd_records_free(olds, olds ? n : 0);
	free(ids);
	return ret;
}

/* --- topic ------------------------------------------------------------------ */

static bool keep_waiting(void *arg)
{
	return !jobd_ctx_abandoned(arg);
}

/* One delivery of the batch; 0 or -1 with WHY. */
static int publish(struct jobd_sinks *s, struct jobd_ctx *ctx,
		   struct jobd_store *st, const struct jobd_kafka_out *msgs,
		   size_t n, char *why, size_t why_size)
{
	char brokers[BROKERS_MAX];
	size_t acked;

	if (!s->producer) {
		if (jobd_kafka_brokers(s->conf, st, brokers, sizeof(brokers),
				       why, why_size) < 0)
			return -1;
		s->producer = jobd_kafka_producer_new(s->conf, brokers, why,
						      why_size);
		if (!s->producer)
			return -1;
	}
	if (jobd_kafka_producer_deliver(s->producer, msgs, n, keep_waiting, ctx,
					&acked, why, why_size) == 0)
		return 0;
	/* deliver's contract: a failed producer is not used again */
	jobd_kafka_producer_free(s->producer);
	s->producer = NULL;
	return -1;
}

static int write_topic(struct jobd_sinks *s, struct jobd_ctx *ctx,
		       struct jobd_store *st, const char *topic,
		       const struct jobd_record *recs, size_t n,
		       const char *lines)
{
	struct jobd_kafka_out *msgs = calloc(n ? n : 1, sizeof(*msgs));
	char **vals = calloc(n ? n : 1, sizeof(*vals));
	int64_t pause = TOPIC_RETRY_MS;
	char why[512];
	int ret = 0;

	if (!msgs || !vals)
		abort();
	for (size_t i = 0; i < n; i++) {
		vals[i] = jobd_record_json(&recs[i]);
		msgs[i] = (struct jobd_kafka_out){
			.topic = topic,
			.partition = -1,
			.key = recs[i].id,
			.key_len = strlen(recs[i].id),
			.value = vals[i],
			.len = strlen(vals[i]),
		};
	}
	/* As the consumers do: a broker away is waited for, never a lost
	 * batch; the job stays in progress, says so in its log, and can be
	 * stopped meanwhile (the batch is not checkpointed). */
	for (int try = 1;; try++) {
		if (publish(s, ctx, st, msgs, n, why, sizeof(why)) == 0)
			break;
		if (jobd_ctx_abandoned(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		jobd_ctx_log(ctx, JOBD_LOG_WARN,
			     "import: cannot publish the records of %s to "
			     "topic %s (try %d, again in %" PRId64 " ms): %s",
			     lines, topic, try, pause, why);
		if (!jobd_ctx_sleep(ctx, pause)) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		pause = jobd_util_backoff(pause, TOPIC_RETRY_MS,
					  TOPIC_RETRY_MAX_MS);
	}
	for (size_t i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	free(msgs);
	return ret;
}

/* --- command ---------------------------------------------------------------- */

struct command_run {
	struct jobd_ctx *ctx;
	const char *name; /* the sink's */
	bool warned;	  /* about a child line */
};

/* Lines of the exec protocol that make no sense for a sink. */
static bool sink_line(void *arg, const char *line, size_t len)
{
	struct command_run *cr = arg;

	if (len >= 9 && strncmp(line, "progress", 8) == 0 &&
	    (line[8] == ' ' || line[8] == '\t'))
		return true; /* the chunk's progress is its rows */
	if (len >= 6 && strncmp(line, "child", 5) == 0 &&
	    (line[5] == ' ' || line[5] == '\t')) {
		if (!cr->warned)
			jobd_ctx_log(cr->ctx, JOBD_LOG_WARN,
				     "import: sink %s: child lines are not "
				     "supported for a sink: ignored",
				     cr->name);
		cr->warned = true;
		return true;
	}
	return false;
}

static int write_command(struct jobd_ctx *ctx, const struct jobd_sink_conf *sc,
			 const struct jobd_record *recs, size_t n,
			 const char *lines)
{
	struct command_run cr = { .ctx = ctx, .name = sc->name };
	struct jobd_exec_spec run = { 0 };
	struct jobd_csv_buf in = { 0 };
	char why[512], *env[2] = { NULL, NULL };
	enum jobd_exec_result res;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		char *s = jobd_record_json(&recs[i]);

		if (jobd_csv_buf_add(&in, s, strlen(s)) < 0 ||
		    jobd_csv_buf_add(&in, "\n", 1) < 0)
			abort();
		free(s);
	}
	if (asprintf(&env[0], "JOBD_SINK=%s", sc->name) < 0)
		abort();
	run.argv = sc->command;
	run.input = in.data ? in.data : "";
	run.input_len = in.len;
	run.env = (const char *const *)env;
	run.line_hook = sink_line;
	run.line_arg = &cr;
	/* A stop waits for the command: it never sees a batch twice. */
	jobd_ctx_uninterruptible_begin(ctx);
	res = jobd_exec_run(ctx, &run, why, sizeof(why));
	jobd_ctx_uninterruptible_end(ctx);
	if (res == JOBD_EXEC_STOPPED)
		ret = JOBD_HANDLER_STOPPED;
	else if (res != JOBD_EXEC_OK)
		ret = jobd_ctx_fail(ctx, "import: sink %s failed on %s: %s",
				    sc->name, lines, why);
	free(env[0]);
	jobd_csv_buf_release(&in);
	return ret;
}

/* --- all of them --------------------------------------------------------------- */

int jobd_sinks_write(struct jobd_sinks *s, struct jobd_ctx *ctx,
		     struct jobd_store *st, const struct jobd_record *recs,
		     size_t n, const char *key_base, const char *lines)
{
	int ret = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < s->n && ret == 0; i++) {
		const struct sink *k = &s->v[i];

		switch (k->kind) {
		case SINK_COLLECTION:
			ret = write_collection(ctx, st, k->name, recs, n,
					       key_base);
			break;
		case SINK_TOPIC:
			ret = write_topic(s, ctx, st, k->name, recs, n, lines);
			break;
		case SINK_COMMAND:
			ret = write_command(ctx, k->command, recs, n, lines);
			break;
		}
	}
	return ret;
}

void jobd_sinks_free(struct jobd_sinks *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	free(s->describe);
	jobd_kafka_producer_free(s->producer);
	free(s);
}
