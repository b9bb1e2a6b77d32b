/*
 * http/metrics: GET /metrics, the Prometheus text format (docs/metrics.md):
 * the store's jobs and counters, this instance's workers, consumer,
 * process and the monitor's own requests and connections.
 *
 * Two kinds of series. The store's (labelled store="PREFIX") are the same
 * from every instance that reads the store: the jobs in each status and
 * the counters since the store began (P:stats:total, incremented by the
 * transitions themselves), which only grow, whatever the clock does: one
 * max by (store, ...) over instances, or one scrape job, counts them
 * once. The instance's (labelled instance="NAME", [engine] instance)
 * count what this process did since it started.
 *
 * Rejected: counters summed from the per-minute statistics (what this
 * file did first): they covered the current UTC day and the waiting
 * histogram the current hour, and fell back to 0 at each boundary,
 * which rate() reads as a reset.
 */
#include "config.h"

#include "http/server.h"
#include "http/http_int.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/proc.h"
#include "engine/worker.h"
#include "http/conn.h"
#include "kafka/consumer.h"
#include "revision.h"
#include "store/store.h"

static void metric_head(struct evbuffer *b, const char *name, const char *type,
			const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			    type);
}

/* V as a label value (backslash, quote and newline escaped) into BUF. */
static const char *label_value(const char *v, char *buf, size_t size)
{
	size_t n = 0;

	for (; *v && n + 3 < size; v++) {
		if (*v == '\\' || *v == '"') {
			buf[n++] = '\\';
			buf[n++] = *v;
		} else if (*v == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *v;
		}
	}
	buf[n] = 0;
	return buf;
}

/* One series of this instance: its HELP and TYPE, then NAME{INST} V. */
static void instance_series(struct evbuffer *b, const char *inst,
			    const char *name, const char *type,
			    const char *help, long long v)
{
	metric_head(b, name, type, help);
	evbuffer_add_printf(b, "%s{%s} %lld\n", name, inst, v);
}

/* The counters of this instance's own worker pool and consumer. */
static void instance_metrics(struct jobd_http *h, struct evbuffer *b,
			     const char *inst)
{
	struct jobd_workers_stats ws;
	struct jobd_consumer_stats cs;
	bool have_w, have_c;

	pthread_mutex_lock(&h->sources_mu);
	have_w = h->workers != NULL;
	have_c = h->consumer != NULL;
	if (have_w)
		jobd_workers_stats(h->workers, &ws);
	if (have_c)
		jobd_consumer_stats(h->consumer, &cs);
	pthread_mutex_unlock(&h->sources_mu);
	if (have_w) {
		instance_series(b, inst, "jobd_workers", "gauge",
				"Worker threads of this instance.",
				h->conf->workers);
		instance_series(
			b, inst, "jobd_workers_busy", "gauge",
			"Handlers running now on this instance (worker utilisation = busy / workers).",
			ws.running);
		instance_series(b, inst, "jobd_workers_busy_low_priority",
				"gauge", "Of them, running low-priority jobs.",
				ws.running_low);
		instance_series(b, inst, "jobd_workers_queued", "gauge",
				"Jobs claimed ahead, waiting for a worker.",
				ws.queued);
		instance_series(b, inst, "jobd_worker_claims_total", "counter",
				"Jobs claimed by this instance.", ws.claimed);
		instance_series(b, inst, "jobd_worker_handed_back_total",
				"counter",
				"Jobs this instance handed back unfinished.",
				ws.handed_back);
		instance_series(
			b, inst, "jobd_worker_fenced_total", "counter",
			"Attempts this instance abandoned: fenced off or lease lost.",
			ws.fenced);
	}
	if (have_c) {
		instance_series(
			b, inst, "jobd_consumer_messages_total", "counter",
			"Kafka messages consumed and committed by this instance.",
			(long long)cs.messages);
		instance_series(b, inst, "jobd_consumer_dead_letters_total",
				"counter",
				"Messages sent to the dead-letter topic.",
				(long long)cs.dead_lettered);
		instance_series(b, inst, "jobd_consumer_retries_total",
				"counter",
				"Batches retried after Redis or Kafka errors.",
				(long long)cs.retries);
		if (cs.lag >= 0) {
			instance_series(
				b, inst, "jobd_consumer_lag", "gauge",
				"Messages not committed yet on this instance's partitions: high watermark minus committed offset, both asked of the brokers each second.",
				cs.lag);
		}
		instance_series(
			b, inst, "jobd_consumer_paused", "gauge",
			"1 while consumption is paused: pending_limit reached.",
			cs.paused ? 1 : 0);
	}
}

