/*
 * store/joblog: the logs of jobs: one job's (or a tree's) entries with the
 * lifecycle entries its hash records, and the search across jobs through
 * the time index of log entries, page by page with a cursor.
 */
#include "config.h"

#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

void jobd_log_result_release(struct jobd_log_result *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->entries[i].msg);
	free(r->entries);
	memset(r, 0, sizeof(*r));
}

static bool entry_matches(const struct jobd_log_entry *e,
			  const struct jobd_log_query *q)
{
	if (e->level < q->min_level)
		return false;
	if (q->grep && *q->grep && !strcasestr(e->msg, q->grep))
		return false;
	return !q->match || q->match(e, q->match_arg);
}

static int push_entry(struct jobd_log_result *out, size_t *cap,
		      struct jobd_log_entry *e)
{
	if (jobd_util_grow(&out->entries, cap, out->n, sizeof(*out->entries),
			   64) < 0)
		return -1;
	out->entries[out->n++] = *e;
	return 0;
}

/* Reads one job's stream in chunks, appending matching entries to OUT. */
static int read_log(struct jobd_store *st, int64_t job,
		    const struct jobd_log_query *q, size_t limit,
		    struct jobd_log_result *out, size_t *cap)
{
	char start[48], end[48];

	if (q->after && *q->after)
		snprintf(start, sizeof(start), "(%s", q->after);
	else
		snprintf(start, sizeof(start), "%lld",
			 (long long)(q->since > 0 ? q->since : 0));
	if (q->until > 0)
		snprintf(end, sizeof(end), "%lld", (long long)q->until);
	else
		snprintf(end, sizeof(end), "+");
	for (;;) {
		redisReply *r = jobd_store_command(
			st, "XRANGE %s:log:%lld %s %s COUNT 500", st->prefix,
			(long long)job, start, end);
		size_t i;

		if (!r)
			return JOBD_STORE_ERR_REDIS;
		if (r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return 0;
		}
		for (i = 0; i < r->elements; i++) {
			redisReply *ent = r->element[i];
			redisReply *kv = ent->element[1];
			struct jobd_log_entry e = { .job = job };

			snprintf(e.sid, sizeof(e.sid), "%s",
				 ent->element[0]->str);
			e.ms = strtoll(e.sid, NULL, 10);
			for (size_t k = 0; k + 1 < kv->elements; k += 2) {
				const char *f = kv->element[k]->str;
				const char *v = kv->element[k + 1]->str;

				if (strcmp(f, "level") == 0)
					e.level = store_level_parse(v);
				else if (strcmp(f, "attempt") == 0)
					e.attempt = strtoll(v, NULL, 10);
				else if (strcmp(f, "msg") == 0)
					e.msg = (char *)v;
			}
			if (!e.msg)
				e.msg = "";
			if (!entry_matches(&e, q))
				continue;
			if (out->n >= limit) {
				out->truncated = true;
				break;
			}
			e.msg = strdup(e.msg);
			if (!e.msg || push_entry(out, cap, &e) < 0) {
				free(e.msg);
				freeReplyObject(r);
				store_set_err(st, "out of memory reading logs");
				return JOBD_STORE_ERR_REDIS;
			}
		}
		if (r->elements < 500 || out->truncated) {
			freeReplyObject(r);
			return 0;
		}
		snprintf(start, sizeof(start), "(%s",
			 r->element[r->elements - 1]->element[0]->str);
		freeReplyObject(r);
	}
}

/* Compares stream ids "MS-SEQ" as numbers. */
static int cmp_sid(const char *a, const char *b)
{
	unsigned long long ams = strtoull(a, NULL, 10),
			   bms = strtoull(b, NULL, 10);
	const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
	unsigned long long aseq = ad ? strtoull(ad + 1, NULL, 10) : 0;
	unsigned long long bseq = bd ? strtoull(bd + 1, NULL, 10) : 0;

	if (ams != bms)
		return ams < bms ? -1 : 1;
	if (aseq != bseq)
		return aseq < bseq ? -1 : 1;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct jobd_log_entry *x = a, *y = b;
	int c = cmp_sid(x->sid, y->sid);

	if (c)
		return c;
	return x->job < y->job ? -1 : x->job > y->job;
}

