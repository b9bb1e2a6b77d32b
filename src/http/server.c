/*
 * http/server: the monitor's server. One thread runs an evhttp loop and owns one
 * store connection; each request is parsed, checked (method, parameters,
 * token, body) and answered with a few bounded store calls, so a slow
 * Redis delays the monitor but nothing else of jobd.
 *
 * Every answer of the API is JSON. User input never causes a 5xx: ids,
 * filters, times, regexes and bodies are validated first (parse.c,
 * which takes plain bytes so that it can be fuzzed) and refused with a
 * 4xx saying what was wrong; 503 means Redis is unreachable (the store
 * reconnects on the next call). The store is created lazily, so the
 * page loads and /metrics answers while Redis is down.
 *
 * Limits: a query of at most 8 KiB and a body of at most 1 MiB get a JSON
 * refusal; past 64 KiB of headers or 8 MiB of body, evhttp itself refuses
 * the request (400/413 with its own HTML text) before it reaches us.
 * Connections are bounded in number and each has [http] request_timeout
 * to send a request (conn.c).
 *
 * Security: a request whose Host is not an address, localhost or a name
 * of [http] allowed_hosts gets 421, whatever it asks: a page of another
 * site that its DNS points at 127.0.0.1 (DNS rebinding) would otherwise be
 * same-origin with the monitor in the browser, read it, and pass the Origin
 * check below. With [http] token or [users] tokens configured, POSTs (and
 * reads with read_requires_token) need "Authorization: Bearer TOKEN",
 * compared in constant time; the main token acts as "admin", a [users]
 * token as its name. Without tokens the actor is X-Jobd-User or "http". A
 * browser POST from another origin is refused (the body is parsed as JSON
 * whatever its Content-Type, so a cross-site form could otherwise submit
 * an operation). The page is served with a CSP allowing only its own
 * script and style, and it inserts data with textContent only.
 *
 * Rejected: libmicrohttpd (not in the floor's dependency set) and one
 * thread per request (the store is blocking, one connection per thread;
 * an operator's monitor does not need parallel requests).
 */
#include "config.h"

#include "http/server.h"
#include "http/http_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/job.h"
#include "base/log.h"
#include "base/util.h"
#include "engine/scheduler.h"
#include "http/conn.h"
#include "http/page.h"
#include "http/parse.h"
#include "http/tls.h"
#include "store/statsjson.h"
#include "store/store.h"

#define MAX_HEADERS (64 * 1024)		/* evhttp's own limit */
#define MAX_BODY_HARD (8 * 1024 * 1024) /* evhttp's own limit */

static const char page_csp[] =
	"default-src 'none'; script-src 'self'; style-src 'self'; "
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
	"form-action 'none'; frame-ancestors 'none'";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* --- answers ------------------------------------------------------------ */

static void send_store_error(struct req *q, int rc)
{
	if (rc == JOBD_STORE_ERR_INVALID)
		http_send_error(q, 400, "%s", jobd_store_errstr(q->h->st));
	else
		http_send_error(q, 503, "%s", jobd_store_errstr(q->h->st));
}

/* The store, connecting on first use; NULL after answering 503. */
static struct jobd_store *store(struct req *q)
{
	char err[512];

	if (q->h->st)
		return q->h->st;
	q->h->st = jobd_store_new(q->h->conf, err, sizeof(err));
	if (!q->h->st) {
		http_send_error(q, 503, "%s", err);
		return NULL;
	}
	jobd_store_set_timeout(q->h->st, STORE_TIMEOUT);
	return q->h->st;
}

/* --- parameters ---------------------------------------------------------- */

/* --- reading jobs ---------------------------------------------------------- */

static void get_jobs(struct req *q)
{
	struct jobd_filter f;
	struct jobd_job_list list;
	struct jobd_store *st;
	char err[512];
	int rc;

	rc = jobd_httpparse_jobs(&q->qs, q->h->conf, &f, err, sizeof(err));
	if (rc) {
		http_refuse(q, rc, err, 400);
		return;
	}
	if (!(st = store(q)))
		return;
	if ((rc = jobd_store_list(st, &f, &list)) < 0) {
		send_store_error(q, rc);
		return;
	}
	http_send_json(q, 200, jobd_job_list_to_json(&list));
	jobd_job_list_release(&list);
}

/* Answers the error of a store call on job ID: true when RC was one. */
static bool job_failed(struct req *q, int rc, int64_t id)
{
	if (rc == JOBD_STORE_ERR_NOTFOUND)
		http_send_error(q, 404, "job %lld not found", (long long)id);
	else if (rc < 0)
		send_store_error(q, rc);
	return rc < 0;
}

