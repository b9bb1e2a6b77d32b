/*
 * httpparse: the monitor's request parsing, apart from the server. Query
 * strings and JSON bodies go in as bytes; out come the store's filters,
 * log queries, job specs and id lists, or a refusal naming the bad
 * parameter or member. No libevent and no Redis here, so tests and the
 * fuzzer (tests/fuzz/fuzz_http.c) drive it with plain bytes.
 *
 * Every error message is printable ASCII (user input in it goes through
 * jobd_httpparse_quote()), so it always fits in a JSON string.
 */
#ifndef JOBD_SRC_HTTP_PARSE_H
#define JOBD_SRC_HTTP_PARSE_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"
#include "store/store.h"

#define JOBD_HTTPPARSE_MAX_QUERY (8 * 1024)   /* bytes of a query string */
#define JOBD_HTTPPARSE_MAX_BODY (1024 * 1024) /* bytes of a request body */
#define JOBD_HTTPPARSE_MAX_IDS 10000	      /* ids of one operation */
#define JOBD_HTTPPARSE_MAX_COUNT 10000	      /* jobs of one submit */
#define JOBD_HTTPPARSE_MAX_REGEX 256	      /* bytes of a log regex */
#define JOBD_HTTPPARSE_MAX_EXPANDED 1000 /* atoms of a regex, counts expanded */
#define JOBD_HTTPPARSE_MAX_NESTING 10	 /* repetitions of repetitions */
#define JOBD_HTTPPARSE_MAX_WINDOW (31 * 86400000LL) /* ms of statistics */

/* Results: 0, or one of these with the reason in errstr. */
#define JOBD_HTTPPARSE_BAD (-1)	    /* bad input: answer 400 */
#define JOBD_HTTPPARSE_TOO_BIG (-2) /* over a size limit: 413 (body), 414 */
#define JOBD_HTTPPARSE_NOMEM (-3)   /* out of memory: 503 */

/* One decoded parameter: NUL-terminated, no NUL inside. */
struct jobd_httpparse_param {
	char *key;   /* owned */
	char *value; /* owned, "" for "key=" */
};

/* A parsed query string, in the order given; _release frees it. */
struct jobd_httpparse_query {
	struct jobd_httpparse_param *params; /* owned array */
	size_t n;			     /* parameters */
};

/*
 * Parses the LEN bytes of S (the query string without its '?') into QS:
 * NAME=VALUE pairs separated by '&' (a trailing '&' is allowed), with
 * %XX escapes decoded in names and values and '+' read as a space. Refused:
 * over JOBD_HTTPPARSE_MAX_QUERY bytes (TOO_BIG), a pair without '=' or
 * with an empty name, a %00. QS is always initialised (release it even on
 * error).
 */
int jobd_httpparse_query_init(struct jobd_httpparse_query *qs, const char *s,
			      size_t len, char *errstr, size_t errstr_size);
void jobd_httpparse_query_release(struct jobd_httpparse_query *qs);

/* Refuses a parameter not in ALLOWED (NULL-terminated) or given twice. */
int jobd_httpparse_allowed(const struct jobd_httpparse_query *qs,
			   const char *const *allowed, char *errstr,
			   size_t errstr_size);

/* The value of NAME (borrowed from QS), NULL when absent or empty. */
const char *jobd_httpparse_get(const struct jobd_httpparse_query *qs,
			       const char *name);

/* 1/true/yes or 0/false/no; *V false when absent. */
int jobd_httpparse_bool(const struct jobd_httpparse_query *qs, const char *name,
			bool *v, char *errstr, size_t errstr_size);

/* An integer in [MIN, MAX]; *V unchanged when absent. */
int jobd_httpparse_int(const struct jobd_httpparse_query *qs, const char *name,
		       int64_t min, int64_t max, int64_t *v, char *errstr,
		       size_t errstr_size);

/*
 * An ISO time, or a duration meaning that long before NOW ("10m"), in ms
 * since the epoch; *MS unchanged when absent.
 */
int jobd_httpparse_time(const struct jobd_httpparse_query *qs, const char *name,
			int64_t now, int64_t *ms, char *errstr,
			size_t errstr_size);

/* Refuses TYPE when it is set and not a type of CONF (borrowed). */
int jobd_httpparse_type(const struct jobd_conf *conf, const char *type,
			char *errstr, size_t errstr_size);

/* --- requests ------------------------------------------------------------ */

/*
 * GET /api/jobs: status, type, run_by, system, all, limit (1-1000,
 * default 50), sort ("-created" by default; created, started, waiting,
 * duration or status, "-" for highest first), cursor (an id, or for a
 * sort the "next" of the page before). F's strings are borrowed from QS.
 */
int jobd_httpparse_jobs(const struct jobd_httpparse_query *qs,
			const struct jobd_conf *conf, struct jobd_filter *f,
			char *errstr, size_t errstr_size);

