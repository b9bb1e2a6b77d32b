/*
 * fuzz_http: the monitor's query string and body parsing (src/http/parse.h)
 * on arbitrary bytes.
 *
 * The first byte picks what the rest is, as server.c would see it:
 *	j  the query of GET /api/jobs	     c  of /api/jobs/ID/children
 *	l  of /api/jobs/ID/logs		     L  of /api/logs
 *	s  of /api/stats		     n  of a path taking none
 *	i  the ID of /api/jobs/ID	     P  the body of POST /api/jobs
 *	O  the body of POST /api/jobs/ops    H  a Host header
 * (any other byte picks one of these by its value), so the seeds in
 * corpus/http/ read like requests.
 *
 * Checked: a refusal is one of the documented codes with a message that
 * is non-empty printable ASCII (so it fits a JSON string); TOO_BIG only
 * past the limits; a parsed query has non-empty names and re-encoded
 * reads back the same; every accepted value is in its documented range;
 * a compiled log regex can be run on a log line, as the store does; an
 * accepted payload is the JSON text of an object; ids are positive; an
 * accepted Host is printable, without spaces, '/' or '@', and its name is
 * an address, localhost or the configured name.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/conf.h"
#include "base/job.h"
#include "base/log.h"
#include "http/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed clock: results must not depend on when the fuzzer runs. */
#define NOW 1764340000000LL /* ms, 2025-11-28T14:26:40Z */

static const char conf_text[] = "[type.imp]\nhandler = noop\n"
				"[type.sys]\nhandler = noop\nsystem = yes\n";

static const struct jobd_conf *conf(void)
{
	static struct jobd_conf *c;
	char err[256];

	if (!c) {
		jobd_log_set_level(JOBD_LOG_ERROR);
		c = jobd_conf_parse(conf_text, sizeof(conf_text) - 1,
				    "fuzz.conf", err, sizeof(err));
		if (!c)
			abort();
	}
	return c;
}

static void check_refusal(int rc, const char *err, size_t size, size_t limit)
{
	size_t n = strnlen(err, 512);

	if (rc != JOBD_HTTPPARSE_BAD && rc != JOBD_HTTPPARSE_TOO_BIG &&
	    rc != JOBD_HTTPPARSE_NOMEM)
		abort();
	if (rc == JOBD_HTTPPARSE_TOO_BIG && size <= limit)
		abort();
	if (n == 0 || n == 512)
		abort();
	for (size_t i = 0; i < n; i++)
		if (err[i] < 0x20 || err[i] >= 0x7f)
			abort();
}

/* Percent-encodes every byte but [A-Za-z0-9] into B (a NUL-ended string). */
static size_t encode(const char *s, char *b)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9')) {
			b[n++] = (char)c;
		} else {
			b[n++] = '%';
			b[n++] = hex[c >> 4];
			b[n++] = hex[c & 15];
		}
	}
	return n;
}

/* The parsed query written back and parsed again gives the same pairs. */
static void roundtrip(const struct jobd_httpparse_query *qs)
{
	struct jobd_httpparse_query back;
	size_t cap = 1, n = 0;
	char err[512], *s;
	int rc;

	for (size_t i = 0; i < qs->n; i++)
		cap += 3 * (strlen(qs->params[i].key) +
			    strlen(qs->params[i].value)) +
		       2;
	if (!(s = malloc(cap)))
		abort();
	for (size_t i = 0; i < qs->n; i++) {
		if (i)
			s[n++] = '&';
		n += encode(qs->params[i].key, s + n);
		s[n++] = '=';
		n += encode(qs->params[i].value, s + n);
	}
	s[n] = '\0';
	rc = jobd_httpparse_query_init(&back, s, n, err, sizeof(err));
	/* Encoding triples the size: only the limit may refuse it. */
	if (rc == JOBD_HTTPPARSE_TOO_BIG && n > JOBD_HTTPPARSE_MAX_QUERY)
		goto out;
	if (rc || back.n != qs->n)
		abort();
	for (size_t i = 0; i < qs->n; i++)
		if (strcmp(back.params[i].key, qs->params[i].key) ||
		    strcmp(back.params[i].value, qs->params[i].value))
			abort();
out:
	jobd_httpparse_query_release(&back);
	free(s);
}