static void get_job(struct req *q, int64_t id)
{
	struct jobd_store *st;
	struct jobd_job *job;
	int64_t now;
	int rc;

	if (!http_no_params(q) || !(st = store(q)))
		return;
	rc = jobd_store_get(st, id, &job, &now);
	if (job_failed(q, rc, id))
		return;
	http_send_json(q, 200, jobd_job_to_json(job, now));
	jobd_job_free(job);
}

/* GET /api/jobs/ID/why: why a pending job has not started. */
static void get_why(struct req *q, int64_t id)
{
	struct jobd_store *st;
	struct jobd_why w;
	int rc;

	if (!http_no_params(q) || !(st = store(q)))
		return;
	rc = jobd_store_why(st, id, &w);
	if (job_failed(q, rc, id))
		return;
	http_send_json(q, 200, jobd_why_to_json(&w));
}

static void get_children(struct req *q, int64_t id)
{
	struct jobd_job_list list;
	struct jobd_store *st;
	int64_t cursor;
	size_t limit;
	char err[512];
	int rc;

	rc = jobd_httpparse_children(&q->qs, &cursor, &limit, err, sizeof(err));
	if (rc) {
		http_refuse(q, rc, err, 400);
		return;
	}
	if (!(st = store(q)))
		return;
	rc = jobd_store_children(st, id, cursor, limit, &list);
	if (job_failed(q, rc, id))
		return;
	http_send_json(q, 200, jobd_job_list_to_json(&list));
	jobd_job_list_release(&list);
}

/* --- logs ---------------------------------------------------------------- */

static json_t *logs_to_json(const struct jobd_log_result *res, bool all)
{
	json_t *o = json_object();
	json_t *a = json_array();
	char iso[JOBD_ISO_SIZE];

	for (size_t i = 0; i < res->n; i++) {
		const struct jobd_log_entry *e = &res->entries[i];
		json_t *j = json_object();
		json_t *msg = json_string(e->msg);

		json_object_set_new(j, "id", json_string(e->sid));
		json_object_set_new(j, "job", json_integer(e->job));
		json_object_set_new(j, "time",
				    json_string(jobd_util_iso(e->ms, iso)));
		json_object_set_new(j, "level",
				    json_string(level_names[e->level & 3]));
		json_object_set_new(j, "attempt", json_integer(e->attempt));
		/* A handler may log bytes that are not UTF-8: keep them readable. */
		if (!msg) {
			char *s = strdup(e->msg);

			for (char *p = s; p && *p; p++)
				if ((unsigned char)*p >= 0x80)
					*p = '?';
			msg = json_string(s ? s : "");
			free(s);
		}
		json_object_set_new(j, "message", msg);
		json_array_append_new(a, j);
	}
	json_object_set_new(o, "entries", a);
	json_object_set_new(o, "dropped", json_integer(res->dropped));
	json_object_set_new(o, "truncated", json_boolean(res->truncated));
	if (all) {
		/* A page of the search across jobs: the rest is asked for
		 * with cursor=next, each page bounded in cost (store.h). */
		json_object_set_new(o, "next",
				    res->next[0] ? json_string(res->next) :
						   json_null());
		json_object_set_new(o, "scanned",
				    json_integer((json_int_t)res->scanned));
	}
	return o;
}

/* Logs of job ID, or of all jobs when ID is 0 (GET /api/logs). */
static void get_logs(struct req *q, int64_t id)
{
	struct jobd_httpparse_logs lp;
	struct jobd_log_result res;
	struct jobd_store *st;
	char err[512];
	int rc;

	rc = jobd_httpparse_logs(&q->qs, id != 0, jobd_util_now_ms(), &lp, err,
				 sizeof(err));
	if (rc) {
		http_refuse(q, rc, err, 400);
		goto out;
	}
	if (!(st = store(q)))
		goto out;
	rc = id ? jobd_store_logs(st, id, &lp.lq, &res) :
		  jobd_store_logs_all(st, &lp.lq, &res);
	if (rc == JOBD_STORE_ERR_NOTFOUND)
		http_send_error(q, 404, "job %lld not found", (long long)id);
	else if (rc < 0)
		send_store_error(q, rc);
	else {
		http_send_json(q, 200, logs_to_json(&res, id == 0));
		jobd_log_result_release(&res);
	}
out:
	jobd_httpparse_logs_release(&lp);
}

/* --- statistics, counts, types --------------------------------------------- */

