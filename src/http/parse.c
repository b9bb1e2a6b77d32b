/*
 * httpparse: query strings and JSON bodies of the monitor's API, checked
 * before any store call (server.c answers the refusals with a 4xx).
 *
 * Query strings are decoded here rather than with evhttp_parse_query_str:
 * libevent 2.1 leaves names undecoded and silently cuts a value at %00,
 * and taking plain bytes keeps this unit free of libevent, so the fuzzer
 * links it alone. The rules are otherwise libevent's: '&' separates
 * NAME=VALUE pairs, '+' is a space, a '%' not followed by two hex digits
 * stays a '%'.
 *
 * Messages carry user input only through jobd_httpparse_quote(), and
 * jansson's own error text (which may quote the body's bytes) is filtered
 * the same way: a refusal is always valid JSON text.
 */
#include "config.h"

#include "http/parse.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/job.h"
#include "base/schedule.h"
#include "base/util.h"

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int bad(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int nomem(char *errstr, size_t errstr_size, const char *what)
{
	snprintf(errstr, errstr_size, "out of memory for %s", what);
	return JOBD_HTTPPARSE_NOMEM;
}

static int bad(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
	return JOBD_HTTPPARSE_BAD;
}

const char *jobd_httpparse_quote(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	for (; s && *s && n + 4 < size; s++) {
		if (n >= 60) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		buf[n++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
	}
	buf[n] = '\0';
	return buf;
}

/* --- query strings ------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes the LEN bytes of S into a new string in *OUT. Returns 0, -1 on
 * a NUL byte (raw or %00), -2 when out of memory.
 */
static int decode(const char *s, size_t len, char **out)
{
	char *d = malloc(len + 1);
	size_t n = 0;

	*out = NULL;
	if (!d)
		return -2;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%' && len - i > 2 && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		if (c == '\0') {
			free(d);
			return -1;
		}
		d[n++] = c;
	}
	d[n] = '\0';
	*out = d;
	return 0;
}

int jobd_httpparse_query_init(struct jobd_httpparse_query *qs, const char *s,
			      size_t len, char *errstr, size_t errstr_size)
{
	size_t pairs = 1, at = 0;
	char buf[80];

	qs->params = NULL;
	qs->n = 0;
	if (len > JOBD_HTTPPARSE_MAX_QUERY) {
		snprintf(errstr, errstr_size, "query over 8 KiB (%zu bytes)",
			 len);
		return JOBD_HTTPPARSE_TOO_BIG;
	}
	for (size_t i = 0; i < len; i++)
		pairs += s[i] == '&';
	qs->params = calloc(pairs, sizeof(*qs->params));
	if (!qs->params)
		return nomem(errstr, errstr_size, "the query");
	while (at < len) {
		const char *pair = s + at;
		struct jobd_httpparse_param *p;
		size_t plen = 0, klen = 0;
		int rc;

		while (at + plen < len && pair[plen] != '&')
			plen++;
		while (klen < plen && pair[klen] != '=')
			klen++;
		if (klen == plen || klen == 0) {
			char text[72];

			/* A NUL in the pair ends the quote there: still ASCII. */
			snprintf(text, sizeof(text), "%.*s",
				 (int)(plen < 70 ? plen : 70), pair);
			return bad(errstr, errstr_size,
				   "bad query string: \"%s\" is not NAME=VALUE",
				   jobd_httpparse_quote(text, buf,
							sizeof(buf)));
		}
		p = &qs->params[qs->n++]; /* counted now: _release frees it */
		rc = decode(pair, klen, &p->key);
		if (rc == 0)
			rc = decode(pair + klen + 1, plen - klen - 1,
				    &p->value);
		if (rc == -2)
			return nomem(errstr, errstr_size, "the query");
		if (rc < 0 && !p->key)
			return bad(
				errstr, errstr_size,
				"bad query string: a NUL byte in a parameter name");
		if (rc < 0)
			return bad(errstr, errstr_size,
				   "bad query string: a NUL byte in \"%s\"",
				   jobd_httpparse_quote(p->key, buf,
							sizeof(buf)));
		at += plen + 1; /* past the '&'; a trailing one ends it */
	}
	return 0;
}