/* Appends the ids of the descendants of ID to *IDS (bounded). */
static int descendants(struct jobd_store *st, int64_t id, int64_t **ids,
		       size_t *n, size_t max)
{
	size_t cap = 64, head = 0;
	int64_t *v = malloc(cap * sizeof(*v));

	if (!v)
		return JOBD_STORE_ERR_REDIS;
	v[0] = id;
	*n = 1;
	while (head < *n && *n < max) {
		redisReply *r =
			jobd_store_command(st, "ZRANGE %s:children:%lld 0 -1",
					   st->prefix, (long long)v[head++]);

		if (!r) {
			free(v);
			return JOBD_STORE_ERR_REDIS;
		}
		for (size_t i = 0; i < r->elements && *n < max; i++) {
			if (jobd_util_grow(&v, &cap, *n, sizeof(*v), 64) < 0) {
				freeReplyObject(r);
				free(v);
				return JOBD_STORE_ERR_REDIS;
			}
			v[(*n)++] = strtoll(r->element[i]->str, NULL, 10);
		}
		freeReplyObject(r);
	}
	*ids = v;
	return 0;
}

/*
 * The lifecycle entries that the job hash records and the hot path does
 * not write to the stream (one write less per transition): created, the
 * current claim, finished. Fills E (their messages in MSG) and returns
 * how many; each entry's sid is "MS-0", before any stream entry of the
 * same millisecond. STEP (NULL: not wanted) gets which entry each one is:
 * 0 created, 1 claimed, 2 finished.
 */
static size_t lifecycle_make(const struct jobd_job *job,
			     struct jobd_log_entry e[3], char msg[3][512],
			     int step[3])
{
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		struct jobd_log_entry *x = &e[n];
		char *m = msg[n];
		const char *by;
		int len;

		memset(x, 0, sizeof(*x));
		x->job = job->id;
		switch (i) {
		case 0:
			by = job->created_by ? job->created_by :
			     job->source     ? JOBD_ACTOR_KAFKA :
			     job->run_by     ? job->run_by :
					       "system";
			len = snprintf(m, 512, "created by %s", by);
			if (job->source)
				len += snprintf(m + len, 512 - len, " from %s",
						job->source);
			if (job->parent)
				snprintf(m + len, 512 - len,
					 " as a child of %lld",
					 (long long)job->parent);
			x->ms = job->created_at;
			x->level = JOBD_LOG_INFO;
			break;
		case 1:
			if (!job->claimed_at || !job->instance)
				continue;
			snprintf(m, 512, "claimed by %s attempt %lld",
				 job->instance, (long long)job->attempt);
			x->ms = job->claimed_at;
			x->level = JOBD_LOG_INFO;
			x->attempt = job->attempt;
			break;
		default:
			if (job->status != JOBD_FINISHED)
				continue;
			snprintf(m, 512, "%s",
				 job->with_errors ? "finished with errors" :
						    "finished");
			x->ms = job->finished_at;
			x->level = job->with_errors ? JOBD_LOG_WARN :
						      JOBD_LOG_INFO;
			x->attempt = job->attempt;
			break;
		}
		snprintf(x->sid, sizeof(x->sid), "%lld-0", (long long)x->ms);
		x->msg = m;
		if (step)
			step[n] = i;
		n++;
	}
	return n;
}

/* The lifecycle entries of job ID that match Q, appended to OUT. */
static int lifecycle_entries(struct jobd_store *st, int64_t id,
			     const struct jobd_log_query *q, size_t limit,
			     struct jobd_log_result *out, size_t *cap)
{
	struct jobd_log_entry e[3];
	struct jobd_job *job;
	char msg[3][512];
	int64_t now;
	int rc = jobd_store_get(st, id, &job, &now);
	size_t ne;
	int n = 0;

