/*
 * http/metrics: GET /metrics, the Prometheus text format (docs/monitor.md,
 * "Metrics"): the store's counters and histograms, this instance's
 * workers and consumer, and the monitor's own requests and connections.
 */
#include "config.h"

#include "http/server.h"
#include "http/http_int.h"

#include <event2/buffer.h>
#include <pthread.h>

#include "base/util.h"
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

/*
 * Counters cover the current UTC day (they reset to 0 at midnight, which
 * rate() reads as a counter reset) and the waiting histogram the current
 * UTC hour: both come from the hourly rollups, a few small hashes a scrape.
 */
/* The counters of this instance's own worker pool and consumer. */
static void instance_metrics(struct jobd_http *h, struct evbuffer *b)
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
		metric_head(b, "jobd_workers", "gauge",
			    "Worker threads of this instance.");
		evbuffer_add_printf(b, "jobd_workers %d\n", h->conf->workers);
		metric_head(
			b, "jobd_workers_busy", "gauge",
			"Handlers running now on this instance (worker utilisation = busy / workers).");
		evbuffer_add_printf(b, "jobd_workers_busy %d\n", ws.running);
		metric_head(b, "jobd_workers_busy_low_priority", "gauge",
			    "Of them, running low-priority jobs.");
		evbuffer_add_printf(b, "jobd_workers_busy_low_priority %d\n",
				    ws.running_low);
		metric_head(b, "jobd_workers_queued", "gauge",
			    "Jobs claimed ahead, waiting for a worker.");
		evbuffer_add_printf(b, "jobd_workers_queued %d\n", ws.queued);
		metric_head(b, "jobd_worker_claims_total", "counter",
			    "Jobs claimed by this instance.");
		evbuffer_add_printf(b, "jobd_worker_claims_total %lld\n",
				    (long long)ws.claimed);
		metric_head(b, "jobd_worker_handed_back_total", "counter",
			    "Jobs this instance handed back unfinished.");
		evbuffer_add_printf(b, "jobd_worker_handed_back_total %lld\n",
				    (long long)ws.handed_back);
		metric_head(
			b, "jobd_worker_fenced_total", "counter",
			"Attempts this instance abandoned: fenced off or lease lost.");
		evbuffer_add_printf(b, "jobd_worker_fenced_total %lld\n",
				    (long long)ws.fenced);
	}
	if (have_c) {
		metric_head(
			b, "jobd_consumer_messages_total", "counter",
			"Kafka messages consumed and committed by this instance.");
		evbuffer_add_printf(b, "jobd_consumer_messages_total %llu\n",
				    (unsigned long long)cs.messages);
		metric_head(b, "jobd_consumer_dead_letters_total", "counter",
			    "Messages sent to the dead-letter topic.");
		evbuffer_add_printf(b,
				    "jobd_consumer_dead_letters_total %llu\n",
				    (unsigned long long)cs.dead_lettered);
		metric_head(b, "jobd_consumer_retries_total", "counter",
			    "Batches retried after Redis or Kafka errors.");
		evbuffer_add_printf(b, "jobd_consumer_retries_total %llu\n",
				    (unsigned long long)cs.retries);
		if (cs.lag >= 0) {
			metric_head(
				b, "jobd_consumer_lag", "gauge",
				"Messages not yet consumed on this instance's partitions.");
			evbuffer_add_printf(b, "jobd_consumer_lag %lld\n",
					    (long long)cs.lag);
		}
		metric_head(
			b, "jobd_consumer_paused", "gauge",
			"1 while consumption is paused: pending_limit reached.");
		evbuffer_add_printf(b, "jobd_consumer_paused %d\n",
				    cs.paused ? 1 : 0);
	}
}