void jobd_httpparse_query_release(struct jobd_httpparse_query *qs)
{
	for (size_t i = 0; i < qs->n; i++) {
		free(qs->params[i].key);
		free(qs->params[i].value);
	}
	free(qs->params);
	qs->params = NULL;
	qs->n = 0;
}

int jobd_httpparse_allowed(const struct jobd_httpparse_query *qs,
			   const char *const *allowed, char *errstr,
			   size_t errstr_size)
{
	char buf[80];

	for (size_t k = 0; k < qs->n; k++) {
		const char *key = qs->params[k].key;
		bool ok = false;

		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok) {
			char list[256] = "";

			for (size_t i = 0; allowed[i]; i++) {
				strncat(list, i ? ", " : "",
					sizeof(list) - strlen(list) - 1);
				strncat(list, allowed[i],
					sizeof(list) - strlen(list) - 1);
			}
			return bad(errstr, errstr_size,
				   "unknown parameter \"%s\": %s%s",
				   jobd_httpparse_quote(key, buf, sizeof(buf)),
				   allowed[0] ? "use " : "this path takes none",
				   list);
		}
		for (size_t o = k + 1; o < qs->n; o++)
			if (strcmp(key, qs->params[o].key) == 0)
				return bad(errstr, errstr_size,
					   "parameter \"%s\" given twice",
					   jobd_httpparse_quote(key, buf,
								sizeof(buf)));
	}
	return 0;
}

const char *jobd_httpparse_get(const struct jobd_httpparse_query *qs,
			       const char *name)
{
	for (size_t i = 0; i < qs->n; i++)
		if (strcmp(qs->params[i].key, name) == 0)
			return *qs->params[i].value ? qs->params[i].value :
						      NULL;
	return NULL;
}

int jobd_httpparse_bool(const struct jobd_httpparse_query *qs, const char *name,
			bool *v, char *errstr, size_t errstr_size)
{
	const char *s = jobd_httpparse_get(qs, name);
	char buf[80];

	*v = false;
	if (!s)
		return 0;
	if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes")) {
		*v = true;
		return 0;
	}
	if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no"))
		return 0;
	return bad(errstr, errstr_size, "bad %s \"%s\": use 1 or 0", name,
		   jobd_httpparse_quote(s, buf, sizeof(buf)));
}

int jobd_httpparse_int(const struct jobd_httpparse_query *qs, const char *name,
		       int64_t min, int64_t max, int64_t *v, char *errstr,
		       size_t errstr_size)
{
	const char *s = jobd_httpparse_get(qs, name);
	char buf[80];
	int64_t x;

	if (!s)
		return 0;
	if (jobd_util_parse_i64(s, &x) < 0 || x < min || x > max)
		return bad(errstr, errstr_size,
			   "bad %s \"%s\": use an integer from %lld to %lld",
			   name, jobd_httpparse_quote(s, buf, sizeof(buf)),
			   (long long)min, (long long)max);
	*v = x;
	return 0;
}

int jobd_httpparse_time(const struct jobd_httpparse_query *qs, const char *name,
			int64_t now, int64_t *ms, char *errstr,
			size_t errstr_size)
{
	const char *s = jobd_httpparse_get(qs, name);
	char buf[80];
	int64_t d;

	if (!s)
		return 0;
	if (jobd_conf_parse_duration(s, &d) == 0) {
		*ms = now - d;
		return 0;
	}
	if (jobd_util_parse_iso(s, ms) == 0)
		return 0;
	return bad(
		errstr, errstr_size,
		"bad %s \"%s\": use an ISO time (2026-01-31T09:30:00Z) or a duration ago (90s, 10m, 2h, 7d)",
		name, jobd_httpparse_quote(s, buf, sizeof(buf)));
}

int jobd_httpparse_type(const struct jobd_conf *conf, const char *type,
			char *errstr, size_t errstr_size)
{
	char buf[80];

	if (!type || jobd_conf_type(conf, type))
		return 0;
	return bad(errstr, errstr_size,
		   "unknown type \"%s\": see GET /api/types",
		   jobd_httpparse_quote(type, buf, sizeof(buf)));
}