static void get_stats(struct req *q)
{
	struct jobd_stats s;
	struct jobd_store *st;
	const char *type;
	int64_t since;
	char err[512];
	int rc;

	rc = jobd_httpparse_stats(&q->qs, q->h->conf, jobd_util_now_ms(),
				  &since, &type, err, sizeof(err));
	if (rc) {
		http_refuse(q, rc, err, 400);
		return;
	}
	if (!(st = store(q)))
		return;
	if ((rc = jobd_store_stats(st, since, type, &s)) < 0) {
		send_store_error(q, rc);
		return;
	}
	http_send_json(q, 200, jobd_stats_to_json(&s));
	jobd_stats_release(&s);
}

static void get_counts(struct req *q)
{
	int64_t counts[JOBD_STATUS_COUNT];
	struct jobd_store *st;
	json_t *o;
	int rc;

	if (!http_no_params(q) || !(st = store(q)))
		return;
	if ((rc = jobd_store_counts(st, counts)) < 0) {
		send_store_error(q, rc);
		return;
	}
	o = json_object();
	for (int i = 0; i < JOBD_STATUS_COUNT; i++)
		json_object_set_new(o, jobd_status_names[i],
				    json_integer(counts[i]));
	http_send_json(q, 200, o);
}

/*
 * [schedule.NAME] sections with their next run and last job
 * (docs/schedules.md): {"schedules": [...]}.
 */
static void get_schedules(struct req *q)
{
	struct jobd_store *st;
	json_t *list;

	if (!http_no_params(q) || !(st = store(q)))
		return;
	if (!(list = jobd_schedules_json(q->h->conf, st))) {
		send_store_error(q, JOBD_STORE_ERR_REDIS);
		return;
	}
	http_send_json(q, 200, json_pack("{s:o}", "schedules", list));
}

/*
 * The Kafka view: what every live instance with the consume role
 * published of its partitions (store/kafka_view.c), by instance name.
 */
static int by_instance(const void *a, const void *b)
{
	const char *x = json_string_value(
		json_object_get(*(json_t *const *)a, "instance"));
	const char *y = json_string_value(
		json_object_get(*(json_t *const *)b, "instance"));

	return strcmp(x ? x : "", y ? y : "");
}

static void get_kafka(struct req *q)
{
	struct jobd_store *st;
	char **views;
	json_t **sorted, *o, *a;
	size_t n, m = 0;
	int rc;

	if (!http_no_params(q) || !(st = store(q)))
		return;
	if ((rc = jobd_store_kafka_views(st, &views, &n)) < 0) {
		send_store_error(q, rc);
		return;
	}
	sorted = calloc(n + 1, sizeof(*sorted));
	if (!sorted) {
		jobd_store_kafka_views_free(views, n);
		http_send_error(q, 503, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_loads(views[i], 0, NULL);

		if (json_is_object(v))
			sorted[m++] = v;
		else
			json_decref(v); /* not jobd's: left out */
	}
	jobd_store_kafka_views_free(views, n);
	qsort(sorted, m, sizeof(*sorted), by_instance);
	a = json_array();
	for (size_t i = 0; i < m; i++)
		json_array_append_new(a, sorted[i]);
	free(sorted);
	o = json_object();
	json_object_set_new(o, "instances", a);
	http_send_json(q, 200, o);
}

/* The configured types and their policies, for the page's filters. */
static void get_types(struct req *q)
{
	const struct jobd_conf *conf = q->h->conf;
	json_t *o, *a;

	if (!http_no_params(q))
		return;
	o = json_object();
	a = json_array();
	jobd_conf_rdlock(conf); /* a reload may swap the types */
	for (size_t i = 0; i < conf->types_count; i++) {
		const struct jobd_type_conf *t = &conf->types[i];
		json_t *j = json_object();

		json_object_set_new(j, "name", json_string(t->name));
		json_object_set_new(j, "system", json_boolean(t->system));
		json_object_set_new(j, "stoppable", json_boolean(t->stoppable));
		json_object_set_new(j, "restartable",
				    json_boolean(t->restartable));
		json_array_append_new(a, j);
	}
	jobd_conf_unlock(conf);
	json_object_set_new(o, "types", a);
	http_send_json(q, 200, o);
}

/* --- POST bodies ----------------------------------------------------------- */

/* The body as a JSON object, or NULL after answering 4xx. */
static json_t *read_body(struct req *q)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
	size_t len = evbuffer_get_length(in);
	json_t *body;
	char err[512];
	int rc;

	/* Past the limit, pulling the body up would only copy it. */
	rc = jobd_httpparse_body(len > JOBD_HTTPPARSE_MAX_BODY ?
					 NULL :
					 (const char *)evbuffer_pullup(in, -1),
				 len, &body, err, sizeof(err));
	if (rc) {
		http_refuse(q, rc, err, 413);
		return NULL;
	}
	return body;
}