	if (rc == JOBD_STORE_ERR_NOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	ne = lifecycle_make(job, e, msg, NULL);
	for (size_t i = 0; i < ne; i++) {
		if ((q->since && e[i].ms < q->since) ||
		    (q->until && e[i].ms > q->until) ||
		    (q->after && *q->after &&
		     cmp_sid(e[i].sid, q->after) <= 0) ||
		    !entry_matches(&e[i], q))
			continue;
		if (out->n >= limit) {
			out->truncated = true;
			break;
		}
		e[i].msg = strdup(msg[i]);
		if (!e[i].msg || push_entry(out, cap, &e[i]) < 0) {
			free(e[i].msg);
			rc = JOBD_STORE_ERR_REDIS;
			break;
		}
		n++;
	}
	jobd_job_free(job);
	return rc < 0 ? rc : n;
}

static int read_logs_of(struct jobd_store *st, const int64_t *ids, size_t nids,
			const struct jobd_log_query *q,
			struct jobd_log_result *out)
{
	size_t limit = q->limit ? q->limit : 1000, cap = 0;
	int rc = 0;

	for (size_t i = 0; i < nids && rc >= 0; i++) {
		/* Each job may fill the page: the merge keeps the oldest. */
		size_t room = nids > 1 ? out->n + limit : limit;

		rc = read_log(st, ids[i], q, room, out, &cap);
		if (rc >= 0)
			rc = lifecycle_entries(st, ids[i], q, room + 3, out,
					       &cap);
	}
	if (rc < 0) {
		jobd_log_result_release(out);
		return rc;
	}
	if (out->n > 1) /* qsort(NULL, 0, ...) is undefined */
		qsort(out->entries, out->n, sizeof(*out->entries), cmp_entry);
	if (out->n > limit) {
		for (size_t i = limit; i < out->n; i++)
			free(out->entries[i].msg);
		out->n = limit;
		out->truncated = true;
	}
	return 0;
}

int jobd_store_logs(struct jobd_store *st, int64_t id,
		    const struct jobd_log_query *q, struct jobd_log_result *out)
{
	int64_t *ids = NULL;
	size_t nids = 1;
	redisReply *r;
	int rc;

	if (st->nsh)
		return jobd_store_sharded_logs(st, id, q, out);
	memset(out, 0, sizeof(*out));
	if (store_ensure(st) < 0)
		return JOBD_STORE_ERR_REDIS;
	r = jobd_store_command(st, "EXISTS %s:job:%lld", st->prefix,
			       (long long)id);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ERROR) {
		/* NOPERM for a user of another prefix: not "not found". */
		store_set_err(st, "cannot read job %lld: %s", (long long)id,
			      r->str);
		freeReplyObject(r);
		return JOBD_STORE_ERR_REDIS;
	}
	rc = r->integer == 1 ? 0 : JOBD_STORE_ERR_NOTFOUND;
	freeReplyObject(r);
	if (rc < 0) {
		store_set_err(st, "job %lld not found", (long long)id);
		return rc;
	}
	/* Entries trimmed by MAXLEN: added so far minus still there. */
	r = jobd_store_command(st, "XINFO STREAM %s:log:%lld", st->prefix,
			       (long long)id);
	if (!r)
		return JOBD_STORE_ERR_REDIS;
	if (r->type == REDIS_REPLY_ARRAY) {
		int64_t len = 0, added = 0;

		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			if (strcmp(r->element[i]->str, "length") == 0)
				len = store_reply_i64(r->element[i + 1]);
			else if (strcmp(r->element[i]->str, "entries-added") ==
				 0)
				added = store_reply_i64(r->element[i + 1]);
		}
		out->dropped = added > len ? added - len : 0;
	}
	freeReplyObject(r);
	if (q->tree) {
		rc = descendants(st, id, &ids, &nids, 100000);
		if (rc < 0)
			return rc;
		rc = read_logs_of(st, ids, nids, q, out);
		free(ids);
	} else {
		rc = read_logs_of(st, &id, 1, q, out);
	}
	return rc;
}

/*
 * The search across jobs (jobd_store_logs_all) orders what it finds by a
 * key: an entry read through the index by the id of its index entry
 * (MS-SEQ, unique), a lifecycle entry by its time and step (0 created,
 * 1 claimed, 2 finished: a job created and claimed in one millisecond
 * has two) as if they were MS-STEP, before an index entry of the same
 * id, and by job among themselves. A cursor is the key of the last entry
 * delivered, as text: "MS-SEQ" for an index entry, "MS-STEP/JOB" for a
 * lifecycle entry; the next page has every key after it.
 */
struct log_key {
	int64_t ms, seq; /* index entry id; lifecycle: its time (ms), step */
	int kind;	 /* 0 lifecycle, 1 index entry */
	int64_t job;	 /* lifecycle: its job; index entry: INT64_MAX */
};