/* --- requests ------------------------------------------------------------ */

int jobd_httpparse_jobs(const struct jobd_httpparse_query *qs,
			const struct jobd_conf *conf, struct jobd_filter *f,
			char *errstr, size_t errstr_size)
{
	static const char *const allowed[] = { "status", "type", "run_by",
					       "system", "all",	 "limit",
					       "cursor", "sort", NULL };
	int64_t limit = 50;
	char buf[80];
	int rc;
	const char *sort = jobd_httpparse_get(qs, "sort");
	const char *cursor = jobd_httpparse_get(qs, "cursor");

	*f = (struct jobd_filter){ .limit = 50 };
	if ((rc = jobd_httpparse_allowed(qs, allowed, errstr, errstr_size)))
		return rc;
	f->status = jobd_httpparse_get(qs, "status");
	f->type = jobd_httpparse_get(qs, "type");
	f->run_by = jobd_httpparse_get(qs, "run_by");
	if (f->status && jobd_status_parse(f->status) < 0)
		return bad(
			errstr, errstr_size,
			"bad status \"%s\": use pending, in_progress, stopping, stopped, finished or canceled",
			jobd_httpparse_quote(f->status, buf, sizeof(buf)));
	if ((rc = jobd_httpparse_type(conf, f->type, errstr, errstr_size)) ||
	    (rc = jobd_httpparse_bool(qs, "system", &f->system, errstr,
				      errstr_size)) ||
	    (rc = jobd_httpparse_bool(qs, "all", &f->all, errstr,
				      errstr_size)) ||
	    (rc = jobd_httpparse_int(qs, "limit", 1, 1000, &limit, errstr,
				     errstr_size)))
		return rc;
	f->limit = (size_t)limit;
	if (sort && *sort) {
		f->desc = *sort == '-';
		f->sort = sort + (*sort == '-');
		if (!jobd_job_sort_known(f->sort))
			return bad(
				errstr, errstr_size,
				"bad sort \"%s\": use created, started, waiting, duration or status, with - for highest first",
				jobd_httpparse_quote(sort, buf, sizeof(buf)));
		if (strcmp(f->sort, "created") == 0 && f->desc)
			f->sort = NULL; /* the newest first list */
	}
	if (!f->sort)
		return jobd_httpparse_int(qs, "cursor", 0, INT64_MAX,
					  &f->cursor, errstr, errstr_size);
	/* A sorted list's cursor is what its last page returned. */
	if (cursor && *cursor) {
		int n = 0;
		long long k, id, at;
		bool created = strcmp(f->sort, "created") == 0;

		if (strlen(cursor) >= 64 ||
		    (created ? sscanf(cursor, "%lld%n", &id, &n) != 1 :
			       sscanf(cursor, "%lld:%lld:%lld%n", &k, &id, &at,
				      &n) != 3) ||
		    cursor[n] || id < 0)
			return bad(
				errstr, errstr_size,
				"bad cursor \"%s\" for sort %s: use the \"next\" of the page before",
				jobd_httpparse_quote(cursor, buf, sizeof(buf)),
				f->sort);
		f->after = cursor;
	}
	f->window = conf && conf->http_sort_window > 0 ?
			    (size_t)conf->http_sort_window :
			    0;
	return 0;
}

int jobd_httpparse_children(const struct jobd_httpparse_query *qs,
			    int64_t *cursor, size_t *limit, char *errstr,
			    size_t errstr_size)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	int64_t l = 50;
	int rc;

	*cursor = 0;
	*limit = 50;
	if ((rc = jobd_httpparse_allowed(qs, allowed, errstr, errstr_size)) ||
	    (rc = jobd_httpparse_int(qs, "limit", 1, 1000, &l, errstr,
				     errstr_size)) ||
	    (rc = jobd_httpparse_int(qs, "cursor", 0, INT64_MAX, cursor, errstr,
				     errstr_size)))
		return rc;
	*limit = (size_t)l;
	return 0;
}