static void fuzz_query(char kind, const char *s, size_t len)
{
	struct jobd_httpparse_query qs;
	struct jobd_httpparse_logs lp;
	struct jobd_filter f;
	const char *type;
	int64_t cursor, since;
	size_t limit, amps = 0;
	char err[512] = "";
	int rc;

	rc = jobd_httpparse_query_init(&qs, s, len, err, sizeof(err));
	if (rc) {
		check_refusal(rc, err, len, JOBD_HTTPPARSE_MAX_QUERY);
		jobd_httpparse_query_release(&qs);
		return;
	}
	for (size_t i = 0; i < len; i++)
		amps += s[i] == '&';
	if (qs.n > amps + 1)
		abort();
	for (size_t i = 0; i < qs.n; i++)
		if (!qs.params[i].key[0])
			abort();
	roundtrip(&qs);
	err[0] = '\0';
	switch (kind) {
	case 'j':
		rc = jobd_httpparse_jobs(&qs, conf(), &f, err, sizeof(err));
		if (rc == 0 && (f.limit < 1 || f.limit > 1000 || f.cursor < 0 ||
				(f.status && jobd_status_parse(f.status) < 0) ||
				(f.type && !jobd_conf_type(conf(), f.type))))
			abort();
		break;
	case 'c':
		rc = jobd_httpparse_children(&qs, &cursor, &limit, err,
					     sizeof(err));
		if (rc == 0 && (limit < 1 || limit > 1000 || cursor < 0))
			abort();
		break;
	case 'l':
	case 'L':
		rc = jobd_httpparse_logs(&qs, kind == 'l', NOW, &lp, err,
					 sizeof(err));
		if (rc == 0) {
			struct jobd_log_entry e = {
				.msg = "stopped by alice: step 3/10 \xc3\xa9"
			};

			if (lp.lq.min_level < 0 || lp.lq.min_level > 3 ||
			    lp.lq.limit < 1 || lp.lq.limit > 1000 ||
			    (kind == 'L' && (lp.lq.after || lp.lq.tree)) ||
			    (lp.have_rx != (lp.lq.match != NULL)))
				abort();
			/* The store runs the regex on every entry it reads. */
			if (lp.lq.match)
				(void)lp.lq.match(&e, lp.lq.match_arg);
		}
		jobd_httpparse_logs_release(&lp);
		break;
	case 's':
		rc = jobd_httpparse_stats(&qs, conf(), NOW, &since, &type, err,
					  sizeof(err));
		if (rc == 0 &&
		    (since >= NOW || NOW - since > JOBD_HTTPPARSE_MAX_WINDOW ||
		     (type && !jobd_conf_type(conf(), type))))
			abort();
		break;
	default: {
		static const char *const none[] = { NULL };

		rc = jobd_httpparse_allowed(&qs, none, err, sizeof(err));
		if (rc == 0 && qs.n)
			abort();
	}
	}
	if (rc)
		check_refusal(rc, err, 0, 0);
	jobd_httpparse_query_release(&qs);
}

static void fuzz_id(const char *s, size_t len)
{
	char err[512] = "", back[32];
	int64_t id;
	int rc = jobd_httpparse_id(s, len, &id, err, sizeof(err));

	if (rc) {
		check_refusal(rc, err, 0, 0);
		return;
	}
	/* Accepted: only digits, the decimal text of a positive id. */
	while (len > 1 && s[0] == '0') {
		s++;
		len--;
	}
	snprintf(back, sizeof(back), "%" PRId64, id);
	if (id <= 0 || strlen(back) != len || memcmp(back, s, len) != 0)
		abort();
}

static void fuzz_body(char kind, const char *s, size_t len)
{
	struct jobd_httpparse_submit sub;
	const char *op;
	int64_t *ids;
	json_t *body, *p;
	size_t n;
	char err[512] = "";
	int rc;

	rc = jobd_httpparse_body(s, len, &body, err, sizeof(err));
	if (rc) {
		check_refusal(rc, err, len, JOBD_HTTPPARSE_MAX_BODY);
		if (body)
			abort();
		return;
	}
	if (!json_is_object(body))
		abort();
	err[0] = '\0';
	if (kind == 'P') {
		rc = jobd_httpparse_submit(body, conf(), &sub, err,
					   sizeof(err));
		if (rc == 0) {
			const struct jobd_spec *sp = &sub.spec;

			if (!sp->type || !jobd_conf_type(conf(), sp->type) ||
			    sub.count < 1 ||
			    sub.count > JOBD_HTTPPARSE_MAX_COUNT ||
			    sp->parent < 0 || (sp->key && !sp->key[0]) ||
			    (sp->run_by && !sp->run_by[0]) ||
			    sp->payload != sub.payload)
				abort();
			if (sub.payload) {
				p = json_loads(sub.payload, 0, NULL);
				if (!json_is_object(p))
					abort();
				json_decref(p);
			}
		}
		jobd_httpparse_submit_release(&sub);
	} else {
		rc = jobd_httpparse_op(body, &op, err, sizeof(err));
		if (rc == 0 && (!op || !op[0]))
			abort();
		if (rc == 0) {
			rc = jobd_httpparse_ids(body, &ids, &n, err,
						sizeof(err));
			if (rc == 0 &&
			    (n < 1 || n > JOBD_HTTPPARSE_MAX_IDS || !ids))
				abort();
			for (size_t i = 0; rc == 0 && i < n; i++)
				if (ids[i] <= 0)
					abort();
			if (rc && ids)
				abort();
			free(ids);
		}
	}
	if (rc)
		check_refusal(rc, err, 0, 0);
	json_decref(body);
}

static void fuzz_host(const char *s, size_t len)
{
	static const char *const names[] = { "jobs.example.com", NULL };
	char *host = strndup(s, len);

	if (!host)
		return;
	if (jobd_httpparse_host_allowed(host, names)) {
		for (const char *c = host; *c; c++)
			if (*c <= 0x20 || *c >= 0x7f || *c == '/' || *c == '@')
				abort();
		if (host[0] != '[' && strncasecmp(host, "localhost", 9) != 0 &&
		    strncasecmp(host, "jobs.example.com", 16) != 0 &&
		    strspn(host, "0123456789.:") != strlen(host))
			abort();
	}
	free(host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char kinds[] = "jclLsniPOH";
	const char *s = (const char *)data + 1;
	char kind;

	if (size == 0)
		return 0;
	kind = strchr(kinds, data[0]) && data[0] ? (char)data[0] :
						   kinds[data[0] % 10];
	size--;
	if (kind == 'i')
		fuzz_id(s, size);
	else if (kind == 'P' || kind == 'O')
		fuzz_body(kind, s, size);
	else if (kind == 'H')
		fuzz_host(s, size);
	else
		fuzz_query(kind, s, size);
	return 0;
}