/* The monitor's own connections (conn.c). */
static void connection_metrics(struct jobd_http *h, struct evbuffer *b,
			       const char *inst)
{
	struct jobd_httpconn_stats cs;

	jobd_httpconn_stats(h->conns, &cs);
	instance_series(b, inst, "jobd_http_connections", "gauge",
			"Connections open to this monitor.", cs.open);
	instance_series(b, inst, "jobd_http_connections_max", "gauge",
			"The connection limit ([http] max_connections).",
			cs.max);
	metric_head(
		b, "jobd_http_connections_closed_total", "counter",
		"Connections the monitor closed: no whole request by [http] request_timeout, or the oldest at the limit.");
	evbuffer_add_printf(
		b,
		"jobd_http_connections_closed_total{%s,reason=\"deadline\"} %llu\n"
		"jobd_http_connections_closed_total{%s,reason=\"limit\"} %llu\n",
		inst, (unsigned long long)cs.deadline_closed, inst,
		(unsigned long long)cs.limit_closed);
	instance_series(b, inst, "jobd_http_accept_errors_total", "counter",
			"accept() failures, e.g. out of descriptors.",
			(long long)cs.accept_errors);
}

/* The process_* series of the Prometheus client libraries. */
static void process_metrics(struct evbuffer *b, const char *inst)
{
	struct jobd_proc_stats ps;

	if (jobd_proc_stats(&ps) < 0)
		return;
	metric_head(
		b, "process_cpu_seconds_total", "counter",
		"User and system CPU time spent by this process, in seconds.");
	evbuffer_add_printf(b, "process_cpu_seconds_total{%s} %.2f\n", inst,
			    ps.cpu_seconds);
	instance_series(b, inst, "process_resident_memory_bytes", "gauge",
			"Resident memory size of this process, in bytes.",
			ps.resident_bytes);
	instance_series(b, inst, "process_open_fds", "gauge",
			"File descriptors open in this process.", ps.open_fds);
	if (ps.max_fds >= 0)
		instance_series(
			b, inst, "process_max_fds", "gauge",
			"The limit of open file descriptors (RLIMIT_NOFILE).",
			ps.max_fds);
	metric_head(b, "process_start_time_seconds", "gauge",
		    "Start time of this process since the epoch, in seconds.");
	evbuffer_add_printf(b, "process_start_time_seconds{%s} %.2f\n", inst,
			    ps.start_time);
}

/* The store's counters, one series per type. */
static const struct {
	const char *name, *help;
	size_t field; /* offset of an int64_t in struct jobd_stats_counts */
} type_counters[] = {
	{ "jobd_jobs_created_total",
	  "Jobs created since the store began (store-wide).",
	  offsetof(struct jobd_stats_counts, created) },
	{ "jobd_jobs_started_total",
	  "First starts of jobs since the store began (store-wide).",
	  offsetof(struct jobd_stats_counts, started) },
	{ "jobd_jobs_finished_total",
	  "Jobs finished since the store began (store-wide).",
	  offsetof(struct jobd_stats_counts, finished) },
	{ "jobd_jobs_finished_with_errors_total",
	  "Jobs finished with errors since the store began (store-wide).",
	  offsetof(struct jobd_stats_counts, errors) },
};

static int64_t count_of(const struct jobd_stats_counts *c, size_t field)
{
	int64_t v;

	memcpy(&v, (const char *)c + field, sizeof(v));
	return v;
}

/* The store's waiting-time histogram per type: every 4th log-scale
 * bucket of the statistics, the powers of two (le = 2^k - 1 ms). */