/* The monitor's own connections (conn.c). */
static void connection_metrics(struct jobd_http *h, struct evbuffer *b)
{
	struct jobd_httpconn_stats cs;

	jobd_httpconn_stats(h->conns, &cs);
	metric_head(b, "jobd_http_connections", "gauge",
		    "Connections open to this monitor.");
	evbuffer_add_printf(b, "jobd_http_connections %d\n", cs.open);
	metric_head(b, "jobd_http_connections_max", "gauge",
		    "The connection limit ([http] max_connections).");
	evbuffer_add_printf(b, "jobd_http_connections_max %d\n", cs.max);
	metric_head(
		b, "jobd_http_connections_closed_total", "counter",
		"Connections the monitor closed: no whole request by [http] request_timeout, or the oldest at the limit.");
	evbuffer_add_printf(
		b,
		"jobd_http_connections_closed_total{reason=\"deadline\"} %llu\n"
		"jobd_http_connections_closed_total{reason=\"limit\"} %llu\n",
		(unsigned long long)cs.deadline_closed,
		(unsigned long long)cs.limit_closed);
	metric_head(b, "jobd_http_accept_errors_total", "counter",
		    "accept() failures, e.g. out of descriptors.");
	evbuffer_add_printf(b, "jobd_http_accept_errors_total %llu\n",
			    (unsigned long long)cs.accept_errors);
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
	struct jobd_stats s = { 0 };
	struct jobd_stats_counts day = { 0 };
	const struct jobd_stats_counts *hour = NULL;
	int64_t now = jobd_util_now_ms();
	int64_t since = now - now % 86400000 - 3600000;
	bool up;

	if (!http_no_params(q))
		return;
	if (now - since <= 6 * 3600000LL)
		since = now - 7 * 3600000LL; /* hourly rollups */
	st = q->h->st;
	if (!st) {
		char err[512];

		st = q->h->st = jobd_store_new(q->h->conf, err, sizeof(err));
		if (st)
			jobd_store_set_timeout(st, STORE_TIMEOUT);
	}
	up = st && jobd_store_counts(st, counts) == 0 &&
	     jobd_store_stats(st, since, NULL, &s) == 0;
	if (!(b = evbuffer_new())) {
		jobd_stats_release(&s);
		http_send_error(q, 503, "out of memory");
		return;
	}
	metric_head(
		b, "jobd_build_info", "gauge",
		"The version and git revision this instance runs; always 1.");
	evbuffer_add_printf(
		b, "jobd_build_info{version=\"%s\",revision=\"%s\"} 1\n",
		PACKAGE_VERSION, JOBD_REVISION);
	metric_head(b, "jobd_redis_up", "gauge",
		    "Whether the monitor could read Redis for this scrape.");
	evbuffer_add_printf(b, "jobd_redis_up %d\n", up ? 1 : 0);
	if (up) {
		int64_t day_start = s.now - s.now % 86400000;

		for (size_t i = 0; i < s.n; i++) {
			const struct jobd_stats_counts *c = &s.minutes[i].all;

			if (s.minutes[i].minute < day_start)
				continue;
			day.created += c->created;
			day.started += c->started;
			day.finished += c->finished;
			day.errors += c->errors;
		}
		if (s.n)
			hour = &s.minutes[s.n - 1].all;
		metric_head(b, "jobd_jobs", "gauge",
			    "Jobs in each status now.");
		for (int i = 0; i < JOBD_STATUS_COUNT; i++)
			evbuffer_add_printf(b,
					    "jobd_jobs{status=\"%s\"} %lld\n",
					    jobd_status_names[i],
					    (long long)counts[i]);
		metric_head(
			b, "jobd_jobs_created_total", "counter",
			"Jobs created since 00:00 UTC today (resets daily).");
		evbuffer_add_printf(b, "jobd_jobs_created_total %lld\n",
				    (long long)day.created);
		metric_head(
			b, "jobd_jobs_started_total", "counter",
			"Jobs started for the first time since 00:00 UTC today (resets daily).");
		evbuffer_add_printf(b, "jobd_jobs_started_total %lld\n",
				    (long long)day.started);
		metric_head(
			b, "jobd_jobs_finished_total", "counter",
			"Jobs finished since 00:00 UTC today (resets daily).");
		evbuffer_add_printf(b, "jobd_jobs_finished_total %lld\n",
				    (long long)day.finished);
		metric_head(
			b, "jobd_jobs_finished_with_errors_total", "counter",
			"Jobs finished with errors since 00:00 UTC today (resets daily).");
		evbuffer_add_printf(
			b, "jobd_jobs_finished_with_errors_total %lld\n",
			(long long)day.errors);
		metric_head(
			b, "jobd_waiting_seconds", "histogram",
			"Waiting time (creation to first start) of the jobs started in the current UTC hour (resets hourly).");
		if (hour) {
			int64_t cum = 0;

			/* Every 4th log-scale bucket: powers of two. */
			for (int bk = 0; bk < JOBD_STATS_BUCKETS; bk++) {
				cum += hour->hist[bk];
				if (bk % 4 == 3)
					evbuffer_add_printf(
						b,
						"jobd_waiting_seconds_bucket{le=\"%.3f\"} %lld\n",
						((double)(1LL << (bk / 4 + 1)) -
						 1) / 1000.0,
						(long long)cum);
			}
			evbuffer_add_printf(
				b,
				"jobd_waiting_seconds_bucket{le=\"+Inf\"} %lld\n"
				"jobd_waiting_seconds_sum %.3f\n"
				"jobd_waiting_seconds_count %lld\n",
				(long long)hour->started,
				(double)hour->wait_sum / 1000.0,
				(long long)hour->started);
		}
	}
	jobd_stats_release(&s);
	instance_metrics(q->h, b);
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
				"jobd_http_requests_total{code=\"%d\"} %llu\n",
				http_counted_codes[i],
				(unsigned long long)q->h->requests[i]);
		else
			evbuffer_add_printf(
				b,
				"jobd_http_requests_total{code=\"other\"} %llu\n",
				(unsigned long long)q->h->requests[i]);
	}
	connection_metrics(q->h, b);
	http_send_buf(q, 200, "text/plain; version=0.0.4; charset=utf-8", b);
}