/* Past the bracket expression opening at P: at its ']' or the NUL. */
static const char *skip_bracket(const char *p)
{
	const char *q = p + 1;

	if (*q == '^')
		q++;
	if (*q == ']')
		q++;
	while (*q && *q != ']') {
		if (*q == '[' && (q[1] == ':' || q[1] == '=' || q[1] == '.')) {
			char t = q[1];

			for (q += 2; *q && !(q[0] == t && q[1] == ']'); q++)
				;
			q += *q ? 2 : 0;
			continue;
		}
		q++;
	}
	return q;
}

/*
 * What makes a regex too costly for the monitor's one thread, or NULL.
 * glibc's back-references (an extension to ERE) make matching exponential
 * in the line's length: "(.*)*\1x" takes 2 s on a line of 100 bytes.
 * Counted repetitions are compiled by copying what they repeat, and the
 * copies' epsilon closures grow with the square of their number:
 * "((a{1,255}){1,255}){1,255}" takes 30 s and gigabytes to compile, and
 * "((a?){,255}){1,27}" (fuzz_http) 1 GB. So the regex's size once every
 * count is expanded (atoms, groups multiplied by their counts) is bounded:
 * at JOBD_HTTPPARSE_MAX_EXPANDED, the worst shapes take 50 MB and 0.1 s.
 * A count around or under another repetition is worse still, whatever
 * the size: "((a?){,20}){,20}*" takes over a minute, so it is refused.
 * Repeating what can match the empty string is the worst of all after an
 * anchor: "^" and twenty "(T*)*" take 1.5 s, forty over a minute, and
 * "x$$T" with 120 '*' 10 s (fuzz_http found both): it is refused (it
 * never changes what matches). Repetitions of repetitions also cost more
 * with each level, so their nesting is bounded: at
 * JOBD_HTTPPARSE_MAX_NESTING levels they take 2 ms.
 */
static const char *regex_risk(const char *re)
{
	double level[JOBD_HTTPPARSE_MAX_REGEX + 2] = { 0 }; /* atoms per group */
	int nest[JOBD_HTTPPARSE_MAX_REGEX + 2] = { 0 }; /* repetition depth */
	double last = 0;   /* size of the item a count would repeat */
	int last_nest = 0; /* repetitions nested in that item */
	bool counted[JOBD_HTTPPARSE_MAX_REGEX + 2] = { false }; /* has a count */
	bool last_counted = false; /* that item holds a count */
	/* Per group: its current alternative matches "" up to the last item
	 * (seq), one of its earlier alternatives matches "" (any). */
	bool seq[JOBD_HTTPPARSE_MAX_REGEX + 2] = { true };
	bool any[JOBD_HTTPPARSE_MAX_REGEX + 2] = { false };
	bool last_null = true; /* the last item matches "" */
	size_t depth = 0;

	for (const char *p = re; *p; p++) {
		unsigned long lo, hi;
		char *end;

		if (*p == '\\' && p[1] >= '1' && p[1] <= '9')
			return "back-references (\\1) are not supported";
		if (*p == '(' && depth + 1 < sizeof(level) / sizeof(level[0])) {
			seq[depth] = seq[depth] && last_null;
			level[++depth] = 0;
			seq[depth] = true;
			any[depth] = false;
			last_null = true;
			nest[depth] = 0;
			counted[depth] = false;
			last = 0;
			last_nest = 0;
			last_counted = false;
			continue;
		}
		if (*p == ')' && depth > 0) {
			last_null = any[depth] || (seq[depth] && last_null);
			last_nest = nest[depth];
			last_counted = counted[depth];
			last = level[depth--];
			level[depth] += last;
			counted[depth] |= last_counted;
			continue;
		}
		if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
			/* A '{' that opens no count is an ordinary character. */
			if (*p != '{' || (p[1] >= '0' && p[1] <= '9') ||
			    p[1] == ',') {
				if (last_null)
					return "it repeats what can match nothing, like (a*)*";
				if (last_counted || (*p == '{' && last_nest))
					return "a count {m,n} cannot be repeated or repeat a repetition";
				if (++last_nest > JOBD_HTTPPARSE_MAX_NESTING)
					return "repetitions nested over 10 deep";
				if (last_nest > nest[depth])
					nest[depth] = last_nest;
			}
		}
		/* glibc takes "{,N}" for "{0,N}" too. */
		if (*p == '{' &&
		    ((p[1] >= '0' && p[1] <= '9') || p[1] == ',')) {
			bool open = false;

			lo = hi = strtoul(p + 1, &end, 10);
			if (*end == ',' && end[1] >= '0' && end[1] <= '9') {
				hi = strtoul(end + 1, &end, 10);
			} else if (*end == ',') {
				open = true;
				end++;
			}
			if (*end == '}') {
				double n = (double)(hi > lo ? hi : lo) + open;

				n = n < 1 ? 1 : n;
				level[depth] += last * (n - 1);
				last *= n;
				last_null = lo == 0;
				last_counted = counted[depth] = true;
				p = end;
				continue;
			}
		}
		if (*p == '*' || *p == '?') {
			last_null = true;
			continue;
		}
		if (*p == '+')
			continue;
		seq[depth] = seq[depth] && last_null;
		if (*p == '^' || *p == '$') {
			/* An anchor matches "" and is no atom to count. */
			last_null = true;
			last = 0;
			last_nest = 0;
			last_counted = false;
			continue;
		}
		if (*p == '|') {
			any[depth] = any[depth] || seq[depth];
			seq[depth] = true;
			last_null = true;
			last = 0;
			last_nest = 0;
			last_counted = false;
			continue;
		}
		if (*p == '[') {
			p = skip_bracket(p);
			if (!*p)
				p--;
		} else if (*p == '\\' && p[1]) {
			p++;
		}
		level[depth] += 1;
		last = 1;
		last_null = false;
		last_nest = 0;
		last_counted = false;
	}
	while (depth > 0) {
		level[depth - 1] += level[depth];
		depth--;
	}
	if (level[0] > JOBD_HTTPPARSE_MAX_EXPANDED)
		return "counted repetitions make it over 1000 atoms long";
	return NULL;
}