static void waiting_histogram(struct evbuffer *b, const char *store,
			      const struct jobd_stats_minute *t)
{
	char ty[256];

	metric_head(
		b, "jobd_waiting_seconds", "histogram",
		"Waiting time (creation or restart to first start) of the jobs started since the store began.");
	for (size_t i = 0; i < t->ntypes; i++) {
		const struct jobd_stats_counts *c = &t->types[i].c;
		int64_t cum = 0;

		label_value(t->types[i].type, ty, sizeof(ty));
		for (int bk = 0; bk < JOBD_STATS_BUCKETS; bk++) {
			cum += c->hist[bk];
			if (bk % 4 == 3)
				evbuffer_add_printf(
					b,
					"jobd_waiting_seconds_bucket{%s,type=\"%s\",le=\"%.3f\"} %lld\n",
					store, ty,
					((double)(1LL << (bk / 4 + 1)) - 1) /
						1000.0,
					(long long)cum);
		}
		evbuffer_add_printf(
			b,
			"jobd_waiting_seconds_bucket{%s,type=\"%s\",le=\"+Inf\"} %lld\n"
			"jobd_waiting_seconds_sum{%s,type=\"%s\"} %.3f\n"
			"jobd_waiting_seconds_count{%s,type=\"%s\"} %lld\n",
			store, ty, (long long)c->started, store, ty,
			(double)c->wait_sum / 1000.0, store, ty,
			(long long)c->started);
	}
}

static int by_type(const void *a, const void *b)
{
	return strcmp(((const struct jobd_stats_type *)a)->type,
		      ((const struct jobd_stats_type *)b)->type);
}

/* The store's series: the same from every instance. */
static void store_metrics(struct evbuffer *b, const char *store,
			  const int64_t *counts, struct jobd_stats_minute *t)
{
	char ty[256];

	metric_head(
		b, "jobd_jobs", "gauge",
		"Jobs in each status now (store-wide: the same from every instance).");
	for (int i = 0; i < JOBD_STATUS_COUNT; i++)
		evbuffer_add_printf(b, "jobd_jobs{%s,status=\"%s\"} %lld\n",
				    store, jobd_status_names[i],
				    (long long)counts[i]);
	if (t->ntypes) /* a store without jobs has no array to sort */
		qsort(t->types, t->ntypes, sizeof(*t->types), by_type);
	for (size_t k = 0; k < sizeof(type_counters) / sizeof(type_counters[0]);
	     k++) {
		metric_head(b, type_counters[k].name, "counter",
			    type_counters[k].help);
		for (size_t i = 0; i < t->ntypes; i++)
			evbuffer_add_printf(
				b, "%s{%s,type=\"%s\"} %lld\n",
				type_counters[k].name, store,
				label_value(t->types[i].type, ty, sizeof(ty)),
				(long long)count_of(&t->types[i].c,
						    type_counters[k].field));
	}
	waiting_histogram(b, store, t);
}

/* Where each type with a limit stands (docs/job-types.md, "Limits"). */
static void limit_metrics(struct evbuffer *b, const char *store,
			  const struct jobd_type_limit *l, size_t n)
{
	static const struct {
		const char *name, *help;
		size_t off;
		bool limit; /* a limit: only where the type has it */
	} series[] = {
		{ "jobd_type_running",
		  "Jobs of a type with a concurrency limit whose handler runs (its slots taken, across all instances).",
		  offsetof(struct jobd_type_limit, running), false },
		{ "jobd_type_concurrency_limit",
		  "The concurrency limit of a type: at most this many run across all instances.",
		  offsetof(struct jobd_type_limit, concurrency), true },
		{ "jobd_type_held",
		  "Pending jobs of a type held back by its limits.",
		  offsetof(struct jobd_type_limit, held), false },
		{ "jobd_type_rate_limit",
		  "The rate limit of a type: at most this many starts per jobd_type_rate_window_seconds.",
		  offsetof(struct jobd_type_limit, rate), true },
		{ "jobd_type_rate_window_seconds",
		  "The window of a type's rate limit.",
		  offsetof(struct jobd_type_limit, rate_ms), true },
		{ "jobd_type_rate_started",
		  "Starts of a type with a rate limit in its last window.",
		  offsetof(struct jobd_type_limit, started), false },
	};
	char ty[256];

	for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
		bool rate = strstr(series[k].name, "rate") != NULL;

		metric_head(b, series[k].name, "gauge", series[k].help);
		for (size_t i = 0; i < n; i++) {
			int64_t v =
				*(const int64_t
					  *)(const void *)((const char *)&l[i] +
							   series[k].off);

			/* A rate series for a rate, the others for a
			 * concurrency (held for either). */
			if (series[k].off !=
				    offsetof(struct jobd_type_limit, held) &&
			    (rate ? l[i].rate <= 0 : l[i].concurrency <= 0))
				continue;
			if (series[k].off ==
			    offsetof(struct jobd_type_limit, rate_ms))
				evbuffer_add_printf(
					b, "%s{%s,type=\"%s\"} %.3f\n",
					series[k].name, store,
					label_value(l[i].type, ty, sizeof(ty)),
					(double)v / 1000.0);
			else
				evbuffer_add_printf(
					b, "%s{%s,type=\"%s\"} %lld\n",
					series[k].name, store,
					label_value(l[i].type, ty, sizeof(ty)),
					(long long)v);
		}
	}
}