static void post_jobs(struct req *q)
{
	struct jobd_httpparse_submit sub;
	struct jobd_spec *specs = NULL;
	struct jobd_created *out = NULL;
	char **keys = NULL;
	json_t *body, *ids, *existed, *res;
	struct jobd_store *st;
	int64_t n;
	int rc, code = 201;
	const char *refused = NULL;
	char err[512];

	if (!(body = read_body(q)))
		return;
	rc = jobd_httpparse_submit(body, q->h->conf, &sub, err, sizeof(err));
	if (rc) {
		http_refuse(q, rc, err, 400);
		goto out_body;
	}
	n = sub.count;
	if (!sub.spec.run_by)
		sub.spec.run_by = q->actor;
	if (!(st = store(q)))
		goto out_body;
	specs = calloc((size_t)n, sizeof(*specs));
	out = calloc((size_t)n, sizeof(*out));
	keys = calloc((size_t)n, sizeof(*keys));
	if (!specs || !out || !keys) {
		http_send_error(q, 503, "out of memory for %lld jobs",
				(long long)n);
		goto out_free;
	}
	for (int64_t i = 0; i < n; i++) {
		specs[i] = sub.spec;
		/* Like jobctl --count: key K names the jobs K-1, K-2, ... */
		if (sub.spec.key && n > 1) {
			if (asprintf(&keys[i], "%s-%lld", sub.spec.key,
				     (long long)i + 1) < 0) {
				keys[i] = NULL;
				http_send_error(q, 503, "out of memory");
				goto out_free;
			}
			specs[i].key = keys[i];
		}
	}
	if ((rc = jobd_store_create(st, q->actor, specs, (size_t)n, out)) < 0) {
		send_store_error(q, rc);
		goto out_free;
	}
	res = json_object();
	ids = json_array();
	existed = json_array();
	for (int64_t i = 0; i < n; i++) {
		if (out[i].error[0]) {
			refused = refused ? refused : out[i].error;
			continue;
		}
		json_array_append_new(ids, json_integer(out[i].id));
		json_array_append_new(existed, json_boolean(out[i].existed));
	}
	json_object_set_new(res, "ids", ids);
	json_object_set_new(res, "existed", existed);
	if (refused) {
		code = strstr(refused, "not found") ? 404 : 409;
		json_object_set_new(res, "error", json_string(refused));
	}
	http_send_json(q, code, res);
out_free:
	for (int64_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
	free(specs);
	free(out);
out_body:
	jobd_httpparse_submit_release(&sub);
	json_decref(body);
}

static void post_ops(struct req *q)
{
	struct jobd_op_result *out = NULL;
	int64_t *ids = NULL;
	struct jobd_store *st;
	const char *name;
	json_t *body, *res, *results;
	size_t n, i;
	char buf[80], err[512];
	int op, rc;

	if (!(body = read_body(q)))
		return;
	if ((rc = jobd_httpparse_op(body, &name, err, sizeof(err)))) {
		http_refuse(q, rc, err, 400);
		goto out_body;
	}
	if ((op = jobd_op_parse(name)) < 0) {
		http_send_error(
			q, 400,
			"unknown op \"%s\": use stop, resume, force-stop, cancel, restart, low-priority or low-priority-off",
			jobd_httpparse_quote(name, buf, sizeof(buf)));
		goto out_body;
	}
	if ((rc = jobd_httpparse_ids(body, &ids, &n, err, sizeof(err)))) {
		http_refuse(q, rc, err, 400);
		goto out_body;
	}
	if (!(st = store(q)))
		goto out_free;
	out = calloc(n, sizeof(*out));
	if (!out) {
		http_send_error(q, 503, "out of memory for %zu ids", n);
		goto out_free;
	}
	if ((rc = jobd_store_op(st, (enum jobd_op)op, q->actor, ids, n, out)) <
	    0) {
		send_store_error(q, rc);
		goto out_free;
	}
	res = json_object();
	results = json_array();
	for (i = 0; i < n; i++) {
		json_t *r = json_object();

		json_object_set_new(r, "id", json_integer(out[i].id));
		json_object_set_new(r, "ok", json_boolean(out[i].ok));
		json_object_set_new(r, "error",
				    out[i].ok ? json_null() :
						json_string(out[i].error));
		json_object_set_new(
			r, "status",
			out[i].status >= 0 ?
				json_string(jobd_status_names[out[i].status]) :
				json_null());
		json_array_append_new(results, r);
	}
	json_object_set_new(res, "results", results);
	http_send_json(q, 200, res);
out_free:
	free(ids);
	free(out);
out_body:
	json_decref(body);
}

/* --- the page -------------------------------------------------------------- */

static bool send_file(struct req *q)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(q->r);
	const char *inm = evhttp_find_header(
		evhttp_request_get_input_headers(q->r), "If-None-Match");

	for (size_t i = 0; i < jobd_page_files_count; i++) {
		const struct jobd_page_file *f = &jobd_page_files[i];
		struct evbuffer *b;
		uint32_t hash = 2166136261u; /* FNV-1a: an ETag per build */
		char etag[16];

		if (strcmp(q->path, f->path) != 0)
			continue;
		for (size_t k = 0; k < f->size; k++)
			hash = (hash ^ (unsigned char)f->data[k]) * 16777619u;
		snprintf(etag, sizeof(etag), "\"%08x\"", hash);
		evhttp_add_header(out, "ETag", etag);
		evhttp_add_header(out, "Cache-Control", "no-cache");
		evhttp_add_header(out, "Content-Security-Policy", page_csp);
		if (!(b = evbuffer_new())) {
			http_send_error(q, 503, "out of memory");
			return true;
		}
		if (inm && strcmp(inm, etag) == 0) {
			http_send_buf(q, 304, f->content_type, b);
			return true;
		}
		evbuffer_add_reference(b, f->data, f->size, NULL, NULL);
		http_send_buf(q, 200, f->content_type, b);
		return true;
	}
	return false;
}