static bool regex_match(const struct jobd_log_entry *e, void *arg)
{
	return regexec(arg, e->msg, 0, NULL, 0) == 0;
}

/* "1764340000000-0": digits, '-', digits, under 32 bytes. */
static bool valid_entry_id(const char *s)
{
	size_t digits = strspn(s, "0123456789");

	return strlen(s) < 32 && digits > 0 && s[digits] == '-' &&
	       s[digits + 1] != '\0' &&
	       strspn(s + digits + 1, "0123456789") == strlen(s + digits + 1);
}

/* A cursor of the search across jobs: an entry id, or "ID/JOB". */
static bool valid_log_cursor(const char *s)
{
	char id[32];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n >= sizeof(id))
		return false;
	memcpy(id, s, n);
	id[n] = '\0';
	return valid_entry_id(id) &&
	       (!slash ||
		(slash[1] != '\0' && strlen(slash + 1) < 20 &&
		 strspn(slash + 1, "0123456789") == strlen(slash + 1)));
}

int jobd_httpparse_logs(const struct jobd_httpparse_query *qs, bool one_job,
			int64_t now, struct jobd_httpparse_logs *out,
			char *errstr, size_t errstr_size)
{
	static const char *const allowed[] = { "level", "grep",	 "regex",
					       "since", "until", "tree",
					       "after", "limit", NULL };
	static const char *const allowed_all[] = { "level",  "grep",  "regex",
						   "since",  "until", "limit",
						   "cursor", NULL };
	struct jobd_log_query *lq = &out->lq;
	const char *level, *re;
	int64_t limit = 1000;
	char buf[80];
	int rc;

	memset(out, 0, sizeof(*out));
	lq->limit = 1000;
	if ((rc = jobd_httpparse_allowed(qs, one_job ? allowed : allowed_all,
					 errstr, errstr_size)))
		return rc;
	if ((level = jobd_httpparse_get(qs, "level"))) {
		lq->min_level = -1;
		for (int i = 0; i < 4; i++)
			if (strcmp(level, level_names[i]) == 0)
				lq->min_level = i;
		if (lq->min_level < 0)
			return bad(
				errstr, errstr_size,
				"bad level \"%s\": use debug, info, warn or error",
				jobd_httpparse_quote(level, buf, sizeof(buf)));
	}
	lq->grep = jobd_httpparse_get(qs, "grep");
	if ((rc = jobd_httpparse_time(qs, "since", now, &lq->since, errstr,
				      errstr_size)) ||
	    (rc = jobd_httpparse_time(qs, "until", now, &lq->until, errstr,
				      errstr_size)) ||
	    (rc = jobd_httpparse_bool(qs, "tree", &lq->tree, errstr,
				      errstr_size)) ||
	    (rc = jobd_httpparse_int(qs, "limit", 1, 1000, &limit, errstr,
				     errstr_size)))
		return rc;
	lq->limit = (size_t)limit;
	if ((lq->after = jobd_httpparse_get(qs, "after")) &&
	    !valid_entry_id(lq->after))
		return bad(
			errstr, errstr_size,
			"bad after \"%s\": use the id of a log entry (1764340000000-0)",
			jobd_httpparse_quote(lq->after, buf, sizeof(buf)));
	if ((lq->cursor = jobd_httpparse_get(qs, "cursor")) &&
	    !valid_log_cursor(lq->cursor))
		return bad(
			errstr, errstr_size,
			"bad cursor \"%s\": use the next of the previous page",
			jobd_httpparse_quote(lq->cursor, buf, sizeof(buf)));
	if ((re = jobd_httpparse_get(qs, "regex"))) {
		const char *risk;

		if (strlen(re) > JOBD_HTTPPARSE_MAX_REGEX)
			return bad(errstr, errstr_size, "regex over %d bytes",
				   JOBD_HTTPPARSE_MAX_REGEX);
		if ((risk = regex_risk(re)))
			return bad(errstr, errstr_size, "bad regex \"%s\": %s",
				   jobd_httpparse_quote(re, buf, sizeof(buf)),
				   risk);
		rc = regcomp(&out->rx, re,
			     REG_EXTENDED | REG_ICASE | REG_NOSUB);
		if (rc) {
			char why[128];

			regerror(rc, &out->rx, why, sizeof(why));
			return bad(errstr, errstr_size, "bad regex \"%s\": %s",
				   jobd_httpparse_quote(re, buf, sizeof(buf)),
				   why);
		}
		out->have_rx = true;
		lq->match = regex_match;
		lq->match_arg = &out->rx;
	}
	return 0;
}