/* GET /api/jobs/ID/children: limit (1-1000, default 50), cursor (0). */
int jobd_httpparse_children(const struct jobd_httpparse_query *qs,
			    int64_t *cursor, size_t *limit, char *errstr,
			    size_t errstr_size);

/*
 * A log search. lq.match points at rx when a regex was given, so the
 * struct must stay where _logs initialised it; _release it whatever
 * _logs returned.
 */
struct jobd_httpparse_logs {
	struct jobd_log_query lq; /* strings borrowed from the query */
	regex_t rx;		  /* compiled "regex" when have_rx */
	bool have_rx;
};

/*
 * GET /api/jobs/ID/logs (ONE_JOB) or /api/logs: level, grep, regex (ERE,
 * case-insensitive, at most JOBD_HTTPPARSE_MAX_REGEX bytes, no
 * back-references, at most JOBD_HTTPPARSE_MAX_EXPANDED atoms once its
 * {m,n} counts are expanded, repetitions nested at most
 * JOBD_HTTPPARSE_MAX_NESTING deep), since and until (relative to NOW, ms),
 * limit (1-1000, default 1000), for one job also tree and after (a log
 * entry id, "1764340000000-0"), for all jobs also cursor (the "next" of
 * a previous page: "1764340000000-0" or "1764340000000-0/42").
 */
int jobd_httpparse_logs(const struct jobd_httpparse_query *qs, bool one_job,
			int64_t now, struct jobd_httpparse_logs *out,
			char *errstr, size_t errstr_size);
void jobd_httpparse_logs_release(struct jobd_httpparse_logs *out);

/*
 * GET /api/stats: since (default an hour before NOW; in the past, at most
 * 31 days ago) and type (borrowed from QS, NULL = all).
 */
int jobd_httpparse_stats(const struct jobd_httpparse_query *qs,
			 const struct jobd_conf *conf, int64_t now,
			 int64_t *since, const char **type, char *errstr,
			 size_t errstr_size);

/* "42" (a path component, LEN bytes) -> 42: digits only, a positive id. */
int jobd_httpparse_id(const char *s, size_t len, int64_t *id, char *errstr,
		      size_t errstr_size);

/* --- bodies -------------------------------------------------------------- */

/*
 * The LEN bytes of BUF as a JSON object (duplicate members refused) in
 * *BODY (caller decrefs). TOO_BIG past JOBD_HTTPPARSE_MAX_BODY bytes.
 */
int jobd_httpparse_body(const char *buf, size_t len, json_t **body,
			char *errstr, size_t errstr_size);

/* POST /api/jobs: the job to create and how many. */
struct jobd_httpparse_submit {
	struct jobd_spec spec; /* strings borrowed from the body, but payload */
	int64_t count;	       /* jobs, 1-JOBD_HTTPPARSE_MAX_COUNT */
	char *payload; /* owned JSON text of "payload", spec.payload too */
};

/*
 * Members type (a type of CONF), payload (an object), key, run_by
 * (strings), parent (> 0), count, low_priority (boolean), run_at and
 * delay (base/schedule.h: one or neither). run_by stays
 * NULL when absent: the caller puts its actor there. Release OUT whatever
 * this returned.
 */
int jobd_httpparse_submit(json_t *body, const struct jobd_conf *conf,
			  struct jobd_httpparse_submit *out, char *errstr,
			  size_t errstr_size);
void jobd_httpparse_submit_release(struct jobd_httpparse_submit *out);

/*
 * POST /api/jobs/ops, in two steps so that the op name is judged (by the
 * store's jobd_op_parse) before the ids: members op and ids only, "op" a
 * non-empty string (*OP borrowed from BODY) ...
 */
int jobd_httpparse_op(json_t *body, const char **op, char *errstr,
		      size_t errstr_size);

/*
 * ... and "ids" an array of 1 to JOBD_HTTPPARSE_MAX_IDS positive integers,
 * copied to *IDS (caller frees; NULL on error), *N of them.
 */
int jobd_httpparse_ids(json_t *body, int64_t **ids, size_t *n, char *errstr,
		       size_t errstr_size);

/* --- the Host header ------------------------------------------------------ */

/*
 * Whether HOST, a request's Host header ("name", "name:port", "10.0.0.5",
 * "[::1]:8080"; NULL when the request has none), names this monitor: an
 * IPv4 or IPv6 address, "localhost", or one of NAMES (lowercase,
 * NULL-terminated; NULL = none), without regard to case or port. An empty
 * or malformed HOST is refused. A DNS-rebinding page reaches the monitor
 * under a name its author controls, never under an address or localhost,
 * so refusing other names stops it; a client other than a browser may send
 * any Host it likes, and no Host proves nothing either way.
 */
bool jobd_httpparse_host_allowed(const char *host, const char *const *names);

/* --- messages ------------------------------------------------------------ */

/*
 * User input for a message: printable ASCII only (other bytes as '?'), at
 * most 60 bytes then "...". Returns BUF (SIZE of at least 8).
 */
const char *jobd_httpparse_quote(const char *s, char *buf, size_t size);

#endif