/* --- authentication ---------------------------------------------------------- */

/* Constant time in the length of the secret S (the configured token). */
static bool token_equal(const char *given, size_t glen, const char *s)
{
	size_t slen = strlen(s);
	unsigned char d = glen != slen;

	for (size_t i = 0; i < slen; i++)
		d |= (unsigned char)s[i] ^
		     (unsigned char)(i < glen ? given[i] : 0);
	return d == 0;
}

static bool token_mode(const struct jobd_conf *conf)
{
	bool on;

	jobd_conf_rdlock(conf); /* a reload may swap the tokens */
	on = (conf->http_token && *conf->http_token) || conf->users_count;
	jobd_conf_unlock(conf);
	return on;
}

/*
 * Sets q->actor from the bearer token; answers 401 and returns false when
 * the token is missing or wrong.
 */
static bool authenticate(struct req *q)
{
	const struct jobd_conf *conf = q->h->conf;
	const char *auth = evhttp_find_header(
		evhttp_request_get_input_headers(q->r), "Authorization");
	const char *tok, *who = NULL;
	size_t len;

	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(q->r),
				  "WWW-Authenticate", "Bearer realm=\"jobd\"");
		http_send_error(
			q, 401,
			"this request needs \"Authorization: Bearer TOKEN\"");
		return false;
	}
	tok = auth + 7;
	len = strlen(tok);
	/*
	 * Compare with every token, so timing does not say which matched.
	 * A user name stays valid after a reload (jobd_conf_reload).
	 */
	jobd_conf_rdlock(conf);
	if (conf->http_token && *conf->http_token &&
	    token_equal(tok, len, conf->http_token))
		who = "admin";
	for (size_t i = 0; i < conf->users_count; i++)
		if (*conf->users[i].key &&
		    token_equal(tok, len, conf->users[i].key) && !who)
			who = conf->users[i].value;
	jobd_conf_unlock(conf);
	if (!who) {
		evhttp_add_header(
			evhttp_request_get_output_headers(q->r),
			"WWW-Authenticate",
			"Bearer realm=\"jobd\", error=\"invalid_token\"");
		http_send_error(q, 401, "wrong token");
		return false;
	}
	q->actor = who;
	return true;
}

/* Actor without tokens: X-Jobd-User (printable ASCII, 1-64 bytes) or "http". */
static bool actor_from_header(struct req *q)
{
	const char *u = evhttp_find_header(
		evhttp_request_get_input_headers(q->r), "X-Jobd-User");
	size_t n;

	q->actor = "http";
	if (!u)
		return true;
	n = strlen(u);
	for (size_t i = 0; i < n; i++)
		if (u[i] < 0x20 || u[i] >= 0x7f)
			n = 0;
	if (n == 0 || n > 64) {
		http_send_error(
			q, 400,
			"bad X-Jobd-User: use 1 to 64 printable ASCII characters");
		return false;
	}
	snprintf(q->actor_buf, sizeof(q->actor_buf), "%s", u);
	q->actor = q->actor_buf;
	return true;
}

/*
 * A browser tells where a request comes from: refuse a POST that another
 * site's page makes (Sec-Fetch-Site, else Origin against Host).
 */