/* An entry found, with its key. */
struct log_found {
	struct log_key key;
	struct jobd_log_entry e; /* msg owned */
};

static int cmp_key(const struct log_key *a, const struct log_key *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return a->job < b->job ? -1 : a->job > b->job;
}

static int cmp_found(const void *a, const void *b)
{
	return cmp_key(&((const struct log_found *)a)->key,
		       &((const struct log_found *)b)->key);
}

/* Reads "MS-SEQ" or "MS-SEQ/JOB" into *K; false if S is neither. */
static bool key_parse(const char *s, struct log_key *k)
{
	char *end;

	if (!s || !(*s >= '0' && *s <= '9'))
		return false;
	errno = 0;
	k->ms = strtoll(s, &end, 10);
	if (*end != '-' || !(end[1] >= '0' && end[1] <= '9'))
		return false;
	k->seq = strtoll(end + 1, &end, 10);
	k->kind = 1;
	k->job = INT64_MAX;
	if (*end == '/') {
		if (!(end[1] >= '0' && end[1] <= '9'))
			return false;
		k->kind = 0;
		k->job = strtoll(end + 1, &end, 10);
	}
	return *end == '\0' && errno == 0 && k->ms >= 0 && k->seq >= 0 &&
	       k->job >= 0;
}

static void key_text(const struct log_key *k, char *buf, size_t size)
{
	if (k->kind)
		snprintf(buf, size, "%lld-%lld", (long long)k->ms,
			 (long long)k->seq);
	else
		snprintf(buf, size, "%lld-%lld/%lld", (long long)k->ms,
			 (long long)k->seq, (long long)k->job);
}

bool jobd_store_log_cursor_valid(const char *s)
{
	struct log_key k;

	return strlen(s) < JOBD_LOG_CURSOR_SIZE && key_parse(s, &k);
}

/* Growing arrays of the search: the entries found, the jobs met. */
struct log_page {
	struct log_found *found; /* owned, N of CAP used */
	size_t n, cap;		 /* entries */
	struct jobd_job **jobs;	 /* owned, NJOBS of CAPJOBS used */
	size_t njobs, capjobs;	 /* jobs, a job once per logscan call */
};

static void log_page_release(struct log_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->found[i].e.msg);
	free(p->found);
	for (size_t i = 0; i < p->njobs; i++)
		jobd_job_free(p->jobs[i]);
	free(p->jobs);
	memset(p, 0, sizeof(*p));
}

/* Appends E (its msg copied) under key K; -1 when out of memory. */
static int page_add(struct log_page *p, const struct log_key *k,
		    const struct jobd_log_entry *e)
{
	struct log_found *f;

	if (jobd_util_grow(&p->found, &p->cap, p->n, sizeof(*p->found), 256) <
	    0)
		return -1;
	f = &p->found[p->n];
	f->key = *k;
	f->e = *e;
	f->e.msg = strdup(e->msg ? e->msg : "");
	if (!f->e.msg)
		return -1;
	p->n++;
	return 0;
}

static int page_add_job(struct log_page *p, struct jobd_job *job)
{
	if (jobd_util_grow(&p->jobs, &p->capjobs, p->njobs, sizeof(*p->jobs),
			   64) < 0)
		return -1;
	p->jobs[p->njobs++] = job;
	return 0;
}

/*
 * The next field of a logscan.lua string at *P (END its end), up to a
 * NUL: copied into BUF of SIZE (cut to fit); false when none is left.
 */
static bool scan_field(const char **p, const char *end, char *buf, size_t size)
{
	const char *z = memchr(*p, '\0', (size_t)(end - *p));
	size_t n;

	if (!z)
		return false;
	n = (size_t)(z - *p) < size ? (size_t)(z - *p) : size - 1;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p = z + 1;
	return true;
}

/*
 * A log entry of logscan.lua's reply, "POSITION\0JOB\0ID\0LEVEL\0ATTEMPT\0
 * MESSAGE": its key into *K, the entry into *E (its msg borrowed from R).
 */
static bool scan_entry(const redisReply *r, struct log_key *k,
		       struct jobd_log_entry *e)
{
	const char *p = r->str, *end = r->str + r->len;
	char pos[48], job[24], level[16], attempt[24];