void jobd_http_set_sources(struct jobd_http *h, struct jobd_workers *w,
			   struct jobd_consumer *c)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->sources_mu);
	h->workers = w;
	h->consumer = c;
	pthread_mutex_unlock(&h->sources_mu);
}

void http_get_metrics(struct req *q)
{
	struct evbuffer *b;
	struct jobd_store *st;
	int64_t counts[JOBD_STATUS_COUNT];
	struct jobd_stats_minute total = { 0 };
	char inst[300], store[300], v[256];
	bool up;

	if (!http_no_params(q))
		return;
	snprintf(inst, sizeof(inst), "instance=\"%s\"",
		 label_value(q->h->conf->instance, v, sizeof(v)));
	snprintf(store, sizeof(store), "store=\"%s\"",
		 label_value(q->h->conf->prefix, v, sizeof(v)));
	st = q->h->st;
	if (!st) {
		char err[512];

		st = q->h->st = jobd_store_new(q->h->conf, err, sizeof(err));
		if (st)
			jobd_store_set_timeout(st, STORE_TIMEOUT);
	}
	up = st && jobd_store_counts(st, counts) == 0 &&
	     jobd_store_totals(st, &total) == 0;
	if (!(b = evbuffer_new())) {
		jobd_stats_minute_release(&total);
		http_send_error(q, 503, "out of memory");
		return;
	}
	metric_head(
		b, "jobd_build_info", "gauge",
		"The version and git revision this instance runs; always 1.");
	evbuffer_add_printf(
		b, "jobd_build_info{%s,version=\"%s\",revision=\"%s\"} 1\n",
		inst, PACKAGE_VERSION, JOBD_REVISION);
	metric_head(b, "jobd_redis_up", "gauge",
		    "Whether this monitor could read Redis for this scrape.");
	evbuffer_add_printf(b, "jobd_redis_up{%s} %d\n", inst, up ? 1 : 0);
	if (up) {
		struct jobd_type_limit *lim;
		size_t nlim;

		store_metrics(b, store, counts, &total);
		if (jobd_store_limits(st, &lim, &nlim) == 0) {
			limit_metrics(b, store, lim, nlim);
			jobd_store_limits_release(lim, nlim);
		}
	}
	jobd_stats_minute_release(&total);
	instance_metrics(q->h, b, inst);
	process_metrics(b, inst);
	/* This answer counts itself, so the first scrape reads 1, not 0. */
	http_count(q->h, 200);
	q->counted = true;
	metric_head(b, "jobd_http_requests_total", "counter",
		    "HTTP requests answered by this monitor, by status code.");
	for (size_t i = 0; i < HTTP_NCODES; i++) {
		if (!q->h->requests[i])
			continue;
		if (http_counted_codes[i])
			evbuffer_add_printf(
				b,
				"jobd_http_requests_total{%s,code=\"%d\"} %llu\n",
				inst, http_counted_codes[i],
				(unsigned long long)q->h->requests[i]);
		else
			evbuffer_add_printf(
				b,
				"jobd_http_requests_total{%s,code=\"other\"} %llu\n",
				inst, (unsigned long long)q->h->requests[i]);
	}
	connection_metrics(q->h, b, inst);
	http_send_buf(q, 200, "text/plain; version=0.0.4; charset=utf-8", b);
}