static bool same_origin(struct req *q)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(q->r);
	const char *site = evhttp_find_header(in, "Sec-Fetch-Site");
	const char *origin = evhttp_find_header(in, "Origin");
	const char *host = evhttp_find_header(in, "Host");
	const char *p;

	if (site && strcmp(site, "same-origin") != 0 &&
	    strcmp(site, "none") != 0)
		goto refuse;
	if (!origin)
		return true;
	p = strstr(origin, "://");
	if (host && p && strcmp(p + 3, host) == 0)
		return true;
refuse:
	http_send_error(q, 403, "cross-site request refused");
	return false;
}

/* --- routing ------------------------------------------------------------------ */

static void method_not_allowed(struct req *q, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(q->r), "Allow",
			  allow);
	http_send_error(q, 405, "method not allowed: use %s", allow);
}

/* "/api/jobs/42/logs" -> id 42, rest "/logs"; false if not /api/jobs/N. */
static bool job_path(const char *path, const char **id, size_t *idlen,
		     const char **rest)
{
	const char *p;

	if (strncmp(path, "/api/jobs/", 10) != 0)
		return false;
	p = path + 10;
	*id = p;
	*idlen = strcspn(p, "/");
	*rest = p + *idlen;
	return *idlen > 0;
}

static void route(struct req *q)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(q->r);
	bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
	bool post = cmd == EVHTTP_REQ_POST;
	bool api = strncmp(q->path, "/api/", 5) == 0 ||
		   strcmp(q->path, "/metrics") == 0;
	const char *id_s, *rest;
	size_t idlen;
	int64_t id;

	if (!api) {
		if (!get) {
			method_not_allowed(q, "GET, HEAD");
			return;
		}
		if (!send_file(q))
			http_send_error(q, 404, "no such page");
		return;
	}
	if (!get && !post) {
		method_not_allowed(q, "GET, HEAD, POST");
		return;
	}
	if (post) {
		if (!same_origin(q))
			return;
		if (token_mode(q->h->conf) ? !authenticate(q) :
					     !actor_from_header(q))
			return;
	} else if (q->h->conf->read_requires_token && token_mode(q->h->conf)) {
		if (!authenticate(q))
			return;
	}
	if (strcmp(q->path, "/api/jobs") == 0) {
		if (get)
			get_jobs(q);
		else
			post_jobs(q);
		return;
	}
	if (strcmp(q->path, "/api/jobs/ops") == 0) {
		if (post)
			post_ops(q);
		else
			method_not_allowed(q, "POST");
		return;
	}
	if (job_path(q->path, &id_s, &idlen, &rest)) {
		char err[512];
		int rc;

		if (strcmp(rest, "") != 0 && strcmp(rest, "/children") != 0 &&
		    strcmp(rest, "/logs") != 0 && strcmp(rest, "/why") != 0) {
			http_send_error(q, 404, "no such path");
			return;
		}
		if (!get) {
			method_not_allowed(q, "GET, HEAD");
			return;
		}
		if ((rc = jobd_httpparse_id(id_s, idlen, &id, err,
					    sizeof(err)))) {
			http_refuse(q, rc, err, 400);
			return;
		}
		if (!*rest)
			get_job(q, id);
		else if (rest[1] == 'c')
			get_children(q, id);
		else if (rest[1] == 'w')
			get_why(q, id);
		else
			get_logs(q, id);
		return;
	}
	{
		static const struct {
			const char *path;
			void (*fn)(struct req *q);
		} reads[] = {
			{ "/api/stats", get_stats },
			{ "/api/counts", get_counts },
			{ "/api/types", get_types },
			{ "/api/schedules", get_schedules },
			{ "/api/kafka", get_kafka },
			{ "/metrics", http_get_metrics },
		};

		for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
			if (strcmp(q->path, reads[i].path) != 0)
				continue;
			if (get)
				reads[i].fn(q);
			else
				method_not_allowed(q, "GET, HEAD");
			return;
		}
	}
	if (strcmp(q->path, "/api/logs") == 0) {
		if (get)
			get_logs(q, 0);
		else
			method_not_allowed(q, "GET, HEAD");
		return;
	}
	http_send_error(q, 404, "no such path");
}

/* Answers 421 unless the Host header names this monitor. */
static bool known_host(struct req *q)
{
	const char *host = evhttp_find_header(
		evhttp_request_get_input_headers(q->r), "Host");
	char buf[80];

	if (jobd_httpparse_host_allowed(host, (const char *const *)q->h->hosts))
		return true;
	http_send_error(
		q, 421,
		"unknown host \"%s\": the monitor answers to its addresses, localhost and the names of [http] allowed_hosts",
		jobd_httpparse_quote(host, buf, sizeof(buf)));
	return false;
}