	memset(e, 0, sizeof(*e));
	if (r->type != REDIS_REPLY_STRING ||
	    !scan_field(&p, end, pos, sizeof(pos)) ||
	    !scan_field(&p, end, job, sizeof(job)) ||
	    !scan_field(&p, end, e->sid, sizeof(e->sid)) ||
	    !scan_field(&p, end, level, sizeof(level)) ||
	    !scan_field(&p, end, attempt, sizeof(attempt)) ||
	    !key_parse(pos, k) || k->kind != 1)
		return false;
	e->job = strtoll(job, NULL, 10);
	e->ms = strtoll(e->sid, NULL, 10);
	e->level = store_level_parse(level);
	e->attempt = strtoll(attempt, NULL, 10);
	e->msg = (char *)p; /* the rest, up to the reply's own NUL */
	return true;
}

/* logscan.lua's LIFECYCLE, in its order, after the id. */
static const char *const lifecycle_fields[] = {
	"id",	  "created_at",	 "created_by",	"source",   "run_by",
	"parent", "claimed_at",	 "started_at",	"instance", "attempt",
	"status", "finished_at", "with_errors", "type",
};
#define NLIFECYCLE (sizeof(lifecycle_fields) / sizeof(*lifecycle_fields))

/* A job of logscan.lua's reply: its values, each ended by a NUL. */
static struct jobd_job *scan_job(const redisReply *r)
{
	const char *names[NLIFECYCLE], *values[NLIFECYCLE];
	char *buf, *p, *end;
	struct jobd_job *job;
	size_t n = 0;

	if (r->type != REDIS_REPLY_STRING || !(buf = malloc(r->len + 1)))
		return NULL;
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	p = buf;
	end = buf + r->len;
	for (size_t i = 0; i < NLIFECYCLE && p < end; i++) {
		char *z = memchr(p, '\0', (size_t)(end - p));

		if (!z)
			break;
		if (z > p) { /* "" is an absent field */
			names[n] = lifecycle_fields[i];
			values[n++] = p;
		}
		p = z + 1;
	}
	job = jobd_job_from_fields(names, values, n);
	free(buf);
	return job;
}

static int cmp_job_id(const void *a, const void *b)
{
	int64_t x = (*(struct jobd_job *const *)a)->id;
	int64_t y = (*(struct jobd_job *const *)b)->id;

	return x < y ? -1 : x > y;
}

/*
 * The lifecycle entries of the jobs met in the page, those whose keys lie
 * in the part of the timeline the page covers: after FROM, up to END
 * (NULL: to the end of the window).
 */
static int page_lifecycle(struct log_page *p, const struct log_key *from,
			  const struct log_key *end,
			  const struct jobd_log_query *q, int64_t since,
			  int64_t until)
{
	if (p->njobs > 1)
		qsort(p->jobs, p->njobs, sizeof(*p->jobs), cmp_job_id);
	for (size_t i = 0; i < p->njobs; i++) {
		struct jobd_log_entry e[3];
		char msg[3][512];
		int step[3];
		size_t ne;

		if (i > 0 && p->jobs[i]->id == p->jobs[i - 1]->id)
			continue;
		ne = lifecycle_make(p->jobs[i], e, msg, step);
		for (size_t k = 0; k < ne; k++) {
			struct log_key key = { e[k].ms, step[k], 0, e[k].job };

			if (e[k].ms < since || e[k].ms > until ||
			    cmp_key(&key, from) <= 0 ||
			    (end && cmp_key(&key, end) > 0) ||
			    !entry_matches(&e[k], q))
				continue;
			if (page_add(p, &key, &e[k]) < 0)
				return -1;
		}
	}
	return 0;
}

/* Index entries one logscan.lua call reads at most, and at least while
 * the scan bound allows. */
#define LOG_SCAN_CALL 2000
#define LOG_SCAN_MIN 256

int jobd_store_logs_all(struct jobd_store *st, const struct jobd_log_query *q,
			struct jobd_log_result *out)
{
	size_t limit = q->limit ? q->limit : 1000;
	size_t budget = q->scan_max ? q->scan_max : JOBD_LOG_SCAN_MAX;
	size_t matched = 0;
	struct log_page p = { 0 };
	struct log_key from, at, end;
	int64_t until, since;
	bool done = false;
	int rc = JOBD_STORE_ERR_REDIS;