void jobd_httpparse_logs_release(struct jobd_httpparse_logs *out)
{
	if (out->have_rx)
		regfree(&out->rx);
	out->have_rx = false;
	out->lq.match = NULL;
	out->lq.match_arg = NULL;
}

int jobd_httpparse_stats(const struct jobd_httpparse_query *qs,
			 const struct jobd_conf *conf, int64_t now,
			 int64_t *since, const char **type, char *errstr,
			 size_t errstr_size)
{
	static const char *const allowed[] = { "since", "type", NULL };
	int rc;

	*since = now - 3600000;
	*type = NULL;
	if ((rc = jobd_httpparse_allowed(qs, allowed, errstr, errstr_size)) ||
	    (rc = jobd_httpparse_time(qs, "since", now, since, errstr,
				      errstr_size)))
		return rc;
	*type = jobd_httpparse_get(qs, "type");
	if ((rc = jobd_httpparse_type(conf, *type, errstr, errstr_size)))
		return rc;
	if (*since >= now)
		return bad(errstr, errstr_size, "since is in the future");
	if (now - *since > JOBD_HTTPPARSE_MAX_WINDOW)
		return bad(errstr, errstr_size, "since is more than 31d ago");
	return 0;
}

int jobd_httpparse_id(const char *s, size_t len, int64_t *id, char *errstr,
		      size_t errstr_size)
{
	char text[32], buf[80];

	if (len >= sizeof(text))
		return bad(errstr, errstr_size,
			   "bad job id: use a positive integer");
	memcpy(text, s, len);
	text[len] = '\0';
	/* Digits only: strtoll would also take " 42", "+42" and "-0". */
	if (len > 0 && strspn(text, "0123456789") == len &&
	    jobd_util_parse_i64(text, id) == 0 && *id > 0)
		return 0;
	return bad(errstr, errstr_size,
		   "bad job id \"%s\": use a positive integer",
		   jobd_httpparse_quote(text, buf, sizeof(buf)));
}