static void handle(struct evhttp_request *r, void *arg)
{
	struct req q = { .h = arg, .r = r, .actor = "http" };
	struct evhttp_connection *evcon = evhttp_request_get_connection(r);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	size_t len = 0;
	char err[512];
	int rc;

	jobd_httpconn_request_begin(q.h->conns, evcon);
	if (!known_host(&q))
		goto out;
	q.path = evhttp_uridecode(raw && *raw ? raw : "/", 0, &len);
	if (!q.path || strlen(q.path) != len) {
		http_send_error(&q, 400, "bad path");
		goto out;
	}
	rc = jobd_httpparse_query_init(&q.qs, query ? query : "",
				       query ? strlen(query) : 0, err,
				       sizeof(err));
	if (rc) {
		http_refuse(&q, rc, err, 414);
		goto out;
	}
	route(&q);
out:
	jobd_httpparse_query_release(&q.qs);
	free(q.path);
	jobd_httpconn_request_end(q.h->conns, evcon);
}

/* --- the thread ------------------------------------------------------------- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct jobd_http *h = arg;

	event_base_loopbreak(h->base);
}

static void *run(void *arg)
{
	struct jobd_http *h = arg;

	jobd_httpconn_attach(h->conns);
	event_base_dispatch(h->base);
	return NULL;
}

/* Splits "host:port", "[v6]:port" or ":port" into HOST and PORT. */
static int split_address(const char *addr, char *host, size_t hsize, char *port,
			 size_t psize)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hl;

	if (!colon || !colon[1])
		return -1;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= hsize || strlen(colon + 1) >= psize)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, psize, "%s", colon + 1);
	return 0;
}

/* A listening socket for ADDR, or -1 with the reason in errstr. */
static evutil_socket_t listen_on(const char *addr, char *bound, size_t bsize,
				 char *errstr, size_t errstr_size)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16], name[INET6_ADDRSTRLEN];
	evutil_socket_t fd = -1;
	int rc, err = 0;

	if (split_address(addr, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(errstr, errstr_size,
			 "bad [http] listen \"%s\": use HOST:PORT", addr);
		return -1;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc) {
		snprintf(errstr, errstr_size, "cannot listen on %s: %s", addr,
			 gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		evutil_make_listen_socket_reuseable(fd);
		/* The kernel's largest accept queue: with a flood of
		 * connections a smaller one is full all the time, and a new
		 * client's SYN is dropped (a second's wait, or a failure)
		 * before jobd ever sees it (docs/monitor.md). */
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, SOMAXCONN) == 0 &&
		    evutil_make_socket_nonblocking(fd) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(errstr, errstr_size, "cannot listen on %s: %s", addr,
			 strerror(err ? err : EADDRNOTAVAIL));
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, name, sizeof(name), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(bound, bsize,
			 ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", name,
			 port);
	else
		snprintf(bound, bsize, "%s", addr);
	return fd;
}

/*
 * The names the Host header may give (besides addresses and localhost):
 * [http] allowed_hosts and the host of ADDR when it is a name. NULL when
 * out of memory.
 */
static char **host_names(const struct jobd_conf *conf, const char *addr)
{
	char host[256], port[16], **names;
	size_t n = 0, i;

	for (char **p = conf->http_allowed_hosts; p && *p; p++)
		n++;
	if (!(names = calloc(n + 2, sizeof(*names))))
		return NULL;
	for (i = 0; i < n; i++)
		if (!(names[i] = strdup(conf->http_allowed_hosts[i])))
			goto err_free;
	if (split_address(addr, host, sizeof(host), port, sizeof(port)) == 0 &&
	    *host && !(names[n] = strdup(host)))
		goto err_free;
	return names;

err_free:
	for (i = 0; names[i]; i++)
		free(names[i]);
	free(names);
	return NULL;
}

static void free_names(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

int jobd_http_connection_limit(const struct jobd_conf *conf, char *errstr,
			       size_t errstr_size)
{
	struct rlimit rl;
	long nofile = LONG_MAX;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)LONG_MAX)
		nofile = (long)rl.rlim_cur;
	return jobd_httpconn_limit(conf, nofile, errstr, errstr_size);
}

/* Whether the bound address ADDR ("127.0.0.1:8080", "[::1]:80") is
 * loopback, which no other machine reaches. */
static bool loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "[::1]", 5) == 0;
}