	if (st->nsh) {
		memset(out, 0, sizeof(*out));
		store_set_err(st,
			      "searching the logs of all jobs across shards "
			      "is not built yet (docs/scaling.md, "
			      "\"Shards\"): search a job's logs");
		return JOBD_STORE_ERR_INVALID;
	}

	memset(out, 0, sizeof(*out));
	until = q->until > 0 ? q->until : jobd_util_now_ms() + 60000;
	since = q->since > 0 ? q->since : until - 3600000;
	if (q->cursor && *q->cursor) {
		if (!key_parse(q->cursor, &from)) {
			store_set_err(st, "bad cursor \"%.40s\"", q->cursor);
			return JOBD_STORE_ERR_INVALID;
		}
		/* A relative since moved on since the first page. */
		since = from.ms;
	} else {
		from = (struct log_key){ since, 0, 0, 0 };
	}
	at = from;
	while (!done && out->scanned < budget && matched < limit) {
		size_t want = budget - out->scanned;
		struct store_args a = { 0 };
		redisReply *r, *ents, *jobs;

		/* Enough to fill the page if all match, not so few that a
		 * rare match takes many calls. */
		if (want > LOG_SCAN_CALL)
			want = LOG_SCAN_CALL;
		if (want > LOG_SCAN_MIN && want > limit - matched)
			want = limit - matched > LOG_SCAN_MIN ?
				       limit - matched :
				       LOG_SCAN_MIN;
		/* After AT: an index entry's successor, or from a lifecycle
		 * key's millisecond on. */
		store_args_addf(&a, "%lld-%lld", (long long)at.ms,
				(long long)(at.kind ? at.seq + 1 : at.seq));
		store_args_addf(&a, "%lld", (long long)until);
		store_args_addf(&a, "%zu", want);
		r = store_eval(st, S_LOGSCAN, &a);
		store_args_release(&a);
		if (!r)
			goto out;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
			freeReplyObject(r);
			store_set_err(st, "logscan.lua: unexpected reply");
			goto out;
		}
		ents = r->element[1];
		jobs = r->element[2];
		out->scanned += (size_t)store_reply_i64(r->element[3]);
		for (size_t i = 0; i < ents->elements; i++) {
			struct jobd_log_entry e;
			struct log_key k;

			if (!scan_entry(ents->element[i], &k, &e) ||
			    !entry_matches(&e, q))
				continue;
			if (page_add(&p, &k, &e) < 0)
				goto oom;
			matched++;
		}
		for (size_t i = 0; i < jobs->elements; i++) {
			struct jobd_job *job = scan_job(jobs->element[i]);

			if (job && page_add_job(&p, job) < 0) {
				jobd_job_free(job);
				goto oom;
			}
		}
		if (r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len == 0)
			done = true;
		else if (!key_parse(r->element[0]->str, &at)) {
			freeReplyObject(r);
			store_set_err(st, "logscan.lua: bad position");
			goto out;
		}
		freeReplyObject(r);
		continue;
oom:
		freeReplyObject(r);
		store_set_err(st, "out of memory searching logs");
		goto out;
	}
	end = at;
	if (page_lifecycle(&p, &from, done ? NULL : &end, q, since, until) <
	    0) {
		store_set_err(st, "out of memory searching logs");
		goto out;
	}
	if (p.n > 1)
		qsort(p.found, p.n, sizeof(*p.found), cmp_found);
	if (p.n > limit) {
		key_text(&p.found[limit - 1].key, out->next, sizeof(out->next));
		for (size_t i = limit; i < p.n; i++)
			free(p.found[i].e.msg);
		p.n = limit;
	} else if (!done) {
		key_text(&end, out->next, sizeof(out->next));
	}
	out->truncated = out->next[0] != '\0';
	out->entries = calloc(p.n ? p.n : 1, sizeof(*out->entries));
	if (!out->entries) {
		store_set_err(st, "out of memory searching logs");
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		out->entries[i] = p.found[i].e;
		p.found[i].e.msg = NULL;
	}
	out->n = p.n;
	p.n = 0;
	rc = 0;
out:
	log_page_release(&p);
	if (rc < 0)
		jobd_log_result_release(out);
	return rc;
}