/* --- bodies -------------------------------------------------------------- */

int jobd_httpparse_body(const char *buf, size_t len, json_t **body,
			char *errstr, size_t errstr_size)
{
	json_error_t e;
	char text[80];
	json_t *j;

	*body = NULL;
	if (len > JOBD_HTTPPARSE_MAX_BODY) {
		snprintf(errstr, errstr_size, "body over 1 MiB (%zu bytes)",
			 len);
		return JOBD_HTTPPARSE_TOO_BIG;
	}
	if (len == 0)
		return bad(errstr, errstr_size,
			   "empty body: send a JSON object");
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (!j)
		/* e.text may quote the body: filtered like user input. */
		return bad(errstr, errstr_size,
			   "invalid JSON body at byte %d: %s", e.position,
			   jobd_httpparse_quote(e.text, text, sizeof(text)));
	if (!json_is_object(j)) {
		json_decref(j);
		return bad(errstr, errstr_size, "body must be a JSON object");
	}
	*body = j;
	return 0;
}

/* Refuses members of O not in ALLOWED (NULL-terminated). */
static int check_members(json_t *o, const char *const *allowed, char *errstr,
			 size_t errstr_size)
{
	const char *k;
	json_t *v;
	char buf[80];

	json_object_foreach(o, k, v)
	{
		bool ok = false;

		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(k, allowed[i]) == 0;
		if (!ok)
			return bad(errstr, errstr_size,
				   "unknown member \"%s\" in the body",
				   jobd_httpparse_quote(k, buf, sizeof(buf)));
	}
	return 0;
}

/* A member that must be a string (or null/absent when OPTIONAL). */
static int member_str(json_t *o, const char *name, bool optional,
		      const char **v, char *errstr, size_t errstr_size)
{
	json_t *m = json_object_get(o, name);

	*v = NULL;
	if ((!m || json_is_null(m)) && optional)
		return 0;
	if (!json_is_string(m) || json_string_length(m) == 0 ||
	    strlen(json_string_value(m)) != json_string_length(m))
		return bad(errstr, errstr_size,
			   "\"%s\" must be a non-empty string%s", name,
			   optional ? " or null" : "");
	*v = json_string_value(m);
	return 0;
}

/* An integer member in [MIN, MAX]; *V unchanged when absent or null. */
static int member_int(json_t *o, const char *name, int64_t min, int64_t max,
		      int64_t *v, char *errstr, size_t errstr_size)
{
	json_t *m = json_object_get(o, name);

	if (!m || json_is_null(m))
		return 0;
	if (!json_is_integer(m) || json_integer_value(m) < min ||
	    json_integer_value(m) > max)
		return bad(errstr, errstr_size,
			   "\"%s\" must be an integer from %lld to %lld", name,
			   (long long)min, (long long)max);
	*v = json_integer_value(m);
	return 0;
}

/* run_at and delay (base/schedule.h), refused as a bad request. */
static int schedule(json_t *body, struct jobd_spec *spec, char *errstr,
		    size_t errstr_size)
{
	if (jobd_schedule_from_json(body, &spec->run_at, &spec->delay, errstr,
				    errstr_size) < 0)
		return JOBD_HTTPPARSE_BAD;
	return 0;
}