struct jobd_http *jobd_http_start(const struct jobd_conf *conf, char *errstr,
				  size_t errstr_size)
{
	const char *addr = conf->http_listen && *conf->http_listen ?
				   conf->http_listen :
				   "127.0.0.1:8080";
	struct jobd_http *h;
	struct evhttp_bound_socket *bound;
	evutil_socket_t fd;
	sigset_t all, old;
	char err[512], timeout[32];
	struct timeval tv;
	int max;

	if ((max = jobd_http_connection_limit(conf, errstr, errstr_size)) < 0)
		return NULL;
	if (!(h = calloc(1, sizeof(*h))) ||
	    !(h->hosts = host_names(conf, addr))) {
		free(h);
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&h->sources_mu, NULL);
	h->conf = conf;
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	fd = listen_on(addr, h->address, sizeof(h->address), errstr,
		       errstr_size);
	if (fd < 0)
		goto err_free;
	if (pipe2(h->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(errstr, errstr_size, "cannot create a pipe: %s",
			 strerror(errno));
		goto err_close;
	}
	if (!(h->base = event_base_new()) || !(h->http = evhttp_new(h->base)) ||
	    !(h->wake = event_new(h->base, h->stop_pipe[0], EV_READ, on_stop,
				  h))) {
		snprintf(errstr, errstr_size, "cannot set up libevent");
		goto err_close;
	}
	event_add(h->wake, NULL);
	/* evhttp's own timeout (between two bytes) is the deadline's length:
	 * the deadline, which conn.c keeps, comes first. */
	tv.tv_sec = (time_t)(conf->http_request_timeout / 1000);
	tv.tv_usec = (suseconds_t)(conf->http_request_timeout % 1000) * 1000;
	evhttp_set_timeout_tv(h->http, &tv);
	evhttp_set_max_headers_size(h->http, MAX_HEADERS);
	evhttp_set_max_body_size(h->http, MAX_BODY_HARD);
	evhttp_set_allowed_methods(
		h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
				 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
				 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
				 EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(h->http, handle, h);
	if (!(bound = evhttp_accept_socket_with_handle(h->http, fd))) {
		snprintf(errstr, errstr_size, "cannot listen on %s: %s", addr,
			 strerror(errno));
		goto err_close;
	}
	fd = -1; /* now owned by h->http */
	h->conns = jobd_httpconn_new(h->base, h->http, bound, max,
				     conf->http_request_timeout);
	if (!h->conns) {
		snprintf(errstr, errstr_size, "out of memory");
		goto err_close;
	}
	if (conf->http_tls_cert) {
		if (!(h->tls = jobd_http_tls_new(conf, errstr, errstr_size)))
			goto err_close;
		jobd_httpconn_set_tls(h->conns, h->tls);
	} else if (!loopback(h->address)) {
		jobd_warn("http: the monitor listens on %s, beyond loopback, "
			  "without TLS: its token and jobs cross the network "
			  "in clear; set [http] tls_cert and tls_key "
			  "(docs/security.md)",
			  h->address);
	}
	/* Redis may come later: the API answers 503 until it does. */
	h->st = jobd_store_new(conf, err, sizeof(err));
	if (h->st)
		jobd_store_set_timeout(h->st, STORE_TIMEOUT);
	else
		jobd_warn("http: %s (the API answers 503 until it is back)",
			  err);
	/* Signals go to the daemon's own threads, never to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	errno = pthread_create(&h->thread, NULL, run, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (errno) {
		snprintf(errstr, errstr_size,
			 "cannot start the http thread: %s", strerror(errno));
		goto err_close;
	}
	jobd_info("http: monitor on %s://%s/ (at most %d connections, %s "
		  "per request)",
		  h->tls ? "https" : "http", h->address, max,
		  jobd_util_human_ms(conf->http_request_timeout, timeout,
				     sizeof(timeout)));
	return h;

err_close:
	if (fd >= 0)
		close(fd);
	jobd_store_free(h->st);
	if (h->wake)
		event_free(h->wake);
	if (h->http)
		evhttp_free(h->http);
	jobd_httpconn_free(h->conns);
	jobd_http_tls_free(h->tls);
	if (h->base)
		event_base_free(h->base);
	if (h->stop_pipe[0] >= 0) {
		close(h->stop_pipe[0]);
		close(h->stop_pipe[1]);
	}
err_free:
	free_names(h->hosts);
	free(h);
	return NULL;
}

const char *jobd_http_address(const struct jobd_http *h)
{
	return h->address;
}

void jobd_http_stop(struct jobd_http *h)
{
	ssize_t n;

	if (!h)
		return;
	do
		n = write(h->stop_pipe[1], "x", 1);
	while (n < 0 && errno == EINTR);
	pthread_join(h->thread, NULL);
	evhttp_free(h->http); /* closes the connections */
	jobd_httpconn_free(h->conns);
	jobd_http_tls_free(h->tls);
	event_free(h->wake);
	event_base_free(h->base);
	pthread_mutex_destroy(&h->sources_mu);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
	jobd_store_free(h->st);
	free_names(h->hosts);
	free(h);
}