int jobd_httpparse_submit(json_t *body, const struct jobd_conf *conf,
			  struct jobd_httpparse_submit *out, char *errstr,
			  size_t errstr_size)
{
	static const char *const allowed[] = {
		"type",	  "payload", "key",    "run_by", "low_priority",
		"parent", "count",   "run_at", "delay",	 NULL
	};
	struct jobd_spec *spec = &out->spec;
	json_t *m;
	int rc;

	memset(out, 0, sizeof(*out));
	out->count = 1;
	if ((rc = check_members(body, allowed, errstr, errstr_size)) ||
	    (rc = member_str(body, "type", false, &spec->type, errstr,
			     errstr_size)) ||
	    (rc = member_str(body, "key", true, &spec->key, errstr,
			     errstr_size)) ||
	    (rc = member_str(body, "run_by", true, &spec->run_by, errstr,
			     errstr_size)) ||
	    (rc = member_int(body, "parent", 1, INT64_MAX, &spec->parent,
			     errstr, errstr_size)) ||
	    (rc = member_int(body, "count", 1, JOBD_HTTPPARSE_MAX_COUNT,
			     &out->count, errstr, errstr_size)) ||
	    (rc = schedule(body, spec, errstr, errstr_size)) ||
	    (rc = jobd_httpparse_type(conf, spec->type, errstr, errstr_size)))
		return rc;
	m = json_object_get(body, "low_priority");
	if (m && !json_is_null(m) && !json_is_boolean(m))
		return bad(errstr, errstr_size,
			   "\"low_priority\" must be true or false");
	spec->low_priority = json_is_true(m);
	m = json_object_get(body, "payload");
	if (m && !json_is_null(m)) {
		if (!json_is_object(m))
			return bad(errstr, errstr_size,
				   "\"payload\" must be a JSON object");
		out->payload =
			json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!out->payload)
			return nomem(errstr, errstr_size, "the payload");
		spec->payload = out->payload;
	}
	return 0;
}

void jobd_httpparse_submit_release(struct jobd_httpparse_submit *out)
{
	free(out->payload);
	out->payload = NULL;
	out->spec.payload = NULL;
}

int jobd_httpparse_op(json_t *body, const char **op, char *errstr,
		      size_t errstr_size)
{
	static const char *const allowed[] = { "op", "ids", NULL };
	int rc;

	*op = NULL;
	if ((rc = check_members(body, allowed, errstr, errstr_size)))
		return rc;
	return member_str(body, "op", false, op, errstr, errstr_size);
}

int jobd_httpparse_ids(json_t *body, int64_t **ids, size_t *n, char *errstr,
		       size_t errstr_size)
{
	json_t *a = json_object_get(body, "ids"), *v;
	size_t i;

	*ids = NULL;
	*n = 0;
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > JOBD_HTTPPARSE_MAX_IDS)
		return bad(errstr, errstr_size,
			   "\"ids\" must be an array of 1 to %d job ids",
			   JOBD_HTTPPARSE_MAX_IDS);
	json_array_foreach(a, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			return bad(
				errstr, errstr_size,
				"bad job id at ids[%zu]: use a positive integer",
				i);
	}
	*ids = calloc(json_array_size(a), sizeof(**ids));
	if (!*ids)
		return nomem(errstr, errstr_size, "the ids");
	json_array_foreach(a, i, v)(*ids)[i] = json_integer_value(v);
	*n = json_array_size(a);
	return 0;
}

bool jobd_httpparse_host_allowed(const char *host, const char *const *names)
{
	struct in6_addr a6;
	struct in_addr a4;
	const char *end, *port;
	char name[256];
	bool bracketed;
	size_t len;

	if (!host)
		return true;
	bracketed = host[0] == '[';
	if (bracketed) {
		host++;
		if (!(end = strchr(host, ']')))
			return false;
		port = end + 1;
	} else {
		end = host + strcspn(host, ":");
		port = end;
	}
	/* An empty port is allowed (RFC 3986: port = *DIGIT). */
	if (*port && (*port != ':' || strlen(port + 1) > 5 ||
		      strspn(port + 1, "0123456789") != strlen(port + 1)))
		return false;
	len = (size_t)(end - host);
	if (len == 0 || len >= sizeof(name))
		return false;
	memcpy(name, host, len);
	name[len] = '\0';
	if (bracketed)
		return inet_pton(AF_INET6, name, &a6) == 1;
	if (inet_pton(AF_INET, name, &a4) == 1 ||
	    strcasecmp(name, "localhost") == 0)
		return true;
	for (; names && *names; names++)
		if (strcasecmp(name, *names) == 0)
			return true;
	return false;
}
